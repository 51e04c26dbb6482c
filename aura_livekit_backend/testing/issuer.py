"""A development OpenID Connect issuer: a JWKS, a discovery document, and tokens for anyone.

``aura-livekit-backend --dev`` with ``AURA_AUTH=jwt`` and no ``AURA_AUTH_ISSUER`` starts
one beside the emulator, so JWT mode runs on a machine with no identity provider; the
tests use it as a real provider over HTTP. It signs a token for whoever asks: never
point a service that is not in development at it.

- ``GET /.well-known/openid-configuration`` — ``{"issuer", "jwks_uri"}``;
- ``GET /jwks.json`` — the public keys of :attr:`DevIssuer.published`;
- ``GET /token?sub=ann&name=Ann&roles=host,speaker&ttl=600`` — a signed token as plain
  text; every other query parameter becomes a claim (commas make a list).

Like the emulator it can be made sick (``jwks_fault``: ``down``, ``slow``, ``garbage``)
and counts what it served (``fetches``).
"""

from __future__ import annotations

import asyncio
import json
import time
from collections import Counter
from dataclasses import dataclass
from typing import Any, Literal

import jwt
from aiohttp import web
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from jwt.algorithms import ECAlgorithm, OKPAlgorithm, RSAAlgorithm

from ..loop_thread import Cleanup, LoopThread

__all__ = ["DEV_AUDIENCE", "DevIssuer", "JwksFault", "SigningKey"]

#: The audience development tokens are for, unless AURA_AUTH_AUDIENCE says otherwise.
DEV_AUDIENCE = "aura-livekit-backend"

JwksFault = Literal["down", "slow", "garbage"]


@dataclass(frozen=True)
class SigningKey:
    """A private key, its key id and the algorithm it signs with."""

    kid: str
    algorithm: str
    private: Any

    @classmethod
    def rsa(cls, kid: str = "dev-rsa", algorithm: str = "RS256") -> SigningKey:
        """A fresh 2048-bit RSA key."""
        return cls(kid, algorithm, rsa.generate_private_key(public_exponent=65537, key_size=2048))

    @classmethod
    def ec(cls, kid: str = "dev-ec") -> SigningKey:
        """A fresh P-256 key (ES256)."""
        return cls(kid, "ES256", ec.generate_private_key(ec.SECP256R1()))

    @classmethod
    def ed25519(cls, kid: str = "dev-ed") -> SigningKey:
        """A fresh Ed25519 key (EdDSA)."""
        return cls(kid, "EdDSA", ed25519.Ed25519PrivateKey.generate())

    def public_jwk(self) -> dict[str, Any]:
        """The public half as a JWK, with ``kid``, ``alg`` and ``use``."""
        public = self.private.public_key()
        if isinstance(public, rsa.RSAPublicKey):
            jwk = RSAAlgorithm.to_jwk(public, as_dict=True)
        elif isinstance(public, ec.EllipticCurvePublicKey):
            jwk = ECAlgorithm.to_jwk(public, as_dict=True)
        else:
            jwk = OKPAlgorithm.to_jwk(public, as_dict=True)
        return {**jwk, "kid": self.kid, "alg": self.algorithm, "use": "sig"}


