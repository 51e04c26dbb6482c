"""Rate limits against a real redis-server: shared by every app, and a Redis that is down.

Two apps in one process stand for two replicas (or two workers): each has its own
rate-limit store connection, so what one counts the other sees only through Redis.
tests/test_auth_cli.py shows the same across the 2 worker processes of one service.
"""

from __future__ import annotations

import logging
import socket

import pytest

from aura_livekit_backend.emulator import free_port


def join(client, room: str, name: str):
    return client.post("/api/token", json={"roomId": room, "userName": name})


def test_two_replicas_share_one_count_in_redis(serve, redis_server) -> None:
    redis_server.flush()
    limits = {"rate_limit_join": "4/minute", "redis_url": redis_server.url}
    first, second = serve(**limits), serve(**limits)
    room = first.post("/api/room/create", json={"userName": "host"}).json["roomId"]
    # Anonymous callers count by address: both replicas see 127.0.0.1.
    statuses = [
        join(client, room, f"u{n}").status_code for n in range(4) for client in (first, second)
    ]
    assert statuses == [200, 200, 200, 200, 429, 429, 429, 429]


def test_without_redis_each_replica_counts_alone(serve) -> None:
    first, second = serve(rate_limit_join="2/minute"), serve(rate_limit_join="2/minute")
    room = first.post("/api/room/create", json={"userName": "host"}).json["roomId"]
    statuses = [join(client, room, "u").status_code for _ in range(3) for client in (first, second)]
    assert statuses == [200, 200, 200, 200, 429, 429]


def test_failed_authentications_are_shared_too(serve, redis_server) -> None:
    redis_server.flush()
    fields = {
        "api_keys": "k-0123456789abcdef-shared",
        "rate_limit_auth_failures": "2/minute",
        "redis_url": redis_server.url,
    }
    first, second = serve(**fields), serve(**fields)
    wrong = {"Authorization": "Bearer wrong-0123456789abcdef"}
    assert first.get("/api/rooms", headers=wrong).status_code == 401
    assert second.get("/api/rooms", headers=wrong).status_code == 401
    right = {"Authorization": "Bearer k-0123456789abcdef-shared"}
    assert first.get("/api/rooms", headers=right).status_code == 429
    assert second.get("/api/rooms", headers=right).status_code == 429


def _silent_server() -> tuple[socket.socket, str]:
    """A port that accepts connections and never answers: a Redis that hangs."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)
    return listener, f"redis://127.0.0.1:{listener.getsockname()[1]}/0"


@pytest.mark.parametrize("redis", ["refused", "silent"])
def test_redis_down_fails_open_by_default_and_never_hangs(serve, caplog, redis) -> None:
    listener, url = (
        _silent_server() if redis == "silent" else (None, f"redis://127.0.0.1:{free_port()}/0")
    )
    try:
        client = serve(rate_limit_join="1/minute", rate_limit_create="1/minute", redis_url=url)
        made = client.post("/api/room/create", json={"userName": "h"}, timeout=10)
        assert made.status_code == 200
        for _ in range(3):  # over the limit, were it counted
            assert join(client, made.json["roomId"], "u").status_code == 200
    finally:
        if listener is not None:
            listener.close()
    warnings = [r for r in caplog.records if "rate limits: the store did not answer" in r.message]
    assert len(warnings) == 1  # once a minute, not once a request
    assert "failing open" in warnings[0].message and "127.0.0.1" not in warnings[0].message


@pytest.mark.parametrize("redis", ["refused", "silent"])
def test_redis_down_fails_closed_when_told(serve, redis) -> None:
    listener, url = (
        _silent_server() if redis == "silent" else (None, f"redis://127.0.0.1:{free_port()}/0")
    )
    try:
        client = serve(rate_limit_create="5/minute", rate_limit_fail="closed", redis_url=url)
        response = client.post("/api/room/create", json={"userName": "h"}, timeout=10)
    finally:
        if listener is not None:
            listener.close()
    assert response.status_code == 503
    assert response.json == {
        "statusCode": 503,
        "message": "Failed to create room: rate limits cannot be checked now; retry shortly",
    }


def test_redis_going_down_and_coming_back(serve, caplog, own_redis, monkeypatch) -> None:
    import aura_livekit_backend.auth.limits

    # Tried again at once, rather than RETRY_STORE_AFTER seconds later.
    monkeypatch.setattr(aura_livekit_backend.auth.limits, "RETRY_STORE_AFTER", 0.0)
    caplog.set_level(logging.WARNING)
    client = serve(rate_limit_join="2/minute", redis_url=own_redis.url)
    room = client.post("/api/room/create", json={"userName": "h"}).json["roomId"]
    assert [join(client, room, "u").status_code for _ in range(3)] == [200, 200, 429]
    own_redis.stop()
    assert join(client, room, "u").status_code == 200  # open while it is down
    own_redis.start()  # an empty Redis: counts start again
    assert [join(client, room, "u").status_code for _ in range(3)] == [200, 200, 429]
