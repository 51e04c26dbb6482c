"""The console script: ``aura-livekit-backend [--host H] [--port P] [--workers N] [--dev]``.

Flags beat the environment, which beats the defaults. Every start-up problem — a bad
setting, missing credentials, a broken plugin, a port that cannot be listened on —
is one line on stderr and exit code 2; ``--traceback`` shows the whole story instead.
SIGINT or SIGTERM at any moment after the first few milliseconds stops the service
cleanly with exit code 0 (see :mod:`aura_livekit_backend.supervision`).

The heavy imports (Sanic, the app, LiveKit's client) happen inside the functions, after
the signal handlers are in place: they take most of a second.
"""

from __future__ import annotations

import argparse
import atexit
import errno
import gc
import ipaddress
import logging
import logging.config
import os
import signal
import socket
import sys
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from . import __version__, supervision

if TYPE_CHECKING:
    from .emulator import LiveKitEmulator
    from .settings import Settings

__all__ = ["main"]

PROG = "aura-livekit-backend"
#: Exit code for every start-up problem the user can fix.
EXIT_USAGE = 2
#: The flag that lets ``--dev`` listen on an address other hosts can reach.
DEV_ALLOW_REMOTE = "--dev-allow-remote"
#: Sanic's own default listen backlog.
BACKLOG = 100

logger = logging.getLogger("aura_livekit_backend")


