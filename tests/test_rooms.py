"""Rooms and tokens against the LiveKit emulator, over HTTP, through the real livekit-api client.

Tests with default settings share one served app and emulator (``client``, ``emulator``):
they create rooms of their own and count LiveKit calls as differences, so they do not
need a clean emulator. Tests of other settings, of the room list as a whole, or of the
OpenAPI document (sanic-ext keeps one per process) serve an app of their own.
"""

from __future__ import annotations

import asyncio
import json
import re
from datetime import datetime, timedelta, timezone

import jwt
import pytest
from livekit import api

import aura_livekit_backend.livekit.rooms as gateway
from aura_livekit_backend.emulator import LiveKitEmulator
from aura_livekit_backend.testing.client import ServiceClient
from aura_livekit_backend.testing.pytest_plugin import TEST_API_KEY, TEST_API_SECRET

ROOM_NAME = re.compile(r"room-(\d+)-[a-z0-9]{6}")


def claims_of(token: str) -> api.Claims:
    """The token's claims, after LiveKit's own verifier checked signature, issuer and expiry."""
    return api.TokenVerifier(TEST_API_KEY, TEST_API_SECRET).verify(token)


def lifetime(token: str) -> timedelta:
    raw = jwt.decode(token, options={"verify_signature": False})
    return timedelta(seconds=raw["exp"] - raw["nbf"])


def assert_join_token(token: str, identity: str, room: str, ttl: timedelta) -> None:
    claims = claims_of(token)
    assert (claims.identity, claims.name) == (identity, identity)
    video = claims.video
    assert video.room_join is True and video.room == room
    assert video.can_publish and video.can_subscribe and video.can_publish_data
    assert not video.room_create and not video.room_admin and not video.room_list
    assert lifetime(token) == ttl


@pytest.fixture(scope="module")
def client(module_aura_client) -> ServiceClient:
    return module_aura_client()


@pytest.fixture(scope="module")
def emulator(module_livekit_emulator) -> LiveKitEmulator:
    return module_livekit_emulator


def create(client, **body):
    response = client.post("/api/room/create", json={"userName": "host-user", **body})
    assert response.status_code == 200, response.text
    return response.json


# -- POST /room/create ---------------------------------------------------------------


def test_create_answers_the_documented_shape_and_a_creator_token(client, emulator) -> None:
    before = int(datetime.now(timezone.utc).timestamp())
    body = create(
        client, roomTopic="My Room", description="Test room description", maxParticipants=7
    )
    assert set(body) == {
        "roomId", "sid", "roomUrl", "roomTopic", "description", "maxParticipants",
        "userName", "identity", "token", "livekitUrl",
    }  # fmt: skip
    match = ROOM_NAME.fullmatch(body["roomId"])
    assert match and abs(int(match.group(1)) - before) <= 2
    assert body["livekitUrl"] == emulator.url.replace("http://", "ws://")
    assert body["roomUrl"] == f"{body['livekitUrl']}/{body['roomId']}"
    assert (body["roomTopic"], body["description"], body["maxParticipants"]) == (
        "My Room",
        "Test room description",
        7,
    )
    assert body["userName"] == body["identity"] == "host-user"
    assert body["sid"].startswith("RM_")
    assert_join_token(body["token"], "host-user", body["roomId"], timedelta(hours=24))


def test_room_facts_live_in_livekit(client, emulator) -> None:
    body = create(client, roomTopic="Standup", description="daily", maxParticipants=5)

    async def fetch() -> api.Room:
        lk = api.LiveKitAPI(emulator.url, TEST_API_KEY, TEST_API_SECRET)
        try:
            rooms = await lk.room.list_rooms(api.ListRoomsRequest(names=[body["roomId"]]))
        finally:
            await lk.aclose()
        return rooms.rooms[0]

    room = asyncio.run(fetch())
    assert room.sid == body["sid"] and room.max_participants == 5
    assert json.loads(room.metadata) == {
        "topic": "Standup",
        "description": "daily",
        "createdBy": "host-user",
    }


