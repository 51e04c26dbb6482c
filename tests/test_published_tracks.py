"""Published tracks and muting them: ``Participant.tracks`` and ``ctx.rooms.mute_track``,
against the emulator's MutePublishedTrack, through the real livekit-api client."""

from __future__ import annotations

import httpx
import pytest

from aura_livekit_backend.errors import ApiError, failing_to
from aura_livekit_backend.livekit.errors import ParticipantNotFound
from aura_livekit_backend.testing.client import ServiceClient


@pytest.fixture(scope="module")
def client(module_aura_client) -> ServiceClient:
    return module_aura_client()


@pytest.fixture(scope="module")
def emulator(module_livekit_emulator):
    return module_livekit_emulator


def new_room(client) -> str:
    response = client.post("/api/room/create", json={"userName": "host"})
    assert response.status_code == 200, response.text
    return str(response.json["roomId"])


def test_participants_show_their_tracks_and_a_track_can_be_muted(client, emulator) -> None:
    room = new_room(client)
    emulator.add_participant(
        room,
        "ann",
        tracks=[{"kind": "audio", "source": "microphone"}, {"kind": "video", "name": "cam"}],
    )
    rooms = client.app.ctx.livekit.rooms
    _, people = client.run(rooms.participants(room))
    (ann,) = people
    assert ann.is_publisher
    assert [(t.kind, t.source, t.name, t.muted) for t in ann.tracks] == [
        ("audio", "microphone", "", False),
        ("video", "camera", "cam", False),
    ]
    microphone = ann.tracks[0]
    assert microphone.sid.startswith("TR_")

    muted = client.run(rooms.mute_track(room, "ann", microphone.sid))
    assert (muted.sid, muted.muted) == (microphone.sid, True)
    _, (ann,) = client.run(rooms.participants(room))
    assert [t.muted for t in ann.tracks] == [True, False]
    assert emulator.calls["MutePublishedTrack"] >= 1


@pytest.mark.parametrize(("identity", "track"), [("nobody", "TR_x"), ("bob", "TR_unknown")])
def test_a_missing_participant_or_track_is_not_found(client, emulator, identity, track) -> None:
    room = new_room(client)
    emulator.add_participant(room, "bob", tracks=[{"kind": "audio"}])
    rooms = client.app.ctx.livekit.rooms
    with pytest.raises(ParticipantNotFound):
        client.run(rooms.mute_track(room, identity, track))
    with pytest.raises(ApiError) as caught, failing_to("mute track"):
        client.run(rooms.mute_track(room, identity, track))
    assert caught.value.status_code == 404


def test_the_hook_takes_tracks_and_refuses_unknown_kinds(client, emulator) -> None:
    room = new_room(client)
    headers = {"Authorization": f"Bearer {emulator.hook_token}"}
    with httpx.Client(base_url=emulator.url) as http:
        joined = http.post(
            f"/_emulator/rooms/{room}/participants",
            headers=headers,
            json={"identity": "cam", "tracks": [{"kind": "video", "source": "screen_share"}]},
        )
        assert joined.status_code == 200, joined.text
        refused = http.post(
            f"/_emulator/rooms/{room}/participants",
            headers=headers,
            json={"identity": "odd", "tracks": [{"kind": "smell"}]},
        )
        assert refused.status_code == 400
    _, people = client.run(client.app.ctx.livekit.rooms.participants(room))
    assert [(p.identity, [(t.kind, t.source) for t in p.tracks]) for p in people] == [
        ("cam", [("video", "screen_share")])
    ]
