"""The console in a real browser: headless Chromium (``tools/browser_harness.py``).

Each test serves the service with the installed plugins on 127.0.0.1 from a thread
(``live_service``), its LiveKit emulator behind it, and the console's ``ctx.events``
over an event log in memory, so a test appends exactly the events the pages show.
The screenshots the README shows are taken here (``AURA_UPDATE_SCREENSHOTS=1`` writes
them under ``docs/console/``).
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Iterator, Mapping
from importlib.metadata import entry_points
from typing import Any

import httpx
import pytest
from aura_livekit_console import plugin as console_plugin
from browser_harness import Browser, LiveService, LoopbackProxy
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.remote.webelement import WebElement

from aura_livekit_backend.event_feed import EventFeed
from aura_livekit_backend.plugin import Plugin
from aura_livekit_backend.testing.memory_log import MemoryLog

pytestmark = pytest.mark.browser

KEY = "console-key-0123456789abcdefghijkl"
# Each sets a flag if it ever runs; the page must show it as text instead.
HOSTILE_TOPIC = "<img src=x onerror=\"window.__pwned='topic'\">"
HOSTILE_NAME = "</script><script>window.__pwned='name'</script>"
HOSTILE_IDENTITY = '"><svg onload="window.__pwned=\'identity\'">'
HOSTILE_LINK = "javascript:window.__pwned='link'"
UNAVAILABLE = b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
HOSTILE_METADATA = "<img src=x onerror=\"window.__pwned='metadata'\">"


@dataclasses.dataclass
class Console:
    """The served service, its emulator and its event log, and the browser on it."""

    service: LiveService
    emulator: Any
    log: MemoryLog
    browser: Browser
    url: str

    def create_room(self, **body: Any) -> str:
        response = self.service.http.post("/api/room/create", json={"userName": "host", **body})
        assert response.status_code == 200, response.text
        return str(response.json()["roomId"])

    def join(self, room: str, identity: str, name: str = "", **body: Any) -> None:
        """A participant joins, through the emulator's own HTTP hook."""
        response = httpx.post(
            f"{self.emulator.url}/_emulator/rooms/{room}/participants",
            json={"identity": identity, "name": name, **body},
            headers={"Authorization": f"Bearer {self.emulator.hook_token}"},
        )
        assert response.status_code == 200, response.text

    def leave(self, room: str, identity: str) -> None:
        response = httpx.delete(
            f"{self.emulator.url}/_emulator/rooms/{room}/participants/{identity}",
            headers={"Authorization": f"Bearer {self.emulator.hook_token}"},
        )
        assert response.status_code == 204, response.text

    def append(self, name: str, room: str | None, data: Mapping[str, Any], at: float) -> int:
        position = self.service.run(
            self.log.append(f"id-{len(self.log.entries)}", name, room, at, data)
        )
        return int(position)

    # -- the browser ---------------------------------------------------------------

    def open(self, path: str) -> None:
        self.browser.get(self.url + path)

    def page(self) -> str:
        """The page shown (its ``body[data-page]``), once the whole of it is parsed."""
        return str(
            self.browser.script(
                "return document.readyState === 'loading' ? null : document.body.dataset.page;"
            )
        )

    def find(self, css: str) -> list[WebElement]:
        return self.browser.driver.find_elements(By.CSS_SELECTOR, css)

    def one(self, css: str) -> WebElement:
        return self.browser.driver.find_element(By.CSS_SELECTOR, css)

    def wait_for(self, css: str, what: str, timeout: float = 10.0) -> WebElement:
        found = self.browser.wait_until(lambda: self.find(css), timeout=timeout, what=what)
        return found[0]

    def on_page(self, name: str) -> None:
        self.browser.wait_until(lambda: self.page() == name, what=f"the {name} page")

    def sign_in(self, key: str = KEY) -> None:
        self.open("/console/sign-in")
        self.on_page("sign-in")
        self.one("#key").send_keys(key)
        self.one("#sign-in-button").click()

    def errors(self) -> list[str]:
        """What the browser logged as errors."""
        return self.browser.console_errors()

    def no_errors(self) -> None:
        assert self.errors() == []


