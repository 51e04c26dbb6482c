"""Joining by sid without listing every room each time, and GET /rooms in pages.

Tests of one worker's own rooms and of bad queries share one served app and emulator
(``client``, ``emulator``); tests that count the whole room list, need a worker that
knows nothing yet, or change settings or LiveKit's health serve apps of their own.
"""

from __future__ import annotations

import asyncio
import time

import httpx
import pytest
from livekit import api
from sanic import json

from aura_livekit_backend.emulator import LiveKitEmulator
from aura_livekit_backend.endpoints import rooms
from aura_livekit_backend.livekit.sids import SidCache, looks_like_sid
from aura_livekit_backend.plugin import Plugin, PluginContext, failing_to
from aura_livekit_backend.testing.client import ServiceClient
from aura_livekit_backend.testing.pytest_plugin import TEST_API_KEY, TEST_API_SECRET


@pytest.fixture(scope="module")
def client(module_aura_client) -> ServiceClient:
    return module_aura_client()


@pytest.fixture(scope="module")
def emulator(module_livekit_emulator) -> LiveKitEmulator:
    return module_livekit_emulator


def create(client, **body) -> dict:
    response = client.post("/api/room/create", json={"userName": "u", **body})
    assert response.status_code == 200, response.text
    return response.json


def livekit(emulator, action):
    async def run():
        lk = api.LiveKitAPI(emulator.url, TEST_API_KEY, TEST_API_SECRET)
        try:
            return await action(lk.room)
        finally:
            await lk.aclose()

    return asyncio.run(run())


def join(client, room_id: str):
    return client.post("/api/token", json={"roomId": room_id, "userName": "v"})


def test_a_known_sid_costs_one_call(client, emulator) -> None:
    rooms = [create(client) for _ in range(20)]
    for room in rooms:  # created here: the worker knows their sids already
        before = emulator.calls["ListRooms"]
        assert join(client, room["sid"]).json["roomId"] == room["roomId"]
        assert emulator.calls["ListRooms"] == before + 1


def test_an_unknown_sid_lists_once_then_is_known(serve, livekit_emulator) -> None:
    maker = serve()  # another worker
    made = [create(maker) for _ in range(5)]
    client = serve()
    before = livekit_emulator.calls["ListRooms"]
    assert join(client, made[0]["sid"]).status_code == 200
    assert livekit_emulator.calls["ListRooms"] == before + 2  # by name (miss), then all
    for room in made:  # the list taught this worker every sid it showed
        before = livekit_emulator.calls["ListRooms"]
        assert join(client, room["sid"]).status_code == 200
        assert livekit_emulator.calls["ListRooms"] == before + 1


def test_a_deleted_room_is_never_joined_through_the_cache(client, emulator) -> None:
    room = create(client)
    assert join(client, room["sid"]).status_code == 200
    livekit(emulator, lambda r: r.delete_room(api.DeleteRoomRequest(room=room["roomId"])))
    response = join(client, room["sid"])
    assert response.status_code == 404
    assert response.json["message"] == "Failed to join room: Room not found"


def test_a_recreated_room_is_not_the_old_sid(client, emulator) -> None:
    room = create(client)
    assert join(client, room["sid"]).status_code == 200
    livekit(emulator, lambda r: r.delete_room(api.DeleteRoomRequest(room=room["roomId"])))
    again = livekit(emulator, lambda r: r.create_room(api.CreateRoomRequest(name=room["roomId"])))
    assert again.sid != room["sid"]
    assert join(client, room["sid"]).status_code == 404  # the old sid is gone
    fresh = join(client, again.sid)
    assert fresh.status_code == 200 and fresh.json["sid"] == again.sid


def test_the_cache_is_bounded() -> None:
    cache = SidCache(3)
    for number in range(5):
        cache.put(f"RM_{number}", f"room-{number}")
    assert len(cache) == 3
    assert cache.get("RM_0") is None and cache.get("RM_1") is None
    cache.get("RM_2")  # used: now the most recent
    cache.put("RM_5", "room-5")
    assert cache.get("RM_2") == "room-2" and cache.get("RM_3") is None
    assert len(SidCache(0)) == 0


