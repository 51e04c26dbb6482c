"""The service as processes: started for the fuzz and soak scripts, its workers found in ``/proc``.

Not part of the package (``tools/`` is not in the wheel): the benchmarks, the fuzz
run and ``tests/test_cli.py`` import it as ``service_processes``; pytest finds it
through ``pythonpath = ["tools"]``, the scripts put ``tools/`` on ``sys.path``.

The console script's main process has, as children, multiprocessing's resource
tracker and fork server. The fork server's children are Sanic's state manager (the
first), then the workers, which Sanic starts after it and restarts when one dies.
(Sanic run on its own spawns them from the main process instead; both are found.)
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import IO

from aura_livekit_backend.emulator import free_port

__all__ = ["ServiceProcesses", "rss_kib", "worker_pids"]


def _children(parent: int, forked: bool = False) -> list[tuple[int, int]]:
    """(start time in clock ticks, pid) of each process multiprocessing started for ``parent``.

    ``forked``: ``parent`` is a fork server, and every child of it counts.
    """
    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            stat = (proc / "stat").read_text()
            cmdline = (proc / "cmdline").read_bytes()
        except OSError:
            continue  # it exited while we looked
        # The command name (field 2) may hold spaces; the fields after it do not.
        fields = stat.rsplit(")", 1)[1].split()
        if int(fields[1]) != parent:
            continue
        if forked or b"spawn_main" in cmdline:
            found.append((int(fields[19]), int(proc.name)))
        elif b"multiprocessing.forkserver" in cmdline:
            found += _children(int(proc.name), forked=True)
    return sorted(found)


def worker_pids(main_pid: int) -> list[int]:
    """The pids of the Sanic workers serving under ``main_pid``, oldest first."""
    return [pid for _, pid in _children(main_pid)[1:]]


def rss_kib(pid: int) -> int:
    """Resident memory of ``pid`` in KiB (0 if it is gone)."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return 0
    for line in status.splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


class ServiceProcesses:
    """The LiveKit emulator and the console script, each its own process on 127.0.0.1.

    What the fuzz and soak scripts run against: the service as it is deployed (N
    workers), LiveKit failing ``fault_share`` of its calls in the ``faults`` ways::

        with ServiceProcesses(faults=SICK_LIVEKIT, fault_share=0.1) as stack:
            httpx.get(stack.url + "/api/health")
        print(stack.service_log)

    Both log to files, not pipes: a pipe nobody reads until the end fills up with
    the service's warnings and blocks its workers mid-request.
    """

    def __init__(
        self,
        *,
        workers: int = 2,
        faults: Sequence[str] = (),
        fault_share: float = 1.0,
        env: Mapping[str, str] | None = None,
        livekit_key: str = "APIprocesses",
        livekit_secret: str = "processes-livekit-secret-0123456789ab",  # noqa: S107 (local)
    ) -> None:
        """Describe the processes; :meth:`__enter__` starts them. ``env`` adds to the service's."""
        self.livekit_port, self.port = free_port(), free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self._emulator_command = [
            sys.executable, "-m", "aura_livekit_backend.emulator",
            "--port", str(self.livekit_port),
            "--api-key", livekit_key, "--api-secret", livekit_secret,
            *(arg for kind in faults for arg in ("--fault", kind)),
            "--fault-share", str(fault_share),
        ]  # fmt: skip
        self._service_command = [
            sys.executable, "-m", "aura_livekit_backend",
            "--workers", str(workers), "--port", str(self.port),
        ]  # fmt: skip
        self._env = {
            **os.environ,
            "LIVEKIT_URL": f"http://127.0.0.1:{self.livekit_port}",
            "LIVEKIT_API_KEY": livekit_key,
            "LIVEKIT_API_SECRET": livekit_secret,
            **(env or {}),
        }
        self._processes: list[tuple[subprocess.Popen[str], IO[str]]] = []
        #: Everything the service printed, once stopped.
        self.service_log = ""
        #: The emulator's closing report: its calls and the faults it served.
        self.emulator_report = ""

    @property
    def pid(self) -> int:
        """The service's main process."""
        return self._processes[1][0].pid

    def _start(self, command: list[str], env: Mapping[str, str] | None = None) -> None:
        log = tempfile.TemporaryFile(mode="w+")  # noqa: SIM115 (closed in __exit__)
        process = subprocess.Popen(  # noqa: S603 (our own interpreter and module)
            command, env=env, stdout=log, stderr=subprocess.STDOUT, text=True
        )
        self._processes.append((process, log))

    def __enter__(self) -> ServiceProcesses:
        """Start both, and return once the service answers (or raise RuntimeError)."""
        self._start(self._emulator_command)
        self._start(self._service_command, self._env)
        deadline = time.monotonic() + 30
        while True:
            try:
                with urllib.request.urlopen(self.url + "/api/health", timeout=1):  # noqa: S310
                    break
            except (urllib.error.URLError, OSError):
                if time.monotonic() > deadline:
                    self.__exit__()
                    raise RuntimeError(
                        "the service did not come up:\n" + self.service_log
                    ) from None
                time.sleep(0.2)
        # Sanic's main process takes the workers' start-up acks a moment after they
        # serve; a SIGTERM before that waits out its 30 s ack threshold.
        time.sleep(1)
        return self

    def __exit__(self, *exc_info: object) -> None:
        """SIGTERM both (the service first), wait, and keep what they printed."""
        logs = []
        for process, log in reversed(self._processes):
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=40)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
            log.seek(0)
            logs.append(log.read())
            log.close()
        self._processes.clear()
        self.service_log, emulator_log = [*logs, "", ""][:2]
        self.emulator_report = " / ".join(
            line for line in emulator_log.splitlines() if line.startswith(("calls:", "faults"))
        )
