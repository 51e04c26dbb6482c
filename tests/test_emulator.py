"""The emulator honours LiveKit's wire facts (shared/notes/livekit-wire.md)."""

from __future__ import annotations

import asyncio
import json
import re
import time

import aiohttp
import jwt
import pytest
from livekit import api

from aura_livekit_backend.emulator import LiveKitEmulator, RoomFull
from aura_livekit_backend.testing.pytest_plugin import TEST_API_KEY, TEST_API_SECRET

ROOM_SERVICE = "/twirp/livekit.RoomService/"


def token(**grants) -> str:
    return (
        api.AccessToken(TEST_API_KEY, TEST_API_SECRET)
        .with_grants(api.VideoGrants(**grants))
        .to_jwt()
    )


async def post(url, method, *, body=b"{}", content_type="application/json", auth=None, verb="POST"):
    headers = {"Content-Type": content_type}
    if auth is not None:
        headers["Authorization"] = auth
    async with (
        aiohttp.ClientSession() as session,
        session.request(verb, url + ROOM_SERVICE + method, data=body, headers=headers) as r,
    ):
        return r.status, r.content_type, await r.read()


def run(coroutine):
    return asyncio.run(coroutine)


async def with_client(emulator, action, key=TEST_API_KEY, secret=TEST_API_SECRET):
    lk = api.LiveKitAPI(emulator.url, key, secret)
    try:
        return await action(lk.room)
    finally:
        await lk.aclose()


def test_create_room_defaults_sid_and_get_or_create(livekit_emulator) -> None:
    async def scenario(room):
        first = await room.create_room(api.CreateRoomRequest(name="a", metadata="one"))
        again = await room.create_room(
            api.CreateRoomRequest(name="a", metadata="two", max_participants=3)
        )
        return first, again

    first, again = run(with_client(livekit_emulator, scenario))
    assert first.sid.startswith("RM_") and len(first.sid) == 15
    assert (first.empty_timeout, first.departure_timeout, first.max_participants) == (300, 20, 0)
    assert abs(first.creation_time - time.time()) < 5
    assert first.creation_time_ms // 1000 == first.creation_time
    # An existing room comes back unchanged.
    assert (again.sid, again.metadata, again.max_participants) == (first.sid, "one", 0)


@pytest.mark.parametrize(
    ("request_", "message"),
    [
        (api.CreateRoomRequest(name="n" * 257), "room name length exceeds limits"),
        (api.CreateRoomRequest(name="big", metadata="m" * (512 * 1024 + 1)), "metadata size"),
    ],
)
def test_create_room_limits(livekit_emulator, request_, message: str) -> None:
    with pytest.raises(api.TwirpError) as caught:
        run(with_client(livekit_emulator, lambda room: room.create_room(request_)))
    assert (caught.value.status, caught.value.code) == (400, "invalid_argument")
    assert message in caught.value.message


def test_list_rooms_filters_by_existing_names(livekit_emulator) -> None:
    async def scenario(room):
        for name in ("a", "b", "c"):
            await room.create_room(api.CreateRoomRequest(name=name))
        some = await room.list_rooms(api.ListRoomsRequest(names=["a", "c", "zz"]))
        every = await room.list_rooms(api.ListRoomsRequest())
        return some, every

    some, every = run(with_client(livekit_emulator, scenario))
    assert sorted(r.name for r in some.rooms) == ["a", "c"]
    assert sorted(r.name for r in every.rooms) == ["a", "b", "c"]


def test_missing_things_are_not_found(livekit_emulator) -> None:
    async def scenario(room):
        errors = []
        for call in (
            room.delete_room(api.DeleteRoomRequest(room="nope")),
            room.get_participant(api.RoomParticipantIdentity(room="nope", identity="x")),
            room.remove_participant(api.RoomParticipantIdentity(room="nope", identity="x")),
        ):
            try:
                await call
            except api.TwirpError as exc:
                errors.append((exc.status, exc.code, exc.message))
        listed = await room.list_participants(api.ListParticipantsRequest(room="nope"))
        return errors, listed

    errors, listed = run(with_client(livekit_emulator, scenario))
    assert errors == [
        (404, "not_found", "requested room does not exist"),
        (404, "not_found", "participant does not exist"),
        (404, "not_found", "participant does not exist"),
    ]
    assert list(listed.participants) == []


