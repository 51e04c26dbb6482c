"""``GET /health``: liveness. Answers without calling LiveKit, so it stays up in an outage."""

from __future__ import annotations

from pydantic import BaseModel, Field
from sanic import HTTPResponse, Request, json
from sanic_ext import openapi

from ..plugin import Plugin, PluginContext, iso_ms, utc_now


class Health(BaseModel):
    """The health answer."""

    status: str = Field(examples=["ok"])
    timestamp: str = Field(description="UTC, milliseconds", examples=["2025-12-30T16:21:40.876Z"])


def setup(ctx: PluginContext) -> None:
    """Add ``GET /health``."""

    @ctx.blueprint.get("/health")
    @openapi.definition(
        summary="Liveness check",
        description="Answers while the process can serve requests; never calls LiveKit.",
        tag="health",
        response=openapi.definitions.Response({"application/json": Health}, status=200),
    )
    async def health(request: Request) -> HTTPResponse:
        return json({"status": "ok", "timestamp": iso_ms(utc_now())})


plugin = Plugin(setup=setup, description="Liveness check; never calls LiveKit.")
