"""The rooms endpoints (to come: they need the LiveKit gateway)."""

from __future__ import annotations

from ..plugin import Plugin, PluginContext


def setup(ctx: PluginContext) -> None:
    """Add no routes yet."""


plugin = Plugin(setup=setup, description="rooms (not yet implemented)")
