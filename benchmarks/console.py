"""Server time per console page with 10,000 rooms (the console plugin, issue 16).

    python benchmarks/console.py [--rooms 10000] [--runs 30]

Serves the app in this process (the pytest kit's ``serving``) against the LiveKit
emulator holding ``--rooms`` rooms with the service's metadata, signs in to the
console, and times each page from the moment the app has the request to the moment
its answer is ready (a request and a response middleware: the server's own time, not
the socket's). Two settings:

- ``AURA_ROOM_LIST_CACHE_SECONDS=1`` (the default): the listing is reused for a second,
  as under steady use; the first request after each refresh pays for the new
  snapshot's search index, shown as the maximum;
- ``AURA_ROOM_LIST_CACHE_SECONDS=0``: every request lists every room from LiveKit and
  builds its snapshot afresh — the worst case, LiveKit's ListRooms of 10,000 rooms
  included (the emulator runs in this process, so its encoding is counted too).

Prints median, 90th percentile and maximum milliseconds per page, then the CPU of
the console's own steps in isolation (best of 10, so a busy machine shows less): a
snapshot of 10,000 rooms, the search index built once per snapshot, one search, one
page rendered. Not a test: the target is 300 ms of server time per page.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from aura_livekit_console import pages
from aura_livekit_console.assets import AssetFiles
from aura_livekit_console.plugin import _search_index
from livekit import api
from sanic import Request
from sanic.response import BaseHTTPResponse

from aura_livekit_backend import create_app
from aura_livekit_backend.emulator import LiveKitEmulator
from aura_livekit_backend.livekit.metadata import new_room_facts
from aura_livekit_backend.plugin import RoomSnapshot
from aura_livekit_backend.settings import Settings
from aura_livekit_backend.testing.client import ServiceClient, serving
from aura_livekit_backend.testing.pytest_plugin import TEST_API_KEY, TEST_API_SECRET

KEY = "console-benchmark-key-0123456789"


@contextmanager
def console(
    emulator: LiveKitEmulator, cache_seconds: float
) -> Iterator[tuple[ServiceClient, list[float]]]:
    """The app with the console, signed in; the list fills with server milliseconds."""
    os.environ["AURA_CONSOLE_KEYS"] = KEY
    settings = Settings(
        _env_file=None,
        livekit_url=emulator.url,
        livekit_api_key=TEST_API_KEY,
        livekit_api_secret=TEST_API_SECRET,
        room_list_cache_seconds=cache_seconds,
        metrics=False,
    )
    app = create_app(settings)
    times: list[float] = []

    @app.on_request(priority=10_000)
    async def started(request: Request) -> None:
        request.ctx.bench_started = time.perf_counter()

    @app.on_response(priority=-10_000)
    async def finished(request: Request, response: BaseHTTPResponse) -> None:
        started = getattr(request.ctx, "bench_started", None)
        if started is not None:
            times.append((time.perf_counter() - started) * 1000)

    with serving(app) as client:
        response = client.post("/console/sign-in", data={"key": KEY})
        assert response.status_code == 303, response.text
        yield client, times


def measure(
    client: ServiceClient, times: list[float], path: str, runs: int, pause: float
) -> list[float]:
    """Server milliseconds of ``runs`` GETs of ``path``."""
    taken = []
    for _ in range(runs):
        times.clear()
        response = client.get(path)
        assert response.status_code == 200, (path, response.status_code, response.text[:200])
        taken.append(times[-1])
        if pause:
            time.sleep(pause)
    return taken


def best_of(runs: int, step: Callable[[], object]) -> float:
    """The fastest of ``runs`` timings of ``step``, in milliseconds."""
    taken = []
    for _ in range(runs):
        started = time.perf_counter()
        step()
        taken.append((time.perf_counter() - started) * 1000)
    return min(taken)


def steps(count: int, stamp: int, metadata: str) -> None:
    """The console's own CPU per step, away from HTTP and LiveKit."""
    rooms = [
        api.Room(
            sid=f"RM_{n:012d}",
            name=f"room-{stamp}-{n:06d}",
            creation_time=stamp,
            creation_time_ms=stamp * 1000 + n,
            metadata=metadata,
            num_participants=n % 7,
        )
        for n in range(count)
    ]
    index = _search_index(RoomSnapshot(rooms))
    assets = AssetFiles()

    def render() -> None:
        snapshot = RoomSnapshot(rooms)
        start = snapshot.start_after((stamp * 1000 + count // 2, ""))
        view = pages.RoomsView(
            rooms=[snapshot.room_at(i) for i in range(start, start + 50)],
            matching=count,
            total=count,
            query="",
            before="",
            after="x",
            now=time.time(),
        )
        pages.rooms_page(view, assets=assets, who="key", csrf="t", live="/x", done=None)

    print(f"CPU of the console's own steps, {count:,} rooms, best of 10 (ms)\n")
    print("| step | ms |")
    print("|---|---:|")
    for label, step in (
        (
            "snapshot of every room (sorted; LiveKit's listing not counted)",
            lambda: RoomSnapshot(rooms),
        ),
        ("search index, once per snapshot", lambda: _search_index(RoomSnapshot(rooms))),
        ("one search over the index", lambda: [i for i, text in enumerate(index) if "zz" in text]),
        ("one page of 50 rooms rendered (from a fresh snapshot)", render),
    ):
        print(f"| {label} | {best_of(10, step):.1f} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rooms", type=int, default=10_000)
    parser.add_argument("--runs", type=int, default=30)
    args = parser.parse_args()
    with LiveKitEmulator(TEST_API_KEY, TEST_API_SECRET) as emulator:
        stamp = int(time.time())
        metadata = new_room_facts(topic="주간 회의 weekly sync", description="", created_by="bench")
        emulator.create_rooms(
            (f"room-{stamp}-{n:06d}" for n in range(args.rooms)),
            empty_timeout=86_400,
            metadata=metadata,
        )
        busy = f"room-{stamp}-{args.rooms // 2:06d}"
        for n in range(20):
            emulator.add_participant(busy, f"person-{n}", tracks=[{"kind": "audio"}])
        middle = f"room-{stamp}-{args.rooms // 2:06d}"
        pages = {
            "rooms, first page": "/console",
            f"rooms, page {args.rooms // 100} (cursor)": f"/console?after={stamp * 1000}.{middle}",
            "rooms fragment (polled every second)": "/console/rooms.json",
            "search, 1,000 matches": f"/console?q={stamp}-000",
            "search, every room matches": "/console?q=weekly+sync",
            "search, no match": "/console/rooms.json?q=nothing-like-it",
            "one room, 20 participants": f"/console/room/{busy}",
            "one room's live fragment": f"/console/room/{busy}/live",
        }
        load = ", ".join(f"{value:.1f}" for value in os.getloadavg())
        print(f"{args.rooms:,} rooms; {args.runs} requests per page; server milliseconds")
        print(f"load average before: {load} on {os.cpu_count()} cores\n")
        for cache, pause in ((1.0, 0.05), (0.0, 0.0)):
            print(f"AURA_ROOM_LIST_CACHE_SECONDS={cache:g}\n")
            print("| page | median | p90 | max |")
            print("|---|---:|---:|---:|")
            with console(emulator, cache) as (client, times):
                for label, path in pages.items():
                    measure(client, times, path, 3, 0)  # warm: imports, first snapshot
                    taken = sorted(measure(client, times, path, args.runs, pause))
                    p90 = taken[int(len(taken) * 0.9) - 1]
                    median = statistics.median(taken)
                    print(f"| {label} | {median:.1f} | {p90:.1f} | {taken[-1]:.1f} |")
            print()
        steps(args.rooms, stamp, metadata)


if __name__ == "__main__":
    main()
