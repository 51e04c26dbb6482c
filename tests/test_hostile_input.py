"""Hostile input on every endpoint: a 4xx in the one error shape, naming the problem.

Requests go over a raw socket, byte for byte as written here: an HTTP client would
normalise ``..`` away, refuse bad percent-encodings or fix the Content-Length.

Every test here only reads, or creates rooms it does not count, so the module shares
one served app and one emulator. Tables of values that one code path judges (the body
models' fields) are unit tests on the models; over HTTP each endpoint keeps cases of
its own, and every value whose bytes on the wire matter (JSON literals such as
``Infinity``, escapes, sizes) goes over the wire. Where one code path serves several
endpoints (the body parser, Sanic's 405), the cases are spread over the endpoints
instead of crossed with them.
"""

from __future__ import annotations

import asyncio
import json

import pytest
from pydantic import BaseModel, ValidationError

from aura_livekit_backend.emulator import LiveKitEmulator
from aura_livekit_backend.endpoints.rooms import CreateRoom
from aura_livekit_backend.endpoints.tokens import JoinRoom
from aura_livekit_backend.testing.client import ServiceClient
from aura_livekit_backend.validation import PARTICIPANT_CAP, describe


def raw(
    client: ServiceClient, method: str, path: bytes, body: bytes = b"", headers: bytes = b""
) -> tuple[int, dict]:
    """Send one request exactly as given; its status and JSON body."""
    host, port = client.url.removeprefix("http://").split(":")

    async def exchange() -> bytes:
        reader, writer = await asyncio.open_connection(host, int(port))
        writer.write(
            method.encode() + b" " + path + b" HTTP/1.1\r\nHost: test\r\nConnection: close\r\n"
            + headers + b"Content-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body
        )  # fmt: skip
        await writer.drain()
        answer = await asyncio.wait_for(reader.read(), 10)
        writer.close()
        return answer

    answer = client.run(exchange())
    head, _, content = answer.partition(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1])
    assert b"content-type: application/json" in head.lower(), head
    return status, json.loads(content)


def assert_error(status: int, reply: dict, expected: int, message: str) -> None:
    assert (status, set(reply)) == (expected, {"statusCode", "message"}), reply
    assert reply["statusCode"] == expected
    assert reply["message"].startswith(message), reply["message"]


@pytest.fixture(scope="module")
def client(module_aura_client) -> ServiceClient:
    return module_aura_client(room_list_cache_seconds=0)


@pytest.fixture(scope="module")
def livekit(module_livekit_emulator) -> LiveKitEmulator:
    return module_livekit_emulator


@pytest.fixture(scope="module")
def room(client) -> str:
    return client.post("/api/room/create", json={"userName": "host"}).json["roomId"]


def refusal(model: type[BaseModel], body: dict) -> str:
    """What the API answers for ``body`` (``describe``), as ``model`` refuses it."""
    with pytest.raises(ValidationError) as refused:
        model.model_validate(body, context={PARTICIPANT_CAP: 1000})
    return describe(refused.value)


def spread(cases: list, over: list) -> list:
    """Each case with one of ``over`` in turn: every case and every one of ``over`` runs."""
    assert len(cases) >= len(over)
    return [(over[i % len(over)], *case) for i, case in enumerate(cases)]


# -- bodies ---------------------------------------------------------------------------

JSON = b"content-type: application/json\r\n"
DEEP = 20_000  # deeper than Python's JSON parser recurses, well under the body limit

#: Bodies no JSON endpoint accepts, whatever its fields.
BAD_BODIES = [
    (b"", "Request body is empty: send a JSON object"),
    (b"  \r\n ", "Request body is empty: send a JSON object"),
    (b"\xff\xfe{}", "Request body is not UTF-8 text"),
    (b'{"userName": "\xc3\x28"}', "Request body is not UTF-8 text"),
    (b"hello", "Request body is not valid JSON"),
    (b"{", "Request body is not valid JSON"),
    (b"{'userName': 'a'}", "Request body is not valid JSON"),
    (b"[" * DEEP + b"]" * DEEP, "Request body is not valid JSON"),
    (b'{"userName": ' + b"[" * DEEP + b"]" * DEEP + b"}", "Request body is not valid JSON"),
    (b'{"userName": ' + b"9" * 5000 + b"}", "Request body is not valid JSON"),
    (b"[]", "Request body must be a JSON object"),
    (b"null", "Request body must be a JSON object"),
    (b"true", "Request body must be a JSON object"),
    (b"42", "Request body must be a JSON object"),
    (b'"userName"', "Request body must be a JSON object"),
]

