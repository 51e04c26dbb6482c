"""A web console for aura-livekit-backend, as a plugin of its own.

Served at ``/console`` (mounted at the root, not under the API prefix), behind a
sign-in of its own (``AURA_CONSOLE_KEYS``, the moderation keys, or the identity
provider's JWTs with a console role):

- the rooms (live: topic, participants, age, limit; search; pages), one room (its
  participants and their tracks, agents, recent events) and its actions (close,
  change the topic, remove a participant, mute a track), each confirmed;
- the live event feed and the history of rooms that ended, from the event log.

Server-rendered HTML with one small script and one stylesheet of its own; nothing
from another host. It uses nothing of the service but the public plugin contract.
"""

from .plugin import plugin

__version__ = "0.1.0"

__all__ = ["__version__", "plugin"]
