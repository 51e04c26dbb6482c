"""Plugins: discovery through entry points, order, selection, and every failure named."""

from __future__ import annotations

import pytest

from aura_livekit_backend import __version__, create_app
from aura_livekit_backend.plugin import Plugin, PluginContext
from aura_livekit_backend.plugin_loader import PluginError, PluginSource, discover, select

BUILTINS = {"health", "rooms", "tokens"}


def test_builtins_come_from_our_own_entry_points() -> None:
    found = {source.name: source for source in discover()}
    assert found.keys() >= BUILTINS
    for name in BUILTINS:
        assert found[name].distribution == "aura-livekit-backend"
        assert found[name].version == __version__
        assert found[name].target.startswith("aura_livekit_backend.endpoints.")


def test_installed_third_party_plugin_is_mounted_under_the_prefix(site, serve) -> None:
    site.install(
        "acme-hello", {"hello": "acme_hello:plugin"}, {"acme_hello": site.route_plugin("/hello")}
    )
    client = serve()
    response = client.get("/api/hello")
    assert response.status_code == 200
    assert response.json == {"reply": "hi", "topic": "새 회의"}
    names = [p.source.name for p in client.app.ctx.plugins]
    assert names == sorted(names)
    hello = next(p for p in client.app.ctx.plugins if p.source.name == "hello")
    assert (hello.source.distribution, hello.routes) == ("acme-hello", ("GET /api/hello",))


def test_load_order_is_by_name_not_by_installation(site) -> None:
    site.install(
        "acme-order",
        {"zeta": "acme_order:plugin", "alpha": "acme_order_alpha:plugin"},
        {"acme_order": site.route_plugin("/z"), "acme_order_alpha": site.route_plugin("/a")},
    )
    names = [source.name for source in discover()]
    assert names.index("alpha") < names.index("health") < names.index("zeta")


def test_two_plugins_with_one_name_stop_start_up_naming_both(site, make_settings) -> None:
    site.install("acme-one", {"hello": "acme_one:plugin"}, {"acme_one": site.route_plugin("/a")})
    site.install("acme-two", {"hello": "acme_two:plugin"}, {"acme_two": site.route_plugin("/b")})
    with pytest.raises(PluginError) as caught:
        create_app(make_settings())
    message = str(caught.value)
    assert "two plugins are named 'hello'" in message
    assert "acme-one 1.0" in message and "acme-two 1.0" in message


def test_a_route_clash_stops_start_up_naming_both_plugins(site, make_settings) -> None:
    site.install(
        "acme-clash", {"clash": "acme_clash:plugin"}, {"acme_clash": site.route_plugin("/health")}
    )
    with pytest.raises(PluginError) as caught:
        create_app(make_settings())
    assert str(caught.value) == (
        "route GET /api/health is claimed by two plugins: plugin 'clash' (acme-clash 1.0) "
        f"and plugin 'health' (aura-livekit-backend {__version__})"
    )


def test_routes_differing_only_in_parameter_names_clash(make_settings) -> None:
    def first(ctx: PluginContext) -> None:
        ctx.blueprint.get("/room/<room_id>")(lambda request, room_id: None)

    def second(ctx: PluginContext) -> None:
        ctx.blueprint.get("/room/<name:str>")(lambda request, name: None)

    with pytest.raises(PluginError, match=r"route GET /api/room/<name:str> is claimed by two"):
        create_app(make_settings(), plugins={"a": Plugin(first), "b": Plugin(second)})


def test_a_plugin_that_fails_to_import_is_named_with_its_cause(site, make_settings) -> None:
    site.install(
        "acme-broken", {"broken": "acme_broken:plugin"}, {"acme_broken": "import nonexistent_dep\n"}
    )
    with pytest.raises(PluginError) as caught:
        create_app(make_settings())
    assert str(caught.value) == (
        "plugin 'broken' (acme-broken 1.0) failed to import: "
        "ModuleNotFoundError: No module named 'nonexistent_dep'"
    )


