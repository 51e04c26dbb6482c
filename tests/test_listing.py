"""The shared listing of every room: built off the event loop, encoded and joined once
per snapshot, and taught by LiveKit's events (room started/finished, participants)
between listings — with LiveKit still the authority at the next listing.

Unit tests take snapshots of hand-made rooms; the rest go through a served app and
the emulator, teaching the worker's ``Rooms`` as the webhook follower will.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import time
from collections.abc import Callable

import orjson
import pytest
from livekit import api

from aura_livekit_backend.emulator import LiveKitEmulator
from aura_livekit_backend.livekit import listing as listing_module
from aura_livekit_backend.livekit.listing import RoomSnapshot, SharedListing
from aura_livekit_backend.livekit.metadata import room_info
from aura_livekit_backend.livekit.models import RoomInfo
from aura_livekit_backend.livekit.rooms import Rooms
from aura_livekit_backend.livekit.sids import SidCache
from aura_livekit_backend.schemas import room_json, room_reply
from aura_livekit_backend.testing.client import ServiceClient
from aura_livekit_backend.testing.pytest_plugin import TEST_API_KEY, TEST_API_SECRET


def proto(name: str, ms: int, *, sid: str | None = None, people: int = 0) -> api.Room:
    return api.Room(
        name=name,
        sid=sid or f"RM_{name.replace('-', '')}",
        creation_time=ms // 1000,
        creation_time_ms=ms,
        num_participants=people,
    )


def names(snapshot: RoomSnapshot) -> list[str]:
    return [room.name for room in snapshot.rooms]


def decoded(snapshot: RoomSnapshot) -> list[dict]:
    return json.loads(snapshot.json())


# -- snapshots ---------------------------------------------------------------------------


def test_a_snapshot_is_sorted_by_age_then_name_and_encodes_each_room_in_the_api_shape():
    snapshot = RoomSnapshot(
        [proto("c", 3000), proto("b", 1000), proto("a", 3000), proto("d", 2000)], encode=room_json
    )
    assert names(snapshot) == ["b", "d", "a", "c"]
    assert decoded(snapshot) == [room_reply(room) for room in snapshot.rooms]
    assert json.loads(snapshot.json(1, 3)) == decoded(snapshot)[1:3]
    assert snapshot.json(2, 2) == b"[]"
    assert snapshot.named("a") == snapshot.room_at(2) and snapshot.named("zz") is None


def test_the_whole_list_is_joined_once_per_snapshot():
    snapshot = RoomSnapshot([proto(f"r{n}", 1000 + n) for n in range(50)], encode=room_json)
    # The very same bytes object: an answer with every room copies nothing.
    assert snapshot.json() is snapshot.json()
    assert snapshot.json(0, snapshot.total) is snapshot.json()


def test_a_snapshot_without_an_encoder_says_so():
    snapshot = RoomSnapshot([proto("a", 1000)])
    assert names(snapshot) == ["a"]
    with pytest.raises(RuntimeError, match="RoomEncoder"):
        snapshot.json()


def started(name: str, ms: int, *, people: int = 0, sid: str | None = None) -> RoomInfo:
    return room_info(proto(name, ms, sid=sid, people=people))


def taught(
    rooms: list[api.Room], *lessons: Callable[[SharedListing], None]
) -> tuple[RoomSnapshot, RoomSnapshot]:
    """A listing of ``rooms``: its first snapshot, and the one read after ``lessons``."""

    async def every_room() -> list[api.Room]:
        return rooms

    async def scenario() -> tuple[RoomSnapshot, RoomSnapshot]:
        listing = SharedListing(every_room, keep_seconds=60, encode=room_json)
        first = await listing.snapshot()
        for lesson in lessons:
            lesson(listing)
        return first, await listing.snapshot()

    return asyncio.run(scenario())


def test_learning_a_start_puts_the_room_in_its_place_and_replaces_one_of_its_name():
    snapshot, learnt = taught(
        [proto("a", 1000), proto("c", 3000)],
        lambda listing: listing.learn_started(started("b", 2000)),
        lambda listing: listing.learn_started(started("z", 500)),
    )
    assert names(learnt) == ["z", "a", "b", "c"]
    assert decoded(learnt) == [room_reply(room) for room in learnt.rooms]
    assert names(snapshot) == ["a", "c"]  # the old snapshot never changes
    assert learnt.version != snapshot.version
    # A room of the same name started again (a new sid, a new age): one room, moved.
    _, again = taught(
        [proto("a", 1000), proto("b", 2000), proto("c", 3000)],
        lambda listing: listing.learn_started(started("a", 4000, sid="RM_new")),
    )
    assert names(again) == ["b", "c", "a"]
    assert again.named("a").sid == "RM_new"
    assert again.start_after((3000, "c")) == 2


def test_learning_a_start_of_a_room_listed_already_keeps_what_was_listed():
    # The service's own "room created" reaches the feed a moment after the listing
    # that already saw someone join: the listing, asked later, is the newer word.
    snapshot, learnt = taught(
        [proto("a", 1000, people=1)],
        lambda listing: listing.learn_started(started("a", 1000, people=0)),
    )
    assert learnt is snapshot
    assert learnt.named("a").num_participants == 1


def test_learning_our_own_change_replaces_the_listed_room_in_its_place():
    # LiveKit's answer to an update made through this worker is newer than any
    # listing taken before it, the same sid or not.
    snapshot, learnt = taught(
        [proto("a", 1000, people=1), proto("b", 2000)],
        lambda listing: listing.learn_created(started("a", 1000, people=2)),
    )
    assert names(learnt) == ["a", "b"]
    assert learnt.named("a").num_participants == 2
    assert decoded(learnt)[0]["numParticipants"] == 2
    assert snapshot.named("a").num_participants == 1  # the old snapshot as it was
    _, created = taught(
        [proto("b", 2000)], lambda listing: listing.learn_created(started("a", 1000))
    )
    assert names(created) == ["a", "b"]


def test_learning_new_facts_keeps_the_listed_count_and_never_lists_a_room():
    rooms = [proto("a", 1000, people=3), proto("b", 2000)]
    renamed = dataclasses.replace(started("a", 1000, people=0), topic="renamed")
    snapshot, learnt = taught(rooms, lambda listing: listing.learn_facts(renamed))
    assert (learnt.named("a").topic, learnt.named("a").num_participants) == ("renamed", 3)
    assert decoded(learnt)[0]["roomTopic"] == "renamed"
    assert snapshot.named("a").topic != "renamed"
    # Another room of that name, or one not listed (closed meanwhile): nothing changes.
    other = dataclasses.replace(started("a", 1000, sid="RM_other"), topic="x")
    _, same = taught(rooms, lambda listing: listing.learn_facts(other))
    assert same.named("a").topic != "x"
    _, same = taught(rooms, lambda listing: listing.learn_facts(started("gone", 500)))
    assert names(same) == ["a", "b"]


def test_learning_a_finish_drops_the_room_only_if_the_sid_is_its_own():
    rooms = [proto("a", 1000), proto("b", 2000)]
    snapshot, same = taught(rooms, lambda listing: listing.learn_finished("a", "RM_other"))
    assert same is snapshot
    _, gone = taught(rooms, lambda listing: listing.learn_finished("a", "RM_a"))
    assert names(gone) == ["b"] and [r["roomId"] for r in decoded(gone)] == ["b"]
    snapshot, same = taught(rooms, lambda listing: listing.learn_finished("nobody"))
    assert same is snapshot
    _, gone = taught(rooms, lambda listing: listing.learn_finished("b"))
    assert names(gone) == ["a"]


def test_learning_a_count_reencodes_that_room():
    rooms = [proto("a", 1000), proto("b", 2000, people=1)]
    _, learnt = taught(rooms, lambda listing: listing.learn_participants("b", 3))
    assert [room.num_participants for room in learnt.rooms] == [0, 3]
    assert [r["numParticipants"] for r in decoded(learnt)] == [0, 3]
    snapshot, same = taught(rooms, lambda listing: listing.learn_participants("b", 1))
    assert same is snapshot  # nothing new
    snapshot, same = taught(rooms, lambda listing: listing.learn_participants("b", 5, "RM_x"))
    assert same is snapshot


def test_a_burst_of_lessons_makes_one_new_snapshot():
    rooms = [proto(f"r{n}", 1000 + n) for n in range(10)]
    snapshot, learnt = taught(
        rooms, *(lambda listing, n=n: listing.learn_participants(f"r{n}", n + 1) for n in range(10))
    )
    assert [room.num_participants for room in learnt.rooms] == list(range(1, 11))
    assert learnt.version == snapshot.version + 1


def test_the_cache_forgets_every_sid_of_a_closed_room_by_name():
    cache = SidCache(10)
    cache.put("RM_1", "a")
    cache.put("RM_2", "b")
    cache.put("RM_3", "a")
    cache.forget_name("a")
    assert (cache.get("RM_1"), cache.get("RM_2"), cache.get("RM_3")) == (None, "b", None)


# -- the shared listing ------------------------------------------------------------------


def test_a_snapshot_is_built_a_slice_at_a_time(monkeypatch):
    rooms = [proto(f"r{n:04d}", 1000 + n) for n in range(1024)]

    async def every_room() -> list[api.Room]:
        return rooms

    async def scenario() -> tuple[int, RoomSnapshot]:
        listing = SharedListing(every_room, keep_seconds=60, encode=room_json)
        taking = asyncio.ensure_future(listing.snapshot())
        turns = 0  # how often the loop ran something else while the snapshot was built
        while not taking.done():
            await asyncio.sleep(0)
            turns += 1
        return turns, taking.result()

    # Slices of an hour: the build never pauses; of 0 s: after every step of 64 rooms.
    # (The service's 2 ms lies between.)
    monkeypatch.setattr(listing_module, "_SLICE_SECONDS", 3600.0)
    whole, snapshot = asyncio.run(scenario())
    monkeypatch.setattr(listing_module, "_SLICE_SECONDS", 0.0)
    sliced, again = asyncio.run(scenario())
    assert sliced - whole >= 1024 // 64
    assert snapshot.json() == again.json() and again.total == 1024


def test_what_is_learnt_while_a_listing_is_in_flight_is_learnt_again_on_its_answer():
    asked, answered = asyncio.Event(), asyncio.Event()

    async def listed() -> list[api.Room]:
        asked.set()
        await answered.wait()  # LiveKit answers after the events below
        return [proto("a", 1000, people=1), proto("b", 2000)]

    async def scenario() -> RoomSnapshot:
        listing = SharedListing(listed, keep_seconds=60, encode=room_json)
        taking = asyncio.ensure_future(listing.snapshot())
        await asked.wait()  # the call is in flight
        listing.learn_finished("b")
        listing.learn_started(started("c", 3000))
        listing.learn_participants("a", 2)
        answered.set()
        await taking
        return await listing.snapshot()  # the one kept

    snapshot = asyncio.run(scenario())
    assert names(snapshot) == ["a", "c"]
    assert [room.num_participants for room in snapshot.rooms] == [2, 0]


# -- through the served app and the emulator ---------------------------------------------


@pytest.fixture(scope="module")
def emulator(module_livekit_emulator) -> LiveKitEmulator:
    return module_livekit_emulator


def outside(emulator: LiveKitEmulator, *names: str) -> list[api.Room]:
    """Create rooms in LiveKit behind the service's back, in this order."""

    async def run() -> list[api.Room]:
        lk = api.LiveKitAPI(emulator.url, TEST_API_KEY, TEST_API_SECRET)
        try:
            made = []
            for name in names:
                made.append(await lk.room.create_room(api.CreateRoomRequest(name=name)))
            return made
        finally:
            await lk.aclose()

    return asyncio.run(run())


