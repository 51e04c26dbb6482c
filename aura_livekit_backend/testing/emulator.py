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

It runs on its own event loop in a background thread, so a test can drive it
synchronously while the service under test runs on another loop::

    with LiveKitEmulator(api_key="key", api_secret="a-secret-of-32-bytes-or-more…") as lk:
        settings = Settings(livekit_url=lk.url, livekit_api_key="key", …)
"""

from __future__ import annotations

import asyncio
import random
import secrets
import socket
import threading
import time
import warnings
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import jwt
from aiohttp import web
from google.protobuf import json_format
from google.protobuf.message import DecodeError, Message
from google.protobuf.message_factory import GetMessageClass
from livekit.protocol import models
from livekit.protocol import room as room_pb

from ..settings import DEV_API_KEY, DEV_API_SECRET, MIN_SECRET_BYTES

__all__ = ["FAULTS", "SICK_LIVEKIT", "LiveKitEmulator", "RoomFull", "TwirpFault", "free_port"]

SERVICE = "livekit.RoomService"
#: LiveKit's sids are a prefix and 12 characters of this alphabet (shortuuid's base57).
SID_ALPHABET = "23456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"
#: LiveKit's defaults for a room created without them.
DEFAULT_EMPTY_TIMEOUT = 300
DEFAULT_DEPARTURE_TIMEOUT = 20
MAX_NAME_LENGTH = 256
MAX_METADATA_BYTES = 512 * 1024
#: LiveKit's leeway on a token's nbf and exp.
LEEWAY_SECONDS = 60

_STATUS = {
    "canceled": 408,
    "unknown": 500,
    "invalid_argument": 400,
    "malformed": 400,
    "deadline_exceeded": 408,
    "not_found": 404,
    "bad_route": 404,
    "already_exists": 409,
    "permission_denied": 403,
    "unauthenticated": 401,
    "resource_exhausted": 429,
    "failed_precondition": 412,
    "aborted": 409,
    "out_of_range": 400,
    "unimplemented": 501,
    "internal": 500,
    "unavailable": 503,
    "dataloss": 500,
}
#: How long a "stall" fault holds its answer: past any sane client timeout.
STALL_SECONDS = 30.0
#: What :meth:`LiveKitEmulator.disturb` can make a call do besides a Twirp error, as
#: a sick LiveKit, or what stands between it and the service, would.
FAULTS = {
    "garbage": "200 with a body that is not protobuf (a broken proxy or server)",
    "reset": "the connection is dropped without an answer",
    "plain_401": "a plain-text 401, as LiveKit's auth middleware refuses a token",
    "proxy_502": "an HTML 502 page from a proxy in front of LiveKit",
    "stall": f"no answer for {STALL_SECONDS:g} s, then the real one (a LiveKit that hangs)",
}
#: A sick LiveKit: every fault above, and the two Twirp errors it answers most when ill.
SICK_LIVEKIT = (*FAULTS, "unavailable", "internal")
# Sixteen 0xff bytes: a varint longer than protobuf allows, so never a valid message.
_GARBAGE = b"\xff" * 16
#: Every RoomService method, with the message type it takes.
_METHODS = {
    method.name: GetMessageClass(method.input_type)
    for method in room_pb.DESCRIPTOR.services_by_name["RoomService"].methods
}


@dataclass(frozen=True)
class _Disturbance:
    kinds: tuple[str, ...]
    share: float
    #: time.monotonic() after which it heals by itself; None: until healed.
    until: float | None
    msg: str


class RoomFull(Exception):
    """A join the emulated LiveKit refuses: the room has max_participants already."""


class TwirpFault(Exception):
    """An error answered as Twirp JSON ``{"code", "msg"}`` with the code's HTTP status."""

    def __init__(self, code: str, msg: str) -> None:
        super().__init__(f"{code}: {msg}")
        self.code = code
        self.msg = msg

    def response(self) -> web.Response:
        """The Twirp error answer."""
        return web.json_response({"code": self.code, "msg": self.msg}, status=_STATUS[self.code])


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


