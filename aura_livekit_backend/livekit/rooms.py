"""Rooms in LiveKit: create, find, change, close, and who is in them.

Every fact about a room lives in LiveKit (see :mod:`.metadata`), so workers and
replicas share nothing. Lookups go by name (one call whatever the number of rooms);
a sid is resolved through the worker's :class:`~.sids.SidCache`, confirmed by name.
"""

from __future__ import annotations

import builtins
import logging
import secrets
import string
import time
from collections import OrderedDict
from collections.abc import Awaitable
from typing import Protocol, TypeVar

from livekit import api

from ..events import EventSink, NoEvents, ParticipantRemoved, RoomCreated, RoomDeleted, RoomUpdated
from .errors import (
    LiveKitError,
    NotFoundInLiveKit,
    ParticipantNotFound,
    RoomLimitFixed,
    RoomNotFound,
)
from .listing import RoomEncoder, RoomSnapshot, SharedListing
from .metadata import (
    encode_facts,
    facts_of,
    new_room_facts,
    participant_info,
    room_info,
    track_info,
)
from .models import AgentRequest, Participant, RoomInfo, RoomOptions, RoomPage, Track
from .sids import SidCache, looks_like_sid
from .transport import Transport

__all__ = ["RoomCounter", "Rooms", "new_room_name"]

logger = logging.getLogger("aura_livekit_backend.livekit")

_NAME_ALPHABET = string.ascii_lowercase + string.digits
#: How many fresh names to try before giving up on finding an unused one.
_NAME_ATTEMPTS = 5
#: The room name readiness checks look up; LiveKit names cannot contain a space.
_PING = "aura readiness check"
T = TypeVar("T")
#: Rooms whose creation here, or newest facts, are remembered (``Rooms.created_here``,
#: ``Rooms.learn_facts``): a bound on memory.
_REMEMBERED = 1_000


def new_room_name(now: float | None = None) -> str:
    """A fresh room name, ``room-1736598234-x7k2m9``: unix seconds and 6 random characters."""
    stamp = int(time.time() if now is None else now)
    suffix = "".join(secrets.choice(_NAME_ALPHABET) for _ in range(6))
    return f"room-{stamp}-{suffix}"


class RoomCounter(Protocol):
    """Hears of every room created (the metrics implement it)."""

    def room_created(self) -> None:
        """A room was created."""


def _remember(kept: OrderedDict[str, T], sid: str, value: T) -> None:
    """Keep ``value`` for ``sid`` as the newest of at most ``_REMEMBERED``."""
    kept[sid] = value
    kept.move_to_end(sid)
    if len(kept) > _REMEMBERED:
        kept.popitem(last=False)


