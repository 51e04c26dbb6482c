"""The console's pages and the live fragments they refresh, as HTML.

Everything is built with :func:`~.markup.html`, which escapes every value. Elements a
test or a script looks for carry stable ids and ``data-`` attributes (listed in the
plugin's README): change them only with the browser tests.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol
from urllib.parse import urlencode

from aura_livekit_backend.plugin import Participant, RoomInfo

from .markup import Html, ago, duration, html, join, path, when

__all__ = [
    "Assets",
    "EndedRoom",
    "LoggedEvent",
    "RoomsView",
    "confirm_page",
    "error_page",
    "event_items",
    "events_page",
    "history_page",
    "layout",
    "room_live",
    "room_page",
    "rooms_fragment",
    "rooms_page",
    "sign_in_page",
]

#: Notices an action leaves for the page it lands on (``?done=…``): fixed texts, so a
#: link cannot make the console say anything else.
NOTICES = {
    "closed": "The room was closed.",
    "topic": "The topic was changed.",
    "removed": "The participant was removed.",
    "muted": "The track was muted.",
    "signed-out": "You are signed out.",
}


class Assets(Protocol):
    """Where the pages find their stylesheet and script (hashed names)."""

    def url(self, name: str) -> str:
        """The URL of asset ``name`` (``console.css``, ``console.js``, ``favicon.svg``)."""
        ...


class LoggedEvent(Protocol):
    """One entry of the event log, as ``ctx.events`` hands it out."""

    @property
    def position(self) -> int:
        """Where it sits in the log."""
        ...

    @property
    def name(self) -> str:
        """``<source>.<thing>.<happened>``."""
        ...

    @property
    def room(self) -> str | None:
        """The room's name, if it is about one."""
        ...

    @property
    def at(self) -> float:
        """Unix seconds."""
        ...

    @property
    def data(self) -> Mapping[str, Any]:
        """The payload."""
        ...


@dataclass(frozen=True, slots=True)
class EndedRoom:
    """A room that ended, as the event log tells it."""

    name: str
    topic: str
    started: float | None
    ended: float
    peak: int
    #: The event that told of its end.
    how: str


def layout(
    *,
    title: str,
    page: str,
    body: Html,
    assets: Assets,
    who: str | None = None,
    csrf: str | None = None,
    live: str | None = None,
) -> Html:
    """A whole page: ``body`` inside the console's frame. ``who`` and ``csrf`` for a
    signed-in operator (the navigation and the sign-out form); ``live`` the URL the
    page's script refreshes it from."""
    nav = Html("")
    if who is not None and csrf is not None:
        links = join(
            html(
                '<a id="nav-{key}" href="{href}"{current}>{label}</a>',
                key=key,
                href=href,
                label=label,
                current=Html(' aria-current="page"' if key == page else ""),
            )
            for key, href, label in (
                ("rooms", "/console", "Rooms"),
                ("events", "/console/events", "Events"),
                ("history", "/console/history", "History"),
            )
        )
        nav = html(
            '<header class="top"><nav aria-label="Console">{links}</nav>'
            '<form id="sign-out" class="sign-out" method="post" action="/console/sign-out">'
            '<input type="hidden" name="csrf" value="{csrf}">'
            '<span id="operator" data-operator="{who}">{who}</span> '
            '<button type="submit" id="sign-out-button">Sign out</button></form></header>',
            links=links,
            csrf=csrf,
            who=who,
        )
    return html(
        "<!DOCTYPE html>\n"
        '<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        '<meta name="referrer" content="no-referrer">\n'
        "{csrf_meta}"
        "<title>{title} · LiveKit console</title>\n"
        '<link rel="stylesheet" href="{css}">\n'
        # Named, or a browser asks for /favicon.ico on every page (and logs its 404).
        '<link rel="icon" href="{icon}" type="image/svg+xml">\n'
        '<script src="{js}" defer></script>\n'
        "</head>\n"
        '<body data-page="{page}"{live}>\n'
        '<a class="skip" href="#main">Skip to content</a>\n'
        "{nav}\n"
        '<main id="main" tabindex="-1">\n{body}\n</main>\n'
        "</body>\n</html>\n",
        csrf_meta=html('<meta name="csrf-token" content="{csrf}">\n', csrf=csrf)
        if csrf
        else Html(""),
        title=title,
        css=assets.url("console.css"),
        icon=assets.url("favicon.svg"),
        js=assets.url("console.js"),
        page=page,
        live=html(' data-live="{url}"', url=live) if live else Html(""),
        nav=nav,
        body=body,
    )


