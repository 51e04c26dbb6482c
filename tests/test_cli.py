"""The console script, run as a real subprocess, as people run it."""

from __future__ import annotations

import contextlib
import os
import re
import select
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
from service_processes import worker_pids

from aura_livekit_backend import __version__
from aura_livekit_backend.emulator import free_port
from aura_livekit_backend.testing.pytest_plugin import TEST_API_KEY, TEST_API_SECRET

# Start the console script or other processes: see tox.ini for where they run.
pytestmark = pytest.mark.processes

SCRIPT = str(Path(sys.executable).with_name("aura-livekit-backend"))
SECRET = "cli-test-secret-cli-test-secret-0123"


def run(
    *args: str, env: dict[str, str] | None = None, timeout: float = 60
) -> subprocess.CompletedProcess:
    """Run the console script to completion."""
    return subprocess.run(
        [SCRIPT, *args],
        env={**os.environ, **(env or {})},
        capture_output=True,
        text=True,
        timeout=timeout,
    )


@contextmanager
def server(*args: str, env: dict[str, str] | None = None) -> Iterator[tuple[subprocess.Popen, str]]:
    """Start the console script serving on a free port; yield it and its base URL."""
    port = free_port()
    process = subprocess.Popen(
        [SCRIPT, "--port", str(port), *args],
        env={**os.environ, **(env or {})},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        # Its own process group, so a failed test can take down the workers too.
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
        yield process, base
    finally:
        if process.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.communicate(timeout=20)


def stop(process: subprocess.Popen) -> tuple[int, str]:
    """SIGTERM the server; its exit code and everything it printed."""
    process.send_signal(signal.SIGTERM)
    output, _ = process.communicate(timeout=20)
    return process.returncode, output


def test_version_and_help() -> None:
    assert run("--version").stdout.strip() == f"aura-livekit-backend {__version__}"
    usage = run("--help").stdout
    for flag in ("--host", "--port", "--workers", "--dev", "--dev-allow-remote", "plugins"):
        assert flag in usage


def test_python_dash_m_is_the_same_command() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "aura_livekit_backend", "--version"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.stdout.strip() == f"aura-livekit-backend {__version__}"


def test_plugins_lists_the_builtins_with_their_distribution_and_routes() -> None:
    result = run("plugins", env={"AURA_DISABLED_PLUGINS": "rooms"})
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert f"health  aura-livekit-backend {__version__}  enabled" in lines
    assert f"rooms  aura-livekit-backend {__version__}  disabled" in lines
    assert f"tokens  aura-livekit-backend {__version__}  enabled" in lines
    assert "    GET     /api/health" in lines


def test_without_credentials_it_refuses_to_start() -> None:
    result = run()
    assert result.returncode == 2
    assert "LIVEKIT_API_SECRET" in result.stderr
    assert "Traceback" not in result.stderr


def test_livekit_dev_pair_is_refused_without_dev() -> None:
    result = run(env={"LIVEKIT_API_KEY": "devkey", "LIVEKIT_API_SECRET": "secret"})
    assert result.returncode == 2
    assert "development pair" in result.stderr


def test_a_bad_setting_is_one_line_naming_the_variable() -> None:
    result = run("--dev", env={"AURA_WORKERS": "many"})
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        "aura-livekit-backend: error: AURA_WORKERS: Input should be a valid integer, "
        "unable to parse string as an integer"
    ]


def test_a_broken_plugin_stops_start_up_with_its_name(site) -> None:
    site.install(
        "acme-broken",
        {"broken": "acme_broken:plugin"},
        {"acme_broken": "raise RuntimeError('boom')\n"},
    )
    env = {"PYTHONPATH": str(site.root)}
    result = run("--dev", env=env)
    assert result.returncode == 2
    assert result.stderr.strip() == (
        "aura-livekit-backend: error: "
        "plugin 'broken' (acme-broken 1.0) failed to import: RuntimeError: boom"
    )
    assert "Traceback" in run("--dev", "--traceback", env=env).stderr
    listing = run("plugins", env=env)
    assert listing.returncode == 2
    assert (
        "    error: plugin 'broken' (acme-broken 1.0) failed to import: RuntimeError: boom"
        in listing.stdout
    )


