"""Rooms: ``POST /room/create``, ``POST /room/join``, ``GET /room/{roomId}``, ``GET /rooms``.

Every fact about a room lives in LiveKit (topic, description and creator in its
metadata, the participant limit in LiveKit's own field), so any number of workers
and replicas agree without sharing anything.
"""

from __future__ import annotations

import base64
import binascii

import orjson
from pydantic import BaseModel, Field
from sanic import HTTPResponse, Request, json, raw
from sanic_ext import openapi
from sanic_ext.extensions.openapi.types import Schema

from ..plugin import (
    MAX_DESCRIPTION,
    MAX_TOPIC,
    PARTICIPANT_CAP,
    ApiError,
    DescriptionText,
    ParticipantLimit,
    Plugin,
    PluginContext,
    RoomInfo,
    RoomOptions,
    RoomReply,
    TopicText,
    UserNameText,
    caller_of,
    error_responses,
    failing_to,
    json_body,
    json_reply,
    path_parameter,
    path_text,
    room_position,
    room_reply,
)
from .token_source import (
    MAX_AGENTS,
    MAX_ROOM_METADATA_BYTES,
    MAX_TIMEOUT,
    AgentDispatchIn,
    RoomMetadata,
    Timeout,
    agents_allowed,
)
from .tokens import (
    DISPLAY_NAME,
    JoinReply,
    JoinRoom,
    JoinRoomAsCaller,
    UserName,
    join_reply,
    profile_of,
)

__all__ = ["CreateReply", "CreateRoom", "CreateRoomAsCaller", "RoomList", "plugin"]

#: The largest page of GET /rooms.
MAX_PAGE = 1000
#: A listing at least this long is sent as it is, not copied into one body.
_SEND_APART = 64 * 1024
_HEAD = b'{"rooms":'


class CreateRoom(UserName):
    """The body of ``POST /room/create``."""

    roomTopic: TopicText | None = Field(
        None,
        description=f"Meeting topic (at most {MAX_TOPIC} characters); default 새 회의",
        examples=["My Room"],
    )
    description: DescriptionText | None = Field(
        None, description=f"Room description (at most {MAX_DESCRIPTION} characters)"
    )
    maxParticipants: ParticipantLimit | None = Field(
        None, description="Most participants at once; default 20, at most the configured cap"
    )
    emptyTimeout: Timeout | None = Field(
        None,
        description=f"Seconds the room stays open while nobody joined (1 to {MAX_TIMEOUT}); "
        "default LiveKit's (300)",
    )
    departureTimeout: Timeout | None = Field(
        None,
        description=f"Seconds the room stays open after the last one left (1 to {MAX_TIMEOUT}); "
        "default LiveKit's (20)",
    )
    metadata: RoomMetadata | None = Field(
        None,
        description="The application's own room metadata (at most "
        f"{MAX_ROOM_METADATA_BYTES} bytes), kept apart from the service's facts",
    )
    agents: list[AgentDispatchIn] | None = Field(
        None,
        max_length=MAX_AGENTS,
        description="Agents dispatched at creation (names in AURA_ALLOWED_AGENTS)",
    )


class CreateRoomAsCaller(CreateRoom):
    """The body of ``POST /room/create`` with ``AURA_AUTH=jwt``."""

    userName: UserNameText | None = Field(None, description=DISPLAY_NAME, examples=["Ann"])


class CreateReply(BaseModel):
    """A new room and the creator's token to join it."""

    roomId: str = Field(examples=["room-1736598234-x7k2m9"])
    sid: str = Field(examples=["RM_dSbCDo6CDPQU"])
    roomUrl: str = Field(examples=["wss://livekit.example.com/room-1736598234-x7k2m9"])
    roomTopic: str
    description: str
    maxParticipants: int
    userName: str = Field(description="The creator's display name")
    identity: str = Field(description="The token's identity (see POST /token)")
    token: str = Field(description="The creator's LiveKit access token (JWT)")
    livekitUrl: str = Field(examples=["wss://livekit.example.com"])


class RoomList(BaseModel):
    """Active rooms, oldest first: all of them, or one page."""

    rooms: list[RoomReply]
    total: int = Field(description="Every active room, whatever the page")
    nextCursor: str | None = Field(
        None, description="Pass as cursor for the next page; absent on the last one"
    )


