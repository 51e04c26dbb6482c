"""The event log: the same behaviour from SQLite and from Redis Streams.

Each test runs on both backends. "Two workers" are two log objects on one SQLite file
or one Redis, each with its own connection and, for SQLite, its own thread: what two
worker processes share is the file or the server, and so do these.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import subprocess
import sys
import time
from collections.abc import Coroutine, Iterator
from pathlib import Path
from typing import Any, TypeVar

import pytest

from aura_livekit_backend.emulator import free_port
from aura_livekit_backend.event_feed import EventFeed
from aura_livekit_backend.eventlog import EventLog, EventLogUnavailable
from aura_livekit_backend.eventlog._waiters import Waiters
from aura_livekit_backend.eventlog.factory import build_event_log
from aura_livekit_backend.eventlog.redis import RedisEventLog
from aura_livekit_backend.eventlog.sqlite import SQLiteEventLog
from aura_livekit_backend.events import SignalEvents, TokenMinted

T = TypeVar("T")
DAY = 86400.0
SCRIPT = str(Path(sys.executable).with_name("aura-livekit-backend"))


def run(coroutine: Coroutine[Any, Any, T]) -> T:
    return asyncio.run(coroutine)


class Clock:
    """A clock the test moves: what retention by age goes by."""

    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now


class Backend:
    """Makes logs that share one store: one SQLite file, or one Redis."""

    def __init__(self, kind: str, tmp_path: Path, redis_url: str = "") -> None:
        self.kind = kind
        self.path = tmp_path / "data" / "events.sqlite3"
        self.redis_url = redis_url
        self.clock = Clock()

    def make(self, *, max_events: int = 1000, max_age: float = DAY) -> EventLog:
        """A new log on the shared store (a worker of its own)."""
        if self.kind == "redis":
            return RedisEventLog(
                self.redis_url, max_events=max_events, max_age=max_age, clock=self.clock
            )
        return SQLiteEventLog(self.path, max_events=max_events, max_age=max_age, clock=self.clock)


@pytest.fixture(params=["sqlite", "redis"])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Backend]:
    """Each test once per backend, its store empty."""
    if request.param == "redis":
        server = request.getfixturevalue("redis_server")
        server.flush()
        yield Backend("redis", tmp_path, server.url)
    else:
        yield Backend("sqlite", tmp_path)


async def opened(*logs: EventLog) -> None:
    for log in logs:
        await log.open()


async def closed(*logs: EventLog) -> None:
    for log in logs:
        await log.close()


def test_entries_come_back_in_order_with_everything_appended(backend: Backend) -> None:
    async def main() -> None:
        log = backend.make()
        await log.open()
        try:
            assert await log.last_position() == 0
            assert await log.read(0, 10) == []
            first = await log.append("a", "livekit.room.started", "r1", 1.5, {"n": [1, "x"]})
            second = await log.append("b", "aura.token.minted", None, 2.0, {})
            assert first is not None and second is not None and second > first > 0
            events = await log.read(0, 10)
            assert [(e.position, e.id, e.name, e.room, e.at, dict(e.data)) for e in events] == [
                (first, "a", "livekit.room.started", "r1", 1.5, {"n": [1, "x"]}),
                (second, "b", "aura.token.minted", None, 2.0, {}),
            ]
            assert await log.last_position() == second
        finally:
            await log.close()

    run(main())


def test_an_id_already_in_the_log_appends_nothing_whichever_worker_sees_it(
    backend: Backend,
) -> None:
    async def main() -> None:
        one, two = backend.make(), backend.make()
        await opened(one, two)
        try:
            position = await one.append("evt-1", "livekit.room.started", "r", 1.0, {"v": 1})
            assert position is not None
            assert await one.append("evt-1", "livekit.room.started", "r", 1.0, {"v": 2}) is None
            assert await two.append("evt-1", "livekit.room.started", "r", 1.0, {"v": 3}) is None
            # Two deliveries at once, in one worker: one wins.
            both = await asyncio.gather(
                two.append("evt-2", "x.y.z", None, 1.0, {}),
                two.append("evt-2", "x.y.z", None, 1.0, {}),
            )
            assert both.count(None) == 1
            events = await two.read(0, 10)
            assert [(e.id, dict(e.data)) for e in events] == [("evt-1", {"v": 1}), ("evt-2", {})]
        finally:
            await closed(one, two)

    run(main())


def test_positions_only_grow_across_two_workers(backend: Backend) -> None:
    async def main() -> None:
        one, two = backend.make(), backend.make()
        await opened(one, two)
        try:
            positions = []
            for n in range(20):
                log = one if n % 2 else two
                positions.append(await log.append(f"e{n}", "x.y.z", None, n, {"n": n}))
            concurrent = await asyncio.gather(
                *((one if n % 2 else two).append(f"c{n}", "x.y.z", None, n, {}) for n in range(50))
            )
            assert positions == sorted(positions)
            assert len(set(positions + concurrent)) == 70
            assert min(concurrent) > max(positions)  # type: ignore[type-var]
            events = await one.read(0, 100)
            assert [e.position for e in events] == sorted(positions + concurrent)  # type: ignore[type-var]
            assert [e.id for e in events[:20]] == [f"e{n}" for n in range(20)]
            assert await two.last_position() == events[-1].position
        finally:
            await closed(one, two)

    run(main())


def test_an_event_is_marked_told_once_whichever_worker_marks_it(backend: Backend) -> None:
    async def main() -> None:
        one, two = backend.make(), backend.make()
        await opened(one, two)
        try:
            await one.append("evt-1", "livekit.room.started", "r", 1.0, {})
            # Kept is not told: a duplicate append leaves it to be told.
            assert await two.append("evt-1", "livekit.room.started", "r", 1.0, {}) is None
            # Both workers race to tell it: exactly one wins.
            first = await asyncio.gather(*(log.mark_told("evt-1") for log in (one, two) * 5))
            assert sorted(first) == [False] * 9 + [True]
            assert await one.mark_told("evt-1") is False
            # An id the log never kept is nobody's to tell.
            assert await two.mark_told("never-kept") is False
            await one.append("evt-2", "livekit.room.finished", "r", 1.0, {})
            assert await two.mark_told("evt-2") is True
        finally:
            await closed(one, two)

    run(main())


def test_one_workers_appends_keep_the_order_they_were_made_in(backend: Backend) -> None:
    async def main() -> None:
        log = backend.make()
        await log.open()
        try:
            # Made at once (the service's own events are appended from tasks like these).
            positions = await asyncio.gather(
                *(log.append(f"e{n}", "x.y.z", None, n, {}) for n in range(200))
            )
            assert positions == sorted(positions)  # type: ignore[type-var]
            assert [e.id for e in await log.read(0, 1000)] == [f"e{n}" for n in range(200)]
        finally:
            await log.close()

    run(main())


def test_read_after_a_position_up_to_a_limit(backend: Backend) -> None:
    async def main() -> None:
        log = backend.make()
        await log.open()
        try:
            positions = [await log.append(f"e{n}", "x.y.z", None, n, {}) for n in range(10)]
            page = await log.read(positions[2], 3)  # type: ignore[arg-type]
            assert [e.id for e in page] == ["e3", "e4", "e5"]
            assert await log.read(positions[-1], 10) == []  # type: ignore[arg-type]
            assert len(await log.read(0, 1000)) == 10
            assert await log.read(0, 0) == []
        finally:
            await log.close()

    run(main())


def test_wait_wakes_when_another_worker_appends(backend: Backend) -> None:
    async def main() -> None:
        writer, reader = backend.make(), backend.make()
        await opened(writer, reader)
        try:
            last = await reader.last_position()
            waiting = asyncio.create_task(reader.wait(last, timeout=60))
            await asyncio.sleep(0.2)
            assert not waiting.done()
            await writer.append("from-the-other", "x.y.z", None, 1.0, {})
            # Bounded: a wait that never wakes fails here, not after 60 s.
            await asyncio.wait_for(waiting, 10)
            assert [e.id for e in await reader.read(last, 10)] == ["from-the-other"]
        finally:
            await closed(writer, reader)

    run(main())


def test_wait_returns_at_once_for_a_known_entry_and_at_the_timeout_otherwise(
    backend: Backend,
) -> None:
    async def main() -> None:
        log = backend.make()
        await log.open()
        try:
            position = await log.append("a", "x.y.z", None, 1.0, {})
            assert position is not None
            await asyncio.wait_for(log.wait(position - 1, timeout=60), 10)
            started = time.monotonic()
            await log.wait(position, timeout=0.2)
            assert time.monotonic() - started >= 0.2
        finally:
            await log.close()

    run(main())


def test_a_wait_cancelled_as_the_entry_arrives_is_cancelled() -> None:
    # The race asyncio.wait_for loses before Python 3.12: the entry wakes the waiter and
    # a cancellation arrives before it runs again. The waiter must end cancelled, or the
    # caller (the feed being stopped, an SSE client gone) carries on as if never asked.
    async def main() -> None:
        waiters = Waiters()
        waiting = asyncio.create_task(waiters.wait(0, timeout=60, watch=lambda: None))
        await asyncio.sleep(0)
        assert waiters
        waiters.advance(1)
        waiting.cancel()
        with pytest.raises(asyncio.CancelledError):
            await asyncio.wait_for(waiting, 10)
        assert not waiters

    run(main())


def test_a_waiter_wakes_on_release_and_at_its_timeout() -> None:
    async def main() -> None:
        waiters = Waiters()
        waiting = asyncio.create_task(waiters.wait(0, timeout=60, watch=lambda: None))
        await asyncio.sleep(0)
        waiters.release()
        await asyncio.wait_for(waiting, 10)
        await asyncio.wait_for(waiters.wait(0, timeout=0.01, watch=lambda: None), 10)
        assert not waiters

    run(main())


def test_retention_keeps_the_newest_entries_by_count(backend: Backend) -> None:
    async def main() -> None:
        one, two = backend.make(max_events=5), backend.make(max_events=5)
        await opened(one, two)
        try:
            positions = [
                await (one if n % 3 else two).append(f"e{n}", "x.y.z", None, n, {})
                for n in range(12)
            ]
            assert [e.id for e in await one.read(0, 100)] == [f"e{n}" for n in range(7, 12)]
            # Positions go on from where they were, whatever was dropped.
            last = positions[-1]
            assert last is not None
            assert await two.append("next", "x.y.z", None, 1.0, {}) == last + 1
        finally:
            await closed(one, two)

    run(main())


def test_an_id_stays_a_duplicate_after_retention_by_count_dropped_its_entry(
    backend: Backend,
) -> None:
    async def main() -> None:
        log = backend.make(max_events=2)
        await log.open()
        try:
            for id in ("a", "b", "c"):
                await log.append(id, "x.y.z", None, 1.0, {})
            assert [e.id for e in await log.read(0, 100)] == ["b", "c"]
            # LiveKit redelivers "a": its entry is gone, the id is still remembered.
            assert await log.append("a", "x.y.z", None, 1.0, {}) is None
            assert [e.id for e in await log.read(0, 100)] == ["b", "c"]
        finally:
            await log.close()

    run(main())


def test_sqlite_remembers_ids_for_the_age_but_at_most_a_day(tmp_path: Path) -> None:
    # Redis does the same with its id keys' TTL, in real time (not the test's clock).
    async def main() -> None:
        hourly, weekly = Backend("sqlite", tmp_path / "h"), Backend("sqlite", tmp_path / "w")
        hour, week = hourly.make(max_age=3600), weekly.make(max_age=7 * DAY)
        await opened(hour, week)
        try:
            assert await hour.append("h", "x.y.z", None, 1.0, {}) is not None
            hourly.clock.now += 3601
            await hour.append("later", "x.y.z", None, 1.0, {})  # the age trim runs
            # Entry and id both gone with the age: "h" is a new event again.
            assert await hour.append("h", "x.y.z", None, 1.0, {}) is not None
            assert await week.append("w", "x.y.z", None, 1.0, {}) is not None
            weekly.clock.now += DAY + 1
            await week.append("later", "x.y.z", None, 1.0, {})  # the age trim runs
            # The id is forgotten after a day, but its entry (kept a week) still
            # refuses it.
            assert await week.append("w", "x.y.z", None, 1.0, {}) is None
        finally:
            await closed(hour, week)

    run(main())


def test_retention_drops_entries_older_than_the_age(backend: Backend) -> None:
    async def main() -> None:
        log = backend.make(max_age=3600)
        await log.open()
        try:
            for n in range(5):
                await log.append(f"old{n}", "x.y.z", None, n, {})
            backend.clock.now += 1800
            await log.append("half", "x.y.z", None, 1.0, {})
            assert len(await log.read(0, 100)) == 6
            backend.clock.now += 1801  # the first five are over an hour old now
            await log.append("new", "x.y.z", None, 1.0, {})
            assert [e.id for e in await log.read(0, 100)] == ["half", "new"]
        finally:
            await log.close()

    run(main())


@pytest.mark.parametrize("kind", ["sqlite", "redis"])
def test_the_service_events_land_in_the_log(
    kind: str, serve, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    backend = Backend(kind, tmp_path)
    if kind == "redis":
        server = request.getfixturevalue("redis_server")
        server.flush()
        backend.redis_url = server.url
        client = serve(redis_url=server.url)
    else:
        client = serve(data_dir=backend.path.parent)
    room = client.post("/api/room/create", json={"userName": "host"}).json

    async def logged() -> list[tuple[str, str | None, str]]:
        log = backend.make()
        await log.open()
        try:
            deadline = time.monotonic() + 10
            while True:
                events = await log.read(0, 100)
                if len(events) >= 2 or time.monotonic() > deadline:
                    return [(e.name, e.room, e.id) for e in events]
                await asyncio.sleep(0.02)
        finally:
            await log.close()

    # On the app's loop, which runs only while the client waits: its append tasks too.
    (created, created_room, one), (minted, minted_room, two) = client.run(logged())
    assert (created, created_room) == ("aura.room.created", room["roomId"])
    assert (minted, minted_room) == ("aura.token.minted", room["roomId"])
    assert one != two and one.startswith("aura-")


class FailingLog:
    """An event log that cannot be written."""

    def __init__(self) -> None:
        self.calls = 0

    async def append(self, *args: object) -> int | None:
        self.calls += 1
        raise EventLogUnavailable("disk full")


def test_a_failing_log_is_one_warning_and_fails_nothing(
    caplog: pytest.LogCaptureFixture,
) -> None:
    log = FailingLog()

    async def main() -> None:
        events = SignalEvents(app=None, log=log)  # type: ignore[arg-type]
        for n in range(3):
            events.emit(TokenMinted(room="r", identity=f"u{n}", display_name="U"))
        for _ in range(100):
            if log.calls == 3:
                break
            await asyncio.sleep(0.01)
        await asyncio.sleep(0.05)

    with caplog.at_level(logging.WARNING, logger="aura_livekit_backend.events"):
        run(main())
    assert log.calls == 3
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1
    assert "aura.token.minted" in warnings[0] and "disk full" in warnings[0]


def test_an_unwritable_data_dir_fails_open_naming_the_setting(tmp_path: Path) -> None:
    blocker = tmp_path / "not-a-directory"
    blocker.write_text("")

    async def main() -> str:
        log = SQLiteEventLog(blocker / "events.sqlite3", max_events=10, max_age=DAY)
        with pytest.raises(EventLogUnavailable) as failure:
            await log.open()
        await log.close()
        return str(failure.value)

    message = run(main())
    assert "AURA_DATA_DIR" in message and str(blocker) in message
    assert "\n" not in message


def test_the_settings_choose_sqlite_in_the_data_dir(make_settings, tmp_path: Path) -> None:
    log = build_event_log(make_settings(data_dir=tmp_path / "d"))
    assert isinstance(log, SQLiteEventLog)
    assert log.path == tmp_path / "d" / "events.sqlite3"
    assert not (tmp_path / "d").exists()  # the factory does no I/O


@pytest.mark.processes
def test_an_unwritable_data_dir_is_one_line_at_start_up(tmp_path: Path) -> None:
    blocker = tmp_path / "not-a-directory"
    blocker.write_text("")
    result = subprocess.run(
        [SCRIPT, "--dev"],
        env={**os.environ, "AURA_DATA_DIR": str(blocker / "data")},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("aura-livekit-backend: error: cannot open the event log ")
    assert "AURA_DATA_DIR" in lines[0] and str(blocker) in lines[0]


def test_the_settings_choose_redis_with_a_redis_url(make_settings) -> None:
    log = build_event_log(make_settings(redis_url="redis://127.0.0.1:1/0"))
    assert isinstance(log, RedisEventLog)


def _silent_server() -> tuple[socket.socket, str]:
    """A port that accepts connections and never answers: a Redis that hangs."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)
    return listener, f"redis://:hunter2@127.0.0.1:{listener.getsockname()[1]}/0"


