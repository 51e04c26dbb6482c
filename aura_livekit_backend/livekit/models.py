"""What the LiveKit layer hands out: plain, frozen values, no protobuf."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import NamedTuple

__all__ = ["Participant", "RoomInfo", "RoomPage", "Ticket", "room_position"]


@dataclass(frozen=True, slots=True)
class RoomInfo:
    """What the API tells about a room; LiveKit holds every part of it."""

    name: str
    sid: str
    topic: str
    description: str
    max_participants: int
    created_by: str
    created_at: datetime
    num_participants: int

    @property
    def is_full(self) -> bool:
        """True when the room has a limit and that many participants are in it."""
        return 0 < self.max_participants <= self.num_participants


@dataclass(frozen=True, slots=True)
class Participant:
    """Someone in a room, as LiveKit sees them."""

    identity: str
    name: str
    joined_at: datetime
    is_publisher: bool
    #: LiveKit's state, lowercase: joining, joined, active or disconnected.
    state: str


class RoomPage(NamedTuple):
    """Some of the active rooms."""

    #: How many rooms are active in all.
    total: int
    #: The rooms asked for, oldest first.
    rooms: list[RoomInfo]
    #: Whether more rooms follow the last of these.
    more: bool


@dataclass(frozen=True, slots=True)
class Ticket:
    """A way into a room: the token and what it was minted for."""

    room: RoomInfo
    #: The token's identity (the userName, or a unique one; see AURA_DUPLICATE_USERNAME).
    identity: str
    #: The display name.
    name: str
    #: The LiveKit access token (JWT): hand it to the person joining, never log it.
    token: str
    #: The LiveKit URL to connect to with it.
    url: str


def room_position(room: RoomInfo) -> tuple[int, str]:
    """Where a room stands in a listing: creation time in ms, then name."""
    return (round(room.created_at.timestamp() * 1000), room.name)