class DevIssuer:
    """An identity provider on ``127.0.0.1``, in a background thread."""

    def __init__(
        self,
        audience: str = DEV_AUDIENCE,
        *,
        port: int = 0,
        keys: list[SigningKey] | None = None,
    ) -> None:
        """Issue tokens for ``audience``, signed with ``keys`` (default: one fresh RSA key)."""
        self.audience = audience
        self.port = port
        #: Every key it can sign with, by kid; the first signs by default.
        self.keys: dict[str, SigningKey] = {k.kid: k for k in (keys or [SigningKey.rsa()])}
        #: The kids the JWKS publishes (default: all). Change it to rotate keys.
        self.published: list[str] = list(self.keys)
        #: None, or how the JWKS (and discovery) answers: down (503), slow, garbage.
        self.jwks_fault: JwksFault | None = None
        #: Seconds a slow answer takes.
        self.slow_seconds = 30.0
        #: What was served: "jwks", "discovery", "token".
        self.fetches: Counter[str] = Counter()
        self._server = LoopThread("dev-issuer")

    @property
    def url(self) -> str:
        """The issuer URL (``AURA_AUTH_ISSUER``; the tokens' ``iss``)."""
        return f"http://127.0.0.1:{self.port}"

    @property
    def jwks_url(self) -> str:
        """Where the public keys are (``AURA_AUTH_JWKS_URL``, or found by discovery)."""
        return f"{self.url}/jwks.json"

    def add_key(self, key: SigningKey, *, publish: bool = True) -> None:
        """Sign with ``key`` too; publish it in the JWKS unless told not to."""
        self.keys[key.kid] = key
        if publish:
            self.published.append(key.kid)

    def token(
        self,
        sub: str | None = "dev-user",
        *,
        name: str | None = None,
        kid: str | None = None,
        ttl: float = 3600,
        claims: dict[str, Any] | None = None,
        headers: dict[str, Any] | None = None,
    ) -> str:
        """A token for ``sub`` signed with key ``kid`` (default: the first), valid ``ttl`` s.

        ``claims`` override or add claims (``{"iss": ...}``, ``{"aud": ...}``, ``{"sub": None}``
        removes one); ``headers`` add to the JWT header.
        """
        key = self.keys[kid] if kid else next(iter(self.keys.values()))
        now = int(time.time())
        body: dict[str, Any] = {
            "iss": self.url,
            "aud": self.audience,
            "sub": sub,
            "iat": now,
            "nbf": now,
            "exp": now + int(ttl),
        }
        if name is not None:
            body["name"] = name
        body.update(claims or {})
        body = {claim: value for claim, value in body.items() if value is not None}
        return jwt.encode(
            body, key.private, algorithm=key.algorithm, headers={"kid": key.kid, **(headers or {})}
        )

    # -- lifecycle -------------------------------------------------------------------

    def start(self) -> DevIssuer:
        """Start serving; returns once the port accepts connections."""
        self._server.start(self._serve)
        return self

    def stop(self) -> None:
        """Stop serving; safe to call twice."""
        self._server.stop()

    def __enter__(self) -> DevIssuer:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    async def _serve(self) -> Cleanup:
        app = web.Application()
        app.router.add_get("/.well-known/openid-configuration", self._discovery)
        app.router.add_get("/jwks.json", self._jwks)
        app.router.add_get("/token", self._token)
        # A slow answer must not hold up stop() for its whole wait.
        runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.5)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", self.port, reuse_address=True)
        await site.start()
        self.port = runner.addresses[0][1]  # the port 0 became
        return runner.cleanup

    async def _sick(self) -> web.Response | None:
        if self.jwks_fault == "down":
            return web.Response(status=503, text="identity provider down")
        if self.jwks_fault == "slow":
            await asyncio.sleep(self.slow_seconds)
        if self.jwks_fault == "garbage":
            return web.Response(text="<html>not a key set{", content_type="text/html")
        return None

    async def _discovery(self, request: web.Request) -> web.Response:
        self.fetches["discovery"] += 1
        sick = await self._sick()
        return sick or web.json_response({"issuer": self.url, "jwks_uri": self.jwks_url})

    async def _jwks(self, request: web.Request) -> web.Response:
        self.fetches["jwks"] += 1
        sick = await self._sick()
        keys = [self.keys[kid].public_jwk() for kid in self.published if kid in self.keys]
        return sick or web.json_response({"keys": keys}, dumps=json.dumps)

    async def _token(self, request: web.Request) -> web.Response:
        self.fetches["token"] += 1
        query = dict(request.query)
        sub = query.pop("sub", "") or "dev-user"
        name = query.pop("name", None)
        try:
            ttl = float(query.pop("ttl", "3600"))
        except ValueError:
            return web.Response(status=400, text="ttl: seconds, a number\n")
        claims: dict[str, Any] = {
            claim: value.split(",") if "," in value or claim == "roles" else value
            for claim, value in query.items()
        }
        return web.Response(text=self.token(sub, name=name, ttl=ttl, claims=claims))
