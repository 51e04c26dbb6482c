"""The per-worker feed: pages, filters, the catch-up/live seam, bounded buffers.

Against an in-memory log that keeps the :class:`EventLog` contract (positions that only
grow, ``wait`` woken by an append), so each case is exact and fast; the real backends
are exercised by the endpoint and process tests.
"""

from __future__ import annotations

import asyncio
import gc
import logging
from typing import Any

import pytest

from aura_livekit_backend.event_feed import EventFeed, EventFilter, NoEventLog
from aura_livekit_backend.eventlog import EventLogUnavailable, LoggedEvent
from aura_livekit_backend.metrics import Metrics
from aura_livekit_backend.testing.memory_log import MemoryLog


async def add(log: MemoryLog, count: int, name: str = "aura.room.created", room: str = "r") -> None:
    for _ in range(count):
        await log.append(f"e{len(log.entries)}", name, room, 1.0, {"n": len(log.entries)})


async def take(stream: Any, count: int) -> list[int]:
    """Positions of the next ``count`` entries, each within a generous time."""
    got = []
    for _ in range(count):
        entry = await asyncio.wait_for(stream.__anext__(), 10)
        got.append(entry.position)
    return got


async def settle() -> None:
    for _ in range(20):
        await asyncio.sleep(0)


def test_filters_match_rooms_exact_names_and_prefixes() -> None:
    def entry(name: str, room: str | None) -> LoggedEvent:
        return LoggedEvent(1, "x", name, room, 0.0, {})

    everything = EventFilter.of()
    assert everything.everything and everything.matches(entry("a.b.c", None))
    by_room = EventFilter.of(rooms=["r1"])
    assert by_room.matches(entry("a.b.c", "r1"))
    assert not by_room.matches(entry("a.b.c", "r2"))
    assert not by_room.matches(entry("a.b.c", None))
    names = EventFilter.of(names=["livekit.participant.", "aura.room.created"])
    assert names.matches(entry("livekit.participant.joined", None))
    assert names.matches(entry("aura.room.created", None))
    assert not names.matches(entry("aura.room.deleted", None))
    # A prefix is a whole part: "livekit.participant." is not "livekit.participants."
    assert not names.matches(entry("livekit.participants.x", None))
    both = EventFilter.of(rooms=["r1"], names=["aura."])
    assert both.matches(entry("aura.room.created", "r1"))
    assert not both.matches(entry("livekit.room.started", "r1"))


def test_a_page_filters_and_says_where_to_read_on() -> None:
    async def run() -> None:
        log = MemoryLog(step=3)
        await add(log, 4, room="a")
        await add(log, 4, name="livekit.room.started", room="b")
        feed = EventFeed(log)
        page = await feed.read(after=0, limit=3)
        assert [e.position for e in page.events] == [3, 6, 9] and page.next == 9
        page = await feed.read(after=page.next, limit=3)
        assert [e.position for e in page.events] == [12, 15, 18] and page.next == 18
        rest = await feed.read(after=page.next, limit=10)
        assert [e.position for e in rest.events] == [21, 24] and rest.next == 24
        caught_up = await feed.read(after=24, limit=10)
        assert caught_up.events == [] and caught_up.next == 24
        only_b = await feed.read(after=0, limit=10, rooms=["b"])
        assert [e.room for e in only_b.events] == ["b"] * 4 and only_b.next == 24
        # The filters skipped everything: next still moves past what was looked at.
        none = await feed.read(after=0, limit=10, names=["livekit.participant."])
        assert none.events == [] and none.next == 24
        with pytest.raises(ValueError):
            await feed.read(limit=0)

    asyncio.run(run())


def test_follow_catches_up_then_goes_live_without_gap_or_duplicate() -> None:
    async def run() -> None:
        log = MemoryLog()
        await add(log, 5)
        feed = EventFeed(log, read_batch=2)
        feed.start()
        await settle()
        assert feed.position == 5
        stream = feed.follow(after=1)
        # Two read from the log, then entries appended while it catches up.
        assert await take(stream, 2) == [2, 3]
        await add(log, 3)
        assert await take(stream, 5) == [4, 5, 6, 7, 8]
        await add(log, 2)
        assert await take(stream, 2) == [9, 10]
        assert feed.streams == 1
        await stream.aclose()
        assert feed.streams == 0
        await feed.stop()

    asyncio.run(run())


