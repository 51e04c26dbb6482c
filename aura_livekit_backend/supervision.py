"""The console script's main process: stopping on a signal, and bringing back a worker that died.

**Stopping.** Sanic's worker manager answers SIGINT/SIGTERM by telling its monitor
loop to end (a ``None`` on its monitor pipe) and sending SIGINT to every worker.
Before every worker has acknowledged its start-up, that loses the service: the
manager is still in ``WorkerManager.wait_for_ack``, which puts every message other
than ``"__TERMINATE_EARLY__"`` back on the pipe and polls again *without counting a
miss*, while the SIGINT has marked each worker ``TERMINATED`` so it never
acknowledges. The main process spins on that pipe for good (with the state
manager's process, which it queries at every turn), keeps the port, and never reaps
the worker that exited. A worker acknowledges before it serves, and the manager
notices within one 0.1 s poll, so a signal in the instant after "Worker ready" is
enough. The same handler also talks to the state manager from inside a signal
handler, which can interleave with a call the main thread was making on the same
connection.

:class:`Shutdown` owns both signals from the first line of ``main()``. Its handler
only records the signal. Before the workers start, the console script stops at its
next step and starts none. Once they run, a thread waits until Sanic is past its
start-up wait and every live worker serves (its own signal handlers are set by
then), then calls Sanic's own shutdown. A second signal kills every process at once,
as Sanic does.

**Restarting.** Sanic notices a worker that was killed (the OOM killer, a SIGKILL, a
segfault in a C extension) but serves on with one worker fewer for good.
:class:`WorkerWatch` runs in the main process: once a second it asks Sanic to
restart each serving worker that exited with a failure, through the same message a
worker would send to ask for its own restart. A worker that exits cleanly (during
shutdown) is left alone, none is restarted before Sanic has seen every worker start
or once a stop was asked for, and one that
keeps dying is given up on after :data:`MAX_RESTARTS` in :data:`WINDOW_SECONDS`,
with an error in the log, so a broken deployment fails loudly instead of looping.
"""

from __future__ import annotations

import logging
import signal
import socket
import threading
import time
from collections import deque
from contextlib import suppress
from types import FrameType
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # sanic is imported once the service is known to start: it is slow
    from sanic import DefaultSanic
    from sanic.worker.manager import WorkerManager

__all__ = [
    "MAX_RESTARTS",
    "SERVE_WAIT_SECONDS",
    "WINDOW_SECONDS",
    "Shutdown",
    "WorkerWatch",
    "install",
]

logger = logging.getLogger("aura_livekit_backend")

MAX_RESTARTS = 5
WINDOW_SECONDS = 60.0
#: How long a stop waits, once every worker has acknowledged, for them all to serve.
SERVE_WAIT_SECONDS = 5.0
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


