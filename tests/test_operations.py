"""Operations: readiness, Prometheus metrics, request ids, logs, trusted proxies.

Request-id tests share one served app (``client``); tests that count an app's metrics
from zero, read logs (logging is configured per process, by the app built last),
change settings or make LiveKit sick serve their own.
"""

from __future__ import annotations

import json
import logging
import re

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from aura_livekit_backend.emulator import LiveKitEmulator, free_port
from aura_livekit_backend.testing.client import ServiceClient
from aura_livekit_backend.testing.pytest_plugin import TEST_API_KEY, TEST_API_SECRET

from .test_cli import server, stop


@pytest.fixture(scope="module")
def client(module_aura_client) -> ServiceClient:
    return module_aura_client()


def samples(text: str) -> dict[tuple[str, tuple], float]:
    """Every sample of a Prometheus exposition, by (name, sorted labels)."""
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def total(text: str, name: str, **labels: str) -> float:
    """The sum of ``name``'s samples whose labels include ``labels``."""
    return sum(
        value
        for (sample, sample_labels), value in samples(text).items()
        if sample == name and set(labels.items()) <= set(sample_labels)
    )


# -- readiness -----------------------------------------------------------------------


def test_ready_flips_to_503_during_an_outage_and_back(serve, make_settings) -> None:
    emulator = LiveKitEmulator(TEST_API_KEY, TEST_API_SECRET, port=free_port())
    client = serve(make_settings(livekit_url=emulator.url, readiness_cache_seconds=0))
    with emulator:
        response = client.get("/api/health/ready")
        assert response.status_code == 200 and response.json["status"] == "ready"
    down = client.get("/api/health/ready")
    assert down.status_code == 503
    assert down.json == {
        "statusCode": 503,
        "message": "Not ready: LiveKit is unavailable (cannot connect)",
    }
    assert client.get("/api/health").status_code == 200  # liveness does not care
    with emulator:
        assert client.get("/api/health/ready").status_code == 200


def test_ready_is_503_when_livekit_rejects_the_credentials(serve) -> None:
    client = serve(livekit_api_secret="not-the-secret-livekit-knows-0123456")
    response = client.get("/api/health/ready")
    assert response.status_code == 503
    assert "check LIVEKIT_API_KEY and LIVEKIT_API_SECRET" in response.json["message"]


def test_probes_reuse_a_recent_answer(serve, livekit_emulator) -> None:
    client = serve(readiness_cache_seconds=60)
    for _ in range(5):
        assert client.get("/api/health/ready").status_code == 200
    assert livekit_emulator.calls["ListRooms"] == 1
    livekit_emulator.stop()
    assert client.get("/api/health/ready").status_code == 200  # within the cache


def test_readiness_costs_one_call_whatever_the_number_of_rooms(serve, livekit_emulator) -> None:
    client = serve(readiness_cache_seconds=0)
    for _ in range(20):
        client.post("/api/room/create", json={"userName": "u"})
    before = livekit_emulator.calls["ListRooms"]
    client.get("/api/health/ready")
    assert livekit_emulator.calls["ListRooms"] == before + 1


# -- metrics ---------------------------------------------------------------------------


def test_metrics_count_requests_livekit_calls_tokens_and_rooms(serve, livekit_emulator) -> None:
    client = serve()
    for _ in range(3):
        room = client.post("/api/room/create", json={"userName": "u"}).json
    client.post("/api/token", json={"roomId": room["roomId"], "userName": "v"})
    client.get("/api/room/room-1-nope00")
    client.get("/api/nope")
    livekit_emulator.disturb("internal", method="ListRooms")
    client.get("/api/rooms")

    response = client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    text = response.text
    requests = "aura_http_requests_total"
    assert total(text, requests, route="/api/room/create", method="POST", status="200") == 3
    assert total(text, requests, route="/api/token", status="200") == 1
    assert total(text, requests, route="/api/room/<roomId:str>", status="404") == 1
    assert total(text, requests, route="unmatched", status="404") == 1
    assert total(text, requests, route="/api/rooms", status="502") == 1
    assert total(text, "aura_http_request_duration_seconds_count", route="/api/room/create") == 3
    assert total(text, "aura_livekit_calls_total", method="CreateRoom", outcome="ok") == 3
    assert total(text, "aura_livekit_calls_total", method="ListRooms", outcome="error") == 1
    assert total(text, "aura_livekit_call_duration_seconds_count", method="CreateRoom") == 3
    assert total(text, "aura_tokens_minted_total") == 4
    assert total(text, "aura_rooms_created_total") == 3


def test_metrics_can_be_switched_off(serve) -> None:
    client = serve(metrics=False)
    assert client.get("/metrics").status_code == 404
    assert client.get("/api/health").status_code == 200


