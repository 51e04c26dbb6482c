"""Who may create and join which room, with which grants: policies, composed.

A :class:`Policy` is handed a :class:`PolicyRequest` — the caller, the action
(``"create"`` or ``"join"``), the room's facts (the :class:`RoomInfo` for a join; the
topic and limit asked for a create) and the grants asked — and answers a
:class:`Decision`: allow, deny (a 403 with its message), or narrow the grants. Every
policy is asked, in order (the built-in one first, then plugins' in their load
order): all must allow, and the token gets what all of them leave (grants only
narrow; :meth:`Grants.narrow`).

:class:`ClaimPolicy` is the built-in one, from settings: ``AURA_AUTH_CREATE_CLAIM``
(only callers whose claim holds one of the values create rooms) and
``AURA_AUTH_PUBLISH_CLAIM`` (everyone else joins subscribe-only). A trusted backend
(an API key) passes it: the backend decides for its users.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal, Protocol

from ..livekit.models import RoomInfo
from ..livekit.tokens import Grants
from .callers import Caller
from .errors import Forbidden

__all__ = [
    "SUBSCRIBE_ONLY",
    "Action",
    "ClaimPolicy",
    "ClaimRule",
    "Decision",
    "Policies",
    "Policy",
    "PolicyRequest",
]

Action = Literal["create", "join"]

#: Grants of someone who may watch and listen, but not publish media or data.
SUBSCRIBE_ONLY = Grants(can_publish=False, can_publish_data=False)


@dataclass(frozen=True, slots=True)
class PolicyRequest:
    """What a policy decides on."""

    caller: Caller
    action: Action
    #: The identity the token will carry (before AURA_DUPLICATE_USERNAME=unique's suffix).
    identity: str
    #: The display name it will carry.
    name: str
    #: The grants asked for (the default unless something narrowed them already).
    grants: Grants
    #: join: the room, as LiveKit has it now. create: None.
    room: RoomInfo | None = None
    #: create: the topic asked for (the default topic when none was). join: None.
    topic: str | None = None
    #: create: the participant limit asked for. join: None.
    max_participants: int | None = None


@dataclass(frozen=True, slots=True)
class Decision:
    """A policy's answer: build it with :meth:`allow`, :meth:`deny` or :meth:`narrow`."""

    allowed: bool
    #: Why not (shown to the caller in the 403): deny only.
    message: str = ""
    #: The most this policy grants; None: it does not narrow.
    grants: Grants | None = None

    @classmethod
    def allow(cls) -> Decision:
        """Allowed, with whatever grants the others leave."""
        return cls(True)

    @classmethod
    def deny(cls, message: str) -> Decision:
        """Refused: a 403 whose message ends with ``message`` (shown to the caller)."""
        return cls(False, message or "refused by a policy")

    @classmethod
    def narrow(cls, grants: Grants) -> Decision:
        """Allowed with at most ``grants`` (e.g. ``Grants(can_publish=False)``)."""
        return cls(True, grants=grants)


class Policy(Protocol):
    """Decides create and join; register one with ``ctx.add_policy(policy)``."""

    async def decide(self, request: PolicyRequest) -> Decision:
        """Allow, deny or narrow what ``request`` asks. It runs on every create and
        join: keep it fast, and raise nothing (an exception is a 500)."""
        ...


class Policies:
    """Every registered policy, asked in order; all must allow."""

    def __init__(self, policies: Sequence[Policy] = ()) -> None:
        """Start with ``policies`` (the built-in one, if configured)."""
        self._policies: list[Policy] = list(policies)

    def add(self, policy: Policy) -> None:
        """Ask ``policy`` too, after the ones already added."""
        if not callable(getattr(policy, "decide", None)):
            raise TypeError("a policy has an async decide(request) method")
        self._policies.append(policy)

    def __len__(self) -> int:
        """How many policies are asked."""
        return len(self._policies)

    async def decide(self, request: PolicyRequest) -> Grants:
        """The grants every policy leaves, or :class:`Forbidden` with the first denial."""
        grants = request.grants
        for policy in self._policies:
            decision = await policy.decide(request)
            if not decision.allowed:
                raise Forbidden(decision.message)
            grants = grants.narrow(decision.grants)
        return grants


@dataclass(frozen=True, slots=True)
class ClaimRule:
    """``claim:value,value``: the caller's claim must hold one of the values.

    The claim is a top-level name (Auth0's namespaced ``https://example.com/roles``
    included), else a dotted path (Keycloak's ``realm_access.roles``). Its value may
    be a string, a list of strings, or space-separated scopes.
    """

    claim: str
    values: frozenset[str]

    @classmethod
    def parse(cls, rule: str) -> ClaimRule:
        """Read ``claim:value,value`` (the last ``:`` splits, so URLs may be claims)."""
        claim, _, values = rule.rpartition(":")
        return cls(claim.strip(), frozenset(v.strip() for v in values.split(",") if v.strip()))

    def holds(self, claims: Mapping[str, Any]) -> bool:
        """Whether ``claims`` give the claim one of the values."""
        value: Any = claims.get(self.claim)
        if value is None and "." in self.claim:
            value = claims
            for part in self.claim.split("."):
                value = value.get(part) if isinstance(value, Mapping) else None
        if isinstance(value, str):
            held = set(value.split())
        elif isinstance(value, list):
            held = {item for item in value if isinstance(item, str)}
        else:
            return False
        return not held.isdisjoint(self.values)

    def __str__(self) -> str:
        """The rule as it was configured."""
        return f"{self.claim}:{','.join(sorted(self.values))}"


class ClaimPolicy:
    """The built-in policy: ``AURA_AUTH_CREATE_CLAIM`` and ``AURA_AUTH_PUBLISH_CLAIM``."""

    def __init__(self, *, create: ClaimRule | None, publish: ClaimRule | None) -> None:
        """Only ``create`` holders create; only ``publish`` holders publish."""
        self._create = create
        self._publish = publish

    async def decide(self, request: PolicyRequest) -> Decision:
        """Deny a create without the create claim; narrow a non-publisher to subscribe-only."""
        caller = request.caller
        if caller.trusted:
            return Decision.allow()
        if request.action == "create" and self._create and not self._create.holds(caller.claims):
            return Decision.deny(f"creating rooms needs the claim {self._create}")
        if self._publish and not self._publish.holds(caller.claims):
            return Decision.narrow(SUBSCRIBE_ONLY)
        return Decision.allow()
