"""``POST /token``: a token to join an existing room (the same as ``POST /room/join``).

The join itself — find the room by name or sid, refuse a full one, mint the token —
is :func:`join`, which the rooms plugin serves at ``/room/join`` as well.

A token's identity is the userName, unless ``AURA_DUPLICATE_USERNAME=unique``. LiveKit
lets one identity be in a room once: a second join with it disconnects the first,
which ``reject`` prevents while the first is connected (a check, not a lock: two
joins at the same moment both pass it).
"""

from __future__ import annotations

import secrets

from pydantic import BaseModel, ConfigDict, Field
from sanic import HTTPResponse, Request, json
from sanic_ext import openapi

from ..plugin import (
    MAX_USER_NAME,
    ApiError,
    LiveKitGateway,
    Plugin,
    PluginContext,
    RoomIdText,
    UserNameText,
    error_responses,
    failing_to,
    json_body,
    json_reply,
)

__all__ = [
    "JoinReply",
    "JoinRoom",
    "UserName",
    "identity_for",
    "join",
    "join_definition",
    "plugin",
]


class UserName(BaseModel):
    """A body carrying the caller's ``userName`` (the token's identity and name)."""

    model_config = ConfigDict(strict=True, extra="forbid")

    userName: UserNameText = Field(
        description="Who joins: the token's identity and display name "
        f"(1 to {MAX_USER_NAME} characters)",
        examples=["participant-user"],
    )


class JoinRoom(UserName):
    """The body of ``POST /room/join`` and ``POST /token``."""

    roomId: RoomIdText = Field(
        description="The room's name (roomId) or its LiveKit sid (RM_…)",
        examples=["room-1736598234-x7k2m9"],
    )


class JoinReply(BaseModel):
    """A token for one room."""

    token: str = Field(description="LiveKit access token (JWT)")
    url: str = Field(
        description="The LiveKit URL to connect to", examples=["wss://livekit.example.com"]
    )
    roomId: RoomIdText = Field(description="The room's name")
    sid: str = Field(description="LiveKit's room sid")
    identity: str = Field(
        description="The token's identity: the userName, or with "
        "AURA_DUPLICATE_USERNAME=unique the userName and a unique suffix",
        examples=["participant-user", "participant-user#3f9a61c2"],
    )


def identity_for(user_name: str, duplicates: str) -> str:
    """The identity a token for ``user_name`` carries under ``AURA_DUPLICATE_USERNAME``."""
    if duplicates == "unique":
        # Always the last 9 characters ('#' and 8 hex digits), so whoever reads the
        # identity can strip it; 32 random bits make a clash within a room negligible.
        return f"{user_name}#{secrets.token_hex(4)}"
    return user_name


async def join(livekit: LiveKitGateway, body: JoinRoom, duplicates: str = "allow") -> HTTPResponse:
    """Answer a join: a token for ``body.roomId`` (name or sid), unless the room is full.

    ``duplicates`` is ``AURA_DUPLICATE_USERNAME``: under ``reject`` a userName that is
    connected in the room now is a 409.
    """
    with failing_to("join room"):
        room = await livekit.get_room(body.roomId)
        taken = duplicates == "reject" and await livekit.is_connected(room.name, body.userName)
    if taken:
        raise ApiError(409, "Failed to join room: userName is already in the room")
    if room.is_full:
        raise ApiError(409, "Failed to join room: Room is full")
    identity = identity_for(body.userName, duplicates)
    token = livekit.mint_token(identity=identity, name=body.userName, room=room.name)
    return json(
        {
            "token": token,
            "url": livekit.public_url,
            "roomId": room.name,
            "sid": room.sid,
            "identity": identity,
        }
    )


def join_definition(summary: str):
    """The OpenAPI definition shared by both join routes."""
    return openapi.definition(
        summary=summary,
        description="Mints a token (roomJoin, canPublish, canSubscribe, canPublishData) for "
        "an existing room. roomId may be the room's name or its LiveKit sid.",
        tag="tokens",
        response=[
            json_reply(JoinReply),
            *error_responses(400, 404, 409, 502, 503),
        ],
    )


def setup(ctx: PluginContext) -> None:
    """Add ``POST /token``."""

    @ctx.blueprint.post("/token")
    @join_definition("Get a token to join a room")
    @json_body(JoinRoom)
    async def token(request: Request, body: JoinRoom) -> HTTPResponse:
        return await join(ctx.livekit, body, ctx.settings.duplicate_username)


plugin = Plugin(setup=setup, description="Tokens to join existing rooms.")
