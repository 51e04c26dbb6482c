"""The OpenAPI document says what the service enforces: pydantic's schemas, in 3.0's dialect."""

from __future__ import annotations

import json
import re

import pytest

from aura_livekit_backend.endpoints.health import plugin as HEALTH
from aura_livekit_backend.plugin import Plugin, PluginContext
from aura_livekit_backend.validation import check_text


@pytest.fixture
def spec(serve) -> dict:
    return serve().get("/docs/openapi.json").json


def body_schema(spec: dict, path: str, method: str = "post") -> dict:
    return spec["paths"][path][method]["requestBody"]["content"]["application/json"]["schema"]


def test_request_bodies_are_pydantic_schemas(spec) -> None:
    create = body_schema(spec, "/api/room/create")
    assert create["required"] == ["userName"]
    assert create["additionalProperties"] is False
    assert set(create["properties"]) == {
        "userName", "roomTopic", "description", "maxParticipants",
        "emptyTimeout", "departureTimeout", "metadata", "agents",
    }  # fmt: skip
    user = create["properties"]["userName"]
    assert (user["type"], user["minLength"], user["maxLength"]) == ("string", 1, 128)
    topic = create["properties"]["roomTopic"]
    assert (topic["type"], topic["nullable"], topic["maxLength"]) == ("string", True, 200)
    limit = create["properties"]["maxParticipants"]
    assert (limit["type"], limit["minimum"], limit["nullable"]) == ("integer", 1, True)
    join = body_schema(spec, "/api/token")
    assert sorted(join["required"]) == ["roomId", "userName"]
    assert join["properties"]["roomId"]["maxLength"] == 256


def test_nothing_from_pydantic_or_json_schema_2020_leaks_into_the_document(spec) -> None:
    text = json.dumps(spec)
    for leak in ("model_config", "$defs", "$ref", '"title": "Username"', '"type": "null"'):
        assert leak not in text, leak


def test_responses_say_which_fields_always_come(spec) -> None:
    reply = spec["paths"]["/api/rooms"]["get"]["responses"]["200"]["content"]["application/json"]
    rooms = reply["schema"]
    assert rooms["required"] == ["rooms", "total"]
    room = rooms["properties"]["rooms"]["items"]
    assert "roomId" in room["required"] and room["properties"]["createdAt"]["type"] == "string"
    error = spec["paths"]["/api/token"]["post"]["responses"]["404"]["content"]["application/json"]
    assert error["schema"]["required"] == ["statusCode", "message"]


@pytest.mark.parametrize(
    "text",
    ["김민수", "さくら 桜", "👩‍💻", "a b", "x", "", " ", "\u3000", "a\u200bb", "nul\x00", "\u202e",
     "tab\there", "line\nbreak", "\ufeff", "\U000e0001", "\U000f0000", "\u00ad", "مرحبا"],
)  # fmt: skip
def test_text_patterns_accept_exactly_what_the_service_accepts(spec, text) -> None:
    create = body_schema(spec, "/api/room/create")["properties"]
    for field, multiline, required in (
        ("userName", False, True),
        ("roomTopic", False, False),
        ("description", True, False),
    ):
        pattern = re.compile(create[field]["pattern"])
        try:
            check_text(text, multiline=multiline)
            accepted = not required or bool(text.strip())
        except ValueError:
            accepted = False
        assert bool(pattern.search(text)) == accepted, (field, text)


def test_path_parameters_are_required_and_limited(spec) -> None:
    (param,) = spec["paths"]["/api/room/{roomId}"]["get"]["parameters"]
    assert (param["name"], param["in"], param["required"]) == ("roomId", "path", True)
    assert (param["schema"]["minLength"], param["schema"]["maxLength"]) == (1, 256)
    limit, cursor = spec["paths"]["/api/rooms"]["get"]["parameters"]
    assert limit["schema"] == {"type": "integer", "minimum": 1, "maximum": 1000}
    assert (cursor["name"], cursor["in"], cursor["schema"]["type"]) == ("cursor", "query", "string")


def test_401_is_documented_only_where_keys_apply(serve) -> None:
    open_spec = serve().get("/docs/openapi.json").json
    assert "401" not in open_spec["paths"]["/api/rooms"]["get"]["responses"]
    keyed = serve(api_keys="k-0123456789abcdef").get("/docs/openapi.json").json
    for path, method in (("/api/rooms", "get"), ("/api/room/create", "post"), ("/metrics", "get")):
        assert "401" in keyed["paths"][path][method]["responses"], path
    for path in ("/api/health", "/api/health/ready"):
        assert "401" not in keyed["paths"][path]["get"]["responses"], path