#: userName values every JSON endpoint refuses, with the start of the message.
BAD_USER_NAMES = [
    (None, "userName: Input should be a valid string"),
    (True, "userName: Input should be a valid string"),
    (42, "userName: Input should be a valid string"),
    (1.5, "userName: Input should be a valid string"),
    (float("inf"), "userName: Input should be a valid string"),  # json.dumps writes Infinity
    (10**300, "userName: Input should be a valid string"),
    (["a"], "userName: Input should be a valid string"),
    ({"a": "b"}, "userName: Input should be a valid string"),
    ([[[[[[[[[[["deep"]]]]]]]]]]], "userName: Input should be a valid string"),
    ("", "userName: must not be empty or blank"),
    ("\u3000", "userName: must not be empty or blank"),  # an ideographic space is blank too
    ("x" * 129, "userName: must be at most 128 characters"),
    ("x" * 60_000, "userName: must be at most 128 characters"),
    ("nul\u0000", "userName: must not contain control or invisible characters (U+0000)"),
    ("line\nbreak", "userName: must not contain control or invisible characters (U+000A)"),
    ("nel\u0085", "userName: must not contain control or invisible characters (U+0085)"),
    ("admin\u202e", "userName: must not contain control or invisible characters (U+202E)"),
    ("\u2066ltr", "userName: must not contain control or invisible characters (U+2066)"),
    ("zero\u200bwidth", "userName: must not contain control or invisible characters (U+200B)"),
    ("\ufeffbom", "userName: must not contain control or invisible characters (U+FEFF)"),
    ("lone\ud800", "userName: must not contain control or invisible characters (U+D800)"),
    ("private\ue000", "userName: must not contain control or invisible characters (U+E000)"),
]

ENDPOINTS = ["/api/room/create", "/api/room/join", "/api/token"]


def base_body(path: str, room: str) -> dict:
    return (
        {"userName": "guest"} if path == "/api/room/create" else {"roomId": room, "userName": "g"}
    )


# One parser (validation.parse_json) reads every JSON body: each bad body on one
# endpoint, the endpoints in turn.
@pytest.mark.parametrize(("path", "body", "message"), spread(BAD_BODIES, ENDPOINTS))
def test_bodies_that_are_not_a_json_object(client, livekit, path, body, message) -> None:
    before = sum(livekit.calls.values())
    assert_error(*raw(client, "POST", path.encode(), body, JSON), 400, message)
    assert sum(livekit.calls.values()) == before  # LiveKit never hears of it


@pytest.mark.parametrize(("value", "message"), BAD_USER_NAMES)
@pytest.mark.parametrize(
    ("model", "body"), [(CreateRoom, {}), (JoinRoom, {"roomId": "r"})], ids=["create", "join"]
)
def test_bad_user_names(model, body, value, message) -> None:
    assert refusal(model, {**body, "userName": value}).startswith(message)


#: userNames whose JSON text is not what a Python value prints: they go over the wire.
WIRE_USER_NAMES = [
    (float("inf"), "userName: Input should be a valid string"),  # Infinity, not JSON
    (10**300, "userName: Input should be a valid string"),  # 301 digits
    ("lone\ud800", "userName: must not contain control or invisible characters (U+D800)"),
    ("x" * 60_000, "userName: must be at most 128 characters"),  # near the body limit
    ("\u3000", "userName: must not be empty or blank"),
    ([[[[[[[[[[["deep"]]]]]]]]]]], "userName: Input should be a valid string"),
]


@pytest.mark.parametrize(("path", "value", "message"), spread(WIRE_USER_NAMES, ENDPOINTS))
def test_bad_user_names_over_the_wire(client, livekit, room, path, value, message) -> None:
    body = json.dumps({**base_body(path, room), "userName": value}).encode()
    before = sum(livekit.calls.values())
    assert_error(*raw(client, "POST", path.encode(), body, JSON), 400, message)
    assert sum(livekit.calls.values()) == before