@pytest.mark.parametrize("redis", ["refused", "silent"])
def test_a_redis_that_is_down_is_unavailable_at_once(redis: str) -> None:
    listener, url = (
        _silent_server()
        if redis == "silent"
        else (None, f"redis://:hunter2@127.0.0.1:{free_port()}/0")
    )

    async def main() -> list[str]:
        log = RedisEventLog(url, max_events=10, max_age=DAY)
        await log.open()  # connects lazily: a Redis that is down does not stop a worker
        failures = []
        try:
            for call in (
                log.append("a", "x.y.z", None, 1.0, {}),
                log.read(0, 10),
                log.last_position(),
            ):
                with pytest.raises(EventLogUnavailable) as failure:
                    # Bounded: a call that hangs fails here with TimeoutError.
                    await asyncio.wait_for(call, 5)
                failures.append(str(failure.value))
            await asyncio.wait_for(log.wait(0, timeout=0.3), 5)  # times out, never raises
        finally:
            await log.close()
        return failures

    try:
        failures = run(main())
    finally:
        if listener is not None:
            listener.close()
    for message in failures:
        assert message.startswith("Redis (AURA_REDIS_URL) is unavailable")
        assert "hunter2" not in message


def test_the_log_recovers_when_redis_comes_back(own_redis) -> None:
    async def main() -> None:
        log = RedisEventLog(own_redis.url, max_events=10, max_age=DAY)
        await log.open()
        try:
            before = await log.append("before", "x.y.z", None, 1.0, {})
            assert before is not None
            own_redis.stop()
            with pytest.raises(EventLogUnavailable):
                await asyncio.wait_for(log.append("during", "x.y.z", None, 1.0, {}), 5)
            own_redis.start()  # an empty Redis (the test's has no persistence)
            after = await log.append("after", "x.y.z", None, 1.0, {})
            # The counter was lost with everything else; positions still only grow, so
            # a reader resuming after `before` sees `after`.
            assert after is not None and after > before
            assert [e.id for e in await log.read(before, 10)] == ["after"]
            assert await log.last_position() == after
        finally:
            await log.close()

    run(main())