def test_json_bodies_answer_json_with_snake_case(livekit_emulator) -> None:
    status, content_type, body = run(
        post(
            livekit_emulator.url,
            "CreateRoom",
            body=json.dumps({"name": "j", "max_participants": 4}).encode(),
            auth="Bearer " + token(room_create=True),
        )
    )
    assert (status, content_type) == (200, "application/json")
    room = json.loads(body)
    assert room["name"] == "j" and room["max_participants"] == 4 and "empty_timeout" in room


@pytest.mark.parametrize(
    ("verb", "method", "content_type", "code", "status"),
    [
        ("GET", "ListRooms", "application/json", "bad_route", 404),
        ("POST", "ListRooms", "text/plain", "bad_route", 404),
        ("POST", "NoSuchMethod", "application/json", "bad_route", 404),
        ("POST", "SendData", "application/json", "unimplemented", 501),
    ],
)
def test_routes(livekit_emulator, verb, method, content_type, code, status) -> None:
    answer = run(
        post(
            livekit_emulator.url,
            method,
            verb=verb,
            content_type=content_type,
            auth="Bearer " + token(room_list=True),
        )
    )
    assert answer[0] == status and json.loads(answer[2])["code"] == code


def test_an_undecodable_body_is_malformed(livekit_emulator) -> None:
    status, _, body = run(
        post(
            livekit_emulator.url,
            "ListRooms",
            body=b"\xff\xff\xff",
            content_type="application/protobuf",
            auth="Bearer " + token(room_list=True),
        )
    )
    assert (status, json.loads(body)["code"]) == (400, "malformed")


def test_no_authorization_header_is_twirp_unauthenticated(livekit_emulator) -> None:
    status, content_type, body = run(post(livekit_emulator.url, "ListRooms"))
    assert (status, content_type) == (401, "application/json")
    assert json.loads(body) == {"code": "unauthenticated", "msg": "permissions denied"}


@pytest.mark.parametrize(
    "auth",
    [
        "Basic dXNlcjpwYXNz",
        "Bearer not-a-jwt",
        "Bearer " + api.AccessToken(TEST_API_KEY, "another-secret-entirely-0123456789").to_jwt(),
        "Bearer " + api.AccessToken("APIother", TEST_API_SECRET).to_jwt(),
        "Bearer "
        + jwt.encode(
            {"iss": TEST_API_KEY, "exp": int(time.time()) - 61, "video": {"roomList": True}},
            TEST_API_SECRET,
        ),
    ],
)
def test_a_bad_token_is_a_plain_text_401(livekit_emulator, auth: str) -> None:
    status, content_type, _ = run(post(livekit_emulator.url, "ListRooms", auth=auth))
    assert (status, content_type) == (401, "text/plain")


def test_the_client_sees_a_plain_text_401_as_code_unknown(livekit_emulator) -> None:
    with pytest.raises(api.TwirpError) as caught:
        run(
            with_client(
                livekit_emulator,
                lambda room: room.list_rooms(api.ListRoomsRequest()),
                secret="another-secret-entirely-0123456789",
            )
        )
    assert (caught.value.status, caught.value.code, caught.value.message) == (401, "unknown", "")


def test_expiry_has_sixty_seconds_of_leeway(livekit_emulator) -> None:
    late = jwt.encode(
        {"iss": TEST_API_KEY, "exp": int(time.time()) - 30, "video": {"roomList": True}},
        TEST_API_SECRET,
    )
    assert run(post(livekit_emulator.url, "ListRooms", auth="Bearer " + late))[0] == 200


@pytest.mark.parametrize(
    ("method", "body", "grants"),
    [
        ("ListRooms", {}, {"room_create": True}),
        ("CreateRoom", {"name": "x"}, {"room_list": True}),
        ("DeleteRoom", {"room": "x"}, {"room_admin": True, "room": "x"}),
        ("ListParticipants", {"room": "x"}, {"room_admin": True, "room": "y"}),
        ("UpdateRoomMetadata", {"room": "x"}, {"room_list": True, "room": "x"}),
    ],
)
def test_a_missing_grant_is_twirp_unauthenticated(livekit_emulator, method, body, grants) -> None:
    # LiveKit wraps it in twirpAuthError: 401 unauthenticated, not 403 permission_denied.
    status, _, answer = run(
        post(
            livekit_emulator.url,
            method,
            body=json.dumps(body).encode(),
            auth="Bearer " + token(**grants),
        )
    )
    assert status == 401
    assert json.loads(answer) == {"code": "unauthenticated", "msg": "permissions denied"}


