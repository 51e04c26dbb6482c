"""The one place that holds LiveKit's API secret and signs with it.

Two kinds of JWT are signed here, both HS256 with ``iss`` = the API key, as LiveKit
verifies them: the service's own tokens for its server-API calls (each with exactly
the grants the call needs, reused while fresh) and the join tokens handed to people.
"""

from __future__ import annotations

import time
import warnings
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

import jwt
from livekit import api
from pydantic import SecretStr

__all__ = ["Signer"]

#: A service token's life, and the age after which it is signed anew.
SERVICE_TOKEN_TTL = 600
SERVICE_TOKEN_RENEW = 300
#: Room-scoped service tokens (one per room a participant call names) kept at most.
SERVICE_TOKENS_KEPT = 1024
#: PyJWT (and common sense) want an HMAC secret of at least 32 bytes.
MIN_SECRET_BYTES = 32

# The grants the server API asks for, as (VideoGrants attribute, claim name).
_SERVICE_GRANTS = (
    ("room_create", "roomCreate"),
    ("room_list", "roomList"),
    ("room_admin", "roomAdmin"),
    ("room_record", "roomRecord"),
    ("ingress_admin", "ingressAdmin"),
)


class Signer:
    """Signs LiveKit JWTs with one API key and secret."""

    def __init__(
        self, api_key: str, secret: SecretStr, *, clock: Callable[[], float] = time.time
    ) -> None:
        """Sign as ``api_key`` with ``secret``; ``clock`` gives unix seconds."""
        self.api_key = api_key
        self._secret = secret
        self._clock = clock
        self._service: OrderedDict[tuple[tuple[bool, ...], str], tuple[float, str]] = OrderedDict()
        if len(secret.get_secret_value().encode()) < MIN_SECRET_BYTES:
            # Start-up has warned once already; PyJWT would warn at every signature.
            warnings.filterwarnings("ignore", category=jwt.InsecureKeyLengthWarning)

    def sign(self, claims: dict[str, Any]) -> str:
        """``claims`` signed, with ``iss`` set to the API key."""
        return jwt.encode(
            {**claims, "iss": self.api_key}, self._secret.get_secret_value(), algorithm="HS256"
        )

    def service_token(self, grants: api.VideoGrants) -> str:
        """A token for the service's own call needing ``grants``; reused while fresh.

        livekit-api would sign a fresh JWT for every call; on the join path that was a
        quarter of a request's CPU, for a token that can be reused for minutes.
        """
        flags = tuple(bool(getattr(grants, attr)) for attr, _ in _SERVICE_GRANTS)
        key = (flags, grants.room)
        now = self._clock()
        kept = self._service.get(key)
        if kept is not None and now - kept[0] < SERVICE_TOKEN_RENEW:
            self._service.move_to_end(key)
            return kept[1]
        claims = (claim for _, claim in _SERVICE_GRANTS)
        video: dict[str, Any] = {
            claim: True for claim, granted in zip(claims, flags, strict=True) if granted
        }
        if grants.room:
            video["room"] = grants.room
        token = self.sign({"nbf": int(now), "exp": int(now) + SERVICE_TOKEN_TTL, "video": video})
        self._service[key] = (now, token)
        self._service.move_to_end(key)
        while len(self._service) > SERVICE_TOKENS_KEPT:
            self._service.popitem(last=False)
        return token
