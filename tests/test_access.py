"""AURA_API_KEYS: with keys set, nothing but health and the docs answers without one.

The tests that only call the keyed app share one (module-scoped); one middleware
guards every route, so each refused header is tried on one route, the routes in turn,
and the whole table of headers is a unit test of :class:`BearerKeys`.
"""

from __future__ import annotations

import pytest

from aura_livekit_backend import Settings
from aura_livekit_backend.access import BearerKeys
from aura_livekit_backend.settings import SettingsError, load_settings

KEY = "k-0123456789abcdef-first"
OTHER = "k-0123456789abcdef-second"

GUARDED = [
    ("get", "/api/rooms", None),
    ("get", "/api/room/some-room", None),
    ("post", "/api/room/create", {"userName": "u"}),
    ("post", "/api/room/join", {"roomId": "r", "userName": "u"}),
    ("post", "/api/token", {"roomId": "r", "userName": "u"}),
    ("get", "/metrics", None),
]


def call(client, method, path, body, headers=None):
    return client.request(
        method, path, headers=headers or {}, **({"json": body} if body is not None else {})
    )


@pytest.fixture(scope="module")
def keyed(module_aura_client):
    return module_aura_client(api_keys=f"{KEY}, {OTHER}")


#: Authorization headers that carry no valid key (None: no header at all).
REFUSED = [
    None,
    "",
    "Bearer",
    "Bearer wrong-key-0123456789",
    f"Basic {KEY}",
    f"Bearer {KEY}x",
    f"Bearer {KEY[:-1]}",
    KEY,
]


@pytest.mark.parametrize("authorization", REFUSED)
def test_no_refused_header_carries_a_key(authorization) -> None:
    assert not BearerKeys([KEY, OTHER]).admit(authorization)


@pytest.mark.parametrize(
    ("method", "path", "body", "authorization"),
    [(*GUARDED[i % len(GUARDED)], header) for i, header in enumerate(REFUSED)],
)
def test_every_guarded_route_is_401_without_a_valid_key(
    keyed, method, path, body, authorization
) -> None:
    headers = {} if authorization is None else {"Authorization": authorization}
    response = call(keyed, method, path, body, headers)
    assert response.status_code == 401
    assert response.json == {
        "statusCode": 401,
        "message": "a valid API key is required: send Authorization: Bearer <key>",
    }
    assert response.headers["WWW-Authenticate"] == 'Bearer realm="aura-livekit-backend"'
    assert "X-Request-ID" in response.headers
    assert KEY not in response.text and OTHER not in response.text


@pytest.mark.parametrize("key", [KEY, OTHER])
def test_any_configured_key_lets_a_caller_through(keyed, key) -> None:
    auth = {"Authorization": f"Bearer {key}"}
    created = keyed.post("/api/room/create", json={"userName": "u"}, headers=auth)
    assert created.status_code == 200
    room = created.json["roomId"]
    assert keyed.get(f"/api/room/{room}", headers=auth).status_code == 200
    listed = keyed.get("/api/rooms", headers=auth).json["rooms"]
    assert room in [r["roomId"] for r in listed]  # a shared emulator: others' rooms too
    assert keyed.get("/metrics", headers=auth).status_code == 200
    # The scheme is case-insensitive (RFC 7235); the key is not.
    lower = {"Authorization": f"bearer {key}"}
    assert (
        keyed.post("/api/token", json={"roomId": room, "userName": "v"}, headers=lower).json[
            "roomId"
        ]
        == room
    )


def test_health_checks_and_docs_answer_without_a_key(keyed) -> None:
    assert keyed.get("/api/health").status_code == 200
    assert keyed.get("/api/health/ready").status_code == 200
    # Load balancers often probe with HEAD, which sanic-ext routes separately.
    assert keyed.request("head", "/api/health").status_code == 200
    assert keyed.request("head", "/api/health/ready").status_code == 200
    assert keyed.request("head", "/api/rooms").status_code == 401
    assert keyed.request("head", "/api/room/some-room").status_code == 401
    assert keyed.get("/docs/openapi.json").status_code == 200
    assert keyed.get("/docs").status_code == 200


def test_unknown_paths_stay_404_and_preflights_are_answered(serve) -> None:
    client = serve(api_keys=KEY, cors_origins="https://app.example")
    assert client.get("/api/nope").status_code == 404
    preflight = client.request(
        "options",
        "/api/room/create",
        headers={
            "Origin": "https://app.example",
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "authorization, content-type",
        },
    )
    assert preflight.status_code == 204
    assert preflight.headers["access-control-allow-origin"] == "https://app.example"
    assert "authorization" in preflight.headers["access-control-allow-headers"].lower()


def test_without_keys_everything_is_open(serve) -> None:
    serve(api_keys=KEY)  # an app with keys built first must not leave them to the next
    client = serve()
    assert client.get("/api/rooms").status_code == 200
    spec = client.get("/docs/openapi.json").json
    assert spec["security"] == []
    assert "apiKey" not in spec["components"].get("securitySchemes", {})


def test_the_openapi_document_declares_the_key(serve) -> None:
    # An app of its own: sanic-ext keeps one OpenAPI document per process, rebuilt by
    # the app that started last, so a shared app's may be another app's by now.
    spec = serve(api_keys=KEY).get("/docs/openapi.json").json
    assert spec["components"]["securitySchemes"]["apiKey"] == {
        "type": "http",
        "scheme": "bearer",
        "description": "A key from AURA_API_KEYS",
    }
    assert spec["security"] == [{"apiKey": []}]
    # Health overrides the document's requirement with "no credentials needed".
    assert spec["paths"]["/api/health"]["get"]["security"] == [{}]
    assert "security" not in spec["paths"]["/api/rooms"]["get"]


def test_bearer_keys_compare_whole_keys_only() -> None:
    keys = BearerKeys([KEY, ""])
    assert keys
    assert keys.admit(f"Bearer {KEY}")
    assert keys.admit(f"Bearer   {KEY}  ")
    assert not keys.admit(f"Bearer {KEY} extra")
    assert not keys.admit(f"Token {KEY}")
    assert not keys.admit(None)
    assert not BearerKeys([""])
    assert not BearerKeys([]).admit("Bearer ")


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        ("short-key", "at least 16 characters"),
        ("a-long-enough-key-0001,tiny", "at least 16 characters"),
        ("a-long-enough key-0001", "whitespace"),
    ],
)
def test_weak_keys_are_refused_without_printing_them(monkeypatch, value, problem) -> None:
    monkeypatch.setenv("AURA_API_KEYS", value)
    with pytest.raises(SettingsError) as refused:
        load_settings()
    message = str(refused.value)
    assert message.startswith("AURA_API_KEYS: ") and problem in message
    for part in value.split(","):
        assert part not in message


def test_keys_are_read_from_the_environment_as_secrets(monkeypatch) -> None:
    monkeypatch.setenv("AURA_API_KEYS", f" {KEY} ,, {OTHER} ")
    settings = Settings(_env_file=None)
    assert [key.get_secret_value() for key in settings.api_keys] == [KEY, OTHER]
    assert KEY not in repr(settings) and KEY not in str(settings.model_dump())
