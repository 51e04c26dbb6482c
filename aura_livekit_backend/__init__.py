"""aura-livekit-backend: an HTTP service that creates LiveKit rooms and mints access tokens.

The public surface is :func:`create_app`, :class:`Settings` and the plugin contract in
:mod:`aura_livekit_backend.plugin`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

if TYPE_CHECKING:
    from .app import create_app
    from .settings import Settings

__all__ = ["Settings", "__version__", "create_app"]


def __getattr__(name: str) -> Any:
    # Imported on first use: the console script's signal handlers must be in place
    # before the app's imports, which take most of a second (see cli.py).
    if name == "create_app":
        from .app import create_app

        return create_app
    if name == "Settings":
        from .settings import Settings

        return Settings
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
