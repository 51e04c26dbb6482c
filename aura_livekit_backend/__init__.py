"""aura-livekit-backend: an HTTP service that creates LiveKit rooms and mints access tokens.

The public surface is :func:`create_app`, :class:`Settings` and the plugin contract in
:mod:`aura_livekit_backend.plugin`.
"""

__version__ = "0.1.0"

from .app import create_app
from .settings import Settings

__all__ = ["Settings", "__version__", "create_app"]
