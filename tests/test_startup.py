"""Every start-up failure is one line on stderr naming what to change, and exit code 2.

Through the console script as a subprocess, as people run it. Only loopback and
addresses this machine does not have are bound; nothing is sent anywhere.
"""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace

import pytest

from aura_livekit_backend import cli
from aura_livekit_backend.emulator import free_port

# Start the console script or other processes: see tox.ini for where they run.
pytestmark = pytest.mark.processes

SCRIPT = str(Path(sys.executable).with_name("aura-livekit-backend"))
CREDENTIALS = {
    "LIVEKIT_API_KEY": "startup-test",
    "LIVEKIT_API_SECRET": "startup-test-secret-0123456789abcdef",
}
#: TEST-NET-1 (RFC 5737): an address no machine of ours has, so binding it fails.
NOT_OURS = "192.0.2.1"
PREFIX = "aura-livekit-backend: error: "


def run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    """Run the console script with LiveKit credentials; it must end on its own."""
    return subprocess.run(
        [SCRIPT, *args],
        env={**os.environ, **CREDENTIALS, **(env or {})},
        capture_output=True,
        text=True,
        timeout=60,
    )


def one_line(result: subprocess.CompletedProcess) -> str:
    """The single stderr line of a refused start (asserting there is just that)."""
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith(PREFIX), lines
    return lines[0].removeprefix(PREFIX)


@pytest.fixture
def taken_port() -> Iterator[int]:
    """A port on 127.0.0.1 that another socket listens on."""
    with socket.socket() as other:
        other.bind(("127.0.0.1", 0))
        other.listen()
        yield other.getsockname()[1]


def test_a_port_in_use_is_one_line_naming_the_setting(taken_port: int) -> None:
    assert one_line(run("--port", str(taken_port))) == (
        f"cannot listen on 127.0.0.1:{taken_port}: the port is already in use (--port/AURA_PORT)"
    )
    # The same through the environment, and the whole story on request.
    assert "already in use" in one_line(run(env={"AURA_PORT": str(taken_port)}))
    full = run("--port", str(taken_port), "--traceback")
    assert full.returncode != 0
    assert "Traceback" in full.stderr and "OSError" in full.stderr


def test_an_address_this_machine_does_not_have_is_one_line() -> None:
    assert one_line(run("--host", NOT_OURS, "--port", str(free_port()))).endswith(
        "the address is not one of this machine's (--host/AURA_HOST)"
    )


def test_the_metrics_port_must_differ_from_the_api_port() -> None:
    port = str(free_port())
    assert one_line(run("--port", port, env={"AURA_METRICS_PORT": port})) == (
        f"AURA_METRICS_PORT is {port}, the API's port too (--port/AURA_PORT): "
        "give metrics a port of their own"
    )


def test_a_metrics_port_in_use_is_one_line(taken_port: int) -> None:
    result = run("--port", str(free_port()), env={"AURA_METRICS_PORT": str(taken_port)})
    assert one_line(result) == (
        f"cannot serve metrics on 127.0.0.1:{taken_port}: "
        "the port is already in use (AURA_METRICS_PORT)"
    )


def test_a_metrics_directory_that_is_a_file_is_one_line(tmp_path: Path) -> None:
    file = tmp_path / "metrics"
    file.write_text("not a directory")
    result = run("--port", str(free_port()), env={"PROMETHEUS_MULTIPROC_DIR": str(file)})
    assert one_line(result) == f"PROMETHEUS_MULTIPROC_DIR ({file}) is not a directory"


# -- without privileges ----------------------------------------------------------------

#: Runs the console script's main() as the unprivileged user `nobody`. The tests run
#: as root, whom no bind or write refuses; the interpreter itself may live where
#: nobody can read, so everything main() needs is imported, and the fork server
#: (another interpreter) started, before dropping root.
AS_NOBODY = """
import os, sys
import logging.config
import aura_livekit_backend.app, aura_livekit_backend.metrics
from multiprocessing.util import get_temp_dir
from aura_livekit_backend.cli import _start_fork_server, main
_start_fork_server()
if os.geteuid() == 0:
    # multiprocessing's own directory (the fork server's socket), as nobody would own it
    for path in [get_temp_dir(), *(entry.path for entry in os.scandir(get_temp_dir()))]:
        os.chown(path, 65534, 65534, follow_symlinks=False)
    os.setgroups([])
    os.setgid(65534)
    os.setuid(65534)
sys.exit(main(sys.argv[1:]))
"""