@pytest.mark.parametrize("path", ENDPOINTS)
def test_unknown_fields_are_named(client, room, path) -> None:
    body = json.dumps({**base_body(path, room), "isAdmin": True, "roomAdmin": 1}).encode()
    assert_error(
        *raw(client, "POST", path.encode(), body, JSON),
        400,
        "isAdmin is not a known field; roomAdmin is not a known field",
    )


BAD_ROOM_IDS = [
    (None, "roomId: Input should be a valid string"),
    (12345, "roomId: Input should be a valid string"),
    (1e308, "roomId: Input should be a valid string"),
    ("", "roomId: must not be empty or blank"),
    ("r" * 257, "roomId: must be at most 256 characters"),
    ("r" * 10_240, "roomId: must be at most 256 characters"),
    ("room\u0000", "roomId: must not contain control or invisible characters"),
]


@pytest.mark.parametrize(("value", "message"), BAD_ROOM_IDS)
def test_bad_room_ids_in_bodies(value, message) -> None:
    assert refusal(JoinRoom, {"roomId": value, "userName": "g"}).startswith(message)


# Both join endpoints read the body as JoinRoom: the cases in turn, each endpoint a
# refusal by the model and a well-formed id no room has (a path-like one included).
@pytest.mark.parametrize(
    ("path", "value", "status", "message"),
    spread(
        [
            (1e308, 400, "roomId: Input should be a valid string"),
            ("r" * 10_240, 400, "roomId: must be at most 256 characters"),
            ("../../etc/passwd", 404, "Failed to join room: Room not found"),
            ("RM_" + "x" * 253, 404, "Failed to join room: Room not found"),
        ],
        ["/api/room/join", "/api/token"],
    ),
)
def test_bad_room_ids_over_the_wire(client, path, value, status, message) -> None:
    body = json.dumps({"roomId": value, "userName": "g"}).encode()
    assert_error(*raw(client, "POST", path.encode(), body, JSON), status, message)


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (20.0, "maxParticipants: Input should be a valid integer"),
        ("20", "maxParticipants: Input should be a valid integer"),
        (True, "maxParticipants: Input should be a valid integer"),
        (float("nan"), "maxParticipants: Input should be a valid integer"),
        (10**30, "maxParticipants: must be between 1 and 1000"),
        (-(2**63), "maxParticipants: must be between 1 and 1000"),
        ([20], "maxParticipants: Input should be a valid integer"),
    ],
)
def test_bad_participant_limits(value, message) -> None:
    assert refusal(CreateRoom, {"userName": "h", "maxParticipants": value}).startswith(message)


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (None, None),  # null is "not given": the default applies
        (20.0, "maxParticipants: Input should be a valid integer"),  # 20.0 is not 20
        (float("nan"), "maxParticipants: Input should be a valid integer"),  # NaN, not JSON
        (10**30, "maxParticipants: must be between 1 and 1000"),
    ],
)
def test_participant_limits_over_the_wire(client, value, message) -> None:
    body = json.dumps({"userName": "h", "maxParticipants": value}).encode()
    status, reply = raw(client, "POST", b"/api/room/create", body, JSON)
    if message is None:
        assert (status, reply["maxParticipants"]) == (200, 20)
    else:
        assert_error(status, reply, 400, message)


NAMES = ["김민수", "さくら 桜", "👩🏽‍💻 dev", "محمد", "Ελένη", "🇰🇷", "x" * 128, "𠜎𠜱𠝹"]


@pytest.mark.parametrize(("path", "name"), spread([(name,) for name in NAMES], ENDPOINTS))
def test_names_in_any_script_round_trip_byte_for_byte(client, room, path, name) -> None:
    body = json.dumps({**base_body(path, room), "userName": name}, ensure_ascii=False).encode()
    status, reply = raw(client, "POST", path.encode(), body, JSON)
    assert status == 200, reply
    assert reply["identity"] == name


def test_a_body_over_the_limit_is_413_on_every_json_endpoint(client, room) -> None:
    body = json.dumps({"userName": "x" * 70_000}).encode()
    for path in ENDPOINTS:
        assert_error(
            *raw(client, "POST", path.encode(), body, JSON),
            413,
            "Request body exceeds the size limit",
        )


