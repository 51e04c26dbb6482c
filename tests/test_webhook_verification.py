"""A LiveKit webhook is verified as LiveKit signs it and read into a typed event.

The deliveries are made by the emulator's own signer and encoder (what it sends over
HTTP in the end-to-end tests), and checked by the service's verifier.
"""

from __future__ import annotations

import base64
import hashlib
import logging
import time
from collections.abc import Callable
from datetime import datetime, timezone

import jwt
import orjson
import pytest
from livekit.protocol import models
from livekit.protocol import webhook as webhook_pb
from pydantic import SecretStr

from aura_livekit_backend import Settings
from aura_livekit_backend.emulator.webhooks import encode_event, sign_webhook
from aura_livekit_backend.events import (
    EVENTS,
    LIVEKIT_EVENTS,
    AgentJobEnded,
    EgressEnded,
    IngressStarted,
    OtherLiveKitEvent,
    ParticipantJoined,
    ParticipantLeft,
    RoomFinished,
    TrackPublished,
)
from aura_livekit_backend.livekit.webhooks import (
    WebhookMalformed,
    WebhookRejected,
    WebhookVerifier,
    read_event,
    webhook_keys,
)

KEY, SECRET = "APIwebhooks", "webhook-secret-0123456789abcdefghijkl"
OLD_KEY, OLD_SECRET = "APIold", "old-secret-0123456789abcdefghijklmnopq"


def _event(kind: str = "participant_joined") -> webhook_pb.WebhookEvent:
    event = webhook_pb.WebhookEvent(event=kind, id="EV_abcdefghijkl", created_at=1692985556)
    event.room.name, event.room.sid = "standup", "RM_abcdefghijkl"
    event.room.creation_time = 1692985500
    event.room.metadata = '{"topic":"Daily","createdBy":"ann"}'
    event.room.num_participants = 1
    event.participant.identity, event.participant.name = "bob", "Bob"
    event.participant.sid = "PA_abcdefghijkl"
    event.participant.joined_at = 1692985550
    return event


@pytest.fixture
def verifier() -> WebhookVerifier:
    return WebhookVerifier({KEY: SecretStr(SECRET), OLD_KEY: SecretStr(OLD_SECRET)})


def test_a_delivery_signed_as_livekit_signs_it_is_accepted(verifier: WebhookVerifier) -> None:
    body = encode_event(_event())
    verifier.verify(body, sign_webhook(body, KEY, SECRET))
    verifier.verify(body, sign_webhook(body, OLD_KEY, OLD_SECRET))  # a key being rotated out


def _token(claims: dict[str, object], secret: str = SECRET, algorithm: str = "HS256") -> str:
    return jwt.encode(claims, secret, algorithm=algorithm)


def _hash(body: bytes) -> str:
    return base64.b64encode(hashlib.sha256(body).digest()).decode()


BODY = encode_event(_event())


def _good() -> dict[str, object]:
    # Made when the test runs, never at import: a run may take minutes to get here.
    now = int(time.time())
    return {"iss": KEY, "nbf": now, "exp": now + 300, "sha256": _hash(BODY)}


def _without(claim: str) -> dict[str, object]:
    return {k: v for k, v in _good().items() if k != claim}


def _shifted(seconds: int) -> dict[str, object]:
    return {**_good(), "nbf": int(time.time()) + seconds, "exp": int(time.time()) + seconds + 300}


@pytest.mark.parametrize(
    ("header", "why"),
    [
        (lambda: None, "no Authorization"),
        (lambda: "", "no Authorization"),
        (lambda: f"Bearer {sign_webhook(BODY, KEY, SECRET)}", "not a LiveKit webhook token"),
        (lambda: "not-a-jwt", "not a LiveKit webhook token"),
        (lambda: "a.b.c", "not a JWT"),
        (lambda: _token({**_good(), "iss": "APIstranger"}), "not signed by an API key the"),
        (lambda: _token(_good(), "another-secret-0123456789abcdefghijkl"), "not signed by an API"),
        (lambda: _token(_shifted(-700)), "expired"),
        (lambda: _token(_shifted(400)), "not valid yet"),
        (lambda: _token(_without("sha256")), "no body hash"),
        (lambda: _token(_without("exp")), "invalid"),
        (lambda: _token({**_good(), "sha256": _hash(BODY + b" ")}), "does not match"),
        (lambda: _token(_good(), SECRET * 2, "HS512"), "not signed with HS256"),
        (lambda: jwt.encode(_good(), None, algorithm="none"), "not signed with HS256"),
    ],
    ids=[
        "absent", "empty", "bearer", "garbage", "bad-jwt", "other-key", "forged", "expired",
        "not-yet", "no-hash", "no-exp", "tampered", "hs512", "alg-none",
    ],
)  # fmt: skip
def test_anything_else_is_rejected_without_quoting_it(
    verifier: WebhookVerifier, header: Callable[[], str | None], why: str
) -> None:
    given = header()
    with pytest.raises(WebhookRejected, match=why) as caught:
        verifier.verify(BODY, given)
    if given:
        assert given not in str(caught.value) and given[:20] not in str(caught.value)
    assert "standup" not in str(caught.value)


