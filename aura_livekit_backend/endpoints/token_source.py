"""``POST /livekit/token``: LiveKit's client token endpoint (``TokenSource.endpoint``).

LiveKit's client SDKs (JS ``TokenSource.endpoint(url)``, Swift, Android) POST a
``TokenSourceRequest`` — every field optional, snake_case (camelCase accepted too) —
and read ``server_url`` and ``participant_token`` from a 201. What a caller may set is
decided here, field by field (``shared/notes/livekit-clients-and-webhooks.md``):

- room name, display name, metadata and attributes: yes, within LiveKit's limits;
- identity: only when no verified identity exists (a JWT's identity wins; another is 403);
- ``room_config``: ``agents`` from ``AURA_ALLOWED_AGENTS``, and the timeouts and the
  app's metadata, which apply when this call creates the room; every other
  ``RoomConfiguration`` field (egress, name, max_participants, playout delays,
  sync_streams) is a 403 naming it.

Unknown fields are refused (400), as on every route of the service: the SDKs send only
the fields above. The join itself is the contract's ``ctx.joins``; agents asked for in
a join to an existing room are dispatched explicitly (LiveKit ignores a token's
``roomConfig`` for a room that exists).
"""

from __future__ import annotations

import secrets
from typing import Annotated, Any

from pydantic import AfterValidator, AliasChoices, BaseModel, ConfigDict, Field
from sanic import HTTPResponse, Request, json
from sanic_ext import openapi

from ..plugin import (
    MAX_USER_NAME,
    AgentRequest,
    ApiError,
    Plugin,
    PluginContext,
    Profile,
    RoomIdText,
    RoomNotFound,
    RoomOptions,
    Ticket,
    UserNameText,
    caller_of,
    check_text,
    error_responses,
    failing_to,
    json_body,
    json_reply,
)

__all__ = [
    "MAX_AGENTS",
    "MAX_ATTRIBUTES_BYTES",
    "MAX_PARTICIPANT_METADATA_BYTES",
    "MAX_ROOM_METADATA_BYTES",
    "MAX_TIMEOUT",
    "AgentDispatchIn",
    "Attributes",
    "ParticipantMetadata",
    "RoomConfigIn",
    "RoomMetadata",
    "Timeout",
    "TokenSourceReply",
    "TokenSourceRequest",
    "agents_allowed",
    "plugin",
]

#: LiveKit's default limit on a participant's metadata (``limit.max_metadata_size``).
MAX_PARTICIPANT_METADATA_BYTES = 64_000
#: LiveKit's default limit on a participant's attributes, keys and values together.
MAX_ATTRIBUTES_BYTES = 64_000
#: The application's room metadata: it rides in every client's room info, keep it small.
MAX_ROOM_METADATA_BYTES = 16_000
#: Longest empty or departure timeout a caller may ask for: a day.
MAX_TIMEOUT = 86_400
#: Most agents one request may ask for.
MAX_AGENTS = 8


def _both(snake: str) -> Any:
    """Accept ``snake`` and its camelCase spelling, as LiveKit's SDKs' parsers do."""
    head, *rest = snake.split("_")
    camel = head + "".join(part.title() for part in rest)
    return AliasChoices(snake, camel) if camel != snake else AliasChoices(snake)


def _bytes_at_most(limit: int) -> AfterValidator:
    def check(value: str) -> str:
        if len(value.encode()) > limit:
            raise ValueError(f"must be at most {limit} bytes (UTF-8)")
        return value

    return AfterValidator(check)


def _attributes(value: dict[str, str]) -> dict[str, str]:
    size = 0
    for key, text in value.items():
        if not key:
            raise ValueError("an attribute name must not be empty")
        size += len(key.encode()) + len(text.encode())
    if size > MAX_ATTRIBUTES_BYTES:
        raise ValueError(f"must be at most {MAX_ATTRIBUTES_BYTES} bytes (UTF-8), names included")
    return value


#: A participant's metadata: any text up to LiveKit's 64,000 bytes.
ParticipantMetadata = Annotated[str, _bytes_at_most(MAX_PARTICIPANT_METADATA_BYTES)]
#: A participant's attributes: string → string, 64,000 bytes in all.
Attributes = Annotated[dict[str, str], AfterValidator(_attributes)]
#: The application's room metadata: at most 16,000 bytes.
RoomMetadata = Annotated[str, _bytes_at_most(MAX_ROOM_METADATA_BYTES)]
#: An empty or departure timeout: 1 second to a day.
Timeout = Annotated[int, Field(ge=1, le=MAX_TIMEOUT)]


