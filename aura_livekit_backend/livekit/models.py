"""What the LiveKit layer hands out: plain, frozen values, no protobuf."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import NamedTuple

__all__ = [
    "AgentJob",
    "AgentRequest",
    "Egress",
    "Ingress",
    "Participant",
    "RoomInfo",
    "RoomOptions",
    "RoomPage",
    "Ticket",
    "Track",
    "room_position",
]


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
    #: Seconds LiveKit keeps the room open while nobody ever joined (0: LiveKit's default).
    empty_timeout: int = 0
    #: Seconds LiveKit keeps the room open after the last participant left.
    departure_timeout: int = 0
    #: The application's own metadata (apart from the service's facts).
    metadata: str = ""
    #: The agents dispatched to the room when it was created (their names).
    agents: tuple[str, ...] = ()

    @property
    def is_full(self) -> bool:
        """True when the room has a limit and that many participants are in it."""
        return 0 < self.max_participants <= self.num_participants


@dataclass(frozen=True, slots=True)
class AgentRequest:
    """An agent to dispatch to a room: LiveKit's ``RoomAgentDispatch``."""

    #: The agent's registered name.
    name: str
    #: What the agent's job receives as its metadata.
    metadata: str = ""


@dataclass(frozen=True, slots=True)
class RoomOptions:
    """What a creator may choose about a new room beyond its facts (0: LiveKit's default)."""

    empty_timeout: int = 0
    departure_timeout: int = 0
    #: The application's own metadata, kept apart from the service's facts.
    metadata: str = ""
    #: Agents dispatched when the room is created (``CreateRoomRequest.agents``).
    agents: tuple[AgentRequest, ...] = ()


@dataclass(frozen=True, slots=True)
class Track:
    """A track a participant publishes, as LiveKit sees it."""

    #: LiveKit's track sid (``TR_…``).
    sid: str
    #: The name the publisher gave it (often empty).
    name: str
    #: ``audio``, ``video`` or ``data``.
    kind: str
    #: ``camera``, ``microphone``, ``screen_share``, ``screen_share_audio`` or ``unknown``.
    source: str
    muted: bool


@dataclass(frozen=True, slots=True)
class Participant:
    """Someone in a room, as LiveKit sees them."""

    identity: str
    name: str
    joined_at: datetime
    is_publisher: bool
    #: LiveKit's state, lowercase: joining, joined, active or disconnected.
    state: str
    #: LiveKit's id for this session of the participant (``PA_…``); "" when not known.
    sid: str = ""
    #: The tracks they publish, in LiveKit's order.
    tracks: tuple[Track, ...] = ()


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


@dataclass(frozen=True, slots=True)
class Egress:
    """A recording or stream out of LiveKit (an egress), as a webhook tells it."""

    #: LiveKit's id for the egress (``EG_…``).
    egress_id: str
    room_name: str
    #: The room's sid.
    room_sid: str
    #: Lowercase, without LiveKit's prefix: starting, active, ending, complete, failed,
    #: aborted or limit_reached.
    status: str
    started_at: datetime | None = None
    ended_at: datetime | None = None
    #: Why it failed ("" unless it did).
    error: str = ""


@dataclass(frozen=True, slots=True)
class Ingress:
    """A stream into LiveKit (an ingress: RTMP, WHIP, a URL), as a webhook tells it."""

    #: LiveKit's id for the ingress (``IN_…``).
    ingress_id: str
    name: str
    room_name: str
    #: The identity it publishes as.
    participant_identity: str
    #: Lowercase, without LiveKit's prefix: inactive, buffering, publishing, error or
    #: complete.
    status: str
    #: Why it failed ("" unless it did).
    error: str = ""


@dataclass(frozen=True, slots=True)
class AgentJob:
    """An agent's job in a room, as a webhook tells it."""

    #: LiveKit's id for the job (``AJ_…``).
    job_id: str
    #: The dispatch it runs for (``AD_…``; "" for automatic dispatch).
    dispatch_id: str
    agent_name: str
    room_name: str
    #: ``room``, ``publisher`` or ``participant``.
    type: str
    #: Lowercase, without LiveKit's prefix: pending, running, success, failed or cancelled.
    status: str
    #: The participant a publisher/participant job is for ("" for a room job).
    participant_identity: str = ""
    #: Why it failed ("" unless it did).
    error: str = ""
