"""Room moderation for aura-livekit-backend, as a plugin of its own.

Adds, under the API prefix, behind ``Authorization: Bearer <key>``:

- ``DELETE /room/{roomId}``: close the room; everyone in it is disconnected.
- ``PATCH /room/{roomId}``: change its topic, description or (lower) participant limit.
- ``GET /room/{roomId}/participants``: who is in it.
- ``DELETE /room/{roomId}/participants/{identity}``: remove one participant.

It uses nothing of the service but the public plugin contract.
"""

from .plugin import plugin

__version__ = "0.1.0"

__all__ = ["__version__", "plugin"]
