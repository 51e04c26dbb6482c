"""What the console reads from the event log (``ctx.events``): recent events, the live
feed relayed as Server-Sent Events, and the history of rooms that ended."""

from __future__ import annotations

from collections import deque
from collections.abc import Mapping, Sequence
from typing import Any

from sanic import HTTPResponse, Request

from aura_livekit_backend.plugin import ApiError, PluginContext

from .pages import EndedRoom, LoggedEvent

__all__ = ["ConsoleEvents"]

#: Rooms that ended, kept per worker for the history page.
HISTORY_SIZE = 500
#: Rooms whose start the history fold remembers while they are open.
OPEN_ROOMS = 20_000


class ConsoleEvents:
    """The console's view of ``ctx.events`` (None-safe: without an event log the pages
    say so instead of failing)."""

    def __init__(self, ctx: PluginContext) -> None:
        """Read through ``ctx``'s event log once the worker serves."""
        self._ctx = ctx
        self._after = 0
        self._open: dict[str, dict[str, Any]] = {}
        self._ended: deque[EndedRoom] = deque(maxlen=HISTORY_SIZE)

    @property
    def _log(self) -> Any:
        return getattr(self._ctx, "events", None)

    async def recent(self, *, room: str | None = None, limit: int = 50) -> list[LoggedEvent] | None:
        """The newest ``limit`` events (of ``room``), newest first; None without a log."""
        return None

    async def last_position(self) -> int:
        """The newest position in the log (0 when empty or absent)."""
        return 0

    async def relay(self, request: Request) -> HTTPResponse:
        """Stream the log to an EventSource from ``?after=`` or ``Last-Event-ID``."""
        raise ApiError(503, "the event log is not available")

    async def ended_rooms(self) -> Sequence[EndedRoom] | None:
        """Rooms that ended, newest first; None without a log."""
        return None


def _room_of(data: Mapping[str, Any]) -> Mapping[str, Any]:
    room = data.get("room")
    return room if isinstance(room, Mapping) else {}
