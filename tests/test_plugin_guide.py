"""The plugin guide's minimal example works as written, installed through real metadata."""

from __future__ import annotations

import re
from pathlib import Path

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


def test_the_guides_minimal_plugin_runs(site, aura_client) -> None:
    source, entry_points = example()
    assert entry_points == {"topic": "acme_topic:plugin"}
    site.install("acme-topic", entry_points, {"acme_topic": source})
    client = aura_client()
    mounted = {p.source.name: p for p in client.app.ctx.plugins}
    assert mounted["topic"].source.distribution == "acme-topic"
    assert mounted["topic"].routes == ("GET /api/room/<room_id:str>/topic",)

    room = client.post("/api/room/create", json={"userName": "a", "roomTopic": "T"}).json
    answer = client.get(f"/api/room/{room['roomId']}/topic")
    assert answer.json == {"roomId": room["roomId"], "topic": "T"}
    missing = client.get("/api/room/room-1-nope00/topic")
    assert missing.json == {"statusCode": 404, "message": "Failed to get room: Room not found"}


def test_the_kits_example_test_passes(site, aura_client, livekit_emulator) -> None:
    source, entry_points = example()
    site.install("acme-topic", entry_points, {"acme_topic": source})
    text = GUIDE.read_text()
    block = text.split("<!-- kit-example -->", 1)[1].split("<!-- /kit-example -->", 1)[0]
    namespace: dict[str, object] = {}
    exec(block.split("```python", 1)[1].split("```", 1)[0], namespace)  # noqa: S102 (our guide)
    tests = [value for name, value in namespace.items() if name.startswith("test_")]
    assert len(tests) == 1
    tests[0](aura_client, livekit_emulator)
    assert livekit_emulator.faults_served["unavailable"] == 1
