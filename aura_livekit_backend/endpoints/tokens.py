"""``POST /token``: a token to join an existing room (the same as ``POST /room/join``).

The join rules — the room exists, is not full, and ``AURA_DUPLICATE_USERNAME`` — are
the contract's ``ctx.joins``; this module validates the body and shapes the answer.
The rooms plugin serves the same join at ``/room/join`` through the same contract.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field
from sanic import HTTPResponse, Request, json
from sanic_ext import openapi

from ..plugin import (
    MAX_USER_NAME,
    Plugin,
    PluginContext,
    RoomIdText,
    Ticket,
    UserNameText,
    error_responses,
    failing_to,
    json_body,
    json_reply,
)

__all__ = ["JoinReply", "JoinRoom", "UserName", "join_reply", "plugin"]


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


def join_reply(ticket: Ticket) -> dict[str, object]:
    """A join's answer (:class:`JoinReply`)."""
    return {
        "token": ticket.token,
        "url": ticket.url,
        "roomId": ticket.room.name,
        "sid": ticket.room.sid,
        "identity": ticket.identity,
    }


def setup(ctx: PluginContext) -> None:
    """Add ``POST /token``."""

    @ctx.blueprint.post("/token")
    @openapi.definition(
        summary="Get a token to join a room",
        description="Mints a token (roomJoin, canPublish, canSubscribe, canPublishData) for "
        "an existing room. roomId may be the room's name or its LiveKit sid.",
        tag="tokens",
        response=[json_reply(JoinReply), *error_responses(400, 404, 409, 502, 503)],
    )
    @json_body(JoinRoom)
    async def token(request: Request, body: JoinRoom) -> HTTPResponse:
        with failing_to("join room"):
            ticket = await ctx.joins.join(body.roomId, body.userName)
        return json(join_reply(ticket))


plugin = Plugin(setup=setup, description="Tokens to join existing rooms.")
