"""Headless Chromium for the tests that look at pages: Debian's ``chromium`` driven by
Debian's ``chromedriver`` through Selenium, nothing downloaded.

Not part of the package (``tools/`` is not in the wheel): pytest finds it as
``browser_harness`` (``pythonpath = ["tools"]``), and the repository's root
``conftest.py`` hands its fixtures to every test folder, the plugins' included.

- ``chromium`` (session): starts ``/usr/bin/chromedriver`` on a free loopback port,
  opens one headless ``/usr/bin/chromium`` through it, and stops both after the run
  (one pair per pytest-xdist worker). Selenium talks to that chromedriver as a remote
  end (``webdriver.Remote``), so Selenium Manager, the part of Selenium that looks for
  and downloads browsers and drivers, never runs: the fixture makes it fail if it is
  called, and sets ``SE_OFFLINE`` besides.
- ``browser`` (each test): that Chromium with no page, cookie or cache left by the
  test before, at a fixed 1280 by 900 window, as a :class:`Browser`; ``browser.phone()``
  narrows it to a 390-pixel phone.
- ``live_service(**fields)``: the app built as the console script builds it (the kit's
  ``aura_settings`` and emulator), served on 127.0.0.1 by a background thread, so the
  browser can call it at any time while the test drives the browser.
- ``screenshots``: where ``browser.screenshot(name)`` writes PNGs: a temporary folder,
  or the repository's ``docs/`` when ``AURA_UPDATE_SCREENSHOTS=1`` is set for the run.

Chromium needs ``--no-sandbox`` only when run as root (CI and these machines are):
its sandbox refuses to start as root. It is added then and only then.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import os
import re
import shutil
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
import pytest

if TYPE_CHECKING:
    from sanic import Sanic
    from selenium.webdriver.remote.webdriver import WebDriver

    from aura_livekit_backend import Settings

__all__ = [
    "CHROMEDRIVER",
    "CHROMIUM",
    "PHONE_WIDTH",
    "UPDATE_SCREENSHOTS",
    "WINDOW",
    "Browser",
    "LiveService",
    "LoopbackProxy",
    "browser",
    "chromium",
    "live_service",
    "screenshots",
    "serving_live",
]

#: Debian's packages (``apt-get install chromium chromium-driver``); both are named,
#: so nothing is looked for anywhere else.
CHROMIUM = os.environ.get("AURA_CHROMIUM", "/usr/bin/chromium")
CHROMEDRIVER = os.environ.get("AURA_CHROMEDRIVER", "/usr/bin/chromedriver")

#: The desktop window, fixed so screenshots and layouts are the same on every run.
WINDOW = (1280, 900)
#: A phone's CSS width (an iPhone 12-15's 390 pixels).
PHONE_WIDTH = 390

#: Read when the module is imported: the suites' autouse fixtures clear ``AURA_*``
#: variables before any test runs.
UPDATE_SCREENSHOTS = os.environ.get("AURA_UPDATE_SCREENSHOTS") == "1"
_DOCS = Path(__file__).resolve().parent.parent / "docs"

# Chromium's switches for a test run on a machine with no network: no first-run
# pages, no updates, sync, pings or field trials (each would try some host and fill
# the log with refused connections), and every host name but the loopback one
# unresolvable, so a page that names another host fails loudly instead of waiting.
_SWITCHES = (
    "--headless",
    f"--window-size={WINDOW[0]},{WINDOW[1]}",
    "--disable-gpu",
    "--no-first-run",
    "--no-default-browser-check",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-default-apps",
    "--disable-domain-reliability",
    "--disable-sync",
    "--disable-extensions",
    "--disable-features=Translate,OptimizationHints,MediaRouter",
    "--metrics-recording-only",
    "--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE 127.0.0.1, EXCLUDE localhost",
    # /dev/shm may be small in a container; Chromium then writes to /tmp instead.
    "--disable-dev-shm-usage",
    "--hide-scrollbars",
)

_STARTED = re.compile(rb"started successfully on port (\d+)")
_START_TIMEOUT = 20.0


@contextmanager
def _chromedriver(workdir: Path) -> Iterator[str]:
    """Run chromedriver on a port it picks on 127.0.0.1; yield its URL, stop it after."""
    log = workdir / "chromedriver.out"
    with log.open("wb") as out:
        # --port=0: chromedriver binds a free port itself and prints it, so no other
        # process can take the port between finding it and binding it.
        process = subprocess.Popen(  # noqa: S603 (a fixed program, our own arguments)
            [CHROMEDRIVER, "--port=0", f"--log-path={workdir / 'chromedriver.log'}"],
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
    try:
        deadline = time.monotonic() + _START_TIMEOUT
        while (found := _STARTED.search(log.read_bytes())) is None:
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"chromedriver did not start: {log.read_text()!r}")
            time.sleep(0.02)
        yield f"http://127.0.0.1:{int(found.group(1))}"
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)


def _options(profile: Path) -> Any:
    from selenium.webdriver import ChromeOptions

    options = ChromeOptions()
    options.binary_location = CHROMIUM
    for switch in _SWITCHES:
        options.add_argument(switch)
    # A new empty profile for the run, removed after it.
    options.add_argument(f"--user-data-dir={profile}")
    if os.geteuid() == 0:
        # Chromium's sandbox refuses to run as root; CI runs as root.
        options.add_argument("--no-sandbox")
    # The page's console (CSP violations land there) and its network events.
    options.set_capability("goog:loggingPrefs", {"browser": "ALL", "performance": "ALL"})
    return options


def _refuse_selenium_manager(*args: object, **kwargs: object) -> dict[str, str]:
    raise AssertionError("Selenium Manager was asked for a browser or driver; none may be fetched")


@dataclass
class Browser:
    """One headless Chromium, driven for a test (``driver`` is Selenium's WebDriver)."""

    driver: WebDriver
    screenshots: Path
    _console: list[dict[str, Any]] = field(default_factory=list)
    _network: list[dict[str, Any]] = field(default_factory=list)

    def get(self, url: str) -> None:
        """Open ``url`` and wait until the page has loaded."""
        self.driver.get(url)

    def script(self, source: str, *args: Any) -> Any:
        """Run ``source`` in the page, as the driver does (not as the page: its CSP
        does not apply), and return its result."""
        return self.driver.execute_script(source, *args)

    def wait_until(
        self, condition: Callable[[], Any], timeout: float = 10.0, what: str = "condition"
    ) -> Any:
        """Poll ``condition`` until it returns something true, and return that; fail
        naming ``what`` after ``timeout`` seconds."""
        deadline = time.monotonic() + timeout
        while True:
            result = condition()
            if result:
                return result
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out after {timeout} s waiting for {what}")
            time.sleep(0.05)

    def _drain(self) -> None:
        self._console += self.driver.execute("getLog", {"type": "browser"})["value"]
        for entry in self.driver.execute("getLog", {"type": "performance"})["value"]:
            self._network.append(json.loads(entry["message"])["message"])

    def console(self) -> list[dict[str, Any]]:
        """Every console message of the test so far (``level``, ``message``): the
        page's own and Chromium's, such as a refused load or script under the CSP."""
        self._drain()
        return list(self._console)

    def console_errors(self) -> list[str]:
        """The console messages of level SEVERE so far."""
        return [entry["message"] for entry in self.console() if entry["level"] == "SEVERE"]

    def requested_urls(self) -> list[str]:
        """Every URL the browser asked for during the test, in order."""
        self._drain()
        return [
            event["params"]["request"]["url"]
            for event in self._network
            if event["method"] == "Network.requestWillBeSent"
        ]

    def responses(self) -> list[tuple[str, int]]:
        """(URL, status) of every answer the browser received during the test."""
        self._drain()
        return [
            (event["params"]["response"]["url"], event["params"]["response"]["status"])
            for event in self._network
            if event["method"] == "Network.responseReceived"
        ]

    def cdp(self, command: str, **params: Any) -> Any:
        """Call the DevTools protocol's ``command`` (for what WebDriver lacks)."""
        return self.driver.execute("executeCdpCommand", {"cmd": command, "params": params})["value"]

    @contextmanager
    def phone(self, width: int = PHONE_WIDTH, height: int = 844) -> Iterator[None]:
        """A phone's screen until the block ends: ``width`` CSS pixels, touch, the
        page's ``<meta name="viewport">`` honoured as a phone honours it."""
        self.cdp(
            "Emulation.setDeviceMetricsOverride",
            width=width,
            height=height,
            deviceScaleFactor=2,
            mobile=True,
        )
        try:
            yield
        finally:
            self.cdp("Emulation.clearDeviceMetricsOverride")

    def scrolls_sideways(self) -> bool:
        """Whether the page is wider than the window (a horizontal scrollbar)."""
        return bool(
            self.script(
                "return document.documentElement.scrollWidth > window.innerWidth"
                " || document.body.scrollWidth > window.innerWidth;"
            )
        )

    def screenshot(self, name: str) -> Path:
        """Save what the window shows as ``name`` (a path ending in ``.png``) under
        the ``screenshots`` folder; return where it went."""
        path = self.screenshots / name
        path.parent.mkdir(parents=True, exist_ok=True)
        # Through DevTools rather than WebDriver: it honours the phone emulation's
        # size and pixel ratio.
        shot = self.cdp("Page.captureScreenshot", format="png")
        path.write_bytes(base64.b64decode(shot["data"]))
        return path

    def reset(self) -> None:
        """Forget everything a test left: page, cookies, storage, logs, screen size."""
        self.driver.get("about:blank")
        self.cdp("Emulation.clearDeviceMetricsOverride")
        self.cdp("Network.clearBrowserCookies")
        self.cdp("Network.clearBrowserCache")
        self._drain()
        self._console.clear()
        self._network.clear()


@pytest.fixture(scope="session")
def screenshots(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Where the run's screenshots go: ``docs/`` with ``AURA_UPDATE_SCREENSHOTS=1``
    (to commit them), else a temporary folder, so a CI run changes no tracked file."""
    if UPDATE_SCREENSHOTS:
        return _DOCS
    return tmp_path_factory.mktemp("screenshots")


@pytest.fixture(scope="session")
def chromium(screenshots: Path) -> Iterator[Browser]:
    """chromedriver and one headless Chromium, for the whole run (per xdist worker)."""
    from selenium.webdriver import Remote
    from selenium.webdriver.chromium.remote_connection import ChromiumRemoteConnection
    from selenium.webdriver.common.selenium_manager import SeleniumManager

    for program in (CHROMIUM, CHROMEDRIVER):
        if shutil.which(program) is None:
            raise RuntimeError(
                f"{program} is missing: apt-get install chromium chromium-driver"
                " (or name them in AURA_CHROMIUM and AURA_CHROMEDRIVER)"
            )
    with ExitStack() as stack:
        monkeypatch = stack.enter_context(pytest.MonkeyPatch.context())
        monkeypatch.setenv("SE_OFFLINE", "true")
        monkeypatch.setattr(SeleniumManager, "binary_paths", _refuse_selenium_manager)
        workdir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="chromium-")))
        url = stack.enter_context(_chromedriver(workdir))
        connection = ChromiumRemoteConnection(url, vendor_prefix="goog", browser_name="chrome")
        # The performance and browser logs are read as chromedriver serves them.
        connection.add_command("getLog", "POST", "/session/$sessionId/se/log")
        driver = Remote(command_executor=connection, options=_options(workdir / "profile"))
        stack.callback(driver.quit)
        driver.set_page_load_timeout(15)
        driver.set_script_timeout(10)
        yield Browser(driver, screenshots)


@pytest.fixture
def browser(chromium: Browser) -> Iterator[Browser]:
    """The run's Chromium, cleared of what earlier tests left, at the desktop size."""
    chromium.reset()
    yield chromium
    # Leave the page, so its open connections (an event stream) end before the
    # test's service stops.
    chromium.reset()


class LoopbackProxy:
    """A TCP relay on 127.0.0.1 in front of ``target`` (host, port) that can cut every
    connection through it at once, as a dropped network would: the way a test makes
    the browser lose its event stream without the service knowing why."""

    def __init__(self, target: tuple[str, int]) -> None:
        """Relay to ``target``; call :meth:`start` (or use ``with``) to listen."""
        self._target = target
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="proxy", daemon=True)
        self._writers: set[asyncio.StreamWriter] = set()
        self._server: asyncio.Server | None = None
        self._refusing = False
        self._answer: bytes | None = None
        #: Connections accepted so far (refused ones included).
        self.accepted = 0
        self.port = 0

    @property
    def url(self) -> str:
        """``http://127.0.0.1:PORT``."""
        return f"http://127.0.0.1:{self.port}"

    def _call(self, coroutine: Any, timeout: float = 10.0) -> Any:
        return asyncio.run_coroutine_threadsafe(coroutine, self._loop).result(timeout)

    def start(self) -> LoopbackProxy:
        """Listen on a free loopback port."""
        self._thread.start()

        async def listen() -> asyncio.Server:
            return await asyncio.start_server(self._relay, "127.0.0.1", 0)

        self._server = self._call(listen())
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
        except (ConnectionError, OSError):
            pass
        finally:
            writer.transport.abort()

    async def _relay(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.accepted += 1
        if self._refusing:
            if self._answer is not None:
                writer.write(self._answer)
                with contextlib.suppress(ConnectionError, OSError):
                    await writer.drain()
                writer.close()
            else:
                writer.transport.abort()
            return
        try:
            upstream_reader, upstream_writer = await asyncio.open_connection(*self._target)
        except OSError:
            writer.transport.abort()
            return
        pair = {writer, upstream_writer}
        self._writers |= pair
        try:
            await asyncio.gather(
                self._pipe(reader, upstream_writer), self._pipe(upstream_reader, writer)
            )
        finally:
            self._writers -= pair

    def drop(self) -> int:
        """Cut every open connection (both ends, at once); return how many were open."""

        async def cut() -> int:
            writers = list(self._writers)
            for writer in writers:
                writer.transport.abort()
            return len(writers) // 2

        return int(self._call(cut()))

    @contextmanager
    def down(self, answer: bytes | None = None) -> Iterator[None]:
        """The service is unreachable until the block ends: every open connection cut,
        and every new one closed as soon as it is made (a network error, which a
        browser retries) or, given ``answer``, answered with those bytes first (say a
        proxy's ``503``, after which an ``EventSource`` gives up)."""

        async def refuse(refusing: bool) -> None:
            self._refusing = refusing
            self._answer = answer

        self._call(refuse(True))
        self.drop()
        try:
            yield
        finally:
            self._call(refuse(False))

    def stop(self) -> None:
        """Cut everything and stop listening."""
        if self._server is not None:
            self.drop()
            self._server.close()
            self._call(self._server.wait_closed())
            self._server = None
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=10)
        self._loop.close()

    def __enter__(self) -> LoopbackProxy:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


@dataclass
class LiveService:
    """The service, served by a background thread: ``url`` for the browser, ``http``
    (an ``httpx.Client`` on that URL) for the test, ``app`` for its internals."""

    url: str
    app: Sanic
    http: httpx.Client
    _loop: asyncio.AbstractEventLoop

    def run(self, coroutine: Any, timeout: float = 10.0) -> Any:
        """Run ``coroutine`` on the app's event loop and return its result."""
        return asyncio.run_coroutine_threadsafe(coroutine, self._loop).result(timeout)


@contextmanager
def serving_live(app: Sanic) -> Iterator[LiveService]:
    """Serve ``app`` on 127.0.0.1 from a background thread until the block ends.

    The kit's :func:`~aura_livekit_backend.testing.client.serving` runs the event loop
    only while the test makes a request; a browser calls whenever it likes, so here
    the same loop runs in a thread in between, and the test calls over HTTP.
    """
    from aura_livekit_backend.testing.client import serving

    with serving(app) as client:
        loop: asyncio.AbstractEventLoop = client._client._loop
        thread = threading.Thread(target=loop.run_forever, name="service", daemon=True)
        thread.start()
        try:
            with httpx.Client(base_url=client.url, timeout=10) as http:
                yield LiveService(client.url, app, http, loop)
        finally:
            server = client._client._server
            asyncio.run_coroutine_threadsafe(_hang_up(server), loop).result(10)
            loop.call_soon_threadsafe(loop.stop)
            thread.join(timeout=10)
            # ``serving`` then runs the stop listeners on the loop, in this thread.


async def _hang_up(server: Any) -> None:
    """Stop accepting and end every connection, as Sanic does when it stops.

    A browser keeps its connections open (keep-alive, an event stream), and the
    kit's ``serving`` only closes the listening socket: left open, their tasks die
    with the loop (and Python 3.12's ``wait_closed`` would wait for them for ever).
    """
    server.server.close()
    for connection in list(server.connections):
        connection.close_if_idle()
    deadline = time.monotonic() + 1.0
    while server.connections and time.monotonic() < deadline:
        await asyncio.sleep(0.02)
    for connection in list(server.connections):
        connection.abort()
    # connection_lost callbacks and the cancelled handlers run on the next turns.
    for _ in range(5):
        await asyncio.sleep(0)


@pytest.fixture
def live_service(aura_settings: Callable[..., Settings]) -> Iterator[Callable[..., LiveService]]:
    """``live_service(settings=None, *, plugins=None, **fields)``: the app built as the
    console script builds it, served in the background until the test ends."""
    from aura_livekit_backend.app import create_app

    with ExitStack() as stack:

        def start(
            settings: Settings | None = None,
            *,
            plugins: dict[str, Any] | None = None,
            **fields: Any,
        ) -> LiveService:
            app = create_app(settings or aura_settings(**fields), plugins=plugins)
            return stack.enter_context(serving_live(app))

        yield start
