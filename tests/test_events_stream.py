"""GET /api/events: the SSE stream (format, resume, filters, heartbeats, slow clients),
the JSON page, bad parameters, and who may read.

The app is served by the kit on a real port; a stream is read by an httpx client on
the app's own event loop (``client.run``), so the server runs while the test reads,
and entries are appended to the app's own event log in the same loop.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import httpx
import orjson
import pytest

from aura_livekit_backend.testing.issuer import DevIssuer

KEY = "k-0123456789abcdef-events"
AUTH = {"Authorization": f"Bearer {KEY}"}
STREAM = {**AUTH, "Accept": "text/event-stream"}
PAGE = {**AUTH, "Accept": "application/json"}
AUDIENCE = "aura-events-test"
#: Generous: a loaded 2-core machine, not a claim about speed.
WITHIN = 20.0


class Frame(dict[str, Any]):
    """One SSE block: its fields (``id``, ``event``, ``data``) and comment lines."""


async def frames(response: httpx.Response) -> AsyncIterator[Frame]:
    """The blocks of an SSE answer, as they arrive."""
    frame = Frame(comments=[])
    async for line in response.aiter_lines():
        if not line:
            yield frame
            frame = Frame(comments=[])
        elif line.startswith(":"):
            frame["comments"].append(line[1:].strip())
        else:
            field, _, value = line.partition(":")
            frame[field] = value[1:] if value.startswith(" ") else value


class Reader:
    """Reads one SSE answer block by block (an httpx answer is read once)."""

    def __init__(self, response: httpx.Response) -> None:
        self._frames = frames(response)

    async def frame(self) -> Frame:
        """The next block, whatever it is."""
        return await asyncio.wait_for(anext(self._frames), WITHIN)

    async def events(self, count: int) -> list[Frame]:
        """The next ``count`` event blocks (heartbeats and comments skipped)."""
        got: list[Frame] = []

        async def collect() -> None:
            async for frame in self._frames:
                if "data" in frame:
                    got.append(frame)
                    if len(got) == count:
                        return

        await asyncio.wait_for(collect(), WITHIN)
        return got

    async def rest(self) -> list[Frame]:
        """Every block until the answer ends."""
        return [frame async for frame in self._frames]


@asynccontextmanager
async def sse(
    client: Any, path: str = "/api/events", headers: dict[str, str] = STREAM
) -> AsyncIterator[Reader]:
    """A stream opened on ``client``'s app, read block by block."""
    async with (
        httpx.AsyncClient(base_url=client.url, timeout=WITHIN) as http,
        http.stream("GET", path, headers=headers) as response,
    ):
        assert response.status_code == 200, await response.aread()
        yield Reader(response)


async def append(client: Any, count: int, *, name: str = "aura.room.created", room: str = "r1",
                 start: int = 0, size: int = 0) -> None:  # fmt: skip
    log = client.app.ctx.event_log
    for n in range(start, start + count):
        await log.append(
            f"{name}-{room}-{n}", name, room, 1767111731.5, {"n": n, "pad": "x" * size}
        )


@pytest.fixture
def events_app(serve) -> Callable[..., Any]:
    """``events_app(**fields)``: the service with a key, short heartbeats, fields on top."""

    def make(**fields: Any) -> Any:
        return serve(**{"api_keys": KEY, "events_heartbeat": 0.2, **fields})

    return make


def test_a_stream_sends_each_entry_as_an_sse_event_and_resumes_after_last_event_id(
    events_app,
) -> None:
    client = events_app()

    async def run() -> None:
        await append(client, 3)
        async with httpx.AsyncClient(base_url=client.url, timeout=WITHIN) as http:
            headers = {**STREAM, "Last-Event-ID": "1"}
            async with http.stream("GET", "/api/events", headers=headers) as response:
                assert response.status_code == 200
                assert response.headers["content-type"].startswith("text/event-stream")
                assert response.headers["cache-control"] == "no-cache"
                reader = Reader(response)
                caught_up = await reader.events(2)
                await append(client, 1, start=3)
                live = await reader.events(1)
        got = caught_up + live
        assert [f["id"] for f in got] == ["2", "3", "4"]
        assert {f["event"] for f in got} == {"aura.room.created"}
        data = orjson.loads(got[0]["data"])
        assert data == {
            "position": 2,
            "id": "aura.room.created-r1-1",
            "name": "aura.room.created",
            "room": "r1",
            "at": "2025-12-30T16:22:11.500Z",
            "data": {"n": 1, "pad": ""},
        }
        # ?after= resumes too; Last-Event-ID (a reconnecting EventSource) wins over it.
        async with httpx.AsyncClient(base_url=client.url, timeout=WITHIN) as http:
            async with http.stream("GET", "/api/events?after=3", headers=STREAM) as response:
                assert [f["id"] for f in await Reader(response).events(1)] == ["4"]
            headers = {**STREAM, "Last-Event-ID": "2"}
            async with http.stream("GET", "/api/events?after=0", headers=headers) as response:
                assert [f["id"] for f in await Reader(response).events(2)] == ["3", "4"]

    client.run(run())


