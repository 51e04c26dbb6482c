"""Appends per second to the event log from one worker (one event loop), SQLite and Redis.

    pip install . && python benchmarks/eventlog.py         # ~15 s; --seconds 5 for steadier numbers

For each backend: one append at a time (each waits for the one before: the slowest
case, a lone webhook delivery after another) and 64 at once (concurrent deliveries,
which SQLite commits together and Redis pipelines). Every append has a fresh id and a
webhook-sized payload, and returns only once the event is in the log (committed /
answered by Redis). Then the cost of a duplicate (an id already there).

SQLite writes to a file in a fresh temporary directory (``--dir`` to choose the disk);
Redis is a ``redis-server`` this script starts on a free port with persistence off
(``--redis-url`` to use another). Each measurement runs for ``--seconds``.
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import subprocess
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from aura_livekit_backend.emulator import free_port
from aura_livekit_backend.eventlog import EventLog
from aura_livekit_backend.eventlog.redis import RedisEventLog
from aura_livekit_backend.eventlog.sqlite import SQLiteEventLog

#: A participant_joined payload, about the size LiveKit sends.
PAYLOAD = {
    "event": "participant_joined",
    "room": {"sid": "RM_abcdefgh1234", "name": "room-0001", "emptyTimeout": 300,
             "maxParticipants": 20, "creationTime": "1692985556", "numParticipants": 3,
             "metadata": '{"topic":"weekly","createdBy":"host"}'},
    "participant": {"sid": "PA_abcdefgh1234", "identity": "ann", "name": "Ann",
                    "state": "ACTIVE", "joinedAt": "1692985557", "version": 2,
                    "permission": {"canSubscribe": True, "canPublish": True,
                                   "canPublishData": True}},
    "createdAt": "1692985557",
}  # fmt: skip


async def rate(log: EventLog, seconds: float, concurrency: int, prefix: str) -> tuple[float, int]:
    """Appends per second with ``concurrency`` in flight for ``seconds``; and the count."""
    count = 0
    stop_at = time.perf_counter() + seconds

    async def appender(lane: int) -> None:
        nonlocal count
        n = 0
        while time.perf_counter() < stop_at:
            position = await log.append(
                f"{prefix}-{lane}-{n}", "livekit.participant.joined", "room-0001",
                time.time(), PAYLOAD,
            )  # fmt: skip
            assert position is not None
            n += 1
            count += 1

    began = time.perf_counter()
    await asyncio.gather(*(appender(lane) for lane in range(concurrency)))
    return count / (time.perf_counter() - began), count


async def duplicates(log: EventLog, seconds: float) -> float:
    """Appends per second of an id already in the log (64 at once)."""
    await log.append("dup", "x.y.z", None, 0.0, {})
    count = 0
    stop_at = time.perf_counter() + seconds

    async def appender() -> None:
        nonlocal count
        while time.perf_counter() < stop_at:
            assert await log.append("dup", "x.y.z", None, 0.0, {}) is None
            count += 1

    began = time.perf_counter()
    await asyncio.gather(*(appender() for _ in range(64)))
    return count / (time.perf_counter() - began)


async def measure(name: str, make: Callable[[], EventLog], seconds: float) -> None:
    log = make()
    await log.open()
    try:
        await rate(log, 0.3, 8, "warm")
        for concurrency in (1, 64):
            per_second, count = await rate(log, seconds, concurrency, f"c{concurrency}")
            print(
                f"{name:7} {concurrency:3} at once: {per_second:9,.0f} appends/s "
                f"({count:,} in {seconds:g} s)"
            )
        print(f"{name:7} duplicates: {await duplicates(log, seconds):9,.0f} appends/s (64 at once)")
    finally:
        await log.close()


@contextmanager
def redis_server(url: str | None) -> Iterator[str | None]:
    """``url``, or a redis-server started for the run; None when there is none."""
    if url:
        yield url
        return
    binary = shutil.which("redis-server")
    if binary is None:
        yield None
        return
    port = free_port()
    process = subprocess.Popen(
        [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        import redis

        client = redis.Redis(host="127.0.0.1", port=port, socket_timeout=1)
        deadline = time.monotonic() + 15
        while True:
            try:
                client.ping()
                break
            except redis.ConnectionError:
                if time.monotonic() > deadline or process.poll() is not None:
                    raise RuntimeError("redis-server did not come up") from None
                time.sleep(0.05)
        client.close()
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        process.terminate()
        process.wait(timeout=10)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=3.0, help="length of each measurement")
    parser.add_argument("--dir", type=Path, help="where the SQLite file goes (default: a temp dir)")
    parser.add_argument("--redis-url", help="a Redis to use (default: start redis-server)")
    args = parser.parse_args()
    keep = 10_000_000  # retention by count never trims during the run
    # Long enough that nothing is trimmed by age during the run, short enough that the
    # dedupe keys left in a Redis of your own expire soon.
    age = 600.0

    with tempfile.TemporaryDirectory(prefix="aura-eventlog-", dir=args.dir) as directory:
        path = Path(directory) / "events.sqlite3"
        asyncio.run(
            measure(
                "sqlite",
                lambda: SQLiteEventLog(path, max_events=keep, max_age=age),
                args.seconds,
            )
        )
    with redis_server(args.redis_url) as url:
        if url is None:
            print("redis   not measured: redis-server is not installed")
            return
        # A key of its own: a Redis given with --redis-url keeps its own log untouched.
        key = f"aura-benchmark:{uuid.uuid4().hex}"
        try:
            asyncio.run(
                measure(
                    "redis",
                    lambda: RedisEventLog(url, max_events=keep, max_age=age, key=key),
                    args.seconds,
                )
            )
        finally:
            import redis

            with redis.Redis.from_url(url, socket_timeout=5) as client:
                client.delete(key, f"{key}:seq")


if __name__ == "__main__":
    main()
