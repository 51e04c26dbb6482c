"""The moderation plugin, tested with nothing but aura-livekit-backend's pytest kit.

Tests that work in rooms of their own share one served app and emulator (the kit's
module-scoped fixtures); tests that make LiveKit sick or stop it, or need other
settings, serve their own. Every route goes through one guard (``moderators_only``),
one path check (``path_text``) and one error translation (``failing_to``), so their
cases are spread over the routes, each case once and each route at least once,
instead of crossed with them.
"""

from __future__ import annotations

import pytest

KEY = "moderation-key-0123456789abcdefghijkl"
AUTH = {"Authorization": f"Bearer {KEY}"}


@pytest.fixture(scope="module")
def client(module_aura_client):
    """The service with the installed plugins (moderation among them) and one key set."""
    with pytest.MonkeyPatch.context() as monkeypatch:  # the plugin reads it at start-up
        monkeypatch.setenv("AURA_MODERATION_API_KEYS", f"other-moderation-key, {KEY}")
        return module_aura_client()


@pytest.fixture(scope="module")
def livekit(module_livekit_emulator):
    """The emulator behind ``client``."""
    return module_livekit_emulator


@pytest.fixture(scope="module")
def without_keys(module_aura_client):
    """The service with the moderation plugin and no moderation keys."""
    with pytest.MonkeyPatch.context() as monkeypatch:
        monkeypatch.delenv("AURA_MODERATION_API_KEYS", raising=False)
        return module_aura_client()


@pytest.fixture
def own_client(aura_client, monkeypatch):
    """As ``client``, served for one test with an emulator of its own."""
    monkeypatch.setenv("AURA_MODERATION_API_KEYS", KEY)
    return aura_client(livekit_timeout=0.5)


def make_room(client, **body) -> dict:
    response = client.post("/api/room/create", json={"userName": "host", **body})
    assert response.status_code == 200, response.text
    return response.json


ROUTES = [
    ("delete", "/api/room/{room}"),
    ("patch", "/api/room/{room}"),
    ("get", "/api/room/{room}/participants"),
    ("delete", "/api/room/{room}/participants/someone"),
]


def spread(cases: list) -> list:
    """Each case with one of ROUTES in turn: every case and every route runs."""
    assert len(cases) >= len(ROUTES)
    return [(*ROUTES[i % len(ROUTES)], *case) for i, case in enumerate(cases)]


@pytest.mark.parametrize(
    ("method", "path", "headers"),
    spread(
        [
            ({},),
            ({"Authorization": "Bearer wrong"},),
            ({"Authorization": KEY},),
            ({"Authorization": "Basic x"},),
        ]
    ),
)
def test_every_route_needs_a_valid_key(client, method, path, headers) -> None:
    room = make_room(client)
    response = client.request(
        method, path.format(room=room["roomId"]), headers=headers, json={"roomTopic": "x"}
    )
    assert response.status_code == 401
    assert response.json == {
        "statusCode": 401,
        "message": "a valid moderation API key is required",
    }
    assert response.headers["www-authenticate"].startswith("Bearer")
    # Nothing happened to the room.
    assert client.get(f"/api/room/{room['roomId']}").json["roomTopic"] == "새 회의"


@pytest.mark.parametrize(("method", "path"), ROUTES)
def test_without_configured_keys_moderation_is_disabled(without_keys, method, path) -> None:
    response = without_keys.request(method, path.format(room="r"), headers=AUTH, json={})
    assert response.status_code == 403
    assert response.json == {"statusCode": 403, "message": "moderation is disabled"}


def test_moderation_keys_are_its_own_under_the_service_keys(aura_client, monkeypatch) -> None:
    service_key = "service-key-0123456789abcdef"
    monkeypatch.setenv("AURA_MODERATION_API_KEYS", KEY)
    client = aura_client(api_keys=service_key)
    service = {"Authorization": f"Bearer {service_key}"}
    room = client.post("/api/room/create", json={"userName": "h"}, headers=service).json["roomId"]
    # A moderation key is enough for moderation routes, and not for the service's...
    listed = client.get(f"/api/room/{room}/participants", headers=AUTH)
    assert listed.status_code == 200 and listed.json["total"] == 0
    assert client.get(f"/api/room/{room}", headers=AUTH).status_code == 401
    # ...and a service key is not enough to moderate.
    refused = client.delete(f"/api/room/{room}", headers=service)
    assert refused.status_code == 401
    assert refused.json["message"] == "a valid moderation API key is required"


def test_delete_room_closes_it(client, livekit) -> None:
    room = make_room(client)
    response = client.delete(f"/api/room/{room['sid']}", headers=AUTH)
    assert response.json == {"roomId": room["roomId"], "deleted": True}
    assert room["roomId"] not in livekit.room_names()
    assert client.get(f"/api/room/{room['roomId']}").status_code == 404
    again = client.delete(f"/api/room/{room['roomId']}", headers=AUTH)
    assert again.json == {"statusCode": 404, "message": "Failed to delete room: Room not found"}


