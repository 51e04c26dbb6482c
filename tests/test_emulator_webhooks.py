"""The emulator sends LiveKit's webhooks as LiveKit does: signed, in order, with retries.

A small HTTP receiver stands in for a webhook endpoint, answering what each test
scripts; the service's own verifier and reader check what arrived.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field

import httpx
import pytest
from aiohttp import web
from livekit import api
from pydantic import SecretStr

from aura_livekit_backend.emulator import LiveKitEmulator, free_port
from aura_livekit_backend.events import (
    ParticipantJoined,
    ParticipantLeft,
    RoomFinished,
    TrackPublished,
)
from aura_livekit_backend.livekit.webhooks import WebhookVerifier, read_event

KEY, SECRET = "APIemuhooks", "emulator-hooks-secret-0123456789abcdef"


@dataclass
class Receiver:
    """An HTTP endpoint on 127.0.0.1 that records deliveries and answers ``statuses``
    (then 200)."""

    statuses: list[int] = field(default_factory=list)
    received: list[tuple[dict[str, str], bytes]] = field(default_factory=list)
    port: int = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hook"

    async def _handle(self, request: web.Request) -> web.Response:
        self.received.append((dict(request.headers), await request.read()))
        return web.Response(status=self.statuses.pop(0) if self.statuses else 200)

    def events(self) -> list[str]:
        return [read_event(body).name for _, body in self.received]


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    found = Receiver(port=free_port())
    loop = asyncio.new_event_loop()
    ready = threading.Event()

    async def serve() -> web.AppRunner:
        app = web.Application()
        app.router.add_post("/hook", found._handle)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", found.port).start()
        return runner

    def run() -> None:
        runner = loop.run_until_complete(serve())
        ready.set()
        loop.run_forever()
        loop.run_until_complete(runner.cleanup())
        loop.close()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    assert ready.wait(10)
    yield found
    loop.call_soon_threadsafe(loop.stop)
    thread.join(10)


class Clock:
    """A clock a test moves on."""

    def __init__(self) -> None:
        self.now = time.time()

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def emulator(receiver: Receiver, clock: Clock) -> Iterator[LiveKitEmulator]:
    with LiveKitEmulator(KEY, SECRET, clock=clock, webhook_urls=[receiver.url]) as running:
        running.webhooks.backoff = (0.01, 0.05)
        yield running


def _create(emulator: LiveKitEmulator, name: str, **fields: int) -> None:
    async def create() -> None:
        async with api.LiveKitAPI(emulator.url, KEY, SECRET) as lkapi:
            await lkapi.room.create_room(api.CreateRoomRequest(name=name, **fields))

    asyncio.run(create())


def test_a_rooms_life_arrives_signed_and_in_order(
    emulator: LiveKitEmulator, receiver: Receiver
) -> None:
    _create(emulator, "standup")
    emulator.add_participant("standup", "ann", "Ann")
    emulator.add_participant("standup", "ann", "Ann again")  # replaces the first session
    emulator.remove_participant("standup", "ann")
    emulator.add_participant("standup", "bob")
    emulator.close_room("standup")
    emulator.webhooks.wait_idle()

    assert receiver.events() == [
        "livekit.room.started",
        "livekit.participant.joined",
        "livekit.participant.left",
        "livekit.participant.joined",
        "livekit.participant.left",
        "livekit.participant.joined",
        "livekit.participant.left",
        "livekit.room.finished",
    ]
    verifier = WebhookVerifier({KEY: SecretStr(SECRET)})
    for headers, body in receiver.received:
        assert headers["Content-Type"] == "application/webhook+json"
        assert headers["User-Agent"] == "LiveKit"
        assert not headers["Authorization"].startswith("Bearer")
        verifier.verify(body, headers["Authorization"])
        assert b'"createdAt":"' in body  # protojson: int64 as a string
    events = [read_event(body) for _, body in receiver.received]
    assert len({event.id for event in events}) == len(events)
    joined, replaced = events[1], events[2]
    assert isinstance(joined, ParticipantJoined) and joined.participant.name == "Ann"
    assert isinstance(replaced, ParticipantLeft) and replaced.reason == "duplicate_identity"
    assert isinstance(events[4], ParticipantLeft) and events[4].reason == "client_initiated"
    assert isinstance(events[6], ParticipantLeft) and events[6].reason == "room_deleted"
    finished = events[-1]
    assert isinstance(finished, RoomFinished) and finished.reason == "api_delete"
    assert finished.room.sid == events[0].room.sid  # type: ignore[attr-defined]
    assert emulator.webhooks.delivered == 8 and not emulator.webhooks.dropped


def test_an_empty_room_that_expires_sends_room_finished(
    emulator: LiveKitEmulator, receiver: Receiver, clock: Clock
) -> None:
    _create(emulator, "idle", empty_timeout=5)
    clock.now += 6
    deadline = time.monotonic() + 10
    while len(receiver.received) < 2:  # the emulator closes it within a second
        assert time.monotonic() < deadline
        time.sleep(0.02)
    emulator.webhooks.wait_idle()
    finished = read_event(receiver.received[-1][1])
    assert isinstance(finished, RoomFinished) and finished.reason == "idle_timeout"
    assert emulator.room_names() == []


def test_5xx_and_429_are_retried_with_backoff_until_accepted(
    emulator: LiveKitEmulator, receiver: Receiver
) -> None:
    receiver.statuses = [503, 429, 500]
    _create(emulator, "retried")
    emulator.webhooks.wait_idle()
    statuses = [a.status for a in emulator.webhooks.attempts]
    assert statuses == [503, 429, 500, 200]
    assert [a.retry for a in emulator.webhooks.attempts] == [0, 1, 2, 3]
    ids = {read_event(body).id for _, body in receiver.received}
    assert len(ids) == 1  # the same event each time
    assert emulator.webhooks.delivered == 1


def test_after_four_retries_the_event_is_given_up(
    emulator: LiveKitEmulator, receiver: Receiver
) -> None:
    receiver.statuses = [502] * 10
    _create(emulator, "doomed")
    emulator.webhooks.wait_idle()
    assert len(emulator.webhooks.attempts) == 5
    assert emulator.webhooks.dropped == {"retries_exhausted": 1}


@pytest.mark.parametrize("status", [400, 401, 404, 413, 501])
def test_other_answers_are_final(
    emulator: LiveKitEmulator, receiver: Receiver, status: int
) -> None:
    receiver.statuses = [status]
    _create(emulator, "refused")
    emulator.add_participant("refused", "ann")
    emulator.webhooks.wait_idle()
    # The refused event is not sent again; the room's next one goes out after it.
    assert [a.status for a in emulator.webhooks.attempts] == [status, 200]
    assert receiver.events() == ["livekit.room.started", "livekit.participant.joined"]
    assert emulator.webhooks.dropped == {"refused": 1}


def test_a_refused_connection_is_retried(receiver: Receiver, clock: Clock) -> None:
    with LiveKitEmulator(KEY, SECRET, clock=clock) as emulator:
        emulator.webhooks.backoff = (0.01, 0.02)
        emulator.webhooks.urls = (f"http://127.0.0.1:{free_port()}/nobody",)
        _create(emulator, "unheard")
        emulator.webhooks.wait_idle()
        assert [a.status for a in emulator.webhooks.attempts] == [None] * 5
        assert emulator.webhooks.dropped == {"retries_exhausted": 1}


def test_duplicate_next_sends_the_same_event_twice(
    emulator: LiveKitEmulator, receiver: Receiver
) -> None:
    emulator.webhooks.duplicate_next()
    _create(emulator, "twice")
    emulator.webhooks.wait_idle()
    assert len(receiver.received) == 2
    assert receiver.received[0][1] == receiver.received[1][1]
    assert emulator.webhooks.delivered == 2


def test_an_event_held_back_over_max_age_is_dropped(
    emulator: LiveKitEmulator, receiver: Receiver
) -> None:
    # The first event is retried for ~0.6 s; the room's next one waits behind it.
    emulator.webhooks.backoff = (0.2, 0.2)
    emulator.webhooks.max_age = 0.3
    receiver.statuses = [503, 503, 503, 200]
    _create(emulator, "slow")
    emulator.add_participant("slow", "ann")
    emulator.webhooks.wait_idle()
    assert receiver.events()[-1] == "livekit.room.started"
    assert emulator.webhooks.dropped == {"too_old": 1}


def test_each_room_has_its_own_queue(emulator: LiveKitEmulator, receiver: Receiver) -> None:
    # One room's failing event does not hold back another room's.
    emulator.webhooks.backoff = (0.3, 0.3)
    receiver.statuses = [503]
    _create(emulator, "stuck")
    _create(emulator, "free")
    emulator.webhooks.wait_idle()
    rooms = [read_event(body).room_name for _, body in receiver.received]
    assert rooms == ["stuck", "free", "stuck"]  # refused, delivered, retried


def test_the_hook_sets_the_webhook_urls(receiver: Receiver, clock: Clock) -> None:
    with LiveKitEmulator(KEY, SECRET, clock=clock) as emulator:
        hook = f"{emulator.url}/_emulator/webhooks"
        auth = {"Authorization": f"Bearer {emulator.hook_token}"}
        assert httpx.put(hook, json={"urls": [receiver.url]}).status_code == 401
        assert httpx.put(hook, json={"urls": ["ftp://x"]}, headers=auth).status_code == 400
        answer = httpx.put(hook, json={"urls": [receiver.url]}, headers=auth)
        assert answer.status_code == 200
        assert emulator.webhooks.urls == (receiver.url,)
        _create(emulator, "hooked")
        emulator.webhooks.wait_idle()
        assert receiver.events() == ["livekit.room.started"]


def test_tracks_a_participant_joins_with_are_reported_published(
    emulator: LiveKitEmulator, receiver: Receiver
) -> None:
    _create(emulator, "podcast")
    host = emulator.add_participant(
        "podcast",
        "host",
        tracks=[{"kind": "audio", "source": "microphone"}, {"kind": "video", "source": "camera"}],
    )
    emulator.webhooks.wait_idle()
    assert receiver.events() == [
        "livekit.room.started",
        "livekit.participant.joined",
        "livekit.track.published",
        "livekit.track.published",
    ]
    events = [read_event(body) for _, body in receiver.received]
    published = [event for event in events if isinstance(event, TrackPublished)]
    assert [(e.track.sid, e.track.kind, e.track.source) for e in published] == [
        (track.sid, kind, source)
        for track, kind, source in zip(
            host.tracks, ("audio", "video"), ("microphone", "camera"), strict=True
        )
    ]
    for event in published:
        # As LiveKit's telemetry sends it: who published, in which room, nothing more.
        assert (event.participant.identity, event.participant.sid) == ("host", host.sid)
        assert (event.room.name, event.room.sid) == ("podcast", events[0].room.sid)  # type: ignore[attr-defined]