def test_the_workers_cache_stays_within_its_setting(serve) -> None:
    client = serve(sid_cache_size=4)
    rooms = [create(client) for _ in range(10)]
    assert join(client, rooms[0]["sid"]).status_code == 200
    assert len(client.app.ctx.livekit.rooms._sids) == 4


# -- pages -------------------------------------------------------------------------------


def test_pages_walk_every_room_once_in_a_stable_order(serve) -> None:
    client = serve()
    made = {create(client)["roomId"] for _ in range(7)}
    everything = client.get("/api/rooms").json
    order = [room["roomId"] for room in everything["rooms"]]
    assert set(order) == made and "nextCursor" not in everything

    seen, cursor, pages = [], None, 0
    while True:
        query = "limit=3" + (f"&cursor={cursor}" if cursor else "")
        page = client.get(f"/api/rooms?{query}").json
        assert page["total"] == 7
        seen += [room["roomId"] for room in page["rooms"]]
        pages += 1
        cursor = page.get("nextCursor")
        if cursor is None:
            break
    assert (seen, pages) == (order, 3)


def test_a_page_survives_rooms_closing_before_it(serve, livekit_emulator) -> None:
    client = serve(room_list_cache_seconds=0)
    rooms = [create(client)["roomId"] for _ in range(4)]
    first = client.get("/api/rooms?limit=2").json
    livekit(livekit_emulator, lambda r: r.delete_room(api.DeleteRoomRequest(room=rooms[0])))
    second = client.get(f"/api/rooms?limit=2&cursor={first['nextCursor']}").json
    assert [room["roomId"] for room in second["rooms"]] == rooms[2:]
    assert second["total"] == 3


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("limit=0", "limit: must be a whole number from 1 to 1000"),
        ("limit=1001", "limit: must be a whole number from 1 to 1000"),
        ("limit=ten", "limit: must be a whole number from 1 to 1000"),
        ("limit=-1", "limit: must be a whole number from 1 to 1000"),
        # Digits to str.isdigit() that int() refuses, and more digits than int() reads.
        ("limit=%C2%B2", "limit: must be a whole number from 1 to 1000"),
        ("limit=%D9%A3", "limit: must be a whole number from 1 to 1000"),
        ("limit=" + "9" * 5000, "limit: must be a whole number from 1 to 1000"),
        ("limit=5&cursor=" + "M" * 8000, "cursor: is not one this service handed out"),
        ("limit=5&cursor=%%%", "cursor: is not one this service handed out"),
        ("limit=5&cursor=bm9jb2xvbg", "cursor: is not one this service handed out"),
        ("limit=5&cursor=YWJjOm5hbWU", "cursor: is not one this service handed out"),
        ("cursor=MTox", "cursor: only goes with limit"),
        ("limit=", "limit: must be a whole number from 1 to 1000"),
        ("limit=5&cursor=", "cursor: is not one this service handed out"),
    ],
)
def test_bad_page_queries_are_400s(client, query: str, message: str) -> None:
    response = client.get(f"/api/rooms?{query}")
    assert response.status_code == 400
    assert response.json == {"statusCode": 400, "message": message}


def test_a_listing_is_reused_for_a_moment_and_learns_our_own_changes(
    serve, livekit_emulator
) -> None:
    client = serve(room_list_cache_seconds=0.3)
    create(client)
    before = livekit_emulator.calls["ListRooms"]
    for _ in range(5):  # a burst of pages shares one listing
        assert client.get("/api/rooms?limit=1").json["total"] == 1
    assert livekit_emulator.calls["ListRooms"] == before + 1
    create(client)  # our own change shows at once, learnt rather than listed again
    assert client.get("/api/rooms").json["total"] == 2
    assert livekit_emulator.calls["ListRooms"] == before + 1
    livekit(livekit_emulator, lambda r: r.create_room(api.CreateRoomRequest(name="elsewhere")))
    assert client.get("/api/rooms").json["total"] == 2  # someone else's: within the window
    time.sleep(0.35)
    # Just past the window: answered from the old listing while a fresh one is taken.
    assert client.get("/api/rooms").json["total"] == 2
    deadline = time.monotonic() + 5
    while client.get("/api/rooms").json["total"] != 3:
        assert time.monotonic() < deadline
        time.sleep(0.01)
    livekit(livekit_emulator, lambda r: r.create_room(api.CreateRoomRequest(name="another")))
    time.sleep(0.65)  # past twice the window: nothing that old is answered
    assert client.get("/api/rooms").json["total"] == 4


