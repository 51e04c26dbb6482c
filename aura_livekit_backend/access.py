"""Who may call: the service's API keys (``AURA_API_KEYS``) and, with ``AURA_AUTH=jwt``,
an identity provider's JWTs (checked by :mod:`.auth`).

With keys or JWTs configured, every route needs ``Authorization: Bearer <key or JWT>``,
except:

- routes a plugin adds with ``ctx_api_keys=False``: the health checks, and routes
  that check keys of their own (the moderation plugin's);
- the OpenAPI document and its page, which describe the API and hold no secret
  (``AURA_DOCS=false`` removes them);
- CORS preflights (``OPTIONS``), which browsers send without credentials.

Keys are compared in constant time, and never logged or echoed. Whoever passes is
the request's :class:`~.auth.callers.Caller` (:func:`caller_of`).

Failed authentications are counted per client address, on every route (a plugin's
own keys too: any 401 counts). An address over ``AURA_RATE_LIMIT_AUTH_FAILURES`` gets
429 for each request carrying credentials until its window moves on, right or wrong,
so a guess that happens to be right does not show. A route added with
``ctx_auth_throttle=False`` neither counts nor is held up: LiveKit's webhook receiver,
whose 401s are deliveries signed with a key the service does not know yet (a rotation
under way), not guesses, and whose address must not lose its valid deliveries to them.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
from collections.abc import Iterable
from typing import TYPE_CHECKING

from sanic import DefaultSanic, Request
from sanic.response import BaseHTTPResponse
from sanic_ext import openapi
from sanic_routing import Route

from .auth.callers import Caller
from .auth.errors import AuthError, LimitsUnavailable, RateLimited
from .errors import ApiError, auth_failure
from .schemas import error_responses

if TYPE_CHECKING:
    from .auth.gate import Gate

__all__ = ["API_KEY_SCHEME", "JWT_SCHEME", "BearerKeys", "caller_of", "install"]

#: The OpenAPI security scheme the service's keys are documented as.
API_KEY_SCHEME = "apiKey"
#: The OpenAPI security scheme an identity provider's JWTs are documented as.
JWT_SCHEME = "jwt"

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


def client_address(request: Request) -> str:
    """The client's address, as the proxy settings say to read it."""
    return request.remote_addr or request.ip or ""


def caller_of(request: Request) -> Caller:
    """Who made ``request``: a person (a verified JWT), a trusted backend (an API key),
    or anonymous (``AURA_AUTH=none``, or a route exempt from the service's check)."""
    caller = getattr(request.ctx, "caller", None)
    if caller is None:
        caller = request.ctx.caller = Caller.nobody(client_address(request))
    return caller


def _is_docs(route: Route) -> bool:
    return route.name.split(".")[1:2] == [_DOCS_BLUEPRINT]


def _guarded(route: Route) -> bool:
    """Whether the service's keys apply to ``route``."""
    return getattr(route.ctx, "api_keys", True) is not False and not _is_docs(route)


def _throttled(route: Route | None) -> bool:
    """Whether failed authentications on ``route`` count, and its callers are held up."""
    return (
        route is not None
        and not _is_docs(route)
        and getattr(route.ctx, "auth_throttle", True) is not False
    )


def _throttle_failures(app: DefaultSanic, gate: Gate) -> None:
    """Count every 401 against the client's address; refuse its credentials while over."""
    too_many = openapi.response(response=error_responses(429)[0])
    for route in app.router.routes:
        if not _is_docs(route):
            too_many(route.handler)

    # Before the access check (900) and any plugin's own key check, after the request id.
    @app.middleware("request", priority=950)
    async def refuse_guessers(request: Request) -> None:
        if request.method == "OPTIONS" or not _throttled(request.route):
            return
        # Only requests with credentials: a probe without any is never held up, and
        # one without credentials cannot guess.
        if "authorization" not in request.headers:
            return
        try:
            await gate.limits.check("auth", client_address(request))
        except AuthError as exc:
            raise auth_failure(exc) from None

    @app.middleware("response", priority=500)
    async def count_failure(request: Request, response: BaseHTTPResponse) -> None:
        if response.status != 401 or not _throttled(request.route):
            return
        # Counted (or not countable): the next attempt with credentials hears of it.
        with contextlib.suppress(RateLimited, LimitsUnavailable):
            await gate.limits.hit("auth", client_address(request))


def install(app: DefaultSanic, keys: BearerKeys, gate: Gate | None = None) -> None:
    """Require one of ``keys`` (or, with ``gate`` in jwt mode, a valid JWT) on every
    route but the exempt ones (nothing when neither is configured), and throttle
    failed authentications per address when ``gate`` has that limit on.

    Call it once every plugin's routes are on ``app``: it reads which are open then,
    and documents the 401 on the others. A route added later is guarded.
    """
    jwt = gate is not None and gate.mode == "jwt"
    if gate is not None and "auth" in gate.limits:
        _throttle_failures(app, gate)
    if not keys and not jwt:
        return
    if jwt:
        app.ext.openapi.add_security_scheme(
            JWT_SCHEME,
            "http",
            scheme="bearer",
            bearer_format="JWT",
            description="A JWT from the identity provider (AURA_AUTH_ISSUER)",
        )
        app.ext.openapi.secured(JWT_SCHEME)
    if keys:
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

    if gate is not None:
        # After the request id (priority 1000), so a 401 carries one like any answer.
        @app.middleware("request", priority=900)
        async def identify_caller(request: Request) -> None:
            route = request.route
            if request.method == "OPTIONS" or route is None:
                return
            method = "GET" if request.method == "HEAD" else request.method
            if (route.path, method) in open_routes:
                return
            try:
                request.ctx.caller = await gate.authenticate(
                    request.headers.get("authorization"), client_address(request)
                )
            except AuthError as exc:
                raise auth_failure(exc) from None

        return

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
