"""The moderation endpoints."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from functools import wraps
from typing import Any

from pydantic import BaseModel, ConfigDict, Field
from sanic import HTTPResponse, Request, json
from sanic_ext import openapi

from aura_livekit_backend.plugin import (
    PARTICIPANT_CAP,
    AgentRequest,
    ApiError,
    BearerKeys,
    DescriptionText,
    ParticipantLimit,
    Plugin,
    PluginContext,
    RequiredTopicText,
    RoomReply,
    error_responses,
    failing_to,
    iso_ms,
    json_body,
    json_reply,
    path_parameter,
    path_text,
    room_reply,
)

from .settings import ModerationSettings

__all__ = [
    "DispatchList",
    "DispatchReply",
    "NewDispatch",
    "ParticipantList",
    "RoomChanges",
    "plugin",
]

Handler = Callable[..., Awaitable[HTTPResponse]]


class RoomChanges(BaseModel):
    """The body of ``PATCH /room/{roomId}``: any of the fields, at least one."""

    model_config = ConfigDict(strict=True, extra="forbid")

    roomTopic: RequiredTopicText | None = None
    description: DescriptionText | None = None
    maxParticipants: ParticipantLimit | None = Field(
        None, description="Can be lowered; LiveKit fixes the highest at creation"
    )


class NewDispatch(BaseModel):
    """The body of ``POST /room/{roomId}/dispatches``: an agent to send into the room."""

    model_config = ConfigDict(strict=True, extra="forbid")

    agentName: str = Field(min_length=1, max_length=256, description="The agent's name")
    metadata: str = Field("", max_length=64_000, description="The agent job's metadata")


class DispatchReply(BaseModel):
    """One agent dispatch."""

    id: str = Field(examples=["AD_dSbCDo6CDPQU"])
    agentName: str
    metadata: str


class DispatchList(BaseModel):
    """A room's agent dispatches."""

    dispatches: list[DispatchReply]


def _dispatch(made: Any) -> dict[str, str]:
    return {"id": made.id, "agentName": made.agent_name, "metadata": made.metadata}


class ParticipantReply(BaseModel):
    """One participant."""

    identity: str
    name: str
    joinedAt: str = Field(examples=["2025-12-30T16:22:11.000Z"])
    isPublisher: bool
    state: str = Field(examples=["active"])


class ParticipantList(BaseModel):
    """Everyone in a room."""

    participants: list[ParticipantReply]
    total: int


class Deleted(BaseModel):
    """A closed room."""

    roomId: str
    deleted: bool


class Removed(BaseModel):
    """A participant removed from a room."""

    roomId: str
    identity: str
    removed: bool


