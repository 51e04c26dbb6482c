"""Hostile HTTP/1.1 on the wire: bad bytes in headers, control bytes in the target,
framing a proxy may read differently, slow clients, more connections than a worker holds.

Each is a 4xx in the one error shape (or a cut connection), never a 500, a silent hang
or a traceback. Requests go over a raw socket, byte for byte as written here: an HTTP
client would refuse to send most of them, or normalise them first.
"""

from __future__ import annotations

import asyncio
import json
import logging
import resource
import socket

import pytest
from service_processes import ServiceProcesses

from aura_livekit_backend.access import BearerKeys
from aura_livekit_backend.app import create_app
from aura_livekit_backend.http_limits import (
    FD_HEADROOM,
    MAX_CONNECTIONS_CEILING,
    default_max_connections,
    most_connections,
)
from aura_livekit_backend.settings import SettingsError
from aura_livekit_backend.testing.client import ServiceClient

KEY = "k-0123456789abcdef-hostile"
MODERATION_KEY = "m-0123456789abcdef-hostile"


def address(client: ServiceClient) -> tuple[str, int]:
    host, port = client.url.removeprefix("http://").split(":")
    return host, int(port)


def exchange(client: ServiceClient, request: bytes, timeout: float = 10) -> bytes:
    """Send ``request`` exactly as given on a fresh connection; every byte answered."""

    async def talk() -> bytes:
        reader, writer = await asyncio.open_connection(*address(client))
        writer.write(request)
        await writer.drain()
        try:
            return await asyncio.wait_for(reader.read(), timeout)
        finally:
            writer.close()

    return client.run(talk())


def parse(answer: bytes) -> tuple[int, bytes, dict]:
    """Status, head and JSON body (``{}`` if not JSON) of the first response in ``answer``."""
    head, _, rest = answer.partition(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1])
    fields = dict(line.lower().split(b": ", 1) for line in head.split(b"\r\n")[1:])
    if fields.get(b"content-type") != b"application/json":
        return status, head, {}
    return status, head, json.loads(rest[: int(fields[b"content-length"])])


def responses(answer: bytes) -> int:
    """How many responses ``answer`` holds: each carries a request id."""
    return answer.lower().count(b"\r\nx-request-id: ")


def assert_error(answer: bytes, status: int, message: str) -> None:
    got, head, body = parse(answer)
    assert (got, body) == (status, {"statusCode": status, "message": message}), answer
    assert b"content-type: application/json" in head.lower()


def request(
    method: bytes = b"GET",
    target: bytes = b"/api/health",
    headers: bytes = b"Host: test\r\n",
    body: bytes | None = None,
) -> bytes:
    """One request that closes its connection; ``Content-Length`` added for ``body``."""
    length = b"" if body is None else b"Content-Length: %d\r\n" % len(body)
    return (
        method + b" " + target + b" HTTP/1.1\r\n" + headers + length
        + b"Connection: close\r\n\r\n" + (body or b"")
    )  # fmt: skip


