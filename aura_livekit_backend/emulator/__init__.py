"""An emulator of LiveKit's Twirp RoomService, for tests and ``--dev``.

A LiveKit server is a Go binary no package registry here ships, so the service's
tests talk to this instead, over real HTTP, through the real ``livekit-api`` client.
It honours what the service depends on (``shared/notes/livekit-wire.md``, read from
LiveKit's sources): the Twirp wire format with protobuf and JSON bodies, Twirp error
codes and statuses, JWT authentication in LiveKit's two layers with the grants each
call demands, get-or-create rooms with ``RM_`` sids and LiveKit's defaults, and rooms
closing after their empty/departure timeouts.

There is no media: participants exist only because a test put them there
(:meth:`LiveKitEmulator.add_participant`), as if they had joined over WebRTC.

It can also be made sick, to show what the service does then: slow
(:attr:`LiveKitEmulator.latency`), failing some or all calls in any of the ways in
:data:`FAULTS` or with any Twirp error (:meth:`LiveKitEmulator.disturb`), or gone
for a while (:meth:`LiveKitEmulator.outage`).

It sends LiveKit's webhooks too, signed and retried as LiveKit does, to the URLs in
:attr:`LiveKitEmulator.webhooks` (none by default).

One module per concern: :mod:`.state` (rooms and what each method does to them),
:mod:`.twirp` (the wire), :mod:`.faults` (a sick LiveKit), :mod:`.hooks` (the
emulator's own ``/_emulator/…`` HTTP hooks), :mod:`.webhooks` (LiveKit's webhooks
out), :mod:`.server` (:class:`LiveKitEmulator`, the thread and loop that run them);
``python -m aura_livekit_backend.emulator`` runs one on its own.
"""

from .faults import FAULTS, SICK_LIVEKIT, STALL_SECONDS
from .server import LiveKitEmulator, free_port
from .state import SID_ALPHABET, RoomFull
from .twirp import TwirpFault

__all__ = [
    "FAULTS",
    "SICK_LIVEKIT",
    "SID_ALPHABET",
    "STALL_SECONDS",
    "LiveKitEmulator",
    "RoomFull",
    "TwirpFault",
    "free_port",
]