def rooms_of(client: ServiceClient) -> Rooms:
    return client.app.ctx.livekit.rooms


def listed(client: ServiceClient) -> dict:
    response = client.get("/api/rooms")
    assert response.status_code == 200, response.text
    return response.json


def test_a_finished_room_leaves_the_list_and_the_sid_cache_without_a_listing(
    module_aura_client, emulator
) -> None:
    client = module_aura_client(room_list_cache_seconds=60)
    room, other = outside(emulator, "learn-finished-1", "learn-finished-2")
    before = listed(client)
    assert {room.name, other.name} <= {r["roomId"] for r in before["rooms"]}
    assert client.post("/api/token", json={"roomId": room.sid, "userName": "u"}).status_code == 200
    assert rooms_of(client)._sids.get(room.sid) == room.name
    calls = emulator.calls["ListRooms"]

    emulator.close_room(room.name)
    rooms_of(client).learn_finished(room.name, room.sid)
    after = listed(client)
    assert [r["roomId"] for r in after["rooms"]] == [
        r["roomId"] for r in before["rooms"] if r["roomId"] != room.name
    ]
    assert after["total"] == before["total"] - 1
    assert rooms_of(client)._sids.get(room.sid) is None
    assert emulator.calls["ListRooms"] == calls  # learnt, not listed again
    # A finish with another room's sid (the name was taken again since) changes nothing.
    rooms_of(client).learn_finished(other.name, "RM_notthisone")
    assert listed(client)["total"] == after["total"]