def quiet(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    """Records at WARNING or above, or carrying a traceback."""
    return [r for r in caplog.records if r.levelno >= logging.WARNING or r.exc_info]


# -- bad bytes in headers -------------------------------------------------------------

UNDECODABLE = [b"\xff", b"\xc3\x28", b"\xed\xa0\x80", b"a\x80b"]


@pytest.fixture
def keyed(serve, monkeypatch) -> ServiceClient:
    """The service with its API keys, the moderation plugin's, and CORS and proxy headers
    trusted: every code path that reads a header is switched on."""
    monkeypatch.setenv("AURA_MODERATION_API_KEYS", MODERATION_KEY)
    return serve(
        api_keys=KEY,
        cors_origins="https://app.example",
        proxies_count=1,
        real_ip_header="X-Real-IP",
        forwarded_secret="forwarded-secret",
    )


KEYED_ROUTES = [
    (b"GET", b"/api/rooms", None),
    (b"POST", b"/api/room/create", b'{"userName": "u"}'),
    (b"GET", b"/metrics", None),
    (b"DELETE", b"/api/room/some-room", None),  # the moderation plugin's
    (b"GET", b"/api/room/some-room/participants", None),  # the moderation plugin's
]


@pytest.mark.parametrize(("method", "target", "body"), KEYED_ROUTES)
def test_an_undecodable_authorization_is_a_wrong_key(keyed, method, target, body) -> None:
    for credentials in [b"Bearer " + value for value in UNDECODABLE] + [
        b"Bearer " + KEY.encode() + b"\xff",
        b"Bearer " + MODERATION_KEY.encode() + b"\xff",
        b"\xff " + KEY.encode(),
    ]:
        headers = b"Host: t\r\nAuthorization: " + credentials + b"\r\n"
        answer = exchange(keyed, request(method, target, headers, body))
        assert parse(answer)[0] == 401, (credentials, answer)


def test_keys_are_compared_as_the_bytes_sent(serve) -> None:
    key = "ключ-0123456789abcdef"  # non-ASCII: UTF-8 on the wire, as any client sends it
    client = serve(api_keys=key)
    sent = b"Host: t\r\nAuthorization: Bearer " + key.encode() + b"\r\n"
    assert parse(exchange(client, request(b"GET", b"/api/rooms", sent)))[0] == 200
    cp1251 = b"Host: t\r\nAuthorization: Bearer " + key.encode("cp1251") + b"\r\n"
    assert parse(exchange(client, request(b"GET", b"/api/rooms", cp1251)))[0] == 401


@pytest.mark.parametrize(
    "authorization", ["Bearer \udcff", "Bearer \ud800", f"Bearer {KEY}\udcc3", "\udcff"]
)
def test_bearer_keys_refuse_any_string_without_raising(authorization) -> None:
    assert BearerKeys([KEY]).admit(authorization) is False
    assert BearerKeys([KEY]).admit(f"Bearer {KEY}") is True


HEADERS = [
    b"Accept",
    b"Accept-Encoding",
    b"Accept-Language",
    b"Access-Control-Request-Headers",
    b"Access-Control-Request-Method",
    b"Connection",
    b"Content-Encoding",
    b"Content-Type",
    b"Cookie",
    b"Forwarded",
    b"If-None-Match",
    b"Origin",
    b"Range",
    b"Upgrade",
    b"User-Agent",
    b"X-Forwarded-For",
    b"X-Forwarded-Host",
    b"X-Forwarded-Proto",
    b"X-Real-IP",
    b"X-Request-ID",
]
ROUTES = [
    (b"GET", b"/api/health", None),
    (b"POST", b"/api/room/create", b'{"userName": "u"}'),
    (b"OPTIONS", b"/api/rooms", None),
    (b"GET", b"/docs/openapi.json", None),
    (b"GET", b"/nowhere", None),
    *KEYED_ROUTES,
]


@pytest.mark.parametrize("name", HEADERS)
def test_bytes_that_are_not_utf8_in_any_header_are_never_a_500(keyed, name, caplog) -> None:
    for value in [*UNDECODABLE, b"\xff;secret=forwarded-secret;for=10.0.0.1"]:
        for method, target, body in ROUTES:
            # With the key, so the handlers behind it read the request too.
            headers = b"Host: t\r\nAuthorization: Bearer " + KEY.encode() + b"\r\n"
            headers += name + b": " + value + b"\r\n"
            status, _, reply = parse(exchange(keyed, request(method, target, headers, body)))
            assert status < 500, (name, value, method, target, reply)
            if status >= 400:
                assert set(reply) == {"statusCode", "message"}, reply
    assert not quiet(caplog)


@pytest.mark.parametrize("expect", [b"\xff", b"\xc3\x28", b"102-processing"])
def test_an_expectation_other_than_100_continue_is_a_417(serve, expect) -> None:
    client = serve()
    headers = b"Host: t\r\nExpect: " + expect + b"\r\n"
    answer = exchange(client, request(b"POST", b"/api/room/create", headers, b'{"userName":"u"}'))
    assert_error(answer, 417, "Expect: only 100-continue is supported")


def test_expect_100_continue_still_works(serve) -> None:
    client = serve()
    headers = b"Host: t\r\nExpect: 100-continue\r\n"
    answer = exchange(client, request(b"POST", b"/api/room/create", headers, b'{"userName":"u"}'))
    interim, _, final = answer.partition(b"\r\n\r\n")
    assert interim == b"HTTP/1.1 100 Continue"
    assert parse(final)[0] == 200


# -- control bytes in the request target -----------------------------------------------

CONTROL_BYTES = [*range(0x00, 0x20), 0x7F]


def test_a_control_byte_in_the_target_is_a_400_and_logs_nothing(serve, caplog) -> None:
    client = serve()
    for byte in CONTROL_BYTES:
        for target in [b"/api/room/a%cb" % byte, b"/api/%c" % byte, b"/%c/health" % byte]:
            answer = exchange(client, request(target=target))
            assert_error(answer, 400, f"Request line contains a control character (U+{byte:04X})")
    assert not quiet(caplog)


@pytest.mark.parametrize("target", [b"http://a:b:c/", b"http://[::1/", b"http://a:99999999/"])
def test_a_target_the_url_parser_refuses_is_a_400_and_logs_nothing(serve, target, caplog) -> None:
    # Printable, but httptools refuses it: Sanic parsed it again to answer, and failed.
    answer = exchange(serve(), request(target=target))
    assert_error(answer, 400, f"Bad URL: {target.decode()}")
    assert not quiet(caplog)


# -- framing a proxy in front may read differently ---------------------------------------

BODY = b'{"userName":"u"}'  # 16 bytes: 0x10
SMUGGLED = b"GET /api/rooms HTTP/1.1\r\nHost: t\r\n\r\n"
ARABIC_16 = "١٦".encode()
CLOSE = b"Connection: close\r\n"


def post(headers: bytes, rest: bytes, close: bytes = b"") -> bytes:
    """A create request; the connection stays open unless ``close`` says otherwise."""
    return b"POST /api/room/create HTTP/1.1\r\nHost: t\r\n" + headers + close + b"\r\n" + rest


def chunked(rest: bytes, close: bytes = b"") -> bytes:
    return post(b"Transfer-Encoding: chunked\r\n", rest, close)


def chunks(size: bytes) -> bytes:
    """One chunk of BODY whose size line is ``size``, then the last chunk."""
    return chunked(size + b"\r\n" + BODY + b"\r\n0\r\n\r\n")


def get(headers: bytes, version: bytes = b"1.1") -> bytes:
    return b"GET /api/health HTTP/" + version + b"\r\n" + headers + b"\r\n"


def control(name: str, byte: int) -> str:
    return f"Header field {name} contains a control character (U+{byte:04X})"


SPACED = "Header field Content-Length: no whitespace is allowed around its name"
DIGITS = "Content-Length must be ASCII digits"
CHUNKED_ONLY = 'Transfer-Encoding: only "chunked" is supported'
BAD_CHUNKS = (
    "Bad chunked encoding: each chunk size must be hex digits, and chunk data must end with CRLF"
)
TOKEN = "Header field name is not a token"
ONE_HOST = "Host header must be sent once"

REFUSED = [
    # Content-Length a proxy may read differently
    (post(b"Content-Length : 16\r\n", BODY + SMUGGLED), SPACED),
    (post(b" Content-Length: 16\r\n", BODY), SPACED),
    (post(b"Content-Length: " + ARABIC_16 + b"\r\n", BODY), DIGITS),
    (post(b"Content-Length: +16\r\n", BODY), DIGITS),
    (post(b"Content-Length: 16, 16\r\n", BODY), DIGITS),
    (post(b"Content-Length:\r\n", BODY), DIGITS),
    # Sanic refuses these itself
    (post(b"Content-Length: 16\r\nContent-Length: 16\r\n", BODY), "Bad Request"),
    (post(b"Content-Length: 16\r\nTransfer-Encoding: chunked\r\n", b"0\r\n\r\n"), "Bad Request"),
    (post(b"Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n", b""), "Bad Request"),
    # Transfer-Encoding Sanic would misread
    (post(b"Transfer-Encoding: Chunked\r\n", b"10\r\n" + BODY + b"\r\n0\r\n\r\n"), CHUNKED_ONLY),
    (post(b"Transfer-Encoding: gzip, chunked\r\n", b"0\r\n\r\n"), CHUNKED_ONLY),
    # chunk sizes and what ends chunk data
    (chunks(b"0x10"), BAD_CHUNKS),
    (chunks(b" 10"), BAD_CHUNKS),
    (chunks(ARABIC_16), BAD_CHUNKS),
    (chunks(b"-10"), BAD_CHUNKS),
    (chunks(b"1_0"), BAD_CHUNKS),
    (chunks(b"00000000000000010"), BAD_CHUNKS),  # 17 digits
    (chunks(b"10\n"), BAD_CHUNKS),  # a bare LF ends the size line
    (chunked(b"10\r\n" + BODY + b"XX0\r\n\r\n"), BAD_CHUNKS),  # no CRLF after the data
    # Host, which HTTP/1.1 needs exactly once
    (get(b""), "HTTP/1.1 requests need a Host header"),
    (get(b"Host: a\r\nHost: b\r\n"), ONE_HOST),
    (get(b"Host: a\r\nHost: b\r\n", b"1.0"), ONE_HOST),
    (get(b"Host: a b\r\n"), "Host header is not a host name or address"),
    (get(b"Host: \xff\r\n"), "Host header is not a host name or address"),
    # control bytes in header values, field names that are not tokens
    (get(b"Host: t\r\nX-A: a\rb\r\n"), control("X-A", 0x0D)),
    (get(b"Host: t\r\nX-A: a\nb\r\n"), control("X-A", 0x0A)),
    (get(b"Host: t\r\nX-A: a\x00b\r\n"), control("X-A", 0x00)),
    (get(b"Host: t\r\nX-A: a\x7f\r\n"), control("X-A", 0x7F)),
    (get(b"Host: t\r\nX-A: \x1b[31m\r\n"), control("X-A", 0x1B)),
    (get(b"Host: t\r\nX\x00A: a\r\n"), TOKEN),
    (get(b"Host: t\r\nX(A): a\r\n"), TOKEN),
    (get(b"Host: t\r\n: a\r\n"), TOKEN),
    (b"G(T /api/health HTTP/1.1\r\nHost: t\r\n\r\n", "Malformed request line"),
]


@pytest.mark.parametrize(("raw", "message"), REFUSED)
def test_framing_a_proxy_may_read_differently_is_refused(serve, raw, message, caplog) -> None:
    client = serve()
    answer = exchange(client, raw)
    assert_error(answer, 400, message)
    # Refused and closed: nothing after the head is read as another request.
    assert responses(answer) == 1
    assert b"connection: close" in answer.lower()
    assert not quiet(caplog)


ACCEPTED = [
    chunked(b"10\r\n" + BODY + b"\r\n0\r\n\r\n", CLOSE),
    chunked(b"a\r\n" + BODY[:10] + b"\r\n6;ext=1\r\n" + BODY[10:] + b"\r\n0\r\n\r\n", CLOSE),
    chunked(b"0010 ;name\r\n" + BODY + b"\r\n0\r\n\r\n", CLOSE),
    post(b"Content-Length: 16  \r\n", BODY, CLOSE),
    post(b"Content-Length: 016\r\n", BODY, CLOSE),
    post(b"content-length:16\r\n", BODY, CLOSE),
    b"POST /api/room/create HTTP/1.0\r\nContent-Length: 16\r\n\r\n" + BODY,  # 1.0 needs no Host
    post(b"X-Name: \xc3\xa9t\xc3\xa9\tand obs-text \xff\r\nContent-Length: 16\r\n", BODY, CLOSE),
    b"POST /api/room/create HTTP/1.1\r\nHost: [::1]:8000\r\nContent-Length: 16\r\n"
    + CLOSE
    + b"\r\n"
    + BODY,
]


@pytest.mark.parametrize("raw", ACCEPTED)
def test_well_formed_framing_still_works(serve, raw) -> None:
    client = serve()
    status, _, reply = parse(exchange(client, raw))
    assert status == 200, reply
    assert reply["userName"] == "u"


def test_content_length_zero_on_a_get_is_no_body(serve, caplog) -> None:
    # Sanic would log "body not consumed" at ERROR after every such GET.
    client = serve()
    answer = exchange(client, request(body=b""))
    assert parse(answer)[0] == 200
    assert not quiet(caplog)


# -- slow clients -----------------------------------------------------------------------

CREATE = b"POST /api/room/create HTTP/1.1\r\nHost: t\r\n"
HEALTH = b"GET /api/health HTTP/1.1\r\nHost: t\r\n"
DRIPS = {
    "silent": (b"", b""),
    "head": (HEALTH, b"X-Slow: " + b"a" * 200),
    "body": (CREATE + b"Content-Length: 200\r\n\r\n", b"a" * 200),
    "chunks": (CREATE + b"Transfer-Encoding: chunked\r\n\r\n", b"1\r\na\r\n" * 40),
    "next request": (HEALTH + b"\r\n" + HEALTH, b"X-Slow: " + b"a" * 200),
}
STEP = 0.1  # seconds between two dripped bytes: 200 bytes take 20 s


def drip(client: ServiceClient, first: bytes, rest: bytes) -> tuple[bytes, int]:
    """Send ``first``, then ``rest`` a byte every STEP, until the server hangs up or
    ``rest`` runs out (then wait up to 20 s for it to hang up). Every byte answered, and
    how many of ``rest`` were sent."""

    async def talk() -> tuple[bytes, int]:
        reader, writer = await asyncio.open_connection(*address(client))
        writer.write(first)
        answer, sent = b"", 0
        try:
            for sent in range(len(rest) + 1):
                try:
                    data = await asyncio.wait_for(reader.read(65536), STEP)
                except asyncio.TimeoutError:
                    data = None
                if data == b"":
                    return answer, sent  # hung up on us
                answer += data or b""
                if sent < len(rest):
                    writer.write(rest[sent : sent + 1])
                    await writer.drain()
            while data := await asyncio.wait_for(reader.read(65536), 20):
                answer += data
            return answer, len(rest)
        except ConnectionError:
            return answer, sent
        finally:
            writer.close()

    return client.run(talk())


@pytest.mark.parametrize("kind", DRIPS)
def test_a_slow_drip_is_cut_off_at_the_request_deadline(serve, kind, caplog) -> None:
    client = serve(request_timeout=1)
    first, rest = DRIPS[kind]
    answer, sent = drip(client, first, rest)
    # Sanic alone restarts its timeouts on every byte: the drip would go on until done.
    assert sent < len(rest) or not rest
    if kind == "silent":
        assert answer == b""  # nothing asked, nothing answered: just closed
    else:
        if kind == "next request":  # the first request was answered in time
            answer = answer[answer.index(b"HTTP/1.1 ", 1) :]
        assert_error(answer, 408, "Request Timeout: the request did not arrive within 1 s")
    assert not quiet(caplog)


def test_the_deadline_is_per_request_not_per_connection(serve) -> None:
    client = serve(request_timeout=1)
    one = b"GET /api/health HTTP/1.1\r\nHost: t\r\n\r\n"

    async def talk() -> list[bytes]:
        reader, writer = await asyncio.open_connection(*address(client))
        answers = []
        for _ in range(3):
            for i in range(0, len(one), 10):  # each request in 4 pieces, 0.3 s in all
                writer.write(one[i : i + 10])
                await asyncio.sleep(0.075)
            answers.append(await asyncio.wait_for(reader.readuntil(b"}"), 10))
            await asyncio.sleep(1.5)  # idle longer than the deadline: keep-alive's business
        writer.close()
        return answers

    assert [parse(a)[0] for a in client.run(talk())] == [200, 200, 200]


def test_an_idle_connection_is_closed_after_the_keep_alive_timeout(serve) -> None:
    client = serve(keep_alive_timeout=1, request_timeout=30)

    async def talk() -> tuple[bytes, bytes]:
        reader, writer = await asyncio.open_connection(*address(client))
        writer.write(b"GET /api/health HTTP/1.1\r\nHost: t\r\n\r\n")
        answer = await asyncio.wait_for(reader.readuntil(b"}"), 10)
        rest = await asyncio.wait_for(reader.read(), 20)  # b"" once the server hangs up
        writer.close()
        return answer, rest

    answer, rest = client.run(talk())
    assert parse(answer)[0] == 200 and b"connection: keep-alive" in answer
    assert rest == b""


# -- the connection cap -----------------------------------------------------------------


Connection = tuple[asyncio.StreamReader, asyncio.StreamWriter]


async def still_open(connections: list[Connection]) -> list[bytes | None]:
    """For each connection: None if the server still holds it, else all it answered."""

    async def check(reader: asyncio.StreamReader) -> bytes | None:
        try:
            return await asyncio.wait_for(reader.read(), 0.5)
        except asyncio.TimeoutError:
            return None
        except ConnectionError:
            return b""

    return list(await asyncio.gather(*(check(reader) for reader, _ in connections)))


async def health(client: ServiceClient) -> bytes:
    reader, writer = await asyncio.open_connection(*address(client))
    writer.write(request())
    try:
        return await asyncio.wait_for(reader.read(), 10)
    finally:
        writer.close()


def test_at_the_cap_the_longest_idle_connections_make_room(serve, caplog) -> None:
    cap, extra = 4, 3
    client = serve(max_connections=cap, request_timeout=60)

    async def flood() -> tuple[bytes, list[bytes | None]]:
        silent = [await asyncio.open_connection(*address(client)) for _ in range(cap + extra)]
        await asyncio.sleep(0.3)  # the server accepts them all
        answer = await health(client)
        states = await still_open(silent)
        for _, writer in silent:
            writer.close()
        return answer, states

    answer, states = client.run(flood())
    assert parse(answer)[0] == 200
    # The health check's connection took one of the cap's places while it was served.
    assert states.count(None) == cap - 1
    for state in states:
        # Closed to make room (nothing said), or refused: then the answer says why.
        if state:
            assert_error(state, 503, "Too many open connections: try again shortly")
    shed = [r for r in caplog.records if r.name == "aura_livekit_backend.http_limits"]
    assert len(shed) == 1  # one line, however many were shed in the next 10 s
    assert shed[0].levelno == logging.WARNING
    assert (
        "connection limit reached (AURA_MAX_CONNECTIONS=4 in this worker)" in shed[0].getMessage()
    )


def test_at_the_cap_with_every_connection_busy_a_new_one_is_refused(serve) -> None:
    cap = 2
    client = serve(max_connections=cap, request_timeout=60)
    partial = b"GET /api/health HTTP/1.1\r\nHost: t\r\n"

    async def flood() -> tuple[bytes, bytes, bytes]:
        busy = []
        for _ in range(cap):
            reader, writer = await asyncio.open_connection(*address(client))
            writer.write(partial)  # a request under way: not idle
            busy.append((reader, writer))
        await asyncio.sleep(0.3)
        refused = await health(client)
        # One busy request completes: its connection is idle then, and makes room.
        reader, writer = busy[0]
        writer.write(b"\r\n")
        finished = await asyncio.wait_for(reader.readuntil(b"}"), 10)
        admitted = await health(client)
        for _, writer in busy:
            writer.close()
        return refused, finished, admitted

    refused, finished, admitted = client.run(flood())
    assert_error(refused, 503, "Too many open connections: try again shortly")
    assert b"retry-after: 1" in refused.lower()
    assert parse(finished)[0] == 200
    assert parse(admitted)[0] == 200


@pytest.mark.parametrize(
    ("open_files", "cap"),
    [(1024, 1024 - FD_HEADROOM), (256, 128), (10, 5), (1, 1), (1 << 20, MAX_CONNECTIONS_CEILING)],
)
def test_the_default_cap_leaves_file_descriptors_for_the_rest(open_files, cap) -> None:
    assert default_max_connections(open_files) == cap
    assert default_max_connections(open_files) <= most_connections(open_files) <= open_files


def test_a_cap_the_open_file_limit_cannot_hold_is_refused_at_start(make_settings) -> None:
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    most = most_connections()
    assert most == most_connections(soft)
    with pytest.raises(SettingsError, match=rf"^AURA_MAX_CONNECTIONS: at most {most} with this"):
        create_app(make_settings(max_connections=most + 1))
    app = create_app(make_settings(max_connections=most))
    assert app.ctx.connection_guard.limit == most


# -- the console script ----------------------------------------------------------------


@pytest.mark.processes
def test_the_console_scripts_workers_are_guarded_too() -> None:
    """The same limits on the service as deployed: the console script, two workers."""
    cap, timeout = 8, 1
    env = {"AURA_MAX_CONNECTIONS": str(cap), "AURA_REQUEST_TIMEOUT": str(timeout)}
    with ServiceProcesses(workers=2, env=env) as stack:
        host, port = stack.url.removeprefix("http://").split(":")

        def connect() -> socket.socket:
            return socket.create_connection((host, int(port)), timeout=20)

        with connect() as bad:
            bad.sendall(request(target=b"/api/\x01"))
            answer = b"".join(iter(lambda: bad.recv(65536), b""))
        assert_error(answer, 400, "Request line contains a control character (U+0001)")

        silent = [connect() for _ in range(5 * cap)]
        try:
            with connect() as probe:  # answered, though the workers are at their caps
                probe.sendall(request())
                assert parse(b"".join(iter(lambda: probe.recv(65536), b"")))[0] == 200
            held = []
            for connection in silent:
                connection.settimeout(0.05)
                try:
                    connection.recv(65536)  # b"" (or a 503): the server hung up
                except TimeoutError:
                    held.append(connection)
                except ConnectionError:
                    pass
            assert 1 <= len(held) <= 2 * cap
            # And a connection that says nothing is closed at the request deadline.
            held[0].settimeout(20)
            assert held[0].recv(65536) == b""
        finally:
            for connection in silent:
                connection.close()
    assert "Traceback" not in stack.service_log