@pytest.mark.processes
def test_metrics_are_summed_over_two_workers(livekit_emulator) -> None:
    env = {
        "LIVEKIT_URL": livekit_emulator.url,
        "LIVEKIT_API_KEY": TEST_API_KEY,
        "LIVEKIT_API_SECRET": TEST_API_SECRET,
        "AURA_ROOM_LIST_CACHE_SECONDS": "0",  # every request a LiveKit call, to count
    }
    with server("--workers", "2", env=env) as (process, base):
        sent = 40
        for _ in range(sent):  # a fresh connection each: both workers answer
            assert httpx.get(f"{base}/api/rooms", timeout=10).status_code == 200
        scrape = httpx.get(f"{base}/metrics", timeout=10).text
        stop(process)
    assert total(scrape, "aura_http_requests_total", route="/api/rooms") == sent
    assert total(scrape, "aura_livekit_calls_total", method="ListRooms") == sent


@pytest.mark.processes
def test_metrics_on_their_own_port(livekit_emulator) -> None:
    port = free_port()
    env = {
        "LIVEKIT_URL": livekit_emulator.url,
        "LIVEKIT_API_KEY": TEST_API_KEY,
        "LIVEKIT_API_SECRET": TEST_API_SECRET,
        "AURA_METRICS_PORT": str(port),
    }
    with server("--workers", "2", env=env) as (process, base):
        for _ in range(5):
            httpx.get(f"{base}/api/rooms", timeout=10)
        assert httpx.get(f"{base}/metrics", timeout=10).status_code == 404
        scrape = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=10).text
        stop(process)
    assert total(scrape, "aura_http_requests_total", route="/api/rooms") == 5


# -- request ids and logs --------------------------------------------------------------


def test_every_answer_carries_a_request_id(client) -> None:
    generated = client.get("/api/health").headers["x-request-id"]
    assert re.fullmatch(r"[0-9a-f]{32}", generated)
    assert client.get("/api/health").headers["x-request-id"] != generated
    given = client.get("/api/nope", headers={"X-Request-ID": "lb-7f3a:42"})
    assert given.headers["x-request-id"] == "lb-7f3a:42"


@pytest.mark.parametrize("bad", ["has space", "x" * 129, "new\\nline", "<script>"])
def test_an_insane_request_id_is_replaced(client, bad: str) -> None:
    answer = client.get("/api/health", headers={"X-Request-ID": bad})
    assert re.fullmatch(r"[0-9a-f]{32}", answer.headers["x-request-id"])


def test_access_lines_see_the_client_behind_a_trusted_proxy(serve, caplog) -> None:
    headers = {"X-Forwarded-For": "203.0.113.7"}
    with caplog.at_level(logging.INFO, logger="aura_livekit_backend.access"):
        serve(access_log=True, proxies_count=1).get("/api/health", headers=headers)
        serve(access_log=True).get("/api/health", headers=headers)
    lines = [r for r in caplog.records if r.name == "aura_livekit_backend.access"]
    assert [r.client for r in lines] == ["203.0.113.7", "127.0.0.1"]
    assert (lines[0].method, lines[0].route, lines[0].status) == ("GET", "/api/health", 200)


def test_access_log_is_off_by_default(serve, caplog) -> None:
    with caplog.at_level(logging.INFO, logger="aura_livekit_backend.access"):
        serve().get("/api/health")
    assert not [r for r in caplog.records if r.name == "aura_livekit_backend.access"]


@pytest.mark.processes
def test_json_logs_carry_request_ids_and_no_secrets_or_tokens(livekit_emulator) -> None:
    env = {
        "LIVEKIT_URL": livekit_emulator.url,
        "LIVEKIT_API_KEY": TEST_API_KEY,
        "LIVEKIT_API_SECRET": TEST_API_SECRET,
        "AURA_LOG_FORMAT": "json",
        "AURA_LOG_LEVEL": "debug",
        "AURA_ACCESS_LOG": "true",
    }
    with server("--workers", "2", env=env) as (process, base):
        created = httpx.post(
            f"{base}/api/room/create", json={"userName": "host"}, headers={"X-Request-ID": "make-1"}
        ).json()
        joined = httpx.post(
            f"{base}/api/token", json={"roomId": created["roomId"], "userName": "guest"}
        ).json()
        livekit_emulator.disturb("internal", method="ListRooms")
        failed = httpx.get(f"{base}/api/rooms", headers={"X-Request-ID": "trace-me-42"})
        assert failed.status_code == 502
        assert failed.headers["x-request-id"] == "trace-me-42"
        _, output = stop(process)

    lines = [json.loads(line) for line in output.splitlines() if line.strip()]
    traced = [line for line in lines if line["request_id"] == "trace-me-42"]
    access = [line for line in traced if line["logger"] == "aura_livekit_backend.access"]
    assert len(access) == 1
    assert {key: access[0][key] for key in ("method", "route", "status")} == {
        "method": "GET",
        "route": "/api/rooms",
        "status": 502,
    }
    assert access[0]["duration_ms"] >= 0 and isinstance(access[0]["pid"], int)
    assert any("LiveKit ListRooms answered 500 internal" in line["message"] for line in traced)
    assert any(line["request_id"] == "make-1" for line in lines)
    for secret in (TEST_API_SECRET, created["token"], joined["token"]):
        assert secret not in output


