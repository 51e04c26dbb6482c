"""The Twirp wire of LiveKit's RoomService: routes, tokens, bodies and error answers.

What LiveKit does before and after a RoomService method runs, read from its sources
(``shared/notes/livekit-wire.md``): ``POST /twirp/livekit.RoomService/{Method}`` with a
protobuf or JSON body; a JWT checked in two layers (a bad token is a plain-text 401
from the auth middleware, no token a Twirp ``unauthenticated``); answers in the
request's encoding; errors as JSON ``{"code", "msg"}`` with the code's HTTP status.
What a method *does* is :mod:`.state`'s.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

import jwt
from aiohttp import web
from google.protobuf import json_format
from google.protobuf.message import DecodeError, Message
from google.protobuf.message_factory import GetMessageClass
from livekit.protocol import agent_dispatch as dispatch_pb
from livekit.protocol import room as room_pb

if TYPE_CHECKING:
    from .state import Rooms

__all__ = [
    "LEEWAY_SECONDS",
    "METHODS",
    "SERVICE",
    "SERVICES",
    "STATUS",
    "TwirpFault",
    "decode",
    "encode",
    "serve_call",
    "verify",
]

SERVICE = "livekit.RoomService"
#: Every emulated Twirp service, with its method names.
SERVICES: dict[str, frozenset[str]] = {
    SERVICE: frozenset(
        method.name for method in room_pb.DESCRIPTOR.services_by_name["RoomService"].methods
    ),
    "livekit.AgentDispatchService": frozenset(
        method.name
        for method in dispatch_pb.DESCRIPTOR.services_by_name["AgentDispatchService"].methods
    ),
}
#: LiveKit's leeway on a token's nbf and exp.
LEEWAY_SECONDS = 60
#: The HTTP status of each Twirp error code (twitchtv/twirp's spec).
STATUS = {
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
#: Every method of :data:`SERVICES` (their names do not clash), with the message it takes.
METHODS: dict[str, type[Message]] = {
    method.name: GetMessageClass(method.input_type)
    for module, service in (
        (room_pb, "RoomService"),
        (dispatch_pb, "AgentDispatchService"),
    )
    for method in module.DESCRIPTOR.services_by_name[service].methods
}
_CONTENT_TYPES = ("application/protobuf", "application/json")

#: Runs once a call is routed, before it is decoded: answers it instead (a fault),
#: or returns None to let it through. Gets the request and the method's name.
Intercept = Callable[[web.Request, str], Awaitable[web.StreamResponse | None]]


class TwirpFault(Exception):
    """An error answered as Twirp JSON ``{"code", "msg"}`` with the code's HTTP status."""

    def __init__(self, code: str, msg: str) -> None:
        """``code`` is a Twirp error code (a key of :data:`STATUS`); ``msg`` its message."""
        super().__init__(f"{code}: {msg}")
        self.code = code
        self.msg = msg

    def response(self) -> web.Response:
        """The Twirp error answer."""
        return web.json_response({"code": self.code, "msg": self.msg}, status=STATUS[self.code])


def verify(header: str, api_key: str, api_secret: str) -> dict[str, Any] | None:
    """The claims of ``Authorization: Bearer <JWT>`` signed with this key pair, or None."""
    scheme, _, token = header.partition(" ")
    if scheme != "Bearer" or not token:
        return None
    try:
        return jwt.decode(
            token,
            api_secret,
            algorithms=["HS256"],
            issuer=api_key,
            leeway=LEEWAY_SECONDS,
            options={"require": ["exp", "iss"]},
        )
    except jwt.PyJWTError:
        return None


def decode(body: bytes, content_type: str, request_type: type[Message]) -> Message:
    """The request message from its protobuf or JSON body; raises ``malformed``."""
    message = request_type()
    try:
        if content_type == "application/json":
            json_format.Parse(body or b"{}", message, ignore_unknown_fields=True)
        else:
            message.ParseFromString(body)
    except (DecodeError, json_format.ParseError, UnicodeDecodeError) as exc:
        raise TwirpFault("malformed", f"the request could not be decoded: {exc}") from None
    return message


def encode(message: Message, content_type: str) -> web.Response:
    """A 200 answer carrying ``message`` in the request's encoding (JSON: snake_case)."""
    if content_type == "application/json":
        text = json_format.MessageToJson(message, preserving_proto_field_name=True)
        return web.Response(body=text.encode(), content_type="application/json")
    return web.Response(body=message.SerializeToString(), content_type="application/protobuf")


def _route(request: web.Request) -> str:
    """The method a request calls; raises ``bad_route`` as Twirp does."""
    path = request.match_info["path"]
    service, _, method = path.partition("/")
    if (
        request.method != "POST"
        or method not in SERVICES.get(service, ())
        or request.content_type not in _CONTENT_TYPES
    ):
        raise TwirpFault("bad_route", f"no handler for path {request.path!r}")
    return method


async def serve_call(
    request: web.Request, *, api_key: str, api_secret: str, rooms: Rooms, intercept: Intercept
) -> web.StreamResponse:
    """Answer one ``/twirp/…`` request as LiveKit would, from ``rooms``."""
    header = request.headers.get("Authorization")
    claims = None
    if header is not None:
        claims = verify(header, api_key, api_secret)
        if claims is None:
            # LiveKit's auth middleware answers before Twirp: plain text, no code.
            return web.Response(status=401, text="invalid token\n")
    content_type = request.content_type
    try:
        method = _route(request)
        instead = await intercept(request, method)
        if instead is not None:
            return instead
        if not rooms.implements(method):
            raise TwirpFault("unimplemented", f"the emulator does not implement {method}")
        message = decode(await request.read(), content_type, METHODS[method])
        if claims is None:
            raise TwirpFault("unauthenticated", "permissions denied")
        answer = rooms.call(method, message, claims.get("video") or {})
    except TwirpFault as fault:
        return fault.response()
    return encode(answer, content_type)