def setup(ctx: PluginContext) -> None:
    """Add the room routes."""
    settings = ctx.settings
    rooms = ctx.rooms
    limits = {PARTICIPANT_CAP: settings.max_participants_cap}
    jwt = settings.auth_mode == "jwt"

    @ctx.blueprint.post("/room/create")
    @openapi.definition(
        summary="Create a room",
        description="Creates a LiveKit room with a fresh name and answers with a token for "
        "its creator (identity: the caller's JWT identity, else userName; unique under "
        "AURA_DUPLICATE_USERNAME=unique). Policies may refuse it (403) or narrow the token. "
        "Options: emptyTimeout, departureTimeout, the app's metadata, and agents to "
        "dispatch (only those in AURA_ALLOWED_AGENTS; another is 403).",
        tag="rooms",
        response=[
            json_reply(CreateReply),
            *error_responses(400, 403, 429, 502, 503),
        ],
    )
    @json_body(CreateRoomAsCaller if jwt else CreateRoom, context=limits)
    async def create_room(request: Request, body: CreateRoom) -> HTTPResponse:
        options = RoomOptions(
            empty_timeout=body.emptyTimeout or 0,
            departure_timeout=body.departureTimeout or 0,
            metadata=body.metadata or "",
            agents=agents_allowed(body.agents, settings.allowed_agents, "agents"),
        )
        with failing_to("create room"):
            ticket = await ctx.joins.create(
                topic=body.roomTopic or settings.default_room_topic,
                description=body.description or "",
                max_participants=body.maxParticipants or settings.default_max_participants,
                user_name=body.userName,
                caller=caller_of(request),
                options=options,
            )
        room = ticket.room
        return json(
            {
                "roomId": room.name,
                "sid": room.sid,
                "roomUrl": f"{ticket.url}/{room.name}",
                "roomTopic": room.topic,
                "description": room.description,
                "maxParticipants": room.max_participants,
                "userName": ticket.name,
                "identity": ticket.identity,
                "token": ticket.token,
                "livekitUrl": ticket.url,
            }
        )

    @ctx.blueprint.post("/room/join")
    @openapi.definition(
        summary="Join a room",
        description="The same as POST /token: a token for an existing room, by name or sid.",
        tag="tokens",
        response=[json_reply(JoinReply), *error_responses(400, 403, 404, 409, 429, 502, 503)],
    )
    @json_body(JoinRoomAsCaller if jwt else JoinRoom)
    async def join_room(request: Request, body: JoinRoom) -> HTTPResponse:
        with failing_to("join room"):
            ticket = await ctx.joins.join(
                body.roomId, body.userName, caller=caller_of(request), profile=profile_of(body)
            )
        return json(join_reply(ticket))

    # A room name may hold any character, percent-encoded in the path (decoded once).
    @ctx.blueprint.get("/room/<roomId:str>")
    @openapi.definition(
        summary="Describe a room",
        tag="rooms",
        parameter=path_parameter("roomId", "The room's name or its LiveKit sid"),
        response=[
            json_reply(RoomReply),
            *error_responses(400, 404, 502, 503),
        ],
    )
    async def get_room(request: Request, roomId: str) -> HTTPResponse:
        room_id = path_text("roomId", roomId)
        with failing_to("get room"):
            room = await rooms.get(room_id)
        return json(room_reply(room))

    @ctx.blueprint.get("/rooms")
    @openapi.definition(
        summary="List active rooms",
        description="Oldest first. Without `limit`, every room; with it, one page, and "
        "`nextCursor` to ask for the next one while there is more.",
        tag="rooms",
        parameter=[
            openapi.definitions.Parameter(
                "limit",
                Schema(type="integer", minimum=1, maximum=MAX_PAGE),
                location="query",
                description=f"Rooms per page, 1 to {MAX_PAGE}",
            ),
            openapi.definitions.Parameter(
                "cursor",
                Schema(type="string", minLength=1),
                location="query",
                description="nextCursor of the previous page; only with limit",
            ),
        ],
        response=[
            json_reply(RoomList),
            *error_responses(400, 502, 503),
        ],
    )
    async def list_rooms(request: Request) -> HTTPResponse | None:
        limit, after = _page_query(request)
        with failing_to("list rooms"):
            snapshot = await rooms.snapshot()
        start = snapshot.start_after(after)
        end = snapshot.total if limit is None else min(snapshot.total, start + limit)
        listed = snapshot.json(start, end)  # the whole list: the same bytes every time
        tail = b',"total":' + str(snapshot.total).encode()
        if end < snapshot.total:
            tail += b',"nextCursor":' + orjson.dumps(_cursor(snapshot.room_at(end - 1)))
        tail += b"}"
        if len(listed) < _SEND_APART:
            return raw(_HEAD + listed + tail, content_type="application/json")
        # Sent in three writes: joining them (and Sanic joining the head to a body)
        # would copy megabytes per answer, and the copying was most of its cost.
        size = len(_HEAD) + len(listed) + len(tail)
        response = await request.respond(
            headers={"content-length": str(size)}, content_type="application/json"
        )
        await response.send(_HEAD)
        await response.send(listed)
        await response.send(tail, end_stream=True)
        return None


def _cursor(room: RoomInfo) -> str:
    """An opaque cursor pointing just after ``room``."""
    created, name = room_position(room)
    return base64.urlsafe_b64encode(f"{created}:{name}".encode()).decode().rstrip("=")


def _page_query(request: Request) -> tuple[int | None, tuple[int, str] | None]:
    """``limit`` and the position ``cursor`` points after, or a 400 naming the problem."""
    # Blank values kept: Sanic drops them, and "cursor=" would silently restart paging.
    args = request.get_args(keep_blank_values=True)
    raw_limit = args.get("limit")
    raw_cursor = args.get("cursor")
    limit = None
    if raw_limit is not None:
        # isascii: str.isdigit() also says yes to "²", which int() refuses.
        if not (raw_limit.isascii() and raw_limit.isdigit() and len(raw_limit) <= 4):
            raise ApiError(400, f"limit: must be a whole number from 1 to {MAX_PAGE}")
        if not 1 <= int(raw_limit) <= MAX_PAGE:
            raise ApiError(400, f"limit: must be a whole number from 1 to {MAX_PAGE}")
        limit = int(raw_limit)
    if raw_cursor is None:
        return limit, None
    if limit is None:
        raise ApiError(400, "cursor: only goes with limit")
    try:
        padded = raw_cursor + "=" * (-len(raw_cursor) % 4)
        created, _, name = base64.urlsafe_b64decode(padded.encode()).decode().partition(":")
        if not name:
            raise ValueError(raw_cursor)
        return limit, (int(created), name)
    except (ValueError, UnicodeError, binascii.Error):
        raise ApiError(400, "cursor: is not one this service handed out") from None


plugin = Plugin(setup=setup, description="Create, join, describe and list rooms.")
