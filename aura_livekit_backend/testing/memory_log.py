"""An event log in a list, for tests of code that reads or follows the log.

It keeps the :class:`~aura_livekit_backend.eventlog.EventLog` contract (positions that
only grow, an id kept once, ``wait`` woken by an append) in one process, so a test of a
plugin's ``ctx.events`` use is exact and fast; ``down`` makes every call fail as a
Redis outage would. Hand it to :class:`~aura_livekit_backend.event_feed.EventFeed`.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Mapping
from typing import Any

from ..eventlog import EventLogUnavailable, LoggedEvent

__all__ = ["MemoryLog"]


class MemoryLog:
    """An :class:`~aura_livekit_backend.eventlog.EventLog` in a list."""

    def __init__(self, step: int = 1) -> None:
        """Positions ``step`` apart (Redis positions need not be consecutive)."""
        self.entries: list[LoggedEvent] = []
        self.step = step
        #: Every call raises :class:`EventLogUnavailable` while True.
        self.down = False
        #: How many times :meth:`read` was called.
        self.reads = 0
        self._told: set[str] = set()
        # One per waiter, made on its own loop: a module's tests may each run their own.
        self._waiters: set[asyncio.Event] = set()

    def _check(self) -> None:
        if self.down:
            raise EventLogUnavailable("memory log is down")

    async def open(self) -> None:
        """Nothing to open."""

    async def close(self) -> None:
        """Nothing to close."""

    async def append(
        self, id: str, name: str, room: str | None, at: float, data: Mapping[str, Any]
    ) -> int | None:
        """Append, or None for an id already kept."""
        self._check()
        if any(entry.id == id for entry in self.entries):
            return None
        position = (self.entries[-1].position if self.entries else 0) + self.step
        self.entries.append(LoggedEvent(position, id, name, room, at, dict(data)))
        for waiter in self._waiters:
            waiter.set()
        return position

    async def mark_told(self, id: str) -> bool:
        """True the first time for a kept id."""
        self._check()
        if id in self._told or not any(entry.id == id for entry in self.entries):
            return False
        self._told.add(id)
        return True

    async def read(self, after: int, limit: int) -> list[LoggedEvent]:
        """Up to ``limit`` entries past ``after``."""
        self._check()
        self.reads += 1
        return [entry for entry in self.entries if entry.position > after][:limit]

    async def last_position(self) -> int:
        """The newest entry's position, 0 when empty."""
        self._check()
        return self.entries[-1].position if self.entries else 0

    async def wait(self, after: int, timeout: float) -> None:
        """Return once an entry past ``after`` is kept, or after ``timeout``."""
        self._check()
        if await self.last_position() > after:
            return
        changed = asyncio.Event()
        self._waiters.add(changed)
        try:
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(changed.wait(), timeout)
        finally:
            self._waiters.discard(changed)
