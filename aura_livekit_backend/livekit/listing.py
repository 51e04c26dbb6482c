"""Every active room at once: LiveKit's only way to list, shared and reused per worker.

LiveKit has no paging, so every page of ``GET /rooms`` would list every room again.
A worker keeps one :class:`RoomSnapshot` for a moment (``AURA_ROOM_LIST_CACHE_SECONDS``),
shares a listing in flight with every caller meanwhile, and drops both when a change
is made through it. A snapshot is built — every room converted, sorted, indexed and
encoded, the whole list joined — a slice of ~2 ms at a time, the event loop serving
requests in between: with 10,000 rooms the first build is ~100 ms of CPU, and every
request on the worker would wait behind it. Rooms unchanged since the last listing
keep their conversion and encoding, so later builds cost a tenth of that.

Between listings, what LiveKit's events say (a room started or finished, participants
joined or left) is *learnt*: the snapshot is replaced by a copy that says so, at
once. LiveKit stays the authority: the next listing replaces whatever was learnt,
except what was learnt while it was in flight (LiveKit may have answered before
that happened), which is learnt again on top of it.
"""

from __future__ import annotations

import asyncio
import bisect
import dataclasses
import itertools
import time
from collections.abc import Awaitable, Callable, Iterable, Iterator, Sequence
from typing import Any, TypeVar

from livekit import api

from .metadata import proto_position, room_info
from .models import RoomInfo, RoomPage, room_position

__all__ = ["RoomEncoder", "RoomSnapshot", "SharedListing"]

T = TypeVar("T")

#: How a listing writes one room as JSON (the service's: the API's ``RoomReply``).
RoomEncoder = Callable[[RoomInfo], bytes]

_versions = itertools.count(1)
#: A snapshot is built this many rooms at a time, and gives the event loop a turn
#: whenever it has worked ``_SLICE_SECONDS`` since the last.
_STEP = 64
_SLICE_SECONDS = 0.002
#: Lessons kept for a snapshot nobody reads; past this it is dropped instead.
_MOST_UNAPPLIED = 10_000


@dataclasses.dataclass(frozen=True, slots=True)
class _Started:
    """A room started (a room of its name and sid listed already stays as listed)."""

    room: RoomInfo


@dataclasses.dataclass(frozen=True, slots=True)
class _Created:
    """LiveKit's answer to a room created through this worker: its latest word on the
    room, which replaces whatever of that name is listed."""

    room: RoomInfo


@dataclasses.dataclass(frozen=True, slots=True)
class _Facts:
    """The service's facts of a listed room changed (through another worker): its
    topic, description, limit and metadata are ``room``'s, its participants as listed."""

    room: RoomInfo


@dataclasses.dataclass(frozen=True, slots=True)
class _Finished:
    """The room ``name`` closed (only the one with ``sid``, when given)."""

    name: str
    sid: str | None


@dataclasses.dataclass(frozen=True, slots=True)
class _Participants:
    """The room ``name`` (only the one with ``sid``, when given) has ``count`` participants."""

    name: str
    count: int
    sid: str | None


_Change = _Started | _Created | _Facts | _Finished | _Participants

#: A room's protobuf bytes → its RoomInfo and encoding, carried from snapshot to snapshot.
_Known = dict[bytes, tuple[RoomInfo, bytes]]


