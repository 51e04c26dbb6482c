"""What the service tells plugins it did: typed events on Sanic's signal bus.

Each event is a frozen dataclass whose ``name`` is a three-part signal name,
``<source>.<thing>.<happened>``: the service's own are ``aura.*``; LiveKit's webhook
events are ``livekit.*`` in the same scheme (:class:`LiveKitEvent` and its subclasses,
one per LiveKit event type, and :class:`OtherLiveKitEvent` for a type this version does
not know). A plugin subscribes with
``ctx.on(RoomCreated)`` (see :mod:`aura_livekit_backend.plugin`); the service emits
through an :class:`EventSink`.

Subscribers run after the request that caused the event, in a task of their own:
a slow one never delays the answer, a failing one never fails it — its failure is
logged with the request id and the other subscribers still run.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass, field, fields, is_dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, ClassVar, Protocol

from sanic import DefaultSanic

from .livekit.models import AgentJob, Egress, Ingress, Participant, RoomInfo, Track

if TYPE_CHECKING:
    from .eventlog import EventLog

__all__ = [
    "EVENTS",
    "LIVEKIT_EVENTS",
    "AgentJobEnded",
    "AgentJobStarted",
    "EgressEnded",
    "EgressStarted",
    "EgressUpdated",
    "Event",
    "EventSink",
    "IngressEnded",
    "IngressStarted",
    "LiveKitEvent",
    "OtherLiveKitEvent",
    "ParticipantConnectionAborted",
    "ParticipantJoined",
    "ParticipantLeft",
    "ParticipantRemoved",
    "RoomCreated",
    "RoomDeleted",
    "RoomFinished",
    "RoomStarted",
    "RoomUpdated",
    "SignalEvents",
    "TokenMinted",
    "TrackPublished",
    "TrackUnpublished",
    "subscriber",
]

logger = logging.getLogger("aura_livekit_backend.events")


@dataclass(frozen=True, slots=True)
class Event:
    """Something the service did. Subclasses name it and carry its payload."""

    #: The signal name: ``<source>.<thing>.<happened>``.
    name: ClassVar[str] = ""

    @property
    def room_name(self) -> str | None:
        """The name of the room the event is about, if it is about one."""
        room = getattr(self, "room", None)
        if isinstance(room, RoomInfo):
            return room.name
        return room if isinstance(room, str) else None

    def data(self) -> dict[str, Any]:
        """The payload as JSON-ready values (what the event log keeps and streams)."""
        return {field.name: _jsonable(getattr(self, field.name)) for field in fields(self)}


def _jsonable(value: Any) -> Any:
    if is_dataclass(value) and not isinstance(value, type):
        return {field.name: _jsonable(getattr(value, field.name)) for field in fields(value)}
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, (tuple, list)):
        return [_jsonable(item) for item in value]
    if isinstance(value, dict):
        return {str(key): _jsonable(item) for key, item in value.items()}
    return value


@dataclass(frozen=True, slots=True)
class RoomCreated(Event):
    """A room was created through the service."""

    name: ClassVar[str] = "aura.room.created"
    room: RoomInfo


@dataclass(frozen=True, slots=True)
class RoomUpdated(Event):
    """A room's topic, description or participant limit changed; ``room`` is the new state."""

    name: ClassVar[str] = "aura.room.updated"
    room: RoomInfo


@dataclass(frozen=True, slots=True)
class RoomDeleted(Event):
    """A room was closed through the service; ``room`` is what it was."""

    name: ClassVar[str] = "aura.room.deleted"
    room: RoomInfo


@dataclass(frozen=True, slots=True)
class TokenMinted(Event):
    """A join token was minted. Never carries the token itself."""

    name: ClassVar[str] = "aura.token.minted"
    #: The room's name.
    room: str
    identity: str
    #: The display name.
    display_name: str


@dataclass(frozen=True, slots=True)
class ParticipantRemoved(Event):
    """A participant was removed from a room through the service."""

    name: ClassVar[str] = "aura.participant.removed"
    room: RoomInfo
    identity: str


# -- LiveKit's events, from its webhooks --------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class LiveKitEvent(Event):
    """Something LiveKit reported by webhook. Subclasses name it and carry its payload.

    LiveKit may deliver one event twice: the service hands each ``id`` to subscribers
    once. Events of different rooms, and joins and leaves of different participants,
    may arrive out of order: order by ``created_at`` where it matters.
    """

    #: LiveKit's id for the event (``EV_…``); a redelivery carries the same one.
    id: str
    #: When LiveKit created the event (UTC, whole seconds).
    created_at: datetime