def test_participants_join_replace_and_fill(livekit_emulator) -> None:
    request = api.CreateRoomRequest(name="r", max_participants=2)
    run(with_client(livekit_emulator, lambda room: room.create_room(request)))
    livekit_emulator.add_participant("r", "a", "Ann")
    livekit_emulator.add_participant("r", "a", "Ann again")  # same identity replaces
    livekit_emulator.add_participant("r", "b")
    with pytest.raises(RoomFull):
        livekit_emulator.add_participant("r", "c")
    with pytest.raises(KeyError):
        livekit_emulator.add_participant("nope", "a")

    async def scenario(room):
        listed = await room.list_participants(api.ListParticipantsRequest(room="r"))
        rooms = await room.list_rooms(api.ListRoomsRequest(names=["r"]))
        return listed, rooms

    listed, rooms = run(with_client(livekit_emulator, scenario))
    assert {(p.identity, p.name) for p in listed.participants} == {("a", "Ann again"), ("b", "b")}
    assert rooms.rooms[0].num_participants == 2


def test_rooms_close_after_their_timeouts() -> None:
    now = [1_000_000.0]
    with LiveKitEmulator(TEST_API_KEY, TEST_API_SECRET, clock=lambda: now[0]) as emulator:

        async def create(room):
            await room.create_room(api.CreateRoomRequest(name="quiet", empty_timeout=10))
            await room.create_room(api.CreateRoomRequest(name="busy", departure_timeout=5))

        run(with_client(emulator, create))
        emulator.add_participant("busy", "a")
        now[0] += 11
        assert emulator.room_names() == ["busy"]  # nobody joined "quiet" in time
        emulator.remove_participant("busy", "a")
        now[0] += 4
        assert emulator.room_names() == ["busy"]
        now[0] += 1
        assert emulator.room_names() == []


async def hook(emulator, verb, path, *, token=None, headers=None, **kwargs):
    """Call one of the emulator's own hooks; (status, JSON body or None)."""
    headers = dict(headers or {})
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    async with (
        aiohttp.ClientSession() as http,
        http.request(verb, emulator.url + path, headers=headers, **kwargs) as response,
    ):
        body = await response.json() if response.content_type == "application/json" else None
        return response.status, body


def test_people_can_join_over_http_for_dev_demos(livekit_emulator) -> None:
    run(with_client(livekit_emulator, lambda room: room.create_room(
        api.CreateRoomRequest(name="demo", max_participants=1))))  # fmt: skip

    async def scenario():
        answers = []
        token = livekit_emulator.hook_token
        for room, body in (("demo", {"identity": "ann"}), ("demo", {"identity": "bob"}),
                           ("nope", {"identity": "x"}), ("demo", {"name": "?"})):  # fmt: skip
            path = f"/_emulator/rooms/{room}/participants"
            answers.append((await hook(livekit_emulator, "POST", path, token=token, json=body))[0])
        path = "/_emulator/rooms/demo/participants/ann"
        answers.append((await hook(livekit_emulator, "DELETE", path, token=token))[0])
        return answers

    assert run(scenario()) == [200, 409, 404, 400, 204]


@pytest.mark.parametrize(
    ("verb", "path", "token", "kwargs", "status"),
    [
        # What a web page's form post can send: no token, a form body or text/plain.
        ("POST", "participants", None, {"data": {"identity": "eve"}}, 401),
        ("POST", "participants", None, {"json": {"identity": "eve"}}, 401),
        ("POST", "participants", "a-guess", {"json": {"identity": "eve"}}, 401),
        ("POST", "participants", "right", {"data": {"identity": "eve"}}, 415),
        (
            "POST",
            "participants",
            "right",
            {"data": '{"identity": "eve"}', "headers": {"Content-Type": "text/plain"}},
            415,
        ),
        ("DELETE", "participants/ann", None, {}, 401),
        ("DELETE", "participants/ann", "a-guess", {}, 401),
    ],
)
def test_the_hooks_demand_the_token_and_json(livekit_emulator, verb, path, token, kwargs, status):
    run(with_client(livekit_emulator, lambda room: room.create_room(
        api.CreateRoomRequest(name="demo"))))  # fmt: skip
    livekit_emulator.add_participant("demo", "ann")
    if token == "right":
        token = livekit_emulator.hook_token
    path = f"/_emulator/rooms/demo/{path}"
    answer = run(hook(livekit_emulator, verb, path, token=token, **kwargs))
    assert answer[0] == status
    assert "error" in answer[1]
    # Nobody joined or left.
    assert run(with_client(livekit_emulator, lambda room: room.list_participants(
        api.ListParticipantsRequest(room="demo")))).participants[0].identity == "ann"  # fmt: skip