def _notice(done: str | None, *, element_id: str = "notice") -> Html:
    text = NOTICES.get(done or "", "")
    return html(
        '<p id="{id}" class="notice" role="status" data-notice="{key}">{text}</p>',
        id=element_id,
        key=done if text else "",
        text=text,
    )


def sign_in_page(
    assets: Assets, *, message: str = "", keys: bool = True, jwt: bool = False
) -> Html:
    """The sign-in page: a console (or moderation) key when ``keys``, an identity
    provider's token when ``jwt``; neither: the console is closed."""
    if not keys and not jwt:
        form = Html(
            '<p id="console-closed" role="alert">The console is closed: set '
            "<code>AURA_CONSOLE_KEYS</code> (or <code>AURA_MODERATION_API_KEYS</code>), "
            "or sign in through the identity provider with <code>AURA_AUTH=jwt</code>.</p>"
        )
    else:
        key_form = Html(
            '<form id="sign-in-form" class="card" method="post" action="/console/sign-in">'
            '<label for="key">Console key</label>'
            '<input id="key" name="key" type="password" autocomplete="current-password" '
            'required autofocus spellcheck="false">'
            '<button id="sign-in-button" type="submit">Sign in</button></form>'
        )
        token_form = html(
            '<form id="token-form" class="card" method="post" '
            'action="/console/sign-in/token" data-token-sign-in>'
            '<label for="token">{label}</label>'
            '<input id="token" name="token" type="password" autocomplete="off" '
            'required spellcheck="false">'
            '<button id="token-button" type="submit">Sign in with token</button></form>',
            label="Or a token from your identity provider"
            if keys
            else "A token from your identity provider",
        )
        form = join(((key_form,) if keys else ()) + ((token_form,) if jwt else ()))
    body = html(
        '<h1>Sign in</h1>\n<p id="sign-in-error" class="error" role="alert"'
        "{hidden}>{message}</p>\n{form}",
        hidden=Html("" if message else " hidden"),
        message=message,
        form=form,
    )
    return layout(title="Sign in", page="sign-in", body=body, assets=assets)


def _limit(room: RoomInfo) -> str:
    return str(room.max_participants) if room.max_participants else "none"


def room_row(room: RoomInfo, now: float) -> Html:
    """One row of the rooms table."""
    return html(
        '<tr data-room="{name}" data-sid="{sid}" data-participants="{count}">'
        '<td class="topic"><a class="room-link" href="{href}">{topic}</a></td>'
        '<td class="name"><code>{name}</code></td>'
        '<td class="count">{count}</td>'
        '<td class="age">{age}</td>'
        '<td class="limit">{limit}</td></tr>',
        name=room.name,
        sid=room.sid,
        href=path("room", room.name),
        topic=room.topic or room.name,
        count=room.num_participants,
        age=ago(room.created_at, now),
        limit=_limit(room),
    )


@dataclass(frozen=True, slots=True)
class RoomsView:
    """One page of the rooms list, ready to render."""

    rooms: Sequence[RoomInfo]
    #: Rooms active (matching the search, when there is one).
    matching: int
    #: Rooms active in all.
    total: int
    query: str
    #: The cursor of the page before, and of the page after (None: none).
    before: str | None
    after: str | None
    now: float


