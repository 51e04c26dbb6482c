"""AURA_DUPLICATE_USERNAME: what a join does with a userName already in the room.

LiveKit lets an identity be in a room once; a second connection with it disconnects
the first. ``allow`` keeps that (the original behaviour), ``reject`` refuses the
second join while the first is connected, ``unique`` gives every token its own
identity and keeps the userName as the display name.

One served app per policy, shared by the module: each test works in rooms of its own
and counts LiveKit calls as differences. The sick-LiveKit test has its own emulator.
"""

from __future__ import annotations

import re

import pytest
from livekit import api

from aura_livekit_backend.emulator import LiveKitEmulator
from aura_livekit_backend.testing.client import ServiceClient
from aura_livekit_backend.testing.pytest_plugin import TEST_API_KEY, TEST_API_SECRET

JOINS = ["/api/room/join", "/api/token"]


@pytest.fixture(scope="module")
def emulator(module_livekit_emulator) -> LiveKitEmulator:
    return module_livekit_emulator


@pytest.fixture(scope="module")
def allow(module_aura_client) -> ServiceClient:
    return module_aura_client()


@pytest.fixture(scope="module")
def reject(module_aura_client) -> ServiceClient:
    return module_aura_client(duplicate_username="reject")


@pytest.fixture(scope="module")
def unique(module_aura_client) -> ServiceClient:
    return module_aura_client(duplicate_username="unique")


def claims_of(token: str) -> api.Claims:
    return api.TokenVerifier(TEST_API_KEY, TEST_API_SECRET).verify(token)


def make_room(client) -> str:
    response = client.post("/api/room/create", json={"userName": "host"})
    assert response.status_code == 200, response.text
    return response.json["roomId"]


@pytest.mark.parametrize("path", JOINS)
def test_allow_is_the_default_and_mints_the_same_identity_again(allow, emulator, path) -> None:
    client = allow
    room = make_room(client)
    emulator.add_participant(room, "kim")
    before = emulator.calls["GetParticipant"]
    response = client.post(path, json={"roomId": room, "userName": "kim"})
    assert response.status_code == 200
    assert response.json["identity"] == "kim"
    assert claims_of(response.json["token"]).identity == "kim"
    assert emulator.calls["GetParticipant"] == before  # allow asks LiveKit nothing more


@pytest.mark.parametrize("path", JOINS)
def test_reject_refuses_a_connected_username_with_409(reject, emulator, path) -> None:
    client = reject
    room = make_room(client)
    sid = client.get(f"/api/room/{room}").json["sid"]
    emulator.add_participant(room, "kim", "Kim")
    for room_id in (room, sid):
        response = client.post(path, json={"roomId": room_id, "userName": "kim"})
        assert response.status_code == 409
        assert response.json == {
            "statusCode": 409,
            "message": "Failed to join room: userName is already in the room",
        }
    # Someone else, and the same name once the first has left, get in.
    other = client.post(path, json={"roomId": room, "userName": "lee"})
    assert other.status_code == 200 and other.json["identity"] == "lee"
    emulator.remove_participant(room, "kim")
    again = client.post(path, json={"roomId": room, "userName": "kim"})
    assert again.status_code == 200 and again.json["identity"] == "kim"


def test_reject_names_are_exact_and_korean_names_work(reject, emulator) -> None:
    client = reject
    room = make_room(client)
    emulator.add_participant(room, "김민수")
    emulator.add_participant(room, "kim")
    taken = client.post("/api/token", json={"roomId": room, "userName": "김민수"})
    assert taken.status_code == 409
    # Any other name is another identity, however close.
    assert (
        client.post("/api/token", json={"roomId": room, "userName": "김민수2"}).status_code == 200
    )
    assert client.post("/api/token", json={"roomId": room, "userName": "KIM"}).status_code == 200


def test_reject_with_a_sick_livekit_is_503_not_a_token(serve, livekit_emulator) -> None:
    client = serve(duplicate_username="reject")
    room = make_room(client)
    livekit_emulator.disturb("unavailable", method="GetParticipant")
    response = client.post("/api/token", json={"roomId": room, "userName": "kim"})
    assert response.status_code == 503
    assert (
        response.json["message"] == "Failed to join room: LiveKit is unavailable (503 unavailable)"
    )


@pytest.mark.parametrize("path", JOINS)
def test_unique_keeps_the_name_and_makes_every_identity_unique(unique, emulator, path) -> None:
    client = unique
    created = client.post("/api/room/create", json={"userName": "host"}).json
    assert re.fullmatch(r"host#[0-9a-f]{8}", created["identity"])
    assert created["userName"] == "host"
    room = created["roomId"]
    identities = set()
    for _ in range(5):
        body = client.post(path, json={"roomId": room, "userName": "박 지민"}).json
        claims = claims_of(body["token"])
        assert claims.name == "박 지민"
        assert claims.identity == body["identity"]
        assert re.fullmatch(r"박 지민#[0-9a-f]{8}", body["identity"])
        identities.add(body["identity"])
        # Both can be in the room at once: neither disconnects the other.
        emulator.add_participant(room, body["identity"], claims.name)
    assert len(identities) == 5
    people = client.run(client.app.ctx.livekit.rooms.participants(room))[1]
    assert sorted(p.identity for p in people) == sorted(identities)


def test_a_bad_policy_is_refused_naming_the_variable(monkeypatch) -> None:
    from aura_livekit_backend.settings import SettingsError, load_settings

    monkeypatch.setenv("AURA_DUPLICATE_USERNAME", "kick")
    with pytest.raises(SettingsError, match=r"^AURA_DUPLICATE_USERNAME: Input should be 'allow'"):
        load_settings()