def test_an_unknown_key_and_a_wrong_signature_read_the_same(
    verifier: WebhookVerifier, caplog: pytest.LogCaptureFixture
) -> None:
    # A reply that told them apart would let anyone probe which key ids are configured.
    with (
        caplog.at_level(logging.DEBUG, logger="aura_livekit_backend.webhooks"),
        pytest.raises(WebhookRejected) as unknown,
    ):
        verifier.verify(BODY, _token({**_good(), "iss": "APIstranger"}))
    with pytest.raises(WebhookRejected) as forged:
        verifier.verify(BODY, _token(_good(), "another-secret-0123456789abcdefghijkl"))
    assert str(unknown.value) == str(forged.value)
    # The operator can still tell, in a debug line that names no key.
    assert "API key the service does not know" in caplog.text
    assert "APIstranger" not in caplog.text


def test_one_changed_byte_of_the_body_is_rejected(verifier: WebhookVerifier) -> None:
    header = sign_webhook(BODY, KEY, SECRET)
    tampered = BODY.replace(b"bob", b"eve")
    with pytest.raises(WebhookRejected, match="does not match"):
        verifier.verify(tampered, header)


def test_the_keys_are_livekits_and_the_extra_webhook_pairs() -> None:
    settings = Settings(
        _env_file=None,
        livekit_api_key=KEY,
        livekit_api_secret=SECRET,
        webhook_keys=f"{OLD_KEY}:{OLD_SECRET}, APIthird:third-secret",
    )
    keys = webhook_keys(settings)
    assert {k: v.get_secret_value() for k, v in keys.items()} == {
        KEY: SECRET,
        OLD_KEY: OLD_SECRET,
        "APIthird": "third-secret",
    }
    assert OLD_SECRET not in repr(settings)


def test_a_malformed_webhook_keys_setting_is_refused_without_echoing_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from aura_livekit_backend.settings import SettingsError, load_settings

    monkeypatch.setenv("AURA_WEBHOOK_KEYS", "only-a-secret-value")
    with pytest.raises(SettingsError, match="AURA_WEBHOOK_KEYS: must be key:secret") as caught:
        load_settings()
    assert "only-a-secret-value" not in str(caught.value)


def test_a_participant_event_is_read_into_its_typed_event() -> None:
    event = read_event(encode_event(_event()))
    assert isinstance(event, ParticipantJoined)
    assert event.name == "livekit.participant.joined"
    assert event.id == "EV_abcdefghijkl"
    assert event.created_at == datetime.fromtimestamp(1692985556, timezone.utc)
    assert (event.room.name, event.room.sid, event.room.topic) == (
        "standup",
        "RM_abcdefghijkl",
        "Daily",
    )
    assert event.room.created_by == "ann" and event.room.num_participants == 1
    who = event.participant
    assert (who.identity, who.name, who.sid) == ("bob", "Bob", "PA_abcdefghijkl")
    assert who.joined_at == datetime.fromtimestamp(1692985550, timezone.utc)
    assert event.room_name == "standup"
    # What the log keeps: JSON-ready, and frozen.
    data = event.data()
    assert orjson.loads(orjson.dumps(data)) == data
    assert data["participant"]["identity"] == "bob"
    with pytest.raises(AttributeError):
        event.id = "other"  # type: ignore[misc]


