"""What the console reads from the event log (``ctx.events``): the recent events, the
live feed relayed as Server-Sent Events, and the history of rooms that ended.

Per worker and bounded: a tail of the newest :data:`TAIL` entries (for the feed page
and each room's recent events), and the history folded from the log as it grows (the
rooms open now and the last :data:`HISTORY_SIZE` that ended). Each page read catches
them up from where they were; nothing is kept in a session or shared between workers,
so every worker answers the same from the same log.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections import OrderedDict, deque
from collections.abc import Mapping, Sequence
from datetime import datetime, timezone
from typing import Any

from sanic import HTTPResponse, Request
from sanic.exceptions import SanicException

from aura_livekit_backend.plugin import (
    ApiError,
    EventLogUnavailable,
    EventStream,
    LoggedEvent,
    PluginContext,
)

from .pages import EndedRoom

__all__ = [
    "HISTORY_SIZE",
    "MAX_NUMBER",
    "TAIL",
    "ConsoleEvents",
    "sse_message",
    "whole_number",
]

#: Newest entries each worker keeps for the feed page and the rooms' recent events.
TAIL = 1000
#: Rooms that ended, kept per worker for the history page.
HISTORY_SIZE = 500
#: Open rooms the history remembers (their start and peak) until they end.
OPEN_ROOMS = 20_000
#: Entries read from the log at once.
BATCH = 500
#: Entries one page request may fold into the history at most (the rest: next time).
FOLD_BUDGET = 20_000
#: Seconds between two comments on a quiet stream (proxies close silent connections).
HEARTBEAT_SECONDS = 15.0
#: Seconds one write to a stream's client may take before the client counts as gone.
SEND_TIMEOUT = 10.0
#: Seconds a write may take once the worker stops (then the stream ends at once).
STOP_SEND_TIMEOUT = 1.0
#: The most participants a room's count may say (LiveKit's is a uint32).
MAX_COUNT = 2**32 - 1
#: The largest number a client may give (a signed 64-bit integer, as the logs keep).
MAX_NUMBER = 2**63 - 1

_STARTS = ("livekit.room.started", "aura.room.created")
_ENDS = ("livekit.room.finished", "aura.room.deleted")
_JOINS = ("livekit.participant.joined",)
_LEAVES = ("livekit.participant.left", "livekit.participant.connection_aborted")


def sse_message(entry: LoggedEvent) -> str:
    """One Server-Sent Event for ``entry``: its position as the id, JSON as the data."""
    data = json.dumps(
        {
            "position": entry.position,
            "name": entry.name,
            "room": entry.room,
            "at": entry.at,
            "data": entry.data,
        },
        ensure_ascii=False,
        separators=(",", ":"),
        default=str,
    )
    # JSON has no raw newline, so the data is one line.
    return f"id: {entry.position}\ndata: {data}\n\n"


def _room_of(data: Mapping[str, Any]) -> Mapping[str, Any]:
    room = data.get("room")
    return room if isinstance(room, Mapping) else {}


def _seconds(value: Any) -> float | None:
    """Unix seconds from an ISO 8601 text, or None (for a time a page cannot show
    either: before year 1 or after 9999 once in UTC)."""
    if not isinstance(value, str):
        return None
    try:
        seconds = datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()
        datetime.fromtimestamp(seconds, tz=timezone.utc)
    except (ValueError, OverflowError, OSError):
        return None
    return seconds


def _count(value: Any) -> int:
    """A count of participants from an event's room, or 0 when it holds none.

    The log is written by other code too (plugins, other versions): an entry the
    history cannot read must count for nothing, not stop the history at it.
    """
    if isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= MAX_COUNT:
        return value
    return 0


class _Relay:
    """One open stream: its request (to drop the connection) and the log's stream."""

    def __init__(self, request: Request, stream: EventStream) -> None:
        self.request = request
        self.stream = stream
        #: True while a write waits for the client to read.
        self.sending = False

    def abort(self) -> None:
        """Drop the connection, with what the client had not read yet."""
        transport: Any = self.request.transport  # asyncio's, which Sanic types narrowly
        transport.abort()