def _agent_name(value: str) -> str:
    if not value.strip():
        raise ValueError("must not be empty or blank")
    return check_text(value)


class AgentDispatchIn(BaseModel):
    """One agent to dispatch (LiveKit's ``RoomAgentDispatch``)."""

    model_config = ConfigDict(strict=True, extra="forbid")

    agent_name: Annotated[str, Field(max_length=256), AfterValidator(_agent_name)] = Field(
        validation_alias=_both("agent_name"), description="A name in AURA_ALLOWED_AGENTS"
    )
    metadata: Annotated[str, _bytes_at_most(MAX_PARTICIPANT_METADATA_BYTES)] = Field(
        "", description="The agent job's metadata"
    )
    # LiveKit knows these; callers may not set them (403 naming the field).
    deployment: Any = Field(None, description="Not allowed (403)")
    attributes: Any = Field(None, description="Not allowed (403)")
    restart_policy: Any = Field(
        None, validation_alias=_both("restart_policy"), description="Not allowed (403)"
    )


class RoomConfigIn(BaseModel):
    """``room_config`` (LiveKit's ``RoomConfiguration``): what a caller may ask of the room."""

    model_config = ConfigDict(strict=True, extra="forbid")

    agents: list[AgentDispatchIn] | None = Field(
        None, max_length=MAX_AGENTS, description="Agents to dispatch (AURA_ALLOWED_AGENTS)"
    )
    empty_timeout: Timeout | None = Field(
        None,
        validation_alias=_both("empty_timeout"),
        description="Seconds an unjoined room stays open (only when this call creates it)",
    )
    departure_timeout: Timeout | None = Field(
        None,
        validation_alias=_both("departure_timeout"),
        description="Seconds a room stays open after the last one left (only on creation)",
    )
    metadata: RoomMetadata | None = Field(
        None, description="The application's room metadata (only on creation)"
    )
    # LiveKit knows these; callers may not set them (403 naming the field).
    name: Any = Field(None, description="Not allowed (403): use room_name")
    max_participants: Any = Field(
        None, validation_alias=_both("max_participants"), description="Not allowed (403)"
    )
    egress: Any = Field(None, description="Not allowed (403)")
    min_playout_delay: Any = Field(
        None, validation_alias=_both("min_playout_delay"), description="Not allowed (403)"
    )
    max_playout_delay: Any = Field(
        None, validation_alias=_both("max_playout_delay"), description="Not allowed (403)"
    )
    sync_streams: Any = Field(
        None, validation_alias=_both("sync_streams"), description="Not allowed (403)"
    )


_ROOM_CONFIG_REFUSED = (
    "name",
    "max_participants",
    "egress",
    "min_playout_delay",
    "max_playout_delay",
    "sync_streams",
)
_AGENT_REFUSED = ("deployment", "attributes", "restart_policy")


class TokenSourceRequest(BaseModel):
    """LiveKit's ``TokenSourceRequest``: every field optional; ``{}`` is a fresh room."""

    model_config = ConfigDict(strict=True, extra="forbid")

    room_name: RoomIdText | None = Field(
        None,
        validation_alias=_both("room_name"),
        description="The room (its name or sid); absent: a fresh room",
    )
    participant_identity: UserNameText | None = Field(
        None,
        validation_alias=_both("participant_identity"),
        description="Only without a verified identity (a JWT's wins: another is 403); "
        "absent: generated",
    )
    participant_name: UserNameText | None = Field(
        None,
        validation_alias=_both("participant_name"),
        description=f"Display name (at most {MAX_USER_NAME} characters)",
    )
    participant_metadata: ParticipantMetadata | None = Field(
        None,
        validation_alias=_both("participant_metadata"),
        description=f"At most {MAX_PARTICIPANT_METADATA_BYTES} bytes",
    )
    participant_attributes: Attributes | None = Field(
        None,
        validation_alias=_both("participant_attributes"),
        description=f"string → string, at most {MAX_ATTRIBUTES_BYTES} bytes in all",
    )
    room_config: RoomConfigIn | None = Field(None, validation_alias=_both("room_config"))


