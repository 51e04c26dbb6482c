"""Who may call: the service's API keys (``AURA_API_KEYS``).

With keys configured, every route needs ``Authorization: Bearer <key>`` with one of
them, except:

- routes a plugin adds with ``ctx_api_keys=False``: the health checks, and routes
  that check keys of their own (the moderation plugin's);
- the OpenAPI document and its page, which describe the API and hold no secret
  (``AURA_DOCS=false`` removes them);
- CORS preflights (``OPTIONS``), which browsers send without credentials.

Keys are compared in constant time, and never logged or echoed.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterable

from sanic import DefaultSanic, Request
from sanic_ext import openapi
from sanic_routing import Route

from .errors import ApiError
from .schemas import error_responses

__all__ = ["API_KEY_SCHEME", "BearerKeys", "install"]

#: The OpenAPI security scheme the service's keys are documented as.
API_KEY_SCHEME = "apiKey"

# sanic-ext's documentation routes are named "<app>.openapi.<handler>".
_DOCS_BLUEPRINT = "openapi"


def _digest(key: bytes) -> bytes:
    # Equal-length digests: compare_digest then leaks nothing about a key's length.
    return hashlib.sha256(key).digest()


def _octets(text: str) -> bytes:
    """``text`` as the bytes it came from, whatever they were.

    Sanic decodes header values as UTF-8 with ``surrogateescape``, so a byte that is not
    UTF-8 (``Bearer \\xff``) arrives as a lone surrogate, which plain ``encode()``
    refuses. Encoding back the same way gives exactly the bytes the client sent; bytes
    that are not UTF-8 match no key written as text, so such a caller is refused (401).
    """
    try:
        return text.encode("utf-8", "surrogateescape")
    except UnicodeEncodeError:
        # A surrogate no decoder made (a caller's own string): still some bytes.
        return text.encode("utf-8", "surrogatepass")


class BearerKeys:
    """A set of keys a caller presents as ``Authorization: Bearer <key>``."""

    def __init__(self, keys: Iterable[str]) -> None:
        """Accept any of ``keys``; empty strings are ignored."""
        self._digests = tuple(_digest(_octets(key)) for key in keys if key)

    def __bool__(self) -> bool:
        """True when at least one key is configured."""
        return bool(self._digests)

    def admit(self, authorization: str | None) -> bool:
        """True when the ``Authorization`` header carries one of the keys.

        Every key is compared, always, so the time taken tells nothing about which
        key came close.
        """
        scheme, _, given = (authorization or "").partition(" ")
        presented = _digest(_octets(given.strip()))
        matched = False
        for digest in self._digests:
            matched |= hmac.compare_digest(presented, digest)
        return matched and scheme.lower() == "bearer"

    def refuse(self, realm: str, message: str) -> ApiError:
        """The 401 to raise for a caller without a key: names the scheme, not the keys."""
        error = ApiError(401, message)
        error.headers = {"WWW-Authenticate": f'Bearer realm="{realm}"'}
        return error


def _guarded(route: Route) -> bool:
    """Whether the service's keys apply to ``route``."""
    return getattr(route.ctx, "api_keys", True) is not False and route.name.split(".")[1:2] != [
        _DOCS_BLUEPRINT
    ]


def install(app: DefaultSanic, keys: BearerKeys) -> None:
    """Require one of ``keys`` on every route but the exempt ones (nothing when empty).

    Call it once every plugin's routes are on ``app``: it reads which are open then,
    and documents the 401 on the others. A route added later is guarded.
    """
    if not keys:
        return
    app.ext.openapi.add_security_scheme(
        API_KEY_SCHEME, "http", scheme="bearer", description="A key from AURA_API_KEYS"
    )
    app.ext.openapi.secured(API_KEY_SCHEME)
    refused = openapi.response(response=error_responses(401)[0])
    open_routes: set[tuple[str, str]] = set()
    for route in app.router.routes:
        if _guarded(route):
            refused(route.handler)
        else:
            open_routes.update((route.path, method) for method in route.methods)

    # After the request id (priority 1000), so a 401 carries one like any answer.
    # (app.middleware("request"): app.on_request's own annotations misread a call
    # with only a priority.)
    @app.middleware("request", priority=900)
    async def require_api_key(request: Request) -> None:
        route = request.route
        if request.method == "OPTIONS" or route is None:
            return
        # sanic-ext answers HEAD through a route of its own, added later: it goes
        # with the GET route of its path (a load balancer's HEAD /api/health).
        method = "GET" if request.method == "HEAD" else request.method
        if (route.path, method) in open_routes:
            return
        if not keys.admit(request.headers.get("authorization")):
            raise keys.refuse(
                "aura-livekit-backend",
                "a valid API key is required: send Authorization: Bearer <key>",
            )