class RoomSnapshot:
    """Every active room at one moment, oldest first. Never changes once made.

    Built from LiveKit's answer a slice at a time (see :class:`SharedListing`); what the
    listing learns from LiveKit's events makes a new snapshot, with a new
    :attr:`version`, and leaves this one as it was.
    """

    _json: bytes | None

    def __init__(
        self, rooms: Iterable[api.Room] = (), *, encode: RoomEncoder | None = None
    ) -> None:
        """Take LiveKit's rooms (any order): convert, sort, index and, with ``encode``,
        encode every one, at once (~100 ms with 10,000 rooms)."""
        for _ in self._steps(list(rooms), encode, {}, {}):
            pass

    def _steps(
        self, rooms: list[api.Room], encode: RoomEncoder | None, known: _Known, now: _Known
    ) -> Iterator[None]:
        """Fill this snapshot with ``rooms``, pausing (``yield``) every few rooms.

        What ``known`` (from the last snapshot) says about a room unchanged since is
        reused; ``now`` is filled with what is known after this one.
        """
        infos: list[RoomInfo] = []
        keys: list[tuple[int, str]] = []
        encoded: list[bytes] = []
        for start in range(0, len(rooms), _STEP):
            for room in rooms[start : start + _STEP]:
                # The room's own bytes say whether it changed: serializing is faster than
                # reading its fields, and 10,000 conversions and encodings (~100 ms)
                # become the few rooms that changed since the last listing.
                wire = room.SerializeToString()
                seen = known.get(wire)
                if seen is None:
                    info = room_info(room)
                    seen = (info, encode(info) if encode is not None else b"")
                now[wire] = seen
                infos.append(seen[0])
                encoded.append(seen[1])
                keys.append(proto_position(room))
            yield
        # Sorting indices by a list of plain tuples: several times faster than sorting
        # the protobuf messages with a key that reads their fields (~2 ms for 10,000).
        order = sorted(range(len(keys)), key=keys.__getitem__)
        # Each a millisecond or so for 10,000 rooms: a pause after each.
        yield
        infos = [infos[index] for index in order]
        yield
        keys = [keys[index] for index in order]
        yield
        encoded = [encoded[index] for index in order]
        yield
        where = {position[1]: position for position in keys}
        yield
        self._fill(infos, keys, encoded if encode is not None else None, encode, where)
        if encode is not None:
            self.json()  # the whole list, joined here once (2.6 MB for 10,000 rooms)

    def _fill(
        self,
        infos: list[RoomInfo],
        positions: list[tuple[int, str]],
        encoded: list[bytes] | None,
        encode: RoomEncoder | None,
        where: dict[str, tuple[int, str]] | None = None,
    ) -> None:
        self._infos, self._positions = infos, positions
        self._where = where if where is not None else {p[1]: p for p in positions}
        self._encode, self._encoded = encode, encoded
        self._json = None
        self._memo: dict[str, Any] = {}
        #: Unique to this snapshot in this process: what was derived from it stays valid.
        self.version = next(_versions)

    @property
    def total(self) -> int:
        """How many rooms are active."""
        return len(self._infos)

    @property
    def rooms(self) -> list[RoomInfo]:
        """Every room, oldest first."""
        return list(self._infos)

    def room_at(self, index: int) -> RoomInfo:
        """The room at ``index`` (0: the oldest)."""
        return self._infos[index]

    def named(self, name: str) -> RoomInfo | None:
        """The room called ``name``, if it is in this snapshot."""
        position = self._where.get(name)
        if position is None:
            return None
        return self._infos[bisect.bisect_left(self._positions, position)]

    def start_after(self, after: tuple[int, str] | None) -> int:
        """The index of the first room after position ``after`` (0 for None)."""
        return bisect.bisect_right(self._positions, after) if after else 0

    def page(self, *, limit: int | None = None, after: tuple[int, str] | None = None) -> RoomPage:
        """``limit`` rooms after position ``after`` (all when ``limit`` is None)."""
        start = self.start_after(after)
        end = self.total if limit is None else min(self.total, start + limit)
        return RoomPage(self.total, self._infos[start:end], end < self.total)

    def json(self, start: int = 0, end: int | None = None) -> bytes:
        """Rooms ``start`` to ``end`` (all by default) as a JSON array, each room as the
        listing's encoder writes it (the service's: the API's ``RoomReply``).

        Each room is encoded once per snapshot, and the whole list joined once: an
        answer with every room hands out the same bytes every time.
        """
        if self._encoded is None:
            raise RuntimeError("this listing was made without a RoomEncoder")
        end = self.total if end is None else end
        whole = start == 0 and end >= self.total
        if whole and self._json is not None:
            return self._json
        joined = b"".join((b"[", b",".join(self._encoded[start:end]), b"]"))
        if whole:
            self._json = joined
        return joined

    def memo(self, key: str, derive: Callable[[RoomSnapshot], T]) -> T:
        """``derive(self)``, computed once per snapshot and kept under ``key``."""
        if key not in self._memo:
            self._memo[key] = derive(self)
        value: T = self._memo[key]
        return value

    def _learnt(self, changes: Sequence[_Change]) -> RoomSnapshot:
        """A copy that knows ``changes`` too (this one if none changes anything).

        Copies of the lists (C speed: well under a millisecond for 10,000 rooms), then
        each change in place: a bisect, an insert or delete, one room re-encoded.
        """
        infos, positions, where = list(self._infos), list(self._positions), dict(self._where)
        encoded = list(self._encoded) if self._encoded is not None else None
        changed = False

        def index_of(name: str, sid: str | None) -> int | None:
            position = where.get(name)
            if position is None:
                return None
            index = bisect.bisect_left(positions, position)
            return None if sid is not None and infos[index].sid != sid else index

        def drop(index: int) -> None:
            del where[infos[index].name], infos[index], positions[index]
            if encoded is not None:
                del encoded[index]

        for change in changes:
            if isinstance(change, _Started | _Created):
                room = change.room
                old = index_of(room.name, None)
                listed = old is not None and infos[old].sid == room.sid
                if listed and isinstance(change, _Started):
                    # Listed already: the listing asked LiveKit after the room began,
                    # so its word (participants, metadata) is as new as the event's.
                    continue
                if old is not None:
                    drop(old)
                position = room_position(room)
                index = bisect.bisect_left(positions, position)
                infos.insert(index, room)
                positions.insert(index, position)
                where[room.name] = position
                if encoded is not None and self._encode is not None:
                    encoded.insert(index, self._encode(room))
                changed = True
            elif isinstance(change, _Facts):
                found = index_of(change.room.name, change.room.sid)
                if found is not None:
                    listed_room = infos[found]
                    room = dataclasses.replace(
                        change.room, num_participants=listed_room.num_participants
                    )
                    if room != listed_room:
                        infos[found] = room
                        if encoded is not None and self._encode is not None:
                            encoded[found] = self._encode(room)
                        changed = True
            elif isinstance(change, _Finished):
                found = index_of(change.name, change.sid)
                if found is not None:
                    drop(found)
                    changed = True
            else:
                found = index_of(change.name, change.sid)
                if found is not None and infos[found].num_participants != change.count:
                    room = dataclasses.replace(infos[found], num_participants=change.count)
                    infos[found] = room
                    if encoded is not None and self._encode is not None:
                        encoded[found] = self._encode(room)
                    changed = True
        if not changed:
            return self
        made = RoomSnapshot.__new__(RoomSnapshot)
        # Joined on first use of the whole list.
        made._fill(infos, positions, encoded, self._encode, where)
        return made