def test_each_emulator_has_its_own_hook_token_kept_across_an_outage(livekit_emulator) -> None:
    run(with_client(livekit_emulator, lambda room: room.create_room(
        api.CreateRoomRequest(name="demo"))))  # fmt: skip
    path = "/_emulator/rooms/demo/participants"
    with LiveKitEmulator(TEST_API_KEY, TEST_API_SECRET) as other:
        assert other.hook_token != livekit_emulator.hook_token
        answer = run(hook(livekit_emulator, "POST", path, token=other.hook_token, json={}))
        assert answer[0] == 401
    livekit_emulator.outage(0.2)
    deadline = time.monotonic() + 5
    while True:
        try:
            answer = run(hook(livekit_emulator, "POST", path, token=livekit_emulator.hook_token,
                              json={"identity": "ann"}))  # fmt: skip
            break
        except aiohttp.ClientConnectionError:
            assert time.monotonic() < deadline, "the emulator did not come back"
            time.sleep(0.05)
    assert answer == (200, {"identity": "ann", "name": "ann"})


def test_close_room_disconnects_everyone_and_forgets_the_room(livekit_emulator) -> None:
    async def create(room):
        for name in ("a", "b"):
            await room.create_room(api.CreateRoomRequest(name=name))

    run(with_client(livekit_emulator, create))
    livekit_emulator.add_participant("a", "ann")
    assert livekit_emulator.room_names() == ["a", "b"]
    livekit_emulator.close_room("a")
    assert livekit_emulator.room_names() == ["b"]

    async def seen(room):
        rooms = await room.list_rooms(api.ListRoomsRequest())
        people = await room.list_participants(api.ListParticipantsRequest(room="a"))
        return [r.name for r in rooms.rooms], list(people.participants)

    assert run(with_client(livekit_emulator, seen)) == (["b"], [])
    with pytest.raises(KeyError):
        livekit_emulator.close_room("a")
    with pytest.raises(KeyError):
        livekit_emulator.add_participant("a", "ann")


def test_a_closed_room_is_gone_for_the_service_too(serve, livekit_emulator) -> None:
    client = serve(room_list_cache_seconds=0)
    room = client.post("/api/room/create", json={"userName": "u"}).json["roomId"]
    livekit_emulator.close_room(room)
    assert client.get(f"/api/room/{room}").json == {
        "statusCode": 404,
        "message": "Failed to get room: Room not found",
    }
    assert client.get("/api/rooms").json["total"] == 0


@pytest.mark.processes
def test_the_command_line_emulator_serves_faults_and_reports_them() -> None:
    import signal
    import subprocess
    import sys

    from aura_livekit_backend.emulator import free_port

    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "aura_livekit_backend.emulator", "--port", str(port),
         "--api-key", TEST_API_KEY, "--api-secret", TEST_API_SECRET,
         "--fault", "unavailable", "--fault", "internal", "--fault-share", "0.5"],
        stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert process.stdout.readline().strip() == f"LiveKit emulator on http://127.0.0.1:{port}"
        emulator = LiveKitEmulator(port=port)  # only for its url
        auth = f"Bearer {token(room_list=True)}"
        statuses = [run(post(emulator.url, "ListRooms", auth=auth))[0] for _ in range(60)]
    finally:
        process.send_signal(signal.SIGTERM)
        output, _ = process.communicate(timeout=10)
    assert set(statuses) == {200, 500, 503}
    assert "calls: {'ListRooms': 60}" in output
    served = dict(re.findall(r"'(unavailable|internal)': (\d+)", output))
    assert int(served["unavailable"]) + int(served["internal"]) == statuses.count(
        500
    ) + statuses.count(503)
