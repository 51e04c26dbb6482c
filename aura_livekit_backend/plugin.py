"""The plugin contract: everything an endpoint plugin may rely on, in one module.

Every endpoint of the service, the built-in ones included, is a plugin: a
:class:`Plugin` object named by an entry point in the group :data:`ENTRY_POINT_GROUP`::

    # pyproject.toml of the plugin's distribution
    [project.entry-points."aura_livekit_backend.plugins"]
    hello = "my_package.hello:plugin"

    # my_package/hello.py
    from sanic import json
    from aura_livekit_backend.plugin import Plugin, PluginContext

    def setup(ctx: PluginContext) -> None:
        @ctx.blueprint.get("/hello")
        async def hello(request):
            return json({"hello": ctx.settings.default_room_topic})

    plugin = Plugin(setup=setup, description="Says hello.")

The entry point's name is the plugin's name. ``setup`` runs once per app (in the
main process and in every worker), must not do I/O, and adds its routes to
``ctx.blueprint``, which is mounted under the API prefix. Per-worker resources of
its own go in the blueprint's ``before_server_start``/``after_server_stop``
listeners. LiveKit is reached through ``ctx.rooms``, ``ctx.tokens`` and ``ctx.joins``
(:class:`Rooms`, :class:`Tokens`, :class:`Joins`: the very objects the built-in
endpoints use, open while the server runs). ``ctx.on(RoomCreated)`` subscribes to
what the service does, ``ctx.on(ParticipantJoined)`` to what LiveKit reports by
webhook; ``ctx.read_settings(Model)`` reads the plugin's own settings.
``ctx.events`` (:class:`Events`) reads the event log, every worker's and replica's
events in one order: a page (``await ctx.events.read(after=…)``), or live
(``async for entry in ctx.events.follow(after=…)``).

Path parameters of routes on ``ctx.blueprint`` are percent-decoded once, always.

Access: with ``AURA_API_KEYS`` set, or ``AURA_AUTH=jwt``, every route needs one of the
service's keys or a valid JWT. A route added with ``ctx_api_keys=False``
(``@ctx.blueprint.get("/x", ctx_api_keys=False)``) is exempt: a health check, or a
route that checks keys of its own with :class:`BearerKeys`, as the moderation plugin
does. ``caller_of(request)`` is who called (a :class:`Caller`); pass it to
``ctx.joins.join(…, caller=…)`` so the join rules apply to that caller. Policies
(``ctx.add_policy``) decide every create and join.

Errors: raise :class:`ApiError` for the client's mistakes and wrap LiveKit calls in
:func:`failing_to`; both answer in the service's one error shape.
"""

from __future__ import annotations

import builtins
import re
from collections.abc import Awaitable, Callable, Collection
from dataclasses import dataclass, field
from types import TracebackType
from typing import Protocol, TypeVar

from livekit import api
from pydantic_settings import BaseSettings
from sanic import Blueprint