def _pager(view: RoomsView) -> Html:
    """First, previous and next page links (a cursor of ``""``: the first page)."""

    def href(cursor: str) -> str:
        query = {"q": view.query} if view.query else {}
        if cursor:
            query["after"] = cursor
        return "/console" + ("?" + urlencode(query) if query else "")

    def link(element_id: str, label: str, cursor: str | None, rel: str = "") -> Html:
        if cursor is None:
            return html(
                '<span class="pager-off" id="{id}" aria-disabled="true">{label}</span>',
                id=element_id,
                label=label,
            )
        return html(
            '<a id="{id}"{rel} href="{href}">{label}</a>',
            id=element_id,
            rel=html(' rel="{rel}"', rel=rel) if rel else Html(""),
            href=href(cursor),
            label=label,
        )

    first = "" if view.before is not None else None
    return join(
        (
            link("page-first", "First page", first),
            link("page-previous", "Previous", view.before, "prev"),
            link("page-next", "Next", view.after, "next"),
        ),
        " ",
    )


def _summary(view: RoomsView) -> str:
    if view.query:
        return f"{view.matching} of {view.total} rooms match “{view.query}”"
    return f"{view.total} room" + ("" if view.total == 1 else "s")


def rooms_fragment(view: RoomsView) -> dict[str, Any]:
    """What the rooms page's script swaps in every second: rows, summary, pager."""
    return {
        "rows": join(room_row(room, view.now) for room in view.rooms)
        or Html('<tr class="empty"><td colspan="5">No rooms.</td></tr>'),
        "summary": _summary(view),
        "pager": _pager(view),
        "total": view.total,
        "matching": view.matching,
    }


def rooms_page(
    view: RoomsView, *, assets: Assets, who: str, csrf: str, live: str, done: str | None
) -> Html:
    """The rooms list."""
    fragment = rooms_fragment(view)
    body = html(
        "<h1>Rooms</h1>\n{notice}\n"
        '<form id="room-search" role="search" method="get" action="/console">'
        '<label for="q">Search rooms</label>'
        '<input id="q" name="q" type="search" value="{query}" maxlength="200" '
        'placeholder="topic, name or sid">'
        '<button type="submit" id="search-button">Search</button></form>\n'
        '<p id="rooms-summary" aria-live="polite">{summary}</p>\n'
        '<div class="scroll"><table id="rooms-table"><caption class="sr-only">Active rooms'
        "</caption><thead><tr>"
        '<th scope="col">Topic</th><th scope="col">Room</th>'
        '<th scope="col">Participants</th><th scope="col">Age</th>'
        '<th scope="col">Limit</th></tr></thead>\n'
        '<tbody id="rooms-body">{rows}</tbody></table></div>\n'
        '<nav id="rooms-pager" class="pager" aria-label="Pages">{pager}</nav>',
        notice=_notice(done),
        query=view.query,
        summary=fragment["summary"],
        rows=fragment["rows"],
        pager=fragment["pager"],
    )
    return layout(
        title="Rooms", page="rooms", body=body, assets=assets, who=who, csrf=csrf, live=live
    )


def _hidden(**fields: str) -> Html:
    return join(
        html('<input type="hidden" name="{name}" value="{value}">', name=name, value=value)
        for name, value in fields.items()
    )


