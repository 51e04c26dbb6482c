"""The token routes' worker CPU per request with ``AURA_AUTH=jwt`` (a warm key cache),
beside ``AURA_AUTH=none``.

    sudo apt-get install wrk
    pip install . && python benchmarks/auth.py     # ~1 minute; --duration 10 for steadier numbers

Starts the LiveKit emulator in its own process and a development issuer
(:class:`~aura_livekit_backend.testing.issuer.DevIssuer`, RSA and EC keys) in this one,
then the service on 1 worker in each mode. In ``jwt`` mode one request first warms the
worker's key cache, so the numbers are the steady state: verifying a token, not fetching
keys. Each route is driven by ``wrk -t2 -c32`` on 127.0.0.1; the worker's user + system
CPU over the run, divided by the requests answered, is its CPU per request.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import sys
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))

from run import KEY, ROOM, SECRET, cpu_seconds, post_script, seed, start, stop, wait_for, wrk
from service_processes import worker_pids  # tools/, put on the path by run.py

from aura_livekit_backend.emulator import free_port
from aura_livekit_backend.testing.issuer import DevIssuer, SigningKey

AUDIENCE = "aura-benchmark"


def verify_alone(issuer: DevIssuer, kid: str, count: int = 2000) -> float:
    """CPU ms of one verification in this process, the key cache warm."""
    from aura_livekit_backend.auth.jwks import KeySet
    from aura_livekit_backend.auth.verify import Verifier
    from aura_livekit_backend.settings import Settings

    settings = Settings(_env_file=None, auth="jwt", auth_issuer=issuer.url, auth_audience=AUDIENCE)

    async def measure() -> float:
        keys = KeySet(issuer=issuer.url, jwks_url=issuer.jwks_url, timeout=3)
        await keys.open()
        try:
            verifier = Verifier(settings, keys)
            token = issuer.token("bench-user", kid=kid)
            await verifier.verify(token)  # warm
            began = time.process_time()
            for _ in range(count):
                await verifier.verify(token)
            return (time.process_time() - began) * 1000 / count
        finally:
            await keys.close()

    return asyncio.run(measure())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=int, default=5, help="seconds per wrk run")
    parser.add_argument("--connections", type=int, default=32)
    args = parser.parse_args()
    if not shutil.which("wrk"):
        sys.exit("wrk not found: sudo apt-get install wrk")

    lk_port = free_port()
    emulator = start(
        [sys.executable, "-m", "aura_livekit_backend.emulator", "--port", str(lk_port),
         "--api-key", KEY, "--api-secret", SECRET]
    )  # fmt: skip
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
    asyncio.run(seed(lk_url, 1))
    issuer = DevIssuer(AUDIENCE, keys=[SigningKey.rsa("rsa"), SigningKey.ec("ec")]).start()

    modes: list[tuple[str, dict[str, str], dict[str, str]]] = [
        ("none", {}, {}),
        (
            "jwt RS256",
            {"AURA_AUTH": "jwt", "AURA_AUTH_ISSUER": issuer.url, "AURA_AUTH_AUDIENCE": AUDIENCE},
            {"Authorization": f"Bearer {issuer.token('bench-user', kid='rsa', ttl=3600)}"},
        ),
        (
            "jwt ES256",
            {"AURA_AUTH": "jwt", "AURA_AUTH_ISSUER": issuer.url, "AURA_AUTH_AUDIENCE": AUDIENCE},
            {"Authorization": f"Bearer {issuer.token('bench-user', kid='ec', ttl=3600)}"},
        ),
    ]
    rows = []
    alone = {kid: verify_alone(issuer, kid) for kid in ("rsa", "ec")}
    try:
        for mode, env, headers in modes:
            port = free_port()
            base = f"http://127.0.0.1:{port}/api"
            service = start(
                [
                    sys.executable,
                    "-m",
                    "aura_livekit_backend",
                    "--port",
                    str(port),
                    "--workers",
                    "1",
                ],
                {
                    "LIVEKIT_URL": lk_url,
                    "LIVEKIT_API_KEY": KEY,
                    "LIVEKIT_API_SECRET": SECRET,
                    # One client address sends everything: no limit may interfere.
                    "AURA_RATE_LIMIT_AUTH_FAILURES": "",
                    **env,
                },
            )
            try:
                wait_for(f"{base}/health", service)
                time.sleep(1)
                # Warm the key cache (jwt) and the connection to LiveKit.
                warm = httpx.post(
                    f"{base}/token", json={"roomId": ROOM, "userName": "u"}, headers=headers
                )
                assert warm.status_code == 200, warm.text
                pids = worker_pids(service.pid)
                for route, url, body in [
                    ("POST /token", f"{base}/token", {"roomId": ROOM, "userName": "u"}),
                    ("POST /room/create", f"{base}/room/create", {"userName": "u"}),
                ]:
                    script = post_script(body, headers=headers)
                    used = cpu_seconds(pids)
                    rps, p50, p99, errors = wrk(url, args.duration, args.connections, script)
                    used = cpu_seconds(pids) - used
                    cpu_ms = used * 1000 / (rps * args.duration) if rps else 0.0
                    rows.append((route, mode, rps, p50, p99, errors, cpu_ms))
            finally:
                stop(service)
    finally:
        issuer.stop()
        stop(emulator)

    print(
        f"\nwrk -t2 -c{args.connections} -d{args.duration}s on {os.cpu_count()} cores, 1 worker\n"
    )
    print("| route | AURA_AUTH | req/s | p50 ms | p99 ms | errors | worker CPU ms/req |")
    print("|---|---|---:|---:|---:|---:|---:|")
    for route, mode, rps, p50, p99, errors, cpu_ms in rows:
        print(
            f"| {route} | {mode} | {rps:,.0f} | {p50:.2f} | {p99:.2f} | {errors} | {cpu_ms:.3f} |"
        )
    print(
        f"\nOne verification alone, warm key cache, in-process: RS256 {alone['rsa']:.3f} ms, "
        f"ES256 {alone['ec']:.3f} ms of CPU"
    )


if __name__ == "__main__":
    main()