def test_create_defaults_come_from_settings(client, serve) -> None:
    body = create(client)
    assert (body["roomTopic"], body["description"], body["maxParticipants"]) == ("새 회의", "", 20)
    other = create(serve(default_room_topic="Sync", default_max_participants=4, token_ttl=3600))
    assert (other["roomTopic"], other["maxParticipants"]) == ("Sync", 4)
    assert lifetime(other["token"]) == timedelta(hours=1)


def test_null_or_empty_topic_means_the_default(client) -> None:
    assert create(client, roomTopic=None)["roomTopic"] == "새 회의"
    assert create(client, roomTopic="")["roomTopic"] == "새 회의"


def test_public_url_is_what_clients_get(serve) -> None:
    body = create(serve(livekit_public_url="wss://meet.example.com"))
    assert body["livekitUrl"] == "wss://meet.example.com"
    assert body["roomUrl"] == f"wss://meet.example.com/{body['roomId']}"


def test_room_names_are_unique_under_concurrent_creation(client) -> None:
    names = {create(client)["roomId"] for _ in range(50)}
    assert len(names) == 50


def test_a_name_taken_a_moment_ago_is_replaced(client, emulator, monkeypatch) -> None:
    before = emulator.calls["CreateRoom"]
    first = create(client, roomTopic="mine")
    # Make the random source repeat the first name's suffix once, then go on normally.
    suffix = iter(first["roomId"].rsplit("-", 1)[1])
    real_choice = gateway.secrets.choice
    monkeypatch.setattr(
        gateway.secrets, "choice", lambda seq: next(suffix, None) or real_choice(seq)
    )
    monkeypatch.setattr(gateway.time, "time", lambda: int(first["roomId"].split("-")[1]))
    second = create(client, roomTopic="theirs")
    assert second["roomId"] != first["roomId"]
    assert second["roomTopic"] == "theirs"
    assert emulator.calls["CreateRoom"] == before + 3  # the taken name cost one more call


@pytest.mark.parametrize(
    "name", ["김민준", "山田太郎", "🎥 Ana 👩‍👩‍👧", "Zoë O'Brien-Łukasz", "a" * 128]
)
def test_any_human_name_round_trips_exactly(client, name: str) -> None:
    body = create(client, userName=name)
    assert body["userName"] == name
    assert claims_of(body["token"]).identity == name
    joined = client.post("/api/room/join", json={"roomId": body["roomId"], "userName": name})
    assert claims_of(joined.json["token"]).name == name
    assert client.get(f"/api/room/{body['roomId']}").json["createdBy"] == name


# -- 400s ----------------------------------------------------------------------------

BAD_CREATE_BODIES = [
    (b"{not json", "Request body is not valid JSON"),
    (b"[1, 2]", "Request body must be a JSON object"),
    (b"null", "Request body must be a JSON object"),
    (b"", "Request body is empty: send a JSON object"),
    (b'"userName"', "Request body must be a JSON object"),
    (b"{}", "userName is required"),
    (b'{"userName": null}', "userName: Input should be a valid string"),
    (b'{"userName": 42}', "userName: Input should be a valid string"),
    (b'{"userName": ""}', "userName: must not be empty or blank"),
    (b'{"userName": "   "}', "userName: must not be empty or blank"),
    (b'{"userName": "' + b"x" * 129 + b'"}', "userName: must be at most 128 characters"),
    (b'{"userName": "bell\\u0007"}', "userName: must not contain control or invisible"),
    (b'{"userName": "admin\\u202e"}', "userName: must not contain control or invisible"),
    (b'{"userName": "zero\\u200bwidth"}', "userName: must not contain control or invisible"),
    (b'{"userName": "a", "maxParticipants": "20"}', "maxParticipants: Input should be a valid"),
    (b'{"userName": "a", "maxParticipants": true}', "maxParticipants: Input should be a valid"),
    (b'{"userName": "a", "maxParticipants": 20.5}', "maxParticipants: Input should be a valid"),
    (b'{"userName": "a", "maxParticipants": 0}', "maxParticipants: must be between 1 and 1000"),
    (b'{"userName": "a", "maxParticipants": 1001}', "maxParticipants: must be between 1 and 1000"),
    (b'{"userName": "a", "maxParticipants": 1e400}', "maxParticipants: Input should be a valid"),
    (
        b'{"userName": "a", "maxParticipants": 100000000000000000000000000000}',
        "maxParticipants: must be between 1 and 1000",
    ),
    (b'{"userName": "a", "roomTopic": 5}', "roomTopic: Input should be a valid string"),
    (b'{"userName": "a", "roomTopic": "' + b"t" * 201 + b'"}', "roomTopic: must be at most 200"),
    (
        b'{"userName": "a", "description": "' + b"d" * 2001 + b'"}',
        "description: must be at most 2000",
    ),
    (b'{"userName": "a", "isAdmin": true}', "isAdmin is not a known field"),
]