# -- paths and query strings ----------------------------------------------------------

PATHS = [
    (b"/api/room/a%2Fb", 404, "Failed to get room: Room not found"),
    (b"/api/room/a/b", 404, "Requested URL /api/room/a/b not found"),
    (b"/api/room/%00", 400, "roomId: must not contain control or invisible characters (U+0000)"),
    (b"/api/room/a%0d%0aSet-Cookie:%20x", 400, "roomId: must not contain control"),
    (b"/api/room/%e2%80%ae", 400, "roomId: must not contain control or invisible"),
    (b"/api/room/%20%20", 400, "roomId: must not be empty or blank"),
    # Not a file system: ".." is a room name like any other, and no room has it.
    (b"/api/room/..", 404, "Failed to get room: Room not found"),
    (b"/api/room/../rooms/..", 404, "Requested URL"),
    (b"/api/room/%2e%2e", 404, "Failed to get room: Room not found"),
    (b"/api/room/%2e%2e%2f%2e%2e%2fetc%2fpasswd", 404, "Failed to get room: Room not found"),
    (b"/api/room/%ff%fe", 404, "Failed to get room: Room not found"),
    (b"/api/room/%zz", 404, "Failed to get room: Room not found"),
    (b"/api/room/" + b"x" * 257, 400, "roomId: must be at most 256 characters"),
    (b"/api/room/" + b"%41" * 257, 400, "roomId: must be at most 256 characters"),
    # 10 KB: past the request line and headers' 8 KB limit, before any routing.
    (b"/api/room/" + b"x" * 10_240, 413, "Request header exceeds the size limit"),
    (b"/api/room/", 404, "Requested URL /api/room not found"),
    (b"/api/rooms?limit=" + b"9" * 10_000, 413, "Request header exceeds the size limit"),
    (b"/api/rooms?limit=1.5", 400, "limit: must be a whole number from 1 to 1000"),
    (b"/api/rooms?limit=%00", 400, "limit: must be a whole number from 1 to 1000"),
    (b"/api/rooms?limit=1e3", 400, "limit: must be a whole number from 1 to 1000"),
    (b"/api/rooms?limit=5&cursor=%ff%00", 400, "cursor: is not one this service handed out"),
    (b"/api/nope/../../etc/passwd", 404, "Requested URL"),
]


@pytest.mark.parametrize(("path", "status", "message"), PATHS)
def test_hostile_paths(client, room, path, status, message) -> None:
    assert_error(*raw(client, "GET", path), status, message)


def test_a_room_named_by_percent_encoding_is_found(client, room) -> None:
    encoded = "".join(f"%{byte:02x}" for byte in room.encode()).encode()
    status, reply = raw(client, "GET", b"/api/room/" + encoded)
    assert (status, reply["roomId"]) == (200, room)


# -- methods, routes and headers ------------------------------------------------------

ROUTES = [
    ("/api/room/create", "POST"),
    ("/api/room/join", "POST"),
    ("/api/token", "POST"),
    ("/api/rooms", "GET"),
    ("/api/room/some-room", "GET"),
    ("/api/health", "GET"),
]


# Sanic's router answers every wrong method the same way: each route once, with
# every wrong method among them (DELETE on a room is the moderation plugin's).
@pytest.mark.parametrize(
    ("path", "method"),
    [
        ("/api/room/create", "GET"),
        ("/api/room/join", "PUT"),
        ("/api/token", "DELETE"),
        ("/api/rooms", "POST"),
        ("/api/room/some-room", "PUT"),
        ("/api/health", "DELETE"),
    ],
)
def test_wrong_methods_are_a_json_405(client, path, method) -> None:
    assert method != dict(ROUTES)[path]
    assert_error(*raw(client, method, path.encode()), 405, f"Method {method} not allowed")


def test_an_unknown_method_is_a_json_4xx(client) -> None:
    status, reply = raw(client, "BREW", b"/api/rooms")
    assert_error(status, reply, status, "")
    assert 400 <= status < 500


def test_headers_over_the_limit_are_a_json_413(client) -> None:
    huge = b"X-Padding: " + b"p" * 20_000 + b"\r\n"
    assert_error(
        *raw(client, "GET", b"/api/rooms", headers=huge), 413, "Request header exceeds the size"
    )