def test_odd_methods_do_not_mint_metric_series(client) -> None:
    odd = {"route": "unmatched", "method": "other"}
    before = total(client.get("/metrics").text, "aura_http_requests_total", **odd)
    for method in ("BREW", "PROPFIND", "X-ANY"):
        client.request(method, "/api/whatever")
    text = client.get("/metrics").text
    assert total(text, "aura_http_requests_total", **odd) == before + 3
    assert "BREW" not in text


@pytest.mark.parametrize(
    ("code", "outcome"),
    [("permission_denied", "rejected"), ("unavailable", "unavailable"), ("not_found", "not_found")],
)
def test_livekit_failures_are_counted_by_documented_outcome(
    serve, livekit_emulator, code: str, outcome: str
) -> None:
    client = serve()
    livekit_emulator.disturb(code, method="ListRooms")
    client.get("/api/rooms")
    text = client.get("/metrics").text
    assert total(text, "aura_livekit_calls_total", method="ListRooms", outcome=outcome) == 1


@pytest.mark.processes
@pytest.mark.parametrize("log_format", ["text", "json"])
def test_no_log_line_or_error_answer_carries_a_secret_key_or_token(
    livekit_emulator, log_format
) -> None:
    api_key, moderation_key = "svc-key-0123456789abcdef", "mod-key-0123456789abcdef"
    env = {
        "LIVEKIT_URL": livekit_emulator.url,
        "LIVEKIT_API_KEY": TEST_API_KEY,
        "LIVEKIT_API_SECRET": TEST_API_SECRET,
        "AURA_API_KEYS": api_key,
        "AURA_MODERATION_API_KEYS": moderation_key,
        "AURA_LOG_FORMAT": log_format,
        "AURA_LOG_LEVEL": "DEBUG",  # the most the README suggests
        "AURA_ACCESS_LOG": "true",
    }
    auth = {"Authorization": f"Bearer {api_key}"}
    tokens, errors = [], []
    with server("--workers", "1", env=env) as (process, base):

        def call(method, path, **kwargs):
            response = httpx.request(method, base + path, timeout=10, **kwargs)
            if response.status_code >= 400:
                errors.append(response.text)
            return response

        created = call("post", "/api/room/create", json={"userName": "host"}, headers=auth).json()
        tokens.append(created["token"])
        room = created["roomId"]
        for name in ("guest", "guest"):
            tokens.append(call("post", "/api/token", json={"roomId": room, "userName": name},
                               headers=auth).json()["token"])  # fmt: skip
        # Wrong keys, and keys where they do not belong.
        call("get", "/api/rooms", headers={"Authorization": f"Bearer {api_key}x"})
        call("get", "/api/rooms", headers={"Authorization": f"Bearer {moderation_key}"})
        call("delete", f"/api/room/{room}", headers=auth)
        call("get", f"/api/rooms?limit={api_key}", headers=auth)
        call("post", "/api/token", json={"roomId": room, "userName": "x", "key": api_key},
             headers=auth)  # fmt: skip
        # LiveKit failing in every way the emulator knows, rejected credentials included.
        for kind in ["garbage", "reset", "plain_401", "proxy_502", "internal"]:
            livekit_emulator.disturb(kind)
            call("post", "/api/token", json={"roomId": room, "userName": "z"}, headers=auth)
            call("get", f"/api/room/{room}/participants",
                 headers={"Authorization": f"Bearer {moderation_key}"})  # fmt: skip
        livekit_emulator.heal()
        deleted = call("delete", f"/api/room/{room}",
                       headers={"Authorization": f"Bearer {moderation_key}"})  # fmt: skip
        assert deleted.status_code == 200
        code, output = stop(process)
    assert code == 0
    assert "GET /api/rooms 401" in output and "LiveKit" in output  # there was plenty to log
    for secret in (TEST_API_SECRET, api_key, moderation_key, *tokens):
        assert secret not in output
        for answer in errors:
            assert secret not in answer
    # Not even a token's signature, in case something logged a piece of one.
    for token in tokens:
        assert token.rsplit(".", 1)[1] not in output
