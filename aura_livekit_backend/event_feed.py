"""One worker's view of the event log: pages read back, and live entries fanned out.

Every worker runs ONE :class:`EventFeed` task that follows the log (``read`` then
``wait``, from the position it has reached) and hands each new entry to the streams
that follow it — every SSE client of the worker, every plugin loop over
``ctx.events.follow(...)``. However many clients watch, the log is read once per
worker.

A stream first catches up from the log itself, then joins the feed: it joins only
once it has read up to the feed's position, and the feed hands it every entry past
that position, so there is no gap at the seam; entries it already has are skipped
by position, so there is no duplicate either.

Each stream buffers at most ``buffer`` entries. The feed never waits for a stream:
one whose buffer is full (a client that stopped reading, a plugin loop that is too
slow) is dropped from the feed at once and counted. The stream itself is not lost:
its next read catches up from the log again, from where it was, and joins the
feed again once it has caught up. A client that stopped reading altogether is the
endpoint's to disconnect (``AURA_EVENTS_SEND_TIMEOUT``).
"""

from __future__ import annotations

import asyncio
import logging
import time
import weakref
from collections import deque
from collections.abc import Collection, Iterable
from dataclasses import dataclass
from types import TracebackType
from typing import TYPE_CHECKING

from .eventlog import EventLog, EventLogUnavailable, LoggedEvent

if TYPE_CHECKING:
    from .metrics import Metrics

__all__ = ["EventFeed", "EventFilter", "EventPage", "FeedStream", "NoEventLog"]

logger = logging.getLogger("aura_livekit_backend.events")

#: Entries the feed (and a stream catching up) reads from the log at once.
READ_BATCH = 500
#: Seconds one ``wait`` on the log may last before the feed looks again.
WAIT_SECONDS = 5.0
#: Entries one page may scan past while its filters match nothing: a bound on its time.
MAX_SCAN = 10_000
#: Seconds between two warnings that the log cannot be read.
WARN_EVERY = 10.0
#: Seconds the feed waits before reading an unavailable log again (doubling up to the max).
RETRY_FIRST, RETRY_MAX = 0.1, 2.0


@dataclass(frozen=True, slots=True)
class EventFilter:
    """Which entries a reader wants: by room and by event name (exact, or a prefix)."""

    #: Room names; empty: every entry, about a room or not.
    rooms: frozenset[str] = frozenset()
    #: Exact event names; with ``prefixes`` empty too: every name.
    names: frozenset[str] = frozenset()
    #: Name prefixes, each ending in ``.`` (``livekit.participant.``).
    prefixes: tuple[str, ...] = ()

    @classmethod
    def of(cls, rooms: Iterable[str] = (), names: Iterable[str] = ()) -> EventFilter:
        """A filter from room names and event names, where a name ending in ``.`` is a prefix."""
        names = set(names)
        return cls(
            frozenset(rooms),
            frozenset(name for name in names if not name.endswith(".")),
            tuple(sorted(name for name in names if name.endswith("."))),
        )

    @property
    def everything(self) -> bool:
        """True when nothing is filtered out."""
        return not (self.rooms or self.names or self.prefixes)

    def matches(self, entry: LoggedEvent) -> bool:
        """Whether ``entry`` passes."""
        if self.rooms and entry.room not in self.rooms:
            return False
        if not (self.names or self.prefixes):
            return True
        return entry.name in self.names or entry.name.startswith(self.prefixes)


@dataclass(frozen=True, slots=True)
class EventPage:
    """One page of the log, as ``ctx.events.read`` answers it."""

    #: The entries that matched, oldest first (at most ``limit``).
    events: list[LoggedEvent]
    #: Pass as ``after`` for the next page: the last position this page looked at
    #: (past entries the filters skipped), or ``after`` itself when there was nothing new.
    next: int


