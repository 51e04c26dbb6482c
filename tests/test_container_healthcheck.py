"""The container image's health check (scripts/container-healthcheck.py), outside a container.

``scripts/container-check.sh`` runs it inside the built image with podman; these
tests pin how it finds the port, and that it checks a real service process.
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from types import ModuleType

import httpx
import pytest

from aura_livekit_backend.emulator import free_port

HEALTHCHECK = Path(__file__).resolve().parents[1] / "scripts" / "container-healthcheck.py"
SCRIPT = str(Path(sys.executable).with_name("aura-livekit-backend"))


def _load() -> ModuleType:
    spec = importlib.util.spec_from_file_location("container_healthcheck", HEALTHCHECK)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


healthcheck = _load()


@pytest.mark.parametrize(
    ("args", "environ", "expected"),
    [
        ([], {}, ("127.0.0.1", 8000, "/api/health")),
        # The image sets AURA_HOST=0.0.0.0 and AURA_PORT=8000; a wildcard is probed on loopback.
        ([], {"AURA_HOST": "0.0.0.0", "AURA_PORT": "8000"}, ("127.0.0.1", 8000, "/api/health")),
        # The flag beats the environment, as in the service.
        (["--port", "9000"], {"AURA_PORT": "8000"}, ("127.0.0.1", 9000, "/api/health")),
        (["--dev", "--port=9001", "--workers", "2"], {}, ("127.0.0.1", 9001, "/api/health")),
        # argparse keeps the last value given.
        (["--port", "9000", "--port", "9002"], {}, ("127.0.0.1", 9002, "/api/health")),
        (["--host", "::", "--port", "9003"], {}, ("::1", 9003, "/api/health")),
        (["--host=10.1.2.3"], {}, ("10.1.2.3", 8000, "/api/health")),
        # pydantic-settings reads variable names in any case.
        ([], {"aura_port": "9004", "aura_api_prefix": "/v2/"}, ("127.0.0.1", 9004, "/v2/health")),
        ([], {"AURA_API_PREFIX": ""}, ("127.0.0.1", 8000, "/health")),
        # "--port" inside a value is not the flag.
        (["--host", "127.0.0.1", "--", "--port", "1"], {}, ("127.0.0.1", 8000, "/api/health")),
    ],
)
def test_the_probe_goes_where_the_service_was_told_to_listen(
    args: list[str], environ: dict[str, str], expected: tuple[str, int, str]
) -> None:
    assert healthcheck.target(args, environ) == expected


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (
            ["/opt/venv/bin/python", "/opt/venv/bin/aura-livekit-backend", "--port", "1"],
            ["--port", "1"],
        ),
        (["aura-livekit-backend"], []),
        (["python", "-m", "aura_livekit_backend", "--dev"], ["--dev"]),
        # A Sanic worker, multiprocessing's helpers and the check itself are not the service.
        (["/opt/venv/bin/python", "-c", "from multiprocessing.spawn import spawn_main"], None),
        (["python", "-I", "/usr/local/bin/aura-healthcheck"], None),
        ([], None),
    ],
)
def test_only_the_console_script_counts_as_the_service(
    argv: list[str], expected: list[str] | None
) -> None:
    assert healthcheck._service_args(argv) == expected


def _check(pid: int) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-I", str(HEALTHCHECK), str(pid)],
        capture_output=True,
        text=True,
        timeout=30,
    )


@pytest.mark.processes
def test_it_probes_the_port_a_running_service_was_given_and_fails_once_it_stops() -> None:
    port, decoy = free_port(), free_port()
    # AURA_PORT names another port, as the image's does: the flag must win.
    process = subprocess.Popen(
        [SCRIPT, "--dev", "--port", str(port)],
        env={**os.environ, "AURA_PORT": str(decoy)},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            assert process.poll() is None, "the service exited"
            with contextlib.suppress(httpx.TransportError):
                if httpx.get(f"http://127.0.0.1:{port}/api/health", timeout=1).status_code == 200:
                    break
            assert time.monotonic() < deadline, "the service did not come up"
            time.sleep(0.1)

        healthy = _check(process.pid)
        assert healthy.returncode == 0, healthy.stdout
        assert healthy.stdout == f"healthy: http://127.0.0.1:{port}/api/health answered 200\n"

        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=20)
        gone = _check(process.pid)
        assert gone.returncode == 1
        assert gone.stdout == "unhealthy: no aura-livekit-backend process found\n"
    finally:
        if process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=20)


def test_nothing_listening_is_unhealthy(tmp_path: Path) -> None:
    # A process that looks like the service but serves nothing: the probe is refused.
    fake = tmp_path / "aura-livekit-backend"
    fake.write_text("import time\ntime.sleep(60)\n")
    port = free_port()
    process = subprocess.Popen([sys.executable, str(fake), "--port", str(port)])
    try:
        result = _check(process.pid)
    finally:
        process.kill()
        process.wait(timeout=10)
    assert result.returncode == 1
    assert result.stdout.startswith(f"unhealthy: http://127.0.0.1:{port}/api/health: ")