from .access import BearerKeys, caller_of
from .auth.callers import Caller
from .auth.policy import ClaimRule, Decision, Policies, Policy, PolicyRequest
from .errors import ApiError, error_body, failing_to
from .event_feed import EventFeed, EventPage, NoEventLog
from .eventlog import EventLogUnavailable, LoggedEvent
from .events import (
    AgentJobEnded,
    AgentJobStarted,
    EgressEnded,
    EgressStarted,
    EgressUpdated,
    Event,
    IngressEnded,
    IngressStarted,
    LiveKitEvent,
    OtherLiveKitEvent,
    ParticipantConnectionAborted,
    ParticipantJoined,
    ParticipantLeft,
    ParticipantRemoved,
    RoomCreated,
    RoomDeleted,
    RoomFinished,
    RoomStarted,
    RoomUpdated,
    TokenMinted,
    TrackPublished,
    TrackUnpublished,
    subscriber,
)
from .livekit.errors import (
    IdentityTaken,
    LiveKitError,
    LiveKitRejected,
    LiveKitUnavailable,
    ParticipantNotFound,
    RoomFull,
    RoomLimitFixed,
    RoomNotFound,
)
from .livekit.listing import RoomSnapshot
from .livekit.models import (
    AgentJob,
    AgentRequest,
    Egress,
    Ingress,
    Participant,
    RoomInfo,
    RoomOptions,
    RoomPage,
    Ticket,
    Track,
    room_position,
)
from .livekit.tokens import Grants, Profile
from .metrics import Metrics
from .schemas import (
    ErrorReply,
    RoomReply,
    error_responses,
    json_content,
    json_reply,
    json_schema,
    room_reply,
)
from .settings import ApiKeys, Settings, read_plugin_settings
from .timestamps import iso_ms, utc_now
from .validation import (
    MAX_DESCRIPTION,
    MAX_ROOM_ID,
    MAX_TOPIC,
    MAX_USER_NAME,
    PARTICIPANT_CAP,
    DescriptionText,
    ParticipantLimit,
    RequiredTopicText,
    RoomIdText,
    TopicText,
    UserNameText,
    check_text,
    json_body,
    path_parameter,
    path_text,
)
from .webhooks import WebhookDelivery, WebhookMalformed, WebhookRejected

__all__ = [
    "ENTRY_POINT_GROUP",
    "MAX_DESCRIPTION",
    "MAX_ROOM_ID",
    "MAX_TOPIC",
    "MAX_USER_NAME",
    "PARTICIPANT_CAP",
    "PLUGIN_NAME",
    "AgentJob",
    "AgentJobEnded",
    "AgentJobStarted",
    "AgentRequest",
    "ApiError",
    "ApiKeys",
    "BearerKeys",
    "Caller",
    "ClaimRule",
    "Decision",
    "DescriptionText",
    "Egress",
    "EgressEnded",
    "EgressStarted",
    "EgressUpdated",
    "ErrorReply",
    "Event",
    "EventLogUnavailable",
    "EventPage",
    "EventStream",
    "Events",
    "Grants",
    "IdentityTaken",
    "Ingress",
    "IngressEnded",
    "IngressStarted",
    "Joins",
    "LiveKitError",
    "LiveKitEvent",
    "LiveKitGateway",
    "LiveKitRejected",
    "LiveKitUnavailable",
    "LoggedEvent",
    "Metrics",
    "OtherLiveKitEvent",
    "Participant",
    "ParticipantConnectionAborted",
    "ParticipantJoined",
    "ParticipantLeft",
    "ParticipantLimit",
    "ParticipantNotFound",
    "ParticipantRemoved",
    "Plugin",
    "PluginContext",
    "Policy",
    "PolicyRequest",
    "Profile",
    "RequiredTopicText",
    "RoomCreated",
    "RoomDeleted",
    "RoomFinished",
    "RoomFull",
    "RoomIdText",
    "RoomInfo",
    "RoomLimitFixed",
    "RoomNotFound",
    "RoomOptions",
    "RoomPage",
    "RoomReply",
    "RoomSnapshot",
    "RoomStarted",
    "RoomUpdated",
    "Rooms",
    "Settings",
    "Ticket",
    "TokenMinted",
    "Tokens",
    "TopicText",
    "Track",
    "TrackPublished",
    "TrackUnpublished",
    "UserNameText",
    "WebhookDelivery",
    "WebhookMalformed",
    "WebhookRejected",
    "Webhooks",
    "caller_of",
    "check_text",
    "error_body",
    "error_responses",
    "failing_to",
    "iso_ms",
    "json_body",
    "json_content",
    "json_reply",
    "json_schema",
    "path_parameter",
    "path_text",
    "room_position",
    "room_reply",
    "utc_now",
]

#: The entry-point group plugins register in. A change to this contract that breaks
#: plugins gets a new group name (``…plugins.v2``), so old plugins fail loudly.
ENTRY_POINT_GROUP = "aura_livekit_backend.plugins"

#: What a plugin's name (its entry point's name) must look like.
PLUGIN_NAME = re.compile(r"[a-z][a-z0-9_-]{0,63}")

