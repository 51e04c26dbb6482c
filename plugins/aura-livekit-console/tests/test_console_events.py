"""The console's event pages: recent events, the live feed over SSE, and the history.

The service's app hands plugins ``ctx.events`` over its event log; here the console is
mounted with ``ctx.events`` over an event log in memory (the contract's ``Events``, as
the core's follower implements it), so a test appends exactly the entries it reads back.
"""

from __future__ import annotations

import asyncio
import dataclasses
import html
import json
import re
import socket
from importlib.metadata import entry_points

import httpx
import pytest
from aura_livekit_console import events as console_events
from aura_livekit_console import plugin as console

from aura_livekit_backend.event_feed import EventFeed
from aura_livekit_backend.plugin import Plugin
from aura_livekit_backend.testing.memory_log import MemoryLog

KEY = "console-key-0123456789abcdefghijkl"


@pytest.fixture(scope="module")
def log() -> MemoryLog:
    return MemoryLog()


def serve_console(start, log: MemoryLog, feed: EventFeed | None = None):
    """The installed plugins served by ``start``, the console's ``ctx.events`` over
    ``log`` (a feed of its own: the service stopping its feed does not end it), signed in."""
    feed = feed or EventFeed(log)

    def setup(ctx) -> None:
        console.setup(dataclasses.replace(ctx, events=feed))

    plugins = {ep.name: ep.load() for ep in entry_points(group="aura_livekit_backend.plugins")}
    plugins["console"] = Plugin(setup=setup, at_root=True)
    with pytest.MonkeyPatch.context() as monkeypatch:
        monkeypatch.setenv("AURA_CONSOLE_KEYS", KEY)
        served = start(plugins=plugins)
    assert served.post("/console/sign-in", data={"key": KEY}).status_code == 303
    return served


@pytest.fixture(scope="module")
def client(module_aura_client, log):
    """The installed plugins, the console's ``ctx.events`` over ``log``."""
    return serve_console(module_aura_client, log)


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


def test_the_page_shows_a_payload_as_compact_json_like_the_live_feed(client, log) -> None:
    """The script adds live entries with JSON.stringify: the server's look the same."""
    append(client, log, "aura.test.payload", "json-room", {"a": 1, "b": [1, "x"], "c": {"d": None}})
    page = client.get("/console/events").text
    item = re.search(r'data-event="aura.test.payload".*?class="event-data">([^<]*)<', page)
    assert html.unescape(item.group(1)) == '{"a":1,"b":[1,"x"],"c":{"d":null}}'


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


@pytest.mark.parametrize(
    "odd",
    [
        {"num_participants": "many"},
        {"num_participants": [3]},
        {"num_participants": 1e300},
        {"num_participants": float("inf")},
        {"created_at": "0001-01-01T00:00:00+01:00"},  # before year 1 in UTC
        {"created_at": "9999-12-31T23:59:59-01:00"},  # after year 9999 in UTC
    ],
    ids=["count-text", "count-list", "count-huge", "count-inf", "before-1", "after-9999"],
)
def test_history_reads_past_an_entry_it_cannot_make_sense_of(client, log, odd) -> None:
    """A payload of a shape the console does not expect (another writer of the log)
    counts for nothing; the history still shows every room, those after it too."""
    t = 1_800_100_000.0
    odd_room, after = f"odd-{len(log.entries)}", f"after-odd-{len(log.entries)}"
    append(client, log, "livekit.room.started", odd_room, room_data(odd_room, **odd), at=t)
    append(client, log, "livekit.participant.joined", odd_room, room_data(odd_room, **odd))
    append(client, log, "livekit.room.finished", odd_room, room_data(odd_room, **odd), at=t + 9)
    append(client, log, "livekit.room.started", after, room_data(after), at=t)
    append(client, log, "livekit.room.finished", after, room_data(after), at=t + 9)
    response = client.get("/console/history")
    assert response.status_code == 200
    # The one join counted; the odd count and start time were left out.
    row = re.search(f'<tr data-room="{odd_room}" data-peak="1".*?</tr>', response.text, re.S)
    assert row is not None
    assert f'<tr data-room="{after}"' in response.text


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


# -- clients that do not read, and a worker that stops --------------------------------


def _cookie(client) -> str:
    return client._client._session.cookies.get("aura_console")


