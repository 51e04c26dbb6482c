"""The console, tested server-side with nothing but aura-livekit-backend's pytest kit.

One served app and emulator for the module (the kit's module-scoped fixtures): tests
work in rooms of their own. The kit's client keeps one cookie jar for the whole module,
so every test starts with it emptied and signs in when it needs to.
"""

from __future__ import annotations

import re
from html import escape
from html.parser import HTMLParser
from urllib.parse import quote

import pytest

KEY = "console-key-0123456789abcdefghijkl"
MODERATION_KEY = "moderation-key-0123456789abcdefghij"
HOSTILE = [
    "<img src=x onerror=alert(1)>",
    "</script><script>alert(2)</script>",
    "javascript:alert(3)",
    '"><svg onload=alert(4)>',
]


@pytest.fixture(scope="module")
def client(module_aura_client):
    """The service with the installed plugins (console among them) and a console key."""
    with pytest.MonkeyPatch.context() as monkeypatch:
        monkeypatch.setenv("AURA_CONSOLE_KEYS", f"other-console-key-0123456789, {KEY}")
        monkeypatch.setenv("AURA_MODERATION_API_KEYS", MODERATION_KEY)
        return module_aura_client(room_list_cache_seconds=0)


@pytest.fixture(scope="module")
def livekit(module_livekit_emulator):
    return module_livekit_emulator


@pytest.fixture(autouse=True)
def no_cookies(client):
    # The kit's client is one httpx session (one cookie jar) for the module.
    client._client._session.cookies.clear()


def sign_in(client, key: str = KEY):
    response = client.post("/console/sign-in", data={"key": key})
    assert response.status_code == 303, response.text
    return response


def csrf_of(page: str) -> str:
    found = re.search(r'<meta name="csrf-token" content="([^"]+)">', page)
    assert found, "the page carries no CSRF token"
    return found.group(1)


def make_room(client, **body) -> str:
    response = client.post("/api/room/create", json={"userName": "host", **body})
    assert response.status_code == 200, response.text
    return str(response.json["roomId"])


