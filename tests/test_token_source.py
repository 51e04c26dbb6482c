"""LiveKit's client token endpoint, room options and agent dispatch, against the emulator.

Value tables run on the request models (no server); HTTP cases are one per code path.
"""

from __future__ import annotations

from typing import Any

import jwt
import pytest
from pydantic import ValidationError

from aura_livekit_backend.endpoints.token_source import RoomConfigIn, TokenSourceRequest
from aura_livekit_backend.endpoints.tokens import JoinRoom
from aura_livekit_backend.testing.issuer import DevIssuer
from aura_livekit_backend.testing.pytest_plugin import TEST_API_SECRET
from aura_livekit_backend.validation import describe

PATH = "/api/livekit/token"
AGENT = "agent-x"
REPLY_KEYS = {"server_url", "participant_token", "participant_name", "room_name"}


def claims(token: str) -> dict[str, Any]:
    """What LiveKit reads from a token the service minted."""
    return jwt.decode(token, TEST_API_SECRET, algorithms=["HS256"])


def refusal(model: type, data: dict[str, Any]) -> str:
    with pytest.raises(ValidationError) as caught:
        model.model_validate(data)
    return describe(caught.value)


# -- the request models: value tables, no server --------------------------------------


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"room_name": 5}, "room_name: Input should be a valid string"),
        ({"participant_metadata": "x" * 64_001}, "participant_metadata: must be at most 64000"),
        ({"participant_attributes": {"a": 1}}, "participant_attributes.a: Input should be a valid"),
        ({"participant_attributes": ["a"]}, "participant_attributes: Input should be a valid dict"),
        ({"participant_attributes": {"": "v"}}, "an attribute name must not be empty"),
        ({"participant_attributes": {"k": "v" * 64_000}}, "at most 64000 bytes (UTF-8), names"),
        ({"participant_identity": ""}, "participant_identity: must not be empty"),
        ({"roomName": "a", "surprise": 1}, "surprise is not a known field"),
        ({"room_config": []}, "room_config: Input should be a valid dictionary"),
        ({"room_config": {"agents": {}}}, "room_config.agents: Input should be a valid list"),
        ({"room_config": {"agents": [{"agent_name": 7}]}}, "agents.0.agent_name: Input should"),
        ({"room_config": {"agents": [{}]}}, "room_config.agents.0.agent_name is required"),
        ({"room_config": {"agents": [{"agent_name": "a"}] * 9}}, "at most 8 items"),
        ({"room_config": {"empty_timeout": "5"}}, "empty_timeout: Input should be a valid int"),
        ({"room_config": {"emptyTimeout": 0}}, "emptyTimeout: Input should be greater than"),
        ({"room_config": {"departure_timeout": 86_401}}, "less than or equal to 86400"),
        ({"room_config": {"metadata": "m" * 16_001}}, "metadata: must be at most 16000 bytes"),
        ({"room_config": {"deep": {"a": {"b": {"c": 1}}}}}, "room_config.deep is not a known"),
    ],
)
def test_bad_token_requests_are_refused_naming_the_field(data, message) -> None:
    assert message in refusal(TokenSourceRequest, data)


def test_snake_and_camel_case_are_both_read() -> None:
    snake = TokenSourceRequest.model_validate(
        {"room_name": "r", "participant_identity": "i", "room_config": {"empty_timeout": 9}}
    )
    camel = TokenSourceRequest.model_validate(
        {"roomName": "r", "participantIdentity": "i", "roomConfig": {"emptyTimeout": 9}}
    )
    assert snake == camel
    assert snake.room_config == RoomConfigIn(empty_timeout=9)


def test_join_bodies_take_metadata_and_attributes_within_limits() -> None:
    base = {"userName": "ann", "roomId": "r"}
    ok = JoinRoom.model_validate({**base, "metadata": "m", "attributes": {"k": "v"}})
    assert (ok.metadata, ok.attributes) == ("m", {"k": "v"})
    assert "attributes.k: Input should be a valid string" in refusal(
        JoinRoom, {**base, "attributes": {"k": True}}
    )
    assert "metadata: must be at most 64000" in refusal(
        JoinRoom, {**base, "metadata": "é" * 32_001}
    )


# -- over HTTP -----------------------------------------------------------------------