def test_patch_changes_the_room_and_answers_its_info(client) -> None:
    room = make_room(client, roomTopic="Old", description="d", maxParticipants=10)
    response = client.patch(
        f"/api/room/{room['roomId']}",
        headers=AUTH,
        json={"roomTopic": "New topic", "maxParticipants": 3},
    )
    assert response.status_code == 200, response.text
    info = response.json
    assert (info["roomTopic"], info["description"], info["maxParticipants"]) == (
        "New topic",
        "d",
        3,
    )
    assert info["createdBy"] == "host"
    assert client.get(f"/api/room/{room['roomId']}").json == info


def test_a_lowered_limit_is_enforced_at_join(client, livekit) -> None:
    room = make_room(client, maxParticipants=10)
    client.patch(f"/api/room/{room['roomId']}", headers=AUTH, json={"maxParticipants": 1})
    livekit.add_participant(room["roomId"], "host")
    response = client.post("/api/room/join", json={"roomId": room["roomId"], "userName": "late"})
    assert response.json == {"statusCode": 409, "message": "Failed to join room: Room is full"}


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({}, "give at least one of roomTopic, description, maxParticipants"),
        ({"maxParticipants": 11}, "maxParticipants: can be lowered, not raised above 10"),
        ({"maxParticipants": "5"}, "maxParticipants: Input should be a valid integer"),
        ({"maxParticipants": 0}, "maxParticipants: must be between 1 and 1000"),
        ({"roomTopic": ""}, "roomTopic: must not be empty or blank"),
        ({"roomTopic": "t" * 201}, "roomTopic: must be at most 200 characters"),
        ({"roomTopic": "a\u202eb"}, "roomTopic: must not contain control"),
        ({"owner": "me"}, "owner is not a known field"),
        ({"roomTopic": None, "description": None}, "give at least one of roomTopic"),
        ({"maxParticipants": 5.0}, "maxParticipants: Input should be a valid integer"),
        ({"maxParticipants": True}, "maxParticipants: Input should be a valid integer"),
        ({"maxParticipants": 10**40}, "maxParticipants: must be between 1 and 1000"),
        ({"description": {"nested": [[["x"]]]}}, "description: Input should be a valid string"),
        ({"description": "d" * 50_000}, "description: must be at most 2000 characters"),
        ([], "Request body must be a JSON object"),
        (None, "Request body is empty: send a JSON object"),
    ],
)
def test_bad_patches_are_400s(client, livekit, body, message) -> None:
    room = make_room(client, maxParticipants=10)
    before = livekit.calls["UpdateRoomMetadata"]
    response = client.patch(f"/api/room/{room['roomId']}", headers=AUTH, json=body)
    assert response.status_code == 400
    assert response.json["message"].startswith(message), response.json
    assert livekit.calls["UpdateRoomMetadata"] == before


@pytest.mark.parametrize(
    ("method", "path", "room", "status", "message"),
    spread(
        [
            ("%00", 400, "roomId: must not contain control"),
            ("%E2%80%8B", 400, "roomId: must not contain control or invisible characters (U+200B)"),
            ("x" * 300, 400, "roomId: must be at most 256 characters"),
            ("%20", 400, "roomId: must not be empty or blank"),
            ("%2e%2e", 404, "Failed to"),
        ]
    ),
)
def test_hostile_room_ids_in_paths(client, method, path, room, status, message) -> None:
    response = client.request(
        method, path.format(room=room), headers=AUTH, json={"description": "x"}
    )
    assert (response.status_code, set(response.json)) == (status, {"statusCode", "message"})
    assert response.json["message"].startswith(message), response.json


@pytest.mark.parametrize(
    ("identity", "message"),
    [
        ("%00", "identity: must not contain control"),
        ("%E2%80%AE", "identity: must not contain control or invisible characters (U+202E)"),
        ("i" * 300, "identity: must be at most 256 characters"),
    ],
)
def test_hostile_identities_in_paths(client, identity, message) -> None:
    room = make_room(client)["roomId"]
    response = client.delete(f"/api/room/{room}/participants/{identity}", headers=AUTH)
    assert response.status_code == 400
    assert response.json["message"].startswith(message), response.json


def test_participants_are_listed_and_removed(client, livekit) -> None:
    room = make_room(client)
    livekit.add_participant(room["roomId"], "host", "Host", publisher=True)
    livekit.add_participant(room["roomId"], "guest", "게스트")
    listed = client.get(f"/api/room/{room['sid']}/participants", headers=AUTH).json
    assert listed["total"] == 2
    people = {p["identity"]: p for p in listed["participants"]}
    assert people["host"]["isPublisher"] is True and people["guest"]["name"] == "게스트"
    assert people["guest"]["state"] == "active"
    assert people["guest"]["joinedAt"].endswith("Z")

    removed = client.delete(f"/api/room/{room['roomId']}/participants/guest", headers=AUTH)
    assert removed.json == {"roomId": room["roomId"], "identity": "guest", "removed": True}
    remaining = client.get(f"/api/room/{room['roomId']}/participants", headers=AUTH).json
    assert [p["identity"] for p in remaining["participants"]] == ["host"]
    gone = client.delete(f"/api/room/{room['roomId']}/participants/guest", headers=AUTH)
    assert gone.json == {
        "statusCode": 404,
        "message": "Failed to remove participant: Participant not found",
    }