def test_two_workers_serve_and_sigterm_stops_cleanly() -> None:
    # The flag beats the environment: AURA_WORKERS says 1, --workers says 2.
    with server("--dev", "--workers", "2", env={"AURA_WORKERS": "1"}) as (process, base):
        for _ in range(20):
            response = httpx.get(f"{base}/api/health", timeout=5)
            assert response.status_code == 200 and response.json()["status"] == "ok"
        code, output = stop(process)
    assert code == 0
    workers = set(re.findall(r"Starting worker \[(\d+)\]", output))
    assert len(workers) == 2, output
    assert "development mode" in output


def read_until(process: subprocess.Popen, pattern: str, seconds: float = 10) -> re.Match:
    """Read a running server's output until ``pattern`` matches it (or fail after ``seconds``)."""
    fd, seen = process.stdout.fileno(), b""
    deadline = time.monotonic() + seconds
    while (found := re.search(pattern, seen.decode(errors="replace"))) is None:
        left = deadline - time.monotonic()
        assert left > 0, f"{pattern!r} not in {seen!r}"
        if select.select([fd], [], [], left)[0]:
            seen += os.read(fd, 65536)
    return found


def test_dev_logs_the_emulator_hook_token_and_only_it_opens_the_hooks() -> None:
    with server("--dev") as (process, base):
        found = read_until(process, r"answers at (http://[\d.:]+) .*Authorization: Bearer ([\w-]+)")
        emulator, token = found.groups()
        room = httpx.post(f"{base}/api/room/create", json={"userName": "host"}).json()["roomId"]
        hook = f"{emulator}/_emulator/rooms/{room}/participants"
        assert httpx.post(hook, json={"identity": "ann"}).status_code == 401
        auth = {"Authorization": f"Bearer {token}"}
        assert httpx.post(hook, json={"identity": "ann"}, headers=auth).status_code == 200
        assert httpx.get(f"{base}/api/room/{room}").json()["numParticipants"] == 1
        code, _ = stop(process)
    assert code == 0


def test_dev_points_the_emulators_webhooks_at_the_service() -> None:
    with server("--dev", "--workers", "2") as (process, base):
        found = read_until(
            process, r"answers at (http://[\d.:]+) .*webhooks to (http://\S+);.*Bearer ([\w-]+)"
        )
        emulator, url, token = found.groups()
        assert url == f"{base}/livekit/webhook"
        room = httpx.post(f"{base}/api/room/create", json={"userName": "host"}).json()["roomId"]
        auth = {"Authorization": f"Bearer {token}"}
        hook = f"{emulator}/_emulator/rooms/{room}/participants"
        assert httpx.post(hook, json={"identity": "ann"}, headers=auth).status_code == 200
        wanted = [
            f'aura_webhooks_received_total{{event="livekit.{name}",outcome="accepted"}} 1.0'
            for name in ("room.started", "participant.joined")
        ]
        deadline = time.monotonic() + 10
        while not all(line in httpx.get(f"{base}/metrics").text for line in wanted):
            assert time.monotonic() < deadline, httpx.get(f"{base}/metrics").text
            time.sleep(0.1)
        code, _ = stop(process)
    assert code == 0


def test_a_weak_secret_warns_once_and_is_never_printed() -> None:
    env = {"LIVEKIT_API_KEY": "prodkey", "LIVEKIT_API_SECRET": "weak-but-set"}
    with server("--workers", "1", env=env) as (process, base):
        assert httpx.get(f"{base}/api/health", timeout=5).status_code == 200
        code, output = stop(process)
    assert code == 0
    assert output.count("LIVEKIT_API_SECRET is shorter than 32 bytes") == 1
    assert "weak-but-set" not in output