@dataclass(frozen=True, slots=True, kw_only=True)
class RoomStarted(LiveKitEvent):
    """A room was created in LiveKit (by the service, a client's join, or another tool)."""

    name: ClassVar[str] = "livekit.room.started"
    room: RoomInfo


@dataclass(frozen=True, slots=True, kw_only=True)
class RoomFinished(LiveKitEvent):
    """A room closed: deleted, or empty past its timeout."""

    name: ClassVar[str] = "livekit.room.finished"
    #: The room as it was when it closed.
    room: RoomInfo
    #: Why, lowercase: ``api_delete``, ``idle_timeout``, ``server_shutdown``, … ("": not said).
    reason: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class ParticipantJoined(LiveKitEvent):
    """Someone joined a room."""

    name: ClassVar[str] = "livekit.participant.joined"
    room: RoomInfo
    participant: Participant


@dataclass(frozen=True, slots=True, kw_only=True)
class ParticipantLeft(LiveKitEvent):
    """Someone left a room, or was disconnected from it."""

    name: ClassVar[str] = "livekit.participant.left"
    room: RoomInfo
    participant: Participant
    #: Why, lowercase: ``client_initiated``, ``duplicate_identity``, ``participant_removed``,
    #: ``room_deleted``, … ("": not said).
    reason: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class ParticipantConnectionAborted(LiveKitEvent):
    """Someone's connection failed while joining (they never fully joined)."""

    name: ClassVar[str] = "livekit.participant.connection_aborted"
    room: RoomInfo
    participant: Participant


@dataclass(frozen=True, slots=True, kw_only=True)
class TrackPublished(LiveKitEvent):
    """A participant published a track."""

    name: ClassVar[str] = "livekit.track.published"
    room: RoomInfo
    participant: Participant
    track: Track


@dataclass(frozen=True, slots=True, kw_only=True)
class TrackUnpublished(LiveKitEvent):
    """A participant stopped publishing a track."""

    name: ClassVar[str] = "livekit.track.unpublished"
    room: RoomInfo
    participant: Participant
    track: Track


@dataclass(frozen=True, slots=True, kw_only=True)
class _EgressEvent(LiveKitEvent):
    egress: Egress

    @property
    def room_name(self) -> str | None:
        """The egress's room."""
        return self.egress.room_name or None


@dataclass(frozen=True, slots=True, kw_only=True)
class EgressStarted(_EgressEvent):
    """A recording or stream out of a room started."""

    name: ClassVar[str] = "livekit.egress.started"


@dataclass(frozen=True, slots=True, kw_only=True)
class EgressUpdated(_EgressEvent):
    """An egress changed state."""

    name: ClassVar[str] = "livekit.egress.updated"


@dataclass(frozen=True, slots=True, kw_only=True)
class EgressEnded(_EgressEvent):
    """An egress ended: complete, failed or aborted (``egress.status``)."""

    name: ClassVar[str] = "livekit.egress.ended"


@dataclass(frozen=True, slots=True, kw_only=True)
class _IngressEvent(LiveKitEvent):
    ingress: Ingress

    @property
    def room_name(self) -> str | None:
        """The ingress's room."""
        return self.ingress.room_name or None


@dataclass(frozen=True, slots=True, kw_only=True)
class IngressStarted(_IngressEvent):
    """A stream into a room started publishing."""

    name: ClassVar[str] = "livekit.ingress.started"


@dataclass(frozen=True, slots=True, kw_only=True)
class IngressEnded(_IngressEvent):
    """A stream into a room ended."""

    name: ClassVar[str] = "livekit.ingress.ended"


@dataclass(frozen=True, slots=True, kw_only=True)
class _AgentJobEvent(LiveKitEvent):
    job: AgentJob

    @property
    def room_name(self) -> str | None:
        """The job's room."""
        return self.job.room_name or None


@dataclass(frozen=True, slots=True, kw_only=True)
class AgentJobStarted(_AgentJobEvent):
    """An agent started a job in a room."""

    name: ClassVar[str] = "livekit.agent_job.started"


@dataclass(frozen=True, slots=True, kw_only=True)
class AgentJobEnded(_AgentJobEvent):
    """An agent's job ended (``job.status`` says how)."""

    name: ClassVar[str] = "livekit.agent_job.ended"


@dataclass(frozen=True, slots=True, kw_only=True)
class OtherLiveKitEvent(LiveKitEvent):
    """An event type this version does not know (LiveKit adds some now and then):
    passed through as LiveKit sent it, rather than refused."""

    name: ClassVar[str] = "livekit.other.received"
    #: LiveKit's name for the event type, as sent (``room_metadata_changed``).
    type: str
    #: The room, when the event names one.
    room: RoomInfo | None = None
    #: The whole event as LiveKit sent it (its JSON object, camelCase keys).
    payload: dict[str, Any] = field(default_factory=dict, hash=False, compare=False)


