"""``GET /events``: the event log, live as Server-Sent Events or one JSON page at a time.

One route, two answers, chosen by what the client asks for:

- a **stream** (``text/event-stream``) when ``Accept`` names ``text/event-stream``
  (``EventSource`` does), or names neither it nor JSON and the query has no ``after``
  or ``limit`` (``curl -N``): every new entry as it is logged, by any worker or
  replica. Each event's ``id`` is its position, ``event`` its name, ``data`` the
  entry as JSON. ``Last-Event-ID`` (sent by ``EventSource`` when it reconnects) or
  ``?after=`` resumes after that position, with nothing missed or repeated. A comment
  line every ``AURA_EVENTS_HEARTBEAT`` seconds keeps proxies from closing an idle
  stream.
- a **page** (``application/json``) when ``Accept`` names ``application/json`` (and not
  the stream), or the query has ``after`` or ``limit``: ``{events: [...], next}``.

Filters, for both: ``room`` (repeatable: room names may hold commas) and ``type``
(repeatable or comma-separated; a name ending in ``.`` is a prefix).

Who may read: events carry identities, so never anyone by default. A caller with
one of the service's API keys; with ``AURA_AUTH=jwt``, a person whose token holds
``AURA_EVENTS_CLAIM`` (``roles:events,admin``); with no credentials configured at all,
nobody (403) unless ``--dev``.
"""

from __future__ import annotations

import asyncio
import re
from datetime import datetime, timezone
from typing import Any

import orjson
from pydantic import BaseModel, Field
from sanic import HTTPResponse, Request, json
from sanic.exceptions import RequestCancelled
from sanic_ext import openapi
from sanic_ext.extensions.openapi.types import Schema

from ..plugin import (
    MAX_ROOM_ID,
    ApiError,
    ClaimRule,
    EventLogUnavailable,
    EventStream,
    LoggedEvent,
    Plugin,
    PluginContext,
    caller_of,
    error_responses,
    iso_ms,
    json_content,
    path_text,
)

#: Entries one JSON page holds at most (and by default).
MAX_PAGE, DEFAULT_PAGE = 1000, 100
#: Filters one request may give, of each kind.
MAX_FILTERS = 50
#: The largest position a request may name (``after``, ``Last-Event-ID``).
MAX_POSITION = 2**63 - 1
#: Entries sent in one write of the stream, when many are ready at once.
SEND_BATCH = 100
#: Seconds the log may take to answer before a request is answered 503.
LOG_TIMEOUT = 5.0
#: Seconds a stream waits before catching up again after the log could not be read.
RETRY_SECONDS = 1.0
#: What EventSource is told to wait before reconnecting, in milliseconds.
RECONNECT_MS = 2000

_PARAMETERS = frozenset({"after", "limit", "room", "type"})
# An exact name has three parts, <source>.<thing>.<happened>; a prefix one or two, and
# ends with the dot.
_NAME = re.compile(r"[a-z0-9_]{1,64}(?:\.[a-z0-9_]{1,64}){2}")
_PREFIX = re.compile(r"[a-z0-9_]{1,64}\.(?:[a-z0-9_]{1,64}\.)?")


class EventEntry(BaseModel):
    """One entry of the event log."""

    position: int = Field(description="Where it sits in the log; resume after it")
    id: str = Field(description="Unique in the log: LiveKit's event id, or the service's own")
    name: str = Field(examples=["livekit.participant.joined"])
    room: str | None = Field(description="The room's name, when the event is about one")
    at: str = Field(description="When it happened, UTC", examples=["2025-12-30T16:22:11.000Z"])
    data: dict[str, Any] = Field(description="The event's payload (see the event catalogue)")


class EventPageReply(BaseModel):
    """One page of the event log."""

    events: list[EventEntry]
    next: int = Field(description="Pass as `after` for the next page")


def entry_json(entry: LoggedEvent) -> dict[str, Any]:
    """``entry`` as the API answers it."""
    return {
        "position": entry.position,
        "id": entry.id,
        "name": entry.name,
        "room": entry.room,
        "at": iso_ms(datetime.fromtimestamp(entry.at, tz=timezone.utc)),
        "data": entry.data,
    }


def sse_frame(entry: LoggedEvent) -> bytes:
    """``entry`` as one Server-Sent Event (its JSON has no newline: one ``data`` line)."""
    return b"id: %d\nevent: %s\ndata: %s\n\n" % (
        entry.position,
        entry.name.encode(),
        orjson.dumps(entry_json(entry)),
    )


def _position(name: str, value: str) -> int:
    # isascii: str.isdigit() also says yes to "²", which int() refuses. The bound is
    # SQLite's (a signed 64-bit integer): a larger number is no position of any log.
    if not (value.isascii() and value.isdigit() and len(value) <= 19) or (
        int(value) > MAX_POSITION
    ):
        raise ApiError(
            400, f"{name}: must be a whole number, 0 or more (a position), at most {MAX_POSITION}"
        )
    return int(value)


