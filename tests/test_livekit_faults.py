"""A sick LiveKit: clear 502/503 answers within the timeout, and recovery without a restart."""

from __future__ import annotations

import time

import pytest

from aura_livekit_backend.testing.emulator import LiveKitEmulator, free_port
from aura_livekit_backend.testing.pytest_plugin import TEST_API_KEY, TEST_API_SECRET

REQUESTS = [
    ("post", "/api/room/create", {"userName": "u"}, "Failed to create room"),
    ("post", "/api/room/join", {"roomId": "r", "userName": "u"}, "Failed to join room"),
    ("post", "/api/token", {"roomId": "r", "userName": "u"}, "Failed to join room"),
    ("get", "/api/room/r", None, "Failed to get room"),
    ("get", "/api/rooms", None, "Failed to list rooms"),
]


def call(client, method: str, path: str, body):
    return client.request(method, path, **({"json": body} if body is not None else {}))


@pytest.mark.parametrize(("method", "path", "body", "prefix"), REQUESTS)
def test_unreachable_livekit_is_503_and_health_stays_up(
    serve, livekit_emulator, method, path, body, prefix
) -> None:
    client = serve()
    livekit_emulator.stop()
    response = call(client, method, path, body)
    assert response.status_code == 503
    assert response.json == {
        "statusCode": 503,
        "message": f"{prefix}: LiveKit is unavailable (cannot connect)",
    }
    assert client.get("/api/health").status_code == 200


@pytest.mark.parametrize(("method", "path", "body", "prefix"), REQUESTS)
def test_slow_livekit_is_503_within_the_timeout(
    serve, livekit_emulator, method, path, body, prefix
) -> None:
    client = serve(livekit_timeout=0.3)
    livekit_emulator.latency = 1.5
    started = time.monotonic()
    response = call(client, method, path, body)
    elapsed = time.monotonic() - started
    assert response.status_code == 503
    assert response.json["message"] == f"{prefix}: LiveKit is unavailable (no answer within 0.3 s)"
    # Answered by our timeout, not by LiveKit finally answering.
    assert elapsed < 1.2, elapsed


@pytest.mark.parametrize(
    ("key", "secret"),
    [(TEST_API_KEY, "a-wrong-secret-of-plenty-of-bytes-xyz"), ("APIunknown", TEST_API_SECRET)],
)
@pytest.mark.parametrize(("method", "path", "body", "prefix"), REQUESTS)
def test_rejected_credentials_are_502_without_echoing_them(
    serve, method, path, body, prefix, key, secret
) -> None:
    client = serve(livekit_api_key=key, livekit_api_secret=secret)
    response = call(client, method, path, body)
    assert response.status_code == 502
    assert response.json["message"] == (
        f"{prefix}: LiveKit rejected the service's credentials "
        "(check LIVEKIT_API_KEY and LIVEKIT_API_SECRET)"
    )
    assert secret not in response.text and key not in response.text


def test_the_service_recovers_when_livekit_comes_back(serve, make_settings) -> None:
    port = free_port()
    emulator = LiveKitEmulator(TEST_API_KEY, TEST_API_SECRET, port=port)
    client = serve(make_settings(livekit_url=emulator.url, room_list_cache_seconds=0))
    assert client.get("/api/rooms").status_code == 503  # not started yet
    with emulator:
        assert client.post("/api/room/create", json={"userName": "u"}).status_code == 200
        assert client.get("/api/rooms").json["total"] == 1
    assert client.get("/api/rooms").status_code == 503
    with emulator:
        assert client.get("/api/rooms").json["total"] == 1  # same LiveKit, same rooms


@pytest.mark.parametrize(
    ("code", "status", "answer"),
    [
        ("internal", 502, "LiveKit answered with an unexpected error (500 internal)"),
        (
            "invalid_argument",
            502,
            "LiveKit answered with an unexpected error (400 invalid_argument)",
        ),
        ("permission_denied", 502, "LiveKit refused the call: the API key lacks a permission"),
        ("unavailable", 503, "LiveKit is unavailable (503 unavailable)"),
        ("resource_exhausted", 503, "LiveKit is unavailable (429 resource_exhausted)"),
    ],
)
def test_livekit_error_codes_map_to_502_or_503(
    serve, livekit_emulator, code: str, status: int, answer: str
) -> None:
    client = serve()
    livekit_emulator.fail("ListRooms", code)
    response = client.get("/api/rooms")
    assert response.json == {"statusCode": status, "message": f"Failed to list rooms: {answer}"}
    livekit_emulator.fail("ListRooms", None)
    assert client.get("/api/rooms").status_code == 200
