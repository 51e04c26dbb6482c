"""Soak: minutes of mixed traffic on 2 workers while the emulated LiveKit fails some calls.

    pip install . && python benchmarks/soak.py [--minutes 3] [--fault-share 0.1]

The emulator fails ``--fault-share`` of its calls in every way it knows (Twirp
errors, garbage bodies, dropped connections, plain-text 401s, proxy 502s, and
stalls longer than the service's 2 s LiveKit timeout). ``--concurrency`` clients
send a mix of creates, joins by name and sid, room lookups, pages of the room list,
health checks and bad requests, all to 127.0.0.1.

It prints requests, status counts, latency percentiles per kind of request and the
workers' RSS over time, and exits 1 if anything but 200/4xx/502/503 came back, a
request got no answer within --request-timeout, a worker restarted, or a worker
logged a traceback. Everything is bounded by --minutes.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import sys
import time
from collections import Counter, defaultdict
from pathlib import Path

import httpx

from aura_livekit_backend.emulator import SICK_LIVEKIT

# tools/ holds the helpers shared with the tests, outside the package.
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tools"))
from service_processes import ServiceProcesses, rss_kib, worker_pids

KEY = "APIsoak"
SECRET = "soak-livekit-secret-0123456789abcdef"
API_KEY = "soak-api-key-0123456789abcdef"
AUTH = {"Authorization": f"Bearer {API_KEY}"}
RECONNECT_EVERY = 100
SAMPLE_SECONDS = 20

#: (kind of request, weight in the mix)
MIX = [
    ("create", 10),
    ("join_by_name", 35),
    ("join_by_sid", 10),
    ("get_room", 20),
    ("list_page", 10),
    ("health", 5),
    ("bad_request", 10),
]
BAD = [
    ("post", "/api/token", b'{"roomId": 5}'),
    ("post", "/api/room/create", b"not json"),
    ("post", "/api/room/create", b'{"userName": "a\\u202eb"}'),
    ("get", "/api/room/%00", None),
    ("get", "/api/rooms?limit=0", None),
    ("put", "/api/rooms", None),
    ("post", "/api/room/join", b'{"roomId": "room-1-nope00", "userName": "x"}'),
]


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))] if ordered else 0.0


class Soak:
    """The load: rooms made along the way are joined and looked up by later requests."""

    def __init__(self, base: str, timeout: float) -> None:
        self.base = base
        self.timeout = timeout
        self.rooms: list[tuple[str, str]] = []
        self.statuses: Counter[int] = Counter()
        self.by_kind: dict[str, list[float]] = defaultdict(list)
        self.status_by_kind: dict[str, Counter[int]] = defaultdict(Counter)
        self.hung: list[str] = []
        self.random = random.Random(20261127)  # noqa: S311 (a traffic mix, not a secret)

    async def one(self, http: httpx.AsyncClient, kind: str) -> None:
        user = f"user-{self.random.randrange(10_000)}"
        room = self.random.choice(self.rooms) if self.rooms else ("room-1-nope00", "RM_none")
        method, path, body = "get", "/api/health", None
        if kind == "create":
            method, path = "post", "/api/room/create"
            body = {"userName": user, "roomTopic": "soak"}
        elif kind in ("join_by_name", "join_by_sid"):
            method, path = "post", "/api/token"
            body = {"roomId": room[0] if kind == "join_by_name" else room[1], "userName": user}
        elif kind == "get_room":
            path = f"/api/room/{room[0]}"
        elif kind == "list_page":
            path = "/api/rooms?limit=50"
        elif kind == "bad_request":
            method, path, raw = self.random.choice(BAD)
            body = raw
        kwargs = {"json": body} if isinstance(body, dict) else {"content": body}
        started = time.perf_counter()
        try:
            response = await http.request(method, path, headers=AUTH, **kwargs)
        except httpx.TimeoutException:
            self.hung.append(f"{method.upper()} {path}")
            return
        seconds = time.perf_counter() - started
        self.statuses[response.status_code] += 1
        self.status_by_kind[kind][response.status_code] += 1
        self.by_kind[kind].append(seconds)
        if kind == "create" and response.status_code == 200:
            created = response.json()
            self.rooms.append((created["roomId"], created["sid"]))
            del self.rooms[:-500]  # the newest 500: old ones close in the emulator too

    async def client(self, until: float) -> None:
        """One client: a keep-alive connection, replaced every RECONNECT_EVERY requests.

        Sanic's workers share one listening socket, and a connection stays with the
        worker that accepted it: clients that come and go are what spreads the load.
        """
        kinds, weights = zip(*MIX, strict=True)
        while time.monotonic() < until:
            async with httpx.AsyncClient(base_url=self.base, timeout=self.timeout) as http:
                for _ in range(RECONNECT_EVERY):
                    if time.monotonic() >= until:
                        break
                    await self.one(http, self.random.choices(kinds, weights)[0])

    async def rooms_open(self) -> int | None:
        """How many rooms LiveKit holds now (None if it failed to say, three times)."""
        async with httpx.AsyncClient(base_url=self.base, timeout=self.timeout) as http:
            for _ in range(3):
                response = await http.get("/api/rooms?limit=1", headers=AUTH)
                if response.status_code == 200:
                    return response.json()["total"]
        return None

    async def run(self, concurrency: int, seconds: float, on_tick) -> None:
        until = time.monotonic() + seconds
        clients = [asyncio.create_task(self.client(until)) for _ in range(concurrency)]
        while (left := until - time.monotonic()) > 0:
            await asyncio.sleep(min(SAMPLE_SECONDS, left))
            on_tick(await self.rooms_open())
        await asyncio.gather(*clients)


def workers(parent: int) -> dict[int, int]:
    """pid → VmRSS KiB of each Sanic worker under ``parent``."""
    return {pid: rss_kib(pid) for pid in worker_pids(parent)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    # Past 5 minutes rooms start to close (LiveKit's empty timeout), so the number of
    # rooms, and the memory that follows it, levels off.
    parser.add_argument("--minutes", type=float, default=7)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--fault-share", type=float, default=0.1)
    parser.add_argument("--request-timeout", type=float, default=15)
    args = parser.parse_args()

    env = {"AURA_API_KEYS": API_KEY, "AURA_LIVEKIT_TIMEOUT": "2"}
    samples: list[tuple[float, int | None, dict[int, int]]] = []
    with ServiceProcesses(faults=SICK_LIVEKIT, fault_share=args.fault_share, env=env) as stack:
        soak = Soak(stack.url, args.request_timeout)
        started = time.monotonic()
        samples.append((0.0, 0, workers(stack.pid)))

        def tick(rooms: int | None) -> None:
            samples.append((time.monotonic() - started, rooms, workers(stack.pid)))

        asyncio.run(soak.run(args.concurrency, args.minutes * 60, tick))
        elapsed = time.monotonic() - started
    service_log = stack.service_log

    total = sum(soak.statuses.values())
    print(f"{total:,} requests in {elapsed:.0f} s ({total / elapsed:,.0f}/s), "
          f"{args.concurrency} clients, 2 workers, fault share {args.fault_share}")  # fmt: skip
    print("statuses: " + ", ".join(f"{s}: {n:,}" for s, n in sorted(soak.statuses.items())))
    print(f"no answer within {args.request_timeout:g} s: {len(soak.hung)}")
    print(f"{'request':14} {'count':>7} {'p50 ms':>8} {'p99 ms':>8} {'max ms':>8}  statuses")
    for kind, _ in MIX:
        times = soak.by_kind[kind]
        statuses = ", ".join(f"{s}: {n}" for s, n in sorted(soak.status_by_kind[kind].items()))
        print(
            f"{kind:14} {len(times):>7,} {percentile(times, 0.5) * 1000:>8.1f} "
            f"{percentile(times, 0.99) * 1000:>8.1f} {max(times, default=0) * 1000:>8.1f}"
            f"  {statuses}"
        )
    everything = [t for times in soak.by_kind.values() for t in times]
    p50, p99 = percentile(everything, 0.5), percentile(everything, 0.99)
    print(
        f"{'all':14} {len(everything):>7,} {p50 * 1000:>8.1f} {p99 * 1000:>8.1f} "
        f"{max(everything) * 1000:>8.1f}"
    )
    print("time, rooms open in LiveKit, RSS of each worker in MiB:")
    for at, rooms, sizes in samples:
        sizes_text = "  ".join(f"{kib / 1024:6.1f}" for _, kib in sorted(sizes.items()))
        print(f"  {at:6.0f} s  {rooms if rooms is not None else '?':>6}  {sizes_text}")
    print("emulated LiveKit: " + stack.emulator_report)

    problems = []
    allowed = {200, 502, 503, *range(400, 500)}
    unexpected = {s: n for s, n in soak.statuses.items() if s not in allowed}
    if unexpected:
        problems.append(f"unexpected statuses {unexpected}")
    if soak.hung:
        problems.append(f"{len(soak.hung)} requests without an answer, e.g. {soak.hung[:3]}")
    if set(samples[0][2]) != set(samples[-1][2]):
        problems.append(f"workers changed: {sorted(samples[0][2])} → {sorted(samples[-1][2])}")
    if "Traceback" in service_log:
        problems.append("a worker logged a traceback:\n" + service_log[-3000:])
    for problem in problems:
        print("PROBLEM: " + problem)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