class Shutdown:
    """SIGINT and SIGTERM in the console script's main process, from its start to its exit."""

    def __init__(self, poll: float = 0.05) -> None:
        """Nothing is installed until :meth:`install`; ``poll`` paces the relay thread."""
        #: The first stop signal received, if any.
        self.signal: int | None = None
        #: The main process's copy of the API's listening socket, closed once stopping.
        self.listening: socket.socket | None = None
        self._poll = poll
        self._manager: WorkerManager | None = None
        self._acked = threading.Event()
        self._done = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def requested(self) -> bool:
        """Whether a stop was asked for."""
        return self.signal is not None

    @property
    def workers_started(self) -> bool:
        """Whether Sanic has seen every worker acknowledge its start-up (or started none)."""
        return self._acked.is_set()

    def install(self) -> None:
        """Take SIGINT and SIGTERM (call this first: everything after it may be stopped)."""
        for number in STOP_SIGNALS:
            signal.signal(number, self._on_signal)

    def _on_signal(self, number: int, frame: FrameType | None) -> None:
        # This runs in the main thread between two bytecodes, possibly in the middle of
        # a call to Sanic's state manager: it only records, and the relay thread acts.
        if self.signal is None:
            self.signal = number
            return
        manager = self._manager
        if manager is not None:
            # A second signal: what Sanic does, kill every process of the group now.
            from sanic.exceptions import ServerKilled

            logger.warning("Shutdown interrupted. Killing.")
            with suppress(ServerKilled):
                manager.kill()
        # Before any worker exists the console script is already on its way out.

    def attach(self, app: DefaultSanic) -> None:
        """Take over from ``app``'s worker manager while it runs (before it starts workers)."""

        @app.main_process_ready
        async def take_over(app: DefaultSanic) -> None:
            self._take_over(app.manager)

        @app.main_process_stop
        async def let_go(app: DefaultSanic) -> None:
            self._let_go()

    def _take_over(self, manager: WorkerManager) -> None:
        self._manager = manager
        # The manager installed its own handlers when it was made; ours come back.
        self.install()
        skip = self.requested or manager._shutting_down
        if skip:
            # A signal came before the workers started: start none. Sanic's handler has
            # already put the monitor's "stop" on the pipe if it was the one to catch it.
            if not manager._shutting_down:
                logger.info(
                    "Received signal %s before the workers started: not starting them",
                    signal.Signals(self.signal or signal.SIGTERM).name,
                )
                manager.monitor_publisher.send(None)
            self.signal = self.signal or signal.SIGTERM
            for worker in manager.workers:
                worker.auto_start = False
        wait_for_ack = manager.wait_for_ack

        def wait_for_ack_then_allow_stopping() -> None:
            if not skip:  # with no worker started, none would ever acknowledge
                wait_for_ack()
            self._acked.set()

        manager.wait_for_ack = wait_for_ack_then_allow_stopping  # type: ignore[method-assign]
        if not skip:
            self._thread = threading.Thread(target=self._relay, name="stop-relay", daemon=True)
            self._thread.start()

    def _let_go(self) -> None:
        self._done.set()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def _relay(self) -> None:
        """Hand the first signal to Sanic once it can act on it (the relay thread)."""
        manager = self._manager
        assert manager is not None
        while self.signal is None:
            if self._done.wait(self._poll):
                return
        number = self.signal
        acked: float | None = None
        told = False
        while not self._done.is_set():
            if self._acked.is_set():
                if self._serving(manager):
                    break
                # Counted from the acknowledgements: a worker serves a moment after.
                acked = acked or time.monotonic()
                if time.monotonic() - acked > SERVE_WAIT_SECONDS:
                    logger.warning(
                        "workers did not all report serving within %g s: stopping them anyway",
                        SERVE_WAIT_SECONDS,
                    )
                    break
            if not told:
                logger.info(
                    "Received signal %s while workers start: stopping once they serve",
                    signal.Signals(number).name,
                )
                told = True
            self._done.wait(self._poll)
        else:
            return
        # Sanic's own shutdown: it logs, ends the monitor loop, and SIGINTs every worker.
        manager.shutdown_signal(number, None)
        if self.listening is not None:
            # Workers close their copies as they stop; with ours closed too, a new
            # connection is refused at once rather than queued until Sanic exits, then
            # reset.
            self.listening.close()

    @staticmethod
    def _serving(manager: WorkerManager) -> bool:
        """Whether every live server worker has acknowledged and serves."""
        for process in manager.transient_processes:
            if not process.is_alive():
                continue
            state: dict[str, Any] = manager.worker_state.get(process.name) or {}
            if state.get("state") != "ACKED" or not state.get("serving"):
                return False
        return True


class WorkerWatch:
    """A thread in Sanic's main process that restarts failed workers."""

    def __init__(
        self, app: DefaultSanic, interval: float = 1.0, shutdown: Shutdown | None = None
    ) -> None:
        """Watch ``app``'s workers every ``interval`` seconds once :meth:`start` is called.

        No worker is restarted once ``shutdown`` has a stop request.
        """
        self._app = app
        self._interval = interval
        self._shutdown = shutdown
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
        # While Sanic waits for the workers' acknowledgements it puts every message
        # back on its pipe, a restart request included, until they all have: one for a
        # worker that died before acknowledging would go round for good. Such a start
        # fails after Sanic's own 30 s instead.
        if self._shutdown is not None and not self._shutdown.workers_started:
            return
        for process in manager.transient_processes:
            code = process.exitcode
            if code in (None, 0) or process.is_alive() or self._stopping.is_set():
                continue
            if self._shutdown is not None and self._shutdown.requested:
                return
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
            # A killed worker never cleared its "serving"; its successor must set it anew
            # before a stop is relayed to it (Shutdown._serving).
            with suppress(KeyError):
                state = manager.worker_state[process.name]
                manager.worker_state[process.name] = {**state, "serving": False}
            # The message a worker sends to restart itself; the monitor thread acts on it.
            manager.monitor_publisher.send(process.name)


def install(app: DefaultSanic, shutdown: Shutdown | None = None) -> None:
    """Run a :class:`WorkerWatch` in ``app``'s main process while it serves.

    With ``shutdown``, it also takes SIGINT/SIGTERM over from Sanic's manager.
    """
    if shutdown is not None:
        shutdown.attach(app)
    watch = WorkerWatch(app, shutdown=shutdown)

    @app.main_process_ready
    async def watch_workers(app: DefaultSanic) -> None:
        watch.start()

    @app.main_process_stop
    async def stop_watching(app: DefaultSanic) -> None:
        watch.stop()