@pytest.mark.parametrize("extra", [[], ["--workers", "1"]])
def test_serves_with_real_credentials(extra: list[str]) -> None:
    env = {"LIVEKIT_API_KEY": "prodkey", "LIVEKIT_API_SECRET": SECRET}
    with server(*extra, env=env) as (process, base):
        assert httpx.get(f"{base}/api/nope", timeout=5).json()["statusCode"] == 404
        code, output = stop(process)
    assert code == 0
    assert SECRET not in output and "development mode" not in output
    assert output.count("AURA_API_KEYS is not set: anyone who can reach this service") == 1


def test_api_keys_guard_the_served_api_and_are_never_printed() -> None:
    key = "cli-api-key-0123456789abcdef"
    env = {
        "LIVEKIT_API_KEY": "prodkey",
        "LIVEKIT_API_SECRET": SECRET,
        "AURA_API_KEYS": key,
        "AURA_ACCESS_LOG": "true",
        "AURA_LOG_LEVEL": "DEBUG",
    }
    with server("--workers", "1", env=env) as (process, base):
        assert httpx.get(f"{base}/api/rooms", timeout=5).status_code == 401
        wrong = {"Authorization": f"Bearer {key}-not"}
        assert httpx.get(f"{base}/api/rooms", headers=wrong, timeout=5).status_code == 401
        # LiveKit is not running: past the key check, the call fails on LiveKit.
        auth = {"Authorization": f"Bearer {key}"}
        assert httpx.get(f"{base}/api/rooms", headers=auth, timeout=10).status_code == 503
        code, output = stop(process)
    assert code == 0
    assert "AURA_API_KEYS is not set" not in output
    assert "GET /api/rooms 401" in output  # the access log did log these requests
    assert key not in output and SECRET not in output


README = Path(__file__).resolve().parent.parent / "README.md"


def walkthrough(port: int) -> str:
    """The README's walk-through script, pointed at ``port``."""
    text = README.read_text()
    block = text.split("<!-- walkthrough -->", 1)[1].split("<!-- /walkthrough -->", 1)[0]
    script = block.split("```bash", 1)[1].rsplit("```", 1)[0]
    return script.replace("127.0.0.1:8000", f"127.0.0.1:{port}")


def test_the_readme_walkthrough_runs_as_written_against_dev() -> None:
    with server("--dev", "--workers", "2") as (process, base):
        port = int(base.rsplit(":", 1)[1])
        result = subprocess.run(
            ["bash", "-euo", "pipefail", "-c", walkthrough(port)],
            capture_output=True,
            text=True,
            timeout=60,
        )
        stop(process)
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert '"roomTopic": "Test Room"' in out
    assert '"userName": "host-user"' in out
    assert out.count('"token": "ey') == 2  # the creator's and the participant's
    assert '"createdBy": "host-user"' in out
    assert '"total": 1' in out


def test_two_workers_see_the_same_rooms(livekit_emulator) -> None:
    env = {
        "LIVEKIT_URL": livekit_emulator.url,
        "LIVEKIT_API_KEY": TEST_API_KEY,
        "LIVEKIT_API_SECRET": TEST_API_SECRET,
    }
    with server("--workers", "2", env=env) as (process, base):
        # A fresh connection per request: the kernel spreads them over both workers.
        made = [
            httpx.post(f"{base}/api/room/create", json={"userName": f"u{i}"}, timeout=10).json()
            for i in range(10)
        ]
        for room in made:
            for room_id in (room["roomId"], room["sid"]):
                got = httpx.get(f"{base}/api/room/{room_id}", timeout=10)
                assert got.status_code == 200 and got.json()["sid"] == room["sid"]
        totals = {httpx.get(f"{base}/api/rooms", timeout=10).json()["total"] for _ in range(10)}
        code, output = stop(process)
    assert totals == {10}
    assert code == 0, output
    assert len(set(re.findall(r"Starting worker \[(\d+)\]", output))) == 2


# -- processes: a graceful SIGTERM, and a worker killed with SIGKILL coming back -------


def workers(main_pid: int) -> set[int]:
    return set(worker_pids(main_pid))


