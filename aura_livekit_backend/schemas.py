"""The API's shared shapes, and how pydantic models become OpenAPI documentation.

Pydantic models, so OpenAPI documents exactly what the handlers send. Request models
live with the endpoint that reads them; these are the ones several plugins answer with.

sanic-ext builds a schema from a model's type hints, which loses pydantic's own
schema (required fields, limits, patterns) and lists ``model_config`` as a property;
:func:`json_schema` hands OpenAPI pydantic's schema instead, in OpenAPI 3.0's dialect.
"""

from __future__ import annotations

from http import HTTPStatus
from typing import Any, Literal

import orjson
from pydantic import BaseModel, Field
from sanic_ext import openapi

from .livekit.models import RoomInfo
from .timestamps import iso_ms

__all__ = [
    "ErrorReply",
    "RoomReply",
    "error_responses",
    "json_content",
    "json_reply",
    "json_schema",
    "room_json",
    "room_reply",
]

_NULL = {"type": "null"}


def _openapi_30(node: Any, defs: dict[str, Any]) -> Any:
    """A JSON Schema (2020-12, as pydantic writes it) node in OpenAPI 3.0's dialect."""
    if isinstance(node, list):
        return [_openapi_30(item, defs) for item in node]
    if not isinstance(node, dict):
        return node
    if "$ref" in node:
        # Inline: no model here is recursive, and sanic-ext has no components for them.
        return _openapi_30(defs[node["$ref"].rsplit("/", 1)[-1]], defs)
    out: dict[str, Any] = {}
    for key, value in node.items():
        if key == "title":
            continue  # pydantic's "Username" for userName: noise in every viewer
        if key == "properties":
            out[key] = {name: _openapi_30(schema, defs) for name, schema in value.items()}
        else:
            out[key] = _openapi_30(value, defs)
    variants = out.get("anyOf")
    if variants and _NULL in variants:
        rest = [variant for variant in variants if variant != _NULL]
        del out["anyOf"]
        out = {**rest[0], **out} if len(rest) == 1 else {**out, "anyOf": rest}
        out["nullable"] = True
    if "examples" in out:
        examples = out.pop("examples")
        if examples:
            out["example"] = examples[0]
    if "const" in out:
        out["enum"] = [out.pop("const")]
    return out


def json_schema(
    model: type[BaseModel], *, mode: Literal["validation", "serialization"] = "serialization"
) -> dict[str, Any]:
    """``model``'s own JSON schema, inline and in OpenAPI 3.0's dialect.

    ``mode`` is ``"validation"`` for what the API accepts, ``"serialization"`` for what
    it answers.
    """
    raw = model.model_json_schema(mode=mode)
    # An object in, an object out: _openapi_30 keeps a node's kind.
    schema: dict[str, Any] = _openapi_30(raw, raw.pop("$defs", {}))
    return schema


def json_content(
    model: type[BaseModel], *, mode: Literal["validation", "serialization"] = "serialization"
) -> dict[str, Any]:
    """An OpenAPI ``content`` map: ``model`` as ``application/json``."""
    return {"application/json": {"schema": json_schema(model, mode=mode)}}


def json_reply(
    model: type[BaseModel], status: int = 200, description: str = "OK"
) -> openapi.definitions.Response:
    """An OpenAPI response answering ``model`` as JSON."""
    return openapi.definitions.Response(json_content(model), status=status, description=description)


class ErrorReply(BaseModel):
    """Every error answer."""

    # No examples on the fields: each status documents its own (error_responses).
    statusCode: int
    message: str


