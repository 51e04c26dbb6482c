"""The LiveKit gateway: the only place that speaks to LiveKit.

Everything LiveKit-specific stays here: the ``livekit-api`` client, protobuf
messages, Twirp error codes, how room facts are stored in a room's metadata JSON,
and how tokens are signed. What leaves this module is plain Python — :class:`RoomInfo`
and a handful of exceptions — and nothing here knows about HTTP status codes.

One gateway serves one worker: the app factory builds it (no I/O), a
``before_server_start`` listener :meth:`~LiveKitGateway.open`\\ s it inside the
worker's event loop and ``after_server_stop`` closes it.
"""

from __future__ import annotations

import asyncio
import bisect
import json
import logging
import re
import secrets
import string
import time
import warnings
from collections import OrderedDict
from collections.abc import Awaitable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import NamedTuple, Protocol, TypeVar

import aiohttp
import jwt
from google.protobuf.message import DecodeError
from livekit import api

from .settings import Settings
from .timestamps import from_unix_ms

__all__ = [
    "GatewayObserver",
    "LiveKitError",
    "LiveKitGateway",
    "LiveKitRejected",
    "LiveKitUnavailable",
    "Participant",
    "ParticipantNotFound",
    "RoomInfo",
    "RoomLimitFixed",
    "RoomNotFound",
    "RoomPage",
    "SidCache",
    "looks_like_sid",
    "new_room_name",
    "room_position",
]

logger = logging.getLogger("aura_livekit_backend.livekit")

T = TypeVar("T")

#: LiveKit's sids are a prefix and 12 characters of this alphabet (shortuuid's base57).
SID_ALPHABET = "23456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"
_ROOM_SID = re.compile(rf"RM_[{SID_ALPHABET}]{{12}}")
_NAME_ALPHABET = string.ascii_lowercase + string.digits
#: The service's own token for room listing and creation: its life, and when to renew.
_SERVICE_TOKEN_TTL = timedelta(minutes=10)
_SERVICE_TOKEN_RENEW = 300.0
#: The room name readiness checks look up; LiveKit names cannot contain a space.
_PING = "aura readiness check"
#: How many fresh names to try before giving up on finding an unused one.
_NAME_ATTEMPTS = 5


class LiveKitError(Exception):
    """LiveKit answered with an error the service did not expect (a bad gateway)."""


class LiveKitUnavailable(LiveKitError):
    """LiveKit could not be reached, was too slow, or said it is unavailable."""


class LiveKitRejected(LiveKitError):
    """LiveKit refused the service's own credentials or their permissions."""


class _NotFound(LiveKitError):
    """LiveKit's not_found, before the gateway says what was not found."""


class RoomNotFound(LookupError):
    """No room in LiveKit has that name or sid."""


class ParticipantNotFound(LookupError):
    """The room has no participant with that identity."""


class RoomLimitFixed(ValueError):
    """LiveKit fixes a room's participant limit at creation: it can be lowered, not raised."""

    def __init__(self, limit: int) -> None:
        super().__init__(f"can be lowered, not raised above {limit} (LiveKit fixes it at creation)")
        self.limit = limit


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


def looks_like_sid(room_id: str) -> bool:
    """True when ``room_id`` has the shape of a LiveKit room sid (``RM_`` + 12 characters)."""
    return _ROOM_SID.fullmatch(room_id) is not None


def new_room_name(now: float | None = None) -> str:
    """A fresh room name, ``room-1736598234-x7k2m9``: unix seconds and 6 random characters."""
    stamp = int(time.time() if now is None else now)
    suffix = "".join(secrets.choice(_NAME_ALPHABET) for _ in range(6))
    return f"room-{stamp}-{suffix}"


def _encode_facts(facts: dict[str, object]) -> str:
    # LiveKit hands the metadata to every participant's client: keep it small JSON.
    return json.dumps(facts, ensure_ascii=False, separators=(",", ":"))


def _room_metadata(topic: str, description: str, created_by: str) -> str:
    return _encode_facts({"topic": topic, "description": description, "createdBy": created_by})


def _facts(room: api.Room) -> dict[str, object]:
    """Our facts from the room's metadata; a room made elsewhere may hold anything there."""
    try:
        facts = json.loads(room.metadata) if room.metadata else {}
    except ValueError:
        return {}
    return facts if isinstance(facts, dict) else {}


def _limit(room: api.Room, facts: dict[str, object]) -> int:
    """The room's participant limit: LiveKit's, or a lower one set since (0: none)."""
    lowered = facts.get("maxParticipants")
    hard = room.max_participants
    if isinstance(lowered, int) and lowered > 0 and (hard == 0 or lowered < hard):
        return lowered
    return hard


