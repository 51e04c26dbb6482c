"""``GET /metrics``: Prometheus metrics, summed over every worker of this replica."""

from __future__ import annotations

from sanic import HTTPResponse, Request, raw
from sanic_ext import openapi

from ..plugin import Plugin, PluginContext


def setup(ctx: PluginContext) -> None:
    """Add ``GET /metrics``, unless metrics are off or served on their own port."""
    metrics = ctx.metrics
    if metrics is None or ctx.settings.metrics_port is not None:
        return

    @ctx.blueprint.get("/metrics")
    @openapi.definition(
        summary="Prometheus metrics",
        description="Text exposition format; see the README for the metric names.",
        tag="operations",
        response=openapi.definitions.Response(
            {"text/plain": {"schema": {"type": "string"}}},
            status=200,
            description="Prometheus text exposition format 0.0.4",
        ),
    )
    async def exposition(request: Request) -> HTTPResponse:
        body, content_type = metrics.exposition()
        return raw(body, content_type=content_type)


plugin = Plugin(
    setup=setup, description="Prometheus metrics at /metrics (all workers).", at_root=True
)
