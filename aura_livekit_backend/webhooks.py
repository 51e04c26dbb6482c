"""Taking in one LiveKit webhook delivery: verified, logged once, then told to plugins.

:class:`WebhookIngest` is the whole rule, with no HTTP in it (the endpoint translates):

1. verify the delivery as LiveKit signs it, and read it into a typed
   :class:`~aura_livekit_backend.events.LiveKitEvent` — or refuse it
   (:class:`WebhookRejected`, :class:`WebhookMalformed`) before anything is kept;
2. append it to the event log under LiveKit's event id. LiveKit does not deduplicate,
   so the same id may arrive twice, on two workers or two replicas: the log keeps the
   first, and the second is a *duplicate* — acknowledged. A log that cannot be written
   raises :class:`EventLogUnavailable`, so the endpoint answers 503 and LiveKit retries;
3. :meth:`WebhookIngest.publish`, called once LiveKit has its answer, hands the event
   to the plugins' subscribers — none ever runs before the answer — if no delivery of
   its id has been told yet (:meth:`EventLog.mark_told`). Kept is not told: a delivery
   kept but answered 503 (the log's reply came too late, the request was cancelled)
   is told when LiveKit's retry arrives as a duplicate, and exactly one delivery of an
   id, on any worker or replica, tells it.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass
from typing import Literal, Protocol

# The LiveKit package first: events.py imports its models, whose package imports events.
from . import livekit as _livekit  # noqa: F401
from .eventlog import EventLog, EventLogUnavailable
from .events import EventSink, LiveKitEvent
from .livekit.webhooks import WebhookMalformed, WebhookRejected, WebhookVerifier, read_event

__all__ = [
    "EventLogUnavailable",
    "WebhookCounter",
    "WebhookDelivery",
    "WebhookIngest",
    "WebhookMalformed",
    "WebhookRejected",
]

logger = logging.getLogger("aura_livekit_backend.webhooks")

#: Seconds between two warnings that deliveries were refused for want of a log.
WARN_EVERY = 60.0

#: What became of a delivery: kept and told (accepted), already kept (duplicate),
#: refused (rejected: not LiveKit's, or not readable), or not kept (unavailable: 503).
Outcome = Literal["accepted", "duplicate", "rejected", "unavailable"]


class WebhookCounter(Protocol):
    """Counts deliveries (the metrics implement it)."""

    def webhook_received(self, event: str, outcome: str) -> None:
        """Count one delivery of ``event`` (its name) and what became of it."""


@dataclass(frozen=True, slots=True)
class WebhookDelivery:
    """A delivery taken in: its event, and where the log put it."""

    event: LiveKitEvent
    #: The event's position in the log; None when the log had its id already.
    position: int | None

    @property
    def duplicate(self) -> bool:
        """True when this id was taken in before (told only if no delivery of it was)."""
        return self.position is None


class WebhookIngest:
    """Takes in LiveKit's webhook deliveries for one worker."""

    def __init__(
        self,
        verifier: WebhookVerifier,
        log: EventLog | None,
        events: EventSink,
        *,
        counter: WebhookCounter | None = None,
    ) -> None:
        """Verify with ``verifier``, keep in ``log`` (None: no log, every delivery is
        unavailable), tell subscribers through ``events``, count with ``counter``."""
        self._verifier = verifier
        self._log = log
        self._events = events
        self._counter = counter
        self._warned_at = -WARN_EVERY
        self._refused = 0
        self._telling: set[asyncio.Task[None]] = set()

    async def ingest(self, body: bytes, authorization: str | None) -> WebhookDelivery:
        """Verify ``body`` against its ``Authorization`` header and keep its event once.

        Raises :class:`WebhookRejected` (not signed by a known key over these bytes),
        :class:`WebhookMalformed` (signed, but not a usable ``WebhookEvent``) or
        :class:`EventLogUnavailable` (nothing kept: LiveKit should retry). Nothing of
        the body or the header is logged.
        """
        try:
            self._verifier.verify(body, authorization)
        except WebhookRejected:
            self._count("unverified", "rejected")
            raise
        try:
            event = read_event(body)
        except WebhookMalformed:
            self._count("unreadable", "rejected")
            raise
        try:
            if self._log is None:
                raise EventLogUnavailable("no event log is open")
            position = await self._log.append(
                event.id, event.name, event.room_name, event.created_at.timestamp(), event.data()
            )
        except EventLogUnavailable as exc:
            self._count(event.name, "unavailable")
            self._warn(exc)
            raise
        self._count(event.name, "duplicate" if position is None else "accepted")
        return WebhookDelivery(event, position)

    def publish(self, delivery: WebhookDelivery) -> None:
        """Hand the delivery's event to the subscribers (in tasks of their own) unless a
        delivery of its id was told already; returns at once. Call it after answering
        LiveKit."""
        if self._log is None:
            return
        task = asyncio.get_running_loop().create_task(self._tell(self._log, delivery))
        self._telling.add(task)
        task.add_done_callback(self._telling.discard)

    async def _tell(self, log: EventLog, delivery: WebhookDelivery) -> None:
        try:
            first = await log.mark_told(delivery.event.id)
        except EventLogUnavailable as exc:
            # The log cannot say: an event kept just now by this delivery is told (no
            # other delivery is likely to have been), a duplicate is not (the delivery
            # that kept it most likely told it).
            first = not delivery.duplicate
            logger.warning(
                "webhooks: cannot record that event %s was told (%s); %s",
                delivery.event.id,
                exc,
                "telling it" if first else "not telling it again",
            )
        if first:
            self._events.emit(delivery.event)

    def _warn(self, problem: EventLogUnavailable) -> None:
        # LiveKit retries a 503 within seconds: one line a minute says why, not one each.
        self._refused += 1
        now = time.monotonic()
        if now - self._warned_at >= WARN_EVERY:
            self._warned_at = now
            logger.warning(
                "webhooks: %d delivery(ies) answered 503 since the last warning, for the "
                "event log: %s",
                self._refused,
                problem,
            )
            self._refused = 0

    def _count(self, event: str, outcome: Outcome) -> None:
        if self._counter is not None:
            self._counter.webhook_received(event, outcome)
