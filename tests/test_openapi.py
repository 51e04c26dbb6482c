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
    assert set(create["properties"]) == {"userName", "roomTopic", "description", "maxParticipants"}
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