def test_a_started_room_joins_the_list_in_its_place_and_its_sid_is_known(
    module_aura_client, emulator
) -> None:
    client = module_aura_client(room_list_cache_seconds=60)
    listed(client)  # a snapshot that does not know the room below
    (room,) = outside(emulator, "learn-started")
    calls = emulator.calls["ListRooms"]
    rooms_of(client).learn_started(room_info(room))
    everything = listed(client)["rooms"]
    assert room.name in [r["roomId"] for r in everything]
    assert everything == sorted(everything, key=lambda r: (r["createdAt"], r["roomId"]))
    page = client.get("/api/rooms?limit=1000").json
    assert page["rooms"] == everything  # pages come from the same snapshot
    assert emulator.calls["ListRooms"] == calls
    # Its sid is known: a join by sid is one call by name, not a listing of every room.
    joined = client.post("/api/token", json={"roomId": room.sid, "userName": "u"})
    assert joined.status_code == 200 and joined.json["roomId"] == room.name
    assert emulator.calls["ListRooms"] == calls + 1


def test_participant_counts_follow_joins_and_leaves(module_aura_client, emulator) -> None:
    client = module_aura_client(room_list_cache_seconds=60)
    (room,) = outside(emulator, "learn-counts")
    listed(client)
    emulator.add_participant(room.name, "ann")
    emulator.add_participant(room.name, "bob")
    rooms_of(client).learn_participants(room.name, 2, room.sid)

    def count() -> int:
        (found,) = [r for r in listed(client)["rooms"] if r["roomId"] == room.name]
        return found["numParticipants"]

    assert count() == 2
    emulator.remove_participant(room.name, "bob")
    rooms_of(client).learn_participants(room.name, 1)
    assert count() == 1