E = TypeVar("E", bound=Event)
S = TypeVar("S", bound=BaseSettings)


class Rooms(Protocol):
    """``ctx.rooms``: LiveKit's rooms. Every method is async and may raise
    :class:`LiveKitError` (wrap calls in :func:`failing_to`).

    ``room_id`` may be a room's name or its sid. Changes emit ``aura.room.*`` events.
    """

    async def get(self, room_id: str) -> RoomInfo:
        """The room, or :class:`RoomNotFound`."""
        ...

    async def list(
        self, *, limit: int | None = None, after: tuple[int, str] | None = None
    ) -> RoomPage:
        """Active rooms, oldest first: all, or ``limit`` after a :func:`room_position`."""
        ...

    async def snapshot(self) -> RoomSnapshot:
        """Every active room at one moment (reused per worker for a second); derive once
        per snapshot with ``snapshot.memo(key, derive)``."""
        ...

    async def create(
        self,
        *,
        topic: str,
        description: str,
        max_participants: int,
        created_by: str,
        options: RoomOptions | None = None,
        name: str | None = None,
    ) -> RoomInfo:
        """A new room with a fresh name (or ``name``, answered as it is if it exists) and
        ``options`` (timeouts, the app's metadata, agents). Emits :class:`RoomCreated`."""
        ...

    async def dispatch(self, room: str, agent: AgentRequest) -> bool:
        """Dispatch ``agent`` to the room *named* ``room`` unless it has a dispatch of that
        agent already; True when this call dispatched it."""
        ...

    async def dispatches(self, room_id: str) -> builtins.list[api.AgentDispatch]:
        """The room's agent dispatches (livekit-api's ``AgentDispatch`` messages)."""
        ...

    async def add_dispatch(self, room_id: str, agent: AgentRequest) -> api.AgentDispatch:
        """Dispatch ``agent`` to the room, whatever is there already."""
        ...

    async def delete_dispatch(self, room_id: str, dispatch_id: str) -> api.AgentDispatch:
        """Delete the room's dispatch ``dispatch_id`` (a LiveKitError if LiveKit has none);
        returns what it was."""
        ...

    async def update(
        self,
        room_id: str,
        *,
        topic: str | None = None,
        description: str | None = None,
        max_participants: int | None = None,
    ) -> RoomInfo:
        """Change a room's facts (``None``: unchanged); a limit only goes down
        (:class:`RoomLimitFixed`). Emits :class:`RoomUpdated`."""
        ...

    async def delete(self, room_id: str) -> RoomInfo:
        """Close the room, disconnecting everyone; returns what it was. Emits
        :class:`RoomDeleted`."""
        ...

    # builtins.list: in this class, a bare `list` is the method above.
    async def participants(self, room_id: str) -> tuple[RoomInfo, builtins.list[Participant]]:
        """The room and everyone in it, in order of joining."""
        ...

    async def is_connected(self, room: str, identity: str) -> bool:
        """Whether ``identity`` is connected in the room *named* ``room`` now."""
        ...

    async def remove_participant(self, room_id: str, identity: str) -> RoomInfo:
        """Disconnect ``identity`` (:class:`ParticipantNotFound` if not there). Emits
        :class:`ParticipantRemoved`."""
        ...

    async def mute_track(
        self, room_id: str, identity: str, track_sid: str, *, muted: bool = True
    ) -> Track:
        """Mute (``muted=False``: unmute, which LiveKit allows only with its
        ``room.enable_remote_unmute``) a track ``identity`` publishes (its sid, ``TR_…``);
        the track as it is now. :class:`ParticipantNotFound` when the participant or the
        track is not there."""
        ...

    async def ping(self) -> None:
        """One cheap call; raises :class:`LiveKitError` when LiveKit cannot answer."""
        ...


