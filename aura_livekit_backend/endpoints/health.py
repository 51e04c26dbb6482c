"""Liveness and readiness.

``GET /health`` answers without calling LiveKit, so it stays up in an outage: a
liveness probe must not restart replicas because LiveKit is down. ``GET
/health/ready`` answers 503 while LiveKit cannot be reached, so a load balancer
sends traffic elsewhere; each worker reuses its last answer for
``AURA_READINESS_CACHE_SECONDS``, so probes cannot hammer LiveKit.
"""

from __future__ import annotations

import asyncio
import time

from pydantic import BaseModel, Field
from sanic import HTTPResponse, Request, json
from sanic_ext import openapi

from ..plugin import (
    ApiError,
    LiveKitError,
    Plugin,
    PluginContext,
    error_responses,
    iso_ms,
    json_reply,
    utc_now,
)


class Health(BaseModel):
    """The health answer."""

    status: str = Field(examples=["ok"])
    timestamp: str = Field(description="UTC, milliseconds", examples=["2025-12-30T16:21:40.876Z"])


def setup(ctx: PluginContext) -> None:
    """Add ``GET /health``."""

    # Probes carry no credentials: both checks stay open under AURA_API_KEYS.
    @ctx.blueprint.get("/health", ctx_api_keys=False)
    @openapi.secured()
    @openapi.definition(
        summary="Liveness check",
        description="Answers while the process can serve requests; never calls LiveKit.",
        tag="health",
        response=json_reply(Health),
    )
    async def health(request: Request) -> HTTPResponse:
        return json({"status": "ok", "timestamp": iso_ms(utc_now())})

    ttl = ctx.settings.readiness_cache_seconds
    lock = asyncio.Lock()
    # (when it was checked, what was wrong or None): this worker's last answer.
    last: list[tuple[float, str | None]] = []

    async def problem() -> str | None:
        async with lock:  # one check at a time; the others wait and reuse it
            if last and time.monotonic() - last[0][0] < ttl:
                return last[0][1]
            try:
                await ctx.rooms.ping()
                found = None
            except LiveKitError as exc:
                found = str(exc)
            last[:] = [(time.monotonic(), found)]
            return found

    @ctx.blueprint.get("/health/ready", ctx_api_keys=False)
    @openapi.secured()
    @openapi.definition(
        summary="Readiness check",
        description="200 when LiveKit answers a cheap call within the timeout, else 503.",
        tag="health",
        response=[
            json_reply(Health),
            *error_responses(503),
        ],
    )
    async def ready(request: Request) -> HTTPResponse:
        found = await problem()
        if found is not None:
            raise ApiError(503, f"Not ready: {found}")
        return json({"status": "ready", "timestamp": iso_ms(utc_now())})


plugin = Plugin(
    setup=setup, description="Liveness (never calls LiveKit) and readiness (LiveKit answers)."
)
