"""A sick LiveKit: clear 502/503 answers within the timeout, and recovery without a restart."""

from __future__ import annotations

import time

import pytest

from aura_livekit_backend.emulator import LiveKitEmulator, free_port
from aura_livekit_backend.testing.pytest_plugin import TEST_API_KEY, TEST_API_SECRET

REQUESTS = [
    ("post", "/api/room/create", {"userName": "u"}, "Failed to create room"),
    ("post", "/api/room/join", {"roomId": "r", "userName": "u"}, "Failed to join room"),
    ("post", "/api/token", {"roomId": "r", "userName": "u"}, "Failed to join room"),
    ("get", "/api/room/r", None, "Failed to get room"),
    ("get", "/api/rooms", None, "Failed to list rooms"),
]


def call(client, method: str, path: str, body, **kwargs):
    return client.request(method, path, **({"json": body} if body is not None else {}), **kwargs)


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
    livekit_emulator.disturb(code, method="ListRooms")
    response = client.get("/api/rooms")
    assert response.json == {"statusCode": status, "message": f"Failed to list rooms: {answer}"}
    livekit_emulator.heal()
    assert client.get("/api/rooms").status_code == 200


def test_a_missing_grant_is_answered_as_livekit_answers_it(serve, livekit_emulator) -> None:
    # LiveKit answers a token without the grant a call needs exactly so (its
    # twirpAuthError): Twirp unauthenticated, 401, "permissions denied". That is a
    # permission the key lacks, not credentials LiveKit refuses, and the answer says so.
    client = serve()
    livekit_emulator.disturb("unauthenticated", method="ListRooms", msg="permissions denied")
    assert client.get("/api/rooms").json == {
        "statusCode": 502,
        "message": "Failed to list rooms: LiveKit refused the call: the API key lacks a permission",
    }
    # Any other unauthenticated answer is still about the credentials.
    livekit_emulator.disturb("unauthenticated", method="ListRooms", msg="invalid token")
    assert client.get("/api/rooms").json == {
        "statusCode": 502,
        "message": "Failed to list rooms: LiveKit rejected the service's credentials "
        "(check LIVEKIT_API_KEY and LIVEKIT_API_SECRET)",
    }


# -- the emulator's fault switches: each one, on every LiveKit-backed endpoint ----------

SICK = [
    ("garbage", 502, "LiveKit sent an answer that could not be read"),
    ("reset", 503, "LiveKit is unavailable (the connection was dropped)"),
    (
        "plain_401",
        502,
        "LiveKit rejected the service's credentials (check LIVEKIT_API_KEY and LIVEKIT_API_SECRET)",
    ),
    ("proxy_502", 503, "LiveKit is unavailable (502 unknown)"),
    ("unavailable", 503, "LiveKit is unavailable (503 unavailable)"),
    ("stall", 503, "LiveKit is unavailable (no answer within 5 s)"),
]


@pytest.mark.parametrize(("kind", "status", "answer"), SICK)
@pytest.mark.parametrize(("method", "path", "body", "prefix"), REQUESTS)
def test_each_fault_is_a_documented_answer_and_heals(
    serve, livekit_emulator, kind, status, answer, method, path, body, prefix
) -> None:
    # The default LiveKit timeout (5 s), not a short one: on a loaded 2-core machine the
    # test process can go unscheduled for over a second, and then a call that must
    # succeed (the create, the call after heal()) timed out at 0.5 s. A stall is still
    # answered by that timeout, as its message says, before the test client's own
    # (raised from httpx's 5 s for the one call that may wait that long).
    client = serve(room_list_cache_seconds=0)
    real = client.post("/api/room/create", json={"userName": "u"}).json["roomId"]
    body = body and {**body, **({"roomId": real} if "roomId" in body else {})}
    path = f"/api/room/{real}" if path == "/api/room/r" else path
    livekit_emulator.disturb(kind)
    response = call(client, method, path, body, timeout=15)
    assert response.json == {"statusCode": status, "message": f"{prefix}: {answer}"}
    assert livekit_emulator.faults_served[kind] >= 1
    assert client.get("/api/health").status_code == 200
    livekit_emulator.heal()
    assert call(client, method, path, body).status_code == 200


def test_a_timed_fault_heals_by_itself(serve, livekit_emulator) -> None:
    client = serve(room_list_cache_seconds=0)
    livekit_emulator.disturb("reset", seconds=0.5)
    assert client.get("/api/rooms").status_code == 503
    time.sleep(0.6)
    assert client.get("/api/rooms").status_code == 200


def test_an_outage_of_n_seconds_is_503_then_service_resumes_unrestarted(
    serve, livekit_emulator
) -> None:
    client = serve(room_list_cache_seconds=0, readiness_cache_seconds=0)
    room = client.post("/api/room/create", json={"userName": "u"}).json["roomId"]
    livekit_emulator.outage(1.0)
    down = client.post("/api/token", json={"roomId": room, "userName": "v"})
    assert down.json["message"] == "Failed to join room: LiveKit is unavailable (cannot connect)"
    assert client.get("/api/health/ready").status_code == 503
    assert client.get("/api/health").status_code == 200
    deadline = time.monotonic() + 5
    while client.get("/api/health/ready").status_code != 200:
        assert time.monotonic() < deadline, "the service did not see LiveKit come back"
        time.sleep(0.1)
    # The pooled connections of before the outage are dead; the next call must not fail.
    assert client.post("/api/token", json={"roomId": room, "userName": "v"}).status_code == 200


def test_a_share_of_faults_hits_about_that_share(serve, livekit_emulator) -> None:
    client = serve(room_list_cache_seconds=0)
    livekit_emulator.disturb(["unavailable", "garbage"], method="ListRooms", share=0.3)
    statuses = [client.get("/api/rooms").status_code for _ in range(200)]
    failed = sum(status != 200 for status in statuses)
    assert set(statuses) <= {200, 502, 503}
    assert 30 <= failed <= 90, failed  # 60 expected; binomial sd ≈ 6.5
    assert (
        livekit_emulator.faults_served["unavailable"] + livekit_emulator.faults_served["garbage"]
        == failed
    )
    assert livekit_emulator.faults_served["unavailable"] > 0
    assert livekit_emulator.faults_served["garbage"] > 0


@pytest.mark.parametrize(
    ("call", "problem"),
    [
        (lambda lk: lk.disturb("melt"), "unknown fault 'melt'"),
        (lambda lk: lk.disturb("reset", method="Melt"), "RoomService has no method Melt"),
        (lambda lk: lk.disturb("reset", share=0), "share must be more than 0"),
        (lambda lk: lk.disturb([]), "name at least one fault"),
    ],
)
def test_fault_switches_refuse_what_they_cannot_do(livekit_emulator, call, problem) -> None:
    with pytest.raises(ValueError, match=problem):
        call(livekit_emulator)