async def _cancel_the_rest() -> None:
    """Cancel every other task on this loop: calls still stalled when the emulator stops."""
    pending = [task for task in asyncio.all_tasks() if task is not asyncio.current_task()]
    for task in pending:
        task.cancel()
    await asyncio.gather(*pending, return_exceptions=True)


def _snake(name: str) -> str:
    """``UpdateRoomMetadata`` → ``update_room_metadata``: the handler's name."""
    return "".join("_" + c.lower() if c.isupper() else c for c in name).lstrip("_")


def _sid(prefix: str) -> str:
    return prefix + "".join(secrets.choice(SID_ALPHABET) for _ in range(12))


@dataclass
class _Room:
    proto: models.Room
    participants: dict[str, models.ParticipantInfo] = field(default_factory=dict)
    #: When the last participant left; None while someone is in or nobody ever joined.
    emptied_at: float | None = None
    ever_joined: bool = False


class LiveKitEmulator:
    """LiveKit's RoomService on ``127.0.0.1``, in a background thread."""

    def __init__(
        self,
        api_key: str = DEV_API_KEY,
        api_secret: str = DEV_API_SECRET,
        *,
        port: int = 0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        """Emulate a LiveKit that accepts ``api_key``/``api_secret``; ``port`` 0 picks one."""
        self.api_key = api_key
        self.api_secret = api_secret
        self.port = port
        self.clock = clock
        #: Seconds added before every Twirp answer (a slow LiveKit).
        self.latency = 0.0
        #: Twirp calls received, by method name.
        self.calls: Counter[str] = Counter()
        #: Calls answered with a fault instead, by kind (a FAULTS name or Twirp code).
        self.faults_served: Counter[str] = Counter()
        # By method name; None disturbs every method.
        self._disturbances: dict[str | None, _Disturbance] = {}
        self._random = random.Random()  # noqa: S311 (picks faults to serve, not secrets)
        self._outage: threading.Timer | None = None
        self._swept = float("-inf")
        self._rooms: dict[str, _Room] = {}
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle ---------------------------------------------------------------

    @property
    def url(self) -> str:
        """The URL to give the service as ``LIVEKIT_URL``."""
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> LiveKitEmulator:
        """Start serving; returns once the port accepts connections."""
        if self._thread is not None:
            raise RuntimeError("the emulator is already running")
        if len(self.api_secret.encode()) < MIN_SECRET_BYTES:
            # LiveKit's dev secret is short by design; PyJWT would warn at every call.
            warnings.filterwarnings("ignore", category=jwt.InsecureKeyLengthWarning)
        ready = threading.Event()
        failure: list[BaseException] = []

        def run() -> None:
            loop = asyncio.new_event_loop()
            self._loop = loop
            try:
                runner = loop.run_until_complete(self._serve())
            except BaseException as exc:
                failure.append(exc)
                ready.set()
                loop.close()
                return
            ready.set()
            loop.run_forever()
            loop.run_until_complete(runner.cleanup())
            loop.run_until_complete(_cancel_the_rest())
            loop.close()

        self._thread = threading.Thread(target=run, name="livekit-emulator", daemon=True)
        self._thread.start()
        ready.wait()
        if failure:
            self._thread = None
            raise failure[0]
        return self

    async def _serve(self) -> web.AppRunner:
        app = web.Application(client_max_size=2 * MAX_METADATA_BYTES)
        app.router.add_route("*", "/twirp/{path:.*}", self._twirp)
        # Not LiveKit's: lets a person (or a test in another process) stand in for
        # WebRTC joins when the emulator runs behind `aura-livekit-backend --dev`.
        app.router.add_post("/_emulator/rooms/{room}/participants", self._http_join)
        app.router.add_delete("/_emulator/rooms/{room}/participants/{identity}", self._http_leave)
        # A stalled call must not hold up stop() for its 30 s.
        runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.5)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", self.port, reuse_address=True)
        await site.start()
        self.port = runner.addresses[0][1]  # the port 0 became
        return runner

    def stop(self) -> None:
        """Stop serving (connections are refused from now on); rooms are kept."""
        if self._outage is not None:
            self._outage.cancel()
            self._outage = None
        self._halt()

    def _halt(self) -> None:
        if self._thread is None or self._loop is None:
            return
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=10)
        self._thread = None
        self._loop = None

    def __enter__(self) -> LiveKitEmulator:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    # -- what a test may do to the emulated LiveKit --------------------------------

    def add_participant(
        self, room: str, identity: str, name: str = "", *, publisher: bool = False
    ) -> models.ParticipantInfo:
        """Join ``identity`` to ``room`` as LiveKit would at WebRTC signalling.

        A second join with the same identity replaces the first (LiveKit disconnects
        it). Raises :class:`RoomFull` when max_participants are already in, KeyError
        when the room does not exist.
        """
        with self._lock:
            state = self._live_room(room)
            if state is None:
                raise KeyError(room)
            limit = state.proto.max_participants
            if identity not in state.participants and 0 < limit <= len(state.participants):
                raise RoomFull(room)
            now = self.clock()
            participant = models.ParticipantInfo(
                sid=_sid("PA_"),
                identity=identity,
                name=name or identity,
                state=models.ParticipantInfo.State.ACTIVE,
                joined_at=int(now),
                joined_at_ms=int(now * 1000),
                is_publisher=publisher,
            )
            state.participants[identity] = participant
            state.ever_joined = True
            state.emptied_at = None
            return participant

    def remove_participant(self, room: str, identity: str) -> None:
        """``identity`` leaves ``room`` (the departure timeout starts when it empties)."""
        with self._lock:
            state = self._live_room(room)
            if state is None or state.participants.pop(identity, None) is None:
                return
            if not state.participants:
                state.emptied_at = self.clock()

    def fail(self, method: str, code: str | None, msg: str = "emulated failure") -> None:
        """Answer every ``method`` call with the Twirp error ``code`` from now on; None heals."""
        if code is None:
            if method not in _METHODS:
                raise ValueError(f"RoomService has no method {method}")
            self._disturbances.pop(method, None)
        else:
            self.disturb(code, method=method, msg=msg)

    def disturb(
        self,
        kind: str | Sequence[str],
        *,
        method: str | None = None,
        share: float = 1.0,
        seconds: float | None = None,
        msg: str = "emulated failure",
    ) -> None:
        """Answer calls with a fault instead of their answer, from now on.

        ``kind`` is a name in :data:`FAULTS` or a Twirp error code (``"unavailable"``,
        ``"internal"``, …; ``msg`` is its message), or several, one picked at random for
        each call hit. ``method`` limits it to one
        RoomService method (a method's own disturbance wins over an all-methods one);
        ``share`` is the fraction of calls hit, at random; ``seconds`` heals it by
        itself after that long. The call is still counted in :attr:`calls`.
        """
        kinds = (kind,) if isinstance(kind, str) else tuple(kind)
        for one in kinds:
            if one not in FAULTS and one not in _STATUS:
                raise ValueError(f"unknown fault {one!r}: one of {sorted(FAULTS)} or a Twirp code")
        if not kinds:
            raise ValueError("name at least one fault")
        if method is not None and method not in _METHODS:
            raise ValueError(f"RoomService has no method {method}")
        if not 0 < share <= 1:
            raise ValueError("share must be more than 0 and at most 1")
        until = None if seconds is None else time.monotonic() + seconds
        self._disturbances[method] = _Disturbance(kinds, share, until, msg)

    def heal(self) -> None:
        """Drop every disturbance and the latency: LiveKit is well again."""
        self._disturbances.clear()
        self.latency = 0.0

    def outage(self, seconds: float) -> None:
        """Refuse every connection for ``seconds``, then serve again on the same port.

        Returns at once; the rooms are kept, as a LiveKit that restarts with Redis would.
        """
        if self._thread is None:
            raise RuntimeError("the emulator is not running")
        self._halt()
        self._outage = threading.Timer(seconds, self._end_outage)
        self._outage.daemon = True
        self._outage.start()

    def _end_outage(self) -> None:
        self._outage = None
        self.start()

    def _disturbance(self, method: str) -> _Disturbance | None:
        for key in (method, None):
            found = self._disturbances.get(key)
            if found is None:
                continue
            if found.until is not None and time.monotonic() >= found.until:
                self._disturbances.pop(key, None)
                continue
            if found.share >= 1 or self._random.random() < found.share:
                return found
            return None
        return None

    async def _sick_answer(
        self, request: web.Request, found: _Disturbance
    ) -> web.StreamResponse | None:
        """The fault's answer, or None to answer normally (after a stall)."""
        kind = self._random.choice(found.kinds)
        self.faults_served[kind] += 1
        if kind == "stall":
            await asyncio.sleep(STALL_SECONDS)
            return None
        if kind == "garbage":
            return web.Response(body=_GARBAGE, content_type=request.content_type)
        if kind == "reset":
            if request.transport is not None:
                request.transport.abort()
            # Nothing reaches the client; this only ends the handler.
            return web.Response(status=499)
        if kind == "plain_401":
            return web.Response(status=401, text="invalid token\n")
        if kind == "proxy_502":
            return web.Response(
                status=502,
                text="<html><body><h1>502 Bad Gateway</h1></body></html>",
                content_type="text/html",
            )
        return TwirpFault(kind, found.msg).response()

    def room_names(self) -> list[str]:
        """The names of the rooms that are open now."""
        with self._lock:
            self._expire()
            return sorted(self._rooms)

    async def _http_join(self, request: web.Request) -> web.Response:
        try:
            body = await request.json()
            identity = body["identity"]
            name = body.get("name", "")
        except (ValueError, KeyError, TypeError, AttributeError):
            return web.json_response(
                {"error": 'send {"identity": "...", "name": "..."}'}, status=400
            )
        try:
            joined = self.add_participant(request.match_info["room"], str(identity), str(name))
        except KeyError:
            return web.json_response({"error": "no such room"}, status=404)
        except RoomFull:
            return web.json_response({"error": "room is full"}, status=409)
        return web.json_response({"identity": joined.identity, "name": joined.name})

    async def _http_leave(self, request: web.Request) -> web.Response:
        self.remove_participant(request.match_info["room"], request.match_info["identity"])
        return web.Response(status=204)

    # -- the Twirp service -------------------------------------------------------

    async def _twirp(self, request: web.Request) -> web.StreamResponse:
        header = request.headers.get("Authorization")
        claims = None
        if header is not None:
            claims = self._verify(header)
            if claims is None:
                # LiveKit's auth middleware answers before Twirp: plain text, no code.
                return web.Response(status=401, text="invalid token\n")
        method = request.match_info["path"].removeprefix(SERVICE + "/")
        content_type = request.content_type
        try:
            if (
                request.method != "POST"
                or not request.match_info["path"].startswith(SERVICE + "/")
                or method not in _METHODS
                or content_type not in ("application/protobuf", "application/json")
            ):
                raise TwirpFault("bad_route", f"no handler for path {request.path!r}")
            self.calls[method] += 1
            if self.latency:
                await asyncio.sleep(self.latency)
            disturbance = self._disturbance(method)
            if disturbance is not None:
                sick = await self._sick_answer(request, disturbance)
                if sick is not None:
                    return sick
            handler = getattr(self, "_rpc_" + _snake(method), None)
            if handler is None:
                raise TwirpFault("unimplemented", f"the emulator does not implement {method}")
            message = self._decode(await request.read(), content_type, _METHODS[method])
            if claims is None:
                raise TwirpFault("unauthenticated", "permissions denied")
            with self._lock:
                self._expire()
                answer = handler(message, claims.get("video") or {})
        except TwirpFault as fault:
            return fault.response()
        return self._encode(answer, content_type)

    def _verify(self, header: str) -> dict[str, Any] | None:
        scheme, _, token = header.partition(" ")
        if scheme != "Bearer" or not token:
            return None
        try:
            return jwt.decode(
                token,
                self.api_secret,
                algorithms=["HS256"],
                issuer=self.api_key,
                leeway=LEEWAY_SECONDS,
                options={"require": ["exp", "iss"]},
            )
        except jwt.PyJWTError:
            return None

    @staticmethod
    def _decode(body: bytes, content_type: str, request_type: type[Message]) -> Message:
        message = request_type()
        try:
            if content_type == "application/json":
                json_format.Parse(body or b"{}", message, ignore_unknown_fields=True)
            else:
                message.ParseFromString(body)
        except (DecodeError, json_format.ParseError, UnicodeDecodeError) as exc:
            raise TwirpFault("malformed", f"the request could not be decoded: {exc}") from None
        return message

    @staticmethod
    def _encode(message: Message, content_type: str) -> web.Response:
        if content_type == "application/json":
            text = json_format.MessageToJson(message, preserving_proto_field_name=True)
            return web.Response(body=text.encode(), content_type="application/json")
        return web.Response(body=message.SerializeToString(), content_type="application/protobuf")

    # -- state (called with the lock held) ------------------------------------------

    def _expire(self) -> None:
        # A sweep touches every room: at most one per second of the clock, so a call
        # costs the same with ten rooms or ten thousand (rooms looked up by name are
        # checked one by one in _live_room).
        now = self.clock()
        if now - self._swept < 1:
            return
        self._swept = now
        for name in [name for name, state in self._rooms.items() if self._closed(state, now)]:
            del self._rooms[name]

    @staticmethod
    def _closed(state: _Room, now: float) -> bool:
        if state.participants:
            return False
        if state.ever_joined and state.emptied_at is not None:
            return now >= state.emptied_at + state.proto.departure_timeout
        return now >= state.proto.creation_time + state.proto.empty_timeout

    def _live_room(self, name: str) -> _Room | None:
        self._expire()
        state = self._rooms.get(name)
        if state is not None and self._closed(state, self.clock()):
            del self._rooms[name]
            return None
        return state

    def _snapshot(self, state: _Room) -> models.Room:
        room = models.Room()
        room.CopyFrom(state.proto)
        room.num_participants = len(state.participants)
        room.num_publishers = sum(p.is_publisher for p in state.participants.values())
        return room

    @staticmethod
    def _require(grants: dict[str, Any], grant: str, room: str | None = None) -> None:
        if not grants.get(grant) or (room is not None and grants.get("room") != room):
            raise TwirpFault("permission_denied", "permissions denied")

    def _rpc_create_room(
        self, message: room_pb.CreateRoomRequest, grants: dict[str, Any]
    ) -> models.Room:
        self._require(grants, "roomCreate")
        if not message.name:
            raise TwirpFault("invalid_argument", "room name is required")
        if len(message.name) > MAX_NAME_LENGTH:
            raise TwirpFault("invalid_argument", "room name length exceeds limits")
        if len(message.metadata.encode()) > MAX_METADATA_BYTES:
            raise TwirpFault("invalid_argument", "metadata size exceeds limits")
        existing = self._live_room(message.name)
        if existing is not None:
            return self._snapshot(existing)
        now = self.clock()
        proto = models.Room(
            sid=_sid("RM_"),
            name=message.name,
            empty_timeout=message.empty_timeout or DEFAULT_EMPTY_TIMEOUT,
            departure_timeout=message.departure_timeout or DEFAULT_DEPARTURE_TIMEOUT,
            max_participants=message.max_participants,
            creation_time=int(now),
            creation_time_ms=int(now * 1000),
            metadata=message.metadata,
        )
        self._rooms[message.name] = _Room(proto)
        return self._snapshot(self._rooms[message.name])

    def _rpc_list_rooms(
        self, message: room_pb.ListRoomsRequest, grants: dict[str, Any]
    ) -> room_pb.ListRoomsResponse:
        self._require(grants, "roomList")
        if message.names:
            found = (self._live_room(name) for name in message.names)
            rooms = [self._snapshot(state) for state in found if state is not None]
        else:
            rooms = [self._snapshot(state) for state in self._rooms.values()]
        return room_pb.ListRoomsResponse(rooms=rooms)

    def _rpc_delete_room(
        self, message: room_pb.DeleteRoomRequest, grants: dict[str, Any]
    ) -> room_pb.DeleteRoomResponse:
        self._require(grants, "roomCreate")
        if self._live_room(message.room) is None:
            raise TwirpFault("not_found", "requested room does not exist")
        del self._rooms[message.room]
        return room_pb.DeleteRoomResponse()

    def _rpc_update_room_metadata(
        self, message: room_pb.UpdateRoomMetadataRequest, grants: dict[str, Any]
    ) -> models.Room:
        self._require(grants, "roomAdmin", message.room)
        state = self._live_room(message.room)
        if state is None:
            raise TwirpFault("not_found", "requested room does not exist")
        if len(message.metadata.encode()) > MAX_METADATA_BYTES:
            raise TwirpFault("invalid_argument", "metadata size exceeds limits")
        state.proto.metadata = message.metadata
        return self._snapshot(state)

    def _rpc_list_participants(
        self, message: room_pb.ListParticipantsRequest, grants: dict[str, Any]
    ) -> room_pb.ListParticipantsResponse:
        self._require(grants, "roomAdmin", message.room)
        state = self._live_room(message.room)
        participants = list(state.participants.values()) if state else []
        return room_pb.ListParticipantsResponse(participants=participants)

    def _rpc_get_participant(
        self, message: room_pb.RoomParticipantIdentity, grants: dict[str, Any]
    ) -> models.ParticipantInfo:
        self._require(grants, "roomAdmin", message.room)
        state = self._live_room(message.room)
        if state is None or message.identity not in state.participants:
            raise TwirpFault("not_found", "participant does not exist")
        return state.participants[message.identity]

    def _rpc_remove_participant(
        self, message: room_pb.RoomParticipantIdentity, grants: dict[str, Any]
    ) -> room_pb.RemoveParticipantResponse:
        self._require(grants, "roomAdmin", message.room)
        state = self._live_room(message.room)
        if state is None or state.participants.pop(message.identity, None) is None:
            raise TwirpFault("not_found", "participant does not exist")
        if not state.participants:
            state.emptied_at = self.clock()
        return room_pb.RemoveParticipantResponse()