class Tokens(Protocol):
    """``ctx.tokens``: join tokens. Nothing here is async."""

    @property
    def public_url(self) -> str:
        """The LiveKit URL clients connect to with these tokens (a property)."""
        ...

    def mint(
        self,
        *,
        identity: str,
        name: str,
        room: str,
        grants: Grants | None = None,
        profile: Profile | None = None,
    ) -> str:
        """A join token (``AURA_TOKEN_TTL``) with ``grants`` (default: publish, subscribe,
        data; never more) and the ``profile``'s metadata, attributes and agents. Already
        counts ``aura_tokens_minted_total`` and emits :class:`TokenMinted`: do not count
        again."""
        ...


class Joins(Protocol):
    """``ctx.joins``: the core's join rules (who the caller joins as, its rate limit,
    the room exists, the policies, ``AURA_DUPLICATE_USERNAME``, not full), as data or
    domain errors (wrap calls in :func:`failing_to`).

    ``caller`` is :func:`caller_of` the request: a person (JWT) joins as itself, a
    backend (API key) or anonymous caller as ``user_name``. ``caller=None`` is the
    plugin itself, trusted to act for ``user_name``.
    """

    def identity_for(self, user_name: str) -> str:
        """The identity a token for ``user_name`` carries (not async)."""
        ...

    async def admit(
        self, room_id: str, user_name: str | None = None, *, caller: Caller | None = None
    ) -> tuple[RoomInfo, str]:
        """The room and the identity to mint for; raises :class:`RoomNotFound`,
        :class:`RoomFull`, :class:`IdentityTaken`, a policy's or rate limit's refusal,
        or :class:`LiveKitError`."""
        ...

    async def join(
        self,
        room_id: str,
        user_name: str | None = None,
        *,
        caller: Caller | None = None,
        profile: Profile | None = None,
    ) -> Ticket:
        """:meth:`admit`, then a token with the grants the policies leave and ``profile``
        (its agents dispatched explicitly): the whole join, as ``POST /token`` does it."""
        ...

    async def create(
        self,
        *,
        topic: str,
        description: str,
        max_participants: int,
        user_name: str | None = None,
        caller: Caller | None = None,
        profile: Profile | None = None,
        options: RoomOptions | None = None,
        name: str | None = None,
    ) -> Ticket:
        """A new room (``createdBy``: the creator's identity; ``name``: that room, created
        unless it exists) with ``options`` and the creator's token with ``profile``,
        after the rate limit and the policies: the whole ``POST /room/create``."""
        ...

    def ticket(
        self,
        room: RoomInfo,
        user_name: str,
        *,
        identity: str | None = None,
        grants: Grants | None = None,
        profile: Profile | None = None,
    ) -> Ticket:
        """A token for ``room`` without the checks (not async)."""
        ...


class Webhooks(Protocol):
    """``ctx.webhooks``: LiveKit's webhook deliveries taken in, as the built-in
    ``POST /livekit/webhook`` does (a plugin receiving them on a route of its own uses
    the same two steps)."""

    async def ingest(self, body: bytes, authorization: str | None) -> WebhookDelivery:
        """Verify the raw ``body`` against its ``Authorization`` header (LiveKit's bare
        JWT) and append its event to the event log once. Raises :class:`WebhookRejected`
        (answer 401), :class:`WebhookMalformed` (400) or :class:`EventLogUnavailable`
        (503: LiveKit retries). A ``duplicate`` delivery (an id taken in before) should
        be answered 200 all the same."""
        ...

    def publish(self, delivery: WebhookDelivery) -> None:
        """Hand the event to the subscribers (``ctx.on``), unless a delivery of its id was
        told already (a duplicate is told when the one that kept it never was: it was
        answered 503). Returns at once. Call it after the answer has been sent: no
        subscriber may delay it."""
        ...


