"""The app factory: cheap, repeatable, and usable by Sanic's own loader."""

from __future__ import annotations

from argparse import Namespace

import pytest

from aura_livekit_backend import create_app
from aura_livekit_backend.settings import SettingsError


def test_many_apps_in_one_process(make_settings) -> None:
    apps = [create_app(make_settings()) for _ in range(3)]
    assert len({app.name for app in apps}) == 3


def test_the_factory_opens_nothing(make_settings) -> None:
    app = create_app(make_settings())
    with pytest.raises(RuntimeError, match="before the server started"):
        app.ctx.livekit.transport.room  # noqa: B018 (opened in a listener, not here)


def test_sanic_loader_namespace_reads_the_environment(monkeypatch) -> None:
    # `sanic aura_livekit_backend:create_app --factory` hands the factory a Namespace.
    monkeypatch.setenv("LIVEKIT_API_KEY", "APIfromenv")
    monkeypatch.setenv("LIVEKIT_API_SECRET", "from-the-environment-0123456789abcdef")
    monkeypatch.setenv("AURA_API_PREFIX", "/v2")
    app = create_app(Namespace(target="aura_livekit_backend:create_app", factory=True))
    assert app.ctx.settings.livekit_api_key == "APIfromenv"
    assert any(route.startswith("GET /v2/") for p in app.ctx.plugins for route in p.routes)


def test_sanic_loader_namespace_keeps_the_secure_defaults() -> None:
    with pytest.raises(SettingsError, match="LIVEKIT_API_SECRET"):
        create_app(Namespace())


def test_start_up_builds_the_signal_router_once_for_sanic_exts_routes(
    serve, monkeypatch: pytest.MonkeyPatch
) -> None:
    # sanic-ext adds a HEAD and an OPTIONS route per path after Sanic has finalized its
    # routers; unheld, each addition rebuilt the signal router (~90 times per start).
    from sanic.signals import SignalRouter

    finalized: list[SignalRouter] = []
    finalize = SignalRouter.finalize

    def counting(router: SignalRouter, *args, **kwargs):
        finalized.append(router)
        return finalize(router, *args, **kwargs)

    monkeypatch.setattr(SignalRouter, "finalize", counting)
    client = serve()
    assert len(finalized) == 1, len(finalized)  # Sanic's own at start-up, and no other
    # ...and what sanic-ext added works, as do the signals behind plugin events.
    assert client.request("head", "/api/health").status_code == 200
    answer = client.request("options", "/api/rooms")
    assert set(answer.headers["allow"].split(",")) == {"GET", "HEAD", "OPTIONS"}
    assert client.post("/api/room/create", json={"userName": "u"}).status_code == 200
