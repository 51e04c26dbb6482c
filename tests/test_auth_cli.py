"""JWT mode through the console script: the README's walk-through against ``--dev`` and
its development issuer, and a rate limit shared by 2 worker processes through Redis."""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

from aura_livekit_backend.emulator import free_port
from aura_livekit_backend.testing.pytest_plugin import TEST_API_KEY, TEST_API_SECRET

# Start the console script or other processes: see tox.ini for where they run.
pytestmark = pytest.mark.processes

SCRIPT = str(Path(sys.executable).with_name("aura-livekit-backend"))
README = Path(__file__).resolve().parent.parent / "README.md"


def _two_free_ports() -> int:
    """A port ``p`` with ``p + 1`` free too (the development issuer's)."""
    for _ in range(50):
        port = free_port()
        with socket.socket() as probe:
            try:
                probe.bind(("127.0.0.1", port + 1))
            except OSError:
                continue
        return port
    raise AssertionError("no two free ports in a row")


@contextmanager
def server(
    *args: str, env: dict[str, str], port: int | None = None
) -> Iterator[tuple[subprocess.Popen, str]]:
    """The console script serving on a free port until the block ends (then killed)."""
    port = port or free_port()
    process = subprocess.Popen(
        [SCRIPT, "--port", str(port), *args],
        env={**os.environ, **env},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            assert process.poll() is None, process.communicate()[0]
            try:
                if httpx.get(f"{base}/api/health", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, "server did not come up"
            time.sleep(0.1)
        time.sleep(1)  # the workers' start-up acks (see test_cli.server)
        yield process, base
    finally:
        if process.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.communicate(timeout=20)


def stop(process: subprocess.Popen) -> str:
    process.send_signal(signal.SIGTERM)
    output, _ = process.communicate(timeout=20)
    assert process.returncode == 0, output
    return output


def jwt_walkthrough(port: int) -> str:
    text = README.read_text()
    block = text.split("<!-- jwt-walkthrough -->", 1)[1].split("<!-- /jwt-walkthrough -->", 1)[0]
    script = block.split("```bash", 1)[1].rsplit("```", 1)[0]
    return script.replace("127.0.0.1:8000", f"127.0.0.1:{port}").replace(
        "127.0.0.1:8001", f"127.0.0.1:{port + 1}"
    )


def test_the_readme_jwt_walkthrough_runs_as_written_against_dev() -> None:
    port = _two_free_ports()
    with server("--dev", env={"AURA_AUTH": "jwt"}, port=port) as (process, _):
        result = subprocess.run(
            ["bash", "-euo", "pipefail", "-c", jwt_walkthrough(port)],
            capture_output=True,
            text=True,
            timeout=60,
        )
        output = stop(process)
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert '"statusCode": 401' in out
    assert '"message": "a bearer token is required: send Authorization: Bearer <JWT>"' in out
    assert '"roomTopic": "Standup"' in out and '"userName": "Ann"' in out
    assert out.count('"identity": "ann"') == 1  # the creator
    assert '"identity": "bob"' in out  # Bob, whatever userName he sent
    assert '"createdBy": "ann"' in out
    assert out.count('"token": "ey') == 2
    # The log says where the issuer is and how to use it, and never prints a token.
    assert f"a development issuer answers at http://127.0.0.1:{port + 1}" in output
    assert "/token?sub=ann&name=Ann" in output
    assert "AURA_API_KEYS is not set" not in output
    assert not re.search(r"eyJ[\w-]{10,}\.", output)


def test_jwt_mode_without_an_issuer_outside_dev_refuses_to_start() -> None:
    result = subprocess.run(
        [SCRIPT],
        env={
            **os.environ,
            "AURA_AUTH": "jwt",
            "LIVEKIT_API_KEY": "k",
            "LIVEKIT_API_SECRET": "s" * 32,
        },
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert result.stderr.strip() == (
        "aura-livekit-backend: error: AURA_AUTH=jwt needs AURA_AUTH_ISSUER and AURA_AUTH_AUDIENCE"
    )


def test_a_join_limit_is_shared_by_two_workers_through_redis(
    livekit_emulator, redis_server
) -> None:
    redis_server.flush()
    env = {
        "LIVEKIT_URL": livekit_emulator.url,
        "LIVEKIT_API_KEY": TEST_API_KEY,
        "LIVEKIT_API_SECRET": TEST_API_SECRET,
        "AURA_RATE_LIMIT_JOIN": "8/minute",
        "AURA_REDIS_URL": redis_server.url,
        "AURA_ACCESS_LOG": "true",
        "AURA_LOG_FORMAT": "json",
    }
    with server("--workers", "2", env=env) as (process, base):
        room = httpx.post(f"{base}/api/room/create", json={"userName": "h"}, timeout=10).json()

        def join(n: int) -> int:
            # A fresh connection each: the kernel hands them to both workers.
            body = {"roomId": room["roomId"], "userName": f"u{n}"}
            return httpx.post(f"{base}/api/token", json=body, timeout=10).status_code

        with ThreadPoolExecutor(8) as pool:
            statuses = list(pool.map(join, range(40)))
        output = stop(process)
    assert statuses.count(200) == 8, statuses
    assert statuses.count(429) == 32
    lines = [json.loads(line) for line in output.splitlines() if line.startswith("{")]
    answered_by = {line["pid"] for line in lines if line.get("path") == "/api/token"}
    assert len(answered_by) == 2, "both workers answered joins"