class ConsoleEvents:
    """The console's view of ``ctx.events`` for one worker."""

    def __init__(self, ctx: PluginContext) -> None:
        """Read through ``ctx.events`` (handed out per app, used once the worker serves)."""
        self._ctx = ctx
        self._tail: deque[LoggedEvent] = deque(maxlen=TAIL)
        self._tail_at: int | None = None
        self._folded_at = 0
        self._open: OrderedDict[str, dict[str, Any]] = OrderedDict()
        self._ended: deque[EndedRoom] = deque(maxlen=HISTORY_SIZE)
        self._ends_seen: OrderedDict[tuple[str, str], None] = OrderedDict()
        self._lock = asyncio.Lock()
        self._relays: set[_Relay] = set()
        self._stopping = False

    # -- the tail ----------------------------------------------------------------

    async def _catch_up_tail(self) -> None:
        events = self._ctx.events
        if self._tail_at is None:
            last = await events.last_position()
            # SQLite's positions count entries; Redis's may leap, then this shows less.
            self._tail_at = max(0, last - TAIL)
        for _ in range(FOLD_BUDGET // BATCH):
            page = await events.read(after=self._tail_at, limit=BATCH)
            self._tail.extend(page.events)
            self._tail_at = page.next
            if len(page.events) < BATCH:
                return
        # Far behind (a burst since the last look): the newest are what a tail shows.
        self._tail.clear()
        self._tail_at = max(self._tail_at, await events.last_position() - TAIL)

    async def recent(self, *, room: str | None = None, limit: int = 50) -> list[LoggedEvent] | None:
        """The newest ``limit`` events (about ``room``), newest first; None when the log
        cannot be read."""
        try:
            async with self._lock:
                await self._catch_up_tail()
        except EventLogUnavailable:
            return None
        found = []
        for entry in reversed(self._tail):
            if room is None or entry.room == room:
                found.append(entry)
                if len(found) == limit:
                    break
        return found

    async def last_position(self) -> int:
        """The newest position in the log (0 when it is empty or cannot be read)."""
        try:
            return await self._ctx.events.last_position()
        except EventLogUnavailable:
            return 0

    # -- the live feed -----------------------------------------------------------

    async def relay(self, request: Request, *, until: float) -> HTTPResponse | None:
        """Stream the log to an EventSource, from ``Last-Event-ID`` (a reconnection) or
        ``?after=`` (the page's newest), until the session ends at ``until`` or the
        worker stops (:meth:`stop`)."""
        after = _position(request.headers.get("last-event-id") or request.args.get("after"))
        stream = self._ctx.events.follow(after=after)
        response: HTTPResponse | None = await request.respond(
            content_type="text/event-stream; charset=utf-8",
            headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
        )
        assert response is not None  # respond() on a fresh request always answers
        relay = _Relay(request, stream)

        async def send(text: str, *, end: bool = False) -> None:
            relay.sending = True
            try:
                # A stopping worker waits for no slow reader (the browser reconnects).
                limit = STOP_SEND_TIMEOUT if self._stopping else SEND_TIMEOUT
                await asyncio.wait_for(response.send(text, end_stream=end), limit)
            finally:
                relay.sending = False

        self._relays.add(relay)
        try:
            async with stream:
                if self._stopping:
                    await stream.aclose()  # asked for while the worker stops: ends at once
                # retry: how long the browser waits before it reconnects on its own.
                await send("retry: 2000\n: connected\n\n")
                while time.time() < until:
                    try:
                        entry = await stream.next(
                            timeout=min(HEARTBEAT_SECONDS, until - time.time())
                        )
                    except StopAsyncIteration:
                        break  # the worker is stopping
                    except EventLogUnavailable:
                        await send(": the event log is unavailable; retrying\n\n")
                        await asyncio.sleep(1)
                        continue
                    await send(sse_message(entry) if entry is not None else ": heartbeat\n\n")
            await send("", end=True)
        except asyncio.TimeoutError:
            # It stopped reading. Ending the answer would wait for it as long (Sanic's
            # own end of a stream has no time limit): drop the connection instead.
            relay.abort()
        except (ConnectionError, SanicException):
            pass  # it went away: nothing more to send
        finally:
            self._relays.discard(relay)
        # Ended, or dropped: Sanic has nothing left to send (and must not wait to).
        return None

    async def stop(self) -> None:
        """End every open stream, for a worker that stops (``before_server_stop``):
        Sanic then waits for none of them. A stream blocked on a client that does not
        read is dropped at once; the others end their answers cleanly, each write
        from now on allowed :data:`STOP_SEND_TIMEOUT` seconds."""
        self._stopping = True
        for relay in list(self._relays):
            if relay.sending:
                relay.abort()
            await relay.stream.aclose()

    # -- history -----------------------------------------------------------------

    async def ended_rooms(self) -> tuple[Sequence[EndedRoom], bool] | None:
        """Rooms that ended, newest first, and whether the history has read the whole
        log yet; None when the log cannot be read."""
        try:
            async with self._lock:
                caught_up = await self._fold()
        except EventLogUnavailable:
            return None
        return list(reversed(self._ended)), caught_up

    async def _fold(self) -> bool:
        events = self._ctx.events
        for _ in range(FOLD_BUDGET // BATCH):
            page = await events.read(
                after=self._folded_at,
                limit=BATCH,
                names=(*_STARTS, *_ENDS, *_JOINS, *_LEAVES),
            )
            for entry in page.events:
                self._apply(entry)
            self._folded_at = page.next
            if len(page.events) < BATCH and page.next >= await events.last_position():
                return True
        return False

    def _apply(self, entry: LoggedEvent) -> None:
        name = entry.room
        if not name:
            return
        room = _room_of(entry.data)
        sid = str(room.get("sid", ""))
        if entry.name in _STARTS:
            if name not in self._open:
                if len(self._open) >= OPEN_ROOMS:
                    self._open.popitem(last=False)  # the longest open goes first
                self._open[name] = {
                    "sid": sid,
                    "topic": str(room.get("topic") or name),
                    "started": _seconds(room.get("created_at")) or entry.at,
                    "count": 0,
                    "peak": _count(room.get("num_participants")),
                }
            return
        record = self._open.get(name)
        if entry.name in _JOINS or entry.name in _LEAVES:
            if record is None:
                record = self._open[name] = {
                    "sid": sid,
                    "topic": str(room.get("topic") or name),
                    "started": _seconds(room.get("created_at")),
                    "count": 0,
                    "peak": 0,
                }
            step = 1 if entry.name in _JOINS else -1
            record["count"] = max(0, record["count"] + step)
            # LiveKit's own count rides on the event too: a join missed is still seen.
            counted = _count(room.get("num_participants"))
            record["peak"] = max(record["peak"], record["count"], counted)
            return
        # An end: aura.room.deleted and livekit.room.finished both tell of one close.
        key = (name, sid)
        if key in self._ends_seen:
            return
        self._ends_seen[key] = None
        if len(self._ends_seen) > 2 * HISTORY_SIZE:
            self._ends_seen.popitem(last=False)
        record = self._open.pop(name, None) or {}
        self._ended.append(
            EndedRoom(
                name=name,
                topic=str(record.get("topic") or room.get("topic") or name),
                started=record.get("started") or _seconds(room.get("created_at")),
                ended=entry.at,
                peak=max(int(record.get("peak", 0)), _count(room.get("num_participants"))),
                how=entry.name,
            )
        )


def _position(text: str | None) -> int | None:
    """A position from ``Last-Event-ID`` or ``?after=``; None (from now on) when absent."""
    if text is None or text == "":
        return None
    position = whole_number(text)
    if position is None:
        raise ApiError(400, "after: must be a position (digits)")
    return position


def whole_number(text: str) -> int | None:
    """``text`` as a number from 0 to 2**63 - 1 (a position, a time in ms), or None.

    ASCII digits only: ``str.isdigit`` also takes "²", which ``int`` refuses, and
    ``int`` takes other scripts' digits ("٣"), which no client of ours sends.
    """
    if not (text.isascii() and text.isdigit()) or len(text) > len(str(MAX_NUMBER)):
        return None
    number = int(text)
    return number if number <= MAX_NUMBER else None