def test_a_feed_follows_on_across_a_redis_restart_that_lost_everything(own_redis) -> None:
    async def main() -> None:
        log = RedisEventLog(own_redis.url, max_events=1000, max_age=DAY)
        await log.open()
        feed = EventFeed(log, wait_seconds=0.2)
        feed.start()
        try:
            for n in range(3):
                await log.append(f"ev-{n}", "aura.room.created", "r", 1.0, {})
            for _ in range(500):  # until the feed has read to the log's end
                if feed.live and feed.position == await log.last_position():
                    break
                await asyncio.sleep(0.01)
            stream = feed.follow()
            assert await stream.next(timeout=0.3) is None  # from now on: nothing yet
            own_redis.stop()
            own_redis.start()  # no persistence: the counter is gone too
            position = None
            for _ in range(50):  # the first calls may still meet the closed connection
                with contextlib.suppress(EventLogUnavailable):
                    position = await log.append("ev-3", "aura.room.created", "r", 1.0, {})
                    break
                await asyncio.sleep(0.1)
            assert position is not None
            entry = await stream.next(timeout=10)
            assert entry is not None and (entry.id, entry.position) == ("ev-3", position)
            await stream.aclose()
        finally:
            await feed.stop()
            await log.close()

    run(main())


def test_a_redis_that_lost_its_scripts_gets_them_again(redis_server) -> None:
    import redis

    redis_server.flush()

    async def main() -> list[int | None]:
        log = RedisEventLog(redis_server.url, max_events=10, max_age=DAY)
        await log.open()
        try:
            first = await log.append("a", "x.y.z", None, 1.0, {})
            with redis.Redis.from_url(redis_server.url) as client:
                client.script_flush()
            return [first, await log.append("b", "x.y.z", None, 1.0, {})]
        finally:
            await log.close()

    first, second = run(main())
    assert first is not None and second == first + 1


