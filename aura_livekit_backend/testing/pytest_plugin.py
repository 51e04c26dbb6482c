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
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import ExitStack
from typing import TYPE_CHECKING, Any

import pytest

from ..emulator import LiveKitEmulator
from ..settings import Settings

if TYPE_CHECKING:
    from .client import ServiceClient

__all__ = ["TEST_API_KEY", "TEST_API_SECRET", "aura_client", "aura_settings", "livekit_emulator"]

#: The credentials the emulator accepts and the settings carry; long enough not to warn.
TEST_API_KEY = "APIaurakit"
TEST_API_SECRET = "aura-kit-secret-0123456789abcdefghij"  # noqa: S105 (test-only)


@pytest.fixture
def livekit_emulator() -> Iterator[LiveKitEmulator]:
    """A LiveKit emulator on 127.0.0.1 for the length of the test."""
    with LiveKitEmulator(TEST_API_KEY, TEST_API_SECRET) as emulator:
        yield emulator


@pytest.fixture
def aura_settings(livekit_emulator: LiveKitEmulator) -> Callable[..., Settings]:
    """``aura_settings(**fields)``: settings for the emulator, no ``.env``, ``fields`` on top."""

    def make(**fields: Any) -> Settings:
        values: dict[str, Any] = {
            "livekit_url": livekit_emulator.url,
            "livekit_api_key": TEST_API_KEY,
            "livekit_api_secret": TEST_API_SECRET,
        }
        values.update(fields)
        return Settings(_env_file=None, **values)

    return make


@pytest.fixture
def aura_client(aura_settings: Callable[..., Settings]) -> Iterator[Callable[..., ServiceClient]]:
    """``aura_client(settings=None, *, plugins=None, **fields)``: the app, served for the test."""
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
            app = create_app(settings or aura_settings(**fields), plugins=plugins)
            return stack.enter_context(serving(app))

        yield start
