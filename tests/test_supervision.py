"""WorkerWatch's decisions, on stand-ins for Sanic's processes (the real thing: test_cli.py)."""

from __future__ import annotations

from types import SimpleNamespace

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
    )
    return SimpleNamespace(manager=manager, sent=sent)


def test_the_watch_restarts_only_failed_workers_and_gives_up_on_a_crash_loop(caplog) -> None:
    app = fake_app(FakeProcess("alive", None), FakeProcess("clean", 0), FakeProcess("killed", -9))
    watch = supervision.WorkerWatch(app)
    for _ in range(supervision.MAX_RESTARTS + 3):
        watch.check()
    assert app.sent == ["killed"] * supervision.MAX_RESTARTS
    assert "keeps dying (exit code -9): not restarting it again" in caplog.text


def test_the_watch_leaves_workers_alone_while_sanic_shuts_down() -> None:
    app = fake_app(FakeProcess("terminated", -15), shutting_down=True)
    supervision.WorkerWatch(app).check()
    assert app.sent == []