class RoomReply(BaseModel):
    """A room, as ``GET /room/{roomId}`` and ``GET /rooms`` describe it."""

    roomId: str = Field(description="The LiveKit room name", examples=["room-1736598234-x7k2m9"])
    sid: str = Field(
        description="LiveKit's room sid; also accepted as roomId", examples=["RM_dSbCDo6CDPQU"]
    )
    roomTopic: str = Field(examples=["My Room"])
    description: str
    maxParticipants: int = Field(description="0 means LiveKit enforces no limit")
    createdBy: str = Field(
        description="The creator's identity (its JWT's, else its userName); empty for rooms "
        "made elsewhere"
    )
    createdAt: str = Field(examples=["2025-12-30T16:22:11.000Z"])
    numParticipants: int = Field(description="Participants in the room now")
    emptyTimeout: int = Field(
        description="Seconds LiveKit keeps the room open while nobody has joined", examples=[300]
    )
    departureTimeout: int = Field(
        description="Seconds LiveKit keeps the room open after the last one left", examples=[20]
    )
    metadata: str = Field(description="The application's own room metadata (may be empty)")
    agents: list[str] = Field(description="Agents dispatched when the room was created")


def room_reply(room: RoomInfo) -> dict[str, object]:
    """``room`` in the API's room shape (:class:`RoomReply`)."""
    return {
        "roomId": room.name,
        "sid": room.sid,
        "roomTopic": room.topic,
        "description": room.description,
        "maxParticipants": room.max_participants,
        "createdBy": room.created_by,
        "createdAt": iso_ms(room.created_at),
        "numParticipants": room.num_participants,
        "emptyTimeout": room.empty_timeout,
        "departureTimeout": room.departure_timeout,
        "metadata": room.metadata,
        "agents": list(room.agents),
    }


def room_json(room: RoomInfo) -> bytes:
    """``room`` in the API's room shape, as JSON: how the listing encodes each room once."""
    return orjson.dumps(room_reply(room))


_ERROR_MEANINGS = {
    400: "The body is not a JSON object, or a field is missing or invalid",
    401: "Missing or wrong credentials: an API key, or a JWT from the identity provider",
    403: "Refused: a policy does not allow it, or the endpoint is switched off",
    404: "No room has that name or sid",
    409: "The room already has maxParticipants participants",
    429: "Over a rate limit: retry after Retry-After seconds",
    502: "LiveKit answered with an unexpected error (e.g. it rejects the credentials)",
    503: "LiveKit is unreachable or did not answer in time",
}


# One message each status really answers with, as the document's example for it.
_ERROR_EXAMPLES = {
    400: "userName is required",
    401: "a valid API key is required: send Authorization: Bearer <key>",
    403: "moderation is disabled",
    404: "Failed to join room: Room not found",
    409: "Failed to join room: Room is full",
    429: "Failed to join room: too many joins; retry in 42 s",
    502: (
        "Failed to create room: LiveKit rejected the service's credentials "
        "(check LIVEKIT_API_KEY and LIVEKIT_API_SECRET)"
    ),
    503: "Failed to list rooms: LiveKit is unavailable (cannot connect)",
}


def _error_reply(status: int, description: str, message: str) -> openapi.definitions.Response:
    """An error response in the :class:`ErrorReply` shape whose example says ``message``."""
    content = json_content(ErrorReply)
    content["application/json"]["example"] = {"statusCode": status, "message": message}
    return openapi.definitions.Response(content, status=status, description=description)


def error_responses(*statuses: int | tuple[int, str]) -> list[openapi.definitions.Response]:
    """OpenAPI responses for error statuses, all in the :class:`ErrorReply` shape.

    Each is a status (described as the core describes it, or by its HTTP phrase) or a
    ``(status, description)`` pair for a plugin's own words: ``error_responses(400,
    (404, "No invite has that code"), (410, "The invite has expired"))``. Each carries
    an example message: the core's for its statuses, else the description.
    """
    responses = []
    for given in statuses:
        status, own = given if isinstance(given, tuple) else (given, None)
        if not 400 <= status <= 599:
            raise ValueError(f"{status} is not an error status")
        description = own or _ERROR_MEANINGS.get(status) or HTTPStatus(status).phrase
        message = own or _ERROR_EXAMPLES.get(status) or description
        responses.append(_error_reply(status, description, message))
    return responses
