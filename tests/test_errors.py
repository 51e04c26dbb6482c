"""Every error answer is JSON {"statusCode", "message"}: never HTML, never a traceback.

Tests that read share one app per set of plugins (module-scoped); tests of settings
(body limit, CORS) serve their own.
"""

from __future__ import annotations

import logging

import pytest

from aura_livekit_backend.endpoints.rooms import plugin as ROOMS
from aura_livekit_backend.endpoints.tokens import plugin as TOKENS
from aura_livekit_backend.plugin import ApiError, Plugin, PluginContext
from aura_livekit_backend.testing.client import ServiceClient


def _failing(ctx: PluginContext) -> None:
    @ctx.blueprint.get("/boom")
    async def boom(request):
        raise RuntimeError("internal detail that must stay in the log")

    @ctx.blueprint.get("/teapot")
    async def teapot(request):
        raise ApiError(418, "short and stout")


FAILING = {"failing": Plugin(setup=_failing)}


@pytest.fixture(scope="module")
def client(module_aura_client) -> ServiceClient:
    return module_aura_client()


@pytest.fixture(scope="module")
def failing(module_aura_client) -> ServiceClient:
    return module_aura_client(plugins=FAILING)


@pytest.fixture(scope="module")
def rooms_and_tokens(module_aura_client) -> ServiceClient:
    return module_aura_client(plugins={"rooms": ROOMS, "tokens": TOKENS})


def test_unknown_route_is_a_json_404(client) -> None:
    response = client.get("/api/nope")
    assert response.status_code == 404
    assert response.headers["content-type"] == "application/json"
    assert response.json == {"statusCode": 404, "message": "Requested URL /api/nope not found"}


def test_wrong_method_is_a_json_405(client) -> None:
    response = client.request("delete", "/api/health")
    assert response.status_code == 405
    body = response.json
    assert body["statusCode"] == 405
    assert "DELETE" in body["message"]


def test_unexpected_exception_is_a_bare_500_and_logged(failing, caplog) -> None:
    with caplog.at_level(logging.ERROR):
        response = failing.get("/api/boom")
    assert response.status_code == 500
    assert response.json == {"statusCode": 500, "message": "Internal server error"}
    assert "internal detail" not in response.text
    assert "Traceback" not in response.text
    assert any("internal detail" in (r.exc_text or "") or r.exc_info for r in caplog.records)


@pytest.mark.parametrize("path", ["/api/teapot"])
def test_api_error_keeps_its_status_and_message(failing, path: str) -> None:
    response = failing.get(path)
    assert response.status_code == 418
    assert response.json == {"statusCode": 418, "message": "short and stout"}


def test_a_body_over_the_limit_is_a_json_413(serve) -> None:
    client = serve(max_body_bytes=2048)
    response = client.post(
        "/api/room/create",
        content=b'{"userName": "' + b"x" * 4096 + b'"}',
        headers={"content-type": "application/json"},
    )
    assert response.status_code == 413
    assert response.json["statusCode"] == 413
    assert response.json["message"]


@pytest.mark.parametrize(
    ("fields", "origin", "allowed"),
    [
        ({}, "https://evil.example", None),
        ({"cors_origins": ["https://app.example"]}, "https://app.example", "https://app.example"),
        ({"cors_origins": ["https://app.example"]}, "https://evil.example", None),
        ({"dev": True}, "http://localhost:5173", "http://localhost:5173"),
    ],
)
def test_cors_allows_only_configured_origins(serve, fields, origin, allowed) -> None:
    response = serve(**fields).request(
        "options",
        "/api/room/create",
        headers={"Origin": origin, "Access-Control-Request-Method": "POST"},
    )
    assert response.headers.get("access-control-allow-origin") == allowed


@pytest.mark.parametrize(
    ("method", "path", "allowed"),
    [
        ("put", "/api/rooms", {"GET", "HEAD", "OPTIONS"}),
        ("put", "/api/room/some-room", {"GET", "HEAD", "OPTIONS"}),
        ("trace", "/api/room/some-room", {"GET", "HEAD", "OPTIONS"}),
        ("get", "/api/token", {"POST", "OPTIONS"}),
    ],
)
def test_every_405_names_the_allowed_methods(rooms_and_tokens, method, path, allowed) -> None:
    # Sanic names them for static paths only; a room's path is dynamic.
    response = rooms_and_tokens.request(method, path)
    assert response.status_code == 405
    assert set(response.headers["allow"].split(", ")) == allowed
    assert response.json["statusCode"] == 405


def test_a_message_quoting_bytes_that_are_not_utf8_is_still_json() -> None:
    from aura_livekit_backend.errors import JsonErrorHandler

    # Sanic decodes undecodable header bytes as surrogates; a message may quote them.
    answer = JsonErrorHandler().default(None, ApiError(400, "bad header: \udcff"))
    assert answer.status == 400
    assert answer.body == b'{"statusCode":400,"message":"bad header: \\\\udcff"}'