def test_an_empty_body_is_a_fresh_room_answered_201_in_snake_case(serve, livekit_emulator) -> None:
    client = serve()
    response = client.post(PATH)
    assert response.status_code == 201, response.text
    body = response.json
    assert set(body) == REPLY_KEYS
    assert body["room_name"] in livekit_emulator.room_names()
    host = client.post("/api/room/create", json={"userName": "host"}).json
    assert body["server_url"] == host["livekitUrl"]
    seen = claims(body["participant_token"])
    assert seen["sub"].startswith("guest-") and seen["name"] == body["participant_name"]
    assert seen["video"]["room"] == body["room_name"]
    assert "roomConfig" not in seen and "metadata" not in seen
    # The room has the service's facts, as one made by POST /room/create.
    room = client.get(f"/api/room/{body['room_name']}").json
    assert room["createdBy"] == seen["sub"] and room["roomTopic"] == "새 회의"


def test_a_join_to_an_existing_room_dispatches_the_agent_once(serve, livekit_emulator) -> None:
    client = serve(allowed_agents=AGENT)
    room = client.post("/api/room/create", json={"userName": "host"}).json["roomId"]
    request = {
        "room_name": room,
        "participant_identity": "ann",
        "participant_name": "Ann",
        "participant_metadata": "m",
        "participant_attributes": {"a": "b"},
        "room_config": {"agents": [{"agent_name": AGENT, "metadata": "am"}]},
    }
    first = client.post(PATH, json=request)
    assert first.status_code == 201, first.text
    seen = claims(first.json["participant_token"])
    assert (seen["sub"], seen["name"], seen["metadata"], seen["attributes"]) == (
        "ann", "Ann", "m", {"a": "b"},
    )  # fmt: skip
    assert seen["roomConfig"] == {"agents": [{"agentName": AGENT, "metadata": "am"}]}
    assert client.post(PATH, json=request).status_code == 201
    dispatched = livekit_emulator.dispatches(room)
    assert [(d.agent_name, d.metadata) for d in dispatched] == [(AGENT, "am")]
    # The token's roomConfig alone would not have done it: LiveKit ignores it here.
    joined = livekit_emulator.join_with_token(first.json["participant_token"])
    assert (joined.identity, joined.metadata, dict(joined.attributes)) == ("ann", "m", {"a": "b"})
    assert len(livekit_emulator.dispatches(room)) == 1


def test_a_new_room_gets_its_options_and_agents_at_creation(serve, livekit_emulator) -> None:
    client = serve(allowed_agents=f"{AGENT},agent-y")
    config = {
        "emptyTimeout": 60,
        "departureTimeout": 5,
        "metadata": '{"app":1}',
        "agents": [{"agentName": "agent-y"}],
    }
    response = client.post(PATH, json={"room_config": config})
    assert response.status_code == 201, response.text
    name = response.json["room_name"]
    assert [d.agent_name for d in livekit_emulator.dispatches(name)] == ["agent-y"]
    room = client.get(f"/api/room/{name}").json
    assert (room["emptyTimeout"], room["departureTimeout"]) == (60, 5)
    assert (room["metadata"], room["agents"], room["roomTopic"]) == (
        '{"app":1}',
        ["agent-y"],
        "새 회의",
    )


def test_room_create_takes_the_options_too(serve, livekit_emulator) -> None:
    client = serve(allowed_agents=AGENT)
    created = client.post(
        "/api/room/create",
        json={
            "userName": "host",
            "roomTopic": "T",
            "emptyTimeout": 120,
            "metadata": "app",
            "agents": [{"agentName": AGENT, "metadata": "x"}],
        },
    )
    assert created.status_code == 200, created.text
    room = client.get(f"/api/room/{created.json['sid']}").json
    assert (room["roomTopic"], room["emptyTimeout"], room["departureTimeout"]) == ("T", 120, 20)
    assert (room["metadata"], room["agents"]) == ("app", [AGENT])
    made = livekit_emulator.dispatches(created.json["roomId"])
    assert [(d.agent_name, d.metadata) for d in made] == [(AGENT, "x")]


@pytest.mark.parametrize(
    ("request_body", "message"),
    [
        ({"room_config": {"agents": [{"agent_name": "other"}]}}, "agent 'other' is not allowed"),
        ({"room_config": {"egress": {"room": {}}}}, "room_config.egress: callers may not set"),
        ({"roomConfig": {"maxParticipants": 3}}, "room_config.max_participants: callers may"),
        (
            {"room_config": {"agents": [{"agent_name": AGENT, "deployment": "d"}]}},
            "room_config.agents.0.deployment: callers may not set it",
        ),
    ],
)
def test_fields_a_caller_may_not_set_are_403_naming_them(serve, request_body, message) -> None:
    client = serve(allowed_agents=AGENT)
    response = client.post(PATH, json=request_body)
    assert response.status_code == 403
    assert message in response.json["message"]