class Rooms:
    """One worker's view of LiveKit's rooms."""

    def __init__(
        self,
        transport: Transport,
        *,
        sid_cache_size: int,
        list_cache_seconds: float,
        events: EventSink | None = None,
        counter: RoomCounter | None = None,
        encode_room: RoomEncoder | None = None,
    ) -> None:
        """Call LiveKit through ``transport``; report changes to ``events``; write each
        listed room as JSON with ``encode_room`` (see :meth:`RoomSnapshot.json`)."""
        self._transport = transport
        self._counter = counter
        self._events = events or NoEvents()
        self._sids = SidCache(sid_cache_size)
        self._listing = SharedListing(
            self._every_room, keep_seconds=list_cache_seconds, encode=encode_room
        )
        # Sids of the rooms this worker created, learnt from CreateRoom's answer.
        self._created_here: OrderedDict[str, None] = OrderedDict()
        # sid -> when the newest facts learnt for the room were changed.
        self._facts_at: OrderedDict[str, float] = OrderedDict()

    def close(self) -> None:
        """Stop work in flight (the worker is stopping)."""
        self._listing.close()

    async def create(
        self,
        *,
        topic: str,
        description: str,
        max_participants: int,
        created_by: str,
        options: RoomOptions | None = None,
        name: str | None = None,
    ) -> RoomInfo:
        """Create a room with a fresh name (or ``name``) and the given facts and options.

        LiveKit's CreateRoom is get-or-create: a name someone else took a moment ago
        would hand back *their* room. The metadata we sent tells ours from theirs, and
        a taken fresh name is replaced by a new one; a room with the given ``name``
        that exists already is simply answered (no event: nothing was created).
        """
        options = options or RoomOptions()
        metadata = new_room_facts(
            topic=topic,
            description=description,
            created_by=created_by,
            app_metadata=options.metadata,
            agents=tuple(agent.name for agent in options.agents),
        )
        for _ in range(_NAME_ATTEMPTS):
            request = api.CreateRoomRequest(
                name=name or new_room_name(),
                max_participants=max_participants,
                metadata=metadata,
                empty_timeout=options.empty_timeout,
                departure_timeout=options.departure_timeout,
                agents=[
                    api.RoomAgentDispatch(agent_name=agent.name, metadata=agent.metadata)
                    for agent in options.agents
                ],
            )
            room = await self._change("CreateRoom", self._transport.room.create_room(request))
            if name is not None and room.metadata != metadata:
                self._sids.put(room.sid, room.name)
                return room_info(room)
            if room.metadata == metadata:
                self._sids.put(room.sid, room.name)
                info = room_info(room)
                self._listing.learn_created(info)
                _remember(self._created_here, room.sid, None)
                if self._counter is not None:
                    self._counter.room_created()
                self._events.emit(RoomCreated(info))
                return info
            logger.warning("room name %s was taken; trying another", room.name)
        raise LiveKitError("LiveKit kept answering with rooms that already existed")

    async def _change(self, method: str, call: Awaitable[T]) -> T:
        """``method`` through the transport, for a call that changes rooms: failed or
        cancelled, it may have happened all the same, so the listing is dropped (listed
        afresh by the next reader) rather than guessed."""
        try:
            return await self._transport.call(method, call)
        except BaseException:
            self._listing.forget()
            raise

    async def dispatch(self, room: str, agent: AgentRequest) -> bool:
        """Dispatch ``agent`` to the room named ``room`` unless a dispatch of it is there
        already; True when this call dispatched it.

        LiveKit applies a token's ``roomConfig`` only when the join creates the room, so
        an agent asked for in a join to an existing room goes through here instead.
        Two joins at one moment may both dispatch (a check, not a lock).
        """
        dispatches = self._transport.agent_dispatch
        existing = await self._transport.call("ListDispatch", dispatches.list_dispatch(room))
        if any(found.agent_name == agent.name for found in existing):
            return False
        request = api.CreateAgentDispatchRequest(
            agent_name=agent.name, room=room, metadata=agent.metadata
        )
        await self._transport.call("CreateDispatch", dispatches.create_dispatch(request))
        return True

    async def dispatches(self, room_id: str) -> builtins.list[api.AgentDispatch]:
        """The room's agent dispatches (LiveKit's messages)."""
        room = await self._find(room_id)
        dispatches = self._transport.agent_dispatch
        return list(await self._transport.call("ListDispatch", dispatches.list_dispatch(room.name)))

    async def add_dispatch(self, room_id: str, agent: AgentRequest) -> api.AgentDispatch:
        """Dispatch ``agent`` to the room, whatever is there already (an operator's call)."""
        room = await self._find(room_id)
        request = api.CreateAgentDispatchRequest(
            agent_name=agent.name, room=room.name, metadata=agent.metadata
        )
        dispatches = self._transport.agent_dispatch
        return await self._transport.call("CreateDispatch", dispatches.create_dispatch(request))

    async def delete_dispatch(self, room_id: str, dispatch_id: str) -> api.AgentDispatch:
        """Delete the room's dispatch ``dispatch_id``; returns what it was."""
        room = await self._find(room_id)
        dispatches = self._transport.agent_dispatch
        return await self._transport.call(
            "DeleteDispatch", dispatches.delete_dispatch(dispatch_id, room.name)
        )

    async def get(self, room_id: str) -> RoomInfo:
        """The room named ``room_id``, or else the one whose sid it is."""
        return room_info(await self._find(room_id))

    async def update(
        self,
        room_id: str,
        *,
        topic: str | None = None,
        description: str | None = None,
        max_participants: int | None = None,
    ) -> RoomInfo:
        """Change the room's facts; ``None`` leaves one as it is.

        LiveKit fixes its own participant limit at creation, so a lower limit is kept in
        the metadata too (and enforced by joins), and a higher one raises
        :class:`RoomLimitFixed`.
        """
        room = await self._find(room_id)
        facts = facts_of(room)
        if topic is not None:
            facts["topic"] = topic
        if description is not None:
            facts["description"] = description
        if max_participants is not None:
            if 0 < room.max_participants < max_participants:
                raise RoomLimitFixed(room.max_participants)
            facts["maxParticipants"] = max_participants
        request = api.UpdateRoomMetadataRequest(room=room.name, metadata=encode_facts(facts))
        answer = await self._change(
            "UpdateRoomMetadata", self._transport.room.update_room_metadata(request)
        )
        updated = room_info(answer)
        # Before the event: its entry, read back from the log, is then no older.
        self.learn_facts(updated, time.time())
        self._events.emit(RoomUpdated(updated))
        return updated

    async def delete(self, room_id: str) -> RoomInfo:
        """Close the room (LiveKit disconnects everyone in it); returns what it was."""
        room = await self._find(room_id)
        try:
            await self._change(
                "DeleteRoom",
                self._transport.room.delete_room(api.DeleteRoomRequest(room=room.name)),
            )
        except NotFoundInLiveKit:
            # Closed by someone else between our lookup and our call.
            raise RoomNotFound(room_id) from None
        self._listing.learn_finished(room.name, room.sid)
        self._sids.forget(room.sid)
        info = room_info(room)
        self._events.emit(RoomDeleted(info))
        return info

    async def participants(self, room_id: str) -> tuple[RoomInfo, list[Participant]]:
        """The room and everyone in it, in order of joining."""
        room = await self._find(room_id)
        response = await self._transport.call(
            "ListParticipants",
            self._transport.room.list_participants(api.ListParticipantsRequest(room=room.name)),
        )
        people = sorted(
            (participant_info(info) for info in response.participants),
            key=lambda person: (person.joined_at, person.identity),
        )
        return room_info(room), people

    async def is_connected(self, room: str, identity: str) -> bool:
        """True when ``identity`` is in the room named ``room`` now (one call, by name)."""
        who = api.RoomParticipantIdentity(room=room, identity=identity)
        try:
            info = await self._transport.call(
                "GetParticipant", self._transport.room.get_participant(who)
            )
        except NotFoundInLiveKit:
            return False
        return info.state != api.ParticipantInfo.State.DISCONNECTED

    async def remove_participant(self, room_id: str, identity: str) -> RoomInfo:
        """Disconnect ``identity`` from the room; :class:`ParticipantNotFound` if not there."""
        room = await self._find(room_id)
        who = api.RoomParticipantIdentity(room=room.name, identity=identity)
        try:
            await self._transport.call(
                "RemoveParticipant", self._transport.room.remove_participant(who)
            )
        except NotFoundInLiveKit:
            raise ParticipantNotFound(identity) from None
        info = room_info(room)
        self._events.emit(ParticipantRemoved(info, identity))
        return info

    async def mute_track(
        self, room_id: str, identity: str, track_sid: str, *, muted: bool = True
    ) -> Track:
        """Mute (or unmute) a track ``identity`` publishes; the track as it is now.

        :class:`ParticipantNotFound` when the room has no such participant or the
        participant no such track (LiveKit answers both as not found). LiveKit
        unmutes remotely only with its ``room.enable_remote_unmute`` option.
        """
        room = await self._find(room_id)
        request = api.MuteRoomTrackRequest(
            room=room.name, identity=identity, track_sid=track_sid, muted=muted
        )
        try:
            answer = await self._transport.call(
                "MutePublishedTrack", self._transport.room.mute_published_track(request)
            )
        except NotFoundInLiveKit:
            raise ParticipantNotFound(identity) from None
        return track_info(answer.track)

    async def list(
        self, *, limit: int | None = None, after: tuple[int, str] | None = None
    ) -> RoomPage:
        """Active rooms, oldest first: all of them, or ``limit`` after position ``after``."""
        return (await self.snapshot()).page(limit=limit, after=after)

    async def snapshot(self) -> RoomSnapshot:
        """Every active room, as of at most ``AURA_ROOM_LIST_CACHE_SECONDS`` ago."""
        return await self._listing.snapshot()

    # -- learning from LiveKit's events (webhooks) -----------------------------------------
    # Not in the plugin contract: the service feeds these from LiveKit's own reports.
    # LiveKit stays the authority: the next listing replaces what was learnt.

    def learn_started(self, room: RoomInfo) -> None:
        """LiveKit says ``room`` started (``room_started``), or this is its latest word
        on it: the listing shows it from the next read, in its place by age, and a join
        by its sid costs one call."""
        self._sids.put(room.sid, room.name)
        self._listing.learn_started(room)

    def created_here(self, sid: str) -> bool:
        """Whether this worker created the room ``sid`` (and learnt it then).

        Its ``aura.room.created`` comes back through the event log a moment later, with
        nothing new: learnt again during a listing, it would put back a room the
        listing no longer shows (closed meanwhile) until the next listing.
        """
        return sid in self._created_here

    def learn_finished(self, name: str, sid: str | None = None) -> None:
        """LiveKit says the room ``name`` closed (``room_finished``): the listing drops it
        from the next read, and its sid is forgotten. With ``sid``, only the room of
        that sid goes (a new room may have taken the name since)."""
        if sid is None:
            self._sids.forget_name(name)
        else:
            self._sids.forget(sid)
        self._listing.learn_finished(name, sid)

    def learn_facts(self, room: RoomInfo, at: float) -> bool:
        """The service changed ``room``'s facts at ``at`` (Unix seconds): UpdateRoomMetadata
        answered here, or ``aura.room.updated`` from the log. The listing shows them from
        the next read, with its own participant count; True unless facts learnt later
        for the room are known (an entry read back late must not undo a newer update).
        """
        if at < self._facts_at.get(room.sid, float("-inf")):
            return False
        _remember(self._facts_at, room.sid, at)
        self._listing.learn_facts(room)
        return True

    def learn_participants(self, name: str, count: int, sid: str | None = None) -> None:
        """LiveKit says the room ``name`` (of ``sid``, when given) has ``count``
        participants now (``participant_joined``/``participant_left``): the listing
        shows that count from the next read."""
        self._listing.learn_participants(name, count, sid)

    async def ping(self) -> None:
        """Ask LiveKit something cheap; raises :class:`LiveKitError` when it cannot answer.

        A by-name lookup of a room nobody names so: one call, the same cost with ten
        rooms or ten thousand.
        """
        await self._by_name(_PING)

    async def _find(self, room_id: str) -> api.Room:
        sid_like = looks_like_sid(room_id)
        cached = self._sids.get(room_id) if sid_like else None
        if cached is not None:
            # The final word is always LiveKit's, by name: a cached sid never vouches for
            # a room that is gone, or for a new room that took the old one's name.
            room = await self._by_name(cached)
            if room is not None and room.sid == room_id:
                return room
            self._sids.forget(room_id)
        room = await self._by_name(room_id)
        if room is not None:
            self._sids.put(room.sid, room.name)
            return room
        if sid_like:
            found = None
            for room in await self._every_room():
                # The list is paid for: remember every sid it shows.
                self._sids.put(room.sid, room.name)
                if room.sid == room_id:
                    found = room
            if found is not None:
                return found
        raise RoomNotFound(room_id)

    async def _by_name(self, name: str) -> api.Room | None:
        response = await self._transport.call(
            "ListRooms", self._transport.room.list_rooms(api.ListRoomsRequest(names=[name]))
        )
        return next((room for room in response.rooms if room.name == name), None)

    # builtins.list: in this class, a bare `list` is the method above.
    async def _every_room(self) -> builtins.list[api.Room]:
        response = await self._transport.call(
            "ListRooms", self._transport.room.list_rooms(api.ListRoomsRequest())
        )
        return list(response.rooms)
