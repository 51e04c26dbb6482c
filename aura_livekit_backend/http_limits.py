"""HTTP/1.1 at the door: strict request heads, request deadlines, a connection cap.

Sanic 25.12 reads HTTP/1.1 leniently and lets a slow client keep a connection for as
long as it likes:

- its request and response timeouts restart on every byte received, so a client
  sending a byte a second holds a connection forever, and it has no cap on open
  connections: silent ones use up the worker's file descriptors and the health
  probes fail;
- it accepts what a proxy in front may read differently — ``Content-Length : 17``
  (ignored, so the body is read as the next request), a Content-Length in Arabic-Indic
  digits, chunk sizes ``0x11`` or `` 11``, any two bytes where CRLF ends chunk data,
  bare CR and NUL in header values, no Host or two — the stuff of request smuggling;
- a control byte in the request target fails again while it builds the error answer:
  the client gets none and the log a long traceback.

This module closes those gaps for the service's app, however it is started (the
console script, ``sanic … --factory``, the test kit): :class:`GuardedSanic` serves
with :class:`GuardedHttpProtocol`, :class:`StrictHttp` and :class:`StrictRequest`
unless told otherwise, and :func:`install` applies ``AURA_REQUEST_TIMEOUT``,
``AURA_KEEP_ALIVE_TIMEOUT`` and ``AURA_MAX_CONNECTIONS``. It is a second line, not
the first: run the service behind a proxy that normalises HTTP/1.1 (nginx, Envoy,
HAProxy).
"""

from __future__ import annotations

import asyncio
import logging
import re
import resource
import time
from collections.abc import Iterable
from types import SimpleNamespace
from typing import Any

from sanic import DefaultSanic, Request, Sanic
from sanic.compat import Header
from sanic.config import Config
from sanic.exceptions import BadRequest, ExpectationFailed, RequestTimeout
from sanic.http import Http, Stage
from sanic.server.protocols.http_protocol import HttpProtocol

from .settings import Settings, SettingsError

__all__ = [
    "ConnectionGuard",
    "GuardedHttpProtocol",
    "GuardedSanic",
    "StrictHttp",
    "StrictRequest",
    "default_max_connections",
    "install",
    "most_connections",
]

logger = logging.getLogger(__name__)

#: File descriptors a worker keeps for everything but client connections: its LiveKit
#: connection pool (aiohttp opens up to 100), logs, the listening socket, the loop.
FD_HEADROOM = 256
#: The default cap never goes above this, however high the open-file limit.
MAX_CONNECTIONS_CEILING = 10_000
#: Seconds between two log lines about shedding connections.
SHED_REPORT_SECONDS = 10.0

# RFC 9110 §5.6.2: the characters of a token (a method, a header field name).
_TCHAR = rb"!#$%&'*+\-.^_`|~0-9A-Za-z"
# The whole head as RFC 9112 has it: method SP target SP version, then `name:value`
# lines, names tokens (no whitespace before the colon), values HTAB, SP, visible ASCII
# or obs-text: no NUL, no bare CR or LF, no other control byte. Sanic has split it at
# CRLF, so a CR or LF left in a line is a bare one.
_HEAD = re.compile(
    rb"[" + _TCHAR + rb"]+ [!-~]+ HTTP/1\.[01]"
    rb"(?:\r\n[" + _TCHAR + rb"]+:[\t\x20-\x7e\x80-\xff]*)*"
)
_TOKEN = re.compile(rb"[" + _TCHAR + rb"]+")
_CONTROL = re.compile(rb"[\x00-\x08\x0a-\x1f\x7f]")  # HTAB is whitespace in a header value
_CONTROL_OR_TAB = re.compile(rb"[\x00-\x1f\x7f]")
_DIGITS = re.compile(r"[0-9]+")  # ASCII only: int() takes Arabic-Indic digits too
# RFC 3986 host [":" port], or an IP literal in brackets; empty is allowed (RFC 9112 §3.2).
_HOST = re.compile(r"[A-Za-z0-9\-._~!$&'()*+,;=%]*(?::[0-9]*)?|\[[0-9A-Fa-f:.]+\](?::[0-9]*)?")
# What ends chunk data and sizes the next chunk: CRLF, 1 to 16 hex digits, maybe extensions.
_CHUNK_LINE = re.compile(rb"\r\n[0-9A-Fa-f]{1,16}(?:[ \t]*;[\t\x20-\x7e\x80-\xff]*)?")
_CHUNK_LINE_MAX = 64  # as Sanic: a longer size line is refused


def _codepoint(byte: int) -> str:
    return f"U+{byte:04X}"


