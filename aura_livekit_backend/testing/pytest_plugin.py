"""The pytest kit for plugin authors (and the service's own tests).

Installed with the package as a ``pytest11`` plugin, so its fixtures are there in any
test suite once ``aura-livekit-backend[test]`` is installed:

- ``livekit_emulator``: a :class:`~aura_livekit_backend.emulator.LiveKitEmulator`
  running for the test, with credentials the settings below match.
- ``aura_settings(**fields)``: :class:`~aura_livekit_backend.Settings` pointed at that
  emulator, reading no ``.env`` file; ``fields`` override any setting.
- ``aura_client(settings=None, *, plugins=None, **fields)``: builds the app exactly as the
  console script would (installed plugins, or the ``plugins`` mapping given), serves it
  on a free local port with its listeners run, and returns a
  :class:`~aura_livekit_backend.testing.client.ServiceClient`.

A test of a plugin's endpoint is then::

    def test_hello(aura_client):
        assert aura_client().get("/api/hello").status_code == 200

Each has a module-scoped twin, ``module_livekit_emulator``, ``module_aura_settings`` and
``module_aura_client``, that lives until the module's last test: building and serving
an app costs far more than a request to it, so tests that only read (or create rooms
without counting the room list) share one::

    @pytest.fixture(scope="module")
    def client(module_aura_client):
        return module_aura_client(room_list_cache_seconds=0)

A test that changes state others could see (faults, outages, participants it counts,
the whole room list) keeps the function-scoped fixtures. So does a test that reads
``/docs/openapi.json`` or the logs: sanic-ext keeps one OpenAPI document per process
and logging is configured per process, both by the app built last.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from ..emulator import LiveKitEmulator
from ..settings import Settings

if TYPE_CHECKING:
    from .client import ServiceClient

__all__ = [
    "TEST_API_KEY",
    "TEST_API_SECRET",
    "aura_client",
    "aura_settings",
    "livekit_emulator",
    "module_aura_client",
    "module_aura_settings",
    "module_livekit_emulator",
]

#: The credentials the emulator accepts and the settings carry; long enough not to warn.
TEST_API_KEY = "APIaurakit"
TEST_API_SECRET = "aura-kit-secret-0123456789abcdefghij"  # noqa: S105 (test-only)


def _settings_factory(emulator: LiveKitEmulator, data_dir: Path) -> Callable[..., Settings]:
    """``make(**fields)``: settings for ``emulator``, no ``.env``, ``fields`` on top.

    The event log lives in ``data_dir``, a temporary directory: never in the
    directory the tests run from.
    """

    def make(**fields: Any) -> Settings:
        values: dict[str, Any] = {
            "livekit_url": emulator.url,
            "livekit_api_key": TEST_API_KEY,
            "livekit_api_secret": TEST_API_SECRET,
            "data_dir": data_dir,
        }
        values.update(fields)
        return Settings(_env_file=None, **values)

    return make


@contextmanager
def _serving_factory(
    make_settings: Callable[..., Settings],
) -> Iterator[Callable[..., ServiceClient]]:
    """``start(settings=None, *, plugins=None, **fields)``: apps served until the block ends."""
    # Imported here: sanic-testing is a test extra, and pytest loads this module in
    # every test run of an environment that has the package installed.
    from ..app import create_app
    from .client import serving

    with ExitStack() as stack:

        def start(
            settings: Settings | None = None,
            *,
            plugins: dict[str, Any] | None = None,
            **fields: Any,
        ) -> ServiceClient:
            app = create_app(settings or make_settings(**fields), plugins=plugins)
            return stack.enter_context(serving(app))

        yield start


@pytest.fixture
def livekit_emulator() -> Iterator[LiveKitEmulator]:
    """A LiveKit emulator on 127.0.0.1 for the length of the test."""
    with LiveKitEmulator(TEST_API_KEY, TEST_API_SECRET) as emulator:
        yield emulator


@pytest.fixture
def aura_settings(
    livekit_emulator: LiveKitEmulator, tmp_path_factory: pytest.TempPathFactory
) -> Callable[..., Settings]:
    """``aura_settings(**fields)``: settings for the emulator, no ``.env``, ``fields`` on top.

    Apps made from them share one event log, in a temporary directory of the test's.
    """
    return _settings_factory(livekit_emulator, tmp_path_factory.mktemp("aura-data"))


@pytest.fixture
def aura_client(aura_settings: Callable[..., Settings]) -> Iterator[Callable[..., ServiceClient]]:
    """``aura_client(settings=None, *, plugins=None, **fields)``: the app, served for the test."""
    with _serving_factory(aura_settings) as start:
        yield start


@pytest.fixture(scope="module")
def module_livekit_emulator() -> Iterator[LiveKitEmulator]:
    """One LiveKit emulator for every test of a module that asks for it.

    Its rooms, calls and participants accumulate over the module: count calls as a
    difference, and do not make it sick (use ``livekit_emulator`` for that).
    """
    with LiveKitEmulator(TEST_API_KEY, TEST_API_SECRET) as emulator:
        yield emulator


@pytest.fixture(scope="module")
def module_aura_settings(
    module_livekit_emulator: LiveKitEmulator, tmp_path_factory: pytest.TempPathFactory
) -> Callable[..., Settings]:
    """``module_aura_settings(**fields)``: as ``aura_settings``, for the module's emulator."""
    return _settings_factory(module_livekit_emulator, tmp_path_factory.mktemp("aura-data"))


@pytest.fixture(scope="module")
def module_aura_client(
    module_aura_settings: Callable[..., Settings],
) -> Iterator[Callable[..., ServiceClient]]:
    """``module_aura_client(...)``: as ``aura_client``, each app served until the module ends.

    Call it from a module-scoped fixture of your own, so the module's tests share the app.
    Settings a plugin reads from the environment at start-up are set around that call
    (``pytest.MonkeyPatch.context()``): ``monkeypatch`` is the test's, not the module's.
    """
    with _serving_factory(module_aura_settings) as start:
        yield start