def _changing(ctx: PluginContext) -> None:
    """Routes that change a room through the contract, as a plugin would."""

    @ctx.blueprint.post("/topic/<room_id:str>")
    async def topic(request, room_id: str):
        with failing_to("update the room"):
            await ctx.rooms.update(room_id, topic=request.json["topic"])
        return json({})

    @ctx.blueprint.post("/close/<room_id:str>")
    async def close(request, room_id: str):
        await ctx.rooms.delete(room_id)
        return json({})


def test_updates_and_closes_through_the_worker_show_at_once_without_listing_again(
    serve, livekit_emulator
) -> None:
    client = serve(
        room_list_cache_seconds=60, plugins={"rooms": rooms.plugin, "act": Plugin(_changing)}
    )
    first, second = create(client, roomTopic="one"), create(client, roomTopic="two")
    assert [r["roomTopic"] for r in client.get("/api/rooms").json["rooms"]] == ["one", "two"]
    listed = livekit_emulator.calls["ListRooms"]
    answer = client.post(f"/api/topic/{first['roomId']}", json={"topic": "renamed"})
    assert answer.status_code == 200, answer.text
    page = client.get("/api/rooms").json
    assert [(r["roomId"], r["roomTopic"]) for r in page["rooms"]] == [
        (first["roomId"], "renamed"),  # in its place by age, not moved to the end
        (second["roomId"], "two"),
    ]
    assert client.post(f"/api/close/{second['roomId']}").status_code == 200
    assert [r["roomId"] for r in client.get("/api/rooms").json["rooms"]] == [first["roomId"]]
    # Each change looked its room up by name (one ListRooms each); nothing listed all.
    assert livekit_emulator.calls["ListRooms"] == listed + 2
    # A change whose outcome nobody knows (LiveKit failed to answer) is listed afresh.
    livekit_emulator.disturb("unavailable", method="UpdateRoomMetadata")
    answer = client.post(f"/api/topic/{first['roomId']}", json={"topic": "lost"})
    assert answer.status_code == 503
    livekit_emulator.heal()
    client.get("/api/rooms")
    assert livekit_emulator.calls["ListRooms"] == listed + 2 + 2  # the lookup, the listing


def test_callers_meanwhile_share_one_listing_call_and_its_failure(serve, livekit_emulator):
    # A stalled LiveKit: every caller must get its 503 after one timeout, not after
    # one timeout for each caller queued ahead of it.
    client = serve(livekit_timeout=0.5, room_list_cache_seconds=0)
    livekit_emulator.disturb("stall", method="ListRooms")

    async def burst() -> list[int]:
        async with httpx.AsyncClient(base_url=client.url, timeout=10) as http:
            answers = await asyncio.gather(*(http.get("/api/rooms") for _ in range(6)))
        return [answer.status_code for answer in answers]

    assert client.run(burst()) == [503] * 6
    assert livekit_emulator.calls["ListRooms"] == 1
    livekit_emulator.heal()
    # The failure is not kept: the next caller gets a listing of its own.
    assert client.get("/api/rooms").status_code == 200
    assert livekit_emulator.calls["ListRooms"] == 2


@pytest.mark.parametrize(
    ("room_id", "sid_like"),
    [
        ("RM_dSbCDo6CDPQU", True),  # today's LiveKit: 12 base57 characters
        ("RM_" + "a1B2c3D4e5F6g7H8i9J0kL", True),  # older servers: a 22-character shortuuid
        ("RM_0", True),
        ("RM_" + "x" * 64, True),
        ("RM_", False),
        ("RM_" + "x" * 65, False),
        ("RM_abc-def", False),
        ("rm_abcdef", False),
        ("room-1736598234-x7k2m9", False),
    ],
)
def test_what_may_be_a_room_sid(room_id: str, sid_like: bool) -> None:
    assert looks_like_sid(room_id) is sid_like
