"""The app factory: settings and plugins in, a ready Sanic app out, with no I/O.

Sanic runs the factory in the main process and again in every worker process, so
it stays cheap: it reads settings, imports and sets up plugins, and registers the
listeners that open the worker's LiveKit gateway when the worker starts.
"""

from __future__ import annotations

import itertools
from argparse import Namespace
from collections.abc import Mapping
from functools import partial

import orjson
from sanic import DefaultSanic
from sanic_ext import Extend
from sanic_ext.config import PRIORITY as SANIC_EXT_PRIORITY
from sanic_ext.extensions.http.extension import HTTPExtension
from sanic_ext.extensions.openapi.builders import SpecificationBuilder
from sanic_ext.extensions.openapi.extension import OpenAPIExtension

from . import __version__
from .access import install as install_access
from .auth.gate import Gate
from .cache_learning import CacheFollower
from .docs_page import install as install_docs_page
from .errors import JsonErrorHandler
from .event_feed import EventFeed
from .eventlog.factory import build_event_log
from .events import SignalEvents
from .http_limits import GuardedSanic
from .http_limits import install as install_http_limits
from .livekit import LiveKit
from .logs import log_config
from .metrics import Metrics
from .observability import install as install_observability
from .plugin import Plugin
from .plugin_loader import Services, discover, given, mount_plugins
from .schemas import room_json
from .settings import Settings, SettingsError, load_settings
from .webhooks import WebhookIngest

__all__ = ["APP_NAME", "create_app"]

APP_NAME = "aura_livekit_backend"

# sanic-ext's OpenAPI document keys responses by int status codes.
_dumps = partial(orjson.dumps, option=orjson.OPT_NON_STR_KEYS)

# Sanic wants one name per app in a process; tests build many apps in one process.
_app_numbers = itertools.count()


def _resolve(settings: Settings | Namespace | None) -> Settings:
    if isinstance(settings, Settings):
        return settings
    # No settings, or Sanic's own CLI handing us its argparse Namespace
    # (`sanic aura_livekit_backend:create_app --factory`): read the environment,
    # and hold it to the same rules as our console script.
    resolved = load_settings()
    problem = None if resolved.dev else resolved.credential_problem()
    if problem:
        raise SettingsError(problem)
    return resolved


def _add_auto_routes_at_once(app: DefaultSanic) -> None:
    """Let sanic-ext add its HEAD and OPTIONS routes without rebuilding the signal
    router for each.

    sanic-ext adds them in a ``before_server_start`` listener, after Sanic has
    finalized its routers; every route added then goes through ``app.amend()``, which
    rebuilds the signal router each time (sanic#3087): 56 times per start, which
    cost ~0.25 s of CPU in every worker start and every test that serves the app.
    Routes add no signals, so the signal router only reads as not finalized while that
    listener runs (``amend()`` then leaves it alone) and stays as it was built, able to
    dispatch meanwhile; it is rebuilt once only if signals were added after all.
    """
    held: list[int] = []

    def hold_signals(app: DefaultSanic) -> None:
        router = app.signal_router
        if router.finalized:
            held.append(len(router.routes))
            router.finalized = False

    def release_signals(app: DefaultSanic) -> None:
        if not held:
            return
        router = app.signal_router
        if len(router.routes) == held.pop():
            router.finalized = True
        else:
            router.reset()  # type: ignore[no-untyped-call]  # sanic-routing is untyped
            app.signalize(bool(app.config.TOUCHUP))

    # Listeners of higher priority run first.
    app.register_listener(hold_signals, "before_server_start", priority=SANIC_EXT_PRIORITY + 1)
    app.register_listener(release_signals, "before_server_start", priority=SANIC_EXT_PRIORITY - 1)


