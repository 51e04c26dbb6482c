"""LiveKit's webhooks, through the real path: the emulator signs and POSTs them over
HTTP to the service's ``/livekit/webhook``, which verifies, logs once and tells plugins.

A served app's event loop runs only while the test drives it (sanic-testing), so the
tests pump it (:func:`pump`) while the emulator delivers.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import orjson
import pytest
from livekit.protocol import webhook as webhook_pb

from aura_livekit_backend.emulator import LiveKitEmulator
from aura_livekit_backend.emulator.webhooks import encode_event, sign_webhook
from aura_livekit_backend.eventlog import EventLogUnavailable
from aura_livekit_backend.plugin import (
    LiveKitEvent,
    OtherLiveKitEvent,
    ParticipantJoined,
    ParticipantLeft,
    Plugin,
    PluginContext,
    RoomFinished,
    RoomStarted,
)
from aura_livekit_backend.testing.client import ServiceClient
from aura_livekit_backend.testing.pytest_plugin import TEST_API_KEY, TEST_API_SECRET

PATH = "/livekit/webhook"


def pump(clients: list[ServiceClient], until: Callable[[], bool], seconds: float = 10) -> None:
    """Run the apps' loops (so they serve) until ``until()`` holds; one app: the kit's
    ``serve_until``."""
    if len(clients) == 1:
        clients[0].serve_until(until, seconds)
        return
    deadline = time.monotonic() + seconds
    while not until():
        assert time.monotonic() < deadline, "timed out"
        for client in clients:
            client.run(asyncio.sleep(0.01))


class Spy:
    """A plugin that records every LiveKit event its app tells it."""

    def __init__(self) -> None:
        self.heard: list[LiveKitEvent] = []

    def plugin(self) -> Plugin:
        def setup(ctx: PluginContext) -> None:
            for kind in (RoomStarted, RoomFinished, ParticipantJoined, ParticipantLeft):

                @ctx.on(kind)
                async def record(event: LiveKitEvent) -> None:
                    self.heard.append(event)

            @ctx.on(OtherLiveKitEvent)
            async def other(event: OtherLiveKitEvent) -> None:
                self.heard.append(event)

        return Plugin(setup)

    def names(self) -> list[str]:
        return [event.name for event in self.heard]


@pytest.fixture
def spy() -> Spy:
    return Spy()


@pytest.fixture
def client(core_plugins, serve, spy: Spy, livekit_emulator: LiveKitEmulator) -> ServiceClient:
    served = serve(plugins={**core_plugins, "spy": spy.plugin()})
    livekit_emulator.webhooks.urls = (served.url + PATH,)
    livekit_emulator.webhooks.backoff = (0.05, 0.2)
    return served


def _logged(client: ServiceClient) -> list[Any]:
    return client.run(client.app.ctx.event_log.read(0, 1000))  # type: ignore[no-any-return]


def _counted(client: ServiceClient, event: str, outcome: str) -> float:
    text = client.get("/metrics").text
    line = f'aura_webhooks_received_total{{event="{event}",outcome="{outcome}"}} '
    found = [row for row in text.splitlines() if row.startswith(line)]
    return float(found[0].split()[-1]) if found else 0.0


def test_a_rooms_life_reaches_plugins_and_the_log_once_each(
    client: ServiceClient, spy: Spy, livekit_emulator: LiveKitEmulator
) -> None:
    room = client.post("/api/room/create", json={"userName": "host"}).json
    livekit_emulator.add_participant(room["roomId"], "ann", "Ann")
    livekit_emulator.remove_participant(room["roomId"], "ann")
    livekit_emulator.close_room(room["roomId"])
    pump([client], lambda: len(spy.heard) == 4 and livekit_emulator.webhooks.idle())

    assert spy.names() == [
        "livekit.room.started",
        "livekit.participant.joined",
        "livekit.participant.left",
        "livekit.room.finished",
    ]
    started, joined, _, finished = spy.heard
    assert isinstance(started, RoomStarted) and started.room.sid == room["sid"]
    assert started.room.created_by == "host"  # the service's facts, read from LiveKit's room
    assert isinstance(joined, ParticipantJoined) and joined.participant.name == "Ann"
    assert isinstance(finished, RoomFinished) and finished.reason == "api_delete"
    # The log holds LiveKit's events under LiveKit's ids, with JSON payloads.
    logged = [entry for entry in _logged(client) if entry.name.startswith("livekit.")]
    assert [entry.id for entry in logged] == [event.id for event in spy.heard]
    assert {entry.room for entry in logged} == {room["roomId"]}
    assert logged[1].data["participant"]["identity"] == "ann"
    assert all(a.status == 200 for a in livekit_emulator.webhooks.attempts)
    assert _counted(client, "livekit.participant.joined", "accepted") == 1


def test_a_duplicate_delivery_is_acknowledged_and_not_told_again(
    client: ServiceClient, spy: Spy, livekit_emulator: LiveKitEmulator
) -> None:
    livekit_emulator.webhooks.duplicate_next()
    room = client.post("/api/room/create", json={"userName": "host"}).json
    pump([client], lambda: livekit_emulator.webhooks.idle() and len(spy.heard) == 1)
    client.run(asyncio.sleep(0.1))  # a second dispatch would have run by now
    assert [a.status for a in livekit_emulator.webhooks.attempts] == [200, 200]
    assert spy.names() == ["livekit.room.started"]
    assert [
        e.id
        for e in _logged(client)
        if e.room == room["roomId"] and e.name == "livekit.room.started"
    ] == [spy.heard[0].id]
    assert _counted(client, "livekit.room.started", "duplicate") == 1
    assert _counted(client, "livekit.room.started", "accepted") == 1


@pytest.mark.parametrize("backend", ["sqlite", "redis"])
def test_two_apps_on_one_log_take_each_event_once(
    core_plugins, serve, livekit_emulator: LiveKitEmulator, aura_settings, log_on, backend: str
) -> None:
    # Every event goes to both (two URLs): as if LiveKit's retry reached another worker
    # (one SQLite file) or another replica (one Redis).
    settings = aura_settings(**log_on(backend))
    spies = [Spy(), Spy()]
    apps = [serve(settings, plugins={**core_plugins, "spy": s.plugin()}) for s in spies]
    livekit_emulator.webhooks.urls = tuple(app.url + PATH for app in apps)
    room = apps[0].post("/api/room/create", json={"userName": "host"}).json
    livekit_emulator.add_participant(room["roomId"], "ann")
    pump(
        apps,
        lambda: livekit_emulator.webhooks.idle() and len(livekit_emulator.webhooks.attempts) == 4,
    )
    pump(apps, lambda: sum(len(s.heard) for s in spies) == 2)
    for app in apps:
        app.run(asyncio.sleep(0.1))
    heard = [event.id for s in spies for event in s.heard]
    assert len(heard) == 2 and len(set(heard)) == 2  # each event told once, by one app
    assert all(a.status == 200 for a in livekit_emulator.webhooks.attempts)
    ids = [e.id for e in _logged(apps[1]) if e.name.startswith("livekit.")]
    assert sorted(ids) == sorted(heard)


def test_a_slow_subscriber_never_delays_the_answer(
    core_plugins, serve, livekit_emulator: LiveKitEmulator
) -> None:
    finished: list[str] = []
    release = asyncio.Event()

    def setup(ctx: PluginContext) -> None:
        @ctx.on(RoomStarted)
        async def slow(event: RoomStarted) -> None:
            await release.wait()
            finished.append(event.room.name)

    client = serve(plugins={**core_plugins, "slow": Plugin(setup)})
    body, headers = _signed(_event("room_started", "EV_slow"))
    answer = client.post(PATH, content=body, headers=headers)
    assert answer.status_code == 200 and answer.json == {"status": "accepted", "id": "EV_slow"}
    assert finished == []
    client.run(_set(release))
    pump([client], lambda: finished == ["standup"])


async def _set(event: asyncio.Event) -> None:
    event.set()
    await asyncio.sleep(0.01)


def _event(kind: str, id_: str, *, created_at: int | None = None) -> webhook_pb.WebhookEvent:
    event = webhook_pb.WebhookEvent(event=kind, id=id_, created_at=created_at or int(time.time()))
    event.room.name, event.room.sid = "standup", "RM_standup1234"
    if kind.startswith("participant_"):
        event.participant.identity, event.participant.sid = "ann", "PA_ann123456789"
    return event


def _signed(
    event: webhook_pb.WebhookEvent | bytes,
    *,
    key: str = TEST_API_KEY,
    secret: str = TEST_API_SECRET,
    now: float | None = None,
) -> tuple[bytes, dict[str, str]]:
    body = event if isinstance(event, bytes) else encode_event(event)
    header = sign_webhook(body, key, secret, now=now)
    return body, {"Authorization": header, "Content-Type": "application/webhook+json"}


def _forged(case: str) -> tuple[bytes, dict[str, str], str]:
    """A delivery LiveKit did not sign, made when the test runs; and why it is refused."""
    body, good = _signed(_event("room_started", "EV_forged"))
    tampered = body.replace(b"standup", b"standux")
    cases = {
        "unsigned": (body, {}, "no Authorization header"),
        "bearer": (body, {"Authorization": "Bearer " + good["Authorization"]}, "not a LiveKit"),
        "garbage": (body, {"Authorization": "not a token at all"}, "not a LiveKit"),
        "tampered": (tampered, good, "does not match"),
        "other-key": (*_signed(body, key="APIstranger"), "not signed by an API key"),
        "forged": (*_signed(body, secret="a-guessed-secret-0123456789abcdefgh"), "not signed by"),
        "expired": (*_signed(body, now=time.time() - 600), "expired"),
    }
    return cases[case]


@pytest.mark.parametrize(
    "case", ["unsigned", "bearer", "garbage", "tampered", "other-key", "forged", "expired"]
)
def test_a_delivery_livekit_did_not_sign_is_a_401_never_processed_nor_logged(
    client: ServiceClient, spy: Spy, caplog: pytest.LogCaptureFixture, case: str
) -> None:
    body, headers, why = _forged(case)
    with caplog.at_level(logging.DEBUG):
        answer = client.post(PATH, content=body, headers=headers)
        client.run(asyncio.sleep(0.05))
    assert answer.status_code == 401, case
    assert set(answer.json) == {"statusCode", "message"}
    assert answer.json["message"].startswith("Not a LiveKit webhook")
    assert why in answer.json["message"]
    assert spy.heard == []
    assert not [e for e in _logged(client) if e.id == "EV_forged"]
    logged = caplog.text
    assert "standup" not in logged and "EV_forged" not in logged
    if headers.get("Authorization"):
        assert headers["Authorization"][-20:] not in logged
        assert headers["Authorization"][-20:] not in answer.text
    assert _counted(client, "unverified", "rejected") == 1


def test_a_signed_body_that_is_no_webhook_event_is_a_400(client: ServiceClient) -> None:
    body, headers = _signed(b'{"event": "room_started"}')
    answer = client.post(PATH, content=body, headers=headers)
    assert answer.status_code == 400
    assert answer.json["message"] == "Not a LiveKit webhook event: the WebhookEvent has no id"


def test_an_unknown_event_type_passes_through(client: ServiceClient, spy: Spy) -> None:
    body, headers = _signed(
        orjson.dumps(
            {"event": "room_metadata_changed", "id": "EV_new1", "createdAt": "1700000000",
             "room": {"name": "standup", "sid": "RM_x"}, "futureField": [1, 2]}
        )
    )  # fmt: skip
    answer = client.post(PATH, content=body, headers=headers)
    assert answer.status_code == 200
    pump([client], lambda: bool(spy.heard))
    event = spy.heard[0]
    assert isinstance(event, OtherLiveKitEvent)
    assert (event.type, event.room_name, event.payload["futureField"]) == (
        "room_metadata_changed",
        "standup",
        [1, 2],
    )
    assert [e.name for e in _logged(client) if e.id == "EV_new1"] == ["livekit.other.received"]


def test_replayed_and_out_of_order_deliveries(client: ServiceClient, spy: Spy) -> None:
    now = int(time.time())
    left = _signed(_event("participant_left", "EV_left", created_at=now))
    joined = _signed(_event("participant_joined", "EV_joined", created_at=now - 5))
    # LiveKit may deliver a leave before the join that came first (livekit#2399).
    for body, headers in (left, joined, left, joined):
        assert client.post(PATH, content=body, headers=headers).status_code == 200
    pump([client], lambda: len(spy.heard) == 2)
    client.run(asyncio.sleep(0.1))
    assert spy.names() == ["livekit.participant.left", "livekit.participant.joined"]
    # created_at tells the order they happened in.
    assert sorted(spy.heard, key=lambda e: e.created_at)[0].id == "EV_joined"
    # A replay of a captured delivery once its token has expired is refused.
    stale = _signed(_event("participant_joined", "EV_joined"), now=time.time() - 400)
    assert client.post(PATH, content=stale[0], headers=stale[1]).status_code == 401


def test_a_body_over_the_limit_is_a_413(
    core_plugins, serve, livekit_emulator: LiveKitEmulator
) -> None:
    client = serve(plugins=core_plugins, webhook_max_body_bytes=2048)
    event = _event("room_started", "EV_big")
    event.room.metadata = "x" * 4096
    body, headers = _signed(event)
    answer = client.post(PATH, content=body, headers=headers)
    assert answer.status_code == 413
    assert answer.json == {"statusCode": 413, "message": "A webhook body may be at most 2048 bytes"}

    # Without a Content-Length (chunked), the limit holds as the body is read.
    async def chunked() -> AsyncIterator[bytes]:
        yield body[:1500]
        yield body[1500:]

    answer = client.post(PATH, content=chunked(), headers=headers)
    assert answer.status_code == 413
    assert answer.json["message"] == "A webhook body may be at most 2048 bytes"
    # The API's own 64 KiB limit does not apply here: a 100 KiB event is taken.
    client = serve(plugins=core_plugins)
    event.room.metadata = "x" * 100_000
    body, headers = _signed(event)
    assert client.post(PATH, content=body, headers=headers).status_code == 200


def test_with_the_log_down_the_answer_is_503_and_livekit_retries_until_it_is_back(
    client: ServiceClient,
    spy: Spy,
    livekit_emulator: LiveKitEmulator,
    caplog: pytest.LogCaptureFixture,
) -> None:
    log = client.app.ctx.event_log
    client.run(log.close())
    livekit_emulator.webhooks.backoff = (0.3, 0.3)
    with caplog.at_level(logging.WARNING, logger="aura_livekit_backend.webhooks"):
        room = client.post("/api/room/create", json={"userName": "host"}).json
        pump([client], lambda: len(livekit_emulator.webhooks.attempts) >= 2)
    assert [a.status for a in list(livekit_emulator.webhooks.attempts)[:2]] == [503, 503]
    # One warning says why, not one per refused delivery.
    warnings = [r.getMessage() for r in caplog.records if r.name.endswith("webhooks")]
    assert warnings == [
        "webhooks: 1 delivery(ies) answered 503 since the last warning, for the event log: "
        "the event log is not open"
    ]
    client.run(log.open())
    pump([client], lambda: livekit_emulator.webhooks.idle() and bool(spy.heard))
    assert [a.status for a in livekit_emulator.webhooks.attempts][-1] == 200
    assert spy.heard[0].room.name == room["roomId"]  # type: ignore[attr-defined]
    assert _counted(client, "livekit.room.started", "unavailable") >= 1


@pytest.mark.parametrize("backend", ["sqlite", "redis"])
def test_a_delivery_kept_but_answered_503_is_told_once_on_the_retry(
    core_plugins, serve, spy: Spy, log_on, backend: str
) -> None:
    # The log keeps the event, but its answer comes too late (a Redis reply that timed
    # out, a request cancelled after SQLite committed): the delivery is a 503, and
    # LiveKit's retry finds the id kept. It must be told then, and only then.
    fields = log_on(backend)
    apps = [serve(plugins={**core_plugins, "spy": spy.plugin()}, **fields) for _ in range(2)]
    log = apps[0].app.ctx.event_log
    keep = log.append

    async def kept_but_lost(*args: Any) -> int | None:
        await keep(*args)
        raise EventLogUnavailable("Redis (AURA_REDIS_URL) is unavailable: Timeout")

    log.append = kept_but_lost
    body, headers = _signed(_event("room_started", "EV_lost"))
    assert apps[0].post(PATH, content=body, headers=headers).status_code == 503
    apps[0].run(asyncio.sleep(0.1))
    assert spy.heard == []
    log.append = keep
    # LiveKit retries, here on the other worker, then once more on each.
    for app in (apps[1], apps[0], apps[1]):
        answer = app.post(PATH, content=body, headers=headers)
        assert answer.status_code == 200 and answer.json["status"] == "duplicate"
    pump(apps, lambda: bool(spy.heard))
    for app in apps:
        app.run(asyncio.sleep(0.1))  # a second telling would have run by now
    assert [event.id for event in spy.heard] == ["EV_lost"]
    assert [e.id for e in _logged(apps[0]) if e.name.startswith("livekit.")] == ["EV_lost"]


def test_the_path_is_a_setting_and_the_route_is_documented(core_plugins, serve) -> None:
    client = serve(plugins=core_plugins, webhook_path="/hooks/lk")
    body, headers = _signed(_event("room_started", "EV_path"))
    assert client.post("/hooks/lk", content=body, headers=headers).status_code == 200
    assert client.post(PATH, content=body, headers=headers).status_code == 404
    document = client.get("/docs/openapi.json").json
    operation = document["paths"]["/hooks/lk"]["post"]
    assert set(operation["responses"]) >= {"200", "400", "401", "413", "503"}
    assert "application/webhook+json" in operation["requestBody"]["content"]


def test_api_keys_do_not_guard_the_receiver(core_plugins, serve) -> None:
    # LiveKit signs with its own key; it cannot send the service's.
    client = serve(plugins=core_plugins, api_keys="k" * 32)
    body, headers = _signed(_event("room_started", "EV_keys"))
    assert client.post(PATH, content=body, headers=headers).status_code == 200
    assert client.get("/api/rooms").status_code == 401


def test_with_redis_down_the_receiver_answers_503_the_api_serves_and_it_recovers(
    core_plugins, serve, own_redis, spy: Spy
) -> None:
    client = serve(redis_url=own_redis.url, plugins={**core_plugins, "spy": spy.plugin()})
    first = _signed(_event("room_started", "EV_before"))
    assert client.post(PATH, content=first[0], headers=first[1]).status_code == 200

    own_redis.stop()
    during = _signed(_event("participant_joined", "EV_during"))
    started = time.monotonic()
    answer = client.post(PATH, content=during[0], headers=during[1])
    assert answer.status_code == 503
    assert answer.json == {
        "statusCode": 503,
        "message": "The event log is unavailable; retry later",
    }
    assert time.monotonic() - started < 5  # LiveKit's own timeout is longer
    # The API does not need the log: it keeps serving.
    assert client.get("/api/health").status_code == 200
    assert client.get("/api/rooms").status_code == 200

    own_redis.start()  # the same port: no restart of the service
    deadline = time.monotonic() + 15
    while client.post(PATH, content=during[0], headers=during[1]).status_code != 200:
        assert time.monotonic() < deadline, "the log did not recover"
        client.run(asyncio.sleep(0.2))
    pump([client], lambda: spy.names() == ["livekit.room.started", "livekit.participant.joined"])
    assert _counted(client, "livekit.participant.joined", "unavailable") >= 1


def test_refused_deliveries_never_hold_up_livekits_address(core_plugins, serve) -> None:
    # Thirty 401s a minute would otherwise 429 everything LiveKit's address sends.
    client = serve(plugins=core_plugins, rate_limit_auth_failures="2/minute", api_keys="k" * 32)
    body, headers, _ = _forged("other-key")
    for _ in range(4):
        assert client.post(PATH, content=body, headers=headers).status_code == 401
    good = _signed(_event("room_started", "EV_after_refusals"))
    assert client.post(PATH, content=good[0], headers=good[1]).status_code == 200
    # They did not count: the API's own routes still throttle from their first failure.
    wrong = {"Authorization": "Bearer " + "x" * 32}
    assert [client.get("/api/rooms", headers=wrong).status_code for _ in range(3)] == [
        401,
        401,
        429,
    ]


def test_every_livekit_event_name_is_a_signal_sanic_dispatches(core_plugins, serve) -> None:
    # Names such as livekit.agent_job.started and livekit.participant.connection_aborted
    # must route on Sanic's signal bus as they are.
    from aura_livekit_backend.events import LIVEKIT_EVENTS

    heard: list[str] = []

    def setup(ctx: PluginContext) -> None:
        for kind in (*LIVEKIT_EVENTS.values(), OtherLiveKitEvent):

            @ctx.on(kind)
            async def record(event: LiveKitEvent) -> None:
                heard.append(event.name)

    client = serve(plugins={**core_plugins, "all": Plugin(setup)})
    kinds = [*LIVEKIT_EVENTS, "something_new"]
    for n, kind in enumerate(kinds):
        body, headers = _signed(_event(kind, f"EV_kind{n}"))
        assert client.post(PATH, content=body, headers=headers).status_code == 200, kind
    client.serve_until(lambda: len(heard) == len(kinds))
    assert sorted(heard) == sorted(
        [*(cls.name for cls in LIVEKIT_EVENTS.values()), "livekit.other.received"]
    )