def _names(values: list[str]) -> list[str]:
    names = [part.strip() for value in values for part in value.split(",")]
    for name in names:
        if not (_NAME.fullmatch(name) or _PREFIX.fullmatch(name)):
            raise ApiError(
                400,
                "type: must be an event name such as livekit.participant.joined, "
                "or a prefix ending in '.' such as livekit.participant.",
            )
    if len(names) > MAX_FILTERS:
        raise ApiError(400, f"type: at most {MAX_FILTERS} names")
    return names


def _rooms(values: list[str]) -> list[str]:
    if len(values) > MAX_FILTERS:
        raise ApiError(400, f"room: at most {MAX_FILTERS} rooms")
    return [path_text("room", value) for value in values]


class Query:
    """What a request to ``GET /events`` asks for, checked (a 400 naming the problem)."""

    def __init__(self, request: Request) -> None:
        """Read the query and headers of ``request``."""
        # Blank values kept: Sanic drops them, and "after=" would silently mean "now".
        args = request.get_args(keep_blank_values=True)
        for name in args:
            if name not in _PARAMETERS:
                raise ApiError(400, f"{name}: unknown parameter; use after, limit, room or type")
        for name in ("after", "limit"):
            if len(args.getlist(name, [])) > 1:
                raise ApiError(400, f"{name}: give it once")
        raw_after, raw_limit = args.get("after"), args.get("limit")
        self.after = None if raw_after is None else _position("after", raw_after)
        self.limit = DEFAULT_PAGE
        if raw_limit is not None:
            if not (raw_limit.isascii() and raw_limit.isdigit() and len(raw_limit) <= 4):
                raise ApiError(400, f"limit: must be a whole number from 1 to {MAX_PAGE}")
            self.limit = int(raw_limit)
            if not 1 <= self.limit <= MAX_PAGE:
                raise ApiError(400, f"limit: must be a whole number from 1 to {MAX_PAGE}")
        self.rooms = _rooms(args.getlist("room", []))
        self.names = _names(args.getlist("type", []))
        accept = request.headers.get("accept", "").lower()
        asks_stream = "text/event-stream" in accept
        self.stream = asks_stream or (
            "application/json" not in accept and raw_after is None and raw_limit is None
        )
        if self.stream and raw_limit is not None:
            raise ApiError(400, "limit: only for a JSON page (Accept: application/json)")
        last_id = request.headers.get("last-event-id")
        # EventSource resends the id it saw last: newer than the URL's ?after.
        if self.stream and last_id is not None and last_id.strip():
            self.after = _position("Last-Event-ID", last_id.strip())


