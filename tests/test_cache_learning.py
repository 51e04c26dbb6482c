"""Every worker's room caches learn from LiveKit's webhooks, through the real path.

The emulator signs and POSTs its webhooks to the served app; the app logs them, and
each app on the log (its worker's feed) teaches its own listing and sid cache. The
listing is kept for a minute (``AURA_ROOM_LIST_CACHE_SECONDS=60``) and the tests count
LiveKit's ListRooms calls: a change seen without a new listing is the event's doing.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest
from livekit import api
from livekit.protocol import webhook as webhook_pb

from aura_livekit_backend.cache_learning import CacheFollower
from aura_livekit_backend.emulator import LiveKitEmulator
from aura_livekit_backend.emulator.webhooks import encode_event, sign_webhook
from aura_livekit_backend.events import RoomCreated, RoomUpdated
from aura_livekit_backend.testing.client import ServiceClient
from aura_livekit_backend.testing.pytest_plugin import TEST_API_KEY, TEST_API_SECRET

PATH = "/livekit/webhook"
#: Long enough that no listing is refreshed while a test runs (the setting's maximum).
KEEP = 60


def _follower(client: ServiceClient) -> CacheFollower:
    follower: CacheFollower = client.app.ctx.cache_learning
    return follower


def _learnt(client: ServiceClient) -> int:
    return _follower(client).learner.applied


def _seen(client: ServiceClient) -> int:
    return _follower(client).learner.seen


def pump(clients: list[ServiceClient], until: Any, seconds: float = 10) -> None:
    """Run the apps' loops (so they serve and follow the log) until ``until()`` holds."""
    deadline = time.monotonic() + seconds
    while not until():
        assert time.monotonic() < deadline, "timed out"
        for client in clients:
            client.run(asyncio.sleep(0.01))


def settle(clients: list[ServiceClient], emulator: LiveKitEmulator, learnt: int) -> None:
    """Wait until the emulator delivered everything and each app learnt ``learnt`` events."""
    pump(clients, lambda: emulator.webhooks.idle() and all(_learnt(c) >= learnt for c in clients))


def listed(client: ServiceClient) -> dict[str, dict[str, Any]]:
    response = client.get("/api/rooms")
    assert response.status_code == 200, response.text
    return {room["roomId"]: room for room in response.json["rooms"]}


def livekit_room(emulator: LiveKitEmulator, name: str) -> api.Room:
    """The room as LiveKit lists it (to write a webhook about it by hand)."""

    async def run() -> api.Room:
        lk = api.LiveKitAPI(emulator.url, TEST_API_KEY, TEST_API_SECRET)
        try:
            found = await lk.room.list_rooms(api.ListRoomsRequest(names=[name]))
            return found.rooms[0]
        finally:
            await lk.aclose()

    return asyncio.run(run())


def deliver(client: ServiceClient, event: webhook_pb.WebhookEvent) -> None:
    """POST ``event`` to the app signed as LiveKit signs it (a delivery written by hand)."""
    body = encode_event(event)
    headers = {
        "Authorization": sign_webhook(body, TEST_API_KEY, TEST_API_SECRET),
        "Content-Type": "application/webhook+json",
    }
    answer = client.post(PATH, content=body, headers=headers)
    assert answer.status_code == 200, answer.text


@pytest.fixture
def client(core_plugins, serve, livekit_emulator: LiveKitEmulator) -> ServiceClient:
    served = serve(plugins=core_plugins, room_list_cache_seconds=KEEP)
    livekit_emulator.webhooks.urls = (served.url + PATH,)
    livekit_emulator.webhooks.backoff = (0.05, 0.2)
    pump([served], lambda: _follower(served).since is not None)
    return served


def test_a_finished_room_leaves_the_listing_and_the_sid_cache_at_once(
    client: ServiceClient, livekit_emulator: LiveKitEmulator
) -> None:
    livekit_emulator.create_rooms(["stays", "goes"])
    settle([client], livekit_emulator, 2)
    rooms = listed(client)
    assert set(rooms) == {"stays", "goes"}
    sid = rooms["goes"]["sid"]
    calls = livekit_emulator.calls["ListRooms"]

    livekit_emulator.close_room("goes")
    settle([client], livekit_emulator, 3)

    assert set(listed(client)) == {"stays"}
    assert livekit_emulator.calls["ListRooms"] == calls  # no new listing: the event did it
    # The sid is forgotten: LiveKit is asked by the sid as a name, then every room is
    # listed (two calls); a cached sid would first cost a by-name call for "goes".
    assert client.get(f"/api/room/{sid}").status_code == 404
    assert livekit_emulator.calls["ListRooms"] == calls + 2


