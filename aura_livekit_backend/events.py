"""What the service tells plugins it did: typed events on Sanic's signal bus.

Each event is a frozen dataclass whose ``name`` is a three-part signal name,
``<source>.<thing>.<happened>``: the service's own are ``aura.*``; LiveKit's webhook
events join as ``livekit.*`` in the same scheme. A plugin subscribes with
``ctx.on(RoomCreated)`` (see :mod:`aura_livekit_backend.plugin`); the service emits
through an :class:`EventSink`.

Subscribers run after the request that caused the event, in a task of their own:
a slow one never delays the answer, a failing one never fails it — its failure is
logged with the request id and the other subscribers still run.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass, fields, is_dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, ClassVar, Protocol

from sanic import DefaultSanic

from .livekit.models import RoomInfo

if TYPE_CHECKING:
    from .eventlog import EventLog

__all__ = [
    "EVENTS",
    "Event",
    "EventSink",
    "ParticipantRemoved",
    "RoomCreated",
    "RoomDeleted",
    "RoomUpdated",
    "SignalEvents",
    "TokenMinted",
    "subscriber",
]

logger = logging.getLogger("aura_livekit_backend.events")


@dataclass(frozen=True, slots=True)
class Event:
    """Something the service did. Subclasses name it and carry its payload."""

    #: The signal name: ``<source>.<thing>.<happened>``.
    name: ClassVar[str] = ""

    @property
    def room_name(self) -> str | None:
        """The name of the room the event is about, if it is about one."""
        room = getattr(self, "room", None)
        if isinstance(room, RoomInfo):
            return room.name
        return room if isinstance(room, str) else None

    def data(self) -> dict[str, Any]:
        """The payload as JSON-ready values (what the event log keeps and streams)."""
        return {field.name: _jsonable(getattr(self, field.name)) for field in fields(self)}


def _jsonable(value: Any) -> Any:
    if is_dataclass(value) and not isinstance(value, type):
        return {field.name: _jsonable(getattr(value, field.name)) for field in fields(value)}
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, (tuple, list)):
        return [_jsonable(item) for item in value]
    if isinstance(value, dict):
        return {str(key): _jsonable(item) for key, item in value.items()}
    return value


@dataclass(frozen=True, slots=True)
class RoomCreated(Event):
    """A room was created through the service."""

    name: ClassVar[str] = "aura.room.created"
    room: RoomInfo


@dataclass(frozen=True, slots=True)
class RoomUpdated(Event):
    """A room's topic, description or participant limit changed; ``room`` is the new state."""

    name: ClassVar[str] = "aura.room.updated"
    room: RoomInfo


@dataclass(frozen=True, slots=True)
class RoomDeleted(Event):
    """A room was closed through the service; ``room`` is what it was."""

    name: ClassVar[str] = "aura.room.deleted"
    room: RoomInfo


@dataclass(frozen=True, slots=True)
class TokenMinted(Event):
    """A join token was minted. Never carries the token itself."""

    name: ClassVar[str] = "aura.token.minted"
    #: The room's name.
    room: str
    identity: str
    #: The display name.
    display_name: str


@dataclass(frozen=True, slots=True)
class ParticipantRemoved(Event):
    """A participant was removed from a room through the service."""

    name: ClassVar[str] = "aura.participant.removed"
    room: RoomInfo
    identity: str


#: Every event the service emits, by name.
EVENTS: dict[str, type[Event]] = {
    event.name: event
    for event in (RoomCreated, RoomUpdated, RoomDeleted, TokenMinted, ParticipantRemoved)
}


class EventSink(Protocol):
    """Where the service's domain code reports what it did."""

    def emit(self, event: Event) -> None:
        """Report ``event``; returns at once, whatever subscribers do."""


class NoEvents:
    """An :class:`EventSink` nobody listens to (the ``plugins`` listing, unit tests)."""

    def emit(self, event: Event) -> None:
        """Drop ``event``."""


Subscriber = Callable[[Any], Awaitable[None]]


def subscriber(name: str, handler: Subscriber) -> Callable[..., Awaitable[None]]:
    """``handler`` as a Sanic signal handler for ``name``, its failures contained."""

    async def handle(**context: Any) -> None:
        try:
            await handler(context["event"])
        except Exception:
            # The request id rides in the task's copy of the request's context.
            logger.exception(
                "subscriber %s of %s failed",
                getattr(handler, "__qualname__", repr(handler)),
                name,
            )

    handle.__qualname__ = f"subscriber({name})"
    return handle


#: Names of the service's own events, which :meth:`SignalEvents.emit` appends to the
#: event log; ``livekit.*`` events are appended by the webhook receiver, under LiveKit's id.
OWN_EVENTS_PREFIX = "aura."
#: Seconds between two "the event log failed" warnings from one worker.
_WARN_EVERY = 60.0


class SignalEvents:
    """Emits events on an app's signal bus, for the names someone subscribed to.

    With an event log, every one of the service's own events is also appended to it,
    subscribed to or not, in a task of its own: the request never waits for the log,
    and a log that fails costs a warning (at most one a minute), never the request.
    """

    def __init__(self, app: DefaultSanic, log: EventLog | None = None) -> None:
        """Emit on ``app`` and append to ``log``; :meth:`listen_to` says which names
        have subscribers."""
        self._app = app
        self._log = log
        self._names: frozenset[str] = frozenset()
        # Tasks must be referenced until done, or the loop may drop them.
        self._pending: set[asyncio.Task[Any]] = set()
        self._warned_at = -_WARN_EVERY
        self._lost = 0

    def listen_to(self, names: set[str]) -> None:
        """Set the event names that have at least one subscriber (at set-up)."""
        self._names = frozenset(names)

    def emit(self, event: Event) -> None:
        """Append ``event`` to the log and dispatch it (if anyone listens), in tasks."""
        if self._log is not None and event.name.startswith(OWN_EVENTS_PREFIX):
            self._track(self._append(self._log, event, time.time()))
        if event.name not in self._names:
            return  # the common case costs one set lookup
        self._track(
            self._app.dispatch(
                event.name, context={"event": event}, fail_not_found=False, inline=True
            )
        )

    def _track(self, work: Coroutine[Any, Any, Any]) -> None:
        task = asyncio.get_running_loop().create_task(work)
        self._pending.add(task)
        task.add_done_callback(self._pending.discard)

    async def _append(self, log: EventLog, event: Event, at: float) -> None:
        try:
            # A fresh id: the service's own events are never delivered twice.
            await log.append(
                f"aura-{uuid.uuid4().hex}", event.name, event.room_name, at, event.data()
            )
        except Exception as exc:
            self._lost += 1
            now = time.monotonic()
            if now - self._warned_at >= _WARN_EVERY:
                self._warned_at = now
                logger.warning(
                    "event log: %s not appended (%d lost since the last warning): %s",
                    event.name,
                    self._lost,
                    exc,
                )
                self._lost = 0
