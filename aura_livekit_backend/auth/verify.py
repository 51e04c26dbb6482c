"""Verifying an identity provider's JWT with PyJWT, into a :class:`~.callers.Caller`.

The checks, in order, each a :class:`~.errors.NotAuthenticated` naming the problem:
the token's size (at most :data:`MAX_TOKEN_BYTES`), its header, its algorithm (on
the allow-list, never ``none``), the key (an ``HS*`` token only ever against
``AURA_AUTH_JWT_SECRET``, every other one only against the provider's public keys),
the signature, ``exp`` (required), ``nbf``, ``iat``, ``iss`` and ``aud`` (within the
leeway), then the identity claim (a non-empty string of at most 128 characters, no
control or invisible characters). Nothing from the token is echoed in a message.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Mapping
from typing import Any

import jwt

from ..settings import Settings
from ..validation import MAX_USER_NAME, check_text
from .callers import Caller
from .errors import NotAuthenticated
from .jwks import KeySet

__all__ = ["MAX_TOKEN_BYTES", "Verifier"]

#: The longest token accepted: real ones are 1-2 KB; a header is capped at 8 KB anyway.
MAX_TOKEN_BYTES = 8 * 1024

# PyJWT's errors, as the caller hears of them (most specific first).
_PROBLEMS: tuple[tuple[type[Exception], str], ...] = (
    (jwt.ExpiredSignatureError, "the token has expired"),
    (jwt.ImmatureSignatureError, "the token is not valid yet"),
    (jwt.InvalidIssuerError, "the token's issuer is not the one this service trusts"),
    (jwt.InvalidAudienceError, "the token is not meant for this service (audience)"),
    (jwt.InvalidSignatureError, "the token's signature does not verify"),
    (jwt.InvalidIssuedAtError, "the token's issued-at time is invalid"),
)


def _header(token: str) -> dict[str, Any]:
    """The JWT's header, unverified: only to choose the key. PyJWT's own reader decodes
    and checks all three segments, which its ``decode`` then does again."""
    segments = token.split(".")
    if len(segments) != 3:
        raise NotAuthenticated("the bearer token is not a well-formed JWT")
    try:
        header = json.loads(base64.urlsafe_b64decode(segments[0] + "=" * (-len(segments[0]) % 4)))
    except (ValueError, binascii.Error):
        raise NotAuthenticated("the bearer token is not a well-formed JWT") from None
    if not isinstance(header, dict):
        raise NotAuthenticated("the bearer token is not a well-formed JWT")
    return header


def _usable_name(value: Any) -> str | None:
    if isinstance(value, str) and 0 < len(value) <= MAX_USER_NAME:
        try:
            return check_text(value)
        except ValueError:
            return None
    return None


class Verifier:
    """Checks bearer JWTs against the settings (``AURA_AUTH_*``)."""

    def __init__(self, settings: Settings, keys: KeySet | None) -> None:
        """Verify as ``settings`` say, with the provider's ``keys`` (None: HS only)."""
        self._issuer = settings.auth_issuer
        self._audience = settings.auth_audience
        self._algorithms = frozenset(settings.jwt_algorithms)
        self._secret = (
            settings.auth_jwt_secret.get_secret_value() if settings.auth_jwt_secret else None
        )
        self._leeway = settings.auth_leeway
        self._identity_claim = settings.auth_identity_claim
        self._name_claim = settings.auth_name_claim
        self._keys = keys

    async def verify(self, token: str, *, address: str = "") -> Caller:
        """The person ``token`` proves the caller to be, or :class:`NotAuthenticated`.

        May raise :class:`~.errors.KeysUnavailable` when the provider's keys are needed
        and cannot be fetched.
        """
        if len(token) > MAX_TOKEN_BYTES:
            raise NotAuthenticated(f"the token is longer than {MAX_TOKEN_BYTES} bytes")
        header = _header(token)
        algorithm = header.get("alg")
        if not isinstance(algorithm, str) or algorithm not in self._algorithms:
            raise NotAuthenticated("the token's signature algorithm is not accepted")
        kid = header.get("kid")
        if kid is not None and not isinstance(kid, str):
            raise NotAuthenticated("the token's key id (kid) is not a string")
        if algorithm.startswith("HS"):
            # Only the shared secret checks HS tokens: a public key used as an HMAC
            # secret would let anyone who reads the JWKS forge tokens.
            if self._secret is None:
                raise NotAuthenticated("the token's signature algorithm is not accepted")
            key: Any = self._secret
        elif self._keys is None:
            raise NotAuthenticated("the token's signature algorithm is not accepted")
        else:
            key = await self._keys.key_for(kid, algorithm)
        claims = self._decode(token, key, algorithm)
        identity = claims.get(self._identity_claim)
        if identity is None:
            raise NotAuthenticated(f"the token has no {self._identity_claim} claim")
        if not isinstance(identity, str) or not identity:
            raise NotAuthenticated(f"the token's {self._identity_claim} claim is empty or not text")
        if len(identity) > MAX_USER_NAME:
            raise NotAuthenticated(
                f"the token's {self._identity_claim} claim is over {MAX_USER_NAME} characters"
            )
        try:
            check_text(identity)
        except ValueError as exc:
            raise NotAuthenticated(f"the token's {self._identity_claim} claim {exc}") from None
        name = (
            _usable_name(claims.get(self._name_claim))
            or _usable_name(claims.get("preferred_username"))
            or identity
        )
        return Caller.person(identity, name, claims, address)

    def _decode(self, token: str, key: Any, algorithm: str) -> Mapping[str, Any]:
        try:
            claims: dict[str, Any] = jwt.decode(
                token,
                key,
                algorithms=[algorithm],
                audience=self._audience,
                issuer=self._issuer,
                leeway=self._leeway,
                options={"require": ["exp", "iss", "aud"], "verify_sub": False},
            )
        except jwt.MissingRequiredClaimError as exc:
            raise NotAuthenticated(f"the token has no {exc.claim} claim") from None
        except jwt.PyJWTError as exc:
            for kind, problem in _PROBLEMS:
                if isinstance(exc, kind):
                    raise NotAuthenticated(problem) from None
            raise NotAuthenticated("the bearer token is not a valid JWT") from None
        return claims