class EventFeed:
    """One worker's follower of the log (``ctx.events``); see the module's docstring."""

    def __init__(
        self,
        log: EventLog,
        *,
        buffer: int = 1000,
        metrics: Metrics | None = None,
        read_batch: int = READ_BATCH,
        wait_seconds: float = WAIT_SECONDS,
    ) -> None:
        """Follow ``log`` once started; each stream buffers at most ``buffer`` entries."""
        self._log = log
        self._buffer = buffer
        self._metrics = metrics
        self._read_batch = read_batch
        self._wait_seconds = wait_seconds
        #: The position the feed has read up to; None until it knows the log's end.
        self.position: int | None = None
        self._task: asyncio.Task[None] | None = None
        self._stopped = False
        # Weak: a stream its owner forgot (a loop left with `break`) leaves the feed with
        # its last reference, freed at once (a stream is in no reference cycle, so no
        # collector run is needed). One still referenced but never read again (kept by a
        # stored traceback, say) is dropped when its buffer fills, and never rejoins.
        self._streams: weakref.WeakSet[FeedStream] = weakref.WeakSet()
        self._warned = float("-inf")

    # -- the worker's task ---------------------------------------------------------

    @property
    def running(self) -> bool:
        """True while the feed's task follows the log."""
        return self._task is not None and not self._stopped

    @property
    def stopped(self) -> bool:
        """True once :meth:`stop` was called: every stream has ended."""
        return self._stopped

    @property
    def live(self) -> bool:
        """True when streams can join the feed: it runs and knows its position."""
        return self.running and self.position is not None

    def start(self) -> None:
        """Start following the log, from its newest entry (in the worker's loop)."""
        if self._task is None and not self._stopped:
            self._task = asyncio.get_running_loop().create_task(
                self._follow(), name="aura-event-feed"
            )

    async def stop(self) -> None:
        """Stop following and end every stream (their loops finish); safe to call twice."""
        self._stopped = True
        for stream in list(self._streams):
            stream._end()
        self._streams.clear()
        task, self._task = self._task, None
        # Cancelled again until done: the Redis log bounds its calls with asyncio.wait_for,
        # which before Python 3.12 swallows a cancellation that arrives as the call
        # completes (the log's `wait` no longer does).
        while task is not None and not task.done():
            task.cancel()
            await asyncio.wait({task}, timeout=0.1)
        if task is not None and not task.cancelled() and task.exception() is not None:
            logger.error("the event feed had failed", exc_info=task.exception())

    async def _follow(self) -> None:
        retry = RETRY_FIRST
        while not self._stopped:
            try:
                if self.position is None:
                    self.position = await self._log.last_position()
                    self._set_lag(0)
                entries = await self._log.read(self.position, self._read_batch)
                if entries:
                    self._fan_out(entries)
                    if len(entries) == self._read_batch:
                        # Behind: say by how much, and read on at once.
                        newest = await self._log.last_position()
                        self._set_lag(max(0, newest - (self.position or 0)))
                        continue
                else:
                    await self._notice_a_reset()
                self._set_lag(0)
                await self._log.wait(self.position, self._wait_seconds)
                retry = RETRY_FIRST
            except EventLogUnavailable as exc:
                self._warn(str(exc))
                await asyncio.sleep(retry)
                retry = min(RETRY_MAX, retry * 2)
            except asyncio.CancelledError:
                raise
            except Exception:
                logger.exception("the event feed failed to read the log; retrying")
                await asyncio.sleep(RETRY_MAX)

    async def _notice_a_reset(self) -> None:
        """Follow the log from its start if its newest entry is behind the feed's
        position: its positions began again (a Redis that lost its counter, before the
        log seeded it), and waiting past the old position would wait for ever. Every
        entry of a log that began again came after the loss, so none is skipped."""
        newest = await self._log.last_position()
        if self.position is None or newest >= self.position:
            return
        logger.warning(
            "event feed: the event log's newest position (%d) is behind the feed's (%d): "
            "its positions began again (a Redis that lost its data?); following it from "
            "its start",
            newest,
            self.position,
        )
        self.position = 0
        for stream in list(self._streams):
            stream.cursor = 0

    def _warn(self, why: str) -> None:
        now = time.monotonic()
        if now - self._warned >= WARN_EVERY:
            self._warned = now
            logger.warning("event feed: the event log cannot be read (%s); retrying", why)

    def _set_lag(self, entries: int) -> None:
        if self._metrics is not None:
            self._metrics.feed_lag(entries)

    def _fan_out(self, entries: list[LoggedEvent]) -> None:
        # No await in here: a stream joining sees the feed either before or after a
        # whole batch, never in the middle of one (the seam depends on it).
        delivered = dropped = 0
        for stream in list(self._streams):
            for entry in entries:
                offered = stream._offer(entry)
                if offered is None:
                    continue
                if not offered:
                    self._streams.discard(stream)
                    dropped += 1
                    break
                delivered += 1
        self.position = entries[-1].position
        if self._metrics is not None:
            self._metrics.events_fanned_out(delivered, dropped)

    def _join(self, stream: FeedStream) -> bool:
        """Add ``stream`` if it has read up to the feed's position (no await between the
        caller's check and this)."""
        if not self.live or self.position is None or stream.cursor < self.position:
            return False
        self._streams.add(stream)
        return True

    def _leave(self, stream: FeedStream) -> None:
        self._streams.discard(stream)

    @property
    def streams(self) -> int:
        """How many streams follow the feed live now."""
        return len(self._streams)

    # -- ctx.events ----------------------------------------------------------------

    async def last_position(self) -> int:
        """The position of the newest entry in the log (0 when it is empty)."""
        return await self._log.last_position()

    async def read(
        self,
        *,
        after: int = 0,
        limit: int = 100,
        rooms: Collection[str] = (),
        names: Collection[str] = (),
    ) -> EventPage:
        """Up to ``limit`` entries past ``after`` that pass the filters, oldest first.

        Scans at most :data:`MAX_SCAN` entries past what it found, so a filter that
        matches nothing answers quickly; ``next`` then says how far it looked.
        Raises :class:`EventLogUnavailable` when the log cannot be read.
        """
        if limit < 1:
            raise ValueError("limit must be at least 1")
        wanted = EventFilter.of(rooms, names)
        found: list[LoggedEvent] = []
        cursor = after
        scanned = 0
        while len(found) < limit and scanned < MAX_SCAN:
            size = limit - len(found) if wanted.everything else max(limit, self._read_batch)
            chunk = await self._log.read(cursor, size)
            for entry in chunk:
                cursor = entry.position
                scanned += 1
                if wanted.matches(entry):
                    found.append(entry)
                    if len(found) == limit:
                        break
            if len(chunk) < size:
                break
        return EventPage(found, cursor)

    def follow(
        self,
        *,
        after: int | None = None,
        rooms: Collection[str] = (),
        names: Collection[str] = (),
    ) -> FeedStream:
        """Every entry past ``after`` (None: from now on) that passes the filters, as
        it is appended, by any worker or replica; see :class:`FeedStream`."""
        return FeedStream(self, after, EventFilter.of(rooms, names), self._buffer)