def create_app(
    settings: Settings | Namespace | None = None,
    *,
    plugins: Mapping[str, Plugin] | None = None,
) -> DefaultSanic:
    """Build the service's Sanic app.

    ``settings``: the settings to run with; read from the environment when omitted.
    ``plugins``: the plugins to mount, by name, instead of the installed ones (tests).

    Raises :class:`~aura_livekit_backend.settings.SettingsError` for bad settings and
    :class:`~aura_livekit_backend.plugin_loader.PluginError` for a plugin that cannot
    be used.
    """
    settings = _resolve(settings)
    # sanic-ext keeps one OpenAPI document per process, and a document-wide security
    # requirement or scheme would outlive this app into the next one built here.
    SpecificationBuilder.reset()
    number = next(_app_numbers)
    # Strict HTTP/1.1 reading, request deadlines and a connection cap (http_limits.py).
    app = GuardedSanic(
        APP_NAME if number == 0 else f"{APP_NAME}_{number}",
        error_handler=JsonErrorHandler(),
        # orjson: 2 ms instead of 24 ms to encode 10,000 rooms (benchmarks/rooms_breakdown.py).
        dumps=_dumps,
        log_config=log_config(settings),
    )
    app.config.FALLBACK_ERROR_FORMAT = "json"
    app.config.REQUEST_MAX_SIZE = settings.max_body_bytes
    install_http_limits(app, settings)
    # Our own access line (observability.py) carries the request id; Sanic's would not.
    app.config.ACCESS_LOG = False
    app.config.FORWARDED_SECRET = (
        settings.forwarded_secret.get_secret_value() if settings.forwarded_secret else None
    )
    app.config.REAL_IP_HEADER = settings.real_ip_header
    app.config.PROXIES_COUNT = settings.proxies_count
    app.config.OAS = settings.docs
    app.config.OAS_URL_PREFIX = "/docs"
    # sanic-ext's pages load Swagger UI or Redoc from a CDN: ours serves its own (docs_page.py).
    app.config.OAS_UI_SWAGGER = False
    app.config.OAS_UI_REDOC = False
    # No origin configured: no CORS headers at all, so browsers allow no foreign origin;
    # --dev without a list allows any, for a frontend on another local port.
    origins = settings.cors_origins or (["*"] if settings.dev else [])
    app.config.CORS = bool(origins)
    app.config.CORS_ORIGINS = ",".join(origins)
    # Named, not "*": the Fetch standard never lets "*" cover Authorization (API keys).
    app.config.CORS_ALLOW_HEADERS = "authorization,content-type,x-request-id"
    # Retry-After and WWW-Authenticate are not CORS-safelisted: a page reads them only so.
    app.config.CORS_EXPOSE_HEADERS = "x-request-id,retry-after,www-authenticate"
    # Only what we use: dependency injection would dispatch a signal on every request.
    Extend(app, extensions=[HTTPExtension, OpenAPIExtension], built_in_extensions=False)
    _add_auto_routes_at_once(app)
    app.ext.openapi.describe(
        "aura-livekit-backend",
        version=__version__,
        description="Creates LiveKit rooms and mints LiveKit access tokens.",
    )
    install_docs_page(app, title="aura-livekit-backend API")

    metrics = Metrics() if settings.metrics else None
    # Built here, opened per worker below: SQLite in AURA_DATA_DIR, or Redis Streams.
    event_log = build_event_log(settings)
    app.ctx.event_log = event_log
    # The worker's one reader of the log, fanning entries out to ctx.events' followers.
    feed = EventFeed(event_log, buffer=settings.events_buffer, metrics=metrics)
    app.ctx.event_feed = feed
    events = SignalEvents(app, event_log)
    gate = Gate(settings)
    livekit = LiveKit(settings, observer=metrics, events=events, gate=gate, encode_room=room_json)
    app.ctx.settings = settings
    app.ctx.livekit = livekit
    # Every worker's listing and sid cache learn LiveKit's room events from the log.
    learning = CacheFollower(feed, livekit.rooms)
    app.ctx.cache_learning = learning
    install_observability(app, settings, metrics)
    sources = discover() if plugins is None else given(plugins)
    app.ctx.gate = gate
    app.ctx.plugins = mount_plugins(
        app,
        sources,
        settings,
        Services(
            livekit,
            metrics,
            gate,
            event_log,
            webhooks=WebhookIngest(livekit.webhooks, event_log, events, counter=metrics),
            events=feed,
        ),
    )
    events.listen_to({name for mounted in app.ctx.plugins for name in mounted.subscriptions})
    install_access(app, gate.keys, gate)

    @app.before_server_start
    async def open_event_log(app: DefaultSanic) -> None:
        await event_log.open()

    @app.after_server_stop
    async def close_event_log(app: DefaultSanic) -> None:
        await event_log.close()

    # Once every before_server_start listener ran: the log is open by then.
    @app.after_server_start
    async def start_feed(app: DefaultSanic) -> None:
        feed.start()
        learning.start()

    # Before Sanic waits for open connections to finish: the event streams end here,
    # so a stop is not held up by clients that would listen for ever.
    @app.before_server_stop
    async def stop_feed(app: DefaultSanic) -> None:
        await feed.stop()
        await learning.stop()

    @app.before_server_start
    async def open_livekit(app: DefaultSanic) -> None:
        await livekit.open()

    @app.after_server_stop
    async def close_livekit(app: DefaultSanic) -> None:
        await livekit.close()

    @app.before_server_start
    async def open_gate(app: DefaultSanic) -> None:
        await gate.open()

    @app.after_server_stop
    async def close_gate(app: DefaultSanic) -> None:
        await gate.close()

    return app