@pytest.fixture
def livekit_env(livekit_emulator) -> dict[str, str]:
    return {
        "LIVEKIT_URL": livekit_emulator.url,
        "LIVEKIT_API_KEY": TEST_API_KEY,
        "LIVEKIT_API_SECRET": TEST_API_SECRET,
    }


def refused(port: int) -> bool:
    """Whether a connection to 127.0.0.1:``port`` is refused."""
    try:
        socket.create_connection(("127.0.0.1", port), timeout=5).close()
    except ConnectionRefusedError:
        return True
    return False


def test_sigterm_lets_in_flight_requests_finish_then_exits_0(livekit_emulator, livekit_env):
    with server("--workers", "2", env=livekit_env) as (process, base):
        livekit_emulator.latency = 3  # every request below is in flight for 3 s

        def create(i: int) -> int:
            response = httpx.post(f"{base}/api/room/create", json={"userName": f"u{i}"}, timeout=20)
            return response.status_code

        with ThreadPoolExecutor(8) as pool:
            answers = [pool.submit(create, i) for i in range(8)]
            # All in flight: each has reached LiveKit, none is answered yet.
            deadline = time.monotonic() + 30
            while livekit_emulator.calls["CreateRoom"] < 8:
                assert time.monotonic() < deadline, livekit_emulator.calls
                time.sleep(0.01)
            assert not any(answer.done() for answer in answers)
            started = time.monotonic()
            process.send_signal(signal.SIGTERM)
            # New connections are refused at once, not queued to be reset at the end.
            port = int(base.rsplit(":", 1)[1])
            while not refused(port):
                assert process.poll() is None, "exited before it stopped listening"
                assert time.monotonic() < deadline, "still accepting connections"
                time.sleep(0.01)
            refused_while_in_flight = not all(answer.done() for answer in answers)
            output, _ = process.communicate(timeout=20)
            code = process.returncode
            statuses = [answer.result() for answer in answers]
        stopped_in = time.monotonic() - started
    assert refused_while_in_flight
    assert statuses == [200] * 8
    assert len(livekit_emulator.room_names()) == 8  # each really happened
    assert code == 0, output
    assert stopped_in < 10, stopped_in
    assert "Received signal SIGTERM" in output


def handles_sigterm(pid: int) -> bool:
    """Whether ``pid`` has a SIGTERM handler: a Sanic worker sets one just before it serves."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return False
    mask = next(line for line in status.splitlines() if line.startswith("SigCgt:"))
    return bool(int(mask.split()[1], 16) >> (signal.SIGTERM - 1) & 1)


def test_a_worker_killed_with_sigkill_comes_back_and_the_service_keeps_answering(livekit_env):
    with server("--workers", "2", env=livekit_env) as (process, base):
        before = workers(process.pid)
        assert len(before) == 2
        # Both serve (a worker killed before Sanic saw it start fails the whole start).
        deadline = time.monotonic() + 30
        while not all(handles_sigterm(pid) for pid in before):
            assert time.monotonic() < deadline, "the workers did not both start"
            time.sleep(0.05)
        victim = min(before)
        os.kill(victim, signal.SIGKILL)
        statuses = []
        deadline = time.monotonic() + 15
        while True:
            statuses.append(httpx.get(f"{base}/api/health", timeout=5).status_code)
            now = workers(process.pid)
            if len(now) == 2 and victim not in now:
                break
            assert time.monotonic() < deadline, f"no worker came back: {now}"
            time.sleep(0.2)
        (replacement,) = now - before
        rooms = [httpx.post(f"{base}/api/room/create", json={"userName": "u"}, timeout=10)
                 for _ in range(10)]  # fmt: skip
        code, output = stop(process)
    # The replacement came to serve (a stop waits for starting workers to serve first).
    assert f"Worker ready [{replacement}]" in output, output
    assert set(statuses) == {200}
    assert {response.status_code for response in rooms} == {200}
    assert code == 0, output
    assert re.search(r"worker \S+ died \(exit code -9\): restarting it", output), output
    assert len(set(re.findall(r"Starting worker \[(\d+)\]", output))) == 3