@pytest.mark.parametrize(("body", "message"), BAD_CREATE_BODIES)
def test_bad_create_bodies_are_400s_naming_the_problem(
    client, emulator, body: bytes, message: str
) -> None:
    before = emulator.calls["CreateRoom"]
    response = client.post(
        "/api/room/create", content=body, headers={"content-type": "application/json"}
    )
    assert response.status_code == 400, response.text
    assert response.json["statusCode"] == 400
    assert response.json["message"].startswith(message), response.json
    assert emulator.calls["CreateRoom"] == before


def test_the_participant_cap_is_a_setting(serve) -> None:
    response = serve(max_participants_cap=5).post(
        "/api/room/create", json={"userName": "a", "maxParticipants": 6}
    )
    assert response.json == {
        "statusCode": 400,
        "message": "maxParticipants: must be between 1 and 5",
    }


def test_description_may_span_lines(client) -> None:
    assert create(client, description="line one\nline\ttwo")["description"] == "line one\nline\ttwo"


# -- POST /room/join and POST /token -------------------------------------------------


@pytest.mark.parametrize("path", ["/api/room/join", "/api/token"])
@pytest.mark.parametrize("by", ["roomId", "sid"])
def test_join_by_name_or_sid(client, emulator, path: str, by: str) -> None:
    room = create(client)
    response = client.post(path, json={"roomId": room[by], "userName": "participant-user"})
    assert response.status_code == 200, response.text
    body = response.json
    assert set(body) == {"token", "url", "roomId", "sid", "identity"}
    assert body["identity"] == "participant-user"
    assert body["url"] == emulator.url.replace("http://", "ws://")
    assert (body["roomId"], body["sid"]) == (room["roomId"], room["sid"])
    assert_join_token(body["token"], "participant-user", room["roomId"], timedelta(hours=24))


def test_join_by_name_costs_one_livekit_call_whatever_the_number_of_rooms(client, emulator) -> None:
    rooms = [create(client) for _ in range(30)]
    before = emulator.calls["ListRooms"]
    client.post("/api/token", json={"roomId": rooms[7]["roomId"], "userName": "u"})
    assert emulator.calls["ListRooms"] == before + 1


@pytest.mark.parametrize("path", ["/api/room/join", "/api/token"])
@pytest.mark.parametrize("room_id", ["room-1-abcdef", "RM_dSbCDo6CDPQU"])
def test_join_a_missing_room_is_404(client, path: str, room_id: str) -> None:
    response = client.post(path, json={"roomId": room_id, "userName": "u"})
    assert response.status_code == 404
    assert response.json == {"statusCode": 404, "message": "Failed to join room: Room not found"}


def test_join_a_full_room_is_409(client, emulator) -> None:
    room = create(client, maxParticipants=2)
    emulator.add_participant(room["roomId"], "host-user")
    body = {"roomId": room["roomId"], "userName": "second"}
    assert client.post("/api/room/join", json=body).status_code == 200
    emulator.add_participant(room["roomId"], "second")
    response = client.post("/api/room/join", json={**body, "userName": "third"})
    assert response.status_code == 409
    assert response.json == {"statusCode": 409, "message": "Failed to join room: Room is full"}