@pytest.fixture
def console_at(browser, live_service, livekit_emulator, monkeypatch) -> Iterator[Any]:
    """``console_at(url=None)``: the service with a console key, and a :class:`Console`
    on it (the browser calls ``url`` when given: a proxy in front of the service)."""
    log = MemoryLog()
    feed = EventFeed(log)

    def setup(ctx: Any) -> None:
        console_plugin.setup(dataclasses.replace(ctx, events=feed))

    plugins = {ep.name: ep.load() for ep in entry_points(group="aura_livekit_backend.plugins")}
    plugins["console"] = Plugin(setup=setup, at_root=True)
    monkeypatch.setenv("AURA_CONSOLE_KEYS", KEY)
    service = live_service(plugins=plugins)

    def make(url: str | None = None) -> Console:
        return Console(service, livekit_emulator, log, browser, url or service.url)

    yield make
    service.run(feed.stop())


@pytest.fixture
def console(console_at) -> Console:
    """The console, the browser calling the service directly."""
    return console_at()


def test_sign_in_watch_a_room_live_and_close_it(console: Console) -> None:
    console.open("/console")
    console.on_page("sign-in")  # closed by default: no session, no data
    console.browser.screenshot("console/sign-in.png")
    console.sign_in()
    console.on_page("rooms")
    console.create_room(roomTopic="Design review", maxParticipants=8)
    console.wait_for("#rooms-body tr[data-room] a.room-link", "the first room")
    # The page is not reloaded from here on: a mark on this document must survive.
    console.browser.script("window.__sameDocument = true;")

    started = time.monotonic()
    room = console.create_room(roomTopic="Weekly sync")
    console.wait_for(f'#rooms-body tr[data-room="{room}"]', "the new room on the list")
    appeared = time.monotonic() - started
    assert console.browser.script("return window.__sameDocument;") is True
    row = console.one(f'#rooms-body tr[data-room="{room}"]')
    assert row.find_element(By.CSS_SELECTOR, ".topic").text == "Weekly sync"
    # The page asks every second, the listing is at most a second old: about 1 to 2 s.
    # Printed (pytest -s shows it), not asserted: a loaded machine may take longer.
    print(f"the new room appeared on the list after {appeared:.2f} s")
    console.browser.screenshot("console/rooms.png")

    row.find_element(By.CSS_SELECTOR, "a.room-link").click()
    console.on_page("room")
    assert console.one("#room-topic").text == "Weekly sync"
    console.browser.script("window.__sameDocument = true;")
    console.join(room, "ann", "Ann Example", tracks=[{"kind": "audio", "source": "microphone"}])
    console.join(room, "bob", "Bob Example", tracks=[{"kind": "video", "source": "camera"}])
    person = console.wait_for('#participants-body tr[data-identity="ann"]', "ann joining")
    assert person.find_element(By.CSS_SELECTOR, ".name").text == "Ann Example"
    console.wait_for('#participants-body tr[data-identity="bob"]', "bob joining")
    assert person.find_elements(By.CSS_SELECTOR, 'li[data-source="microphone"]')
    console.browser.screenshot("console/room.png")

    console.leave(room, "ann")
    console.browser.wait_until(
        lambda: not console.find('#participants-body tr[data-identity="ann"]'), what="ann leaving"
    )
    assert console.find('#participants-body tr[data-identity="bob"]')
    assert console.browser.script("return window.__sameDocument;") is True

    console.one("#close-room").click()
    console.on_page("confirm")
    assert room in console.one("#confirm-question").text
    console.browser.screenshot("console/confirm-close.png")
    assert room in console.emulator.room_names()  # asking closed nothing
    console.one("#confirm-yes").click()
    console.on_page("rooms")
    assert console.one("#notice").text == "The room was closed."
    assert room not in console.emulator.room_names()
    assert not console.find(f'#rooms-body tr[data-room="{room}"]')
    console.no_errors()
    # Offline: every page, script, stylesheet and refresh came from the service.
    elsewhere = [
        url for url in console.browser.requested_urls() if not url.startswith(console.url + "/")
    ]
    assert elsewhere == []