def setup(ctx: PluginContext) -> None:
    """Add ``GET /events``."""
    settings = ctx.settings
    events = ctx.events
    metrics = ctx.metrics
    claim = ClaimRule.parse(settings.events_claim) if settings.events_claim else None
    heartbeat = settings.events_heartbeat
    send_timeout = settings.events_send_timeout

    def admit(request: Request) -> None:
        """Let the caller read events, or refuse (the access check already ran)."""
        caller = caller_of(request)
        if caller.trusted:
            return
        if caller.verified:
            if claim is not None and claim.holds(caller.claims):
                return
            raise ApiError(
                403,
                f"reading events needs the claim {claim} in your token"
                if claim is not None
                else "reading events needs an API key",
            )
        if settings.dev:
            return
        raise ApiError(
            403,
            "events carry identities: set AURA_API_KEYS or AURA_AUTH=jwt to read them "
            "(or run with --dev)",
        )

    async def bounded(call: Any) -> Any:
        """``call`` awaited, or a 503 when the log is down or slow."""
        try:
            return await asyncio.wait_for(call, LOG_TIMEOUT)
        except EventLogUnavailable as exc:
            raise ApiError(503, f"Event log unavailable: {exc}") from None
        except asyncio.TimeoutError:
            raise ApiError(
                503, f"Event log unavailable: no answer within {LOG_TIMEOUT:g} s"
            ) from None

    @ctx.blueprint.get("/events")
    @openapi.definition(
        summary="The event log: live (Server-Sent Events) or a page (JSON)",
        description=(
            "LiveKit's events and the service's own, from every worker and replica, in one "
            "order. **Stream** (`Accept: text/event-stream`, or no `after`/`limit` and no "
            "JSON asked for): each entry as it is logged, `id:` its position, `event:` its "
            "name, `data:` the entry as JSON; resume with `Last-Event-ID` or `after`; a "
            f"comment line every {heartbeat:g} s (`AURA_EVENTS_HEARTBEAT`) when idle. "
            "**Page** (`Accept: application/json`, or `after`/`limit` given): up to `limit` "
            "entries past `after`, and `next` to read on. Needs an API key or, with JWTs, "
            "the claim `AURA_EVENTS_CLAIM`."
        ),
        tag="events",
        parameter=[
            openapi.definitions.Parameter(
                "after",
                Schema(type="integer", minimum=0, maximum=MAX_POSITION),
                location="query",
                description="Entries past this position (page: default 0; stream: "
                "default now, and Last-Event-ID wins over it)",
            ),
            openapi.definitions.Parameter(
                "limit",
                Schema(type="integer", minimum=1, maximum=MAX_PAGE),
                location="query",
                description=f"Page only: entries per page, 1 to {MAX_PAGE} (default "
                f"{DEFAULT_PAGE})",
            ),
            openapi.definitions.Parameter(
                "room",
                Schema(type="array", items=Schema(type="string", maxLength=MAX_ROOM_ID)),
                location="query",
                description="Only events about this room; repeat for several",
            ),
            openapi.definitions.Parameter(
                "type",
                Schema(type="array", items=Schema(type="string")),
                location="query",
                description="Only events of this name, or prefix ending in '.' "
                "(livekit.participant.); repeat or separate with commas",
            ),
            openapi.definitions.Parameter(
                "Last-Event-ID",
                Schema(type="string"),
                location="header",
                description="Stream only: resume after this position (EventSource sends it)",
            ),
        ],
        response=[
            openapi.definitions.Response(
                {
                    "text/event-stream": {
                        # The shape of each event of the stream, as OpenAPI 3.2's
                        # itemSchema puts it and as schemathesis checks every event
                        # it reads: an SSE field's value is text on the wire.
                        "schema": {
                            "type": "object",
                            "description": "Each event of the stream (Server-Sent Events); "
                            "heartbeats are comment lines (`: heartbeat`)",
                            "properties": {
                                "id": {"type": "string", "description": "Its position"},
                                "event": {"type": "string", "description": "Its name"},
                                "data": {
                                    "type": "string",
                                    "description": "The entry as JSON: position, id, "
                                    "name, room, at, data",
                                },
                            },
                            "required": ["id", "event", "data"],
                        },
                        "example": 'id: 42\nevent: livekit.participant.joined\ndata: {"position"'
                        ':42,"id":"EV_x","name":"livekit.participant.joined","room":"room-a",'
                        '"at":"2025-12-30T16:22:11.000Z","data":{}}\n\n',
                    },
                    **json_content(EventPageReply),
                },
                status=200,
                description="A stream of events, or one page",
            ),
            *error_responses(400, 403, 503),
        ],
    )
    async def read_events(request: Request) -> HTTPResponse | None:
        admit(request)
        query = Query(request)
        if not query.stream:
            page = await bounded(
                events.read(
                    after=query.after or 0,
                    limit=query.limit,
                    rooms=query.rooms,
                    names=query.names,
                )
            )
            return json({"events": [entry_json(entry) for entry in page.events], "next": page.next})
        # The log answers before the stream starts, or the client hears 503 now.
        await bounded(events.last_position())
        stream = events.follow(after=query.after, rooms=query.rooms, names=query.names)
        response = await request.respond(
            content_type="text/event-stream; charset=utf-8",
            headers={
                "cache-control": "no-cache",
                # nginx buffers answers unless told not to: a stream would arrive in lumps.
                "x-accel-buffering": "no",
            },
        )
        if metrics is not None:
            metrics.sse_client(1)
        try:
            await _pump(stream, response, request, heartbeat, send_timeout)
        finally:
            await stream.aclose()
            if metrics is not None:
                metrics.sse_client(-1)
        return None


async def _pump(
    stream: EventStream,
    response: HTTPResponse,
    request: Request,
    heartbeat: float,
    send_timeout: float,
) -> None:
    """Send ``stream``'s entries (or a heartbeat when none come) until the worker stops,
    the client goes away, or it stops reading for ``send_timeout`` seconds."""

    async def send(data: bytes) -> bool:
        try:
            await asyncio.wait_for(response.send(data), send_timeout)
        except asyncio.TimeoutError:
            # It stopped reading: drop the connection (what it had not read with it).
            transport: Any = request.transport  # asyncio's, which Sanic types narrowly
            transport.abort()
            return False
        except (RequestCancelled, ConnectionError):
            return False
        return True

    if not await send(b"retry: %d\n: connected\n\n" % RECONNECT_MS):
        return
    while True:
        try:
            entry = await stream.next(timeout=heartbeat)
        except StopAsyncIteration:
            break  # the worker stops: end the answer so the connection can close
        except EventLogUnavailable:
            # Catching up needs the log; the client keeps its place, and waits.
            if not await send(b": event log unavailable, retrying\n\n"):
                return
            await asyncio.sleep(RETRY_SECONDS)
            continue
        frames = []
        while entry is not None:
            frames.append(sse_frame(entry))
            if len(frames) >= SEND_BATCH:
                break
            try:
                entry = await stream.next(timeout=0)
            except (StopAsyncIteration, EventLogUnavailable):
                break  # send what is here; the next turn meets it again
        if not await send(b"".join(frames) if frames else b": heartbeat\n\n"):
            return
    await response.eof()  # type: ignore[no-untyped-call]  # Sanic's is untyped


plugin = Plugin(
    setup=setup,
    description="The event log at /events: live as Server-Sent Events, or a JSON page.",
)