def participant_rows(room: RoomInfo, people: Sequence[Participant], csrf: str) -> Html:
    """The participants table's rows, each with its tracks and actions."""
    if not people:
        return Html('<tr class="empty"><td colspan="6">Nobody is in the room.</td></tr>')
    rows = []
    for person in people:
        tracks = join(
            html(
                '<li data-track="{sid}" data-kind="{kind}" data-source="{source}" '
                'data-muted="{muted}"><span class="track">{source} ({kind}){label}</span>'
                "{state}{form}</li>",
                sid=track.sid,
                kind=track.kind,
                source=track.source.replace("_", " "),
                muted="true" if track.muted else "false",
                label=html(" “{name}”", name=track.name) if track.name else Html(""),
                state=Html(' <span class="muted">muted</span>') if track.muted else Html(""),
                form=Html("")
                if track.muted
                else html(
                    '<form class="inline" method="post" action="{action}">{hidden}'
                    '<button type="submit" class="mute-track" '
                    'aria-label="Mute {source} of {identity}">Mute</button></form>',
                    action=path("room", room.name, "mute"),
                    hidden=_hidden(csrf=csrf, identity=person.identity, track=track.sid),
                    source=track.source.replace("_", " "),
                    identity=person.identity,
                ),
            )
            for track in person.tracks
        )
        rows.append(
            html(
                '<tr data-identity="{identity}" data-state="{state}">'
                '<td class="identity"><code>{identity}</code></td>'
                '<td class="name">{name}</td>'
                '<td class="joined">{joined}</td>'
                '<td class="state">{state}</td>'
                '<td class="tracks"><ul class="tracks">{tracks}</ul></td>'
                '<td class="actions"><form class="inline" method="post" action="{action}">'
                '{hidden}<button type="submit" class="remove-participant" '
                'aria-label="Remove {identity}">Remove</button></form></td></tr>',
                identity=person.identity,
                name=person.name,
                joined=when(person.joined_at),
                state=person.state,
                tracks=tracks or Html('<li class="none">none</li>'),
                action=path("room", room.name, "remove"),
                hidden=_hidden(csrf=csrf, identity=person.identity),
            )
        )
    return join(rows, "\n")


def _facts(room: RoomInfo, count: int, now: float) -> Html:
    return html(
        '<dl id="room-facts" class="facts" data-room="{name}" data-participants="{count}">'
        "<dt>Room</dt><dd><code>{name}</code></dd>"
        "<dt>Sid</dt><dd><code>{sid}</code></dd>"
        '<dt>Participants</dt><dd id="room-count">{count} (limit {limit})</dd>'
        "<dt>Created</dt><dd>{created} ({age} ago)</dd>"
        "<dt>Created by</dt><dd>{created_by}</dd>"
        "<dt>Description</dt><dd>{description}</dd>"
        '<dt>Metadata</dt><dd><pre id="room-metadata">{metadata}</pre></dd>'
        "</dl>",
        name=room.name,
        sid=room.sid,
        count=count,
        limit=_limit(room),
        created=when(room.created_at),
        age=ago(room.created_at, now),
        created_by=room.created_by or "—",
        description=room.description or "—",
        metadata=room.metadata or "—",
    )


def _agents(room: RoomInfo, dispatches: Iterable[Any]) -> Html:
    items = [
        html(
            '<li data-dispatch="{id}" data-agent="{agent}"><code>{agent}</code> '
            '<span class="dispatch-id">{id}</span>{meta}</li>',
            id=made.id,
            agent=made.agent_name,
            meta=html(' <span class="meta">{m}</span>', m=made.metadata)
            if made.metadata
            else Html(""),
        )
        for made in dispatches
    ]
    if not items:
        return Html('<li class="none">No agents dispatched.</li>')
    return join(items)


def event_items(events: Iterable[LoggedEvent], *, link_rooms: bool = True) -> Html:
    """Events as list items, newest first (the order given)."""
    items = []
    for event in events:
        room = (
            html(
                ' <a class="event-room" href="{href}">{room}</a>',
                href=path("room", event.room),
                room=event.room,
            )
            if event.room and link_rooms
            else html(' <span class="event-room">{room}</span>', room=event.room or "")
        )
        items.append(
            html(
                '<li class="event" data-position="{position}" data-event="{name}">'
                '{at} <span class="event-name">{name}</span>{room}'
                ' <span class="event-data">{data}</span></li>',
                position=event.position,
                at=when(event.at),
                name=event.name,
                room=room,
                data=summarize(event.data),
            )
        )
    return join(items, "\n")


