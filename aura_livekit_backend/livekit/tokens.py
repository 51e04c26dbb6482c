"""Join tokens: what a person gets to connect to a room, and the grants it carries.

The grants live here and nowhere else: by default publish, subscribe and data in one
room, for ``AURA_TOKEN_TTL``; a policy may narrow them (:class:`Grants`), never widen
them. The token is signed without livekit-api's per-call dataclass walk
(a tenth of a join's CPU); the tests check it with livekit-api's own TokenVerifier.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from types import MappingProxyType
from typing import Any, Protocol

from ..events import EventSink, NoEvents, TokenMinted
from .models import AgentRequest
from .signing import Signer

__all__ = [
    "DEFAULT_GRANTS",
    "JOIN_GRANTS",
    "SOURCES",
    "Grants",
    "Profile",
    "TokenCounter",
    "Tokens",
]

#: What a join token allows by default, in the room it names (LiveKit's claim names).
JOIN_GRANTS = {"roomJoin": True, "canPublish": True, "canSubscribe": True, "canPublishData": True}

#: What ``can_publish_sources`` may name (LiveKit's ``TrackSource`` names).
SOURCES = frozenset({"camera", "microphone", "screen_share", "screen_share_audio"})


@dataclass(frozen=True, slots=True)
class Grants:
    """What a join token lets its holder do in its room. ``Grants()`` is the default,
    the most any token gets: publish (any source), subscribe, send data, be seen.

    ``can_publish_sources`` (``None``: every source) limits what may be published,
    e.g. ``frozenset({"microphone"})``; ``hidden`` keeps the participant out of the
    others' participant lists (a silent observer).
    """

    can_publish: bool = True
    can_subscribe: bool = True
    can_publish_data: bool = True
    can_publish_sources: frozenset[str] | None = None
    hidden: bool = False

    def __post_init__(self) -> None:
        if self.can_publish_sources is not None:
            # A list or set given by a policy: kept as a frozenset, so grants stay hashable.
            sources = frozenset(self.can_publish_sources)
            unknown = sorted(sources - SOURCES)
            if unknown:
                raise ValueError(f"unknown publish source(s) {', '.join(unknown)}")
            object.__setattr__(self, "can_publish_sources", sources)

    def narrow(self, other: Grants | None) -> Grants:
        """What both allow: each permission only if both grant it; sources in both;
        hidden if either hides."""
        if other is None:
            return self
        if self.can_publish_sources is None:
            sources = other.can_publish_sources
        elif other.can_publish_sources is None:
            sources = self.can_publish_sources
        else:
            sources = self.can_publish_sources & other.can_publish_sources
        return Grants(
            can_publish=self.can_publish and other.can_publish,
            can_subscribe=self.can_subscribe and other.can_subscribe,
            can_publish_data=self.can_publish_data and other.can_publish_data,
            can_publish_sources=sources,
            hidden=self.hidden or other.hidden,
        )

    def video_claims(self, room: str) -> dict[str, Any]:
        """LiveKit's ``video`` claim for ``room``: the default is exactly :data:`JOIN_GRANTS`."""
        claims: dict[str, Any] = {
            "roomJoin": True,
            "canPublish": self.can_publish,
            "canSubscribe": self.can_subscribe,
            "canPublishData": self.can_publish_data,
        }
        if self.can_publish_sources is not None:
            claims["canPublishSources"] = sorted(self.can_publish_sources)
        if self.hidden:
            claims["hidden"] = True
        claims["room"] = room
        return claims


#: The default grants (and the most any token gets).
DEFAULT_GRANTS = Grants()


@dataclass(frozen=True, slots=True)
class Profile:
    """What a token says about its holder beyond the grants, all checked by the caller
    (the endpoint) before it gets here.

    ``name`` (None: the join's own display name) is shown to the others;
    ``metadata`` and ``attributes`` are LiveKit's participant metadata and attributes;
    ``agents`` go in the token's ``roomConfig`` claim — which LiveKit applies only when
    the join creates the room, so the join rules also dispatch them explicitly.
    """

    name: str | None = None
    metadata: str = ""
    attributes: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))
    agents: tuple[AgentRequest, ...] = ()

    def claims(self) -> dict[str, Any]:
        """The token claims this profile adds (none for the empty profile)."""
        claims: dict[str, Any] = {}
        if self.metadata:
            claims["metadata"] = self.metadata
        if self.attributes:
            claims["attributes"] = dict(self.attributes)
        if self.agents:
            claims["roomConfig"] = {
                "agents": [
                    {"agentName": agent.name, "metadata": agent.metadata} for agent in self.agents
                ]
            }
        return claims


#: No metadata, attributes or room configuration.
NO_PROFILE = Profile()


class TokenCounter(Protocol):
    """Hears of every minted token (the metrics implement it)."""

    def token_minted(self) -> None:
        """A token was minted."""


class Tokens:
    """Mints join tokens for one worker."""

    def __init__(
        self,
        signer: Signer,
        *,
        ttl: timedelta,
        public_url: str,
        counter: TokenCounter | None = None,
        events: EventSink | None = None,
    ) -> None:
        """Sign with ``signer``; tokens live ``ttl``; clients connect to ``public_url``."""
        self._signer = signer
        self._ttl = int(ttl.total_seconds())
        self._public_url = public_url
        self._counter = counter
        self._events = events or NoEvents()

    @property
    def public_url(self) -> str:
        """The LiveKit URL clients connect to with these tokens."""
        return self._public_url

    def mint(
        self,
        *,
        identity: str,
        name: str,
        room: str,
        grants: Grants | None = None,
        profile: Profile | None = None,
    ) -> str:
        """A join token for ``room`` as ``identity``, shown as ``name``, with ``grants``
        narrowed to the default (never more than :class:`Grants` ``()`` allows) and the
        ``profile``'s metadata, attributes and room configuration.

        Counts ``aura_tokens_minted_total`` and emits ``aura.token.minted``.
        """
        if not identity or not room:
            raise ValueError("a join token needs an identity and a room")
        now = int(time.time())
        token = self._signer.sign(
            {
                "sub": identity,
                "nbf": now,
                "exp": now + self._ttl,
                "name": name,
                "video": DEFAULT_GRANTS.narrow(grants).video_claims(room),
                **(profile or NO_PROFILE).claims(),
            }
        )
        if self._counter is not None:
            self._counter.token_minted()
        self._events.emit(TokenMinted(room=room, identity=identity, display_name=name))
        return token
