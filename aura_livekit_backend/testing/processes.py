"""The service's worker processes, read from Linux's ``/proc``: for tests and the soak script.

The console script's main process has, as children, multiprocessing's resource
tracker, then Sanic's state manager (the first spawned child), then the workers,
which Sanic spawns after it and respawns when one dies.
"""

from __future__ import annotations

from pathlib import Path

__all__ = ["rss_kib", "worker_pids"]


def _children(parent: int) -> list[tuple[int, int]]:
    """(start time in clock ticks, pid) of each spawned child of ``parent``."""
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
        if int(fields[1]) == parent and b"spawn_main" in cmdline:
            found.append((int(fields[19]), int(proc.name)))
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