def _third_party(ctx: PluginContext) -> None:
    @ctx.blueprint.get("/hello")
    async def hello(request):
        return None


def test_a_third_party_route_is_guarded_and_documents_its_401(serve) -> None:
    client = serve(
        api_keys="k-0123456789abcdef",
        plugins={"health": HEALTH, "hello": Plugin(setup=_third_party)},
    )
    spec = client.get("/docs/openapi.json").json
    assert "401" in spec["paths"]["/api/hello"]["get"]["responses"]
    assert client.get("/api/hello").status_code == 401
    assert client.get("/api/health").status_code == 200


def documented_errors(spec: dict):
    for path, operations in spec["paths"].items():
        for method, operation in operations.items():
            for status, response in operation["responses"].items():
                if int(status) >= 400:
                    yield path, method, int(status), response


def test_every_documented_error_has_an_example_of_its_own_status(serve) -> None:
    spec = serve(api_keys="k-0123456789abcdef").get("/docs/openapi.json").json
    statuses = set()
    for path, method, status, response in documented_errors(spec):
        example = response["content"]["application/json"]["example"]
        assert example["statusCode"] == status, (path, method, status)
        assert example["message"], (path, method, status)
        statuses.add(status)
    assert {400, 401, 404, 409, 502, 503} <= statuses
    # The messages differ by status: no status borrows another's.
    examples = {
        status: response["content"]["application/json"]["example"]["message"]
        for _, _, status, response in documented_errors(spec)
    }
    assert len(set(examples.values())) == len(examples)


def _example(spec: dict, path: str, method: str, status: int) -> dict:
    return spec["paths"][path][method]["responses"][str(status)]["content"]["application/json"][
        "example"
    ]


def _bad_body(serve, livekit_emulator):
    return serve(), "post", "/api/room/create", {}


def _no_key(serve, livekit_emulator):
    return serve(api_keys="k-0123456789abcdef"), "get", "/api/rooms", None


def _missing_room(serve, livekit_emulator):
    return serve(), "post", "/api/room/join", {"roomId": "room-1-abcdef", "userName": "u"}


def _full_room(serve, livekit_emulator):
    client = serve()
    room = client.post("/api/room/create", json={"userName": "host", "maxParticipants": 1}).json
    livekit_emulator.add_participant(room["roomId"], "host")
    return client, "post", "/api/room/join", {"roomId": room["roomId"], "userName": "u"}


def _rejected_credentials(serve, livekit_emulator):
    client = serve(livekit_api_secret="a-wrong-secret-of-plenty-of-bytes-xyz")
    return client, "post", "/api/room/create", {"userName": "u"}


def _livekit_down(serve, livekit_emulator):
    client = serve()
    livekit_emulator.stop()
    return client, "get", "/api/rooms", None


@pytest.mark.parametrize(
    ("status", "situation"),
    [
        (400, _bad_body),
        (401, _no_key),
        (404, _missing_room),
        (409, _full_room),
        (502, _rejected_credentials),
        (503, _livekit_down),
    ],
)
def test_each_error_example_is_what_the_route_answers(
    serve, livekit_emulator, status, situation
) -> None:
    client, method, path, body = situation(serve, livekit_emulator)
    spec = client.get("/docs/openapi.json").json
    response = client.request(method, path, **({"json": body} if body is not None else {}))
    assert response.status_code == status
    assert response.json == _example(spec, path, method, status)


def test_the_client_token_endpoint_is_documented_as_livekit_defines_it(spec) -> None:
    operation = spec["paths"]["/api/livekit/token"]["post"]
    assert operation["requestBody"]["required"] is False
    request = body_schema(spec, "/api/livekit/token")
    assert set(request["properties"]) == {
        "room_name", "participant_identity", "participant_name", "participant_metadata",
        "participant_attributes", "room_config",
    }  # fmt: skip
    assert "required" not in request
    config = request["properties"]["room_config"]["properties"]
    assert config["agents"]["items"]["required"] == ["agent_name"]
    assert config["empty_timeout"]["maximum"] == 86400
    reply = operation["responses"]["201"]["content"]["application/json"]["schema"]
    assert set(reply["required"]) == {
        "server_url",
        "participant_token",
        "participant_name",
        "room_name",
    }
    assert {"400", "403", "404"} <= set(operation["responses"])
