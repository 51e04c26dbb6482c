"""One worker's gate: who is calling (API keys, JWTs), rate limits and policies.

Built from the settings without I/O (the app factory runs in every process);
:meth:`Gate.open` in the worker opens the key set's HTTP session and the rate-limit
store, :meth:`Gate.close` on stop. The LiveKit layer's join rules ask it to
:meth:`~Gate.count` and :meth:`~Gate.decide` every create and join; the access
middleware asks it to :meth:`~Gate.authenticate` every guarded request.
"""

from __future__ import annotations

from typing import Literal

from ..access import BearerKeys
from ..livekit.models import RoomInfo
from ..livekit.tokens import DEFAULT_GRANTS, Grants
from ..settings import Settings
from .callers import Caller
from .errors import NotAuthenticated
from .jwks import KeySet
from .limits import RateLimits
from .policy import ClaimPolicy, ClaimRule, Policies, PolicyRequest
from .verify import Verifier

__all__ = ["Gate"]

Mode = Literal["none", "api-key", "jwt"]


class Gate:
    """Authentication, rate limits and policies for one worker."""

    def __init__(self, settings: Settings) -> None:
        """Everything ``settings`` configure (``AURA_AUTH*``, ``AURA_RATE_LIMIT_*``)."""
        self.mode: Mode = settings.auth_mode
        self.keys = BearerKeys(key.get_secret_value() for key in settings.api_keys)
        self.key_set: KeySet | None = None
        self.verifier: Verifier | None = None
        if self.mode == "jwt":
            if not settings.auth_issuer or not settings.auth_audience:
                # Settings allow this under --dev only, where the console script fills
                # both in with its development issuer before building the app.
                from ..settings import SettingsError

                raise SettingsError("AURA_AUTH=jwt needs AURA_AUTH_ISSUER and AURA_AUTH_AUDIENCE")
            if any(not name.startswith("HS") for name in settings.jwt_algorithms):
                self.key_set = KeySet(
                    issuer=settings.auth_issuer,
                    jwks_url=settings.auth_jwks_url,
                    timeout=settings.auth_jwks_timeout,
                )
            self.verifier = Verifier(settings, self.key_set)
        self.limits = RateLimits(settings)
        rules = {
            "create": ClaimRule.parse(settings.auth_create_claim)
            if settings.auth_create_claim
            else None,
            "publish": ClaimRule.parse(settings.auth_publish_claim)
            if settings.auth_publish_claim
            else None,
        }
        builtin = [ClaimPolicy(**rules)] if any(rules.values()) else []
        #: Every policy asked on create and join: the built-in one, then plugins'.
        self.policies = Policies(builtin)

    @property
    def checks_credentials(self) -> bool:
        """True when guarded routes need a credential (api-key or jwt mode)."""
        return self.mode != "none"

    async def open(self) -> None:
        """Open the key set's session and the rate-limit store, in the worker's loop."""
        if self.key_set is not None:
            await self.key_set.open()
        await self.limits.open()

    async def close(self) -> None:
        """Close both; safe to call twice."""
        if self.key_set is not None:
            await self.key_set.close()
        await self.limits.close()

    async def authenticate(self, authorization: str | None, address: str) -> Caller:
        """The caller an ``Authorization`` header proves, for a guarded route.

        Without credentials to check (``AURA_AUTH=none``), everyone is anonymous. Else
        one of the API keys is a trusted backend and a valid JWT (jwt mode) a person;
        anything else is :class:`NotAuthenticated` (or :class:`KeysUnavailable`).
        """
        if self.mode == "none":
            return Caller.nobody(address)
        if self.keys and self.keys.admit(authorization):
            return Caller.backend(address)
        scheme, _, token = (authorization or "").partition(" ")
        token = token.strip()
        if self.verifier is None:
            raise NotAuthenticated("a valid API key is required: send Authorization: Bearer <key>")
        if scheme.lower() != "bearer" or not token:
            raise NotAuthenticated(
                "a bearer token is required: send Authorization: Bearer <JWT>"
                + (" (or an API key)" if self.keys else "")
            )
        return await self.verifier.verify(token, address=address)

    async def count(self, caller: Caller, action: Literal["create", "join"], identity: str) -> None:
        """Count a create or join against the caller's limit (:class:`RateLimited`)."""
        await self.limits.hit(action, caller.limit_key(identity))

    async def decide(
        self,
        caller: Caller,
        action: Literal["create", "join"],
        *,
        identity: str,
        name: str,
        room: RoomInfo | None = None,
        topic: str | None = None,
        max_participants: int | None = None,
    ) -> Grants:
        """The grants every policy leaves, or the first refusal (:class:`Forbidden`)."""
        if not len(self.policies):
            return DEFAULT_GRANTS
        return await self.policies.decide(
            PolicyRequest(
                caller=caller,
                action=action,
                identity=identity,
                name=name,
                grants=DEFAULT_GRANTS,
                room=room,
                topic=topic,
                max_participants=max_participants,
            )
        )
