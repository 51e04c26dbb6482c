"""What the emulated LiveKit holds, and what each RoomService method does to it.

Rooms keyed by name, each with its participants; LiveKit's defaults, limits and
get-or-create; rooms that close after their empty or departure timeout; the grants
each method demands. The semantics are LiveKit's (``shared/notes/livekit-wire.md``);
a refusal is a :class:`~.twirp.TwirpFault`, which the wire answers.
"""

from __future__ import annotations

import secrets
import threading
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from google.protobuf.message import Message
from livekit.protocol import agent_dispatch as dispatch_pb
from livekit.protocol import models
from livekit.protocol import room as room_pb
from livekit.protocol import webhook as webhook_pb

from .twirp import TwirpFault

__all__ = [
    "DEFAULT_DEPARTURE_TIMEOUT",
    "DEFAULT_EMPTY_TIMEOUT",
    "MAX_METADATA_BYTES",
    "MAX_NAME_LENGTH",
    "SID_ALPHABET",
    "RoomFull",
    "Rooms",
    "new_sid",
]

#: The characters of a LiveKit sid after its prefix (base57: no 0, 1, I, O, l).
SID_ALPHABET = "23456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"
#: LiveKit's defaults for a room created without them.
DEFAULT_EMPTY_TIMEOUT = 300
DEFAULT_DEPARTURE_TIMEOUT = 20
MAX_NAME_LENGTH = 256
MAX_METADATA_BYTES = 512 * 1024

Grants = dict[str, Any]
#: Where the rooms report what happened, as LiveKit's webhooks tell it: the event, and
#: the queue it belongs to (the room's name). Called with the lock held, in order.
EventReporter = Callable[[webhook_pb.WebhookEvent, str], None]


class RoomFull(Exception):
    """A join the emulated LiveKit refuses: the room has max_participants already."""


def new_sid(prefix: str) -> str:
    """A fresh LiveKit sid: ``prefix`` (``RM_``, ``PA_``) and 12 base57 characters."""
    return prefix + "".join(secrets.choice(SID_ALPHABET) for _ in range(12))


@dataclass
class _Room:
    proto: models.Room
    participants: dict[str, models.ParticipantInfo] = field(default_factory=dict)
    #: When the last participant left; None while someone is in or nobody ever joined.
    emptied_at: float | None = None
    ever_joined: bool = False
    #: Agent dispatches by id, in the order made (CreateRoom's agents, CreateDispatch,
    #: a token's roomConfig on the join that created the room).
    dispatches: dict[str, dispatch_pb.AgentDispatch] = field(default_factory=dict)

    def dispatch(self, agent_name: str, metadata: str, now: float) -> dispatch_pb.AgentDispatch:
        """Record a dispatch of ``agent_name`` to this room."""
        made = dispatch_pb.AgentDispatch(
            id=new_sid("AD_"), agent_name=agent_name, room=self.proto.name, metadata=metadata
        )
        made.state.created_at = int(now * 1e9)
        self.dispatches[made.id] = made
        return made


def _require(grants: Grants, grant: str, room: str | None = None) -> None:
    # LiveKit's twirpAuthError wraps a missing grant as Twirp unauthenticated (401),
    # not permission_denied (403).
    if not grants.get(grant) or (room is not None and grants.get("room") != room):
        raise TwirpFault("unauthenticated", "permissions denied")


