"""The console's event pages: recent events, the live feed over SSE, and the history.

The service's app hands plugins ``ctx.events`` over its event log; here the console is
mounted with ``ctx.events`` over an event log in memory (the contract's ``Events``, as
the core's follower implements it), so a test appends exactly the entries it reads back.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import re
from collections.abc import Mapping
from importlib.metadata import entry_points
from typing import Any

import httpx
import pytest
from aura_livekit_console import plugin as console

from aura_livekit_backend.event_feed import EventFeed
from aura_livekit_backend.plugin import EventLogUnavailable, LoggedEvent, Plugin

KEY = "console-key-0123456789abcdefghijkl"


class MemoryLog:
    """An event log in a list (the contract's ``EventLog``); ``down`` fails every call."""

    def __init__(self) -> None:
        self.entries: list[LoggedEvent] = []
        self.down = False
        self._changed: asyncio.Event | None = None

    def _check(self) -> None:
        if self.down:
            raise EventLogUnavailable("memory log is down")

    async def open(self) -> None:
        pass

    async def close(self) -> None:
        pass

    async def append(
        self, id: str, name: str, room: str | None, at: float, data: Mapping[str, Any]
    ) -> int | None:
        self._check()
        position = len(self.entries) + 1
        self.entries.append(LoggedEvent(position, id, name, room, at, dict(data)))
        if self._changed is not None:
            self._changed.set()
        return position

    async def read(self, after: int, limit: int) -> list[LoggedEvent]:
        self._check()
        return self.entries[after : after + limit]

    async def last_position(self) -> int:
        self._check()
        return len(self.entries)

    async def wait(self, after: int, timeout: float) -> None:
        self._check()
        if len(self.entries) > after:
            return
        self._changed = asyncio.Event()
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(self._changed.wait(), timeout)


@pytest.fixture(scope="module")
def log() -> MemoryLog:
    return MemoryLog()


@pytest.fixture(scope="module")
def client(module_aura_client, log):
    """The installed plugins, the console's ``ctx.events`` over ``log``."""
    feed = EventFeed(log)

    def setup(ctx) -> None:
        console.setup(dataclasses.replace(ctx, events=feed))

    plugins = {ep.name: ep.load() for ep in entry_points(group="aura_livekit_backend.plugins")}
    plugins["console"] = Plugin(setup=setup, at_root=True)
    with pytest.MonkeyPatch.context() as monkeypatch:
        monkeypatch.setenv("AURA_CONSOLE_KEYS", KEY)
        served = module_aura_client(plugins=plugins)
    assert served.post("/console/sign-in", data={"key": KEY}).status_code == 303
    return served


def append(client, log, name: str, room: str | None, data=None, at: float = 1_700_000_000.0):
    return client.run(log.append(f"id-{len(log.entries)}", name, room, at, data or {}))


def room_data(name: str, **fields) -> dict:
    return {"room": {"name": name, "sid": f"RM_{name}", "topic": f"Topic {name}", **fields}}


def test_a_room_page_shows_its_recent_events(client, log) -> None:
    room = client.post("/api/room/create", json={"userName": "host"}).json["roomId"]
    append(client, log, "livekit.room.started", room, room_data(room))
    append(client, log, "livekit.participant.joined", room, {"participant": {"identity": "ann"}})
    append(client, log, "livekit.participant.joined", "another-room")
    page = client.get(f"/console/room/{room}").text
    events = re.search(r'<ul id="room-events"[^>]*>(.*?)</ul>', page, re.S).group(1)
    assert events.index("livekit.participant.joined") < events.index("livekit.room.started")
    assert "another-room" not in events
    live = client.get(f"/console/room/{room}/live").json
    assert 'data-event="livekit.participant.joined"' in live["events"]


def test_the_feed_page_lists_the_newest_and_names_where_to_resume(client, log) -> None:
    append(client, log, "aura.room.created", "feed-room", room_data("<b>feed</b>"))
    page = client.get("/console/events").text
    last = len(log.entries)
    assert f'data-after="{last}"' in page
    assert f'data-position="{last}" data-event="aura.room.created"' in page
    assert "<b>feed</b>" not in page and "&lt;b&gt;feed&lt;/b&gt;" in page


def test_the_stream_relays_the_log_and_resumes_after_last_event_id(client, log) -> None:
    cookies = {"aura_console": client._client._session.cookies.get("aura_console")}
    start = len(log.entries)
    for n in range(3):
        append(client, log, "livekit.participant.joined", f"stream-{n}")

    async def run() -> tuple[list[dict], list[dict]]:
        first = await asyncio.wait_for(
            _read_stream(client.url, cookies, f"?after={start}", {}, 2), 10
        )
        # A reconnection: the browser sends the last id it saw, and the feed resumes.
        resumed = await asyncio.wait_for(
            _read_stream(
                client.url,
                cookies,
                f"?after={start}",
                {"Last-Event-ID": str(first[-1]["position"])},
                1,
            ),
            10,
        )
        return first, resumed

    first, resumed = client.run(run())
    assert [e["room"] for e in first] == ["stream-0", "stream-1"]
    assert [e["room"] for e in resumed] == ["stream-2"]


async def _read_stream(url, cookies, query, headers, count):
    found: list[dict] = []
    async with (
        httpx.AsyncClient(base_url=url, cookies=cookies) as http,
        http.stream("GET", "/console/events/stream" + query, headers=headers) as response,
    ):
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        assert "unsafe-inline" not in response.headers["content-security-policy"]
        event_id = None
        async for line in response.aiter_lines():
            if line.startswith("id: "):
                event_id = int(line[4:])
            elif line.startswith("data: "):
                entry = json.loads(line[6:])
                assert entry["position"] == event_id
                found.append(entry)
                if len(found) == count:
                    break
    return found


def test_the_stream_needs_a_session(client) -> None:
    client._client._session.cookies.clear()
    try:
        response = client.get("/console/events/stream")
        assert response.status_code == 401
        assert response.json["message"] == "sign in to the console first"
    finally:
        assert client.post("/console/sign-in", data={"key": KEY}).status_code == 303


def test_history_shows_ended_rooms_with_duration_and_peak(client, log) -> None:
    t = 1_800_000_000.0
    append(client, log, "livekit.room.started", "hist-a", room_data("hist-a"), at=t)
    for n, count in enumerate((1, 2, 3)):
        data = room_data("hist-a", num_participants=count)
        append(client, log, "livekit.participant.joined", "hist-a", data, at=t + n)
    append(client, log, "livekit.participant.left", "hist-a", room_data("hist-a"), at=t + 5)
    # Closed through the service, then LiveKit's own word of it: one ended room.
    append(client, log, "aura.room.deleted", "hist-a", room_data("hist-a"), at=t + 90)
    append(client, log, "livekit.room.finished", "hist-a", room_data("hist-a"), at=t + 91)
    page = client.get("/console/history").text
    rows = re.findall(r'<tr data-room="hist-a"[^>]*>.*?</tr>', page)
    assert len(rows) == 1
    row = rows[0]
    assert 'data-peak="3"' in row and 'data-ended-by="aura.room.deleted"' in row
    assert '<td class="duration">1 min</td>' in row
    assert "Topic hist-a" in row
    assert (
        'id="history-partial"' in page and "hidden>" in page.split('id="history-partial"')[1][:80]
    )


def test_pages_say_so_when_the_log_is_down(client, log) -> None:
    log.down = True
    try:
        assert "The event log is not available." in client.get("/console/history").text
        assert "The event log is not available." in client.get("/console/events").text
        room = client.post("/api/room/create", json={"userName": "host"}).json["roomId"]
        page = client.get(f"/console/room/{room}")
        assert page.status_code == 200 and "The event log is not available." in page.text
    finally:
        log.down = False