class TokenSourceReply(BaseModel):
    """LiveKit's ``TokenSourceResponse``, snake_case (the Swift SDK reads nothing else)."""

    server_url: str = Field(examples=["wss://livekit.example.com"])
    participant_token: str = Field(description="The LiveKit access token (JWT)")
    participant_name: str
    room_name: str = Field(examples=["room-1736598234-x7k2m9"])


def agents_allowed(
    agents: list[AgentDispatchIn] | None, allowed: list[str], where: str
) -> tuple[AgentRequest, ...]:
    """The agents asked for, or a 403 naming the first not allowed (``where``: its path)."""
    chosen: dict[str, AgentRequest] = {}
    for index, agent in enumerate(agents or ()):
        for field in _AGENT_REFUSED:
            if field in agent.model_fields_set:
                raise ApiError(403, f"{where}.{index}.{field}: callers may not set it")
        if agent.agent_name not in allowed:
            raise ApiError(
                403, f"{where}.{index}.agent_name: agent {agent.agent_name!r} is not allowed"
            )
        chosen.setdefault(agent.agent_name, AgentRequest(agent.agent_name, agent.metadata))
    return tuple(chosen.values())


def token_source_reply(ticket: Ticket) -> dict[str, str]:
    """The answer (:class:`TokenSourceReply`)."""
    return {
        "server_url": ticket.url,
        "participant_token": ticket.token,
        "participant_name": ticket.name,
        "room_name": ticket.room.name,
    }


def setup(ctx: PluginContext) -> None:
    """Add the token endpoint at ``AURA_TOKEN_SOURCE_PATH``."""
    settings = ctx.settings

    @ctx.blueprint.post(settings.token_source_path)
    @openapi.definition(
        summary="LiveKit client token endpoint (TokenSource.endpoint)",
        description="LiveKit's TokenSourceRequest (snake_case; camelCase accepted; an empty "
        "body is a fresh room) answered 201 with server_url, participant_token, "
        "participant_name and room_name. Fields the caller may not set are a 403 naming "
        "them; agents must be in AURA_ALLOWED_AGENTS and are dispatched explicitly when "
        "the room exists already.",
        tag="tokens",
        response=[
            json_reply(TokenSourceReply, status=201, description="Created"),
            *error_responses(400, 403, 404, 409, 429, 502, 503),
        ],
    )
    @json_body(TokenSourceRequest, optional=True)
    async def token_source(request: Request, body: TokenSourceRequest) -> HTTPResponse:
        caller = caller_of(request)
        config = body.room_config or RoomConfigIn()
        for field in _ROOM_CONFIG_REFUSED:
            if field in config.model_fields_set:
                raise ApiError(403, f"room_config.{field}: callers may not set it")
        agents = agents_allowed(config.agents, settings.allowed_agents, "room_config.agents")
        if caller.verified:
            if body.participant_identity not in (None, caller.identity):
                raise ApiError(403, "participant_identity: your verified identity decides it")
            user_name = body.participant_name
            profile_name = None
        else:
            # Who joins: the identity given, else a fresh one (as LiveKit's examples do).
            user_name = body.participant_identity or f"guest-{secrets.token_hex(4)}"
            profile_name = body.participant_name
        profile = Profile(
            name=profile_name,
            metadata=body.participant_metadata or "",
            attributes=body.participant_attributes or {},
            agents=agents,
        )
        options = RoomOptions(
            empty_timeout=config.empty_timeout or 0,
            departure_timeout=config.departure_timeout or 0,
            metadata=config.metadata or "",
            agents=agents,
        )

        async def create(name: str | None) -> Ticket:
            # A room made here gets the service's facts and defaults, as /room/create.
            return await ctx.joins.create(
                topic=settings.default_room_topic,
                description="",
                max_participants=settings.default_max_participants,
                user_name=user_name,
                caller=caller,
                profile=profile,
                options=options,
                name=name,
            )

        if body.room_name is None and not settings.token_source_new_rooms:
            raise ApiError(400, "room_name is required")
        with failing_to("get a token"):
            if body.room_name is None:
                ticket = await create(None)
            else:
                try:
                    ticket = await ctx.joins.join(
                        body.room_name, user_name, caller=caller, profile=profile
                    )
                except RoomNotFound:
                    if not settings.token_source_create_missing:
                        raise
                    ticket = await create(body.room_name)
        return json(token_source_reply(ticket), status=201)


plugin = Plugin(setup=setup, description="LiveKit's client token endpoint (TokenSource).")