def test_join_a_room_made_outside_the_service(client, emulator) -> None:
    async def make() -> None:
        lk = api.LiveKitAPI(emulator.url, TEST_API_KEY, TEST_API_SECRET)
        try:
            await lk.room.create_room(api.CreateRoomRequest(name="lobby"))
        finally:
            await lk.aclose()

    asyncio.run(make())
    assert client.post("/api/token", json={"roomId": "lobby", "userName": "u"}).status_code == 200
    info = client.get("/api/room/lobby").json
    assert (info["roomTopic"], info["createdBy"], info["maxParticipants"]) == ("lobby", "", 0)


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"userName": "u"}, "roomId is required"),
        ({"roomId": "r"}, "userName is required"),
        ({"roomId": "", "userName": "u"}, "roomId: must not be empty or blank"),
        ({"roomId": 12, "userName": "u"}, "roomId: Input should be a valid string"),
        ({"roomId": "r" * 257, "userName": "u"}, "roomId: must be at most 256 characters"),
        ({"roomId": "r\u0000", "userName": "u"}, "roomId: must not contain control"),
    ],
)
def test_bad_join_bodies_are_400s(client, body: dict, message: str) -> None:
    response = client.post("/api/token", json=body)
    assert response.status_code == 400
    assert response.json["message"].startswith(message), response.json


# -- GET /room/{roomId} and GET /rooms -------------------------------------------------


def test_get_room_by_name_and_by_sid(client) -> None:
    room = create(client, roomTopic="test-room", maxParticipants=9)
    for room_id in (room["roomId"], room["sid"]):
        response = client.get(f"/api/room/{room_id}")
        assert response.status_code == 200
        info = response.json
        assert info == {
            "roomId": room["roomId"],
            "sid": room["sid"],
            "roomTopic": "test-room",
            "description": "",
            "maxParticipants": 9,
            "createdBy": "host-user",
            "createdAt": info["createdAt"],
            "numParticipants": 0,
            "emptyTimeout": 300,
            "departureTimeout": 20,
            "metadata": "",
            "agents": [],
        }
        created = datetime.strptime(info["createdAt"], "%Y-%m-%dT%H:%M:%S.%fZ")
        now = datetime.now(timezone.utc).replace(tzinfo=None)
        assert timedelta(0) <= now - created < timedelta(seconds=10)


def test_get_room_counts_participants(client, emulator) -> None:
    room = create(client)
    emulator.add_participant(room["roomId"], "a")
    emulator.add_participant(room["roomId"], "b")
    assert client.get(f"/api/room/{room['roomId']}").json["numParticipants"] == 2


def test_get_a_missing_room_is_404(client) -> None:
    response = client.get("/api/room/room-1-zzzzzz")
    assert response.json == {"statusCode": 404, "message": "Failed to get room: Room not found"}


@pytest.mark.parametrize(
    ("path", "message"),
    [
        ("/api/room/" + "r" * 300, "roomId: must be at most 256 characters"),
        ("/api/room/bad%07id", "roomId: must not contain control"),
        ("/api/room/bad%00id", "roomId: must not contain control"),
    ],
)
def test_bad_room_ids_in_the_path_are_400s(client, path: str, message: str) -> None:
    response = client.get(path)
    assert response.status_code == 400
    assert response.json["message"].startswith(message)


def test_list_rooms(serve) -> None:
    client = serve()  # its own emulator: the whole list is counted
    assert client.get("/api/rooms").json == {"rooms": [], "total": 0}
    made = [create(client, roomTopic=f"t{i}") for i in range(3)]
    body = client.get("/api/rooms").json
    assert body["total"] == 3
    assert {r["roomId"] for r in body["rooms"]} == {r["roomId"] for r in made}
    assert {r["roomTopic"] for r in body["rooms"]} == {"t0", "t1", "t2"}
    assert all(set(r) == set(body["rooms"][0]) for r in body["rooms"])


def test_openapi_documents_every_endpoint(serve) -> None:
    spec = serve().get("/docs/openapi.json").json
    paths = spec["paths"]
    assert set(paths) >= {
        "/api/health",
        "/api/room/create",
        "/api/room/join",
        "/api/room/{roomId}",
        "/api/rooms",
        "/api/token",
    }
    create_op = paths["/api/room/create"]["post"]
    schema = create_op["requestBody"]["content"]["application/json"]["schema"]
    assert {"userName", "roomTopic", "description", "maxParticipants"} <= set(schema["properties"])
    assert {"200", "400", "502", "503"} <= set(create_op["responses"])
    assert {"200", "404", "409"} <= set(paths["/api/token"]["post"]["responses"])


def test_docs_can_be_switched_off(serve) -> None:
    assert serve(docs=False).get("/docs/openapi.json").status_code == 404