class Rooms:
    """Every room of the emulated LiveKit; safe to use from any thread.

    ``clock`` gives the time in seconds (``time.time``), so a test can move it on to
    see rooms close.
    """

    def __init__(self, clock: Callable[[], float]) -> None:
        """No rooms yet."""
        self.clock = clock
        self._rooms: dict[str, _Room] = {}
        self._swept = float("-inf")
        self._lock = threading.Lock()
        #: Hears every room and participant event (the webhook sender), if set.
        self.on_event: EventReporter | None = None

    # -- what a test does in place of WebRTC --------------------------------------

    def add_participant(
        self,
        room: str,
        identity: str,
        name: str = "",
        *,
        publisher: bool = False,
        room_config: room_pb.RoomConfiguration | None = None,
        metadata: str = "",
        attributes: dict[str, str] | None = None,
        tracks: Iterable[Mapping[str, Any]] = (),
    ) -> models.ParticipantInfo:
        """Join ``identity`` to ``room``; RoomFull when full, KeyError when no such room.

        ``tracks`` are what they publish at once, each ``{"kind": "audio"|"video"|"data",
        "source": "microphone"|"camera"|…, "name": …, "muted": bool}`` (every key
        optional); ValueError for a kind or source LiveKit does not have. Each is
        reported (``track_published``) after ``participant_joined``; no track is ever
        unpublished alone here, so no ``track_unpublished`` is sent.

        With ``room_config`` (a join token's ``roomConfig``), a missing room is created
        from it, its agents dispatched — and for a room that exists it is ignored, as
        LiveKit does.
        """
        with self._lock:
            state = self._live_room(room)
            if state is None and room_config is not None:
                state = self._create(room_pb.CreateRoomRequest(
                    name=room,
                    empty_timeout=room_config.empty_timeout,
                    departure_timeout=room_config.departure_timeout,
                    max_participants=room_config.max_participants,
                    metadata=room_config.metadata,
                    agents=room_config.agents,
                ))  # fmt: skip
            if state is None:
                raise KeyError(room)
            limit = state.proto.max_participants
            if identity not in state.participants and 0 < limit <= len(state.participants):
                raise RoomFull(room)
            published = [_track(track) for track in tracks]
            now = self.clock()
            replaced = state.participants.pop(identity, None)
            if replaced is not None:
                # LiveKit disconnects the first session of an identity that joins again.
                self._report("participant_left", state, replaced, reason=models.DUPLICATE_IDENTITY)
            participant = models.ParticipantInfo(
                sid=new_sid("PA_"),
                identity=identity,
                name=name or identity,
                state=models.ParticipantInfo.State.ACTIVE,
                joined_at=int(now),
                joined_at_ms=int(now * 1000),
                is_publisher=publisher or bool(published),
                metadata=metadata,
                attributes=attributes or {},
                tracks=published,
            )
            state.participants[identity] = participant
            state.ever_joined = True
            state.emptied_at = None
            self._report("participant_joined", state, participant)
            for track in published:
                self._report_track("track_published", state, participant, track)
            return participant

    def create_rooms(
        self, names: Iterable[str], *, empty_timeout: int = 0, metadata: str = ""
    ) -> None:
        """Rooms named ``names`` at once, as CreateRoom makes them (many, for a test)."""
        with self._lock:
            for name in names:
                if self._live_room(name) is None:
                    request = room_pb.CreateRoomRequest(
                        name=name, empty_timeout=empty_timeout, metadata=metadata
                    )
                    self._create(request)

    def remove_participant(self, room: str, identity: str) -> None:
        """``identity`` leaves ``room``, if there; the departure timeout starts when it empties."""
        with self._lock:
            state = self._live_room(room)
            gone = state.participants.pop(identity, None) if state is not None else None
            if gone is not None and state is not None:
                self._report("participant_left", state, gone, reason=models.CLIENT_INITIATED)
                if not state.participants:
                    state.emptied_at = self.clock()

    def close(self, room: str) -> None:
        """Close ``room`` now, everyone in it disconnected; KeyError when no such room."""
        with self._lock:
            if self._live_room(room) is None:
                raise KeyError(room)
            self._finish(room, models.ROOM_END_API_DELETE)

    def dispatches(self, room: str) -> list[dispatch_pb.AgentDispatch]:
        """The room's agent dispatches, oldest first; KeyError when no such room."""
        with self._lock:
            state = self._live_room(room)
            if state is None:
                raise KeyError(room)
            return list(state.dispatches.values())

    def names(self) -> list[str]:
        """The names of the rooms open now, sorted."""
        with self._lock:
            self._expire()
            return sorted(self._rooms)

    # -- the RoomService methods ------------------------------------------------------

    def implements(self, method: str) -> bool:
        """Whether RoomService ``method`` is emulated (the rest are ``unimplemented``)."""
        return hasattr(self, "_rpc_" + _snake(method))

    def call(self, method: str, message: Message, grants: Grants) -> Message:
        """Run RoomService ``method`` for a caller holding ``grants`` (the JWT's ``video``)."""
        handler: Callable[[Message, Grants], Message] = getattr(self, "_rpc_" + _snake(method))
        with self._lock:
            self._expire()
            return handler(message, grants)

    # Everything below runs with the lock held.

    def _expire(self) -> None:
        # A sweep touches every room: at most one per second of the clock, so a call
        # costs the same with ten rooms or ten thousand (rooms looked up by name are
        # checked one by one in _live_room).
        now = self.clock()
        if now - self._swept < 1:
            return
        self._swept = now
        for name in [name for name, state in self._rooms.items() if _closed(state, now)]:
            self._finish(name, models.ROOM_END_IDLE_TIMEOUT)

    def _live_room(self, name: str) -> _Room | None:
        self._expire()
        state = self._rooms.get(name)
        if state is not None and _closed(state, self.clock()):
            self._finish(name, models.ROOM_END_IDLE_TIMEOUT)
            return None
        return state

    def _rpc_create_room(self, message: room_pb.CreateRoomRequest, grants: Grants) -> models.Room:
        _require(grants, "roomCreate")
        if not message.name:
            raise TwirpFault("invalid_argument", "room name is required")
        if len(message.name) > MAX_NAME_LENGTH:
            raise TwirpFault("invalid_argument", "room name length exceeds limits")
        if len(message.metadata.encode()) > MAX_METADATA_BYTES:
            raise TwirpFault("invalid_argument", "metadata size exceeds limits")
        existing = self._live_room(message.name)
        if existing is not None:
            return _snapshot(existing)
        return _snapshot(self._create(message))

    def _create(self, message: room_pb.CreateRoomRequest) -> _Room:
        now = self.clock()
        proto = models.Room(
            sid=new_sid("RM_"),
            name=message.name,
            empty_timeout=message.empty_timeout or DEFAULT_EMPTY_TIMEOUT,
            departure_timeout=message.departure_timeout or DEFAULT_DEPARTURE_TIMEOUT,
            max_participants=message.max_participants,
            creation_time=int(now),
            creation_time_ms=int(now * 1000),
            metadata=message.metadata,
        )
        state = self._rooms[message.name] = _Room(proto)
        for agent in message.agents:
            state.dispatch(agent.agent_name, agent.metadata, now)
        self._report("room_started", state)
        return state

    def _finish(self, name: str, reason: int) -> None:
        """Close room ``name``: everyone in it disconnected, then the room gone."""
        state = self._rooms.pop(name)
        left = models.ROOM_DELETED if reason == models.ROOM_END_API_DELETE else models.ROOM_CLOSED
        for participant in list(state.participants.values()):
            self._report("participant_left", state, participant, reason=left)
        state.participants.clear()
        self._report("room_finished", state, end_reason=reason)

    def _report(
        self,
        event: str,
        state: _Room,
        participant: models.ParticipantInfo | None = None,
        *,
        reason: int = 0,
        end_reason: int = 0,
    ) -> None:
        """Tell :attr:`on_event` what happened, as LiveKit's webhook would."""
        if self.on_event is None:
            return
        message = webhook_pb.WebhookEvent(
            event=event,
            room=_snapshot(state),
            id=new_sid("EV_"),
            created_at=int(self.clock()),
            room_end_reason=end_reason,  # type: ignore[arg-type]
        )
        if participant is not None:
            message.participant.CopyFrom(participant)
            if reason:
                message.participant.disconnect_reason = reason  # type: ignore[assignment]
        self.on_event(message, state.proto.name)

    def _report_track(
        self,
        event: str,
        state: _Room,
        participant: models.ParticipantInfo,
        track: models.TrackInfo,
    ) -> None:
        """Tell :attr:`on_event` about ``participant``'s ``track``, as LiveKit's telemetry
        does: the room by name and sid only, the participant by sid and identity only."""
        if self.on_event is None:
            return
        message = webhook_pb.WebhookEvent(
            event=event,
            room=models.Room(sid=state.proto.sid, name=state.proto.name),
            participant=models.ParticipantInfo(sid=participant.sid, identity=participant.identity),
            track=track,
            id=new_sid("EV_"),
            created_at=int(self.clock()),
        )
        self.on_event(message, state.proto.name)

    def _rpc_list_rooms(
        self, message: room_pb.ListRoomsRequest, grants: Grants
    ) -> room_pb.ListRoomsResponse:
        _require(grants, "roomList")
        if message.names:
            found = (self._live_room(name) for name in message.names)
            rooms = [_snapshot(state) for state in found if state is not None]
        else:
            rooms = [_snapshot(state) for state in self._rooms.values()]
        return room_pb.ListRoomsResponse(rooms=rooms)

    def _rpc_delete_room(
        self, message: room_pb.DeleteRoomRequest, grants: Grants
    ) -> room_pb.DeleteRoomResponse:
        _require(grants, "roomCreate")
        if self._live_room(message.room) is None:
            raise TwirpFault("not_found", "requested room does not exist")
        self._finish(message.room, models.ROOM_END_API_DELETE)
        return room_pb.DeleteRoomResponse()

    def _rpc_update_room_metadata(
        self, message: room_pb.UpdateRoomMetadataRequest, grants: Grants
    ) -> models.Room:
        _require(grants, "roomAdmin", message.room)
        state = self._live_room(message.room)
        if state is None:
            raise TwirpFault("not_found", "requested room does not exist")
        if len(message.metadata.encode()) > MAX_METADATA_BYTES:
            raise TwirpFault("invalid_argument", "metadata size exceeds limits")
        state.proto.metadata = message.metadata
        return _snapshot(state)

    def _rpc_list_participants(
        self, message: room_pb.ListParticipantsRequest, grants: Grants
    ) -> room_pb.ListParticipantsResponse:
        _require(grants, "roomAdmin", message.room)
        state = self._live_room(message.room)
        participants = list(state.participants.values()) if state else []
        return room_pb.ListParticipantsResponse(participants=participants)

    def _rpc_get_participant(
        self, message: room_pb.RoomParticipantIdentity, grants: Grants
    ) -> models.ParticipantInfo:
        _require(grants, "roomAdmin", message.room)
        state = self._live_room(message.room)
        if state is None or message.identity not in state.participants:
            raise TwirpFault("not_found", "participant does not exist")
        return state.participants[message.identity]

    def _rpc_remove_participant(
        self, message: room_pb.RoomParticipantIdentity, grants: Grants
    ) -> room_pb.RemoveParticipantResponse:
        _require(grants, "roomAdmin", message.room)
        state = self._live_room(message.room)
        gone = state.participants.pop(message.identity, None) if state is not None else None
        if state is None or gone is None:
            raise TwirpFault("not_found", "participant does not exist")
        self._report("participant_left", state, gone, reason=models.PARTICIPANT_REMOVED)
        if not state.participants:
            state.emptied_at = self.clock()
        return room_pb.RemoveParticipantResponse()

    def _rpc_mute_published_track(
        self, message: room_pb.MuteRoomTrackRequest, grants: Grants
    ) -> room_pb.MuteRoomTrackResponse:
        _require(grants, "roomAdmin", message.room)
        state = self._live_room(message.room)
        if state is None or message.identity not in state.participants:
            raise TwirpFault("not_found", "participant does not exist")
        for track in state.participants[message.identity].tracks:
            if track.sid == message.track_sid:
                track.muted = message.muted
                return room_pb.MuteRoomTrackResponse(track=track)
        raise TwirpFault("not_found", "track is not found")

    # -- AgentDispatchService --------------------------------------------------------

    def _dispatch_room(self, room: str, grants: Grants) -> _Room:
        _require(grants, "roomAdmin", room)
        state = self._live_room(room)
        if state is None:
            raise TwirpFault("not_found", "requested room does not exist")
        return state

    def _rpc_create_dispatch(
        self, message: dispatch_pb.CreateAgentDispatchRequest, grants: Grants
    ) -> dispatch_pb.AgentDispatch:
        state = self._dispatch_room(message.room, grants)
        if not message.agent_name:
            raise TwirpFault("invalid_argument", "agent name is required")
        return state.dispatch(message.agent_name, message.metadata, self.clock())

    def _rpc_list_dispatch(
        self, message: dispatch_pb.ListAgentDispatchRequest, grants: Grants
    ) -> dispatch_pb.ListAgentDispatchResponse:
        state = self._dispatch_room(message.room, grants)
        found = [
            made
            for made in state.dispatches.values()
            if not message.dispatch_id or made.id == message.dispatch_id
        ]
        return dispatch_pb.ListAgentDispatchResponse(agent_dispatches=found)

    def _rpc_delete_dispatch(
        self, message: dispatch_pb.DeleteAgentDispatchRequest, grants: Grants
    ) -> dispatch_pb.AgentDispatch:
        state = self._dispatch_room(message.room, grants)
        made = state.dispatches.pop(message.dispatch_id, None)
        if made is None:
            raise TwirpFault("not_found", "dispatch does not exist")
        return made