def test_change_the_topic_mute_a_track_and_remove_someone_from_the_page(
    console: Console,
) -> None:
    room = console.create_room(roomTopic="Before")
    console.join(room, "ann", "Ann", tracks=[{"kind": "audio", "source": "microphone"}])
    console.join(room, "bob", "Bob")
    console.sign_in()
    console.on_page("rooms")
    console.open(f"/console/room/{room}")
    console.on_page("room")

    console.one("#topic-input").clear()
    console.one("#topic-input").send_keys("After")
    console.one("#topic-button").click()
    console.on_page("confirm")
    console.one("#confirm-yes").click()
    console.on_page("room")
    assert console.one("#notice").get_attribute("data-notice") == "topic"
    assert console.one("#room-topic").text == "After"
    assert console.service.http.get(f"/api/room/{room}").json()["roomTopic"] == "After"

    console.one('tr[data-identity="ann"] button.mute-track').click()
    console.on_page("confirm")
    console.one("#confirm-yes").click()
    console.on_page("room")
    assert console.one("#notice").get_attribute("data-notice") == "muted"
    track = console.one('tr[data-identity="ann"] li[data-source="microphone"]')
    assert track.get_attribute("data-muted") == "true"

    console.one('tr[data-identity="bob"] button.remove-participant').click()
    console.on_page("confirm")
    assert "bob" in console.one("#confirm-question").text
    console.one("#confirm-cancel").click()  # asked, and said no: bob stays
    console.on_page("room")
    assert console.find('tr[data-identity="bob"]')
    console.one('tr[data-identity="bob"] button.remove-participant').click()
    console.on_page("confirm")
    console.one("#confirm-yes").click()
    console.on_page("room")
    assert console.one("#notice").get_attribute("data-notice") == "removed"
    assert not console.find('tr[data-identity="bob"]')
    assert console.find('tr[data-identity="ann"]')
    console.no_errors()


def test_an_action_without_its_csrf_token_is_refused(console: Console) -> None:
    room = console.create_room(roomTopic="Keep me")
    console.sign_in()
    console.on_page("rooms")
    console.open(f"/console/room/{room}")
    console.on_page("room")
    # A form posted from elsewhere has no token: here, the page's own form without it.
    console.browser.script("document.querySelector('#close-form input[name=csrf]').remove();")
    console.one("#close-room").click()
    console.browser.wait_until(
        lambda: "CSRF" in console.browser.script("return document.body.innerText;"),
        what="the refusal",
    )
    close = f"{console.url}/console/room/{room}/close"
    assert (close, 403) in console.browser.responses()
    assert room in console.emulator.room_names()


def test_markup_in_topics_names_and_metadata_is_shown_as_text_and_runs_nothing(
    console: Console,
) -> None:
    room = console.create_room(roomTopic=HOSTILE_TOPIC, metadata=HOSTILE_METADATA)
    console.join(room, HOSTILE_IDENTITY, HOSTILE_NAME)
    console.join(room, "linker", HOSTILE_LINK)
    at = time.time()
    data = {"room": {"name": room, "topic": HOSTILE_TOPIC}, "note": HOSTILE_NAME}
    console.append("aura.room.created", room, data, at)
    console.append("livekit.room.finished", room, data, at + 60)
    console.sign_in()
    console.on_page("rooms")

    def nothing_ran(page: str) -> None:
        assert console.browser.script("return window.__pwned;") is None, page
        # No element the markup would have made: only the console's own script.
        assert len(console.find("script")) == 1, page
        assert console.find("img, svg, iframe, object, embed") == [], page
        links = console.browser.script(
            "return [...document.links].map(a => a.getAttribute('href'));"
        )
        assert not [link for link in links if link.strip().lower().startswith("javascript:")]

    text = lambda: console.browser.script("return document.body.innerText;")  # noqa: E731

    console.wait_for(f'#rooms-body tr[data-room="{room}"]', "the room")
    console.wait_for("body[data-total]", "a live refresh")
    assert HOSTILE_TOPIC in text()
    nothing_ran("rooms")

    console.one(f'#rooms-body tr[data-room="{room}"] a.room-link').click()
    console.on_page("room")
    console.wait_for('#participants-body tr[data-identity="linker"]', "the participants")
    # After a live refresh too (it marks the body): the script swaps in what the
    # server escaped.
    console.wait_for("body[data-count]", "a live refresh")
    shown = text()
    for hostile in (HOSTILE_TOPIC, HOSTILE_METADATA, HOSTILE_NAME, HOSTILE_IDENTITY, HOSTILE_LINK):
        assert hostile in shown, hostile
    nothing_ran("room")

    console.open("/console/events")
    console.on_page("events")
    console.wait_for('#event-feed li[data-event="livekit.room.finished"]', "the events")
    # One more, from the live stream: the script builds it with textContent.
    console.wait_for('#feed-status[data-state="live"]', "the stream")
    console.append("livekit.participant.joined", room, {"name": HOSTILE_NAME}, at + 61)
    console.wait_for('#event-feed li[data-event="livekit.participant.joined"]', "the live event")
    assert HOSTILE_NAME in text() and room in text()
    nothing_ran("events")

    console.open("/console/history")
    console.on_page("history")
    console.wait_for(f'#history-body tr[data-room="{room}"]', "the ended room")
    assert HOSTILE_TOPIC in text()
    nothing_ran("history")
    # Had any of it become markup, Chromium would have refused to run it and said so.
    console.no_errors()
    # As it does here: the policy is in force on the console's pages.
    console.browser.script(
        "const s = document.createElement('script');"
        "s.textContent = \"window.__pwned = 'inline';\"; document.body.append(s);"
    )
    refused = console.browser.wait_until(
        lambda: [m for m in console.errors() if "Content Security Policy" in m],
        what="the refusal",
    )
    assert "inline script" in refused[0]
    assert console.browser.script("return window.__pwned;") is None


