"""The API's shared shapes: a room as every endpoint describes it, and the error body.

Pydantic models, so OpenAPI documents exactly what the handlers send. Request models
live with the endpoint that reads them; these are the ones several plugins answer with.
"""

from __future__ import annotations

from pydantic import BaseModel, Field
from sanic_ext import openapi

from .livekit_gateway import RoomInfo
from .timestamps import iso_ms

__all__ = ["ErrorReply", "RoomReply", "error_responses", "room_reply"]


class ErrorReply(BaseModel):
    """Every error answer."""

    statusCode: int = Field(examples=[404])
    message: str = Field(examples=["Failed to join room: Room not found"])


class RoomReply(BaseModel):
    """A room, as ``GET /room/{roomId}`` and ``GET /rooms`` describe it."""

    roomId: str = Field(description="The LiveKit room name", examples=["room-1736598234-x7k2m9"])
    sid: str = Field(
        description="LiveKit's room sid; also accepted as roomId", examples=["RM_dSbCDo6CDPQU"]
    )
    roomTopic: str = Field(examples=["My Room"])
    description: str
    maxParticipants: int = Field(description="0 means LiveKit enforces no limit")
    createdBy: str = Field(description="The creator's userName; empty for rooms made elsewhere")
    createdAt: str = Field(examples=["2025-12-30T16:22:11.000Z"])
    numParticipants: int = Field(description="Participants in the room now")


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
    }


_ERROR_MEANINGS = {
    400: "The body is not a JSON object, or a field is missing or invalid",
    401: "Missing or wrong API key",
    403: "The endpoint is switched off",
    404: "No room has that name or sid",
    409: "The room already has maxParticipants participants",
    502: "LiveKit answered with an unexpected error (e.g. it rejects the credentials)",
    503: "LiveKit is unreachable or did not answer in time",
}


def error_responses(*statuses: int) -> list[openapi.definitions.Response]:
    """OpenAPI responses documenting these error statuses, all in the :class:`ErrorReply` shape."""
    return [
        openapi.definitions.Response(
            {"application/json": ErrorReply}, status=status, description=_ERROR_MEANINGS[status]
        )
        for status in statuses
    ]