def test_a_stream_without_a_position_starts_now_and_says_so_first(events_app) -> None:
    client = events_app()

    async def run() -> None:
        await append(client, 2)
        # No Accept at all (curl -N): a stream too.
        async with sse(client, headers=AUTH) as reader:
            first = await reader.frame()
            assert first["retry"] == "2000" and first["comments"] == ["connected"]
            await append(client, 1, start=2)
            got = await reader.events(1)
        assert [f["id"] for f in got] == ["3"]

    client.run(run())


def test_filters_by_room_and_type_apply_to_both_answers(events_app) -> None:
    client = events_app()

    async def run() -> dict[str, Any]:
        await append(client, 1, name="livekit.participant.joined", room="a")
        await append(client, 1, name="livekit.participant.left", room="b")
        await append(client, 1, name="livekit.room.started", room="a")
        await append(client, 1, name="aura.token.minted", room="a,b")
        async with httpx.AsyncClient(base_url=client.url, timeout=WITHIN) as http:
            pages = {
                query: (await http.get(f"/api/events?{query}", headers=PAGE)).json()
                for query in (
                    "room=a",
                    "room=a&room=b",
                    "room=a,b",
                    "type=livekit.participant.",
                    "type=livekit.room.started,aura.token.minted",
                    "type=livekit.participant.&type=aura.",
                    "room=a&type=livekit.",
                )
            }
            path = "/api/events?after=0&room=a&type=livekit.participant.,livekit.room."
            async with http.stream("GET", path, headers=STREAM) as response:
                streamed = await Reader(response).events(2)
        return {"pages": pages, "streamed": [f["event"] for f in streamed]}

    result = client.run(run())
    names = {q: [e["name"] for e in page["events"]] for q, page in result["pages"].items()}
    assert names["room=a"] == [
        "livekit.participant.joined", "livekit.room.started",
    ]  # fmt: skip
    assert names["room=a&room=b"] == [
        "livekit.participant.joined", "livekit.participant.left", "livekit.room.started",
    ]  # fmt: skip
    # Room names may hold commas: room is repeated, never split.
    assert names["room=a,b"] == ["aura.token.minted"]
    assert names["type=livekit.participant."] == [
        "livekit.participant.joined", "livekit.participant.left",
    ]  # fmt: skip
    assert names["type=livekit.room.started,aura.token.minted"] == [
        "livekit.room.started", "aura.token.minted",
    ]  # fmt: skip
    assert names["type=livekit.participant.&type=aura."] == [
        "livekit.participant.joined", "livekit.participant.left", "aura.token.minted",
    ]  # fmt: skip
    assert names["room=a&type=livekit."] == ["livekit.participant.joined", "livekit.room.started"]
    assert result["streamed"] == ["livekit.participant.joined", "livekit.room.started"]
    assert all(page["next"] == 4 for page in result["pages"].values())


def test_an_idle_stream_sends_heartbeats(events_app) -> None:
    client = events_app(events_heartbeat=0.1)

    async def run() -> list[str]:
        comments: list[str] = []
        async with sse(client) as reader:

            async def three() -> None:
                async for frame in reader._frames:
                    comments.extend(frame["comments"])
                    if comments.count("heartbeat") == 3:
                        return

            await asyncio.wait_for(three(), WITHIN)
        return comments

    comments = client.run(run())
    assert comments[0] == "connected" and comments[1:] == ["heartbeat"] * 3


def test_the_json_page_reads_on_with_next(events_app) -> None:
    client = events_app()

    async def run() -> list[dict[str, Any]]:
        await append(client, 5)
        pages = []
        async with httpx.AsyncClient(base_url=client.url, timeout=WITHIN) as http:
            # after= alone asks for a page, whatever Accept says (curl's */*).
            pages.append((await http.get("/api/events?after=0&limit=2", headers=AUTH)).json())
            pages.append((await http.get("/api/events?after=2&limit=2", headers=AUTH)).json())
            pages.append((await http.get("/api/events?after=4", headers=AUTH)).json())
            pages.append((await http.get("/api/events?after=5", headers=AUTH)).json())
            # Accept: application/json alone: the first page.
            pages.append((await http.get("/api/events", headers=PAGE)).json())
        return pages

    pages = client.run(run())
    assert [[e["position"] for e in p["events"]] for p in pages] == [
        [1, 2], [3, 4], [5], [], [1, 2, 3, 4, 5],
    ]  # fmt: skip
    assert [p["next"] for p in pages] == [2, 4, 5, 5, 5]
    assert pages[0]["events"][0]["data"] == {"n": 0, "pad": ""}


