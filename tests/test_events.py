"""Plugins hear what the service does, and can neither delay nor fail it."""

from __future__ import annotations

import asyncio
import logging
import threading
import time

import pytest

from aura_livekit_backend.plugin import (
    Event,
    ParticipantRemoved,
    Plugin,
    PluginContext,
    RoomCreated,
    RoomDeleted,
    RoomUpdated,
    TokenMinted,
)


def _wait_for(condition, seconds: float = 5.0) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "timed out waiting for a subscriber"
        time.sleep(0.01)


def test_every_event_reaches_its_subscriber_with_its_payload(
    core_plugins, serve, livekit_emulator
) -> None:
    heard: list[Event] = []

    def setup(ctx: PluginContext) -> None:
        for kind in (RoomCreated, RoomUpdated, RoomDeleted, TokenMinted, ParticipantRemoved):

            @ctx.on(kind)
            async def record(event: Event) -> None:
                heard.append(event)

        @ctx.blueprint.post("/act/<room_id:str>")
        async def act(request, room_id: str):
            # Every change through the contract, as a plugin would make it.
            await ctx.rooms.update(room_id, topic="new topic")
            await ctx.rooms.remove_participant(room_id, "ann")
            await ctx.rooms.delete(room_id)
            from sanic import json

            return json({})

    client = serve(plugins={"spy": Plugin(setup), **core_plugins})
    room = client.post("/api/room/create", json={"userName": "host"}).json
    livekit_emulator.add_participant(room["roomId"], "ann")
    assert client.post(f"/api/act/{room['roomId']}").status_code == 200
    _wait_for(lambda: len(heard) == 5)
    created, minted, updated, removed, deleted = heard
    assert isinstance(created, RoomCreated) and created.room.name == room["roomId"]
    assert created.room.created_by == "host"
    assert isinstance(minted, TokenMinted)
    assert (minted.room, minted.identity, minted.display_name) == (room["roomId"], "host", "host")
    assert room["token"] not in repr(minted)
    assert isinstance(updated, RoomUpdated) and updated.room.topic == "new topic"
    assert isinstance(removed, ParticipantRemoved) and removed.identity == "ann"
    assert isinstance(deleted, RoomDeleted) and deleted.room.sid == room["sid"]


def test_a_failing_subscriber_is_logged_with_the_request_id_and_fails_nothing(
    core_plugins, serve, caplog: pytest.LogCaptureFixture
) -> None:
    later: list[str] = []

    def setup(ctx: PluginContext) -> None:
        @ctx.on(RoomCreated)
        async def broken(event: RoomCreated) -> None:
            raise RuntimeError("subscriber bug")

        @ctx.on("aura.room.created")
        async def after_it(event: RoomCreated) -> None:
            later.append(event.room.name)

    client = serve(plugins={"spy": Plugin(setup), **core_plugins})
    with caplog.at_level(logging.ERROR, logger="aura_livekit_backend.events"):
        answer = client.post(
            "/api/room/create", json={"userName": "host"}, headers={"X-Request-ID": "req-42"}
        )
        assert answer.status_code == 200
        _wait_for(lambda: later == [answer.json["roomId"]])
        _wait_for(lambda: bool(caplog.records))
    records = [r for r in caplog.records if r.name == "aura_livekit_backend.events"]
    assert {r.getMessage() for r in records} == {records[0].getMessage()}
    record = records[0]
    assert "subscriber" in record.getMessage() and "aura.room.created" in record.getMessage()
    assert record.request_id == "req-42"
    assert "subscriber bug" in caplog.text


def test_a_slow_subscriber_never_delays_the_answer(core_plugins, serve) -> None:
    release = threading.Event()
    finished: list[str] = []

    def setup(ctx: PluginContext) -> None:
        @ctx.on(RoomCreated)
        async def slow(event: RoomCreated) -> None:
            # Holds on until the test has its answer: the answer cannot wait for it.
            while not release.is_set():
                await asyncio.sleep(0.01)
            finished.append(event.room.name)

    client = serve(plugins={"spy": Plugin(setup), **core_plugins})
    answer = client.post("/api/room/create", json={"userName": "host"})
    assert answer.status_code == 200 and finished == []
    release.set()
    # The served app's loop runs only while the test client talks to it.
    _wait_for(lambda: client.get("/api/health").status_code == 200 and bool(finished))
    assert finished == [answer.json["roomId"]]


def test_event_names_have_three_parts(serve) -> None:
    def setup(ctx: PluginContext) -> None:
        ctx.on("room.created")

    from aura_livekit_backend.plugin_loader import PluginError

    with pytest.raises(PluginError, match=r"three parts.*'room\.created'"):
        serve(plugins={"spy": Plugin(setup)})


def test_an_event_names_its_room_and_gives_a_json_ready_payload() -> None:
    from datetime import datetime, timezone

    import orjson

    from aura_livekit_backend.plugin import RoomInfo

    room = RoomInfo(
        name="standup",
        sid="RM_abc",
        topic="daily",
        description="",
        max_participants=4,
        created_by="ana",
        created_at=datetime(2026, 11, 28, 2, 0, tzinfo=timezone.utc),
        num_participants=1,
        agents=("helper",),
    )
    created = RoomCreated(room)
    minted = TokenMinted(room="standup", identity="ana#1", display_name="Ana")

    assert created.room_name == "standup"
    assert minted.room_name == "standup"
    data = created.data()
    assert data["room"]["created_at"] == "2026-11-28T02:00:00+00:00"
    assert data["room"]["agents"] == ["helper"]
    assert orjson.loads(orjson.dumps(data)) == data
    assert minted.data() == {"room": "standup", "identity": "ana#1", "display_name": "Ana"}
