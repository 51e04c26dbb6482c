"""Finding, choosing, loading and mounting plugins.

Finding reads entry-point metadata only; loading imports. The two are separate so
``aura-livekit-backend plugins`` can name a plugin whose import fails, and so that
clashes (two plugins with one name) are found before anything is imported. Every
failure is a :class:`PluginError` whose message names the plugin and its
distribution: a broken third-party plugin must never look like a broken service.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from importlib.metadata import EntryPoint, entry_points

from sanic import Blueprint, DefaultSanic

from .auth.gate import Gate
from .auth.policy import Policies
from .event_feed import EventFeed, NoEventLog
from .livekit import LiveKit
from .metrics import Metrics
from .plugin import ENTRY_POINT_GROUP, PLUGIN_NAME, Plugin, PluginContext
from .settings import Settings, SettingsError

__all__ = [
    "MountedPlugin",
    "PluginError",
    "PluginSource",
    "Services",
    "discover",
    "given",
    "mount_plugins",
    "select",
    "set_up",
]

#: Where plugins handed to ``create_app`` directly say they come from.
GIVEN = "(given to create_app)"


class PluginError(Exception):
    """A plugin cannot be used; the message names it, its distribution and the cause."""


@dataclass(frozen=True)
class PluginSource:
    """A plugin that was found, not yet imported."""

    name: str
    distribution: str
    version: str
    #: Imports and returns the plugin object.
    load: Callable[[], object]
    #: Where it points, ``module:attribute``, for messages.
    target: str = ""

    @property
    def label(self) -> str:
        """``'name' (distribution version)``, how messages name the plugin."""
        origin = f"{self.distribution} {self.version}".strip()
        return f"plugin '{self.name}' ({origin})"


@dataclass(frozen=True)
class Services:
    """What the core hands every plugin, for one app."""

    livekit: LiveKit
    metrics: Metrics | None = None
    #: Authentication, rate limits and policies; ``ctx.add_policy`` adds to its policies.
    gate: Gate | None = None
    #: The worker's one follower of the event log: ``ctx.events`` (None: no log here).
    events: EventFeed | None = None


@dataclass(frozen=True)
class MountedPlugin:
    """A plugin as the app runs it, or would if enabled."""

    source: PluginSource
    enabled: bool
    #: ``METHOD /path`` of every route, under the API prefix.
    routes: tuple[str, ...]
    description: str
    #: Event names the plugin subscribed to.
    subscriptions: frozenset[str] = frozenset()


def _from_entry_point(entry_point: EntryPoint) -> PluginSource:
    dist = entry_point.dist
    return PluginSource(
        name=entry_point.name,
        distribution=dist.name if dist else "?",
        version=dist.version if dist else "",
        load=entry_point.load,
        target=entry_point.value,
    )


def discover() -> list[PluginSource]:
    """Every installed plugin, from entry-point metadata, in a stable order."""
    found = (_from_entry_point(ep) for ep in entry_points(group=ENTRY_POINT_GROUP))
    return sorted(found, key=lambda source: (source.name, source.distribution))


def given(plugins: Mapping[str, Plugin]) -> list[PluginSource]:
    """Plugins handed to the app factory directly (tests), in the order given."""
    return [
        PluginSource(name=name, distribution=GIVEN, version="", load=_returning(plugin))
        for name, plugin in plugins.items()
    ]


def _returning(plugin: Plugin) -> Callable[[], Plugin]:
    # A closure per plugin: a lambda in the comprehension would see only the last one.
    return lambda: plugin


def select(sources: Iterable[PluginSource], settings: Settings) -> list[tuple[PluginSource, bool]]:
    """Check names and pair each plugin with whether the settings enable it."""
    sources = list(sources)
    seen: dict[str, PluginSource] = {}
    for source in sources:
        if not PLUGIN_NAME.fullmatch(source.name):
            raise PluginError(
                f"{source.label} has an invalid name: use lowercase letters, digits, '_' or '-'"
            )
        if source.name in seen:
            raise PluginError(
                f"two plugins are named '{source.name}': {seen[source.name].label} "
                f"and {source.label}; uninstall one of them"
            )
        seen[source.name] = source
    for variable, names in (
        ("AURA_PLUGINS", settings.plugins or []),
        ("AURA_DISABLED_PLUGINS", settings.disabled_plugins),
    ):
        unknown = sorted(set(names) - seen.keys())
        if unknown:
            # A typo here could leave a plugin on that was meant to be off: refuse it.
            raise PluginError(
                f"{variable} names unknown plugin(s) {', '.join(unknown)}; "
                f"installed: {', '.join(sorted(seen)) or 'none'}"
            )
    return [
        (
            source,
            (settings.plugins is None or source.name in settings.plugins)
            and source.name not in settings.disabled_plugins,
        )
        for source in sources
    ]


def _load(source: PluginSource) -> Plugin:
    try:
        plugin = source.load()
    except Exception as exc:
        raise PluginError(f"{source.label} failed to import: {type(exc).__name__}: {exc}") from exc
    if not isinstance(plugin, Plugin):
        raise PluginError(
            f"{source.label} points at {source.target or type(plugin).__name__}, "
            "which is not an aura_livekit_backend.plugin.Plugin"
        )
    return plugin


_PARAM = re.compile(r"<[^:>]+(?::([^>]+))?>")


def _route_shape(path: str) -> str:
    """The path with parameter names dropped: ``/room/<a>`` and ``/room/<b:str>`` are one route."""
    return _PARAM.sub(lambda match: f"<{match.group(1) or 'str'}>", path)


def _routes(blueprint: Blueprint, prefix: str) -> list[tuple[str, str]]:
    # Sanic keeps a blueprint's routes here until it is registered; there is no public
    # reader, and clashes must be found before registering (Sanic's own check is an
    # assert, or an error that names no plugin).
    routes = []
    for future in blueprint._future_routes:
        uri = future.uri if future.uri.startswith("/") else "/" + future.uri
        path = (prefix + uri).rstrip("/") or "/"
        for method in sorted(future.methods or ()):
            routes.append((method.upper(), path))
    return sorted(routes, key=lambda route: (route[1], route[0]))


def _decode_paths(blueprint: Blueprint) -> None:
    """Percent-decode every route's path parameters once, as the contract promises.

    Sanic leaves ``%00`` or ``%E2%80%8B`` encoded unless a route asks; a plugin that
    forgot would answer 404 where the house answers 400.
    """
    blueprint._future_routes = {
        future._replace(unquote=True) for future in blueprint._future_routes
    }


def set_up(
    source: PluginSource, settings: Settings, services: Services
) -> tuple[Plugin, PluginContext, list[tuple[str, str]]]:
    """Import ``source`` and run its ``setup`` on a fresh blueprint under the API prefix."""
    plugin = _load(source)
    prefix = "" if plugin.at_root else settings.api_prefix
    blueprint = Blueprint(f"plugin_{source.name.replace('-', '_')}", url_prefix=prefix or None)
    livekit = services.livekit
    context = PluginContext(
        name=source.name,
        settings=settings,
        blueprint=blueprint,
        rooms=livekit.rooms,
        tokens=livekit.tokens,
        joins=livekit.joins,
        livekit=livekit.gateway,
        metrics=services.metrics,
        events=services.events if services.events is not None else EventFeed(NoEventLog()),
        # The worker's one policy chain: ctx.add_policy adds to what the joins consult.
        policies=services.gate.policies if services.gate is not None else Policies(),
    )
    try:
        plugin.setup(context)
    except SettingsError as exc:
        raise PluginError(f"{source.label} is misconfigured: {exc}") from exc
    except Exception as exc:
        raise PluginError(f"{source.label} failed to set up: {type(exc).__name__}: {exc}") from exc
    _decode_paths(blueprint)
    return plugin, context, _routes(blueprint, prefix)


def mount_plugins(
    app: DefaultSanic, sources: Iterable[PluginSource], settings: Settings, services: Services
) -> list[MountedPlugin]:
    """Set up every enabled plugin and register its routes on ``app``, refusing clashes."""
    mounted = []
    owners: dict[tuple[str, str], PluginSource] = {}
    contexts: list[PluginContext] = []
    for source, enabled in select(sources, settings):
        if not enabled:
            mounted.append(MountedPlugin(source, False, (), ""))
            continue
        plugin, context, routes = set_up(source, settings, services)
        for method, path in routes:
            key = (method, _route_shape(path))
            if key in owners:
                raise PluginError(
                    f"route {method} {path} is claimed by two plugins: "
                    f"{owners[key].label} and {source.label}"
                )
            owners[key] = source
        contexts.append(context)
        mounted.append(
            MountedPlugin(
                source,
                True,
                tuple(f"{m} {p}" for m, p in routes),
                plugin.description,
                frozenset(context.subscriptions),
            )
        )
    for context in contexts:
        app.blueprint(context.blueprint)
        for scheme, description in context.bearer_schemes.items():
            app.ext.openapi.add_security_scheme(scheme, "http", description=description or None)
    return mounted