def test_a_started_room_joins_the_listing_and_its_sid_is_known(
    client: ServiceClient, livekit_emulator: LiveKitEmulator
) -> None:
    livekit_emulator.create_rooms(["first"])
    settle([client], livekit_emulator, 1)
    assert set(listed(client)) == {"first"}
    calls = livekit_emulator.calls["ListRooms"]

    livekit_emulator.create_rooms(["second"])  # in LiveKit, not through the service
    settle([client], livekit_emulator, 2)

    rooms = listed(client)
    assert list(rooms) == ["first", "second"]  # oldest first, the new one in its place
    assert livekit_emulator.calls["ListRooms"] == calls
    # Its sid came with the event: resolving it costs the one by-name call.
    answer = client.get(f"/api/room/{rooms['second']['sid']}")
    assert answer.status_code == 200 and answer.json["roomId"] == "second"
    assert livekit_emulator.calls["ListRooms"] == calls + 1


def test_participant_counts_follow_joins_and_leaves(
    client: ServiceClient, livekit_emulator: LiveKitEmulator
) -> None:
    livekit_emulator.create_rooms(["talk"])
    settle([client], livekit_emulator, 1)
    assert listed(client)["talk"]["numParticipants"] == 0
    calls = livekit_emulator.calls["ListRooms"]

    livekit_emulator.add_participant("talk", "ann")
    livekit_emulator.add_participant("talk", "bob")
    settle([client], livekit_emulator, 3)
    assert listed(client)["talk"]["numParticipants"] == 2

    livekit_emulator.remove_participant("talk", "ann")
    settle([client], livekit_emulator, 4)
    assert listed(client)["talk"]["numParticipants"] == 1
    assert livekit_emulator.calls["ListRooms"] == calls


def test_late_deliveries_never_undo_newer_news(
    client: ServiceClient, livekit_emulator: LiveKitEmulator
) -> None:
    livekit_emulator.create_rooms(["late"])
    livekit_emulator.add_participant("late", "ann")
    settle([client], livekit_emulator, 2)
    assert listed(client)["late"]["numParticipants"] == 1
    room = livekit_room(livekit_emulator, "late")

    # A leave LiveKit created before the join (out of order, livekit#2399): skipped.
    stale = webhook_pb.WebhookEvent(
        event="participant_left", id="EV_stale_left", created_at=int(time.time()) - 30
    )
    stale.room.CopyFrom(room)
    stale.room.num_participants = 0
    stale.participant.identity = "cat"
    deliver(client, stale)
    pump([client], lambda: _seen(client) == 3)
    assert _learnt(client) == 2
    assert listed(client)["late"]["numParticipants"] == 1

    # Once finished, a late room_started (a retry that lost the race) brings nothing back.
    livekit_emulator.close_room("late")  # ann leaves (room_deleted), then it finishes
    settle([client], livekit_emulator, 4)
    assert "late" not in listed(client)
    again = webhook_pb.WebhookEvent(
        event="room_started", id="EV_late_started", created_at=int(time.time())
    )
    again.room.CopyFrom(room)
    deliver(client, again)
    pump([client], lambda: _seen(client) == 6)
    assert _learnt(client) == 4
    assert "late" not in listed(client)


@pytest.mark.parametrize("backend", ["sqlite", "redis"])
def test_every_app_on_the_log_learns_what_one_was_told(
    core_plugins, serve, livekit_emulator: LiveKitEmulator, aura_settings, log_on, backend: str
) -> None:
    # Two apps on one log: two workers on one SQLite file, or two replicas on one Redis.
    # LiveKit calls only the first; the second learns from the log.
    settings = aura_settings(room_list_cache_seconds=KEEP, **log_on(backend))
    told, other = (serve(settings, plugins=core_plugins) for _ in range(2))
    pump([told, other], lambda: all(_follower(c).since is not None for c in (told, other)))
    livekit_emulator.webhooks.urls = (told.url + PATH,)
    livekit_emulator.create_rooms(["one", "two"])
    settle([told, other], livekit_emulator, 2)
    assert set(listed(other)) == {"one", "two"}
    calls = livekit_emulator.calls["ListRooms"]

    livekit_emulator.add_participant("one", "ann")
    livekit_emulator.close_room("two")
    livekit_emulator.create_rooms(["three"])
    settle([told, other], livekit_emulator, 5)

    rooms = listed(other)
    assert list(rooms) == ["one", "three"]
    assert rooms["one"]["numParticipants"] == 1
    assert livekit_emulator.calls["ListRooms"] == calls