def test_the_next_listing_replaces_what_was_learnt(serve, livekit_emulator) -> None:
    client = serve(room_list_cache_seconds=2)
    (room,) = outside(livekit_emulator, "still-there")
    assert listed(client)["total"] == 1
    # Wrongly told it finished: LiveKit, asked again, says otherwise.
    rooms_of(client).learn_finished(room.name)
    assert listed(client)["total"] == 0
    deadline = time.monotonic() + 10
    while listed(client)["total"] != 1:
        assert time.monotonic() < deadline
        time.sleep(0.05)


def test_a_long_list_is_sent_whole_and_matches_its_pages(serve, livekit_emulator) -> None:
    # Over 64 KiB: the answer is written in parts, not joined into one body.
    client = serve(room_list_cache_seconds=60)
    count = 400

    async def seed() -> None:
        lk = api.LiveKitAPI(livekit_emulator.url, TEST_API_KEY, TEST_API_SECRET)
        try:
            await asyncio.gather(
                *(
                    lk.room.create_room(api.CreateRoomRequest(name=f"long-{n:04d}"))
                    for n in range(count)
                )
            )
        finally:
            await lk.aclose()

    asyncio.run(seed())
    response = client.get("/api/rooms")
    assert response.status_code == 200
    assert int(response.headers["content-length"]) == len(response.content) > 64 * 1024
    assert response.headers["content-type"] == "application/json"
    assert response.headers["x-request-id"]  # the response middleware ran
    everything = orjson.loads(response.content)
    assert everything["total"] == count and "nextCursor" not in everything
    walked, cursor = [], None
    while True:
        page = client.get(f"/api/rooms?limit=150{f'&cursor={cursor}' if cursor else ''}").json
        walked += page["rooms"]
        cursor = page.get("nextCursor")
        if cursor is None:
            break
    assert walked == everything["rooms"]


