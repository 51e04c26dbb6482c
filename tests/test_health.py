"""GET /health: liveness in the API's documented shape, without LiveKit."""

from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone

from aura_livekit_backend.settings import Settings

TIMESTAMP = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z")


def test_health_answers_ok_with_a_utc_millisecond_timestamp(serve) -> None:
    client = serve()
    before = datetime.now(timezone.utc)
    response = client.get("/api/health")
    assert response.status_code == 200
    body = response.json
    assert body["status"] == "ok"
    assert TIMESTAMP.fullmatch(body["timestamp"]), body
    stamp = datetime.strptime(body["timestamp"], "%Y-%m-%dT%H:%M:%S.%fZ").replace(
        tzinfo=timezone.utc
    )
    assert before - timedelta(seconds=1) <= stamp <= datetime.now(timezone.utc)


def test_health_needs_no_livekit(serve, settings: Settings) -> None:
    # Nothing listens on port 9: LiveKit is unreachable, health does not care.
    client = serve(settings.model_copy(update={"livekit_url": "http://127.0.0.1:9"}))
    assert client.get("/api/health").status_code == 200


def test_api_prefix_is_configurable(serve, settings: Settings) -> None:
    client = serve(settings.model_copy(update={"api_prefix": "/v1"}))
    assert client.get("/v1/health").status_code == 200
    assert client.get("/api/health").status_code == 404
