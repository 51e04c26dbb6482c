"""Every active room at once: LiveKit's only way to list, shared and reused per worker.

LiveKit has no paging, so every page of ``GET /rooms`` would list every room again.
A worker keeps one :class:`RoomSnapshot` for a moment (``AURA_ROOM_LIST_CACHE_SECONDS``),
shares a listing in flight with every caller meanwhile, and drops both when a change
is made through it. A snapshot turns rooms into :class:`RoomInfo` only when asked,
and keeps what callers derive from it (an encoded JSON reply) for its whole life.
"""

from __future__ import annotations

import asyncio
import bisect
import itertools
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from livekit import api

from .metadata import proto_position, room_info
from .models import RoomInfo, RoomPage

__all__ = ["RoomSnapshot", "SharedListing"]

T = TypeVar("T")

_versions = itertools.count(1)


class RoomSnapshot:
    """Every active room at one moment, oldest first. Never changes once made."""

    def __init__(self, rooms: list[api.Room]) -> None:
        """Take LiveKit's rooms (any order)."""
        self._rooms = sorted(rooms, key=proto_position)
        self._positions = [proto_position(room) for room in self._rooms]
        # Converted on first use, one by one: a page of 100 converts 100 rooms.
        self._infos: list[RoomInfo | None] = [None] * len(self._rooms)
        self._memo: dict[str, Any] = {}
        #: Unique to this snapshot in this process: what was derived from it stays valid.
        self.version = next(_versions)

    @property
    def total(self) -> int:
        """How many rooms are active."""
        return len(self._rooms)

    @property
    def rooms(self) -> list[RoomInfo]:
        """Every room, oldest first."""
        return [self.room_at(index) for index in range(len(self._rooms))]

    def room_at(self, index: int) -> RoomInfo:
        """The room at ``index`` (0: the oldest), converted once."""
        info = self._infos[index]
        if info is None:
            info = self._infos[index] = room_info(self._rooms[index])
        return info

    def start_after(self, after: tuple[int, str] | None) -> int:
        """The index of the first room after position ``after`` (0 for None)."""
        return bisect.bisect_right(self._positions, after) if after else 0

    def page(self, *, limit: int | None = None, after: tuple[int, str] | None = None) -> RoomPage:
        """``limit`` rooms after position ``after`` (all when ``limit`` is None)."""
        start = self.start_after(after)
        end = self.total if limit is None else min(self.total, start + limit)
        # Only the page: metadata parsing is most of the cost with thousands of rooms.
        chosen = [self.room_at(index) for index in range(start, end)]
        return RoomPage(self.total, chosen, end < self.total)

    def memo(self, key: str, derive: Callable[[RoomSnapshot], T]) -> T:
        """``derive(self)``, computed once per snapshot and kept under ``key``."""
        if key not in self._memo:
            self._memo[key] = derive(self)
        value: T = self._memo[key]
        return value


class SharedListing:
    """One worker's reused listing of every room."""

    def __init__(
        self, list_every_room: Callable[[], Awaitable[list[api.Room]]], *, keep_seconds: float
    ) -> None:
        """List with ``list_every_room``; reuse an answer for ``keep_seconds``."""
        self._list = list_every_room
        self._keep = keep_seconds
        self._snapshot: tuple[float, RoomSnapshot] | None = None
        # The ListRooms call in flight, shared by every caller meanwhile.
        self._call: asyncio.Future[RoomSnapshot] | None = None
        self._generation = 0

    async def snapshot(self) -> RoomSnapshot:
        """Every room now, or as of about ``keep_seconds`` ago.

        A snapshot past ``keep_seconds`` is still answered while a fresh one is taken in
        the background (for one more ``keep_seconds`` at most): with 10,000 rooms the
        listing takes tens of milliseconds, and no caller should wait for it that a
        moment-old answer serves as well. A failed refresh drops the snapshot, so the
        next caller waits and hears the failure.
        """
        kept = self._snapshot
        if kept is not None:
            age = time.monotonic() - kept[0]
            if age < self._keep:
                return kept[1]
            if age < 2 * self._keep:
                self._refresh()
                return kept[1]
        return await asyncio.shield(self._refresh())

    def _refresh(self) -> asyncio.Future[RoomSnapshot]:
        """The listing in flight, started if none is."""
        if self._call is None:
            self._call = asyncio.ensure_future(self._take())
            self._call.add_done_callback(self._finished)
        # Callers arriving meanwhile await the same call and share its fate: with a
        # sick LiveKit each waits one timeout, not one for every caller queued ahead.
        # Shielded by them, so a caller that goes away does not cancel it for the others.
        return self._call

    def forget(self) -> None:
        """A change was made: drop the snapshot, and do not keep one in flight."""
        self._snapshot = None
        self._generation += 1

    def close(self) -> None:
        """Cancel a listing in flight (the worker is stopping)."""
        if self._call is not None:
            self._call.cancel()

    async def _take(self) -> RoomSnapshot:
        generation = self._generation
        snapshot = RoomSnapshot(await self._list())
        if generation == self._generation:  # no change through us meanwhile
            self._snapshot = (time.monotonic(), snapshot)
        return snapshot

    def _finished(self, call: asyncio.Future[RoomSnapshot]) -> None:
        self._call = None
        if not call.cancelled() and call.exception() is not None:
            # Retrieved (every caller may have gone), and never served stale after it.
            self._snapshot = None