def setup(ctx: PluginContext) -> None:
    """Add the moderation routes, each behind the plugin's API keys.

    They check their own keys instead of the service's (``ctx_api_keys=False``):
    moderating takes more than calling the API.
    """
    settings = ctx.read_settings(ModerationSettings)
    keys = BearerKeys(key.get_secret_value() for key in settings.api_keys)
    rooms = ctx.rooms
    limits = {PARTICIPANT_CAP: ctx.settings.max_participants_cap}
    bp = ctx.blueprint
    ctx.declare_bearer_auth("moderation", "An API key from AURA_MODERATION_API_KEYS")

    def moderators_only(handler: Handler) -> Handler:
        @wraps(handler)
        async def guarded(request: Request, *args: Any, **kwargs: Any) -> HTTPResponse:
            if not keys:
                # Never open by default: no keys configured means nobody moderates.
                raise ApiError(403, "moderation is disabled")
            if not keys.admit(request.headers.get("authorization")):
                raise keys.refuse("moderation", "a valid moderation API key is required")
            return await handler(request, *args, **kwargs)

        return openapi.secured("moderation")(guarded)

    room_param = path_parameter("roomId", "The room's name or its LiveKit sid")
    errors = error_responses(400, 401, 403, 404, 502, 503)

    @bp.delete("/room/<roomId:str>", ctx_api_keys=False)
    @openapi.definition(
        summary="Close a room",
        description="Deletes the room in LiveKit; everyone in it is disconnected.",
        tag="moderation",
        parameter=room_param,
        response=[
            json_reply(Deleted),
            *errors,
        ],
    )
    @moderators_only
    async def delete_room(request: Request, roomId: str) -> HTTPResponse:
        with failing_to("delete room"):
            room = await rooms.delete(path_text("roomId", roomId))
        return json({"roomId": room.name, "deleted": True})

    @bp.patch("/room/<roomId:str>", ctx_api_keys=False)
    @openapi.definition(
        summary="Change a room",
        description="Changes the topic, the description or the participant limit (which "
        "can be lowered, not raised: LiveKit fixes the highest when the room is created).",
        tag="moderation",
        parameter=room_param,
        response=[
            json_reply(RoomReply),
            *errors,
        ],
    )
    @moderators_only
    @json_body(RoomChanges, context=limits)
    async def update_room(request: Request, roomId: str, body: RoomChanges) -> HTTPResponse:
        # A field sent as null changes nothing, so it does not count.
        if not body.model_dump(exclude_none=True):
            raise ApiError(400, "give at least one of roomTopic, description, maxParticipants")
        with failing_to("update room"):
            room = await rooms.update(
                path_text("roomId", roomId),
                topic=body.roomTopic,
                description=body.description,
                max_participants=body.maxParticipants,
            )
        return json(room_reply(room))

    @bp.get("/room/<roomId:str>/participants", ctx_api_keys=False)
    @openapi.definition(
        summary="List a room's participants",
        tag="moderation",
        parameter=room_param,
        response=[
            json_reply(ParticipantList),
            *errors,
        ],
    )
    @moderators_only
    async def participants(request: Request, roomId: str) -> HTTPResponse:
        with failing_to("list participants"):
            _, people = await rooms.participants(path_text("roomId", roomId))
        return json(
            {
                "participants": [
                    {
                        "identity": person.identity,
                        "name": person.name,
                        "joinedAt": iso_ms(person.joined_at),
                        "isPublisher": person.is_publisher,
                        "state": person.state,
                    }
                    for person in people
                ],
                "total": len(people),
            }
        )

    @bp.delete("/room/<roomId:str>/participants/<identity:str>", ctx_api_keys=False)
    @openapi.definition(
        summary="Remove a participant",
        description="Disconnects the participant. They can rejoin with a valid token.",
        tag="moderation",
        parameter=[
            room_param,
            path_parameter("identity", "The participant's identity"),
        ],
        response=[
            json_reply(Removed),
            *errors,
        ],
    )
    @moderators_only
    async def remove_participant(
        request: Request,
        roomId: str,
        identity: str,
    ) -> HTTPResponse:
        with failing_to("remove participant"):
            room = await rooms.remove_participant(
                path_text("roomId", roomId), path_text("identity", identity)
            )
        return json({"roomId": room.name, "identity": identity, "removed": True})

    dispatch_id_param = path_parameter("dispatchId", "The dispatch's id (AD_…)")

    @bp.get("/room/<roomId:str>/dispatches", ctx_api_keys=False)
    @openapi.definition(
        summary="List a room's agent dispatches",
        tag="moderation",
        parameter=room_param,
        response=[json_reply(DispatchList), *errors],
    )
    @moderators_only
    async def list_dispatches(request: Request, roomId: str) -> HTTPResponse:
        with failing_to("list dispatches"):
            found = await rooms.dispatches(path_text("roomId", roomId))
        return json({"dispatches": [_dispatch(made) for made in found]})

    @bp.post("/room/<roomId:str>/dispatches", ctx_api_keys=False)
    @openapi.definition(
        summary="Dispatch an agent to a room",
        description="Any agent name (operators are trusted; AURA_ALLOWED_AGENTS limits "
        "callers of the token routes, not moderators).",
        tag="moderation",
        parameter=room_param,
        response=[json_reply(DispatchReply, status=201, description="Created"), *errors],
    )
    @moderators_only
    @json_body(NewDispatch)
    async def add_dispatch(request: Request, roomId: str, body: NewDispatch) -> HTTPResponse:
        agent = AgentRequest(body.agentName, body.metadata)
        with failing_to("dispatch agent"):
            made = await rooms.add_dispatch(path_text("roomId", roomId), agent)
        return json(_dispatch(made), status=201)

    @bp.delete("/room/<roomId:str>/dispatches/<dispatchId:str>", ctx_api_keys=False)
    @openapi.definition(
        summary="Delete an agent dispatch",
        tag="moderation",
        parameter=[room_param, dispatch_id_param],
        response=[json_reply(DispatchReply), *errors],
    )
    @moderators_only
    async def delete_dispatch(request: Request, roomId: str, dispatchId: str) -> HTTPResponse:
        room_id, dispatch_id = path_text("roomId", roomId), path_text("dispatchId", dispatchId)
        with failing_to("delete dispatch"):
            # LiveKit's answer for an unknown id is no domain error: look first, for a 404.
            found = await rooms.dispatches(room_id)
            if not any(made.id == dispatch_id for made in found):
                raise ApiError(404, f"no dispatch {dispatch_id!r} in this room")
            made = await rooms.delete_dispatch(room_id, dispatch_id)
        return json(_dispatch(made))


plugin = Plugin(
    setup=setup,
    description="Moderation: close and edit rooms, list and remove participants, manage "
    "agent dispatches (API keys).",
)
