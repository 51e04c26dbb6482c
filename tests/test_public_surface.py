"""The contract's public names are pinned, and nothing in the house goes around it.

A rename or a removal in ``aura_livekit_backend.plugin`` breaks third-party plugins:
it must be a decision (this test and the CHANGELOG change with it), never an accident.
"""

from __future__ import annotations

import ast
from importlib.resources import files
from pathlib import Path

import aura_livekit_backend
from aura_livekit_backend import plugin

ROOT = Path(__file__).resolve().parent.parent

CONTRACT = {
    "AgentRequest", "ApiError", "ApiKeys", "BearerKeys", "Caller", "ClaimRule", "Decision",
    "DescriptionText", "ENTRY_POINT_GROUP", "ErrorReply", "Event", "EventLogUnavailable",
    "EventPage", "EventStream", "Events", "Grants", "IdentityTaken", "Joins",
    "LiveKitError", "LiveKitGateway", "LiveKitRejected", "LiveKitUnavailable", "LoggedEvent",
    "MAX_DESCRIPTION", "MAX_ROOM_ID", "MAX_TOPIC", "MAX_USER_NAME", "Metrics",
    "PARTICIPANT_CAP", "PLUGIN_NAME", "Participant", "ParticipantLimit", "ParticipantNotFound",
    "ParticipantRemoved", "Plugin", "PluginContext", "Policy", "PolicyRequest", "Profile",
    "RequiredTopicText", "RoomCreated", "RoomDeleted", "RoomFull", "RoomIdText", "RoomInfo",
    "RoomLimitFixed", "RoomNotFound", "RoomOptions", "RoomPage", "RoomReply", "RoomSnapshot",
    "RoomUpdated",
    "Rooms", "Settings", "Ticket", "TokenMinted", "Tokens", "TopicText", "UserNameText",
    "Track",
    "caller_of", "check_text", "error_body", "error_responses", "failing_to", "iso_ms",
    "json_body", "json_content", "json_reply", "json_schema", "path_parameter", "path_text",
    "room_position", "room_reply", "utc_now",
    # LiveKit's webhook events and their payloads.
    "AgentJob", "AgentJobEnded", "AgentJobStarted", "Egress", "EgressEnded", "EgressStarted",
    "EgressUpdated", "Ingress", "IngressEnded", "IngressStarted", "LiveKitEvent",
    "OtherLiveKitEvent", "ParticipantConnectionAborted", "ParticipantJoined", "ParticipantLeft",
    "RoomFinished", "RoomStarted", "TrackPublished", "TrackUnpublished",
    # ctx.webhooks: taking in a delivery.
    "WebhookDelivery", "WebhookMalformed", "WebhookRejected", "Webhooks",
}  # fmt: skip


def test_the_contract_exports_exactly_its_names() -> None:
    assert set(plugin.__all__) == CONTRACT
    for name in plugin.__all__:
        assert getattr(plugin, name).__doc__ or not callable(getattr(plugin, name)), name


def test_the_package_exports_the_factory_and_settings() -> None:
    assert set(aura_livekit_backend.__all__) == {"Settings", "__version__", "create_app"}


def _imports_of_the_package(path: Path, package: str) -> set[str]:
    """Every ``aura_livekit_backend`` module ``path`` (in ``package``) imports."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            if node.level:  # relative: endpoints/x.py's "..plugin"
                base = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                found.add(f"{base}.{node.module}" if node.module else base)
            elif node.module and node.module.startswith("aura_livekit_backend"):
                found.add(node.module)
        elif isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.startswith("aura_livekit_backend"))
    return found


def test_built_in_endpoints_and_our_plugins_use_only_the_contract() -> None:
    sources = [
        *(ROOT / "aura_livekit_backend" / "endpoints").glob("*.py"),
        *(ROOT / "plugins").glob("*/aura_livekit_*/*.py"),
    ]
    assert len(sources) >= 6
    for source in sources:
        # Relative imports stay inside the source's own package (a plugin's its own).
        package = (
            "aura_livekit_backend.endpoints"
            if source.parent.name == "endpoints"
            else source.parent.name
        )
        imported = _imports_of_the_package(source, package)
        # Built-in plugins may share their own request models with each other.
        siblings = {name for name in imported if name == package or name.startswith(package + ".")}
        assert imported - siblings <= {"aura_livekit_backend.plugin"}, (source, imported)


def test_the_core_and_our_plugins_ship_py_typed() -> None:
    # Under tox these are the installed wheels: this checks what users install.
    for package in ("aura_livekit_backend", "aura_livekit_moderation", "aura_livekit_console"):
        assert files(package).joinpath("py.typed").is_file(), package
