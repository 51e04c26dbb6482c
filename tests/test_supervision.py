"""WorkerWatch's and Shutdown's decisions, on stand-ins for Sanic's manager and processes.

The real thing, through the console script: test_cli.py and test_stopping.py.
"""

from __future__ import annotations

import signal
import time
from collections.abc import Callable, Iterator
from types import SimpleNamespace

import pytest

from aura_livekit_backend import supervision


class FakeProcess:
    """What WorkerWatch reads of a Sanic worker process."""

    def __init__(self, name: str, exitcode: int | None) -> None:
        self.name, self.exitcode = name, exitcode

    def is_alive(self) -> bool:
        return self.exitcode is None


def fake_app(*processes: FakeProcess, shutting_down: bool = False) -> SimpleNamespace:
    sent: list[str] = []
    manager = SimpleNamespace(
        transient_processes=list(processes),
        monitor_publisher=SimpleNamespace(send=sent.append),
        _shutting_down=shutting_down,
        worker_state={process.name: {"state": "ACKED", "serving": True} for process in processes},
    )
    return SimpleNamespace(manager=manager, sent=sent)


def test_the_watch_restarts_only_failed_workers_and_gives_up_on_a_crash_loop(caplog) -> None:
    app = fake_app(FakeProcess("alive", None), FakeProcess("clean", 0), FakeProcess("killed", -9))
    watch = supervision.WorkerWatch(app)
    for _ in range(supervision.MAX_RESTARTS + 3):
        watch.check()
    assert app.sent == ["killed"] * supervision.MAX_RESTARTS
    assert "keeps dying (exit code -9): not restarting it again" in caplog.text
    # Its successor is not taken for serving until it says so itself.
    assert app.manager.worker_state["killed"]["serving"] is False
    assert app.manager.worker_state["alive"]["serving"] is True


def test_the_watch_leaves_workers_alone_while_sanic_shuts_down() -> None:
    app = fake_app(FakeProcess("terminated", -15), shutting_down=True)
    supervision.WorkerWatch(app).check()
    assert app.sent == []


# -- Shutdown: a stop signal reaches Sanic only once it can act on it ------------------


class FakeWorker:
    def __init__(self, *processes: FakeProcess) -> None:
        self.processes, self.auto_start = set(processes), True


class FakeManager:
    """What Shutdown reads and calls of Sanic's WorkerManager."""

    def __init__(self, *processes: FakeProcess) -> None:
        self._shutting_down = False
        self.workers = [FakeWorker(*processes)]
        self.transient_processes = list(processes)
        self.worker_state = {process.name: {"state": "STARTED"} for process in processes}
        self.sent: list[object] = []
        self.monitor_publisher = SimpleNamespace(send=self.sent.append)
        self.acks_awaited = 0
        self.stopped_with: list[int] = []

    def wait_for_ack(self) -> None:
        self.acks_awaited += 1

    def shutdown_signal(self, number: int, frame: object) -> None:
        self.stopped_with.append(number)


@pytest.fixture
def restore_signal_handlers() -> Iterator[None]:
    saved = {number: signal.getsignal(number) for number in supervision.STOP_SIGNALS}
    yield
    for number, handler in saved.items():
        signal.signal(number, handler)


def wait_until(condition: Callable[[], bool]) -> None:
    deadline = time.monotonic() + 10
    while not condition():
        assert time.monotonic() < deadline
        time.sleep(0.01)


@pytest.mark.usefixtures("restore_signal_handlers")
def test_a_signal_while_workers_start_reaches_sanic_once_they_all_serve() -> None:
    manager = FakeManager(FakeProcess("one", None), FakeProcess("two", None))
    shutdown = supervision.Shutdown(poll=0.01)
    shutdown._take_over(manager)
    try:
        shutdown._on_signal(signal.SIGTERM, None)
        time.sleep(0.1)
        assert manager.stopped_with == []  # still in Sanic's wait for acknowledgements
        manager.wait_for_ack()  # the wrapper Sanic's run() calls: the original, then go
        assert manager.acks_awaited == 1
        manager.worker_state["one"] = {"state": "ACKED", "serving": True}
        manager.worker_state["two"] = {"state": "ACKED"}  # acknowledged, not serving yet
        time.sleep(0.1)
        assert manager.stopped_with == []
        manager.worker_state["two"] = {"state": "ACKED", "serving": True}
        wait_until(lambda: manager.stopped_with != [])
        assert manager.stopped_with == [signal.SIGTERM]
    finally:
        shutdown._let_go()
    assert manager.stopped_with == [signal.SIGTERM]  # once


@pytest.mark.usefixtures("restore_signal_handlers")
def test_a_dead_worker_does_not_hold_up_a_stop() -> None:
    manager = FakeManager(FakeProcess("alive", None), FakeProcess("dead", -9))
    manager.worker_state["alive"] = {"state": "ACKED", "serving": True}
    shutdown = supervision.Shutdown(poll=0.01)
    shutdown._take_over(manager)
    try:
        manager.wait_for_ack()
        shutdown._on_signal(signal.SIGINT, None)
        wait_until(lambda: manager.stopped_with != [])
    finally:
        shutdown._let_go()
    assert manager.stopped_with == [signal.SIGINT]


@pytest.mark.usefixtures("restore_signal_handlers")
def test_a_signal_before_the_workers_start_starts_none() -> None:
    manager = FakeManager(FakeProcess("one", None))
    shutdown = supervision.Shutdown()
    shutdown._on_signal(signal.SIGTERM, None)
    shutdown._take_over(manager)
    assert [worker.auto_start for worker in manager.workers] == [False]
    assert manager.sent == [None]  # Sanic's "stop" for its monitor loop
    manager.wait_for_ack()  # returns at once: no worker will ever acknowledge
    assert manager.acks_awaited == 0
    shutdown._let_go()
    assert manager.stopped_with == []


def test_no_worker_is_restarted_before_all_started_or_once_a_stop_was_asked_for() -> None:
    app = fake_app(FakeProcess("killed", -9))
    shutdown = supervision.Shutdown()
    watch = supervision.WorkerWatch(app, shutdown=shutdown)
    watch.check()
    assert app.sent == []  # Sanic is still waiting for acknowledgements
    shutdown._acked.set()
    watch.check()
    assert app.sent == ["killed"]
    shutdown.signal = signal.SIGTERM
    watch.check()
    assert app.sent == ["killed"]