def test_reasons_tracks_egress_ingress_and_jobs_are_read() -> None:
    left = _event("participant_left")
    left.participant.disconnect_reason = models.DUPLICATE_IDENTITY
    gone = read_event(encode_event(left))
    assert isinstance(gone, ParticipantLeft) and gone.reason == "duplicate_identity"

    finished = _event("room_finished")
    finished.room_end_reason = models.ROOM_END_IDLE_TIMEOUT
    room_finished = read_event(encode_event(finished))
    assert isinstance(room_finished, RoomFinished) and room_finished.reason == "idle_timeout"

    published = _event("track_published")
    published.track.sid, published.track.name = "TR_abc", "mic"
    published.track.type, published.track.source = models.AUDIO, models.MICROPHONE
    track = read_event(encode_event(published))
    assert isinstance(track, TrackPublished)
    assert (track.track.sid, track.track.kind, track.track.source, track.track.name) == (
        "TR_abc",
        "audio",
        "microphone",
        "mic",
    )

    egress = webhook_pb.WebhookEvent(event="egress_ended", id="EV_e", created_at=1)
    egress.egress_info.egress_id, egress.egress_info.room_name = "EG_1", "standup"
    egress.egress_info.status = 3  # EGRESS_COMPLETE
    egress.egress_info.ended_at = 1692985556 * 10**9
    ended = read_event(encode_event(egress))
    assert isinstance(ended, EgressEnded) and ended.egress.status == "complete"
    assert ended.room_name == "standup" and ended.egress.ended_at is not None

    ingress = webhook_pb.WebhookEvent(event="ingress_started", id="EV_i", created_at=1)
    ingress.ingress_info.ingress_id, ingress.ingress_info.room_name = "IN_1", "standup"
    ingress.ingress_info.state.status = 2  # ENDPOINT_PUBLISHING
    started = read_event(encode_event(ingress))
    assert isinstance(started, IngressStarted) and started.ingress.status == "publishing"

    job = webhook_pb.WebhookEvent(event="agent_job_ended", id="EV_j", created_at=1)
    job.job.id, job.job.agent_name, job.job.room.name = "AJ_1", "helper", "standup"
    job.job.state.status = 3  # JS_FAILED
    job.job.state.error = "crashed"
    done = read_event(encode_event(job))
    assert isinstance(done, AgentJobEnded)
    assert (done.job.status, done.job.error, done.room_name) == ("failed", "crashed", "standup")


def test_every_livekit_event_type_has_a_class_in_the_catalogue() -> None:
    for kind, cls in LIVEKIT_EVENTS.items():
        event = read_event(encode_event(_event(kind)))
        assert type(event) is cls, kind
        assert EVENTS[cls.name] is cls
        assert cls.name.startswith("livekit.") and cls.name.count(".") == 2


def test_an_unknown_event_type_passes_through() -> None:
    body = orjson.dumps(
        {
            "event": "room_metadata_changed",
            "id": "EV_new",
            "createdAt": "1692985556",
            "room": {"name": "standup", "sid": "RM_x"},
            "someFutureField": {"a": 1},
        }
    )
    event = read_event(body)
    assert isinstance(event, OtherLiveKitEvent)
    assert (event.name, event.type, event.room_name) == (
        "livekit.other.received",
        "room_metadata_changed",
        "standup",
    )
    assert event.payload["someFutureField"] == {"a": 1}

    odd = read_event(b'{"event": "future", "id": "EV_2", "huge": 1e400, "room": {"name": "r"}}')
    assert isinstance(odd, OtherLiveKitEvent)
    assert odd.payload == {"event": "future", "id": "EV_2", "room": {"name": "r"}}
    assert orjson.loads(orjson.dumps(odd.data()))["payload"] == odd.payload


@pytest.mark.parametrize(
    ("body", "why"),
    [
        (b"", "not a LiveKit WebhookEvent"),
        (b"not json", "not a LiveKit WebhookEvent"),
        (b"[1, 2]", "not a LiveKit WebhookEvent"),
        (b'{"event": 5, "id": "EV_1"}', "not a LiveKit WebhookEvent"),
        (b'{"event": "room_started"}', "no id"),
        (b'{"id": "EV_1"}', "no event type"),
        (b'{"event": "room_started", "id": "EV_1", "createdAt": "soon"}', "not a LiveKit"),
        (b"[" * 100_000, "not a LiveKit WebhookEvent"),
        (b'{"event": "room_started", "id": "EV_1", "createdAt": "9000000000000000000"}', "time"),
        (b'{"event": "room_started", "id": "EV_1", "room": {"creationTime": "-9e18"}}', "time"),
        (b'{"event": "room_started", "id": "EV_1", "room": {"creationTimeMs": "9e15"}}', "time"),
    ],
)
def test_a_body_that_is_not_a_webhook_event_is_malformed(body: bytes, why: str) -> None:
    with pytest.raises(WebhookMalformed, match=why):
        read_event(body)