@pytest.fixture
def open_directory() -> Iterator[Path]:
    """A working directory `nobody` may enter (tmp_path's parents are root's alone)."""
    with tempfile.TemporaryDirectory() as made:
        os.chmod(made, 0o755)  # noqa: S103 (read and enter only: nobody runs there)
        yield Path(made)


def run_as_nobody(cwd: Path, *args: str, env: dict[str, str] | None = None) -> str:
    result = subprocess.run(
        [sys.executable, "-c", AS_NOBODY, *args],
        env={**os.environ, **CREDENTIALS, **(env or {})},
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=60,
    )
    return one_line(result)


def test_a_privileged_port_without_privileges_is_one_line(open_directory: Path) -> None:
    first_free = int(Path("/proc/sys/net/ipv4/ip_unprivileged_port_start").read_text())
    assert first_free > 1, "this machine lets anyone bind any port"
    port = first_free - 1
    assert run_as_nobody(open_directory, "--port", str(port)) == (
        f"cannot listen on 127.0.0.1:{port}: permission denied (--port/AURA_PORT): "
        "ports below 1024 need root or CAP_NET_BIND_SERVICE"
    )


def test_an_unwritable_metrics_directory_is_one_line(open_directory: Path) -> None:
    metrics = open_directory / "metrics"
    metrics.mkdir(mode=0o755)  # root's: nobody may read it, not write it
    line = run_as_nobody(
        open_directory, "--port", str(free_port()), env={"PROMETHEUS_MULTIPROC_DIR": str(metrics)}
    )
    assert (
        line
        == f"PROMETHEUS_MULTIPROC_DIR ({metrics}) is not a writable directory: Permission denied"
    )


# -- --dev listens on loopback only ----------------------------------------------------


@pytest.mark.parametrize(
    "host",
    ["0.0.0.0", "::", NOT_OURS],
)
def test_dev_refuses_an_address_other_machines_can_reach(host: str) -> None:
    assert one_line(run("--dev", "--host", host, "--port", str(free_port()))) == (
        "--dev serves an open API that signs with LiveKit's public development credentials, "
        f"so it listens on loopback only, not on {host} (--host/AURA_HOST); "
        "add --dev-allow-remote to listen there anyway"
    )


def test_dev_from_the_environment_refuses_too() -> None:
    env = {"AURA_DEV": "true", "AURA_HOST": "0.0.0.0", "AURA_PORT": str(free_port())}
    assert one_line(run(env=env)).startswith("--dev serves an open API")


def test_dev_allow_remote_lets_dev_listen_elsewhere() -> None:
    # Past the --dev check, on to binding: an address this machine lacks fails there.
    result = run("--dev", "--dev-allow-remote", "--host", NOT_OURS, "--port", str(free_port()))
    assert one_line(result).endswith("the address is not one of this machine's (--host/AURA_HOST)")


def test_dev_allow_remote_without_dev_is_refused() -> None:
    assert one_line(run("--dev-allow-remote", "--port", str(free_port()))) == (
        "--dev-allow-remote only goes with --dev (or AURA_DEV=true)"
    )


@pytest.mark.parametrize(
    ("host", "loopback"),
    [
        ("127.0.0.1", True),
        ("127.8.9.10", True),
        ("::1", True),
        ("localhost", True),  # /etc/hosts
        ("0.0.0.0", False),
        ("::", False),
        (NOT_OURS, False),
    ],
)
def test_which_hosts_count_as_loopback(host: str, loopback: bool) -> None:
    assert cli._is_loopback(host) is loopback


# -- a worker acknowledges its start only once the main process has recorded it -------


def test_a_worker_waits_for_the_main_process_to_record_it_before_acknowledging() -> None:
    # Sanic's main process rewrites a worker's state entry after starting it; a worker
    # forked from the fork server could acknowledge first and have "ACKED" overwritten.
    state: dict[str, object] = {"state": "STARTING"}
    app = SimpleNamespace(m=SimpleNamespace(state=state))

    async def main_process_records_it_late() -> list[str]:
        waiting = asyncio.create_task(cli._wait_until_registered(app))
        await asyncio.sleep(0.1)
        seen = ["waiting" if not waiting.done() else "went on"]
        state.update(state="STARTED", pid=os.getpid())  # the main process's last write
        await asyncio.wait_for(waiting, timeout=5)
        seen.append("went on")
        return seen

    assert asyncio.run(main_process_records_it_late()) == ["waiting", "went on"]
