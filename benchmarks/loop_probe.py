"""The console script with an event-loop lag probe in each worker, for ``run.py``.

    AURA_BENCH_LOOP_PROBE=/tmp/dir python benchmarks/loop_probe.py --port 8000 --workers 1

Each worker sleeps 5 ms on its event loop, over and over, and writes one line per
wake-up to ``$AURA_BENCH_LOOP_PROBE/<pid>``: the time (``time.monotonic()``, the
same clock in every process), how late the wake-up was (ms), and how much of that
lateness the process spent on the CPU (ms). A callback that holds the loop for
100 ms makes one wake-up about 100 ms late in both; a worker left unscheduled by the
OS for 100 ms (a busy machine) makes it late only in the first. So the second column
is the longest block of the worker's own making, whatever else runs on the machine.

It costs the worker about 200 wake-ups a second (well under 1% of a core). Not part
of the package: ``run.py`` starts the service through it.
"""

from __future__ import annotations

import asyncio
import os
import sys
import time
from pathlib import Path
from typing import Any

from aura_livekit_backend import cli

__all__ = ["INTERVAL", "app_for_process", "read", "start_probe"]

#: How long the probe sleeps between wake-ups.
INTERVAL = 0.005
_ENV = "AURA_BENCH_LOOP_PROBE"
_serve_app = cli.app_for_process


def app_for_process(settings: Any) -> Any:
    """The console script's app, with the probe started in each worker.

    Sanic pickles the factory by name for each worker: this module must be importable
    there (its directory is on ``sys.path``, which the fork server inherits).
    """
    app = _serve_app(settings)
    app.before_server_start(start_probe)
    return app


async def start_probe(app: Any) -> None:
    """Start this worker's probe (when ``AURA_BENCH_LOOP_PROBE`` names a directory)."""
    directory = os.environ.get(_ENV)
    if directory:
        app.ctx.loop_probe = asyncio.get_running_loop().create_task(
            _probe(Path(directory) / str(os.getpid()))
        )


async def _probe(path: Path) -> None:
    with path.open("w") as out:
        written = time.monotonic()
        while True:
            began, cpu = time.monotonic(), time.process_time()
            await asyncio.sleep(INTERVAL)
            now = time.monotonic()
            late = now - began - INTERVAL
            # CPU of every thread: a snapshot built in a thread holds the GIL, so its
            # CPU is lateness of our own making too.
            busy = time.process_time() - cpu - INTERVAL
            out.write(f"{now:.4f} {late * 1000:.3f} {max(0.0, min(late, busy)) * 1000:.3f}\n")
            if now - written > 0.5:
                out.flush()
                written = now


def read(directory: Path, since: float, until: float) -> list[tuple[float, float]]:
    """(late ms, late of the process's own making ms) of every wake-up in the window."""
    samples = []
    for path in directory.iterdir():
        for line in path.read_text().splitlines():
            fields = line.split()
            if len(fields) == 3 and since <= float(fields[0]) <= until:
                samples.append((float(fields[1]), float(fields[2])))
    return samples


if __name__ == "__main__":
    # By its module name, not __main__'s: that is the name a worker unpickles.
    import loop_probe

    cli.app_for_process = loop_probe.app_for_process
    sys.exit(cli.main())