def test_settings_decide_missing_and_unnamed_rooms(serve, livekit_emulator) -> None:
    client = serve(token_source_new_rooms=False, token_source_create_missing=True)
    assert client.post(PATH, json={}).json == {
        "statusCode": 400,
        "message": "room_name is required",
    }
    made = client.post(PATH, json={"room_name": "on-demand"})
    assert made.status_code == 201 and "on-demand" in livekit_emulator.room_names()
    assert serve().post(PATH, json={"room_name": "nowhere"}).status_code == 404


def test_a_verified_caller_is_itself_whatever_identity_it_sends(serve) -> None:
    with DevIssuer("aud-ts") as issuer:
        client = serve(auth="jwt", auth_issuer=issuer.url, auth_audience="aud-ts")
        auth = {"Authorization": f"Bearer {issuer.token('ann', name='Ann Lee')}"}
        ok = client.post(PATH, json={"participant_name": "A."}, headers=auth)
        assert ok.status_code == 201, ok.text
        seen = claims(ok.json["participant_token"])
        assert (seen["sub"], seen["name"]) == ("ann", "A.")
        other = client.post(PATH, json={"participant_identity": "bob"}, headers=auth)
        assert other.status_code == 403
        assert other.json["message"].startswith("participant_identity:")
        assert client.post(PATH, json={}).status_code == 401


def test_join_routes_put_metadata_and_attributes_in_the_token(serve) -> None:
    client = serve()
    room = client.post("/api/room/create", json={"userName": "host"}).json["roomId"]
    body = {"roomId": room, "userName": "bob", "metadata": "m", "attributes": {"k": "v"}}
    for path in ("/api/token", "/api/room/join"):
        seen = claims(client.post(path, json=body).json["token"])
        assert (seen["metadata"], seen["attributes"]) == ("m", {"k": "v"})


def test_the_emulator_applies_a_tokens_room_config_only_when_the_join_creates_the_room(
    livekit_emulator,
) -> None:
    import httpx
    from livekit import api

    from aura_livekit_backend.testing.pytest_plugin import TEST_API_KEY

    def token(room: str) -> str:
        config = api.RoomConfiguration(
            empty_timeout=42, agents=[api.RoomAgentDispatch(agent_name=AGENT, metadata="m")]
        )
        return (
            api.AccessToken(TEST_API_KEY, TEST_API_SECRET)
            .with_identity("ann")
            .with_grants(api.VideoGrants(room_join=True, room=room))
            .with_room_config(config)
            .to_jwt()
        )

    hook = f"{livekit_emulator.url}/_emulator/rooms/fresh/participants"
    auth = {"Authorization": f"Bearer {livekit_emulator.hook_token}"}
    joined = httpx.post(hook, json={"token": token("fresh")}, headers=auth, timeout=5)
    assert joined.status_code == 200 and joined.json()["identity"] == "ann"
    assert [(d.agent_name, d.metadata) for d in livekit_emulator.dispatches("fresh")] == [
        (AGENT, "m")
    ]
    wrong_room = httpx.post(hook, json={"token": token("other")}, headers=auth, timeout=5)
    assert wrong_room.status_code == 401
    # A room that exists ignores it: no dispatch.
    livekit_emulator.join_with_token(token("fresh"))
    assert len(livekit_emulator.dispatches("fresh")) == 1


def test_a_browser_preflight_is_answered_for_the_configured_origin(serve) -> None:
    client = serve(cors_origins="https://app.example")
    asked = {
        "Origin": "https://app.example",
        "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "authorization,content-type",
    }
    response = client.request("options", PATH, headers=asked)
    assert response.status_code in (200, 204)
    assert response.headers["access-control-allow-origin"] == "https://app.example"
    allowed = response.headers["access-control-allow-headers"].lower()
    assert "authorization" in allowed and "content-type" in allowed
    other = client.request("options", PATH, headers={**asked, "Origin": "https://evil.example"})
    assert "access-control-allow-origin" not in other.headers