def test_every_interleaving_of_appends_and_catch_up_yields_each_entry_once() -> None:
    async def run() -> None:
        log = MemoryLog(step=2)
        feed = EventFeed(log, read_batch=3)
        feed.start()
        await add(log, 7)
        streams = [feed.follow(after=0), feed.follow(after=4, names=["aura."])]
        got: list[list[int]] = [[], []]

        async def reader(index: int) -> None:
            async for entry in streams[index]:
                got[index].append(entry.position)
                if entry.position == 60:
                    return

        readers = [asyncio.ensure_future(reader(i)) for i in range(2)]
        for _ in range(23):
            await add(log, 1)
            await asyncio.sleep(0)
        await asyncio.wait_for(asyncio.gather(*readers), 10)
        assert got[0] == list(range(2, 61, 2))
        assert got[1] == list(range(6, 61, 2))
        await feed.stop()

    asyncio.run(run())


def test_from_now_sees_only_new_entries_and_filters_apply_live() -> None:
    async def run() -> None:
        log = MemoryLog()
        await add(log, 3)
        feed = EventFeed(log)
        feed.start()
        await settle()
        everything = feed.follow()
        joins = feed.follow(rooms=["r2"], names=["livekit.participant."])
        assert await everything.next(timeout=0.01) is None
        await log.append("j", "livekit.participant.joined", "r2", 1.0, {})
        await log.append("k", "livekit.participant.joined", "r3", 1.0, {})
        await log.append("l", "livekit.room.started", "r2", 1.0, {})
        assert await take(everything, 3) == [4, 5, 6]
        entry = await asyncio.wait_for(joins.__anext__(), 10)
        assert (entry.name, entry.room) == ("livekit.participant.joined", "r2")
        assert await joins.next(timeout=0.01) is None
        await feed.stop()

    asyncio.run(run())


def test_a_full_buffer_drops_the_follower_without_holding_up_the_others() -> None:
    async def run() -> None:
        log = MemoryLog()
        metrics = Metrics()
        feed = EventFeed(log, buffer=3, metrics=metrics)
        feed.start()
        await settle()
        slow, quick = feed.follow(), feed.follow()
        assert await slow.next(timeout=0.01) is None  # both joined the feed
        assert await quick.next(timeout=0.01) is None
        assert feed.streams == 2
        got = []
        for _ in range(10):
            await add(log, 1)
            got += await take(quick, 1)
        assert got == list(range(1, 11))
        # The slow one was dropped at its 4th entry; the feed went on for the other.
        assert feed.streams == 1 and slow.dropped == 1
        dropped = metrics.events_dropped._value.get()
        assert dropped == 1
        # Dropped, not lost: it catches up from the log, in order, and joins again.
        assert await take(slow, 10) == list(range(1, 11))
        await add(log, 1)
        assert await take(slow, 1) == [11]
        assert feed.streams == 2
        await feed.stop()

    asyncio.run(run())


def test_stopping_the_feed_ends_every_stream() -> None:
    async def run() -> None:
        log = MemoryLog()
        feed = EventFeed(log)
        feed.start()
        await settle()
        stream = feed.follow()

        async def drain() -> list[int]:
            return [entry.position async for entry in stream]

        reading = asyncio.ensure_future(drain())
        await settle()
        await add(log, 2)
        await settle()
        await feed.stop()
        assert await asyncio.wait_for(reading, 10) == [1, 2]
        with pytest.raises(StopAsyncIteration):
            await feed.follow().next(timeout=1)

    asyncio.run(run())


