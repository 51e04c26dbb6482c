"""Join tokens: what a person gets to connect to a room, and the grants it carries.

The grants live here and nowhere else: publish, subscribe and data in one room, for
``AURA_TOKEN_TTL``. The token is signed without livekit-api's per-call dataclass walk
(a tenth of a join's CPU); the tests check it with livekit-api's own TokenVerifier.
"""

from __future__ import annotations

import time
from datetime import timedelta
from typing import Protocol

from ..events import EventSink, NoEvents, TokenMinted
from .signing import Signer

__all__ = ["JOIN_GRANTS", "TokenCounter", "Tokens"]

#: What every join token allows, in the room it names (LiveKit's claim names).
JOIN_GRANTS = {"roomJoin": True, "canPublish": True, "canSubscribe": True, "canPublishData": True}


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

    def mint(self, *, identity: str, name: str, room: str) -> str:
        """A join token for ``room`` as ``identity``, shown as ``name``.

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
                "video": {**JOIN_GRANTS, "room": room},
            }
        )
        if self._counter is not None:
            self._counter.token_minted()
        self._events.emit(TokenMinted(room=room, identity=identity, display_name=name))
        return token