def _name(raw: bytes) -> str:
    # Only ever a token here: safe to echo, and short.
    return raw[:64].decode("ascii")


def _head_problem(head: bytes) -> str:
    """What is wrong with a head :data:`_HEAD` refused, in a message safe to echo."""
    request_line, *fields = head.split(b"\r\n")
    if bad := _CONTROL_OR_TAB.search(request_line):
        return f"Request line contains a control character ({_codepoint(bad[0][0])})"
    for line in fields:
        name, _, value = line.partition(b":")
        if not _TOKEN.fullmatch(name):
            stripped = name.strip(b" \t")
            if _TOKEN.fullmatch(stripped):
                return f"Header field {_name(stripped)}: no whitespace is allowed around its name"
            return "Header field name is not a token"
        if bad := _CONTROL.search(value):
            return (
                f"Header field {_name(name)} contains a control character ({_codepoint(bad[0][0])})"
            )
    return "Malformed request line"


def _check_head(head: bytes, headers: Header, version: str) -> None:
    """Refuse what a proxy in front might read differently than Sanic does."""
    if not _HEAD.fullmatch(head):
        raise BadRequest(_head_problem(head))
    hosts = headers.getall("host", [])
    if len(hosts) > 1:
        raise BadRequest("Host header must be sent once")
    if version == "1.1" and not hosts:
        raise BadRequest("HTTP/1.1 requests need a Host header")
    if hosts and not _HOST.fullmatch(hosts[0].strip(" \t")):
        raise BadRequest("Host header is not a host name or address")
    # Sanic itself refuses a second Content-Length or Transfer-Encoding, or both.
    length = headers.get("content-length")
    if length is not None and not _DIGITS.fullmatch(length.strip(" \t")):
        raise BadRequest("Content-Length must be ASCII digits")
    coding = headers.get("transfer-encoding")
    if coding is not None and coding != "chunked":
        # Exactly what Sanic reads as chunked; anything else it would misread.
        raise BadRequest('Transfer-Encoding: only "chunked" is supported')
    for expectation in headers.getall("expect", []):
        # Sanic would echo the value in its 417, undecodable bytes and all.
        if expectation.lower() != "100-continue":
            raise ExpectationFailed("Expect: only 100-continue is supported")


def _printable(target: bytes) -> bytes:
    """``target`` with every byte outside visible ASCII percent-encoded."""
    return re.sub(rb"[^!-~]", lambda match: b"%%%02X" % match[0][0], target)


class StrictRequest(Request):
    """A request whose head was checked before Sanic acts on it.

    Refuses, with a 400 naming the problem: control bytes (NUL, bare CR or LF, …)
    anywhere in the head, header field names that are not tokens or have whitespace
    before the colon, a missing (HTTP/1.1) or repeated Host, a Content-Length that is
    not ASCII digits, a Transfer-Encoding other than ``chunked``; and an ``Expect``
    other than ``100-continue`` with a 417.
    """

    __slots__ = ()

    def __init__(
        self,
        url_bytes: bytes,
        headers: Header,
        version: str,
        method: str,
        transport: Any,
        app: Any,
        head: bytes = b"",
        stream_id: int = 0,
    ) -> None:
        """Check ``head`` (Sanic passes the raw bytes), then build the request as Sanic does."""
        if head:
            _check_head(head, headers, version)
        else:
            # Without a head this is Sanic's stand-in for answering an error that came
            # before any request existed (or a request an ASGI server parsed). The
            # stand-in reuses the target that failed, so it must not fail on it again:
            # that would leave the client with no answer and the log with a traceback.
            url_bytes = _printable(url_bytes)
        try:
            super().__init__(url_bytes, headers, version, method, transport, app, head, stream_id)
        except BadRequest:
            if head:
                raise
            super().__init__(b"/", headers, version, method, transport, app, head, stream_id)