def test_a_plugin_whose_setup_raises_is_named_with_its_cause(make_settings) -> None:
    def setup(ctx: PluginContext) -> None:
        raise ValueError("needs FOO_URL")

    with pytest.raises(
        PluginError,
        match=r"^plugin 'bad' \(\(given to create_app\)\) failed to set up: "
        r"ValueError: needs FOO_URL$",
    ):
        create_app(make_settings(), plugins={"bad": Plugin(setup)})


def test_an_entry_point_that_is_not_a_plugin_is_refused(site, make_settings) -> None:
    site.install(
        "acme-odd", {"odd": "acme_odd:plugin"}, {"acme_odd": "def plugin(ctx):\n    pass\n"}
    )
    with pytest.raises(
        PluginError, match=r"plugin 'odd' \(acme-odd 1.0\) points at acme_odd:plugin, which is not"
    ):
        create_app(make_settings())


@pytest.mark.parametrize("name", ["Hello", "has space", "1st", "x" * 65])
def test_plugin_names_must_be_simple(name: str, make_settings) -> None:
    with pytest.raises(PluginError, match="invalid name"):
        create_app(make_settings(), plugins={name: Plugin(lambda ctx: None)})


def test_settings_enable_only_some_plugins(serve, make_settings) -> None:
    client = serve(make_settings(plugins=["tokens"]))
    assert client.get("/api/health").status_code == 404
    enabled = {p.source.name: p.enabled for p in client.app.ctx.plugins}
    assert enabled["tokens"] and not enabled["health"] and not enabled["rooms"]


def test_settings_disable_a_plugin(serve, make_settings) -> None:
    client = serve(make_settings(disabled_plugins=["health"]))
    assert client.get("/api/health").status_code == 404


@pytest.mark.parametrize(
    ("field", "variable"),
    [("plugins", "AURA_PLUGINS"), ("disabled_plugins", "AURA_DISABLED_PLUGINS")],
)
def test_naming_an_unknown_plugin_is_an_error(field: str, variable: str, make_settings) -> None:
    with pytest.raises(
        PluginError, match=rf"^{variable} names unknown plugin\(s\) helth; installed: "
    ):
        create_app(make_settings(**{field: ["helth"]}))


def test_select_pairs_plugins_with_their_state(make_settings) -> None:
    sources = [PluginSource(n, "d", "1", load=lambda: None) for n in ("a", "b", "c")]
    chosen = select(sources, make_settings(plugins=["a", "b"], disabled_plugins=["b"]))
    assert [(s.name, on) for s, on in chosen] == [("a", True), ("b", False), ("c", False)]


def test_plugins_reach_settings_and_the_shared_livekit_gateway(serve, make_settings) -> None:
    seen: list[PluginContext] = []

    def setup(ctx: PluginContext) -> None:
        seen.append(ctx)

    client = serve(make_settings(default_room_topic="standup"), plugins={"spy": Plugin(setup)})
    (ctx,) = seen
    assert ctx.name == "spy"
    assert ctx.settings.default_room_topic == "standup"
    # The very parts the app opens for its workers: one client per worker, shared.
    livekit = client.app.ctx.livekit
    assert (ctx.rooms, ctx.tokens, ctx.joins) == (livekit.rooms, livekit.tokens, livekit.joins)
    assert ctx.livekit is livekit.gateway


def test_the_listing_names_metrics_as_the_metrics_plugins_route(make_settings) -> None:
    import io

    from aura_livekit_backend.cli import list_plugins

    out = io.StringIO()
    assert list_plugins(make_settings(), out=out) == 0
    listing = out.getvalue()
    metrics = listing.split("metrics  ", 1)[1].split("\nrooms  ", 1)[0]
    assert "GET     /metrics" in metrics
    off = io.StringIO()
    list_plugins(make_settings(metrics=False), out=off)
    assert "GET     /metrics" not in off.getvalue()