def _connections() -> int:
    """Connections the server in this loop still handles (Sanic: a task for each)."""
    return sum(
        1
        for task in asyncio.all_tasks()
        if not task.done() and "connection_task" in task.get_coro().__qualname__
    )


async def live(feed: EventFeed, then):
    """``then`` awaited with ``feed`` following the log, as the service's feed does
    once a worker serves (streams then wait on it, not on the log)."""
    feed.start()
    deadline = asyncio.get_running_loop().time() + 10
    while not feed.live and asyncio.get_running_loop().time() < deadline:
        await asyncio.sleep(0.01)
    return await then


async def _stop_worker(client) -> None:
    """What Sanic does first when a worker stops, before it waits for open connections
    to finish (the console's feed in these tests is its own: the service's stopping
    feed does not end its streams)."""
    app = client.app
    await app.dispatch(
        "server.shutdown.before",
        fail_not_found=False,
        reverse=True,
        inline=True,
        context={"app": app, "loop": asyncio.get_running_loop()},
    )


@pytest.mark.parametrize("then", ["wait", "stop"])
def test_a_client_that_stops_reading_is_dropped(aura_client, monkeypatch, then: str) -> None:
    """After SEND_TIMEOUT; or at once when the worker stops (SEND_TIMEOUT is an hour
    then: only the stop can end it within the test's deadline)."""
    monkeypatch.setattr(console_events, "SEND_TIMEOUT", 0.5 if then == "wait" else 3600)
    log = MemoryLog()
    feed = EventFeed(log)
    client = serve_console(aura_client, log, feed)
    host, port = client.url.removeprefix("http://").split(":")

    async def run() -> tuple[int, int, bytes]:
        loop = asyncio.get_running_loop()
        before = _connections()
        # Asks for the stream, then never reads: a small receive buffer, so the
        # server's writes back up quickly.
        stuck = socket.socket()
        stuck.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        stuck.setblocking(False)
        try:
            await loop.sock_connect(stuck, (host, int(port)))
            request = (
                f"GET /console/events/stream HTTP/1.1\r\nHost: {host}\r\n"
                f"Cookie: aura_console={_cookie(client)}\r\n\r\n"
            )
            await loop.sock_sendall(stuck, request.encode())
            deadline = loop.time() + 10
            while _connections() <= before and loop.time() < deadline:
                await asyncio.sleep(0.02)
            handling = _connections()
            for n in range(300):
                await log.append(f"big-{n}", "aura.room.created", "big", 1.0, {"pad": "x" * 20_000})
            if then == "stop":
                await asyncio.sleep(0.2)  # the relay writing, or about to: both must end
                await _stop_worker(client)
            # The server gives up on it; its connection ends then.
            while _connections() >= handling and loop.time() < deadline:
                await asyncio.sleep(0.05)
            after = _connections()
            # Dropped, not ended: reading now gets what was sent, then the connection's
            # end without the end of the chunked body.
            received = b""
            while loop.time() < deadline:
                chunk = await asyncio.wait_for(loop.sock_recv(stuck, 65536), 5)
                if not chunk:
                    break
                received += chunk
            return handling - before, after - before, received
        finally:
            stuck.close()

    try:
        opened, left, received = client.run(live(feed, run()))
    finally:
        client.run(feed.stop())
    assert opened == 1
    assert left == 0
    assert received.startswith(b"HTTP/1.1 200")
    assert not received.endswith(b"\r\n0\r\n\r\n")


def test_a_stopping_worker_ends_open_streams(aura_client) -> None:
    log = MemoryLog()
    feed = EventFeed(log)
    client = serve_console(aura_client, log, feed)
    cookies = {"aura_console": _cookie(client)}

    async def run() -> list[str]:
        async with (
            httpx.AsyncClient(base_url=client.url, cookies=cookies) as http,
            http.stream("GET", "/console/events/stream") as response,
        ):
            lines = response.aiter_lines()
            seen = [await anext(lines), await anext(lines)]
            await _stop_worker(client)

            async def rest() -> list[str]:
                return [line async for line in lines]

            # The answer ends cleanly long before the next heartbeat (15 s) would be due.
            seen += await asyncio.wait_for(rest(), 10)
        return seen

    try:
        assert client.run(live(feed, run())) == ["retry: 2000", ": connected", ""]
    finally:
        client.run(feed.stop())
