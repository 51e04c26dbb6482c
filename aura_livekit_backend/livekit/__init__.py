"""Everything that speaks to LiveKit, one module per concept. Internal to the service.

Plugins never import from here: :mod:`aura_livekit_backend.plugin` hands them
``ctx.rooms``, ``ctx.tokens`` and ``ctx.joins`` and re-exports the values and errors
they see. Protobuf, Twirp and the metadata JSON stay inside this package; what leaves
it is plain Python, and nothing here knows about HTTP.

- :mod:`.signing` — the only holder of the API secret: service and join JWTs;
- :mod:`.transport` — the HTTP session, signed calls, timeout, error translation;
- :mod:`.metadata` — the service's room facts in LiveKit's room metadata;
- :mod:`.rooms`, :mod:`.listing`, :mod:`.sids` — rooms, the shared listing, the sid cache;
- :mod:`.tokens` — join tokens and their grants; :mod:`.joins` — the join rules;
- :mod:`.webhooks` — LiveKit's webhooks verified (the other reader of the secrets) and
  read into typed events;
- :class:`LiveKit` — one worker's set of them, opened in the worker and closed on stop.
"""

from __future__ import annotations

from typing import Protocol

from pydantic import SecretStr

from ..events import EventSink
from ..settings import Settings
from .gateway import Gateway
from .joins import Gate, Joins
from .listing import RoomEncoder
from .rooms import RoomCounter, Rooms
from .signing import Signer
from .tokens import TokenCounter, Tokens
from .transport import CallObserver, Transport
from .webhooks import WebhookVerifier, webhook_keys

__all__ = ["LiveKit", "Observer"]


class Observer(CallObserver, TokenCounter, RoomCounter, Protocol):
    """What the metrics implement for this package: calls, tokens and rooms."""


class LiveKit:
    """One worker's LiveKit parts. Built without I/O; :meth:`open` in the worker."""

    def __init__(
        self,
        settings: Settings,
        *,
        observer: Observer | None = None,
        events: EventSink | None = None,
        gate: Gate | None = None,
        encode_room: RoomEncoder | None = None,
    ) -> None:
        """Wire the parts for ``settings``; ``observer`` counts calls and tokens;
        ``gate`` (rate limits and policies) admits creates and joins; ``encode_room``
        writes a listed room as JSON (the API's shape: this package knows no HTTP)."""
        signer = Signer(
            settings.livekit_api_key or "", settings.livekit_api_secret or SecretStr("")
        )
        self.transport = Transport(
            settings.livekit_url, signer, timeout=settings.livekit_timeout, observer=observer
        )
        self.rooms = Rooms(
            self.transport,
            sid_cache_size=settings.sid_cache_size,
            list_cache_seconds=settings.room_list_cache_seconds,
            events=events,
            counter=observer,
            encode_room=encode_room,
        )
        self.tokens = Tokens(
            signer,
            ttl=settings.token_ttl,
            public_url=settings.public_url,
            counter=observer,
            events=events,
        )
        self.joins = Joins(
            self.rooms, self.tokens, duplicates=settings.duplicate_username, gate=gate
        )
        self.gateway = Gateway(self.rooms, self.tokens)
        #: Checks LiveKit's webhook deliveries (LIVEKIT_API_KEY and AURA_WEBHOOK_KEYS).
        self.webhooks = WebhookVerifier(webhook_keys(settings))

    async def open(self) -> None:
        """Open the connection to LiveKit; call inside the worker's running event loop."""
        await self.transport.open()

    async def close(self) -> None:
        """Close it; safe to call twice."""
        self.rooms.close()
        await self.transport.close()