def summarize(data: Mapping[str, Any]) -> str:
    """An event's payload in one short line of text (as text: the page escapes it),
    compact as the feed's script writes the entries it adds live."""
    text = json.dumps(data, ensure_ascii=False, separators=(",", ":"), default=str)
    return text if len(text) <= 300 else text[:299] + "…"


def room_live(
    room: RoomInfo,
    people: Sequence[Participant],
    dispatches: Iterable[Any],
    events: Sequence[LoggedEvent] | None,
    *,
    csrf: str,
    now: float,
) -> dict[str, Any]:
    """The parts of the room page its script refreshes every second."""
    return {
        "facts": _facts(room, len(people), now),
        "topic": room.topic or room.name,
        "participants": participant_rows(room, people, csrf),
        "count": len(people),
        "agents": _agents(room, dispatches),
        "events": (
            event_items(events, link_rooms=False) or Html('<li class="none">No events yet.</li>')
        )
        if events is not None
        else Html('<li class="none">The event log is not available.</li>'),
    }


def room_page(
    room: RoomInfo,
    live: dict[str, Any],
    *,
    assets: Assets,
    who: str,
    csrf: str,
    live_url: str,
    done: str | None,
    error: str = "",
) -> Html:
    """One room: facts, participants and their tracks, agents, recent events, actions."""
    body = html(
        '<p class="crumbs"><a href="/console" id="back-to-rooms">All rooms</a></p>\n'
        '<h1 id="room-topic" data-room="{name}">{topic}</h1>\n{notice}\n'
        '<p id="room-gone" class="notice" role="alert" hidden>This room has closed.</p>\n'
        '<p id="action-error" class="error" role="alert"{error_hidden}>{error}</p>\n'
        '<div id="room-facts-box">{facts}</div>\n'
        '<section aria-labelledby="participants-heading"><h2 id="participants-heading">'
        'Participants</h2><div class="scroll"><table id="participants-table"><thead><tr>'
        '<th scope="col">Identity</th><th scope="col">Name</th><th scope="col">Joined</th>'
        '<th scope="col">State</th><th scope="col">Tracks</th><th scope="col">Actions</th>'
        '</tr></thead><tbody id="participants-body">{participants}</tbody></table></div>'
        "</section>\n"
        '<section aria-labelledby="agents-heading"><h2 id="agents-heading">Agents</h2>'
        '<ul id="room-agents">{agents}</ul></section>\n'
        '<section aria-labelledby="room-events-heading"><h2 id="room-events-heading">'
        'Recent events</h2><ul id="room-events" class="events">{events}</ul></section>\n'
        '<section id="room-actions" aria-labelledby="actions-heading">'
        '<h2 id="actions-heading">Actions</h2>'
        '<form id="topic-form" class="card" method="post" action="{topic_action}">{csrf_field}'
        '<label for="topic-input">Topic</label>'
        '<input id="topic-input" name="topic" value="{topic}" required maxlength="200">'
        '<button type="submit" id="topic-button">Change topic</button></form>'
        '<form id="close-form" class="card" method="post" action="{close_action}">{csrf_field}'
        '<button type="submit" id="close-room" class="danger">Close room</button></form>'
        "</section>",
        name=room.name,
        topic=live["topic"],
        notice=_notice(done),
        error=error,
        error_hidden=Html("" if error else " hidden"),
        facts=live["facts"],
        participants=live["participants"],
        agents=live["agents"],
        events=live["events"],
        topic_action=path("room", room.name, "topic"),
        close_action=path("room", room.name, "close"),
        csrf_field=_hidden(csrf=csrf),
    )
    return layout(
        title=room.topic or room.name,
        page="room",
        body=body,
        assets=assets,
        who=who,
        csrf=csrf,
        live=live_url,
    )


