"""The service's facts about a room, kept in LiveKit's room metadata as small JSON.

Topic, description and creator live in the metadata; so does a participant limit
lowered after creation (LiveKit fixes its own ``max_participants`` when the room is
made). A room made by someone else may hold anything there: reading never fails.
"""

from __future__ import annotations

import json
from typing import Any

from livekit import api

from ..timestamps import from_unix_ms
from .models import Participant, RoomInfo, Track

__all__ = [
    "encode_facts",
    "facts_of",
    "new_room_facts",
    "participant_info",
    "proto_position",
    "room_info",
    "track_info",
]


def encode_facts(facts: dict[str, Any]) -> str:
    """The metadata string holding ``facts``."""
    # LiveKit hands the metadata to every participant's client: keep it small JSON.
    return json.dumps(facts, ensure_ascii=False, separators=(",", ":"))


def new_room_facts(
    *,
    topic: str,
    description: str,
    created_by: str,
    app_metadata: str = "",
    agents: tuple[str, ...] = (),
) -> str:
    """The metadata of a room the service creates: our facts, and the application's own
    metadata under ``metadata`` (absent when empty), so neither overwrites the other."""
    facts: dict[str, Any] = {"topic": topic, "description": description, "createdBy": created_by}
    if app_metadata:
        facts["metadata"] = app_metadata
    if agents:
        facts["agents"] = list(agents)
    return encode_facts(facts)


def facts_of(room: api.Room) -> dict[str, Any]:
    """Our facts from the room's metadata; ``{}`` for anything else found there."""
    try:
        facts = json.loads(room.metadata) if room.metadata else {}
    except ValueError:
        return {}
    return facts if isinstance(facts, dict) else {}


def _limit(room: api.Room, facts: dict[str, Any]) -> int:
    """The room's participant limit: LiveKit's, or a lower one set since (0: none)."""
    lowered = facts.get("maxParticipants")
    hard = room.max_participants
    if isinstance(lowered, int) and lowered > 0 and (hard == 0 or lowered < hard):
        return lowered
    return hard


def _text(facts: dict[str, Any], key: str, default: str) -> str:
    value = facts.get(key)
    return value if isinstance(value, str) else default


def proto_position(room: api.Room) -> tuple[int, str]:
    """Where a room stands in a listing: creation ms, then name (see ``room_position``)."""
    return (room.creation_time_ms or room.creation_time * 1000, room.name)


def room_info(room: api.Room) -> RoomInfo:
    """The plain :class:`RoomInfo` for LiveKit's room message."""
    facts = facts_of(room)
    return RoomInfo(
        name=room.name,
        sid=room.sid,
        # A room made by someone else (another tool, a client's auto-create) has no
        # facts of ours: its name is the best topic there is.
        topic=_text(facts, "topic", room.name),
        description=_text(facts, "description", ""),
        max_participants=_limit(room, facts),
        created_by=_text(facts, "createdBy", ""),
        created_at=from_unix_ms(proto_position(room)[0]),
        num_participants=room.num_participants,
        empty_timeout=room.empty_timeout,
        departure_timeout=room.departure_timeout,
        metadata=_text(facts, "metadata", ""),
        agents=_names(facts.get("agents")),
    )


def _names(value: Any) -> tuple[str, ...]:
    """The agent names kept in the facts; () for anything else found there."""
    if not isinstance(value, list):
        return ()
    return tuple(name for name in value if isinstance(name, str))


def participant_info(info: api.ParticipantInfo) -> Participant:
    """The plain :class:`Participant` for LiveKit's participant message."""
    return Participant(
        identity=info.identity,
        name=info.name,
        joined_at=from_unix_ms(info.joined_at_ms or info.joined_at * 1000),
        is_publisher=info.is_publisher,
        state=api.ParticipantInfo.State.Name(info.state).lower(),
        tracks=tuple(track_info(track) for track in info.tracks),
    )


def track_info(track: api.TrackInfo) -> Track:
    """The plain :class:`Track` for LiveKit's track message."""
    return Track(
        sid=track.sid,
        name=track.name,
        kind=api.TrackType.Name(track.type).lower(),
        source=api.TrackSource.Name(track.source).lower(),
        muted=track.muted,
    )