class SharedListing:
    """One worker's reused listing of every room."""

    def __init__(
        self,
        list_every_room: Callable[[], Awaitable[list[api.Room]]],
        *,
        keep_seconds: float,
        encode: RoomEncoder | None = None,
    ) -> None:
        """List with ``list_every_room``; reuse an answer for ``keep_seconds``; write
        each room as JSON with ``encode`` (see :meth:`RoomSnapshot.json`)."""
        self._list = list_every_room
        self._keep = keep_seconds
        self._encode = encode
        self._snapshot: tuple[float, RoomSnapshot] | None = None
        # The ListRooms call in flight, shared by every caller meanwhile.
        self._call: asyncio.Future[RoomSnapshot] | None = None
        # What was learnt and not yet applied to the snapshot kept.
        self._unapplied: list[_Change] = []
        # What was learnt since that call began: learnt again on top of its answer.
        self._learning: list[_Change] | None = None
        # Each room of the last listing, converted and encoded: reused while unchanged.
        self._known: _Known = {}
        self._generation = 0

    async def snapshot(self) -> RoomSnapshot:
        """Every room now, or as of about ``keep_seconds`` ago.

        A snapshot past ``keep_seconds`` is still answered while a fresh one is taken in
        the background (for one more ``keep_seconds`` at most): with 10,000 rooms the
        listing takes tens of milliseconds, and no caller should wait for it that a
        moment-old answer serves as well. A failed refresh drops the snapshot, so the
        next caller waits and hears the failure.
        """
        kept = self._kept()
        if kept is not None:
            age = time.monotonic() - kept[0]
            if age < self._keep:
                return kept[1]
            if age < 2 * self._keep:
                self._refresh()
                return kept[1]
        return await asyncio.shield(self._refresh())

    def learn_started(self, room: RoomInfo) -> None:
        """LiveKit says ``room`` started: it joins the snapshot in its place by age.

        A room of that name and sid already listed stays as listed: the listing asked
        LiveKit after the room began, so it is no older than the event (a created
        room's event, learnt a moment late, must not undo a join listed since). A room
        of that name with another sid (a new room took the name) is replaced.

        Every ``learn_*`` call is O(1) here; the snapshot is copied once
        for all the changes learnt since, when next read (well under a millisecond
        for 10,000 rooms, at C speed, plus one room encoded per change).
        """
        self._learn(_Started(room))

    def learn_created(self, room: RoomInfo) -> None:
        """LiveKit answered a room created through this worker with ``room``: it replaces
        the room of its name, or joins the snapshot in its place by age.

        Learnt rather than listed again (as are updates, :meth:`learn_facts`, and
        closes): dropping the snapshot instead made every reader on the worker wait for
        a whole listing after each change (~100 ms with 10,000 rooms), and a listing in
        flight still gets the change on top. (Learnt on top of a listing in flight, it
        can show a room closed within those milliseconds until the next listing.)
        """
        self._learn(_Created(room))

    def learn_facts(self, room: RoomInfo) -> None:
        """The service changed a room's facts (UpdateRoomMetadata's answer, here or in
        another worker): the listed room of ``room``'s name and sid takes its topic,
        description, limit and metadata, and keeps its participant count (the answer's
        may be older than what the listing or a later event says). A room not listed
        stays unlisted. Callers order updates (:meth:`Rooms.learn_facts`).
        """
        self._learn(_Facts(room))

    def learn_finished(self, name: str, sid: str | None = None) -> None:
        """LiveKit says the room ``name`` closed: it leaves the snapshot.

        With ``sid``, only the room of that sid does (a new room may have taken the name).
        """
        self._learn(_Finished(name, sid))

    def learn_participants(self, name: str, count: int, sid: str | None = None) -> None:
        """LiveKit says the room ``name`` (of ``sid``, when given) has ``count`` participants."""
        self._learn(_Participants(name, count, sid))

    def _learn(self, change: _Change) -> None:
        # Only noted here: a burst of events costs one copy of the snapshot, when it
        # is next read, not one each.
        if self._snapshot is not None:
            self._unapplied.append(change)
            if len(self._unapplied) > _MOST_UNAPPLIED:
                # Nobody has read for a long while: the next reader lists afresh
                # rather than this list growing without end.
                self._snapshot, self._unapplied = None, []
        if self._learning is not None:
            self._learning.append(change)

    def _kept(self) -> tuple[float, RoomSnapshot] | None:
        """The snapshot kept, with everything learnt since it was made."""
        kept = self._snapshot
        if kept is not None and self._unapplied:
            # Its age stays: LiveKit is asked again on the usual schedule.
            kept = self._snapshot = (kept[0], kept[1]._learnt(self._unapplied))
            self._unapplied = []
        return kept

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
        """A change may have been made that nobody can tell (a call failed or was
        cancelled): drop the snapshot, and do not keep one in flight."""
        self._snapshot = None
        self._unapplied = []
        self._generation += 1

    def close(self) -> None:
        """Cancel a listing in flight (the worker is stopping)."""
        if self._call is not None:
            self._call.cancel()

    async def _take(self) -> RoomSnapshot:
        generation = self._generation
        learning: list[_Change] = []
        self._learning = learning
        try:
            rooms = await self._list()
            snapshot, self._known = await _build(rooms, self._encode, self._known)
        finally:
            self._learning = None
        if learning:
            snapshot = snapshot._learnt(learning)
        if generation == self._generation:  # no change through us meanwhile
            self._snapshot = (time.monotonic(), snapshot)
            self._unapplied = []  # learnt before the call began: LiveKit's answer knows
        return snapshot

    def _finished(self, call: asyncio.Future[RoomSnapshot]) -> None:
        self._call = None
        if not call.cancelled() and call.exception() is not None:
            # Retrieved (every caller may have gone), and never served stale after it.
            self._snapshot = None
            self._unapplied = []


async def _build(
    rooms: list[api.Room], encode: RoomEncoder | None, known: _Known
) -> tuple[RoomSnapshot, _Known]:
    """A snapshot of ``rooms``, built on the event loop a slice at a time.

    Every ``_SLICE_SECONDS`` of work the loop gets a turn: with 10,000 rooms the first
    snapshot is ~100 ms of CPU, and no request should wait behind all of it. (A thread
    would not do: Python code in it holds the GIL, and the loop, waiting for the GIL
    after each system call, is slowed for the whole build.)
    """
    snapshot = RoomSnapshot.__new__(RoomSnapshot)
    now: _Known = {}
    steps = snapshot._steps(rooms, encode, known, now)
    slice_ends = time.perf_counter() + _SLICE_SECONDS
    for _ in steps:
        if time.perf_counter() >= slice_ends:
            await asyncio.sleep(0)
            slice_ends = time.perf_counter() + _SLICE_SECONDS
    return snapshot, now