class StrictHttp(Http):
    """Sanic's HTTP/1.1 reader, refusing malformed chunk framing and marking when a
    request has been read in full (so :class:`GuardedHttpProtocol` stops its clock)."""

    __slots__ = ("reading",)

    def __init__(self, protocol: Any) -> None:
        """As Sanic's."""
        super().__init__(protocol)
        self.reading = False

    def init_for_request(self) -> None:
        """Reset per-request state, as Sanic does."""
        super().init_for_request()
        self.reading = False

    async def http1_request_header(self) -> None:
        """Read the head; a request without a body has then arrived in full."""
        await super().http1_request_header()
        # Sanic annotates request_body as bytes, but keeps True or "chunked" in it here.
        body: Any = self.request_body
        if body is True and not self.request_bytes_left:
            # Content-Length: 0 is no body. Sanic would keep waiting to "read" it, and log
            # an error ("body not consumed") after every GET that sends the header.
            self.request_body = None
        if not self.request_body:
            self._read_in_full()

    async def read(self) -> bytes | None:
        """Read some of the body, checking each chunk's framing before Sanic reads it."""
        self.reading = True
        try:
            body: Any = self.request_body  # "chunked", whatever Sanic's annotation says
            if body == "chunked" and self.request_bytes_left == 0:
                await self._check_chunk_line()
            data = await super().read()
        finally:
            self.reading = False
        if not self.request_body:
            self._read_in_full()
        return data

    def _read_in_full(self) -> None:
        if isinstance(self.protocol, GuardedHttpProtocol):
            self.protocol.request_read()

    async def _check_chunk_line(self) -> None:
        # Sanic skips the two bytes that end chunk data without looking, and reads the
        # size with int(), which takes "0x11", " 11" and Arabic-Indic digits.
        buffer = self.recv_buffer
        while (end := buffer.find(b"\r\n", 2)) == -1:
            if len(buffer) > _CHUNK_LINE_MAX:
                break
            await self._receive_more()
        if end == -1 or not _CHUNK_LINE.fullmatch(buffer, 0, end):
            self.keep_alive = False
            raise BadRequest(
                "Bad chunked encoding: each chunk size must be hex digits, "
                "and chunk data must end with CRLF"
            )


class ConnectionGuard:
    """One worker's cap on open connections, and its rate-limited report of shedding."""

    def __init__(self, limit: int) -> None:
        """Allow ``limit`` open connections."""
        self.limit = limit
        self._closed_idle = 0
        self._refused = 0
        self._reported = float("-inf")

    def make_room(self, connections: Iterable[HttpProtocol]) -> bool:
        """At the cap: close the longest-idle connection and return True, or return
        False when every connection is busy (the new one is then refused)."""
        idle = [c for c in connections if _idle(c)]
        if idle:
            min(idle, key=lambda c: c._time).close()
            self._closed_idle += 1
        else:
            self._refused += 1
        self._report()
        return bool(idle)

    def _report(self) -> None:
        now = time.monotonic()
        if now - self._reported < SHED_REPORT_SECONDS:
            return
        logger.warning(
            "connection limit reached (AURA_MAX_CONNECTIONS=%d in this worker): each new "
            "connection closes the longest-idle one, or is refused if none is idle "
            "(since the last report: %d closed, %d refused)",
            self.limit,
            self._closed_idle,
            self._refused,
        )
        self._reported, self._closed_idle, self._refused = now, 0, 0


def _idle(connection: HttpProtocol) -> bool:
    """Open, between requests, and holding no unread bytes."""
    http = connection.http
    transport = connection.transport
    return (
        http is not None
        and transport is not None
        and not transport.is_closing()
        and http.stage is Stage.IDLE
        and not http.request_body
        and not connection.recv_buffer
    )


_REFUSAL_BODY = b'{"statusCode":503,"message":"Too many open connections: try again shortly"}'
_REFUSAL = (
    b"HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json\r\n"
    b"retry-after: 1\r\nconnection: close\r\ncontent-length: %d\r\n\r\n%b"
    % (len(_REFUSAL_BODY), _REFUSAL_BODY)
)


