"""The console script: ``aura-livekit-backend [--host H] [--port P] [--workers N] [--dev]``.

Flags beat the environment, which beats the defaults. Every start-up problem — a bad
setting, missing credentials, a broken plugin — is one line on stderr and exit code
2; ``--traceback`` shows the whole story instead.
"""

from __future__ import annotations

import argparse
import atexit
import logging
import logging.config
import os
import sys
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from functools import partial
from pathlib import Path
from typing import TextIO

from pydantic import SecretStr
from sanic import Sanic
from sanic.worker.loader import AppLoader

from . import __version__, supervision
from .app import create_app
from .emulator import LiveKitEmulator, free_port
from .livekit import LiveKit
from .logs import log_config
from .metrics import MULTIPROC_ENV, Metrics, multiprocess_registry
from .plugin_loader import PluginError, Services, discover, select, set_up
from .settings import DEV_API_KEY, DEV_API_SECRET, Settings, SettingsError, load_settings

__all__ = ["main"]

PROG = "aura-livekit-backend"
#: Exit code for every start-up problem the user can fix.
EXIT_USAGE = 2

logger = logging.getLogger("aura_livekit_backend")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=PROG,
        description="Serve the LiveKit rooms-and-tokens API. Settings come from the "
        "environment (see the README); these flags override it.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    parser.add_argument("--host", help="address to bind (AURA_HOST, default 127.0.0.1)")
    parser.add_argument("--port", type=int, help="port to bind (AURA_PORT, default 8000)")
    parser.add_argument("--workers", type=int, help="worker processes (AURA_WORKERS, default 1)")
    parser.add_argument(
        "--dev",
        action="store_true",
        default=None,
        help="development mode: LiveKit's dev credentials (devkey/secret) are used and allowed",
    )
    parser.add_argument(
        "--traceback", action="store_true", help="show the full traceback of a start-up failure"
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    commands.add_parser("plugins", help="list the installed plugins and their routes")
    return parser


def _dev_settings(settings: Settings) -> Settings:
    """Settings for --dev: LiveKit's development pair unless credentials were given."""
    update: dict[str, object] = {}
    if not settings.livekit_api_key and not settings.livekit_api_secret:
        update = {"livekit_api_key": DEV_API_KEY, "livekit_api_secret": SecretStr(DEV_API_SECRET)}
    return settings.model_copy(update=update)


def _dev_emulator(settings: Settings) -> LiveKitEmulator | None:
    """For --dev with no LIVEKIT_URL given: a LiveKit emulator to start, not yet started.

    One emulator in the main process serves every worker over HTTP, so all workers
    see the same rooms, as they would with one LiveKit.
    """
    if "livekit_url" in settings.model_fields_set:
        return None
    secret = settings.livekit_api_secret.get_secret_value() if settings.livekit_api_secret else ""
    return LiveKitEmulator(settings.livekit_api_key or "", secret, port=free_port())


def _dev_issuer(settings: Settings) -> Settings:
    """For --dev with ``AURA_AUTH=jwt`` and no ``AURA_AUTH_ISSUER``: start a development
    issuer beside the emulator, and the settings that trust it.

    It listens on the service's port + 1 (any free port if that one is taken), lives as
    long as this process, and signs a token for whoever asks: development only.
    """
    if settings.auth_mode != "jwt" or settings.auth_issuer:
        return settings
    from .testing.issuer import DEV_AUDIENCE, DevIssuer

    audience = settings.auth_audience or DEV_AUDIENCE
    try:
        issuer = DevIssuer(audience, port=settings.port + 1 if settings.port < 65535 else 0)
        issuer.start()
    except OSError:
        issuer = DevIssuer(audience).start()
    atexit.register(issuer.stop)
    logger.warning(
        "development mode: AURA_AUTH=jwt and no AURA_AUTH_ISSUER, so a development issuer "
        "answers at %s and signs a token for anyone (audience %s): "
        "curl '%s/token?sub=ann&name=Ann'",
        issuer.url,
        audience,
        issuer.url,
    )
    return settings.model_copy(
        update={"auth_issuer": issuer.url, "auth_audience": audience, "auth_jwks_url": None}
    )


def list_plugins(settings: Settings, out: TextIO = sys.stdout) -> int:
    """Print every installed plugin: name, distribution, version, enabled, routes."""
    # The same parts a worker gets (built, never opened), so every route shows: the
    # metrics plugin's /metrics needs metrics to exist.
    services = Services(LiveKit(settings), Metrics() if settings.metrics else None)
    status = 0
    for source, enabled in select(discover(), settings):
        state = "enabled" if enabled else "disabled"
        print(f"{source.name}  {source.distribution} {source.version}  {state}", file=out)
        try:
            plugin, _, routes = set_up(source, settings, services)
        except PluginError as exc:
            print(f"    error: {exc}", file=out)
            status = EXIT_USAGE
            continue
        if plugin.description:
            print(f"    {plugin.description}", file=out)
        for method, path in routes:
            print(f"    {method:7} {path}", file=out)
    return status


def serve(settings: Settings, emulator: LiveKitEmulator | None = None) -> None:
    """Serve the API on ``settings.workers`` worker processes until SIGINT/SIGTERM.

    ``emulator`` (``--dev`` only) is started once the app is known to build.
    """
    loader = AppLoader(factory=partial(create_app, settings))
    # Built here, in the main process, so a broken plugin fails before any worker starts.
    app = loader.load()
    supervision.install(app)
    if emulator is not None:
        emulator.start()
        logger.warning(
            "development mode: LIVEKIT_URL is not set, so a LiveKit *emulator* answers at %s "
            "(rooms and tokens only, no media; set LIVEKIT_URL to use a real LiveKit); "
            "its /_emulator hooks take 'Authorization: Bearer %s'",
            emulator.url,
            emulator.hook_token,
        )
    elif settings.dev:
        logger.warning("development mode: using the LiveKit at %s", settings.livekit_url)
    if settings.dev:
        logger.warning("development mode: never expose this service to a network")
    elif settings.secret_is_weak():
        logger.warning(
            "LIVEKIT_API_SECRET is shorter than 32 bytes: tokens signed with it are easier to forge"
        )
    if settings.auth_mode == "none":
        logger.warning(
            "AURA_API_KEYS is not set: anyone who can reach this service can create rooms "
            "and mint tokens"
        )
    if settings.metrics_port is not None and settings.metrics:
        _serve_metrics(settings, settings.metrics_port)
    app.prepare(host=settings.host, port=settings.port, workers=settings.workers, motd=False)
    Sanic.serve(primary=app, app_loader=loader)


@contextmanager
def _metrics_directory() -> Iterator[None]:
    """A fresh directory for prometheus-client's multi-process files, for this run only.

    Set before any worker (or metric) exists: workers inherit the variable, and a
    directory left from an earlier run would add its counts to ours.
    """
    given = os.environ.get(MULTIPROC_ENV)
    if given:
        path = Path(given)
        path.mkdir(parents=True, exist_ok=True)
        for stale in path.glob("*.db"):
            stale.unlink()
        yield
        return
    with tempfile.TemporaryDirectory(prefix="aura-metrics-") as temporary:
        os.environ[MULTIPROC_ENV] = temporary
        try:
            yield
        finally:
            del os.environ[MULTIPROC_ENV]


def _serve_metrics(settings: Settings, port: int) -> None:
    """Serve /metrics from the main process on ``port``, summing every worker."""
    from prometheus_client import start_http_server

    start_http_server(port, addr=settings.host, registry=multiprocess_registry())
    logger.info("metrics on http://%s:%s/metrics", settings.host, port)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the console script; returns the exit code."""
    args = _parser().parse_args(argv)
    try:
        settings = load_settings(host=args.host, port=args.port, workers=args.workers, dev=args.dev)
        # Configured before anything logs, the same way Sanic configures it in every worker.
        logging.config.dictConfig(log_config(settings))
        if args.command == "plugins":
            return list_plugins(settings)
        if not settings.dev:
            problem = settings.credential_problem()
            if problem:
                raise SettingsError(problem)
            with _metrics_directory():
                serve(settings)
            return 0
        settings = _dev_issuer(_dev_settings(settings))
        emulator = _dev_emulator(settings)
        if emulator is not None:
            settings = settings.model_copy(update={"livekit_url": emulator.url})
        try:
            with _metrics_directory():
                serve(settings, emulator)
        finally:
            if emulator is not None:
                emulator.stop()
    except (SettingsError, PluginError) as exc:
        if args.traceback:
            raise
        print(f"{PROG}: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    return 0