#: LiveKit's event types (``WebhookEvent.event``) and the class each becomes.
LIVEKIT_EVENTS: dict[str, type[LiveKitEvent]] = {
    "room_started": RoomStarted,
    "room_finished": RoomFinished,
    "participant_joined": ParticipantJoined,
    "participant_left": ParticipantLeft,
    "participant_connection_aborted": ParticipantConnectionAborted,
    "track_published": TrackPublished,
    "track_unpublished": TrackUnpublished,
    "egress_started": EgressStarted,
    "egress_updated": EgressUpdated,
    "egress_ended": EgressEnded,
    "ingress_started": IngressStarted,
    "ingress_ended": IngressEnded,
    "agent_job_started": AgentJobStarted,
    "agent_job_ended": AgentJobEnded,
}

_EVERY_EVENT: tuple[type[Event], ...] = (
    RoomCreated,
    RoomUpdated,
    RoomDeleted,
    TokenMinted,
    ParticipantRemoved,
    *LIVEKIT_EVENTS.values(),
    OtherLiveKitEvent,
)
#: Every event the service emits, by name: its own and LiveKit's.
EVENTS: dict[str, type[Event]] = {event.name: event for event in _EVERY_EVENT}


class EventSink(Protocol):
    """Where the service's domain code reports what it did."""

    def emit(self, event: Event) -> None:
        """Report ``event``; returns at once, whatever subscribers do."""


class NoEvents:
    """An :class:`EventSink` nobody listens to (the ``plugins`` listing, unit tests)."""

    def emit(self, event: Event) -> None:
        """Drop ``event``."""


Subscriber = Callable[[Any], Awaitable[None]]


def subscriber(name: str, handler: Subscriber) -> Callable[..., Awaitable[None]]:
    """``handler`` as a Sanic signal handler for ``name``, its failures contained."""

    async def handle(**context: Any) -> None:
        try:
            await handler(context["event"])
        except Exception:
            # The request id rides in the task's copy of the request's context.
            logger.exception(
                "subscriber %s of %s failed",
                getattr(handler, "__qualname__", repr(handler)),
                name,
            )

    handle.__qualname__ = f"subscriber({name})"
    return handle


#: Names of the service's own events, which :meth:`SignalEvents.emit` appends to the
#: event log; ``livekit.*`` events are appended by the webhook receiver, under LiveKit's id.
OWN_EVENTS_PREFIX = "aura."
#: Seconds between two "the event log failed" warnings from one worker.
_WARN_EVERY = 60.0


class SignalEvents:
    """Emits events on an app's signal bus, for the names someone subscribed to.

    With an event log, every one of the service's own events is also appended to it,
    subscribed to or not, in a task of its own: the request never waits for the log,
    and a log that fails costs a warning (at most one a minute), never the request.
    """

    def __init__(self, app: DefaultSanic, log: EventLog | None = None) -> None:
        """Emit on ``app`` and append to ``log``; :meth:`listen_to` says which names
        have subscribers."""
        self._app = app
        self._log = log
        self._names: frozenset[str] = frozenset()
        # Tasks must be referenced until done, or the loop may drop them.
        self._pending: set[asyncio.Task[Any]] = set()
        self._warned_at = -_WARN_EVERY
        self._lost = 0

    def listen_to(self, names: set[str]) -> None:
        """Set the event names that have at least one subscriber (at set-up)."""
        self._names = frozenset(names)

    def emit(self, event: Event) -> None:
        """Append ``event`` to the log and dispatch it (if anyone listens), in tasks."""
        if self._log is not None and event.name.startswith(OWN_EVENTS_PREFIX):
            self._track(self._append(self._log, event, time.time()))
        if event.name not in self._names:
            return  # the common case costs one set lookup
        self._track(
            self._app.dispatch(
                event.name, context={"event": event}, fail_not_found=False, inline=True
            )
        )

    def _track(self, work: Coroutine[Any, Any, Any]) -> None:
        task = asyncio.get_running_loop().create_task(work)
        self._pending.add(task)
        task.add_done_callback(self._pending.discard)

    async def _append(self, log: EventLog, event: Event, at: float) -> None:
        try:
            # A fresh id: the service's own events are never delivered twice.
            await log.append(
                f"aura-{uuid.uuid4().hex}", event.name, event.room_name, at, event.data()
            )
        except Exception as exc:
            self._lost += 1
            now = time.monotonic()
            if now - self._warned_at >= _WARN_EVERY:
                self._warned_at = now
                logger.warning(
                    "event log: %s not appended (%d lost since the last warning): %s",
                    event.name,
                    self._lost,
                    exc,
                )
                self._lost = 0
