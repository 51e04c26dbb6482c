"""Delivery latency of the event stream: an event one service process logs, read by an
SSE client of another process, with SQLite (one file) and with Redis (two "replicas").

    pip install . && python benchmarks/events_stream.py   # ~1 minute; --events 100 for less

For each backend it starts the LiveKit emulator and the console script twice (one
worker each), sharing only the event log: one SQLite file in a temporary directory,
or a ``redis-server`` this script starts on a free port with persistence off. An SSE
client streams ``GET /api/events?type=aura.room.created`` from process B while rooms
are created through process A, ``--rate`` a second. The latency of one event is the
time the client read it minus the event's ``at`` (stamped by process A when it emits
the event, before the append): the log's append, process B's feed noticing it (SQLite:
a poll of the file; Redis: a blocking XREAD), the fan-out and the SSE write. One host,
one clock.

Prints p50/p99/max per backend; nothing is asserted (the tests show delivery, not speed).
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from contextlib import ExitStack
from pathlib import Path

import httpx
import orjson

sys.path.insert(0, str(Path(__file__).resolve().parent))
from eventlog import redis_server  # benchmarks/eventlog.py: a redis-server for the run

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tools"))
from service_processes import ServiceProcesses

KEY = "k-0123456789abcdef-bench"
AUTH = {"Authorization": f"Bearer {KEY}"}


async def measure(writer: str, reader: str, events: int, rate: float) -> list[float]:
    """Latencies in seconds of ``events`` rooms created through ``writer``, read on ``reader``."""
    # By room: an event may arrive before the answer that names its room.
    seen: dict[str, float] = {}
    rooms: set[str] = set()
    async with (
        httpx.AsyncClient(timeout=30) as http,
        http.stream(
            "GET",
            reader + "/api/events?type=aura.room.created",
            headers={**AUTH, "Accept": "text/event-stream"},
        ) as response,
    ):
        lines = response.aiter_lines()
        assert (await anext(lines)).startswith("retry:")  # the stream is open
        done = asyncio.Event()

        async def read() -> None:
            async for line in lines:
                if line.startswith("data: "):
                    received = time.time()
                    entry = orjson.loads(line[6:])
                    seen[entry["room"]] = received - entry_time(entry)
                    if len(rooms) == events and rooms <= seen.keys():
                        done.set()
                        return

        reading = asyncio.ensure_future(read())
        for _ in range(events):
            made = await http.post(
                writer + "/api/room/create", json={"userName": "bench"}, headers=AUTH
            )
            made.raise_for_status()
            rooms.add(made.json()["roomId"])
            await asyncio.sleep(1 / rate)
        if not rooms <= seen.keys():
            await asyncio.wait_for(done.wait(), 30)
        reading.cancel()
    return [seen[room] for room in rooms]


def entry_time(entry: dict[str, object]) -> float:
    """The entry's ``at`` (ISO 8601, milliseconds, UTC) as Unix seconds."""
    from datetime import datetime

    return datetime.fromisoformat(str(entry["at"]).replace("Z", "+00:00")).timestamp()


def report(backend: str, latencies: list[float]) -> str:
    """One row: p50, p99, max in milliseconds."""
    ms = sorted(value * 1000 for value in latencies)
    p99 = ms[min(len(ms) - 1, int(len(ms) * 0.99))]
    return f"| {backend} | {len(ms)} | {statistics.median(ms):.1f} | {p99:.1f} | {ms[-1]:.1f} |"


def main() -> None:
    """Run both backends and print a table."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=300, help="events per backend")
    parser.add_argument("--rate", type=float, default=20.0, help="events a second")
    args = parser.parse_args()
    rows = []
    for backend in ("sqlite", "redis"):
        with ExitStack() as stack:
            folder = Path(stack.enter_context(tempfile.TemporaryDirectory()))
            env = {"AURA_API_KEYS": KEY, "AURA_DATA_DIR": str(folder / "a")}
            if backend == "redis":
                url = stack.enter_context(redis_server(None))
                if url is None:
                    raise SystemExit("redis-server is not installed: apt-get install redis-server")
                env["AURA_REDIS_URL"] = url
                env_b = {**env, "AURA_DATA_DIR": str(folder / "b")}
            else:
                env_b = env
            a = stack.enter_context(ServiceProcesses(workers=1, env=env))
            b = stack.enter_context(ServiceProcesses(workers=1, env=env_b))
            latencies = asyncio.run(measure(a.url, b.url, args.events, args.rate))
            rows.append(report(backend, latencies))
    load = Path("/proc/loadavg").read_text().split()[:3]
    print(f"\nload average before the last run's end: {' '.join(load)}")
    print(f"{args.events} events at {args.rate:g}/s, process A -> SSE client of process B")
    print("| log | events | p50 ms | p99 ms | max ms |")
    print("|---|---:|---:|---:|---:|")
    print("\n".join(rows))


if __name__ == "__main__":
    main()
