"""SIGTERM and SIGINT stop the console script cleanly at every moment of its life.

Each moment is its own start of the console script, as a subprocess in a session of
its own; a signal goes to its main process only, as `docker stop` or Kubernetes send
it. After each: exit code 0, the port can be bound again, and no process of the
session is left (no worker, no fork server, no state manager, no zombie).
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from aura_livekit_backend.emulator import free_port
from aura_livekit_backend.testing.pytest_plugin import TEST_API_KEY, TEST_API_SECRET

# Start the console script or other processes: see tox.ini for where they run.
pytestmark = pytest.mark.processes

SCRIPT = str(Path(sys.executable).with_name("aura-livekit-backend"))
#: Starting takes a few seconds on a busy machine; a hang takes forever.
LIMIT = 60.0


def handles_sigterm(pid: int) -> bool:
    """Whether ``pid`` has a handler for SIGTERM (the kernel's SigCgt mask)."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return False
    for line in status.splitlines():
        if line.startswith("SigCgt:"):
            return bool(int(line.split()[1], 16) >> (signal.SIGTERM - 1) & 1)
    return False


def session_processes(sid: int) -> list[str]:
    """Every process (zombies included) still in session ``sid``, as 'pid state command'."""
    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            stat = (proc / "stat").read_text()
            command = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue  # gone while we looked
        # The command name (field 2) may hold spaces; the fields after it do not.
        fields = stat.rsplit(")", 1)[1].split()
        if int(fields[3]) == sid:  # field 6, the session id
            found.append(f"{proc.name} {fields[0]} {command.strip()[:120]}")
    return found


def port_is_free(port: int) -> bool:
    """Whether 127.0.0.1:``port`` can be listened on again, binding as Sanic binds."""
    with socket.socket() as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


@dataclass
class Moment:
    """When to send the signal: ``after`` seconds once ``mark`` was seen."""

    mark: str  # a log line's text, or "signals" (the main process handles SIGTERM)
    after: float = 0.0
    signal: int = signal.SIGTERM
    args: tuple[str, ...] = ()
    # What happened:
    code: int | None = None
    output: list[str] = field(default_factory=list)
    port_free: bool = False
    left: list[str] = field(default_factory=list)

    def __str__(self) -> str:
        name = signal.Signals(self.signal).name
        return f"{name} {self.after} s after {self.mark!r} {' '.join(self.args)}".strip()


def run_moment(moment: Moment, env: dict[str, str]) -> Moment:
    """Start the console script, signal it at ``moment``, and note how it ended."""
    port = free_port()
    process = subprocess.Popen(
        [SCRIPT, "--port", str(port), *moment.args],
        env={**os.environ, **env},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    seen = threading.Event()

    def read() -> None:
        assert process.stdout is not None
        for line in process.stdout:
            moment.output.append(line)
            if moment.mark in line:
                seen.set()

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    try:
        deadline = time.monotonic() + LIMIT
        if moment.mark == "signals":
            while not handles_sigterm(process.pid):
                assert process.poll() is None, "".join(moment.output)
                assert time.monotonic() < deadline, "no SIGTERM handler"
                time.sleep(0.001)
        else:
            assert seen.wait(LIMIT), f"never logged {moment.mark!r}: {''.join(moment.output)}"
        time.sleep(moment.after)
        process.send_signal(moment.signal)
        moment.code = process.wait(timeout=LIMIT)
        reader.join(timeout=10)
        moment.port_free = port_is_free(port)
        # multiprocessing's resource tracker leaves when it reads the main process's
        # end of its pipe close, a moment after the main process exits.
        while (left := session_processes(process.pid)) and time.monotonic() < deadline:
            time.sleep(0.05)
        moment.left = left
    finally:
        if process.poll() is None or session_processes(process.pid):
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=10)
        reader.join(timeout=10)
        assert process.stdout is not None
        process.stdout.close()
    return moment


@pytest.fixture
def livekit_env(livekit_emulator) -> dict[str, str]:
    return {
        "LIVEKIT_URL": livekit_emulator.url,
        "LIVEKIT_API_KEY": TEST_API_KEY,
        "LIVEKIT_API_SECRET": TEST_API_SECRET,
    }


def test_a_signal_at_any_moment_stops_the_service_cleanly(livekit_env) -> None:
    moments = [
        # Start-up: imports, settings, the app; no worker and no emulator yet.
        Moment("signals", args=("--dev",)),
        # The workers are spawned and build their apps; none has acknowledged yet.
        Moment("Starting worker", args=("--workers", "2")),
        # Sanic's manager notices the workers' acknowledgements up to 0.1 s late.
        Moment("Worker ready", 0),
        Moment("Worker ready", 0.1),
        Moment("Worker ready", 0.3, signal=signal.SIGINT),
        # With --dev the emulator runs in the main process, and stops with it.
        Moment("Worker ready", 0.6, args=("--dev",)),
        Moment("Worker ready", 1.0),
    ]
    # Three at a time: the machine has two cores, and each start is mostly imports.
    with ThreadPoolExecutor(3) as pool:
        results = list(pool.map(lambda moment: run_moment(moment, livekit_env), moments))
    for moment in results:
        output = "".join(moment.output)
        assert moment.code == 0, f"{moment}: exit code {moment.code}\n{output}"
        assert moment.port_free, f"{moment}: the port is still taken\n{output}"
        assert moment.left == [], f"{moment}: processes left behind {moment.left}\n{output}"
        assert "Traceback" not in output, f"{moment}\n{output}"
    for moment in results:
        if moment.mark != "signals":
            output = "".join(moment.output)
            assert f"Received signal {signal.Signals(moment.signal).name}" in output, output
