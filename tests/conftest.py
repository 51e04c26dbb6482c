"""Shared fixtures: a clean environment, the kit under our own names, fake distributions.

The kit's module-scoped fixtures (``module_aura_client`` and its emulator) are used
directly, in module-scoped fixtures of the test files whose tests only read.
"""

from __future__ import annotations

import os
import subprocess
import textwrap
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from aura_livekit_backend import Settings
from aura_livekit_backend.plugin import ENTRY_POINT_GROUP, Plugin
from aura_livekit_backend.testing.client import ServiceClient


def _forget_the_developers_environment(monkeypatch: pytest.MonkeyPatch, cwd: Path) -> None:
    for name in list(os.environ):
        if name.startswith(("LIVEKIT_", "AURA_")):
            monkeypatch.delenv(name)
    monkeypatch.chdir(cwd)


@pytest.fixture(scope="session", autouse=True)
def clean_session_environment(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """The same for the session: module-scoped apps are built before any test's own."""
    with pytest.MonkeyPatch.context() as monkeypatch:
        _forget_the_developers_environment(monkeypatch, tmp_path_factory.mktemp("cwd"))
        yield


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No LIVEKIT_*/AURA_* variable or .env file of the developer's reaches a test."""
    _forget_the_developers_environment(monkeypatch, tmp_path)


@pytest.fixture
def make_settings(aura_settings: Callable[..., Settings]) -> Callable[..., Settings]:
    """``make_settings(**fields)``: settings pointed at this test's LiveKit emulator (the kit)."""
    return aura_settings


@pytest.fixture
def settings(aura_settings: Callable[..., Settings]) -> Settings:
    """Default test settings, pointed at this test's LiveKit emulator."""
    return aura_settings()


@pytest.fixture
def serve(aura_client: Callable[..., ServiceClient]) -> Callable[..., ServiceClient]:
    """``serve(settings=None, *, plugins=None, **fields)``: the kit's ``aura_client``."""
    return aura_client


@pytest.fixture
def core_plugins() -> dict[str, Plugin]:
    """The core's endpoints for rooms, tokens, metrics and LiveKit's webhooks, and no
    installed plugin: for ``serve(plugins={"mine": ..., **core_plugins})``."""
    from aura_livekit_backend.endpoints import health, metrics, rooms, tokens, webhooks

    return {
        "health": health.plugin,
        "metrics": metrics.plugin,
        "rooms": rooms.plugin,
        "tokens": tokens.plugin,
        "webhooks": webhooks.plugin,
    }


def _write_distribution(
    root: Path,
    name: str,
    plugins: dict[str, str],
    modules: dict[str, str],
    version: str = "1.0",
) -> None:
    """Write ``name``'s modules and a ``.dist-info`` whose entry points name ``plugins``.

    ``plugins`` maps plugin name to ``module:attribute``; ``modules`` maps module name
    to source. Prepend ``root`` to sys.path (or PYTHONPATH) to "install" it.
    """
    root.mkdir(parents=True, exist_ok=True)
    for module, source in modules.items():
        (root / f"{module}.py").write_text(textwrap.dedent(source))
    info = root / f"{name.replace('-', '_')}-{version}.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n")
    lines = [f"[{ENTRY_POINT_GROUP}]"] + [f"{p} = {target}" for p, target in plugins.items()]
    (info / "entry_points.txt").write_text("\n".join(lines) + "\n")


def _route_plugin(path: str, reply: str = "hi") -> str:
    """Source of a module whose ``plugin`` answers GET ``path`` with ``{"reply": reply}``."""
    return f"""
        from sanic import json
        from aura_livekit_backend.plugin import Plugin

        def setup(ctx):
            @ctx.blueprint.get({path!r})
            async def handler(request):
                return json({{"reply": {reply!r}, "topic": ctx.settings.default_room_topic}})

        plugin = Plugin(setup=setup, description="test plugin")
    """


class Site:
    """A folder on sys.path where a test "installs" distributions."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def install(self, name: str, plugins: dict[str, str], modules: dict[str, str]) -> None:
        """Install distribution ``name`` (version 1.0) with these plugins and modules."""
        _write_distribution(self.root, name, plugins, modules)

    @staticmethod
    def route_plugin(path: str, reply: str = "hi") -> str:
        """Source of a plugin module answering GET ``path``."""
        return _route_plugin(path, reply)


@pytest.fixture
def site(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Site:
    """A :class:`Site` whose folder is on sys.path for this test."""
    root = tmp_path / "site"
    root.mkdir()
    monkeypatch.syspath_prepend(str(root))
    return Site(root)


class RedisServer:
    """A real ``redis-server`` on 127.0.0.1, started for the tests and stopped after."""

    def __init__(self) -> None:
        import shutil

        from aura_livekit_backend.emulator import free_port

        binary = shutil.which("redis-server")
        if binary is None:
            # Not a skip: CI installs it (.ci/run), and the limits must be shown shared.
            pytest.fail("redis-server is not installed: apt-get install -y redis-server")
        self.port = free_port()
        self._command = [
            binary, "--port", str(self.port), "--bind", "127.0.0.1",
            "--save", "", "--appendonly", "no",
        ]  # fmt: skip
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        """What AURA_REDIS_URL is set to."""
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> RedisServer:
        """Start it; returns once it answers PING."""
        import redis

        self.process = subprocess.Popen(
            self._command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        client = redis.Redis(host="127.0.0.1", port=self.port, socket_timeout=1)
        deadline = time.monotonic() + 15
        while True:
            try:
                if client.ping():
                    break
            except redis.ConnectionError:
                assert self.process.poll() is None, "redis-server exited at start-up"
                assert time.monotonic() < deadline, "redis-server did not come up"
                time.sleep(0.05)
        client.close()
        return self

    def stop(self) -> None:
        """Stop it (a Redis that went down)."""
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=10)
        self.process = None

    def flush(self) -> None:
        """Forget every count."""
        import redis

        with redis.Redis(host="127.0.0.1", port=self.port, socket_timeout=1) as client:
            client.flushall()


@pytest.fixture(scope="module")
def redis_server() -> Iterator[RedisServer]:
    """A real redis-server shared by the module's tests (flush it where counts matter)."""
    server = RedisServer().start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def log_on(request: pytest.FixtureRequest) -> Callable[[str], dict[str, Any]]:
    """``log_on(backend)``: the settings fields that put the event log on ``backend``:
    ``"sqlite"`` (the default, nothing to set) or ``"redis"`` (the module's
    ``redis_server``, flushed first so counts start from nothing)."""

    def fields(backend: str) -> dict[str, Any]:
        if backend == "sqlite":
            return {}
        redis: RedisServer = request.getfixturevalue("redis_server")
        redis.flush()
        return {"redis_url": redis.url}

    return fields


@pytest.fixture
def own_redis() -> Iterator[RedisServer]:
    """A redis-server of the test's own, to stop and start again."""
    server = RedisServer().start()
    try:
        yield server
    finally:
        server.stop()