class Elements(HTMLParser):
    """Every start tag with its attributes, every script and inline handler found."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))


def elements(page: str) -> list[tuple[str, dict[str, str | None]]]:
    parser = Elements()
    parser.feed(page)
    return parser.tags


# -- sign-in -------------------------------------------------------------------


@pytest.mark.parametrize(
    "path", ["/console", "/console/room/x", "/console/events", "/console/history"]
)
def test_pages_without_a_session_go_to_sign_in_and_show_nothing(client, path) -> None:
    make_room(client, roomTopic="secret topic")
    response = client.get(path)
    assert response.status_code == 303
    assert response.headers["location"] == "/console/sign-in"
    assert "secret topic" not in response.text


@pytest.mark.parametrize("path", ["/console/rooms.json", "/console/room/x/live"])
def test_fragments_without_a_session_are_401_in_the_house_shape(client, path) -> None:
    response = client.get(path)
    assert response.status_code == 401
    assert response.json == {"statusCode": 401, "message": "sign in to the console first"}


@pytest.mark.parametrize("key", ["", "wrong-key-0123456789abcdef", KEY + "x", KEY[:-1]])
def test_a_wrong_or_missing_key_shows_sign_in_and_no_data(client, key) -> None:
    make_room(client, roomTopic="hidden from strangers")
    response = client.post("/console/sign-in", data={"key": key})
    assert response.status_code == 401
    assert 'id="sign-in-form"' in response.text
    assert "That key is not valid." in response.text
    assert "set-cookie" not in response.headers
    assert "hidden from strangers" not in response.text
    assert client.get("/console").status_code == 303


def test_sign_in_sets_a_strict_http_only_cookie_and_opens_the_pages(client) -> None:
    response = sign_in(client)
    cookie = response.headers["set-cookie"]
    assert cookie.startswith("aura_console=")
    for part in ("HttpOnly", "SameSite=Strict", "Path=/console", "Max-Age="):
        assert part.lower() in cookie.lower()
    assert "secure" not in cookie.lower()  # plain http here
    assert response.headers["location"] == "/console"
    page = client.get("/console")
    assert page.status_code == 200
    assert 'id="rooms-table"' in page.text
    assert page.headers["cache-control"] == "no-store"


def test_the_moderation_keys_open_the_console_too(client) -> None:
    sign_in(client, MODERATION_KEY)
    assert client.get("/console").status_code == 200


def test_sign_out_ends_the_session(client) -> None:
    sign_in(client)
    page = client.get("/console").text
    cookie = client._client._session.cookies.get("aura_console")
    response = client.post("/console/sign-out", data={"csrf": csrf_of(page)})
    assert response.status_code == 303
    assert response.headers["location"] == "/console/sign-in"
    assert 'aura_console=""' in response.headers["set-cookie"]
    assert client.get("/console").status_code == 303
    # The old cookie stays valid until it expires (it is stateless): sign-out drops it
    # from the browser; it was HttpOnly, so no script could have copied it.
    assert cookie


def test_a_forged_or_tampered_cookie_is_no_session(client) -> None:
    sign_in(client)
    jar = client._client._session.cookies
    real = jar.get("aura_console")
    payload, _, mac = real.rpartition(".")
    for forged in (
        payload + "." + "A" * len(mac),
        real.replace(".key.", ".jwt.", 1),
        "1.9999999999.key.0000000000000000.nonce." + mac,
        "garbage",
    ):
        jar.clear()
        jar.set("aura_console", forged, path="/console")
        assert client.get("/console").status_code == 303, forged


def test_a_session_expires(client) -> None:
    from aura_livekit_console.session import Sessions

    now = [1000.0]
    sessions = Sessions(secret=b"s", keys=[KEY], lifetime=60, clock=lambda: now[0])
    opened = sessions.open("key", sessions.match_key(KEY))
    assert sessions.check(opened.cookie) is not None
    now[0] += 61
    assert sessions.check(opened.cookie) is None
    # A key taken out of the settings ends its sessions.
    assert (
        Sessions(secret=b"s", keys=["another-key-0123456789"], lifetime=60).check(opened.cookie)
        is None
    )


def test_failed_sign_ins_are_throttled(aura_client, monkeypatch) -> None:
    monkeypatch.setenv("AURA_CONSOLE_KEYS", KEY)
    own = aura_client(rate_limit_auth_failures="3/minute")
    for _ in range(3):
        assert own.post("/console/sign-in", data={"key": "wrong"}).status_code == 401
    refused = own.post("/console/sign-in", data={"key": KEY})
    assert refused.status_code == 429
    assert int(refused.headers["retry-after"]) >= 1
    assert "Too many failed sign-ins" in refused.text
    assert "set-cookie" not in refused.headers


def test_without_keys_the_console_is_closed(aura_client, monkeypatch) -> None:
    monkeypatch.delenv("AURA_CONSOLE_KEYS", raising=False)
    monkeypatch.delenv("AURA_MODERATION_API_KEYS", raising=False)
    own = aura_client()
    page = own.get("/console/sign-in")
    assert 'id="console-closed"' in page.text
    assert 'id="sign-in-form"' not in page.text
    assert own.post("/console/sign-in", data={"key": KEY}).status_code == 401
    assert own.get("/console").status_code == 303


# -- CSRF ------------------------------------------------------------------------


@pytest.mark.parametrize("token", [None, "", "wrong", "ü"])
@pytest.mark.parametrize("action", ["close", "topic", "remove", "mute"])
def test_an_action_without_its_csrf_token_is_refused(client, livekit, action, token) -> None:
    room = make_room(client)
    livekit.add_participant(room, "ann", tracks=[{"kind": "audio"}])
    sign_in(client)
    data = {"topic": "new", "identity": "ann", "track": "TR_x", "confirmed": "yes"}
    if token is not None:
        data["csrf"] = token
    response = client.post(f"/console/room/{room}/{action}", data=data)
    assert response.status_code == 403
    assert response.json == {
        "statusCode": 403,
        "message": "the console's CSRF token is missing or wrong: reload the page",
    }
    assert room in livekit.room_names()
    assert client.run(client.app.ctx.livekit.rooms.participants(room))[1][0].identity == "ann"


def test_another_sessions_csrf_token_is_refused(client) -> None:
    room = make_room(client)
    sign_in(client)
    other = csrf_of(client.get("/console").text)
    client._client._session.cookies.clear()
    sign_in(client)
    response = client.post(f"/console/room/{room}/close", data={"csrf": other, "confirmed": "yes"})
    assert response.status_code == 403


# -- pages -----------------------------------------------------------------------


def test_rooms_page_lists_rooms_and_its_fragment_updates(client, livekit) -> None:
    room = make_room(client, roomTopic="Weekly sync", maxParticipants=7)
    livekit.add_participant(room, "ann")
    sign_in(client)
    page = client.get("/console", params={"q": "weekly sync"}).text
    row = re.search(rf'<tr data-room="{room}"[^>]*>.*?</tr>', page)
    assert row, page
    assert 'data-participants="1"' in row.group(0)
    assert "Weekly sync" in row.group(0) and ">7<" in row.group(0)
    assert f'href="/console/room/{room}"' in row.group(0)
    assert 'data-live="/console/rooms.json?q=weekly+sync"' in page
    livekit.add_participant(room, "bob")
    fragment = client.get("/console/rooms.json", params={"q": "weekly sync"}).json
    assert f'data-room="{room}" ' in fragment["rows"]
    assert 'data-participants="2"' in fragment["rows"]
    assert fragment["matching"] >= 1 and fragment["total"] >= fragment["matching"]


def test_search_matches_topic_name_and_sid(client) -> None:
    response = client.post("/api/room/create", json={"userName": "h", "roomTopic": "Zebra Ω"})
    room, sid = response.json["roomId"], response.json["sid"]
    sign_in(client)
    for query in ("zebra ω", room, sid):
        rows = client.get("/console/rooms.json", params={"q": query}).json["rows"]
        assert f'data-room="{room}"' in rows, query
    assert (
        "data-room" not in client.get("/console/rooms.json", params={"q": "no-such-x"}).json["rows"]
    )


def test_room_page_shows_participants_tracks_agents(client, livekit) -> None:
    response = client.post("/api/room/create", json={"userName": "h", "roomTopic": "Tracks"})
    room = response.json["roomId"]
    livekit.add_participant(
        room, "ann", "Ann A.", tracks=[{"kind": "audio", "source": "microphone"}]
    )
    sign_in(client)
    page = client.get(f"/console/room/{room}").text
    assert 'id="room-topic"' in page and ">Tracks<" in page
    assert '<tr data-identity="ann" data-state="active">' in page
    assert "Ann A." in page
    assert 'data-source="microphone" data-muted="false"' in page
    assert 'class="mute-track"' in page
    assert f'data-live="/console/room/{room}/live"' in page
    live = client.get(f"/console/room/{room}/live").json
    assert live["count"] == 1 and 'data-identity="ann"' in live["participants"]
    assert set(live) == {"facts", "topic", "participants", "count", "agents", "events"}


def test_a_closed_room_is_404(client) -> None:
    sign_in(client)
    assert client.get("/console/room/no-such-room/live").status_code == 404
    page = client.get("/console/room/no-such-room")
    assert page.status_code == 404
    assert 'id="error-message"' in page.text and "Room not found" in page.text


def test_paging_10000_rooms(aura_client, livekit_emulator, monkeypatch) -> None:
    monkeypatch.setenv("AURA_CONSOLE_KEYS", KEY)
    own = aura_client(room_list_cache_seconds=0)
    livekit_emulator.create_rooms(f"bulk-{i:05d}" for i in range(10_000))
    sign_in(own)
    first = own.get("/console").text
    assert "10000 rooms" in first
    assert len(re.findall(r"<tr data-room=", first)) == 50
    following = re.search(r'id="page-next" rel="next" href="([^"]+)"', first)
    assert following
    second = own.get(following.group(1).replace("&amp;", "&")).text
    firsts = re.findall(r'<tr data-room="([^"]+)"', first)
    seconds = re.findall(r'<tr data-room="([^"]+)"', second)
    assert len(seconds) == 50 and not set(firsts) & set(seconds)
    assert 'id="page-previous" rel="prev" href="/console"' in second
    searched = own.get("/console/rooms.json", params={"q": "bulk-0999"}).json
    assert searched["matching"] == 10  # bulk-09990 … bulk-09999


# -- bad input -------------------------------------------------------------------


@pytest.mark.parametrize("hostile", HOSTILE)
def test_markup_in_topics_names_and_metadata_is_text(client, livekit, hostile) -> None:
    response = client.post(
        "/api/room/create",
        json={"userName": "host", "roomTopic": hostile, "metadata": hostile,
              "description": hostile},
    )  # fmt: skip
    room = response.json["roomId"]
    livekit.add_participant(room, hostile[:60].replace("/", "-"), hostile)
    sign_in(client)
    for path in ("/console", f"/console/room/{room}"):
        page = client.get(path, params={"q": hostile} if path == "/console" else None).text
        # As text: escaped, there to read (a javascript: string has nothing to escape).
        assert escape(hostile) in page
        if escape(hostile) != hostile:
            assert hostile not in page
        tags = elements(page)
        assert all(tag not in ("img", "svg") for tag, _ in tags)
        for _, attrs in tags:
            assert not any(name.startswith("on") for name in attrs), attrs
            for name in ("href", "src", "action"):
                value = attrs.get(name)
                assert value in (None, "#main") or value.startswith("/console"), (name, value)
        assert page.count("<script") == 1
    live = client.get(f"/console/room/{room}/live").json
    for markup in live.values():
        if isinstance(markup, str) and markup != live["topic"] and escape(hostile) != hostile:
            assert hostile not in markup


# -- headers and assets ----------------------------------------------------------


@pytest.mark.parametrize("path", ["/console/sign-in", "/console", "/console/rooms.json"])
def test_every_answer_carries_the_security_headers(client, path) -> None:
    sign_in(client)
    response = client.get(path)
    policy = response.headers["content-security-policy"]
    assert "unsafe-inline" not in policy and "unsafe-eval" not in policy
    assert "script-src 'self'" in policy and "frame-ancestors 'none'" in policy
    assert "default-src 'none'" in policy
    assert response.headers["x-frame-options"] == "DENY"
    assert response.headers["referrer-policy"] == "no-referrer"
    assert response.headers["x-content-type-options"] == "nosniff"


def test_pages_hold_no_inline_script_or_style(client) -> None:
    sign_in(client)
    for path in ("/console/sign-in", "/console", "/console/events", "/console/history"):
        page = client.get(path, follow_redirects=True).text
        for tag, attrs in elements(page):
            assert "style" not in attrs, (path, tag)
            assert not any(name.startswith("on") for name in attrs), (path, tag, attrs)
            if tag == "script":
                assert attrs.get("src", "").startswith("/console/assets/console.")
        assert "<style" not in page
        assert not re.search(r"<script[^>]*>[^<]", page)


TYPES = {"css": "text/css", "js": "text/javascript", "svg": "image/svg+xml"}


def test_every_page_names_its_icon(client) -> None:
    """Without one, a browser asks for /favicon.ico on every page, and logs its 404."""
    sign_in(client)
    for path in ("/console/sign-in", "/console", "/console/events", "/console/history"):
        page = client.get(path, follow_redirects=True).text
        icons = [attrs for tag, attrs in elements(page) if tag == "link" and attrs["rel"] == "icon"]
        assert len(icons) == 1, path
        assert re.fullmatch(r"/console/assets/favicon\.[0-9a-f]{16}\.svg", icons[0]["href"] or "")
        assert icons[0]["type"] == "image/svg+xml"


def test_assets_are_served_with_hashed_names_and_cached(client) -> None:
    page = client.get("/console/sign-in").text
    urls = re.findall(r'(?:src|href)="(/console/assets/[^"]+)"', page)
    assert {url.rsplit(".", 1)[1] for url in urls} == {"css", "js", "svg"}
    for url in urls:
        response = client.get(url)
        assert response.status_code == 200
        assert response.headers["content-type"].startswith(TYPES[url.rsplit(".", 1)[1]])
        assert response.headers["cache-control"] == "public, max-age=31536000, immutable"
        version = url.rsplit(".", 2)[1]
        assert response.headers["etag"] == f'"{version}"'
        again = client.get(url, headers={"If-None-Match": response.headers["etag"]})
        assert again.status_code == 304 and again.content == b""
    assert client.get("/console/assets/console.js").status_code == 404
    assert client.get("/console/assets/..%2f__init__.py").status_code in (400, 404)


def test_the_console_is_not_in_the_openapi_document(client) -> None:
    document = client.get("/docs/openapi.json").json
    assert not [path for path in document["paths"] if path.startswith("/console")]


# -- actions ---------------------------------------------------------------------


def test_each_action_asks_first_then_acts(client, livekit) -> None:
    room = make_room(client, roomTopic="Before")
    livekit.add_participant(room, "ann", tracks=[{"kind": "audio"}])
    livekit.add_participant(room, "bob")
    sign_in(client)
    page = client.get(f"/console/room/{room}").text
    csrf = csrf_of(page)
    track = re.search(r'data-track="(TR_[^"]+)"', page).group(1)

    asked = client.post(f"/console/room/{room}/topic", data={"csrf": csrf, "topic": "After <b>"})
    assert asked.status_code == 200 and 'id="confirm-form"' in asked.text
    assert client.get(f"/api/room/{room}").json["roomTopic"] == "Before"
    done = client.post(
        f"/console/room/{room}/topic",
        data={"csrf": csrf, "topic": "After <b>", "confirmed": "yes"},
    )
    assert done.status_code == 303 and done.headers["location"].endswith("?done=topic")
    assert client.get(f"/api/room/{room}").json["roomTopic"] == "After <b>"
    assert 'data-notice="topic"' in client.get(done.headers["location"]).text

    done = client.post(
        f"/console/room/{room}/mute",
        data={"csrf": csrf, "identity": "ann", "track": track, "confirmed": "yes"},
    )
    assert done.status_code == 303
    _, people = client.run(client.app.ctx.livekit.rooms.participants(room))
    assert [t.muted for t in people[0].tracks] == [True]

    done = client.post(
        f"/console/room/{room}/remove",
        data={"csrf": csrf, "identity": "bob", "confirmed": "yes"},
    )
    assert done.status_code == 303
    _, people = client.run(client.app.ctx.livekit.rooms.participants(room))
    assert [p.identity for p in people] == ["ann"]

    asked = client.post(f"/console/room/{room}/close", data={"csrf": csrf})
    assert 'id="confirm-yes"' in asked.text and room in livekit.room_names()
    done = client.post(f"/console/room/{room}/close", data={"csrf": csrf, "confirmed": "yes"})
    assert done.status_code == 303 and done.headers["location"] == "/console?done=closed"
    assert room not in livekit.room_names()


@pytest.mark.parametrize(
    ("action", "data", "status", "message"),
    [
        ("topic", {"topic": "   "}, 400, "topic:"),
        ("topic", {"topic": "x" * 201}, 400, "topic:"),
        ("topic", {"topic": "a\u200bb"}, 400, "topic:"),
        ("remove", {"identity": "nobody"}, 404, "Participant not found"),
        ("mute", {"identity": "ann", "track": "TR_none"}, 404, "Participant not found"),
    ],
)
def test_bad_actions_answer_an_error_page(client, livekit, action, data, status, message) -> None:
    room = make_room(client)
    livekit.add_participant(room, "ann", tracks=[{"kind": "audio"}])
    sign_in(client)
    csrf = csrf_of(client.get(f"/console/room/{room}").text)
    response = client.post(
        f"/console/room/{room}/{action}", data={**data, "csrf": csrf, "confirmed": "yes"}
    )
    assert response.status_code == status
    assert 'id="error-message"' in response.text and message in response.text


def test_room_names_are_encoded_in_links(client, livekit) -> None:
    livekit.create_rooms(["a b?c#d"])
    sign_in(client)
    page = client.get("/console", params={"q": "a b?c#d"}).text
    assert f'href="/console/room/{quote("a b?c#d", safe="")}"' in page


# -- the identity provider, and https behind a proxy ----------------------------


@pytest.fixture(scope="module")
def issuer():
    from aura_livekit_backend.testing.issuer import DevIssuer

    with DevIssuer("console-test") as running:
        yield running


@pytest.fixture
def jwt_console(aura_client, issuer, monkeypatch):
    monkeypatch.delenv("AURA_CONSOLE_KEYS", raising=False)
    monkeypatch.delenv("AURA_MODERATION_API_KEYS", raising=False)
    return aura_client(auth="jwt", auth_issuer=issuer.url, auth_audience="console-test")


@pytest.mark.parametrize(
    ("claims", "status"),
    [
        ({"roles": ["console"]}, 200),
        ({"roles": "admin"}, 200),
        ({"roles": ["host", "speaker"]}, 403),
        ({}, 403),
    ],
)
def test_signing_in_with_the_identity_providers_token(jwt_console, issuer, claims, status) -> None:
    page = jwt_console.get("/console/sign-in").text
    assert 'id="token-form"' in page and 'id="console-closed"' not in page
    assert 'id="sign-in-form"' not in page  # no keys: no key to type
    token = issuer.token("ann", claims=claims, ttl=600)
    response = jwt_console.post(
        "/console/sign-in/token", headers={"Authorization": f"Bearer {token}"}
    )
    assert response.status_code == status, response.text
    if status == 200:
        assert response.json == {"signedIn": True, "identity": "ann"}
        cookie = response.headers["set-cookie"]
        max_age = int(re.search(r"Max-Age=(\d+)", cookie).group(1))
        assert 0 < max_age <= 600  # never longer than the token itself
        landing = jwt_console.get("/console")
        assert landing.status_code == 200 and 'data-operator="ann"' in landing.text
    else:
        assert "set-cookie" not in response.headers
        assert jwt_console.get("/console").status_code == 303


def test_a_bad_token_is_the_services_401(jwt_console, issuer) -> None:
    response = jwt_console.post(
        "/console/sign-in/token", headers={"Authorization": "Bearer not-a-jwt"}
    )
    assert response.status_code == 401
    assert set(response.json) == {"statusCode", "message"}


def test_the_cookie_is_secure_behind_an_https_proxy(aura_client, monkeypatch) -> None:
    monkeypatch.setenv("AURA_CONSOLE_KEYS", KEY)
    own = aura_client(forwarded_secret="proxy-secret-0123456789")  # noqa: S106 (test-only)
    headers = {"Forwarded": "for=10.0.0.1;proto=https;secret=proxy-secret-0123456789"}
    response = own.post("/console/sign-in", data={"key": KEY}, headers=headers)
    assert response.status_code == 303
    assert "secure" in response.headers["set-cookie"].lower()
    # Without the proxy's word, the same request is plain http.
    plain = own.post("/console/sign-in", data={"key": KEY})
    assert "secure" not in plain.headers["set-cookie"].lower()


def test_the_services_api_keys_do_not_guard_the_console(aura_client, monkeypatch) -> None:
    # The console checks its own sign-in; the service's AURA_API_KEYS guard the API.
    monkeypatch.setenv("AURA_CONSOLE_KEYS", KEY)
    own = aura_client(api_keys="service-api-key-0123456789")
    assert own.get("/api/rooms").status_code == 401
    assert own.get("/console/sign-in").status_code == 200
    sign_in(own)
    assert own.get("/console").status_code == 200
    # An API key is no console key.
    own._client._session.cookies.clear()
    refused = own.post("/console/sign-in", data={"key": "service-api-key-0123456789"})
    assert refused.status_code == 401


def test_a_sick_livekit_is_an_error_page_in_bounded_time(
    aura_client, livekit_emulator, monkeypatch
):
    monkeypatch.setenv("AURA_CONSOLE_KEYS", KEY)
    own = aura_client(livekit_timeout=0.5, room_list_cache_seconds=0)
    sign_in(own)
    livekit_emulator.disturb("unavailable")
    page = own.get("/console")
    assert page.status_code == 503
    assert 'id="error-message" class="error" role="alert" data-status="503"' in page.text
    assert "Failed to list rooms: LiveKit is unavailable" in page.text
    assert own.get("/console/rooms.json").json["statusCode"] == 503
    livekit_emulator.heal()
    assert own.get("/console").status_code == 200


@pytest.mark.parametrize(
    "after",
    [
        "%C2%B2.x",  # "²": a digit to str.isdigit(), none to int()
        "%D9%A3.x",  # "٣", an Arabic-Indic three: int() reads it, a cursor has none
        "99999999999999999999.x",  # beyond a 64-bit position
        "x.y",
    ],
)
def test_a_cursor_the_console_did_not_make_is_bad_input(client, after: str) -> None:
    sign_in(client)
    fragment = client.get(f"/console/rooms.json?after={after}")
    assert fragment.status_code == 400
    assert fragment.json == {"statusCode": 400, "message": "after: not a cursor this console made"}
    # The page says so in the console's own error page, as for any refused request.
    page = client.get(f"/console?after={after}")
    assert page.status_code == 400
    assert page.headers["content-type"].startswith("text/html")
    assert "after: not a cursor this console made" in page.text


@pytest.mark.parametrize(
    ("after", "header"),
    [
        ("%C2%B2", None),
        ("%D9%A3", None),
        ("99999999999999999999", None),
        ("9223372036854775808", None),  # 2**63
        ("-1", None),
        (None, "²"),
        (None, "99999999999999999999"),
    ],
)
def test_a_stream_position_must_be_ascii_digits_within_64_bits(
    client, after: str | None, header: str | None
) -> None:
    sign_in(client)
    query = f"?after={after}" if after is not None else ""
    headers = {"Last-Event-ID": header.encode()} if header else {}
    response = client.get("/console/events/stream" + query, headers=headers)
    assert response.status_code == 400
    assert response.json == {"statusCode": 400, "message": "after: must be a position (digits)"}


@pytest.mark.parametrize("exp", [10**400, 2**70])
def test_a_token_whose_expiry_is_out_of_reach_signs_in_for_the_session_lifetime(
    jwt_console, issuer, exp
) -> None:
    """The identity provider's word: the session then ends with its own lifetime."""
    token = issuer.token("ann", claims={"roles": ["console"], "exp": exp})
    response = jwt_console.post(
        "/console/sign-in/token", headers={"Authorization": f"Bearer {token}"}
    )
    assert response.status_code == 200, response.text
    max_age = int(re.search(r"Max-Age=(\d+)", response.headers["set-cookie"]).group(1))
    assert 0 < max_age <= 8 * 3600
    assert jwt_console.get("/console").status_code == 200