def _participant(info: api.ParticipantInfo) -> Participant:
    return Participant(
        identity=info.identity,
        name=info.name,
        joined_at=from_unix_ms(info.joined_at_ms or info.joined_at * 1000),
        is_publisher=info.is_publisher,
        state=api.ParticipantInfo.State.Name(info.state).lower(),
    )


def _text(facts: dict[str, object], key: str, default: str) -> str:
    value = facts.get(key)
    return value if isinstance(value, str) else default


def _proto_position(room: api.Room) -> tuple[int, str]:
    return (room.creation_time_ms or room.creation_time * 1000, room.name)


def room_position(room: RoomInfo) -> tuple[int, str]:
    """Where a room stands in :meth:`LiveKitGateway.list_rooms`: creation ms, then name."""
    return (round(room.created_at.timestamp() * 1000), room.name)


def _room_info(room: api.Room) -> RoomInfo:
    facts = _facts(room)
    return RoomInfo(
        name=room.name,
        sid=room.sid,
        # A room made by someone else (another tool, a client's auto-create) has no
        # facts of ours: its name is the best topic there is.
        topic=_text(facts, "topic", room.name),
        description=_text(facts, "description", ""),
        max_participants=_limit(room, facts),
        created_by=_text(facts, "createdBy", ""),
        created_at=from_unix_ms(_proto_position(room)[0]),
        num_participants=room.num_participants,
    )


class SidCache:
    """Room sid → room name, for at most ``size`` rooms, least recently used out first.

    LiveKit keys rooms by name and has no lookup by sid; without this, every join by
    sid would list every room.
    """

    def __init__(self, size: int) -> None:
        """Remember at most ``size`` sids (0: remember none)."""
        self._size = size
        self._names: OrderedDict[str, str] = OrderedDict()

    def __len__(self) -> int:
        return len(self._names)

    def get(self, sid: str) -> str | None:
        """The name last seen with ``sid``, if remembered."""
        name = self._names.get(sid)
        if name is not None:
            self._names.move_to_end(sid)
        return name

    def put(self, sid: str, name: str) -> None:
        """Remember that ``sid`` is the room ``name``."""
        if self._size <= 0:
            return
        self._names[sid] = name
        self._names.move_to_end(sid)
        while len(self._names) > self._size:
            self._names.popitem(last=False)

    def forget(self, sid: str) -> None:
        """Drop ``sid`` (its room is gone or was replaced)."""
        self._names.pop(sid, None)


class GatewayObserver(Protocol):
    """What the gateway reports as it works (the metrics implement it)."""

    def livekit_call(self, method: str, outcome: str, seconds: float) -> None:
        """One call to LiveKit ended: ``ok``, or the kind of failure."""

    def token_minted(self) -> None:
        """A token was minted."""

    def room_created(self) -> None:
        """A room was created."""


class _Unobserved:
    def livekit_call(self, method: str, outcome: str, seconds: float) -> None:
        pass

    def token_minted(self) -> None:
        pass

    def room_created(self) -> None:
        pass


#: The metric label for each way a Twirp call can fail (a documented vocabulary,
#: not class names).
_OUTCOMES: dict[type[LiveKitError], str] = {
    LiveKitRejected: "rejected",
    LiveKitUnavailable: "unavailable",
    _NotFound: "not_found",
}


