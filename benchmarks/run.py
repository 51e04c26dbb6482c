"""Benchmark the service against the LiveKit emulator with wrk, and print a table.

    sudo apt-get install wrk          # the load generator (Debian package)
    pip install . && python benchmarks/run.py

For 1, 1,000 and 10,000 rooms in LiveKit, and 1 then 2 workers, it measures every
endpoint with wrk over loopback, plus two ceilings from the same run: a minimal Sanic
app answering a constant JSON, and the emulator answering ListRooms directly (the call
behind every join). Also: each worker's RSS after the load, and the time from start
to the first answered request. Everything binds 127.0.0.1 and every wrk run is bounded
by --duration.

Each worker runs an event-loop lag probe (``loop_probe.py``): for every wrk run the
table shows the longest the loop was late, and how much of that the worker's own CPU
accounts for (the longest block of its own making: steady on a busy machine).

Every measured run follows a warm-up of the same requests (``--warmup`` seconds, not
counted): the numbers are the steady state. What a worker pays once — its first
listing of every room — is measured apart and printed below the table. wrk corrects
its latencies for coordinated omission: a stall of all 32 connections for 100 ms in a
5 s run adds the requests that would have been sent meanwhile, and alone moves the
p99 by tens of milliseconds.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import textwrap
import time
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import httpx
from livekit import api

from aura_livekit_backend.emulator import free_port

# tools/ holds the helpers shared with the tests, outside the package.
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tools"))
from service_processes import rss_kib, worker_pids

# benchmarks/ itself: the workers import the probe from there by name.
sys.path.insert(0, str(Path(__file__).resolve().parent))
import loop_probe

KEY = "APIbenchmark"
SECRET = "benchmark-secret-0123456789abcdefghijklmn"
ROOM = "bench-room"
MINIMAL_SANIC = """
from sanic import Sanic, json
app = Sanic("minimal")
app.config.ACCESS_LOG = False
@app.get("/health")
async def health(request):
    return json({"status": "ok"})
if __name__ == "__main__":
    import sys
    app.run(host="127.0.0.1", port=int(sys.argv[1]), single_process=True, motd=False)