def test_a_log_that_is_down_is_retried_and_the_feed_recovers() -> None:
    async def run() -> None:
        log = MemoryLog()
        feed = EventFeed(log, wait_seconds=0.05)
        log.down = True
        feed.start()
        await asyncio.sleep(0.05)
        assert feed.position is None
        with pytest.raises(EventLogUnavailable):
            await feed.read()
        log.down = False
        stream = feed.follow(after=0)
        await add(log, 2)
        assert await take(stream, 2) == [1, 2]
        await feed.stop()

    asyncio.run(run())


def test_a_log_whose_positions_began_again_is_noticed_and_followed(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async def run() -> None:
        log = MemoryLog()
        await add(log, 3)
        feed = EventFeed(log, wait_seconds=0.05)
        feed.start()
        await settle()
        stream = feed.follow()
        await add(log, 1)
        assert await take(stream, 1) == [4]
        # The store lost everything, its counter too (a Redis restarted without
        # persistence, before the log seeded its counter): positions start at 1 again.
        log.entries.clear()
        await add(log, 2)
        assert await take(stream, 2) == [1, 2]
        await add(log, 1)
        assert await take(stream, 1) == [3]
        await stream.aclose()
        await feed.stop()

    with caplog.at_level(logging.WARNING, logger="aura_livekit_backend.events"):
        asyncio.run(run())
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1
    assert "behind the feed's (4)" in warnings[0]


def test_an_unstarted_feed_still_follows_by_waiting_on_the_log() -> None:
    async def run() -> None:
        log = MemoryLog()
        feed = EventFeed(log)
        stream = feed.follow(after=0)
        task = asyncio.ensure_future(take(stream, 2))
        await settle()
        await add(log, 2)
        assert await task == [1, 2]

    asyncio.run(run())


def test_a_forgotten_stream_leaves_the_feed() -> None:
    # With the cycle collector off: a stream leaves the feed when its last reference
    # goes, not whenever a collection happens to run (that would depend on the
    # interpreter's collection timing, and a busy feed would fill its buffer meanwhile).
    async def forget_by_break(feed: EventFeed) -> None:
        async for _ in feed.follow():
            break

    async def run() -> None:
        log = MemoryLog()
        feed = EventFeed(log)
        feed.start()
        await settle()
        stream = feed.follow()
        assert await stream.next(timeout=0.01) is None
        assert feed.streams == 1
        del stream
        assert feed.streams == 0
        # A plugin loop left with `break`, the usual way to forget a stream.
        loop = asyncio.create_task(forget_by_break(feed))
        await settle()
        assert feed.streams == 1
        await add(log, 1)
        await asyncio.wait_for(loop, 10)
        assert feed.streams == 0
        await feed.stop()

    gc.disable()
    try:
        asyncio.run(run())
    finally:
        gc.enable()


def test_no_event_log_refuses_politely() -> None:
    async def run() -> None:
        feed = EventFeed(NoEventLog())
        with pytest.raises(EventLogUnavailable):
            await feed.read()
        with pytest.raises(EventLogUnavailable):
            await feed.follow().next(timeout=0.1)

    asyncio.run(run())


def test_the_lag_says_how_far_the_feed_is_behind_and_back_to_zero() -> None:
    class Recorder:
        def __init__(self) -> None:
            self.lags: list[int] = []
            self.delivered = 0

        def feed_lag(self, entries: int) -> None:
            self.lags.append(entries)

        def events_fanned_out(self, delivered: int, dropped: int) -> None:
            self.delivered += delivered

    async def run() -> Recorder:
        log = MemoryLog()
        recorder = Recorder()
        feed = EventFeed(log, read_batch=2, metrics=recorder)  # type: ignore[arg-type]
        feed.start()
        await settle()
        stream = feed.follow()
        assert await stream.next(timeout=0.01) is None
        await add(log, 7)  # all at once: more than one batch behind
        assert await take(stream, 7) == list(range(1, 8))
        await settle()
        await feed.stop()
        return recorder

    recorder = asyncio.run(run())
    assert 5 in recorder.lags  # after the first batch of 2: 5 more in the log
    assert recorder.lags[-1] == 0
    assert recorder.delivered == 7
