"""``POST /livekit/webhook``: where LiveKit posts its webhooks (``AURA_WEBHOOK_PATH``).

At the root, not under the API prefix, and outside the service's API keys: LiveKit
signs each delivery with its own API key instead, which ``ctx.webhooks`` checks. The
handler only reads the raw bytes (a parser that rewrote them would break the body's
hash) and translates: 401 for a delivery LiveKit did not sign, 400 for one it signed
that is not a ``WebhookEvent``, 413 past ``AURA_WEBHOOK_MAX_BODY_BYTES``, 503 when
the event log cannot keep it (LiveKit retries), else 200 — also for a duplicate.
Subscribers are told only after the answer has gone out.
"""

from __future__ import annotations

import orjson
from pydantic import BaseModel, Field
from sanic import Request
from sanic.exceptions import PayloadTooLarge
from sanic_ext import openapi

from ..plugin import (
    ApiError,
    EventLogUnavailable,
    Plugin,
    PluginContext,
    WebhookMalformed,
    WebhookRejected,
    error_responses,
    json_reply,
)


class WebhookAnswer(BaseModel):
    """What LiveKit is answered (it reads only the status)."""

    status: str = Field(
        description="accepted: kept now and told to subscribers; duplicate: kept before "
        "(told now only if it never was)",
        examples=["accepted"],
    )
    id: str = Field(description="LiveKit's event id", examples=["EV_3Bv7pGNsHEXr"])


_EVENT_SCHEMA = {
    "type": "object",
    "description": "LiveKit's WebhookEvent as protojson (camelCase keys, int64 as strings).",
    "properties": {
        "event": {"type": "string", "example": "participant_joined"},
        "id": {"type": "string", "example": "EV_3Bv7pGNsHEXr"},
        "createdAt": {"type": "string", "example": "1692985556"},
        "room": {"type": "object"},
        "participant": {"type": "object"},
        "track": {"type": "object"},
        "egressInfo": {"type": "object"},
        "ingressInfo": {"type": "object"},
        "job": {"type": "object"},
    },
    "required": ["event", "id"],
}


def setup(ctx: PluginContext) -> None:
    """Add ``POST {AURA_WEBHOOK_PATH}`` at the root."""
    webhooks = ctx.webhooks
    limit = ctx.settings.webhook_max_body_bytes
    too_large = f"A webhook body may be at most {limit} bytes"

    # stream=True: the body is read here, under this route's own size limit (LiveKit's
    # events are larger than the API's bodies), not before the handler.
    # Its 401s are not guesses to throttle (see access.py): a LiveKit signing with a key
    # the service does not know yet must not get its valid deliveries refused too.
    @ctx.blueprint.post(
        ctx.settings.webhook_path, ctx_api_keys=False, ctx_auth_throttle=False, stream=True
    )
    @openapi.secured()
    @openapi.definition(
        summary="LiveKit webhook receiver",
        description="Point LiveKit's `webhook.urls` here. Each delivery must carry "
        "LiveKit's signature: `Authorization: <JWT>` (no `Bearer`), HS256, issued by "
        "LIVEKIT_API_KEY or a key in AURA_WEBHOOK_KEYS, with the SHA-256 of the body. "
        "Each event id is kept once; a repeated delivery is answered 200 and not told "
        "to subscribers again (unless it never was: kept, but answered 503).",
        tag="livekit",
        body={"application/webhook+json": _EVENT_SCHEMA},
        response=[
            json_reply(WebhookAnswer),
            *error_responses(
                (400, "Signed, but not a LiveKit WebhookEvent"),
                (401, "Not signed by a LiveKit API key the service knows, over this body"),
                (413, too_large),
                (503, "The event log cannot keep the event now; LiveKit retries"),
            ),
        ],
    )
    async def receive(request: Request) -> None:
        length = request.headers.get("content-length", "")
        if length.isdigit() and int(length) > limit:
            raise ApiError(413, too_large)
        if request.stream is not None:
            request.stream.request_max_size = limit  # a chunked body is cut off here
        try:
            await request.receive_body()
        except PayloadTooLarge:
            raise ApiError(413, too_large) from None
        try:
            delivery = await webhooks.ingest(request.body, request.headers.get("authorization"))
        except WebhookRejected as exc:
            raise ApiError(401, f"Not a LiveKit webhook: {exc}") from None
        except WebhookMalformed as exc:
            raise ApiError(400, f"Not a LiveKit webhook event: {exc}") from None
        except EventLogUnavailable:
            # Why is in the service's log (a warning a minute); LiveKit only needs to retry.
            raise ApiError(503, "The event log is unavailable; retry later") from None
        status = "duplicate" if delivery.duplicate else "accepted"
        response = await request.respond(content_type="application/json")
        await response.send(
            orjson.dumps({"status": status, "id": delivery.event.id}),
            end_stream=True,
        )
        # Only now, with the answer sent: no subscriber can delay it.
        webhooks.publish(delivery)


plugin = Plugin(
    setup=setup,
    description="Receives LiveKit's webhooks at /livekit/webhook (AURA_WEBHOOK_PATH).",
    at_root=True,
)