class GuardedHttpProtocol(HttpProtocol):
    """Sanic's HTTP/1.1 protocol with a total deadline per request and a connection cap.

    A request's line, headers and body must arrive within ``REQUEST_TIMEOUT`` of its
    first byte (a new connection's first request: of the connection opening), however
    the bytes trickle in; later, the client gets a 408 and the connection closes.
    Sanic's own timeouts still apply to the rest (keep-alive, the handler's answer).

    At the app's :class:`ConnectionGuard` limit a new connection closes the
    longest-idle one, or is answered 503 and closed when none is idle.
    """

    HTTP_CLASS = StrictHttp
    __slots__ = ("_read_timer", "_refused")

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        """As Sanic's protocol."""
        super().__init__(*args, **kwargs)
        self._read_timer: asyncio.TimerHandle | None = None
        self._refused = False

    def connection_made(self, transport: Any) -> None:
        """Take the connection if the cap allows, and start the first request's clock."""
        guard: ConnectionGuard | None = getattr(self.app.ctx, "connection_guard", None)
        if (
            guard is not None
            and len(self.connections) >= guard.limit
            and not guard.make_room(self.connections)
        ):
            self._refused = True
            transport.write(_REFUSAL)
            transport.close()
            return
        super().connection_made(transport)
        self._start_clock()

    def connection_lost(self, exc: Exception | None) -> None:
        """Forget the connection (a refused one was never Sanic's)."""
        self._stop_clock()
        if not self._refused:
            super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        """Buffer ``data``; the first byte of a request starts its clock."""
        if self._read_timer is None and data and not self._refused:
            self._start_clock()
        super().data_received(data)

    def request_read(self) -> None:
        """The request has arrived in full: stop its clock (bytes already buffered
        belong to the next request, whose clock starts now)."""
        self._stop_clock()
        if self.recv_buffer:
            self._start_clock()

    def _start_clock(self) -> None:
        self._read_timer = self.loop.call_later(self.request_timeout, self._too_slow)

    def _stop_clock(self) -> None:
        if self._read_timer is not None:
            self._read_timer.cancel()
            self._read_timer = None

    def _too_slow(self) -> None:
        self._read_timer = None
        http, task = self.http, self._task
        if http is None or task is None:
            return
        if http.stage in (Stage.HANDLER, Stage.RESPONSE, Stage.FAILED) and not http.reading:
            # The handler runs or answers (a body it chose not to read waits until it
            # has): the service is not waiting on the client, Sanic's response timeout
            # covers this. Check again later.
            self._start_clock()
            return
        if http.stage is not Stage.IDLE:
            # Answered (408) and closed by Sanic, as for its own request timeout...
            http.exception = RequestTimeout(
                f"Request Timeout: the request did not arrive within {self.request_timeout:g} s"
            )
            # ...without first reading the rest of the body, as it would after an error.
            http.request_body = None
        task.cancel()


class GuardedSanic(Sanic[Config, SimpleNamespace]):
    """A Sanic app that serves with :class:`GuardedHttpProtocol` and
    :class:`StrictRequest` unless given others.

    An app with websocket routes keeps Sanic's websocket protocol (this service has none).
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        """As :class:`~sanic.Sanic`, with :class:`StrictRequest` as the request class."""
        kwargs.setdefault("request_class", StrictRequest)
        super().__init__(*args, **kwargs)

    def _protocol(self, protocol: Any) -> Any:
        if protocol is None and not self.websocket_enabled:
            return GuardedHttpProtocol
        return protocol

    def prepare(self, *args: Any, protocol: Any = None, **kwargs: Any) -> None:
        """As :meth:`Sanic.prepare` (used by ``run`` and our console script)."""
        super().prepare(*args, protocol=self._protocol(protocol), **kwargs)

    async def create_server(self, *args: Any, protocol: Any = None, **kwargs: Any) -> Any:
        """As :meth:`Sanic.create_server` (used by the test kit)."""
        return await super().create_server(*args, protocol=self._protocol(protocol), **kwargs)


def most_connections(open_files: int | None = None) -> int:
    """The most connections a worker whose open-file limit is ``open_files`` (this
    process's soft ``RLIMIT_NOFILE`` when omitted) can hold, leaving room for the rest."""
    if open_files is None:
        open_files = _open_file_limit()
    return max(1, open_files // 2, open_files - FD_HEADROOM)


def default_max_connections(open_files: int | None = None) -> int:
    """The connection cap when ``AURA_MAX_CONNECTIONS`` is not set: :func:`most_connections`,
    at most :data:`MAX_CONNECTIONS_CEILING`."""
    return min(MAX_CONNECTIONS_CEILING, most_connections(open_files))


def _open_file_limit() -> int:
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    return 2**20 if soft == resource.RLIM_INFINITY else soft


def install(app: DefaultSanic, settings: Settings) -> None:
    """Apply the request deadline, keep-alive timeout and connection cap to ``app``.

    Raises :class:`~aura_livekit_backend.settings.SettingsError` when
    ``AURA_MAX_CONNECTIONS`` is more than the open-file limit leaves room for.
    """
    # Sanic reads both as seconds, fractions included (its Config annotates int).
    app.config.update(
        REQUEST_TIMEOUT=settings.request_timeout, KEEP_ALIVE_TIMEOUT=settings.keep_alive_timeout
    )
    limit = settings.max_connections
    if limit is None:
        limit = default_max_connections()
    elif limit > (most := most_connections()):
        raise SettingsError(
            f"AURA_MAX_CONNECTIONS: at most {most} with this open-file limit "
            f"(ulimit -n {_open_file_limit()}, less what LiveKit and logs need); "
            "raise the limit or lower the setting"
        )
    app.ctx.connection_guard = ConnectionGuard(limit)