def confirm_page(
    *,
    title: str,
    question: str,
    action: str,
    fields: Mapping[str, str],
    button: str,
    cancel: str,
    assets: Assets,
    who: str,
    csrf: str,
) -> Html:
    """Asks before an action: the same form again, confirmed."""
    body = html(
        '<h1 id="confirm-title">{title}</h1>\n<p id="confirm-question">{question}</p>\n'
        '<form id="confirm-form" method="post" action="{action}">{hidden}'
        '<button type="submit" id="confirm-yes" class="danger" autofocus>{button}</button> '
        '<a id="confirm-cancel" href="{cancel}">Cancel</a></form>',
        title=title,
        question=question,
        action=action,
        hidden=_hidden(**fields, csrf=csrf, confirmed="yes"),
        button=button,
        cancel=cancel,
    )
    return layout(title=title, page="confirm", body=body, assets=assets, who=who, csrf=csrf)


def error_page(
    status: int, message: str, *, assets: Assets, who: str | None, csrf: str | None, back: str
) -> Html:
    """An action that failed: what went wrong, and the way back."""
    body = html(
        '<h1>Something went wrong</h1>\n<p id="error-message" class="error" role="alert" '
        'data-status="{status}">{message}</p>\n<p><a id="error-back" href="{back}">Back</a></p>',
        status=status,
        message=message,
        back=back,
    )
    return layout(title="Error", page="error", body=body, assets=assets, who=who, csrf=csrf)


def events_page(
    events: Sequence[LoggedEvent] | None,
    *,
    last: int,
    assets: Assets,
    who: str,
    csrf: str,
) -> Html:
    """The live event feed: the newest events, then each new one as it comes."""
    if events is None:
        feed = Html('<li class="none">The event log is not available.</li>')
    else:
        feed = event_items(events)
    body = html(
        "<h1>Events</h1>\n"
        '<p id="feed-status" role="status" data-state="connecting">Connecting…</p>\n'
        '<ol id="event-feed" class="events" reversed data-stream="/console/events/stream" '
        'data-after="{last}" aria-live="polite" aria-relevant="additions">{feed}</ol>',
        last=last,
        feed=feed,
    )
    return layout(title="Events", page="events", body=body, assets=assets, who=who, csrf=csrf)


def history_page(
    ended: Sequence[EndedRoom] | None,
    *,
    complete: bool = True,
    assets: Assets,
    who: str,
    csrf: str,
) -> Html:
    """Rooms that ended, newest first: when, how long, the most people at once."""
    if ended is None:
        rows = Html('<tr class="empty"><td colspan="6">The event log is not available.</td></tr>')
    elif not ended:
        rows = Html('<tr class="empty"><td colspan="6">No room has ended yet.</td></tr>')
    else:
        rows = join(
            html(
                '<tr data-room="{name}" data-peak="{peak}" data-ended-by="{how}">'
                '<td class="topic">{topic}</td><td class="name"><code>{name}</code></td>'
                '<td class="started">{started}</td><td class="ended">{ended}</td>'
                '<td class="duration">{length}</td><td class="peak">{peak}</td></tr>',
                name=room.name,
                topic=room.topic,
                started=when(room.started) if room.started is not None else "—",
                ended=when(room.ended),
                length=duration(room.ended - room.started) if room.started is not None else "—",
                peak=room.peak,
                how=room.how,
            )
            for room in ended
        )
    body = html(
        "<h1>History</h1>\n<p>Rooms that ended, newest first, as the event log tells it.</p>\n"
        '<p id="history-partial" class="notice" role="status"{partial}>Still reading the '
        "event log: reload for older rooms.</p>\n"
        '<div class="scroll"><table id="history-table"><thead><tr>'
        '<th scope="col">Topic</th><th scope="col">Room</th><th scope="col">Started</th>'
        '<th scope="col">Ended</th><th scope="col">Lasted</th>'
        '<th scope="col">Peak participants</th></tr></thead>'
        '<tbody id="history-body">{rows}</tbody></table></div>',
        rows=rows,
        partial=Html("" if not complete else " hidden"),
    )
    return layout(title="History", page="history", body=body, assets=assets, who=who, csrf=csrf)
