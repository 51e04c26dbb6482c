"""The plugin guide's example works as written, installed through real metadata.

The example was chosen to use what a third-party plugin needs most: its own settings
(one-line errors), the core's join rules, its own error statuses in OpenAPI, a path
parameter with the house 400, and an event subscription.
"""

from __future__ import annotations

import re
import time
from pathlib import Path

import pytest

from aura_livekit_backend import create_app
from aura_livekit_backend.plugin_loader import PluginError

GUIDE = Path(__file__).resolve().parent.parent / "plugins" / "README.md"


def example() -> tuple[str, dict[str, str]]:
    """The example's module source and its entry points, from the guide's text."""
    text = GUIDE.read_text()
    block = text.split("<!-- guide-example -->", 1)[1].split("<!-- /guide-example -->", 1)[0]
    toml = block.split("```toml", 1)[1].split("```", 1)[0]
    python = block.split("```python", 1)[1].split("```", 1)[0]
    section = toml.split('[project.entry-points."aura_livekit_backend.plugins"]', 1)[1]
    entry_points = dict(re.findall(r'^(\w+) = "([^"]+)"$', section, re.MULTILINE))
    return python, entry_points


@pytest.fixture
def installed(site) -> None:
    source, entry_points = example()
    assert entry_points == {"invites": "acme_invites:plugin"}
    site.install("acme-invites", entry_points, {"acme_invites": source})


def _invite(client, room_id: str) -> dict:
    # The subscriber runs after the create's answer: give it a moment, boundedly.
    deadline = time.monotonic() + 5
    while True:
        answer = client.get(f"/api/room/{room_id}/invite")
        if answer.status_code == 200 or time.monotonic() > deadline:
            assert answer.status_code == 200, answer.text
            return answer.json
        time.sleep(0.02)


def test_the_guides_plugin_runs(installed, aura_client, monkeypatch) -> None:
    monkeypatch.setenv("AURA_INVITES_MAX_USES", "1")
    client = aura_client()
    mounted = {p.source.name: p for p in client.app.ctx.plugins}
    assert mounted["invites"].source.distribution == "acme-invites"
    assert mounted["invites"].routes == (
        "POST /api/invite/<code:str>/redeem",
        "GET /api/room/<roomId:str>/invite",
    )
    assert mounted["invites"].subscriptions == {"aura.room.created"}

    room = client.post("/api/room/create", json={"userName": "host"}).json
    invite = _invite(client, room["roomId"])
    assert invite["usesLeft"] == 1

    # Redeeming joins with the core's rules: a token for that room, as that person.
    redeemed = client.post(f"/api/invite/{invite['code']}/redeem", json={"userName": "ann"})
    assert redeemed.status_code == 200, redeemed.text
    assert redeemed.json["identity"] == "ann"
    assert redeemed.json["token"].count(".") == 2
    used_up = client.post(f"/api/invite/{invite['code']}/redeem", json={"userName": "bob"})
    assert used_up.status_code == 410
    assert used_up.json == {"statusCode": 410, "message": "Failed to redeem invite: it is used up"}


def test_the_guides_plugin_answers_the_house_400_and_documents_its_410(
    installed, aura_client
) -> None:
    client = aura_client()
    for raw, char in (("%00", "U+0000"), ("%E2%80%8B", "U+200B")):
        answer = client.get(f"/api/room/{raw}/invite")
        assert answer.status_code == 400
        assert answer.json["message"] == (
            f"roomId: must not contain control or invisible characters ({char})"
        )
    unknown = client.post("/api/invite/nope/redeem", json={"userName": "ann"})
    assert unknown.json == {
        "statusCode": 404,
        "message": "Failed to redeem invite: no invite has that code",
    }
    document = client.get("/docs/openapi.json").json
    responses = document["paths"]["/api/invite/{code}/redeem"]["post"]["responses"]
    assert responses["410"]["description"] == "The invite is used up"
    assert responses["404"]["description"] == "No invite has that code"
    assert responses["409"]["description"].startswith("The room already has")


def test_the_guides_plugin_settings_fail_in_one_line(installed, aura_settings, monkeypatch) -> None:
    monkeypatch.setenv("AURA_INVITES_MAX_USES", "0")
    with pytest.raises(PluginError) as caught:
        create_app(aura_settings())
    message = str(caught.value)
    assert "\n" not in message
    assert message == (
        "plugin 'invites' (acme-invites 1.0) is misconfigured: "
        "AURA_INVITES_MAX_USES: Input should be greater than or equal to 1"
    )


# The guide's minimal example as 0.1 printed it, word for word: a plugin written
# against the first contract (ctx.livekit, failing_to) must keep working.
GUIDE_0_1 = """
from sanic import json

from aura_livekit_backend.plugin import Plugin, PluginContext, failing_to


def setup(ctx: PluginContext) -> None:
    @ctx.blueprint.get("/room/<room_id:str>/topic")
    async def topic(request, room_id: str):
        with failing_to("get room"):
            room = await ctx.livekit.get_room(room_id)
        return json({"roomId": room.name, "topic": room.topic})


plugin = Plugin(setup=setup, description="The topic of a room, and nothing else.")
"""


def test_a_plugin_written_against_the_first_guide_still_runs(site, aura_client) -> None:
    site.install("acme-topic", {"topic": "acme_topic:plugin"}, {"acme_topic": GUIDE_0_1})
    client = aura_client()
    room = client.post("/api/room/create", json={"userName": "a", "roomTopic": "T"}).json
    answer = client.get(f"/api/room/{room['roomId']}/topic")
    assert answer.json == {"roomId": room["roomId"], "topic": "T"}
    missing = client.get("/api/room/room-1-nope00/topic")
    assert missing.json == {"statusCode": 404, "message": "Failed to get room: Room not found"}


def test_the_kits_example_test_passes(site, aura_client, livekit_emulator) -> None:
    source, entry_points = example()
    site.install("acme-invites", entry_points, {"acme_invites": source})
    text = GUIDE.read_text()
    block = text.split("<!-- kit-example -->", 1)[1].split("<!-- /kit-example -->", 1)[0]
    namespace: dict[str, object] = {}
    exec(block.split("```python", 1)[1].split("```", 1)[0], namespace)  # noqa: S102 (our guide)
    tests = [value for name, value in namespace.items() if name.startswith("test_")]
    assert len(tests) == 1
    tests[0](aura_client, livekit_emulator)
    assert livekit_emulator.faults_served["unavailable"] == 1