class FeedStream:
    """Entries in log order: caught up from the log, then live from the feed.

    ``async for entry in stream`` waits for each; :meth:`next` waits at most a given
    time (for heartbeats). The loop ends when the worker stops. Close the stream
    (:meth:`aclose`, or ``async with``) when done; one merely dropped leaves the feed
    with its last reference, and one kept but no longer read leaves it when its buffer
    fills.
    """

    def __init__(
        self, feed: EventFeed, after: int | None, wanted: EventFilter, buffer: int
    ) -> None:
        """Follow ``feed`` past ``after``; use :meth:`EventFeed.follow`."""
        self._feed = feed
        self._log = feed._log
        self._wanted = wanted
        self._limit = buffer
        #: Everything up to this position is accounted for (handed out or filtered out).
        self.cursor: int = after if after is not None else -1
        self._from_now = after is None
        if self._from_now and feed.live and feed.position is not None:
            # "Now" is when follow() was called: what this worker's feed has seen.
            self.cursor, self._from_now = feed.position, False
        self._pending: deque[LoggedEvent] = deque()  # read from the log, not yet handed out
        self._buffer: deque[LoggedEvent] = deque()  # from the feed, not yet handed out
        self._scanned = -1  # the last position the latest catch-up read looked at
        self._joined = False
        self._ended = False
        self._wake = asyncio.Event()
        #: How many times the feed dropped this stream for a full buffer.
        self.dropped = 0

    # -- the feed's side (synchronous) --------------------------------------------

    def _offer(self, entry: LoggedEvent) -> bool | None:
        """Take ``entry``: None if filtered out, False if the buffer is full (the feed
        then drops this stream), True if buffered."""
        if not self._wanted.matches(entry):
            return None
        if len(self._buffer) >= self._limit:
            self._joined = False
            self.dropped += 1
            self._wake.set()
            return False
        self._buffer.append(entry)
        self._wake.set()
        return True

    def _end(self) -> None:
        self._ended = True
        self._joined = False
        self._wake.set()

    # -- the reader's side -----------------------------------------------------------

    def __aiter__(self) -> FeedStream:
        """The stream is its own iterator."""
        return self

    async def __anext__(self) -> LoggedEvent:
        """The next entry, waiting as long as it takes; StopAsyncIteration once the
        worker stops or the stream is closed."""
        while True:
            entry = await self.next(timeout=None)
            if entry is not None:
                return entry

    async def next(self, timeout: float | None = None) -> LoggedEvent | None:
        """The next entry, or None when none came within ``timeout`` seconds.

        Raises StopAsyncIteration once the worker stops or the stream is closed, and
        :class:`EventLogUnavailable` when catching up needs the log and it cannot be
        read. Safe to cancel: an entry is handed out only when this returns it.
        """
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            if self._ended or self._feed.stopped:
                self._end()
                raise StopAsyncIteration
            if self._pending:
                return self._hand_out(self._pending.popleft())
            if self._joined:
                while self._buffer:
                    entry = self._buffer.popleft()
                    if entry.position > self.cursor:
                        return self._hand_out(entry)
                self._wake.clear()
                if self._joined and not self._ended and not await self._sleep(deadline):
                    return None
                continue
            # Not (or no longer) in the feed: the buffer holds only entries from before
            # it was dropped; they are read again from the log, in order.
            self._buffer.clear()
            if self._from_now:
                # No feed to ask (not started yet): the log's newest entry.
                self.cursor = await self._log.last_position()
                self._from_now = False
            if await self._catch_up():
                continue
            if self._feed.live and self._feed._join(self):
                self._joined = True
                continue
            if not self._feed.live:
                # No feed to join (not started, or the log was down when it started):
                # wait on the log directly.
                remaining = self._remaining(deadline)
                if remaining is not None and remaining <= 0:
                    return None
                wait = WAIT_SECONDS if remaining is None else min(remaining, WAIT_SECONDS)
                await self._log.wait(self.cursor, wait)

    async def _catch_up(self) -> bool:
        """Read the next entries past :attr:`cursor` from the log into the pending queue;
        True when it read any (the caller hands them out, then reads on)."""
        known = self._feed.position if self._feed.live else None
        if known is not None and self.cursor >= known:
            return False  # caught up with the feed: join it
        entries = await self._log.read(self.cursor, self._feed._read_batch)
        if not entries:
            if known is not None:
                # The feed read entries up to `known` before this read began, and the
                # log has none past the cursor: they are gone (retention). Skip them.
                self.cursor = max(self.cursor, known)
            return False
        self._pending.extend(entry for entry in entries if self._wanted.matches(entry))
        # Filtered-out entries are accounted for too; handed-out ones move the cursor as
        # they go, so a cancelled reader loses nothing.
        self._scanned = entries[-1].position
        if not self._pending:
            self.cursor = self._scanned
        return True

    def _hand_out(self, entry: LoggedEvent) -> LoggedEvent:
        self.cursor = entry.position
        if not self._pending and self._scanned > self.cursor:
            # The last matching entry of a page: the rest of it was filtered out.
            self.cursor = self._scanned
        return entry

    @staticmethod
    def _remaining(deadline: float | None) -> float | None:
        return None if deadline is None else deadline - time.monotonic()

    async def _sleep(self, deadline: float | None) -> bool:
        """Wait for the feed to wake the stream; False when ``deadline`` passed first."""
        if deadline is None:
            await self._wake.wait()
            return True
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return False
        # A timer that wakes the stream, not asyncio.wait_for: before Python 3.12 that
        # can swallow a cancellation (a client gone) that races the wake-up.
        timer = asyncio.get_running_loop().call_later(remaining, self._wake.set)
        try:
            await self._wake.wait()
        finally:
            timer.cancel()
        return bool(self._buffer) or not self._joined or time.monotonic() < deadline

    async def aclose(self) -> None:
        """Stop following: the feed forgets the stream; iterating ends."""
        self._feed._leave(self)
        self._end()

    async def __aenter__(self) -> FeedStream:
        """``async with ctx.events.follow(...) as stream``: closed on leaving."""
        return self

    async def __aexit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        """Close the stream."""
        await self.aclose()


class NoEventLog:
    """An :class:`EventLog` that is never there: for an app that serves nothing (the
    ``plugins`` listing); every call raises :class:`EventLogUnavailable`."""

    async def open(self) -> None:
        """Nothing to open."""

    async def close(self) -> None:
        """Nothing to close."""

    async def append(self, id: str, name: str, room: str | None, at: float, data: object) -> int:
        """Refuse."""
        raise EventLogUnavailable("this process has no event log")

    async def mark_told(self, id: str) -> bool:
        """Refuse."""
        raise EventLogUnavailable("this process has no event log")

    async def read(self, after: int, limit: int) -> list[LoggedEvent]:
        """Refuse."""
        raise EventLogUnavailable("this process has no event log")

    async def last_position(self) -> int:
        """Refuse."""
        raise EventLogUnavailable("this process has no event log")

    async def wait(self, after: int, timeout: float) -> None:
        """Refuse."""
        raise EventLogUnavailable("this process has no event log")
