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

import pytest

from aura_livekit_backend.access import BearerKeys
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
