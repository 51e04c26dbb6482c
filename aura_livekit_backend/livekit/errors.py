"""What can go wrong when the service asks LiveKit for something, as plain exceptions.

Nothing here knows about HTTP: the endpoints (through the contract's ``failing_to``)
decide which status each one becomes. The transport's failures carry an *outcome*,
the word the metrics count them under.
"""

from __future__ import annotations

__all__ = [
    "IdentityTaken",
    "LiveKitError",
    "LiveKitRejected",
    "LiveKitUnavailable",
    "ParticipantNotFound",
    "RoomFull",
    "RoomLimitFixed",
    "RoomNotFound",
]


class LiveKitError(Exception):
    """LiveKit answered with an error the service did not expect (a bad gateway)."""

    #: The metric label for this failure (``aura_livekit_calls_total{outcome}``).
    outcome = "error"


class LiveKitUnavailable(LiveKitError):
    """LiveKit could not be reached, was too slow, or said it is unavailable."""

    outcome = "unavailable"


class LiveKitRejected(LiveKitError):
    """LiveKit refused the service's own credentials or their permissions."""

    outcome = "rejected"


class NotFoundInLiveKit(LiveKitError):
    """LiveKit's ``not_found``, before the caller says what was not found (internal)."""

    outcome = "not_found"


class RoomNotFound(LookupError):
    """No room in LiveKit has that name or sid."""


class ParticipantNotFound(LookupError):
    """The room has no participant with that identity."""


class RoomLimitFixed(ValueError):
    """LiveKit fixes a room's participant limit at creation: it can be lowered, not raised."""

    def __init__(self, limit: int) -> None:
        """``limit``: the highest the room allows, fixed when it was created."""
        super().__init__(f"can be lowered, not raised above {limit} (LiveKit fixes it at creation)")
        self.limit = limit


class RoomFull(Exception):
    """A join refused: the room already holds its participant limit."""


class IdentityTaken(Exception):
    """A join refused: that identity is connected in the room now (duplicates: reject)."""
