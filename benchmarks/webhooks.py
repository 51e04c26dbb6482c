"""LiveKit webhooks in: the ingest rate of one worker, and a storm that loses nothing.

    pip install . && python benchmarks/webhooks.py [--seconds 5] [--storm-rate 1000]

Starts the service through its console script (one worker; the event log in SQLite in a
temporary ``AURA_DATA_DIR``, then in a ``redis-server`` started for the run) and the
LiveKit emulator beside it, then, for each:

1. **Ingest rate**: ``wrk -t2 -c32`` POSTs signed ``participant_joined`` deliveries,
   each with its own event id, to ``/livekit/webhook`` for ``--seconds``: every
   answer is a verified delivery appended to the log (group-committed SQLite).
2. **Storm**: ``--storm-rate`` deliveries a second for ``--storm-seconds``, paced by
   the clock (not as fast as answers come), every 20th sent a second time (LiveKit's
   duplicates). Afterwards every delivery answered ``accepted`` must be in the log
   once, every duplicate answered ``duplicate``, and the worker's RSS is printed
   before, at its peak and after.

The deliveries are signed beforehand (as LiveKit signs them: the emulator's signer),
so the load generator spends nothing on signing while measuring. Everything runs on
127.0.0.1 and is bounded in time. Prints numbers; exits 1 if an acknowledged event is
missing from the log or an answer was not 200.
"""

from __future__ import annotations

import argparse
import asyncio
import re
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

import aiohttp
from livekit.protocol import webhook as webhook_pb

from aura_livekit_backend import Settings
from aura_livekit_backend.emulator.webhooks import encode_event, sign_webhook
from aura_livekit_backend.eventlog.factory import build_event_log

sys.path.insert(0, str(Path(__file__).resolve().parent))
from eventlog import redis_server  # benchmarks/eventlog.py: a redis-server for the run

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tools"))
from service_processes import ServiceProcesses, rss_kib, worker_pids

KEY = "APIwebhookbench"
SECRET = "webhook-bench-secret-0123456789abcdef"
PATH = "/livekit/webhook"
ROOMS = 100

WRK_SCRIPT = """
-- Each thread sends its own share of the pre-signed deliveries, once each.
-- id is a global: setup() sets it in each thread's own Lua state.
local requests, i, threads = {}, 0, 1
local counter = 0
setup = function(thread)
  thread:set("id", counter)
  counter = counter + 1
end
init = function(args)
  threads = tonumber(args[2])
  local n = 0
  for line in io.lines(args[1]) do
    if n % threads == id then
      local auth, body = line:match("([^\\t]+)\\t(.*)")
      requests[#requests + 1] = wrk.format("POST", "PATH",
        {["Authorization"] = auth, ["Content-Type"] = "application/webhook+json"}, body)
    end
    n = n + 1
  end
end
request = function()
  i = i + 1
  if i > #requests then i = 1 end
  return requests[i]
end
""".replace("PATH", PATH)


def _event(n: int, prefix: str) -> webhook_pb.WebhookEvent:
    event = webhook_pb.WebhookEvent(
        event="participant_joined", id=f"EV_{prefix}{n:09d}", created_at=int(time.time())
    )
    room = n % ROOMS
    event.room.name, event.room.sid = f"room-{room}", f"RM_bench{room:07d}"
    event.room.creation_time = int(time.time()) - 60
    event.room.metadata = '{"topic":"Benchmark","createdBy":"bench"}'
    event.room.num_participants = 1 + n % 7
    event.participant.identity, event.participant.name = f"user-{n}", f"User {n}"
    event.participant.sid = f"PA_bench{n:07d}"
    event.participant.joined_at = int(time.time())
    return event


def _signed(count: int, prefix: str) -> list[tuple[str, bytes, str]]:
    """(event id, body, Authorization header) for ``count`` fresh deliveries."""
    out = []
    for n in range(count):
        event = _event(n, prefix)
        body = encode_event(event)
        out.append((event.id, body, sign_webhook(body, KEY, SECRET)))
    return out


def _in_log(settings: Settings, ids: list[str]) -> Counter[str]:
    """How often each of ``ids`` is in the log the service wrote, read through the
    log's own reader (SQLite or Redis, as ``settings`` say)."""

    async def read() -> Counter[str]:
        wanted, found = set(ids), Counter[str]()
        log = build_event_log(settings)
        await log.open()
        try:
            after = 0
            while entries := await log.read(after, 1000):
                found.update(entry.id for entry in entries if entry.id in wanted)
                after = entries[-1].position
        finally:
            await log.close()
        return found

    return asyncio.run(read())


def ingest_rate(stack: ServiceProcesses, seconds: float, log: Settings, backend: str) -> bool:
    deliveries = _signed(int(seconds * 6000), "rate")
    with tempfile.TemporaryDirectory() as folder:
        lines = Path(folder) / "deliveries.tsv"
        lines.write_bytes(
            b"".join(f"{auth}\t".encode() + body + b"\n" for _, body, auth in deliveries)
        )
        script = Path(folder) / "deliveries.lua"
        script.write_text(WRK_SCRIPT)
        threads = 2
        result = subprocess.run(
            ["wrk", f"-t{threads}", "-c32", f"-d{seconds:g}s", "--latency", "-s", str(script),
             stack.url, "--", str(lines), str(threads)],
            capture_output=True, text=True, timeout=seconds + 60, check=True,
        )  # fmt: skip
    out = result.stdout
    rate = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    total = int(re.search(r"(\d+) requests in", out).group(1))  # type: ignore[union-attr]
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    p50 = re.search(r"50%\s+(\S+)", out).group(1)  # type: ignore[union-attr]
    p99 = re.search(r"99%\s+(\S+)", out).group(1)  # type: ignore[union-attr]
    logged = sum(1 for count in _in_log(log, [d[0] for d in deliveries]).values() if count)
    print(f"ingest rate, 1 worker, {backend}, wrk -t2 -c32 -d{seconds:g}s:")
    print(f"  {total} deliveries, {rate:,.0f}/s, p50 {p50}, p99 {p99}, "
          f"non-2xx {errors.group(1) if errors else 0}")  # fmt: skip
    print(f"  distinct events in the log: {logged} (fewer than sent only if wrk wrapped around)")
    return errors is None