class LiveKitGateway:
    """Rooms and tokens, in LiveKit, for one worker."""

    def __init__(self, settings: Settings, observer: GatewayObserver | None = None) -> None:
        """Remember the settings; nothing is opened until :meth:`open`.

        ``observer`` hears of every call, token and room (the metrics).
        """
        self._settings = settings
        self._observer = observer or _Unobserved()
        self._sids = SidCache(settings.sid_cache_size)
        self._ttl_seconds = int(settings.token_ttl.total_seconds())
        self._list_ttl = settings.room_list_cache_seconds
        self._listing: tuple[float, list[api.Room]] | None = None
        # The ListRooms call in flight, shared by every caller meanwhile.
        self._listing_call: asyncio.Future[list[api.Room]] | None = None
        self._listing_generation = 0
        self._timeout = settings.livekit_timeout
        self._session: aiohttp.ClientSession | None = None
        self._client: api.LiveKitAPI | None = None
        self._lister: api.RoomService | None = None
        self._lister_signed = 0.0

    @property
    def public_url(self) -> str:
        """The LiveKit URL clients connect to with the tokens this gateway mints."""
        return self._settings.public_url

    async def open(self) -> None:
        """Open the HTTP session to LiveKit; call inside the worker's running event loop."""
        if self._settings.secret_is_weak():
            # Start-up has already warned once; PyJWT would warn again at every signature.
            warnings.filterwarnings("ignore", category=jwt.InsecureKeyLengthWarning)
        self._session = aiohttp.ClientSession()
        self._client = api.LiveKitAPI(
            # Always explicit: the client falls back to LIVEKIT_* variables on its own.
            url=self._settings.livekit_url,
            api_key=self._settings.livekit_api_key or "",
            api_secret=self._settings.secret,
            session=self._session,
        )

    async def close(self) -> None:
        """Close the HTTP session; safe to call twice."""
        session, self._session = self._session, None
        self._client = self._lister = None
        if self._listing_call is not None:
            self._listing_call.cancel()
        if session is not None:
            await session.close()

    @property
    def _room(self) -> api.RoomService:
        """Signs each call with exactly the grants it needs (participant calls name a room)."""
        if self._client is None:
            raise RuntimeError("the LiveKit gateway is used before the server started")
        return self._client.room

    @property
    def _rooms(self) -> api.RoomService:
        """For ListRooms, CreateRoom and DeleteRoom: one pre-signed token, renewed in time.

        livekit-api signs a fresh JWT for every call; on the join path that was a
        quarter of the CPU a request cost, for a token that could be reused.
        """
        if self._session is None:
            raise RuntimeError("the LiveKit gateway is used before the server started")
        now = time.monotonic()
        if self._lister is None or now - self._lister_signed >= _SERVICE_TOKEN_RENEW:
            token = (
                api.AccessToken(self._settings.livekit_api_key, self._settings.secret)
                .with_ttl(_SERVICE_TOKEN_TTL)
                .with_grants(api.VideoGrants(room_list=True, room_create=True))
                .to_jwt()
            )
            self._lister = api.LiveKitAPI.with_token(
                token, self._settings.livekit_url, session=self._session
            ).room
            self._lister_signed = now
        return self._lister

    async def create_room(
        self, *, topic: str, description: str, max_participants: int, created_by: str
    ) -> RoomInfo:
        """Create a room with a fresh name and the given facts.

        LiveKit's CreateRoom is get-or-create: a name someone else took a moment ago
        would hand back *their* room. The metadata we sent tells ours from theirs, and
        a taken name is replaced by a new one.
        """
        metadata = _room_metadata(topic, description, created_by)
        for _ in range(_NAME_ATTEMPTS):
            room = await self._call(
                "CreateRoom",
                self._rooms.create_room(
                    api.CreateRoomRequest(
                        name=new_room_name(),
                        max_participants=max_participants,
                        metadata=metadata,
                    )
                ),
            )
            if room.metadata == metadata:
                self._forget_listing()
                self._observer.room_created()
                self._sids.put(room.sid, room.name)
                return _room_info(room)
            logger.warning("room name %s was taken; trying another", room.name)
        raise LiveKitError("LiveKit kept answering with rooms that already existed")

    async def get_room(self, room_id: str) -> RoomInfo:
        """The room named ``room_id``, or else the one whose sid it is.

        By name costs one ``ListRooms(names=[…])`` whatever the number of rooms.
        LiveKit has no index by sid, so a sid that is not also a name lists all rooms.
        """
        return _room_info(await self._find(room_id))

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
            for room in await self._all_rooms():
                # The list is paid for: remember every sid it shows.
                self._sids.put(room.sid, room.name)
                if room.sid == room_id:
                    found = room
            if found is not None:
                return found
        raise RoomNotFound(room_id)

    async def _by_name(self, name: str) -> api.Room | None:
        response = await self._call(
            "ListRooms", self._rooms.list_rooms(api.ListRoomsRequest(names=[name]))
        )
        return next((room for room in response.rooms if room.name == name), None)

    async def delete_room(self, room_id: str) -> RoomInfo:
        """Close the room (LiveKit disconnects everyone in it); returns what it was."""
        room = await self._find(room_id)
        try:
            await self._call(
                "DeleteRoom", self._rooms.delete_room(api.DeleteRoomRequest(room=room.name))
            )
        except _NotFound:
            # Closed by someone else between our lookup and our call.
            raise RoomNotFound(room_id) from None
        finally:
            self._forget_listing()
        return _room_info(room)

    async def update_room(
        self,
        room_id: str,
        *,
        topic: str | None = None,
        description: str | None = None,
        max_participants: int | None = None,
    ) -> RoomInfo:
        """Change the room's facts; ``None`` leaves one as it is.

        Topic and description live in the metadata. LiveKit fixes its own participant
        limit at creation, so a lower limit is kept in the metadata too (and enforced
        by our joins), and a higher one raises :class:`RoomLimitFixed`.
        """
        room = await self._find(room_id)
        facts = _facts(room)
        if topic is not None:
            facts["topic"] = topic
        if description is not None:
            facts["description"] = description
        if max_participants is not None:
            if 0 < room.max_participants < max_participants:
                raise RoomLimitFixed(room.max_participants)
            facts["maxParticipants"] = max_participants
        self._forget_listing()
        updated = await self._call(
            "UpdateRoomMetadata",
            self._room.update_room_metadata(
                api.UpdateRoomMetadataRequest(room=room.name, metadata=_encode_facts(facts))
            ),
        )
        return _room_info(updated)

    async def list_participants(self, room_id: str) -> tuple[RoomInfo, list[Participant]]:
        """The room and everyone in it, in order of joining."""
        room = await self._find(room_id)
        response = await self._call(
            "ListParticipants",
            self._room.list_participants(api.ListParticipantsRequest(room=room.name)),
        )
        people = sorted(
            (_participant(info) for info in response.participants),
            key=lambda person: (person.joined_at, person.identity),
        )
        return _room_info(room), people

    async def is_connected(self, room: str, identity: str) -> bool:
        """True when ``identity`` is in the room named ``room`` now (one call, by name)."""
        who = api.RoomParticipantIdentity(room=room, identity=identity)
        try:
            info = await self._call("GetParticipant", self._room.get_participant(who))
        except _NotFound:
            return False
        return info.state != api.ParticipantInfo.State.DISCONNECTED

    async def remove_participant(self, room_id: str, identity: str) -> RoomInfo:
        """Disconnect ``identity`` from the room; :class:`ParticipantNotFound` if not there."""
        room = await self._find(room_id)
        try:
            await self._call(
                "RemoveParticipant",
                self._room.remove_participant(
                    api.RoomParticipantIdentity(room=room.name, identity=identity)
                ),
            )
        except _NotFound:
            raise ParticipantNotFound(identity) from None
        return _room_info(room)

    async def list_rooms(
        self, *, limit: int | None = None, after: tuple[int, str] | None = None
    ) -> RoomPage:
        """Active rooms, oldest first: all of them, or ``limit`` after ``after``.

        ``after`` is a :func:`room_position`; ``limit`` caps the answer. LiveKit can
        only list them all, so only the page is turned into :class:`RoomInfo` (metadata
        parsing is most of the cost with thousands of rooms).
        """
        rooms = await self._sorted_rooms()
        start = bisect.bisect_right(rooms, after, key=_proto_position) if after else 0
        end = len(rooms) if limit is None else start + limit
        return RoomPage(
            len(rooms), [_room_info(room) for room in rooms[start:end]], end < len(rooms)
        )

    async def _sorted_rooms(self) -> list[api.Room]:
        """Every room, oldest first; a worker reuses one listing for a moment.

        LiveKit has no paging: each page of GET /rooms would list every room again.
        Pages walked in quick succession, and bursts of listings, share one listing
        instead. Changes made through this gateway drop it at once; others show within
        AURA_ROOM_LIST_CACHE_SECONDS. Joins never use it.
        """
        listing = self._listing
        if listing is not None and time.monotonic() - listing[0] < self._list_ttl:
            return listing[1]
        if self._listing_call is None:
            self._listing_call = asyncio.ensure_future(self._list_every_room())
            self._listing_call.add_done_callback(self._listing_finished)
        # Callers arriving meanwhile await the same call and share its fate: with a
        # sick LiveKit each waits one timeout, not one for every caller queued ahead.
        # Shielded, so a caller that goes away does not cancel it for the others.
        return await asyncio.shield(self._listing_call)

    async def _list_every_room(self) -> list[api.Room]:
        generation = self._listing_generation
        rooms = sorted(await self._all_rooms(), key=_proto_position)
        if generation == self._listing_generation:  # no change through us meanwhile
            self._listing = (time.monotonic(), rooms)
        return rooms

    def _listing_finished(self, call: asyncio.Future[list[api.Room]]) -> None:
        self._listing_call = None
        if not call.cancelled():
            call.exception()  # marks it retrieved: every caller may have gone

    def _forget_listing(self) -> None:
        """Drop the listing after a change, and keep a listing in flight from being kept."""
        self._listing = None
        self._listing_generation += 1

    async def _all_rooms(self) -> list[api.Room]:
        response = await self._call("ListRooms", self._rooms.list_rooms(api.ListRoomsRequest()))
        return list(response.rooms)

    def mint_token(self, *, identity: str, name: str, room: str) -> str:
        """A join token for ``room``: publish, subscribe and data, for the configured TTL."""
        if not identity or not room:
            raise ValueError("a join token needs an identity and a room")
        now = int(time.time())
        # The claims livekit-api's AccessToken writes, without its per-call dataclass
        # walk (a tenth of a join's CPU); the tests check them with its TokenVerifier.
        claims = {
            "sub": identity,
            "iss": self._settings.livekit_api_key,
            "nbf": now,
            "exp": now + self._ttl_seconds,
            "name": name,
            "video": {
                "roomJoin": True,
                "room": room,
                "canPublish": True,
                "canSubscribe": True,
                "canPublishData": True,
            },
        }
        token = jwt.encode(claims, self._settings.secret, algorithm="HS256")
        self._observer.token_minted()
        return token

    async def ping(self) -> None:
        """Ask LiveKit something cheap; raises :class:`LiveKitError` when it cannot answer.

        A by-name lookup of a room nobody names so: one call, the same cost with ten
        rooms or ten thousand.
        """
        await self._call("ListRooms", self._rooms.list_rooms(api.ListRoomsRequest(names=[_PING])))

    async def _call(self, method: str, call: Awaitable[T]) -> T:
        """Await one LiveKit call (Twirp ``method``), translating its failures."""
        started = time.perf_counter()
        outcome = "ok"
        try:
            # Our own deadline: livekit-api 1.2 hands aiohttp timeout=None on every
            # request, which overrides the session's timeout and waits forever.
            return await asyncio.wait_for(call, self._timeout)
        except api.TwirpError as exc:
            failure = self._twirp_failure(method, exc)
            outcome = _OUTCOMES.get(type(failure), "error")
            raise failure from None
        except asyncio.TimeoutError:
            outcome = "timeout"
            logger.warning("LiveKit %s: no answer within %g s", method, self._timeout)
            raise LiveKitUnavailable(
                f"LiveKit is unavailable (no answer within {self._timeout:g} s)"
            ) from None
        except aiohttp.ClientConnectorError as exc:
            outcome = "unreachable"
            logger.warning("LiveKit %s: cannot connect (%s)", method, type(exc).__name__)
            raise LiveKitUnavailable("LiveKit is unavailable (cannot connect)") from None
        except aiohttp.ClientError as exc:
            # Connected, then the connection died: a LiveKit restarting, a proxy timing out.
            outcome = "unreachable"
            logger.warning("LiveKit %s: connection dropped (%s)", method, type(exc).__name__)
            raise LiveKitUnavailable(
                "LiveKit is unavailable (the connection was dropped)"
            ) from None
        except DecodeError:
            outcome = "undecodable"
            logger.warning("LiveKit %s: the answer is not protobuf", method)
            raise LiveKitError("LiveKit sent an answer that could not be read") from None
        finally:
            self._observer.livekit_call(method, outcome, time.perf_counter() - started)

    @staticmethod
    def _twirp_failure(method: str, exc: api.TwirpError) -> LiveKitError:
        logger.warning(
            "LiveKit %s answered %s %s: %.200s", method, exc.status, exc.code, exc.message
        )
        if exc.status == 401 or exc.code == api.TwirpErrorCode.UNAUTHENTICATED:
            return LiveKitRejected(
                "LiveKit rejected the service's credentials "
                "(check LIVEKIT_API_KEY and LIVEKIT_API_SECRET)"
            )
        if exc.status == 403 or exc.code == api.TwirpErrorCode.PERMISSION_DENIED:
            return LiveKitRejected("LiveKit refused the call: the API key lacks a permission")
        # 502 and 504 come from a proxy in front of a LiveKit that is down or slow.
        if exc.status in (408, 429, 502, 503, 504) or exc.code in (
            api.TwirpErrorCode.UNAVAILABLE,
            api.TwirpErrorCode.RESOURCE_EXHAUSTED,
            api.TwirpErrorCode.DEADLINE_EXCEEDED,
        ):
            return LiveKitUnavailable(f"LiveKit is unavailable ({exc.status} {exc.code})")
        if exc.code == api.TwirpErrorCode.NOT_FOUND:
            return _NotFound(f"LiveKit answered with an unexpected error ({exc.status} {exc.code})")
        return LiveKitError(f"LiveKit answered with an unexpected error ({exc.status} {exc.code})")