def test_identities_with_any_characters_are_path_safe(client, livekit) -> None:
    room = make_room(client)
    livekit.add_participant(room["roomId"], "김/민 준")
    response = client.delete(
        f"/api/room/{room['roomId']}/participants/%EA%B9%80%2F%EB%AF%BC%20%EC%A4%80", headers=AUTH
    )
    assert response.status_code == 200, response.text
    assert response.json["identity"] == "김/민 준"


def test_missing_rooms_are_404(client) -> None:
    for method, path in ROUTES:
        response = client.request(
            method, path.format(room="room-1-nope00"), headers=AUTH, json={"description": "x"}
        )
        assert response.status_code == 404, (method, path)


@pytest.mark.parametrize(
    ("method", "path", "kind", "status"),
    spread(
        [("garbage", 502), ("reset", 503), ("plain_401", 502), ("proxy_502", 503), ("stall", 503)]
    ),
)
def test_a_sick_livekit_is_a_documented_502_or_503(
    own_client, livekit_emulator, kind, status, method, path
) -> None:
    client = own_client
    room = make_room(client)["roomId"]
    livekit_emulator.add_participant(room, "someone")
    livekit_emulator.disturb(kind)
    response = client.request(
        method, path.format(room=room), headers=AUTH, json={"description": "x"}
    )
    assert response.status_code == status
    assert set(response.json) == {"statusCode", "message"}
    livekit_emulator.heal()
    healed = client.request(method, path.format(room=room), headers=AUTH, json={"description": "y"})
    assert healed.status_code == 200, healed.text


def test_livekit_outage_is_503(own_client, livekit_emulator) -> None:
    livekit_emulator.stop()
    response = own_client.get("/api/room/r/participants", headers=AUTH)
    assert response.status_code == 503


def test_disabling_the_plugin_removes_its_routes(aura_client, monkeypatch) -> None:
    monkeypatch.setenv("AURA_MODERATION_API_KEYS", KEY)
    client = aura_client(disabled_plugins=["moderation"])
    assert client.delete("/api/room/r", headers=AUTH).status_code == 405  # GET remains
    assert client.get("/api/room/r/participants", headers=AUTH).status_code == 404


def test_openapi_documents_the_routes_and_their_security(aura_client) -> None:
    spec = aura_client().get("/docs/openapi.json").json
    operation = spec["paths"]["/api/room/{roomId}"]["delete"]
    assert operation["security"] == [{"moderation": []}]
    assert "moderation" in spec["components"]["securitySchemes"]
    assert spec["paths"]["/api/room/{roomId}/participants/{identity}"]["delete"]


@pytest.mark.parametrize(
    ("keys", "problem"),
    [
        ("short-key", "every key must be at least 16 characters"),
        ("a-long-enough-key but-spaced", "a key must not contain whitespace"),
    ],
)
def test_moderation_keys_follow_the_cores_rules(aura_client, monkeypatch, keys, problem) -> None:
    # Its keys go through the contract's settings helper and ApiKeys type: one line at
    # start-up naming the variable, never the key.
    from aura_livekit_backend.plugin_loader import PluginError

    monkeypatch.setenv("AURA_MODERATION_API_KEYS", keys)
    with pytest.raises(PluginError) as caught:
        aura_client()
    message = str(caught.value)
    assert message.endswith(f"is misconfigured: AURA_MODERATION_API_KEYS: {problem}")
    assert "\n" not in message and keys.split()[0] not in message


def test_operators_list_add_and_delete_a_rooms_agent_dispatches(client, livekit) -> None:
    room = make_room(client)["roomId"]
    path = f"/api/room/{room}/dispatches"
    for headers in ({}, {"Authorization": "Bearer wrong"}):
        assert client.get(path, headers=headers).status_code == 401
    assert client.get(path, headers=AUTH).json == {"dispatches": []}
    made = client.post(path, json={"agentName": "agent-x", "metadata": "m"}, headers=AUTH)
    assert made.status_code == 201, made.text
    assert (made.json["agentName"], made.json["metadata"]) == ("agent-x", "m")
    assert [d.id for d in livekit.dispatches(room)] == [made.json["id"]]
    assert client.get(path, headers=AUTH).json == {"dispatches": [made.json]}
    bad = client.post(path, json={"agentName": 5}, headers=AUTH)
    assert bad.status_code == 400 and bad.json["message"].startswith("agentName:")
    gone = client.delete(f"{path}/{made.json['id']}", headers=AUTH)
    assert gone.status_code == 200 and gone.json["id"] == made.json["id"]
    assert livekit.dispatches(room) == []
    again = client.delete(f"{path}/{made.json['id']}", headers=AUTH)
    assert again.status_code == 404
    assert client.get("/api/room/nowhere/dispatches", headers=AUTH).status_code == 404