class StartupError(Exception):
    """A start-up problem the user can fix, told in one line."""


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
        help="development mode: LiveKit's dev credentials (devkey/secret) are used and allowed; "
        "listens on loopback addresses only",
    )
    parser.add_argument(
        DEV_ALLOW_REMOTE,
        action="store_true",
        help="let --dev listen on an address other machines can reach (its API is open "
        "and signs with public credentials)",
    )
    parser.add_argument(
        "--traceback", action="store_true", help="show the full traceback of a start-up failure"
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    commands.add_parser("plugins", help="list the installed plugins and their routes")
    return parser


def _dev_settings(settings: Settings) -> Settings:
    """Settings for --dev: LiveKit's development pair unless credentials were given."""
    from pydantic import SecretStr

    from .settings import DEV_API_KEY, DEV_API_SECRET

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
    # Imported only here: aiohttp's server side is not needed otherwise.
    from .emulator import LiveKitEmulator, free_port

    secret = settings.livekit_api_secret.get_secret_value() if settings.livekit_api_secret else ""
    return LiveKitEmulator(settings.livekit_api_key or "", secret, port=free_port())


def _webhook_url(settings: Settings, port: int) -> str:
    """Where the service takes LiveKit's webhooks, as a process on this host reaches it."""
    host = settings.host
    if host in ("0.0.0.0", "::", ""):  # noqa: S104 (reading the setting, not binding)
        host = "127.0.0.1"
    elif ":" in host:
        host = f"[{host}]"
    return f"http://{host}:{port}{settings.webhook_path}"


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


def _is_loopback(host: str) -> bool:
    """Whether ``host`` (an address or a name) is only reachable from this machine."""
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        pass
    try:
        found = socket.getaddrinfo(host, None, proto=socket.IPPROTO_TCP)
    except socket.gaierror:
        return False  # listening on it will fail, with its own message
    return all(ipaddress.ip_address(str(info[4][0]).split("%")[0]).is_loopback for info in found)


def _check_dev_host(settings: Settings, allow_remote: bool) -> None:
    if not settings.dev:
        if allow_remote:
            raise StartupError(f"{DEV_ALLOW_REMOTE} only goes with --dev (or AURA_DEV=true)")
        return
    if not allow_remote and not _is_loopback(settings.host):
        raise StartupError(
            f"--dev serves an open API that signs with LiveKit's public development "
            f"credentials, so it listens on loopback only, not on {settings.host} "
            f"(--host/AURA_HOST); add {DEV_ALLOW_REMOTE} to listen there anyway"
        )


def _address(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def _why_not(exc: OSError, port_setting: str, host_setting: str) -> str:
    """What a failed bind means, naming the setting that can fix it."""
    if exc.errno == errno.EADDRINUSE:
        return f"the port is already in use ({port_setting})"
    if exc.errno == errno.EADDRNOTAVAIL:
        return f"the address is not one of this machine's ({host_setting})"
    if exc.errno == errno.EACCES:
        return (
            f"permission denied ({port_setting}): ports below 1024 need root "
            "or CAP_NET_BIND_SERVICE"
        )
    if isinstance(exc, socket.gaierror):
        return f"cannot resolve the host name ({host_setting}): {exc.strerror}"
    return f"{exc.strerror or exc} ({host_setting}, {port_setting})"


def _bind(host: str, port: int) -> socket.socket:
    """A listening TCP socket, made as Sanic's ``bind_socket`` makes it.

    Sanic's own function is not used: importing Sanic takes a third of a second, and
    the socket comes first (see :func:`serve`).
    """
    try:  # an address: IPv6 needs its family said
        family = socket.AF_INET6 if ipaddress.ip_address(host).version == 6 else socket.AF_INET
    except ValueError:  # a name, which may be either
        family = socket.AF_INET
    sock = socket.socket(family)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        sock.listen(BACKLOG)
    except OSError:
        sock.close()
        raise
    sock.set_inheritable(True)
    return sock


def _listen(settings: Settings) -> socket.socket:
    """The API's listening socket, bound in the main process.

    Bound before anything else starts, so a port that cannot be had is one line, and
    handed to Sanic, so nothing can take the port between a check and the real bind.
    """
    try:
        return _bind(settings.host, settings.port)
    except OSError as exc:
        raise StartupError(
            f"cannot listen on {_address(settings.host, settings.port)}: "
            + _why_not(exc, "--port/AURA_PORT", "--host/AURA_HOST")
        ) from exc


def _check_metrics_port(settings: Settings) -> None:
    if settings.metrics_port is None or not settings.metrics:
        return
    if settings.metrics_port == settings.port:
        raise StartupError(
            f"AURA_METRICS_PORT is {settings.metrics_port}, the API's port too "
            "(--port/AURA_PORT): give metrics a port of their own"
        )


def _prepare_event_log(settings: Settings) -> None:
    """Create the SQLite event log's directory and file now, in the main process.

    An unwritable AURA_DATA_DIR is then one line at start-up, before any worker
    starts. Redis (AURA_REDIS_URL) is not checked: the service serves while it is
    down, and the log recovers when it is back.
    """
    if settings.redis_url is not None:
        return
    from .eventlog import EventLogUnavailable
    from .eventlog.sqlite import default_path, prepare

    try:
        prepare(default_path(settings.data_dir))
    except EventLogUnavailable as exc:
        raise StartupError(str(exc)) from exc


def _serve_metrics(settings: Settings) -> None:
    """Serve /metrics from the main process on its own port, summing every worker."""
    from prometheus_client import start_http_server

    from .metrics import multiprocess_registry

    assert settings.metrics_port is not None
    try:
        start_http_server(
            settings.metrics_port, addr=settings.host, registry=multiprocess_registry()
        )
    except OSError as exc:
        raise StartupError(
            f"cannot serve metrics on {_address(settings.host, settings.metrics_port)}: "
            + _why_not(exc, "AURA_METRICS_PORT", "--host/AURA_HOST")
        ) from exc
    logger.info("metrics on http://%s/metrics", _address(settings.host, settings.metrics_port))


def list_plugins(settings: Settings, out: TextIO = sys.stdout) -> int:
    """Print every installed plugin: name, distribution, version, enabled, routes."""
    from .eventlog.factory import build_event_log
    from .livekit import LiveKit
    from .metrics import Metrics
    from .plugin_loader import PluginError, Services, discover, select, set_up

    # The same parts a worker gets (built, never opened), so every route shows: the
    # metrics plugin's /metrics needs metrics to exist.
    services = Services(
        LiveKit(settings),
        Metrics() if settings.metrics else None,
        event_log=build_event_log(settings),
    )
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


#: What every worker needs imported: the fork server imports it ahead of them.
WORKER_MODULES = ["aura_livekit_backend.app", "aura_livekit_backend.cli", "sanic.worker.serve"]


def _start_fork_server() -> None:
    """Start the process Sanic forks workers from, importing what they need meanwhile.

    Spawned, each worker is a new interpreter importing Sanic, the app and LiveKit's
    client — most of a second, after the main process has just done the same. The
    fork server does it once, on the other core while the main process imports, and
    each worker is a fork of it with everything imported. It is started with the
    environment as it is now (PROMETHEUS_MULTIPROC_DIR set): its workers see no later
    change.
    """
    import multiprocessing
    import multiprocessing.forkserver

    if multiprocessing.get_start_method(allow_none=True) == "forkserver":
        return  # started already
    # Set before anything asks multiprocessing for its context, which fixes it.
    multiprocessing.set_start_method("forkserver")
    multiprocessing.set_forkserver_preload(WORKER_MODULES)
    multiprocessing.forkserver.ensure_running()


def app_for_process(settings: Settings) -> Any:
    """The app factory Sanic calls in the main process and in each worker."""
    import multiprocessing

    from sanic.worker.process import Worker, WorkerProcess

    from .app import create_app

    # Sanic tells a worker who it is through the environment it spawns it with
    # (WorkerProcess.start); a worker forked from the fork server has the server's
    # environment instead. Its process name, "Sanic-Server-<n>-0", says the same.
    name = multiprocessing.current_process().name
    server = f"{Worker.WORKER_PREFIX}-{WorkerProcess.SERVER_LABEL}-"
    if not name.startswith(server):
        return create_app(settings)  # the main process
    if "SANIC_WORKER_NAME" not in os.environ:
        number = int(name.removeprefix(server).split("-")[0])
        os.environ["SANIC_WORKER_NAME"] = name
        os.environ["SANIC_WORKER_IDENTIFIER"] = f"{WorkerProcess.SERVER_IDENTIFIER}{number:2}"
    app = create_app(settings)
    app.after_server_start(_freeze_start_up)
    # Registered last: it runs just before Sanic acknowledges the start-up.
    app.before_server_start(_wait_until_registered)
    return app


async def _freeze_start_up(app: Any) -> None:
    """Keep what a worker's start-up made out of every later garbage collection.

    Modules, the app and its plugins are ~100,000 objects that live as long as the
    worker, and every full collection walked them all: 60-70 ms on the event loop,
    once every few room listings with 10,000 rooms (each leaves ~20,000 new objects
    behind). Frozen, a full collection walks only what was made since: about 1 ms.
    """
    gc.collect()
    gc.freeze()


#: How long a worker waits for the main process to record it (a few ms, normally).
REGISTRATION_WAIT_SECONDS = 10.0


async def _wait_until_registered(app: Any) -> None:
    """Hold a worker's start-up acknowledgement until the main process has recorded it.

    Sanic's main process writes a worker's entry in the shared state (STARTED, then
    its pid) after starting it, by rewriting the whole entry. A worker forked from the
    fork server can acknowledge before that, and the rewrite then loses its "ACKED":
    the main process waits for it until its 30 s limit. The pid is the main process's
    last write, so the worker waits for its own pid to be there.
    """
    import asyncio

    loop = asyncio.get_running_loop()
    deadline = loop.time() + REGISTRATION_WAIT_SECONDS
    while app.m.state.get("pid") != os.getpid() and loop.time() < deadline:
        await asyncio.sleep(0.005)


def _not_starting(shutdown: supervision.Shutdown) -> bool:
    """Whether a stop signal came during start-up (then say so: nothing more starts)."""
    if shutdown.signal is None:
        return False
    name = signal.Signals(shutdown.signal).name
    logger.info("Received signal %s before the service started: not starting it", name)
    return True


def serve(
    settings: Settings,
    emulator: LiveKitEmulator | None = None,
    shutdown: supervision.Shutdown | None = None,
) -> None:
    """Serve the API on ``settings.workers`` worker processes until SIGINT/SIGTERM.

    ``emulator`` (``--dev`` only) is started once the app is known to build.
    ``shutdown`` has SIGINT/SIGTERM; a stop asked for before the workers start ends
    start-up at the next step.
    """
    shutdown = shutdown or supervision.Shutdown()
    sock = _listen(settings)
    shutdown.listening = sock
    try:
        _check_metrics_port(settings)
        _prepare_event_log(settings)
        _start_fork_server()  # main() has, unless serve() is called on its own
        # Imported only now: the fork server is importing the same meanwhile.
        from sanic import Sanic
        from sanic.worker.loader import AppLoader

        loader = AppLoader(factory=partial(app_for_process, settings))
        # Built here, in the main process, so a broken plugin fails before any worker starts.
        app = loader.load()
        supervision.install(app, shutdown)
        if _not_starting(shutdown):
            return
        if settings.metrics_port is not None and settings.metrics:
            _serve_metrics(settings)
        if emulator is not None:
            # Its webhooks come here, so the service hears of rooms and joins at once.
            emulator.webhooks.urls = (_webhook_url(settings, sock.getsockname()[1]),)
            emulator.start()
            logger.warning(
                "development mode: LIVEKIT_URL is not set, so a LiveKit *emulator* answers at %s "
                "(rooms and tokens only, no media; set LIVEKIT_URL to use a real LiveKit) and "
                "sends its webhooks to %s; its /_emulator hooks take "
                "'Authorization: Bearer %s'",
                emulator.url,
                emulator.webhooks.urls[0],
                emulator.hook_token,
            )
        elif settings.dev:
            logger.warning("development mode: using the LiveKit at %s", settings.livekit_url)
        if settings.dev:
            logger.warning("development mode: never expose this service to a network")
        elif settings.secret_is_weak():
            logger.warning(
                "LIVEKIT_API_SECRET is shorter than 32 bytes: "
                "tokens signed with it are easier to forge"
            )
        if settings.auth_mode == "none":
            logger.warning(
                "AURA_API_KEYS is not set: anyone who can reach this service can create rooms "
                "and mint tokens"
            )
        if _not_starting(shutdown):
            return
        app.prepare(
            host=settings.host, port=settings.port, sock=sock, workers=settings.workers, motd=False
        )
        # See _start_fork_server; Sanic would refuse to set a method already set.
        Sanic.start_method = "forkserver"
        Sanic.START_METHOD_SET = True
        Sanic.serve(primary=app, app_loader=loader)
    finally:
        sock.close()  # Sanic closes it too when it served; closing twice is harmless


@contextmanager
def _metrics_directory() -> Iterator[None]:
    """A fresh directory for prometheus-client's multi-process files, for this run only.

    Set before any worker (or metric) exists: workers inherit the variable, and a
    directory left from an earlier run would add its counts to ours.
    """
    from .metrics import MULTIPROC_ENV

    given = os.environ.get(MULTIPROC_ENV)
    if given:
        path = Path(given)
        if path.exists() and not path.is_dir():
            raise StartupError(f"{MULTIPROC_ENV} ({given}) is not a directory")
        try:
            path.mkdir(parents=True, exist_ok=True)
            for stale in path.glob("*.db"):
                stale.unlink()
            # Workers create their files there: find out now, not in every worker.
            tempfile.TemporaryFile(dir=path).close()
        except OSError as exc:
            raise StartupError(
                f"{MULTIPROC_ENV} ({given}) is not a writable directory: {exc.strerror or exc}"
            ) from exc
        yield
        return
    try:
        directory = tempfile.TemporaryDirectory(prefix="aura-metrics-")
    except OSError as exc:
        raise StartupError(
            f"cannot make a metrics directory in {tempfile.gettempdir()} (TMPDIR): "
            f"{exc.strerror or exc}"
        ) from exc
    with directory as made:
        os.environ[MULTIPROC_ENV] = made
        try:
            yield
        finally:
            del os.environ[MULTIPROC_ENV]


def _user_errors() -> tuple[type[Exception], ...]:
    """The errors that are the user's to fix: one line and exit code 2, not a traceback."""
    from .plugin_loader import PluginError
    from .settings import SettingsError

    return SettingsError, PluginError, StartupError


def _settings(args: argparse.Namespace) -> Settings:
    """The settings, flags over the environment, with logging configured from them."""
    from .logs import log_config
    from .settings import load_settings

    settings = load_settings(host=args.host, port=args.port, workers=args.workers, dev=args.dev)
    # Configured before anything logs, the same way Sanic configures it in every worker.
    logging.config.dictConfig(log_config(settings))
    return settings


def _run(args: argparse.Namespace, shutdown: supervision.Shutdown) -> None:
    """Check the settings and serve until stopped."""
    from .settings import SettingsError

    settings = _settings(args)
    _check_dev_host(settings, args.dev_allow_remote)
    if not settings.dev:
        problem = settings.credential_problem()
        if problem:
            raise SettingsError(problem)
        serve(settings, shutdown=shutdown)
        return
    settings = _dev_issuer(_dev_settings(settings))
    emulator = _dev_emulator(settings)
    if emulator is not None:
        settings = settings.model_copy(update={"livekit_url": emulator.url})
    try:
        serve(settings, emulator, shutdown)
    finally:
        if emulator is not None:
            emulator.stop()


def main(argv: Sequence[str] | None = None) -> int:
    """Run the console script; returns the exit code."""
    args = _parser().parse_args(argv)
    try:
        if args.command == "plugins":
            return list_plugins(_settings(args))
        shutdown = supervision.Shutdown()
        # First: from here on a SIGINT/SIGTERM stops start-up cleanly instead of killing it.
        shutdown.install()
        with _metrics_directory():
            # Next, before any heavy import: the fork server imports what the workers
            # need meanwhile (it takes the environment as it is, metrics directory set).
            _start_fork_server()
            _run(args, shutdown)
    # Looked up only when something is raised: importing them takes a while.
    except _user_errors() as exc:
        if args.traceback:
            raise
        print(f"{PROG}: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    return 0