class LiveKitGateway(Protocol):
    """``ctx.livekit``, the contract's first face, kept for plugins written against it:
    prefer ``ctx.rooms``/``ctx.tokens``. ``mint_token`` is not async; ``public_url`` is
    a property; the rest are."""

    @property
    def public_url(self) -> str:
        """Same as ``ctx.tokens.public_url``."""
        ...

    async def get_room(self, room_id: str) -> RoomInfo:
        """Same as ``ctx.rooms.get``."""
        ...

    async def list_rooms(
        self, *, limit: int | None = None, after: tuple[int, str] | None = None
    ) -> RoomPage:
        """Same as ``ctx.rooms.list``."""
        ...

    async def create_room(
        self, *, topic: str, description: str, max_participants: int, created_by: str
    ) -> RoomInfo:
        """Same as ``ctx.rooms.create``."""
        ...

    async def update_room(
        self,
        room_id: str,
        *,
        topic: str | None = None,
        description: str | None = None,
        max_participants: int | None = None,
    ) -> RoomInfo:
        """Same as ``ctx.rooms.update``."""
        ...

    async def delete_room(self, room_id: str) -> RoomInfo:
        """Same as ``ctx.rooms.delete``."""
        ...

    async def list_participants(self, room_id: str) -> tuple[RoomInfo, list[Participant]]:
        """Same as ``ctx.rooms.participants``."""
        ...

    async def is_connected(self, room: str, identity: str) -> bool:
        """Same as ``ctx.rooms.is_connected``."""
        ...

    async def remove_participant(self, room_id: str, identity: str) -> RoomInfo:
        """Same as ``ctx.rooms.remove_participant``."""
        ...

    def mint_token(self, *, identity: str, name: str, room: str) -> str:
        """Same as ``ctx.tokens.mint``."""
        ...

    async def ping(self) -> None:
        """Same as ``ctx.rooms.ping``."""
        ...


class EventStream(Protocol):
    """What ``ctx.events.follow`` returns: log entries in order, caught up from the log,
    then live, with no gap and no duplicate between the two.

    ``async for entry in stream`` waits for each entry; the loop ends when the worker
    stops. Use ``async with`` (or :meth:`aclose`) to stop following early.
    """

    def __aiter__(self) -> EventStream:
        """The stream is its own iterator."""
        ...

    async def __anext__(self) -> LoggedEvent:
        """The next entry, however long it takes to come."""
        ...

    async def next(self, timeout: float | None = None) -> LoggedEvent | None:
        """The next entry, or None when none came within ``timeout`` seconds (send a
        heartbeat, check something, and ask again). Raises StopAsyncIteration once the
        worker stops, :class:`EventLogUnavailable` when catching up needs the log and
        it cannot be read (ask again later: nothing is lost). Safe to cancel."""
        ...

    async def aclose(self) -> None:
        """Stop following."""
        ...

    async def __aenter__(self) -> EventStream:
        """Follow until the ``async with`` block ends."""
        ...

    async def __aexit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        """Stop following."""
        ...


class Events(Protocol):
    """``ctx.events``: the event log, LiveKit's events and the service's own, from every
    worker and replica, each entry a :class:`LoggedEvent` with a ``position`` that only
    grows.

    Filters: ``rooms`` (room names; an entry about none of them is left out) and
    ``names`` (event names, where one ending in ``.`` is a prefix:
    ``"livekit.participant."``); empty: everything. Every method raises
    :class:`EventLogUnavailable` when the log cannot be read (Redis down).
    """

    async def read(
        self,
        *,
        after: int = 0,
        limit: int = 100,
        rooms: Collection[str] = (),
        names: Collection[str] = (),
    ) -> EventPage:
        """Up to ``limit`` entries past position ``after``, oldest first; pass the page's
        ``next`` as ``after`` to read on."""
        ...

    def follow(
        self,
        *,
        after: int | None = None,
        rooms: Collection[str] = (),
        names: Collection[str] = (),
    ) -> EventStream:
        """Every entry past ``after`` (None: from now on), as the log gets it::

            async with ctx.events.follow(names=["livekit.room."]) as stream:
                async for entry in stream:
                    print(entry.position, entry.name, entry.room, entry.data)

        One task per worker reads the log and fans entries out; a follower that falls
        more than ``AURA_EVENTS_BUFFER`` entries behind is caught up from the log again,
        so a slow loop loses nothing and never holds the worker up."""
        ...

    async def last_position(self) -> int:
        """The newest entry's position (0 for an empty log)."""
        ...


