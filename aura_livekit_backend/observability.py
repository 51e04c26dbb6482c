"""What the service records about each request: its id, an access line, its metrics.

Every request gets an id: the caller's ``X-Request-ID`` when it is a sane one
(1 to 128 of ``A-Z a-z 0-9 . _ : -``), else a fresh one. It is echoed in the response's
``X-Request-ID`` and carried by every log line the request causes.
"""

from __future__ import annotations

import logging
import os
import re
import time

from sanic import DefaultSanic, Request
from sanic.response import BaseHTTPResponse

from .logs import ACCESS_LOGGER, request_id
from .metrics import Metrics
from .settings import Settings

__all__ = ["REQUEST_ID_HEADER", "install"]

REQUEST_ID_HEADER = "X-Request-ID"
_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
_SANE_ID = re.compile(r"[A-Za-z0-9._:-]{1,128}")

access_log = logging.getLogger(ACCESS_LOGGER)


def _route(request: Request) -> str:
    # The template, not the path: one metric series per route, not per room.
    return "/" + request.route.path if request.route else "unmatched"


def install(app: DefaultSanic, settings: Settings, metrics: Metrics | None) -> None:
    """Register the middleware that ids, logs and counts every request."""

    # app.middleware("request"/"response"), which sanic types, not app.on_request/
    # on_response, whose annotations misread a call with only a priority.
    @app.middleware("request", priority=1000)
    async def begin(request: Request) -> None:
        given = request.headers.get(REQUEST_ID_HEADER, "")
        rid = given if _SANE_ID.fullmatch(given) else os.urandom(16).hex()
        request.ctx.request_id = rid
        request.ctx.started = time.perf_counter()
        request_id.set(rid)

    @app.middleware("response", priority=-1000)
    async def end(request: Request, response: BaseHTTPResponse) -> None:
        rid = getattr(request.ctx, "request_id", None)
        if rid is None:
            # Refused before any middleware ran (no route): id it now.
            rid = os.urandom(16).hex()
            request_id.set(rid)
        response.headers[REQUEST_ID_HEADER] = rid
        seconds = time.perf_counter() - getattr(request.ctx, "started", time.perf_counter())
        route = _route(request)
        if metrics is not None:
            # A client picks the method: keep odd ones from minting metric series.
            method = request.method if request.method in _METHODS else "other"
            metrics.request(route, method, response.status, seconds)
        if settings.access_log:
            access_log.info(
                "%s %s %s %.1fms",
                request.method,
                request.path,
                response.status,
                seconds * 1000,
                extra={
                    "method": request.method,
                    "route": route,
                    "path": request.path,
                    "status": response.status,
                    "duration_ms": round(seconds * 1000, 2),
                    "client": request.remote_addr or request.ip,
                },
            )