@pytest.mark.parametrize(
    ("query", "headers", "message"),
    [
        ("after=x", PAGE, "after: must be a whole number, 0 or more (a position)"),
        ("after=-1", PAGE, "after: must be a whole number, 0 or more (a position)"),
        ("after=", PAGE, "after: must be a whole number, 0 or more (a position)"),
        ("after=1&after=2", PAGE, "after: give it once"),
        ("limit=0", PAGE, "limit: must be a whole number from 1 to 1000"),
        ("limit=1001", PAGE, "limit: must be a whole number from 1 to 1000"),
        ("limit=5", STREAM, "limit: only for a JSON page (Accept: application/json)"),
        ("room=", PAGE, "room: "),
        ("type=Room", PAGE, "type: must be an event name such as livekit.participant.joined"),
        ("type=livekit", PAGE, "type: must be an event name such as livekit.participant.joined"),
        ("type=a.b.c.d", PAGE, "type: must be an event name such as livekit.participant.joined"),
        ("since=3", PAGE, "since: unknown parameter; use after, limit, room or type"),
        ("", {**STREAM, "Last-Event-ID": "abc"}, "Last-Event-ID: must be a whole number"),
        # Past a signed 64-bit integer: no position, and no 500 from the log's driver.
        ("after=9223372036854775808", PAGE, "after: must be a whole number, 0 or more"),
        ("after=9999999999999999999", PAGE, "after: must be a whole number, 0 or more"),
        (
            "",
            {**STREAM, "Last-Event-ID": "9223372036854775808"},
            "Last-Event-ID: must be a whole number",
        ),
    ],
)
def test_bad_parameters_are_a_400_naming_them(
    module_events_client, query: str, headers: dict[str, str], message: str
) -> None:
    response = module_events_client.get(f"/api/events?{query}", headers=headers)
    assert response.status_code == 400, response.text
    assert response.json["statusCode"] == 400
    assert response.json["message"].startswith(message)


@pytest.mark.parametrize("backend", ["sqlite", "redis"])
def test_the_largest_position_is_a_page_with_nothing_past_it(
    events_app, log_on, backend: str
) -> None:
    client = events_app(**log_on(backend))

    async def run() -> httpx.Response:
        async with httpx.AsyncClient(base_url=client.url, timeout=WITHIN) as http:
            return await http.get("/api/events?after=9223372036854775807", headers=PAGE)

    response = client.run(run())
    assert response.status_code == 200, response.text
    assert response.json() == {"events": [], "next": 9223372036854775807}


@pytest.fixture(scope="module")
def module_events_client(module_aura_client):
    return module_aura_client(api_keys=KEY)


def test_the_event_log_down_is_a_503_in_bounded_time(events_app) -> None:
    client = events_app()

    async def run() -> list[httpx.Response]:
        # The log closed under the app: every read fails as a Redis outage would.
        await client.app.ctx.event_log.close()
        async with httpx.AsyncClient(base_url=client.url, timeout=WITHIN) as http:
            return [
                await http.get("/api/events?after=0", headers=AUTH),
                await http.get("/api/events", headers=STREAM),
            ]

    for response in client.run(run()):
        assert response.status_code == 503
        assert response.json()["message"].startswith("Event log unavailable: ")


# -- who may read ------------------------------------------------------------------------


def test_without_credentials_configured_nobody_reads_events(serve) -> None:
    client = serve()
    for headers in ({"Accept": "application/json"}, {"Accept": "text/event-stream"}):
        response = client.get("/api/events", headers=headers)
        assert response.status_code == 403
        assert "AURA_API_KEYS" in response.json["message"]
    # The other routes stay as they were (open, with the start-up warning).
    assert client.get("/api/health").status_code == 200


def test_dev_mode_opens_them_without_credentials(serve) -> None:
    client = serve(dev=True)
    response = client.get("/api/events?after=0")
    assert response.status_code == 200 and response.json == {"events": [], "next": 0}


def test_an_api_key_is_needed_when_keys_are_set(module_events_client) -> None:
    response = module_events_client.get("/api/events?after=0")
    assert response.status_code == 401
    response = module_events_client.get(
        "/api/events?after=0", headers={"Authorization": "Bearer k-0123456789abcdef-wrong!"}
    )
    assert response.status_code == 401
    assert module_events_client.get("/api/events?after=0", headers=AUTH).status_code == 200


@pytest.fixture(scope="module")
def issuer():
    with DevIssuer(AUDIENCE) as running:
        yield running


