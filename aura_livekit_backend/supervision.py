"""Bringing back a worker that died.

Sanic's main process notices a worker that was killed (the OOM killer, a SIGKILL, a
segfault in a C extension) but serves on with one worker fewer for good. The
console script runs :class:`WorkerWatch` in the main process: once a second it
asks Sanic to restart each serving worker that exited with a failure, through the
same message a worker would send to ask for its own restart. A worker that exits
cleanly (during shutdown) is left alone, and one that keeps dying is given up on
after :data:`MAX_RESTARTS` in :data:`WINDOW_SECONDS`, with an error in the log, so a
broken deployment fails loudly instead of looping.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque

from sanic import DefaultSanic

__all__ = ["MAX_RESTARTS", "WINDOW_SECONDS", "WorkerWatch", "install"]

logger = logging.getLogger("aura_livekit_backend")

MAX_RESTARTS = 5
WINDOW_SECONDS = 60.0


class WorkerWatch:
    """A thread in Sanic's main process that restarts failed workers."""

    def __init__(self, app: DefaultSanic, interval: float = 1.0) -> None:
        """Watch ``app``'s workers every ``interval`` seconds once :meth:`start` is called."""
        self._app = app
        self._interval = interval
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self._restarts: deque[float] = deque()

    def start(self) -> None:
        """Start watching (from ``main_process_ready``)."""
        self._thread = threading.Thread(target=self._run, name="worker-watch", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop watching (from ``main_process_stop``): workers now exit on purpose."""
        self._stopping.set()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def _run(self) -> None:
        while not self._stopping.wait(self._interval):
            self.check()

    def check(self) -> None:
        """Ask Sanic to restart every serving worker that exited with a failure."""
        manager = self._app.manager
        # Sanic's own flag (no public one): set once it terminates workers on purpose.
        if getattr(manager, "_shutting_down", False):
            return
        for process in manager.transient_processes:
            code = process.exitcode
            if code in (None, 0) or process.is_alive() or self._stopping.is_set():
                continue
            now = time.monotonic()
            while self._restarts and now - self._restarts[0] > WINDOW_SECONDS:
                self._restarts.popleft()
            if len(self._restarts) >= MAX_RESTARTS:
                logger.error(
                    "worker %s keeps dying (exit code %s): not restarting it again; "
                    "%d restarts in the last %g s",
                    process.name,
                    code,
                    len(self._restarts),
                    WINDOW_SECONDS,
                )
                self._stopping.set()
                return
            self._restarts.append(now)
            logger.warning("worker %s died (exit code %s): restarting it", process.name, code)
            # The message a worker sends to restart itself; the monitor thread acts on it.
            manager.monitor_publisher.send(process.name)


def install(app: DefaultSanic) -> None:
    """Run a :class:`WorkerWatch` in ``app``'s main process while it serves."""
    watch = WorkerWatch(app)

    @app.main_process_ready
    async def watch_workers(app: DefaultSanic) -> None:
        watch.start()

    @app.main_process_stop
    async def stop_watching(app: DefaultSanic) -> None:
        watch.stop()