def main(argv: list[str] | None = None) -> None:
    """``python -m aura_livekit_backend.testing.emulator``: serve until interrupted."""
    import argparse
    import signal

    parser = argparse.ArgumentParser(description="LiveKit RoomService emulator (no media).")
    parser.add_argument("--port", type=int, default=7880)
    parser.add_argument("--api-key", default=DEV_API_KEY)
    parser.add_argument("--api-secret", default=DEV_API_SECRET)
    parser.add_argument(
        "--fault",
        action="append",
        default=[],
        metavar="KIND",
        help=f"fail calls this way (repeatable): {', '.join(FAULTS)}, or a Twirp error code",
    )
    parser.add_argument(
        "--fault-share", type=float, default=1.0, help="fraction of calls that fail (0 to 1]"
    )
    parser.add_argument("--latency", type=float, default=0.0, help="seconds before every answer")
    args = parser.parse_args(argv)
    stopping = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stopping.set())
    with LiveKitEmulator(args.api_key, args.api_secret, port=args.port) as emulator:
        emulator.latency = args.latency
        if args.fault:
            emulator.disturb(args.fault, share=args.fault_share)
        print(f"LiveKit emulator on {emulator.url}", flush=True)
        stopping.wait()
        # What a soak run reports: how sick LiveKit was.
        print(f"calls: {dict(emulator.calls)}", flush=True)
        print(f"faults served: {dict(emulator.faults_served)}", flush=True)


if __name__ == "__main__":
    main()
