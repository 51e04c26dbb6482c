"""The container image's health check: ``GET <prefix>/health`` where the service listens.

A fixed ``AURA_PORT`` probe checks the wrong port as soon as someone runs the image
with ``--port 9000``. So this reads what the running service was told, from its own
``/proc`` entry, the way the service reads it:

- ``--host``/``--port`` on its command line (``--port 9000`` or ``--port=9000``),
- else ``AURA_HOST``/``AURA_PORT`` in its environment,
- else the defaults (``127.0.0.1``, ``8000``);

and ``AURA_API_PREFIX`` (``/api``) for the path. A wildcard address (``0.0.0.0``,
``::``) is probed on loopback. What it does not read: a ``.env`` file in the service's
working directory and abbreviated flags (``--po 9000``); in a container, set the
environment with ``-e``/``--env-file`` instead.

Standard library only, so it starts in a few milliseconds every interval instead of
importing the service (half a second). Exit 0 when the answer is 200, 1 otherwise, as
a ``HEALTHCHECK`` command must; one line on stdout says what was probed.

Usage: ``python container-healthcheck.py [PID]``; without a PID it checks the
oldest process running the ``aura-livekit-backend`` console script (PID 1 in the
image, or the one under ``podman run --init``).
"""

from __future__ import annotations

import http.client
import os
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path

SCRIPT = "aura-livekit-backend"
MODULE = "aura_livekit_backend"
TIMEOUT_SECONDS = 2.0
WILDCARDS = {"": "127.0.0.1", "0.0.0.0": "127.0.0.1", "::": "::1"}  # noqa: S104 (read, not bound)


def _argv(pid: int) -> list[str]:
    """The command line of ``pid`` (empty if it is gone or not ours to read)."""
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return []
    return [part.decode(errors="replace") for part in raw.split(b"\0")[:-1]]


def _service_args(argv: Sequence[str]) -> list[str] | None:
    """The arguments after the console script in ``argv``, or None if it is not the service.

    The script runs as ``python /opt/venv/bin/aura-livekit-backend …`` (its shebang) or
    ``python -m aura_livekit_backend …``; its worker processes run multiprocessing's
    ``spawn_main`` and match neither.
    """
    for index, part in enumerate(argv[:3]):
        if Path(part).name == SCRIPT:
            return list(argv[index + 1 :])
        if part == "-m" and index + 1 < len(argv) and argv[index + 1] == MODULE:
            return list(argv[index + 2 :])
    return None


def find_service() -> int | None:
    """The pid of the oldest process running the console script, or None."""
    pids = sorted(int(entry.name) for entry in Path("/proc").iterdir() if entry.name.isdigit())
    for pid in pids:
        if pid != os.getpid() and _service_args(_argv(pid)) is not None:
            return pid
    return None


def _environ(pid: int) -> Mapping[str, str]:
    """The environment ``pid`` started with; our own if it may not be read (another user)."""
    try:
        raw = Path(f"/proc/{pid}/environ").read_bytes()
    except OSError:
        return os.environ
    pairs = (item.decode(errors="replace").partition("=") for item in raw.split(b"\0") if item)
    return {name: value for name, _, value in pairs}


def _setting(environ: Mapping[str, str], name: str) -> str | None:
    """``name`` from ``environ`` as pydantic-settings reads it: the case does not matter."""
    if name in environ:
        return environ[name]
    found = [value for key, value in environ.items() if key.upper() == name]
    return found[-1] if found else None


def _flag(args: Sequence[str], name: str) -> str | None:
    """The last value given to ``--name`` in ``args`` (argparse keeps the last one)."""
    value = None
    for index, arg in enumerate(args):
        if arg == "--":
            break
        if arg == f"--{name}" and index + 1 < len(args):
            value = args[index + 1]
        elif arg.startswith(f"--{name}="):
            value = arg.partition("=")[2]
    return value


def target(args: Sequence[str], environ: Mapping[str, str]) -> tuple[str, int, str]:
    """(host, port, path) to probe for a service started with ``args`` in ``environ``."""
    host = _flag(args, "host") or _setting(environ, "AURA_HOST") or "127.0.0.1"
    port = int(_flag(args, "port") or _setting(environ, "AURA_PORT") or "8000")
    prefix = _setting(environ, "AURA_API_PREFIX")
    prefix = "/api" if prefix is None else prefix.rstrip("/")
    return WILDCARDS.get(host.strip("[]"), host.strip("[]")), port, f"{prefix}/health"


def probe(host: str, port: int, path: str) -> int:
    """The HTTP status of ``GET path`` on ``host:port``, within the timeout."""
    connection = http.client.HTTPConnection(host, port, timeout=TIMEOUT_SECONDS)
    try:
        connection.request("GET", path, headers={"User-Agent": "aura-healthcheck"})
        return connection.getresponse().status
    finally:
        connection.close()


def main(argv: Sequence[str]) -> int:
    """Check the service's health; 0 if it answers 200, 1 otherwise."""
    pid = int(argv[0]) if argv else find_service()
    args = _service_args(_argv(pid)) if pid is not None else None
    if pid is None or args is None:
        print(f"unhealthy: no {SCRIPT} process found")
        return 1
    try:
        host, port, path = target(args, _environ(pid))
    except ValueError as exc:  # a port that is no number: the service refused it too
        print(f"unhealthy: {exc}")
        return 1
    url = f"http://{f'[{host}]' if ':' in host else host}:{port}{path}"
    try:
        status = probe(host, port, path)
    except (OSError, http.client.HTTPException) as exc:
        print(f"unhealthy: {url}: {exc or type(exc).__name__}")
        return 1
    print(f"{'healthy' if status == 200 else 'unhealthy'}: {url} answered {status}")
    return 0 if status == 200 else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