async def _storm(
    url: str, deliveries: list[tuple[str, bytes, str]], rate: float, pid: int
) -> tuple[Counter[str], list[str], list[float], int]:
    answers: Counter[str] = Counter()
    accepted: list[str] = []
    latencies: list[float] = []
    peak = 0
    # Each event once, every 20th twice (right after the first), on the clock.
    plan = [d for i, d in enumerate(deliveries) for _ in range(2 if i % 20 == 0 else 1)]
    limit = asyncio.Semaphore(256)
    timeout = aiohttp.ClientTimeout(total=30)
    connector = aiohttp.TCPConnector(limit=256)
    async with aiohttp.ClientSession(timeout=timeout, connector=connector) as session:

        async def send(event_id: str, body: bytes, auth: str) -> None:
            headers = {"Authorization": auth, "Content-Type": "application/webhook+json"}
            started = time.perf_counter()
            try:
                async with limit, session.post(url, data=body, headers=headers) as answer:
                    reply = await answer.json() if answer.status == 200 else {}
                    status = reply.get("status", str(answer.status))
            except (aiohttp.ClientError, asyncio.TimeoutError) as exc:
                status = type(exc).__name__
            latencies.append(time.perf_counter() - started)
            answers[status] += 1
            if status == "accepted":
                accepted.append(event_id)

        t0 = time.perf_counter()
        tasks = []
        for n, (event_id, body, auth) in enumerate(plan):
            delay = t0 + n / (rate * len(plan) / len(deliveries)) - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            if n % 500 == 0:
                peak = max(peak, rss_kib(pid))
            tasks.append(asyncio.create_task(send(event_id, body, auth)))
        await asyncio.gather(*tasks)
        peak = max(peak, rss_kib(pid))
        print(f"  sent {len(plan)} deliveries in {time.perf_counter() - t0:.1f} s")
    return answers, accepted, latencies, peak


def storm(stack: ServiceProcesses, rate: float, seconds: float, log: Settings) -> bool:
    deliveries = _signed(int(rate * seconds), "storm")
    pid = worker_pids(stack.pid)[0]
    before = rss_kib(pid)
    print(f"{rate:,.0f} events/s for {seconds:g} s, every 20th delivered twice:")
    answers, accepted, latencies, peak = asyncio.run(
        _storm(stack.url + PATH, deliveries, rate, pid)
    )
    after = rss_kib(pid)
    latencies.sort()
    found = _in_log(log, [d[0] for d in deliveries])
    missing = [event_id for event_id in accepted if found[event_id] != 1]
    twice = sum(1 for count in found.values() if count > 1)
    print(f"  answers: {dict(answers)}")
    print(f"  answer latency p50 {latencies[len(latencies) // 2] * 1000:.1f} ms, "
          f"p99 {latencies[int(len(latencies) * 0.99)] * 1000:.1f} ms")  # fmt: skip
    print(f"  acknowledged (accepted) {len(accepted)}; in the log once: "
          f"{len(accepted) - len(missing)}; missing: {len(missing)}; "
          f"logged twice: {twice}")  # fmt: skip
    print(f"  worker RSS: before {before / 1024:.1f} MiB, peak {peak / 1024:.1f} MiB, "
          f"after {after / 1024:.1f} MiB")  # fmt: skip
    expected_duplicates = len(range(0, len(deliveries), 20))
    ok = not missing and not twice and set(answers) <= {"accepted", "duplicate"}
    return ok and answers["duplicate"] == expected_duplicates


def run(args: argparse.Namespace, backend: str, redis_url: str | None) -> bool:
    with tempfile.TemporaryDirectory() as data:
        env = {"AURA_DATA_DIR": data, "AURA_LOG_LEVEL": "WARNING"}
        if redis_url:
            env["AURA_REDIS_URL"] = redis_url
        log = Settings(_env_file=None, data_dir=Path(data), redis_url=redis_url)
        stack = ServiceProcesses(workers=1, env=env, livekit_key=KEY, livekit_secret=SECRET)
        with stack:
            ok = ingest_rate(stack, args.seconds, log, backend)
            print(f"storm, {backend}:", end=" ")
            ok = storm(stack, args.storm_rate, args.storm_seconds, log) and ok
        if "Traceback" in stack.service_log:
            print(stack.service_log)
            ok = False
    return ok


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=5, help="wrk's run for the rate")
    parser.add_argument("--storm-rate", type=float, default=1000)
    parser.add_argument("--storm-seconds", type=float, default=10)
    parser.add_argument(
        "--backend", choices=["sqlite", "redis", "both"], default="both",
        help="the event log's backend (redis: a redis-server started for the run)",
    )  # fmt: skip
    args = parser.parse_args()
    ok = True
    if args.backend in ("sqlite", "both"):
        ok = run(args, "SQLite", None) and ok
    if args.backend in ("redis", "both"):
        with redis_server(None) as url:
            if url is None:
                print("Redis not measured: redis-server is not installed")
            else:
                ok = run(args, "Redis", url) and ok
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