@pytest.mark.parametrize(
    ("claims", "claim_setting", "status"),
    [
        ({"roles": ["events"]}, None, 200),
        ({"roles": ["admin", "host"]}, None, 200),
        ({"roles": ["host"]}, None, 403),
        ({}, None, 403),
        ({"realm_access": {"roles": ["ops"]}}, "realm_access.roles:ops", 200),
        ({"roles": ["events"]}, "", 403),
    ],
)
def test_a_person_reads_events_with_the_claim(
    serve, issuer, claims: dict[str, Any], claim_setting: str | None, status: int
) -> None:
    fields: dict[str, Any] = {"auth": "jwt", "auth_issuer": issuer.url, "auth_audience": AUDIENCE}
    if claim_setting is not None:
        fields["events_claim"] = claim_setting
    client = serve(**fields)
    token = issuer.token("ann", claims=claims)
    response = client.get("/api/events?after=0", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == status, response.text
    if status == 403:
        assert response.json["message"].startswith("reading events needs ")


# -- slow clients, stopping ---------------------------------------------------------------


def test_a_client_that_stops_reading_is_dropped_and_holds_up_no_one(events_app) -> None:
    client = events_app(events_buffer=5, events_send_timeout=0.5)
    metrics = client.app.ctx.event_feed._metrics
    total = 600

    async def run() -> list[str]:
        loop = asyncio.get_running_loop()
        # A client that asks for the stream, then never reads: a small receive buffer,
        # so the server's writes back up quickly.
        stuck = socket.socket()
        stuck.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        stuck.setblocking(False)
        host, port = client.url.removeprefix("http://").split(":")
        await loop.sock_connect(stuck, (host, int(port)))
        request = (
            f"GET /api/events HTTP/1.1\r\nHost: {host}\r\nAuthorization: Bearer {KEY}\r\n"
            "Accept: text/event-stream\r\n\r\n"
        )
        await loop.sock_sendall(stuck, request.encode())
        try:
            async with sse(client) as reader:
                await reader.frame()  # "connected"
                while metrics.sse_clients._value.get() < 2:
                    await asyncio.sleep(0.01)
                writer = asyncio.ensure_future(append(client, total, size=8192))
                got = await reader.events(total)
                await writer
            # The stuck one was dropped from the feed, then disconnected.
            deadline = loop.time() + WITHIN
            while metrics.sse_clients._value.get() > 0 and loop.time() < deadline:
                await asyncio.sleep(0.05)
            return [frame["id"] for frame in got]
        finally:
            stuck.close()

    ids = client.run(run())
    assert ids == [str(n) for n in range(1, total + 1)]
    assert metrics.events_dropped._value.get() >= 1
    assert metrics.sse_clients._value.get() == 0


def test_stopping_the_feed_ends_open_streams_cleanly(events_app) -> None:
    client = events_app(events_heartbeat=30)

    async def run() -> list[Frame]:
        async with sse(client) as reader:
            seen = [await reader.frame()]
            # What before_server_stop does when the worker stops.
            await client.app.ctx.event_feed.stop()
            # The answer ends (a clean end of the chunked body, no error), long
            # before the next heartbeat would be due.
            seen += await asyncio.wait_for(reader.rest(), WITHIN)
        return seen

    seen = client.run(run())
    assert seen[0]["comments"] == ["connected"] and len(seen) == 1


def test_the_openapi_document_describes_both_answers(events_app) -> None:
    client = events_app()
    document = client.get("/docs/openapi.json").json
    operation = document["paths"]["/api/events"]["get"]
    content = operation["responses"]["200"]["content"]
    assert set(content) == {"text/event-stream", "application/json"}
    # Each event of the stream, as schemathesis checks every event it reads.
    event = content["text/event-stream"]["schema"]
    assert event["type"] == "object" and event["required"] == ["id", "event", "data"]
    page = content["application/json"]["schema"]
    assert set(page["properties"]) == {"events", "next"}
    assert {p["name"] for p in operation["parameters"]} == {
        "after", "limit", "room", "type", "Last-Event-ID",
    }  # fmt: skip
    assert {"400", "401", "403", "503"} <= set(operation["responses"])


def test_a_stream_outlives_the_request_deadline(events_app) -> None:
    # AURA_REQUEST_TIMEOUT bounds how long a request takes to arrive, not how long
    # its answer may stream: heartbeats keep coming well past it.
    client = events_app(request_timeout=0.3, events_heartbeat=0.05)

    async def run() -> int:
        async with sse(client) as reader:
            started = asyncio.get_running_loop().time()
            beats = 0
            while asyncio.get_running_loop().time() - started < 1.5:
                frame = await reader.frame()
                beats += frame["comments"].count("heartbeat")
            await append(client, 1)
            await reader.events(1)
        return beats

    assert client.run(run()) > 1
