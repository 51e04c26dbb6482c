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
listeners. LiveKit is reached through ``ctx.livekit``, the same gateway the
built-in endpoints use, open while the server runs.

Access: with ``AURA_API_KEYS`` set, every route needs one of the service's keys.
A route added with ``ctx_api_keys=False`` (``@ctx.blueprint.get("/x", ctx_api_keys=False)``)
is exempt: a health check, or a route that checks keys of its own with
:class:`BearerKeys`, as the moderation plugin does.

Errors: raise :class:`ApiError` for the client's mistakes and wrap LiveKit calls in
:func:`failing_to`; both answer in the service's one error shape.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field

from sanic import Blueprint

from .access import BearerKeys
from .errors import ApiError, error_body, failing_to
from .livekit_gateway import (
    LiveKitError,
    LiveKitGateway,
    LiveKitRejected,
    LiveKitUnavailable,
    Participant,
    ParticipantNotFound,
    RoomInfo,
    RoomLimitFixed,
    RoomNotFound,
    RoomPage,
    room_position,
)
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
from .settings import Settings
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

__all__ = [
    "ENTRY_POINT_GROUP",
    "MAX_DESCRIPTION",
    "MAX_ROOM_ID",
    "MAX_TOPIC",
    "MAX_USER_NAME",
    "PARTICIPANT_CAP",
    "PLUGIN_NAME",
    "ApiError",
    "BearerKeys",
    "DescriptionText",
    "ErrorReply",
    "LiveKitError",
    "LiveKitGateway",
    "LiveKitRejected",
    "LiveKitUnavailable",
    "Metrics",
    "Participant",
    "ParticipantLimit",
    "ParticipantNotFound",
    "Plugin",
    "PluginContext",
    "RequiredTopicText",
    "RoomIdText",
    "RoomInfo",
    "RoomLimitFixed",
    "RoomNotFound",
    "RoomPage",
    "RoomReply",
    "Settings",
    "TopicText",
    "UserNameText",
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


@dataclass(frozen=True)
class PluginContext:
    """What a plugin's ``setup`` is handed."""

    #: The plugin's name, as its entry point spells it.
    name: str
    #: The service's settings; a plugin with settings of its own reads them itself.
    settings: Settings
    #: Where the plugin's routes go; it is mounted under ``settings.api_prefix``.
    blueprint: Blueprint
    #: The worker's LiveKit gateway; usable from handlers and listeners while the server runs.
    livekit: LiveKitGateway
    #: The worker's Prometheus metrics, or None when AURA_METRICS is off.
    metrics: Metrics | None = None
    #: Security schemes declared with :meth:`declare_bearer_auth`, by name.
    bearer_schemes: dict[str, str] = field(default_factory=dict)

    def declare_bearer_auth(self, scheme: str, description: str = "") -> None:
        """Document an HTTP bearer scheme for OpenAPI; routes name it with ``openapi.secured``."""
        self.bearer_schemes[scheme] = description


@dataclass(frozen=True)
class Plugin:
    """An endpoint plugin: what an entry point in :data:`ENTRY_POINT_GROUP` names."""

    #: Adds the plugin's routes (and listeners, middleware) to ``ctx.blueprint``.
    setup: Callable[[PluginContext], None]
    #: One line for ``aura-livekit-backend plugins``.
    description: str = ""
    #: Mount at ``/`` instead of under the API prefix (``/metrics``, webhooks).
    at_root: bool = False