def test_rooms_made_changed_and_closed_through_another_app_show_at_once_without_webhooks(
    core_plugins, serve, livekit_emulator: LiveKitEmulator, aura_settings
) -> None:
    # No webhook URL at all: the service's own aura.room.created/deleted entries teach.
    settings = aura_settings(room_list_cache_seconds=KEEP)
    maker, other = (serve(settings, plugins=core_plugins) for _ in range(2))
    pump([maker, other], lambda: all(_follower(c).since is not None for c in (maker, other)))
    assert listed(other) == {}
    calls = livekit_emulator.calls["ListRooms"]

    made = maker.post("/api/room/create", json={"userName": "host", "roomTopic": "Made"}).json
    pump([maker, other], lambda: _learnt(other) >= 1)
    rooms = listed(other)
    assert list(rooms) == [made["roomId"]] and rooms[made["roomId"]]["roomTopic"] == "Made"

    maker.run(maker.app.ctx.livekit.rooms.update(made["roomId"], topic="Renamed"))
    pump([maker, other], lambda: _learnt(other) >= 2)
    assert listed(other)[made["roomId"]]["roomTopic"] == "Renamed"

    maker.run(maker.app.ctx.livekit.rooms.delete(made["roomId"]))
    pump([maker, other], lambda: _learnt(other) >= 3)
    assert listed(other) == {}
    # The other app never listed again: these are the maker's lookups by name.
    assert livekit_emulator.calls["ListRooms"] == calls + 2


def test_a_room_made_here_and_closed_meanwhile_is_not_put_back_by_its_own_event(
    core_plugins, serve, livekit_emulator: LiveKitEmulator
) -> None:
    # The app learns its own creation from LiveKit's answer; the aura.room.created it
    # reads back from the log a moment later says nothing new. Learnt again while a
    # listing is in flight, it put back the room that listing no longer shows.
    client = serve(plugins=core_plugins, room_list_cache_seconds=KEEP)
    rooms = client.app.ctx.livekit.rooms
    learner = _follower(client).learner

    async def scenario() -> tuple[list[str], bool]:
        made = await rooms.create(topic="t", description="", max_participants=0, created_by="u")
        livekit_emulator.close_room(made.name)  # no webhooks here: only a listing can tell
        livekit_emulator.latency = 0.3
        calls = livekit_emulator.calls["ListRooms"]
        listing = asyncio.create_task(rooms.snapshot())
        deadline = time.monotonic() + 10
        while livekit_emulator.calls["ListRooms"] == calls:  # until LiveKit has the call
            assert time.monotonic() < deadline, "the listing never reached LiveKit"
            await asyncio.sleep(0.01)
        # The entry as every worker reads it back from the log, this one included.
        applied = learner.learn(RoomCreated.name, RoomCreated(made).data(), time.time())
        return [room.name for room in (await listing).rooms], applied

    shown, applied = client.run(scenario())
    assert shown == []
    assert not applied


def test_an_update_read_back_late_never_undoes_a_newer_one(
    core_plugins, serve, livekit_emulator: LiveKitEmulator
) -> None:
    client = serve(plugins=core_plugins, room_list_cache_seconds=KEEP)
    rooms = client.app.ctx.livekit.rooms
    learner = _follower(client).learner

    async def scenario() -> tuple[bool, str]:
        made = await rooms.create(topic="t", description="", max_participants=0, created_by="u")
        await rooms.snapshot()  # listed
        first = await rooms.update(made.name, topic="first")
        first_at = time.time()  # as its entry in the log has it
        await rooms.update(made.name, topic="second")
        # The first update's entry, read back from the log after the second answered.
        applied = learner.learn(RoomUpdated.name, RoomUpdated(first).data(), first_at)
        return applied, (await rooms.snapshot()).rooms[0].topic

    assert client.run(scenario()) == (False, "second")