def test_a_wrong_or_missing_key_shows_the_sign_in_page_and_no_data(console: Console) -> None:
    room = console.create_room(roomTopic="Secret plans")
    for path in ("/console", f"/console/room/{room}", "/console/events", "/console/history"):
        console.open(path)
        console.on_page("sign-in")
        source = console.browser.driver.page_source
        assert "Secret plans" not in source and room not in source, path
    console.sign_in("not-the-key-0123456789abcdefghij")
    # The answer is the sign-in page again, now with its message.
    error = console.wait_for("#sign-in-error:not([hidden])", "the refusal")
    assert error.text == "That key is not valid." and console.page() == "sign-in"
    source = console.browser.driver.page_source
    assert "Secret plans" not in source and room not in source
    console.open("/console")
    console.on_page("sign-in")
    # What the browser said: the refused sign-in's 401, nothing else.
    assert [m for m in console.errors() if "401" not in m] == []


def test_the_event_feed_is_live_and_resumes_after_the_stream_drops(console_at) -> None:
    first = console_at()
    with LoopbackProxy(("127.0.0.1", int(first.service.url.rsplit(":", 1)[1]))) as proxy:
        console = console_at(proxy.url)
        at = time.time()
        console.append("aura.room.created", "feed-a", {"room": {"name": "feed-a"}}, at)
        console.sign_in()
        console.on_page("rooms")
        console.open("/console/events")
        console.on_page("events")
        console.wait_for('#feed-status[data-state="live"]', "the stream")
        console.browser.script("window.__sameDocument = true;")
        one = console.append("livekit.participant.joined", "feed-a", {"identity": "ann"}, at + 1)
        console.wait_for(f'#event-feed li[data-position="{one}"]', "a live event")

        with proxy.down():
            console.wait_for('#feed-status[data-state="reconnecting"]', "the drop noticed")
            # Appended while the browser cannot hear: it must get them on reconnecting.
            two = console.append("livekit.participant.left", "feed-a", {"identity": "ann"}, at + 2)
            three = console.append("livekit.room.finished", "feed-a", {}, at + 3)
        console.wait_for(f'#event-feed li[data-position="{three}"]', "the missed events", 20)
        console.wait_for('#feed-status[data-state="live"]', "the stream back")
        positions = console.browser.script(
            "return [...document.querySelectorAll('#event-feed li[data-position]')]"
            ".map(li => Number(li.dataset.position));"
        )
        # Newest first, each once: resumed after the last one seen, not from the start.
        assert positions == [three, two, one, one - 1]

        # A proxy answering 503 meanwhile (the service restarting behind it): the
        # browser's EventSource gives up, and the page's script starts it again.
        with proxy.down(answer=UNAVAILABLE):
            console.wait_for('#feed-status[data-state="reconnecting"]', "the second drop")
            four = console.append("livekit.room.started", "feed-b", {}, at + 4)
        console.wait_for(f'#event-feed li[data-position="{four}"]', "the event missed", 20)
        console.wait_for('#feed-status[data-state="live"]', "the stream back again")
        positions = console.browser.script(
            "return [...document.querySelectorAll('#event-feed li[data-position]')]"
            ".map(li => Number(li.dataset.position));"
        )
        assert positions == [four, three, two, one, one - 1]
        assert console.browser.script("return window.__sameDocument;") is True
        console.browser.screenshot("console/events.png")
        # The payloads the script added read as the server writes them on a reload.
        payloads = (
            "return Object.fromEntries([...document.querySelectorAll("
            "'#event-feed li[data-position]')].map(li => "
            "[li.dataset.position, li.querySelector('.event-data').textContent]));"
        )
        live = console.browser.script(payloads)
        assert live[str(one)] == '{"identity":"ann"}'
        console.open("/console/events")
        console.on_page("events")
        assert console.browser.script(payloads) == live
        console.open("/console/history")
        console.on_page("history")
        console.wait_for('#history-body tr[data-room="feed-a"]', "the ended room")
        console.browser.screenshot("console/history.png")
        # The refused reconnections are the browser's to report; nothing else.
        errors = console.errors()
        assert all("/console/events" in m for m in errors), errors