def test_a_new_listing_converts_and_encodes_only_the_rooms_that_changed():
    encoded: list[str] = []

    def encode(room: RoomInfo) -> bytes:
        encoded.append(room.name)
        return room_json(room)

    rooms = [proto(f"r{n}", 1000 + n) for n in range(10)]

    async def every_room() -> list[api.Room]:
        return list(rooms)

    async def scenario() -> RoomSnapshot:
        listing = SharedListing(every_room, keep_seconds=0, encode=encode)
        await listing.snapshot()
        rooms[3] = proto("r3", 1003, people=2)  # someone joined
        rooms.append(proto("new", 5000))
        del rooms[0]
        return await listing.snapshot()

    snapshot = asyncio.run(scenario())
    assert encoded == [f"r{n}" for n in range(10)] + ["r3", "new"]
    assert names(snapshot) == [f"r{n}" for n in range(1, 10)] + ["new"]
    assert decoded(snapshot) == [room_reply(room) for room in snapshot.rooms]
    assert snapshot.named("r3").num_participants == 2


def test_the_whole_list_of_a_taught_snapshot_is_joined_once_too():
    _, learnt = taught(
        [proto("a", 1000), proto("b", 2000)], lambda listing: listing.learn_finished("a")
    )
    assert learnt.json() is learnt.json()
    assert [r["roomId"] for r in decoded(learnt)] == ["b"]


def test_what_a_plugin_derives_is_kept_per_snapshot_and_follows_the_lessons():
    calls: list[int] = []

    def derive(snapshot: RoomSnapshot) -> list[str]:
        calls.append(snapshot.version)
        return names(snapshot)

    snapshot, learnt = taught(
        [proto("a", 1000), proto("b", 2000)], lambda listing: listing.learn_finished("a")
    )
    assert snapshot.memo("k", derive) == ["a", "b"] == snapshot.memo("k", derive)
    assert learnt.memo("k", derive) == ["b"]
    assert calls == [snapshot.version, learnt.version]


def test_lessons_nobody_reads_do_not_pile_up(monkeypatch):
    monkeypatch.setattr(listing_module, "_MOST_UNAPPLIED", 5)
    calls = 0

    async def every_room() -> list[api.Room]:
        nonlocal calls
        calls += 1
        return [proto("a", 1000, people=0)]

    async def scenario() -> tuple[RoomSnapshot, int]:
        listing = SharedListing(every_room, keep_seconds=60, encode=room_json)
        await listing.snapshot()
        for count in range(1, 5):
            listing.learn_participants("a", count)
        kept = await listing.snapshot()  # four lessons: learnt, not listed again
        assert (calls, kept.room_at(0).num_participants) == (1, 4)
        for count in range(6):
            listing.learn_participants("a", count + 10)
        assert len(listing._unapplied) == 0  # six unread lessons: the snapshot dropped
        return await listing.snapshot(), calls

    snapshot, calls = asyncio.run(scenario())
    assert calls == 2 and snapshot.room_at(0).num_participants == 0  # LiveKit's word