"""


@dataclass
class Result:
    """One wrk run."""

    name: str
    rooms: int
    workers: int
    rps: float
    p50_ms: float
    p99_ms: float
    errors: int
    #: Worker CPU (user + system) per answered request, ms; 0 where not measured.
    cpu_ms: float = 0.0
    #: The longest a worker's event loop was late during the run, ms (-1: not measured).
    late_ms: float = -1.0
    #: The longest lateness of the worker's own making (its CPU), ms (-1: not measured).
    own_late_ms: float = -1.0


def cpu_seconds(pids: list[int]) -> float:
    """User + system CPU seconds the processes ``pids`` have used so far."""
    total = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])  # utime, stime (fields 14 and 15)
    return total / os.sysconf("SC_CLK_TCK")


def _ms(value: str) -> float:
    number, unit = re.fullmatch(r"([\d.]+)(us|ms|s|m)", value).groups()
    return float(number) * {"us": 0.001, "ms": 1, "s": 1000, "m": 60000}[unit]


def wrk(
    url: str, duration: int, connections: int, script: str | None = None
) -> tuple[float, float, float, int]:
    """requests/s, p50 ms, p99 ms and errors (socket errors plus non-2xx) of one wrk run."""
    command = [
        "wrk",
        f"-t{min(2, connections)}",
        f"-c{connections}",
        f"-d{duration}s",
        "--latency",
        "--timeout",
        "5s",
    ]
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as lua:
        lua.write(script or "")
    command += ["-s", lua.name, url]
    out = subprocess.run(command, capture_output=True, text=True, timeout=duration + 30).stdout
    os.unlink(lua.name)
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    p50 = _ms(re.search(r"\s50%\s+(\S+)", out).group(1))
    p99 = _ms(re.search(r"\s99%\s+(\S+)", out).group(1))
    errors = sum(int(n) for n in re.findall(r"(?:connect|read|write|timeout) (\d+)", out))
    non_2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    return rps, p50, p99, errors + (int(non_2xx.group(1)) if non_2xx else 0)


def post_script(
    body: dict | bytes, content_type: str = "application/json", headers: dict | None = None
) -> str:
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    lua_body = "".join(f"\\{byte}" for byte in raw)
    lines = [
        'wrk.method = "POST"',
        f'wrk.body = "{lua_body}"',
        f'wrk.headers["Content-Type"] = "{content_type}"',
    ]
    lines += [f'wrk.headers["{k}"] = "{v}"' for k, v in (headers or {}).items()]
    return "\n".join(lines) + "\n"


def create_script() -> str:
    return post_script({"userName": "bench-user", "roomTopic": "bench"})


#: In the mixed run, one request in this many creates a room; the rest read a page.
CREATE_EVERY = 200


def mixed_script(base_path: str) -> str:
    """Pages of 100 rooms, with a room created every ``CREATE_EVERY`` requests."""
    body = json.dumps({"userName": "bench-user", "roomTopic": "bench"})
    return textwrap.dedent(
        f"""\
        local n = 0
        request = function()
          n = n + 1
          if n % {CREATE_EVERY} == 0 then
            return wrk.format("POST", "{base_path}/room/create",
              {{["Content-Type"] = "application/json"}}, '{body}')
          end
          return wrk.format("GET", "{base_path}/rooms?limit=100")
        end
        """
    )


def wait_for(url: str, process: subprocess.Popen, limit: float = 60) -> float:
    """Seconds until ``url`` answers 200."""
    started = time.monotonic()
    while time.monotonic() - started < limit:
        if process.poll() is not None:
            raise RuntimeError(f"{process.args} exited with {process.returncode}")
        try:
            if httpx.get(url, timeout=1).status_code == 200:
                return time.monotonic() - started
        except httpx.TransportError:
            pass
        time.sleep(0.02)
    raise RuntimeError(f"{url} did not answer within {limit} s")


def stop(process: subprocess.Popen) -> None:
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()


def start(args: list[str], env: dict[str, str] | None = None) -> subprocess.Popen:
    return subprocess.Popen(
        args,
        env={**os.environ, **(env or {})},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )


async def seed(url: str, count: int) -> str:
    """Create ``count`` rooms (one of them ROOM) in the emulator; returns ROOM's sid."""
    lk = api.LiveKitAPI(url, KEY, SECRET)
    try:
        room = await lk.room.create_room(api.CreateRoomRequest(name=ROOM, empty_timeout=86400))
        names = [f"seed-{number:05d}" for number in range(count - 1)]
        for batch in range(0, len(names), 200):
            await asyncio.gather(
                *(
                    lk.room.create_room(api.CreateRoomRequest(name=name, empty_timeout=86400))
                    for name in names[batch : batch + 200]
                )
            )
        return room.sid
    finally:
        await lk.aclose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=int, default=5, help="seconds per wrk run")
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--rooms", default="1,1000,10000")
    parser.add_argument("--workers", default="1,2")
    parser.add_argument(
        "--warmup", type=int, default=1, help="seconds of the same load before each run"
    )
    parser.add_argument("--json", type=Path, help="also write the results here")
    parser.add_argument(
        "--only",
        help="comma-separated: run only the service measurements whose name contains one",
    )
    args = parser.parse_args()
    if not shutil.which("wrk"):
        sys.exit("wrk not found: sudo apt-get install wrk")
    duration, connections = args.duration, args.connections
    results: list[Result] = []
    notes: list[str] = []

    # Ceiling 1: the least any Sanic app on this machine does per request.
    with tempfile.NamedTemporaryFile("w", suffix=".py", delete=False) as minimal:
        minimal.write(textwrap.dedent(MINIMAL_SANIC))
    port = free_port()
    process = start([sys.executable, minimal.name, str(port)])
    wait_for(f"http://127.0.0.1:{port}/health", process)
    results.append(
        Result(
            "ceiling: minimal Sanic GET",
            0,
            1,
            *wrk(f"http://127.0.0.1:{port}/health", duration, connections),
        )
    )
    stop(process)
    os.unlink(minimal.name)

    for rooms in [int(n) for n in args.rooms.split(",")]:
        for workers in [int(n) for n in args.workers.split(",")]:
            lk_port = free_port()
            emulator = start(
                [
                    sys.executable,
                    "-m",
                    "aura_livekit_backend.emulator",
                    "--port",
                    str(lk_port),
                    "--api-key",
                    KEY,
                    "--api-secret",
                    SECRET,
                ]
            )
            lk_url = f"http://127.0.0.1:{lk_port}"
            deadline = time.monotonic() + 30
            while True:
                try:
                    httpx.post(f"{lk_url}/twirp/x", timeout=1)
                    break
                except httpx.TransportError:
                    if time.monotonic() > deadline:
                        raise
                    time.sleep(0.05)
            sid = asyncio.run(seed(lk_url, rooms))

            if workers == 1:
                # Ceiling 2: the emulator's own ListRooms by name, the call behind a join.
                token = api.AccessToken(KEY, SECRET).with_grants(api.VideoGrants(room_list=True))
                jwt = token.with_ttl(timedelta(hours=1)).to_jwt()
                body = api.ListRoomsRequest(names=[ROOM]).SerializeToString()
                script = post_script(
                    body, "application/protobuf", {"Authorization": f"Bearer {jwt}"}
                )
                results.append(
                    Result(
                        "ceiling: emulator ListRooms",
                        rooms,
                        0,
                        *wrk(
                            f"{lk_url}/twirp/livekit.RoomService/ListRooms",
                            duration,
                            connections,
                            script,
                        ),
                    )
                )

            port = free_port()
            base = f"http://127.0.0.1:{port}/api"
            began = time.monotonic()
            probes = Path(tempfile.mkdtemp(prefix="aura-loop-probe-"))
            service = start(
                [
                    sys.executable,
                    loop_probe.__file__,
                    "--port",
                    str(port),
                    "--workers",
                    str(workers),
                ],
                {
                    "LIVEKIT_URL": lk_url,
                    "LIVEKIT_API_KEY": KEY,
                    "LIVEKIT_API_SECRET": SECRET,
                    "AURA_BENCH_LOOP_PROBE": str(probes),
                },
            )
            wait_for(f"{base}/health", service)
            startup = time.monotonic() - began
            time.sleep(1)  # let every worker finish starting
            runs = [
                ("GET /health", f"{base}/health", None),
                (
                    "POST /token by name",
                    f"{base}/token",
                    post_script({"roomId": ROOM, "userName": "u"}),
                ),
                (
                    "POST /token by sid",
                    f"{base}/token",
                    post_script({"roomId": sid, "userName": "u"}),
                ),
                ("GET /room/{id}", f"{base}/room/{ROOM}", None),
                ("GET /rooms?limit=100", f"{base}/rooms?limit=100", None),
                ("GET /rooms (all)", f"{base}/rooms", None),
                # Last: it adds rooms.
                ("POST /room/create", f"{base}/room/create", create_script()),
            ]
            # One client alone: the latency of listing itself, without queueing behind 31 others.
            runs[-1:-1] = [
                ("GET /rooms?limit=100, 1 client", f"{base}/rooms?limit=100", None, 1),
                ("GET /rooms (all), 1 client", f"{base}/rooms", None, 1),
                (
                    f"GET /rooms?limit=100, 1 in {CREATE_EVERY} a POST /room/create",
                    base,
                    mixed_script("/api"),
                ),
            ]
            if args.only:
                wanted = args.only.split(",")
                runs = [run for run in runs if any(part in run[0] for part in wanted)]
            if any(run[0].startswith("GET /rooms") for run in runs):
                # Before any warm-up: the one request that waits for the worker's first
                # listing of every room (each later one is taken in the background).
                first = time.perf_counter()
                httpx.get(f"{base}/rooms?limit=100", timeout=30).raise_for_status()
                notes.append(
                    f"{rooms} rooms, {workers} worker(s): the first GET /rooms?limit=100 "
                    f"after start (the worker's first listing) took "
                    f"{(time.perf_counter() - first) * 1000:.0f} ms"
                )
            pids = worker_pids(service.pid)
            for name, url, script, *alone in runs:
                clients = alone[0] if alone else connections
                if args.warmup:
                    wrk(url, args.warmup, clients, script)
                used = cpu_seconds(pids)
                since = time.monotonic()
                load = wrk(url, duration, clients, script)
                used = cpu_seconds(pids) - used
                time.sleep(0.6)  # the probes write twice a second
                lags = loop_probe.read(probes, since, since + duration)
                answered = load[0] * duration
                cpu = used * 1000 / answered if answered else 0.0
                late = max((lag for lag, _ in lags), default=-1.0)
                own = max((lag for _, lag in lags), default=-1.0)
                results.append(Result(name, rooms, workers, *load, cpu, late, own))
            sizes = [rss_kib(pid) for pid in worker_pids(service.pid)]
            notes.append(
                f"{rooms} rooms, {workers} worker(s): first answer {startup:.2f} s after start; "
                f"each worker's RSS after the load "
                f"{', '.join(f'{s / 1024:.0f} MiB' for s in sizes)}"
            )
            stop(service)
            stop(emulator)
            shutil.rmtree(probes, ignore_errors=True)

    print(f"\nwrk -t2 -c{connections} -d{duration}s on {os.cpu_count()} cores\n")
    print(
        "| what | rooms | workers | req/s | p50 ms | p99 ms | errors | worker CPU ms/req "
        "| loop late max ms | of its own making ms |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for r in results:
        cpu = f"{r.cpu_ms:.3f}" if r.cpu_ms else "-"
        late = f"{r.late_ms:.1f}" if r.late_ms >= 0 else "-"
        own = f"{r.own_late_ms:.1f}" if r.own_late_ms >= 0 else "-"
        print(
            f"| {r.name} | {r.rooms} | {r.workers or '-'} | {r.rps:,.0f} | {r.p50_ms:.2f} | "
            f"{r.p99_ms:.2f} | {r.errors} | {cpu} | {late} | {own} |"
        )
    print()
    for note in notes:
        print(f"- {note}")
    if args.json:
        args.json.write_text(json.dumps([r.__dict__ for r in results] + notes, indent=1))


if __name__ == "__main__":
    main()
