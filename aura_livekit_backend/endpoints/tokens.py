"""``POST /token``: a token to join an existing room (the same as ``POST /room/join``).

The join rules — who the caller joins as, its rate limit, the room exists, the
policies, ``AURA_DUPLICATE_USERNAME``, not full — are the contract's ``ctx.joins``;
this module validates the body and shapes the answer. With ``AURA_AUTH=jwt`` the
body's userName is optional: a person's identity is its JWT's.
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
    Profile,
    RoomIdText,
    Ticket,
    UserNameText,
    caller_of,
    error_responses,
    failing_to,
    json_body,
    json_reply,
)
from .token_source import (
    MAX_ATTRIBUTES_BYTES,
    MAX_PARTICIPANT_METADATA_BYTES,
    Attributes,
    ParticipantMetadata,
)

__all__ = [
    "DISPLAY_NAME",
    "JoinReply",
    "JoinRoom",
    "JoinRoomAsCaller",
    "UserName",
    "join_reply",
    "plugin",
    "profile_of",
]

#: userName's description where the caller may have an identity of its own (jwt).
DISPLAY_NAME = (
    "Optional for a caller with a JWT: its identity is the token's, and userName only the "
    f"display name (default: its name claim). With an API key: who joins (1 to {MAX_USER_NAME} "
    "characters)."
)


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
    metadata: ParticipantMetadata | None = Field(
        None,
        description=f"The participant's metadata (at most {MAX_PARTICIPANT_METADATA_BYTES} "
        "bytes), in the token",
    )
    attributes: Attributes | None = Field(
        None,
        description="The participant's attributes, string → string (at most "
        f"{MAX_ATTRIBUTES_BYTES} bytes in all), in the token",
    )


def profile_of(body: JoinRoom) -> Profile | None:
    """The token profile a join body asks for (None: none)."""
    if body.metadata is None and body.attributes is None:
        return None
    return Profile(metadata=body.metadata or "", attributes=body.attributes or {})


class JoinRoomAsCaller(JoinRoom):
    """The body of ``POST /room/join`` and ``POST /token`` with ``AURA_AUTH=jwt``."""

    userName: UserNameText | None = Field(None, description=DISPLAY_NAME, examples=["Ann"])


class JoinReply(BaseModel):
    """A token for one room."""

    token: str = Field(description="LiveKit access token (JWT)")
    url: str = Field(
        description="The LiveKit URL to connect to", examples=["wss://livekit.example.com"]
    )
    roomId: RoomIdText = Field(description="The room's name")
    sid: str = Field(description="LiveKit's room sid")
    identity: str = Field(
        description="The token's identity: the caller's (its JWT's identity claim) or the "
        "userName, and with AURA_DUPLICATE_USERNAME=unique a unique suffix",
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

    body_model = JoinRoomAsCaller if ctx.settings.auth_mode == "jwt" else JoinRoom

    @ctx.blueprint.post("/token")
    @openapi.definition(
        summary="Get a token to join a room",
        description="Mints a token (roomJoin, canPublish, canSubscribe, canPublishData, "
        "unless a policy narrows them) for an existing room. roomId may be the room's name "
        "or its LiveKit sid.",
        tag="tokens",
        response=[json_reply(JoinReply), *error_responses(400, 403, 404, 409, 429, 502, 503)],
    )
    @json_body(body_model)
    async def token(request: Request, body: JoinRoom) -> HTTPResponse:
        with failing_to("join room"):
            ticket = await ctx.joins.join(
                body.roomId, body.userName, caller=caller_of(request), profile=profile_of(body)
            )
        return json(join_reply(ticket))


plugin = Plugin(setup=setup, description="Tokens to join existing rooms.")