def _track(given: Mapping[str, Any]) -> models.TrackInfo:
    """A published track from a test's description of it."""
    kind = str(given.get("kind", "audio")).upper()
    source = str(given.get("source", "microphone" if kind == "AUDIO" else "camera")).upper()
    # Value() raises ValueError for a name the enum does not have.
    models.TrackType.Value(kind), models.TrackSource.Value(source)
    return models.TrackInfo(
        sid=new_sid("TR_"),
        type=kind,
        source=source,
        name=str(given.get("name", "")),
        muted=bool(given.get("muted", False)),
    )


def _snake(name: str) -> str:
    """``UpdateRoomMetadata`` → ``update_room_metadata``: the handler's name."""
    return "".join("_" + c.lower() if c.isupper() else c for c in name).lstrip("_")


def _closed(state: _Room, now: float) -> bool:
    if state.participants:
        return False
    if state.ever_joined and state.emptied_at is not None:
        return now >= state.emptied_at + state.proto.departure_timeout
    return now >= state.proto.creation_time + state.proto.empty_timeout


def _snapshot(state: _Room) -> models.Room:
    room = models.Room()
    room.CopyFrom(state.proto)
    room.num_participants = len(state.participants)
    room.num_publishers = sum(p.is_publisher for p in state.participants.values())
    return room