WRITER = """
import asyncio, sys
from pathlib import Path
from aura_livekit_backend.eventlog.sqlite import SQLiteEventLog

async def main():
    log = SQLiteEventLog(Path(sys.argv[1]), max_events=100_000, max_age=86400)
    await log.open()
    positions = await asyncio.gather(
        *(log.append(f"{sys.argv[2]}-{n}", "x.y.z", None, n, {}) for n in range(300))
    )
    await log.close()
    print(",".join(map(str, positions)))

asyncio.run(main())
"""


@pytest.mark.processes
def test_two_worker_processes_write_one_file_at_once(tmp_path: Path) -> None:
    path = tmp_path / "events.sqlite3"
    writers = [
        subprocess.Popen(
            [sys.executable, "-c", WRITER, str(path), name], stdout=subprocess.PIPE, text=True
        )
        for name in ("one", "two")
    ]
    outputs = [writer.communicate(timeout=60)[0] for writer in writers]
    assert [writer.returncode for writer in writers] == [0, 0]
    one, two = ([int(p) for p in output.strip().split(",")] for output in outputs)
    assert one == sorted(one) and two == sorted(two)
    assert sorted(one + two) == list(range(1, 601))

    async def read() -> list[str]:
        log = SQLiteEventLog(path, max_events=100_000, max_age=DAY)
        await log.open()
        try:
            return [e.id for e in await log.read(0, 1000)]
        finally:
            await log.close()

    ids = run(read())
    assert sorted(ids) == sorted(f"{name}-{n}" for name in ("one", "two") for n in range(300))


def test_the_retention_settings_read_as_documented(monkeypatch: pytest.MonkeyPatch) -> None:
    from datetime import timedelta

    from aura_livekit_backend.settings import SettingsError, load_settings

    monkeypatch.setenv("AURA_EVENT_LOG_MAX_AGE", "P2D")
    monkeypatch.setenv("AURA_EVENT_LOG_MAX_EVENTS", "500")
    settings = load_settings()
    assert settings.event_log_max_age == timedelta(days=2)
    assert settings.event_log_max_events == 500
    monkeypatch.setenv("AURA_EVENT_LOG_MAX_AGE", "3600")
    assert load_settings().event_log_max_age == timedelta(hours=1)
    monkeypatch.setenv("AURA_EVENT_LOG_MAX_AGE", "30")
    with pytest.raises(SettingsError, match="AURA_EVENT_LOG_MAX_AGE: must be at least 60"):
        load_settings()
    monkeypatch.setenv("AURA_EVENT_LOG_MAX_AGE", "60")
    monkeypatch.setenv("AURA_EVENT_LOG_MAX_EVENTS", "0")
    with pytest.raises(SettingsError, match="AURA_EVENT_LOG_MAX_EVENTS"):
        load_settings()