def test_usable_at_phone_width(console: Console) -> None:
    room = console.create_room(roomTopic="A room with a rather long topic for a small screen")
    console.join(room, "someone-with-a-long-identity-0123456789", "Someone")
    at = time.time()
    console.append("aura.room.created", room, {"room": {"name": room, "topic": "Phone"}}, at)
    console.append("livekit.room.finished", room, {"room": {"name": room}}, at + 300)
    with console.browser.phone():
        console.sign_in()
        console.on_page("rooms")
        console.wait_for(f'#rooms-body tr[data-room="{room}"]', "the room")
        console.browser.screenshot("console/rooms-phone.png")
        wide = []
        for path in ("/console", f"/console/room/{room}", "/console/events", "/console/history"):
            console.open(path)
            console.browser.wait_until(lambda: console.page() != "sign-in", what=path)
            if console.browser.scrolls_sideways():
                wide.append(path)
        console.open(f"/console/room/{room}")
        console.on_page("room")
        console.browser.screenshot("console/room-phone.png")
    assert wide == []
    console.no_errors()


def test_sign_in_and_every_action_by_keyboard(console: Console) -> None:
    room = console.create_room(roomTopic="Keyboard room")
    console.open("/console/sign-in")
    console.on_page("sign-in")

    def focused() -> str:
        return str(
            console.browser.script(
                "return document.activeElement.id || document.activeElement.className;"
            )
        )

    def tab_to(wanted: str, limit: int = 40) -> None:
        seen = []
        for _ in range(limit):
            if focused() == wanted:
                return
            seen.append(focused())
            console.browser.driver.switch_to.active_element.send_keys(Keys.TAB)
        raise AssertionError(f"Tab never reached {wanted}: {seen}")

    def press(key: str) -> None:
        console.browser.driver.switch_to.active_element.send_keys(key)

    # The page starts in the key's field (autofocus: applied once the page renders).
    console.browser.wait_until(lambda: focused() == "key", what="focus on the key")
    press(KEY)
    tab_to("sign-in-button")
    press(Keys.ENTER)
    console.on_page("rooms")
    console.wait_for(f'#rooms-body tr[data-room="{room}"]', "the room")
    tab_to("q")  # the search
    tab_to("room-link")
    press(Keys.ENTER)
    console.on_page("room")
    tab_to("topic-input")
    tab_to("close-room")
    press(Keys.ENTER)
    console.on_page("confirm")
    console.browser.wait_until(lambda: focused() == "confirm-yes", what="focus on confirming")
    press(Keys.ENTER)
    console.on_page("rooms")
    assert room not in console.emulator.room_names()
    tab_to("sign-out-button")
    press(Keys.ENTER)
    console.on_page("sign-in")
    console.no_errors()


def test_signing_in_with_the_identity_providers_token(
    browser: Browser, live_service, livekit_emulator, monkeypatch
) -> None:
    # The token form is the one sign-in the script does (a fetch with the bearer
    # token), so only a browser shows it works.
    from aura_livekit_backend.testing.issuer import DevIssuer

    monkeypatch.delenv("AURA_CONSOLE_KEYS", raising=False)
    with DevIssuer("console-test") as issuer:
        service = live_service(auth="jwt", auth_issuer=issuer.url, auth_audience="console-test")
        console = Console(service, livekit_emulator, MemoryLog(), browser, service.url)
        console.open("/console/sign-in")
        console.on_page("sign-in")
        assert console.find("#sign-in-form") == []  # no keys: no key to type

        console.one("#token").send_keys(issuer.token("bob", claims={"roles": ["host"]}))
        console.one("#token-button").click()
        error = console.wait_for("#sign-in-error:not([hidden])", "the refusal")
        assert "roles" in error.text and console.page() == "sign-in"

        console.one("#token").clear()
        console.one("#token").send_keys(issuer.token("ann", claims={"roles": ["console"]}))
        console.one("#token-button").click()
        console.on_page("rooms")
        assert console.one("#operator").get_attribute("data-operator") == "ann"
    # The refused token's 403, nothing else.
    assert [m for m in console.errors() if "403" not in m] == []