def _no_events() -> Events:
    return EventFeed(NoEventLog())


@dataclass(frozen=True)
class PluginContext:
    """What a plugin's ``setup`` is handed."""

    #: The plugin's name, as its entry point spells it.
    name: str
    #: The service's settings (read-only; the LiveKit secret is a ``SecretStr``).
    settings: Settings
    #: Where the plugin's routes go; mounted under ``settings.api_prefix``.
    blueprint: Blueprint
    #: LiveKit's rooms, for handlers and listeners while the server runs.
    rooms: Rooms
    #: Join tokens.
    tokens: Tokens
    #: The join rules.
    joins: Joins
    #: The contract's first face on the same parts (kept for older plugins).
    livekit: LiveKitGateway
    #: LiveKit's webhook deliveries taken in (verified, logged once, told to subscribers).
    webhooks: Webhooks
    #: The worker's Prometheus metrics, or None when AURA_METRICS is off.
    metrics: Metrics | None = None
    #: The event log: read a page, or follow it live.
    events: Events = field(default_factory=_no_events)
    #: Security schemes declared with :meth:`declare_bearer_auth`, by name.
    bearer_schemes: dict[str, str] = field(default_factory=dict)
    #: Event names this plugin subscribed to with :meth:`on`.
    subscriptions: set[str] = field(default_factory=set)
    #: Every policy asked on create and join (the service's, shared by all plugins).
    policies: Policies = field(default_factory=Policies)

    def add_policy(self, policy: Policy) -> None:
        """Have ``policy`` decide every create and join, after those added before::

            class HostsOnly:
                async def decide(self, request: PolicyRequest) -> Decision:
                    roles = request.caller.claims.get("roles", [])
                    if request.action == "create" and "host" not in roles:
                        return Decision.deny("only hosts create rooms")
                    return Decision.allow()

            ctx.add_policy(HostsOnly())

        All policies must allow; each may only narrow the grants (:class:`Grants`).
        """
        self.policies.add(policy)

    def declare_bearer_auth(self, scheme: str, description: str = "") -> None:
        """Document an HTTP bearer scheme for OpenAPI; routes name it with ``openapi.secured``."""
        self.bearer_schemes[scheme] = description

    def on(
        self, event: type[E] | str
    ) -> Callable[[Callable[[E], Awaitable[None]]], Callable[[E], Awaitable[None]]]:
        """Subscribe an async function to ``event`` (a class such as :class:`RoomCreated`,
        or a name such as ``"aura.room.created"``)::

            @ctx.on(RoomCreated)
            async def created(event: RoomCreated) -> None: ...

        It runs after the request that caused the event, in its own task: it never
        delays or fails that request; an exception it raises is logged with the
        request id.
        """
        name = event if isinstance(event, str) else event.name
        if name.count(".") != 2:
            raise ValueError(
                f"an event name has three parts, <source>.<thing>.<happened>: {name!r}"
            )

        def subscribe(handler: Callable[[E], Awaitable[None]]) -> Callable[[E], Awaitable[None]]:
            self.blueprint.signal(name)(subscriber(name, handler))
            self.subscriptions.add(name)
            return handler

        return subscribe

    def read_settings(self, model: type[S]) -> S:
        """The plugin's own settings: ``model`` (a ``pydantic_settings.BaseSettings``)
        read from the environment and ``.env``, under the model's ``env_prefix`` or
        else ``AURA_<NAME>_``. A bad value stops start-up with one line naming the
        environment variable, as the core's settings do."""
        return read_plugin_settings(model, self.name)


@dataclass(frozen=True)
class Plugin:
    """An endpoint plugin: what an entry point in :data:`ENTRY_POINT_GROUP` names."""

    #: Adds the plugin's routes (and listeners, middleware, subscriptions) to the context.
    setup: Callable[[PluginContext], None]
    #: One line for ``aura-livekit-backend plugins``.
    description: str = ""
    #: Mount at ``/`` instead of under the API prefix (``/metrics``, webhooks).
    at_root: bool = False
