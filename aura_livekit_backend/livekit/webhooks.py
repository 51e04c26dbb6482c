"""LiveKit's webhooks: a delivery verified as LiveKit signs it, read into a typed event.

LiveKit POSTs the protojson of a ``WebhookEvent`` with ``Authorization: <JWT>`` (no
"Bearer"): HS256, ``iss`` the API key, valid five minutes, and a ``sha256`` claim, the
base64 SHA-256 of the exact body bytes. livekit-api's ``WebhookReceiver`` compares
that hash with ``!=`` and raises a bare ``Exception``; this module compares in
constant time and raises :class:`WebhookRejected`, whose message never quotes the
header or the body.

Several keys may sign (a key being rotated out and its successor): the service's
``LIVEKIT_API_KEY`` and the pairs in ``AURA_WEBHOOK_KEYS``. Nothing outside this
package sees protobuf: :func:`read_event` returns the frozen events of
:mod:`aura_livekit_backend.events`.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import logging
import secrets
import warnings
from collections.abc import Mapping
from datetime import datetime, timezone
from typing import Any

import jwt
import orjson
from google.protobuf import json_format
from livekit.protocol import agent as agent_pb
from livekit.protocol import egress as egress_pb
from livekit.protocol import ingress as ingress_pb
from livekit.protocol import models
from livekit.protocol import webhook as webhook_pb
from pydantic import SecretStr

from ..events import (
    LIVEKIT_EVENTS,
    AgentJobEnded,
    AgentJobStarted,
    EgressEnded,
    EgressStarted,
    EgressUpdated,
    IngressEnded,
    IngressStarted,
    LiveKitEvent,
    OtherLiveKitEvent,
    ParticipantConnectionAborted,
    ParticipantJoined,
    ParticipantLeft,
    RoomFinished,
    RoomStarted,
    TrackPublished,
    TrackUnpublished,
)
from ..settings import Settings
from .metadata import participant_info, room_info
from .models import AgentJob, Egress, Ingress, Participant, Track
from .signing import MIN_SECRET_BYTES

__all__ = [
    "LEEWAY_SECONDS",
    "WebhookMalformed",
    "WebhookRejected",
    "WebhookVerifier",
    "read_event",
    "webhook_keys",
]

#: Seconds of clock skew allowed on the token's ``exp`` and ``nbf`` (LiveKit's own
#: verifiers allow a minute).
LEEWAY_SECONDS = 60
#: The longest Authorization header worth decoding: LiveKit's tokens are ~300 bytes.
MAX_TOKEN_LENGTH = 4096
#: Why a token is refused whose key is unknown or whose signature is wrong: one reason
#: for both, so a reply does not tell which API keys the service knows.
BAD_SIGNATURE = "the webhook token is not signed by an API key the service knows"

logger = logging.getLogger("aura_livekit_backend.webhooks")


class WebhookRejected(Exception):
    """The delivery is not LiveKit's: unsigned, forged, expired, tampered with, or signed
    by a key the service does not know. The message says which (a forged signature and
    an unknown key alike: "not signed by an API key the service knows"), and quotes
    nothing."""


class WebhookMalformed(Exception):
    """The delivery is signed, but its body is not a ``WebhookEvent`` the service can
    use (not JSON of that shape, or no event id)."""


def webhook_keys(settings: Settings) -> dict[str, SecretStr]:
    """The keys whose webhooks are accepted: LIVEKIT_API_KEY and AURA_WEBHOOK_KEYS."""
    keys: dict[str, SecretStr] = {}
    if settings.livekit_api_key and settings.livekit_api_secret:
        keys[settings.livekit_api_key] = settings.livekit_api_secret
    extra = settings.webhook_keys.get_secret_value() if settings.webhook_keys else ""
    for pair in extra.split(","):
        key, sep, secret = pair.strip().partition(":")
        if sep and key.strip() and secret.strip():
            keys[key.strip()] = SecretStr(secret.strip())
    return keys


class WebhookVerifier:
    """Checks that a delivery was signed by one of the keys, over exactly these bytes."""

    def __init__(self, keys: Mapping[str, SecretStr]) -> None:
        """Accept tokens issued by any key of ``keys`` (API key → secret)."""
        self._keys = dict(keys)
        self._decoy = SecretStr(secrets.token_urlsafe(32))
        if any(
            len(secret.get_secret_value().encode()) < MIN_SECRET_BYTES for secret in keys.values()
        ):
            # Start-up warns about a short LIVEKIT_API_SECRET once; PyJWT would warn at
            # every delivery.
            warnings.filterwarnings("ignore", category=jwt.InsecureKeyLengthWarning)

    def verify(self, body: bytes, authorization: str | None) -> None:
        """Return if ``authorization`` is a valid LiveKit webhook token for ``body``;
        raise :class:`WebhookRejected` otherwise."""
        if not authorization:
            raise WebhookRejected("no Authorization header: LiveKit signs every webhook")
        token = authorization.strip()
        if len(token) > MAX_TOKEN_LENGTH or token.count(".") != 2 or " " in token:
            raise WebhookRejected("the Authorization header is not a LiveKit webhook token")
        issuer, algorithm = _peek(token)
        if algorithm != "HS256":
            raise WebhookRejected("the webhook token is not signed with HS256")
        secret = self._keys.get(issuer) if issuer is not None else None
        if secret is None:
            # Told apart only here, without the key: a reply that said "unknown key"
            # would let anyone learn which key ids the service accepts. A throwaway
            # secret checks the signature all the same, so neither does the time tell.
            logger.debug("webhook rejected: signed with an API key the service does not know")
        try:
            claims = jwt.decode(
                token,
                (secret or self._decoy).get_secret_value(),
                algorithms=["HS256"],
                leeway=LEEWAY_SECONDS,
                options={"require": ["exp", "iss"]},
            )
        except jwt.InvalidSignatureError:
            raise WebhookRejected(BAD_SIGNATURE) from None
        except jwt.ExpiredSignatureError:
            raise WebhookRejected("the webhook token has expired") from None
        except jwt.ImmatureSignatureError:
            raise WebhookRejected("the webhook token is not valid yet") from None
        except jwt.PyJWTError:
            raise WebhookRejected("the webhook token is invalid") from None
        if secret is None:  # the throwaway secret is never known, but never trust luck
            raise WebhookRejected(BAD_SIGNATURE)
        claimed = claims.get("sha256")
        if not isinstance(claimed, str):
            raise WebhookRejected("the webhook token carries no body hash")
        actual = base64.b64encode(hashlib.sha256(body).digest())
        if not hmac.compare_digest(claimed.encode(), actual):
            raise WebhookRejected("the body does not match the webhook token's hash")


def _peek(token: str) -> tuple[str | None, object]:
    """The token's unverified ``iss`` and ``alg``, to pick the secret that verifies it
    (one full decode, not two); ``WebhookRejected`` if it is not a JWT."""
    header, payload, _ = token.split(".")
    try:
        alg = orjson.loads(base64.urlsafe_b64decode(header + "=" * (-len(header) % 4)))["alg"]
        claims = orjson.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    except (ValueError, TypeError, KeyError, orjson.JSONDecodeError):
        raise WebhookRejected("the Authorization header is not a JWT") from None
    issuer = claims.get("iss") if isinstance(claims, dict) else None
    return (issuer if isinstance(issuer, str) else None), alg


def read_event(body: bytes) -> LiveKitEvent:
    """The typed event in a (verified) delivery's body; :class:`WebhookMalformed` if none."""
    message = webhook_pb.WebhookEvent()
    try:
        json_format.Parse(body, message, ignore_unknown_fields=True)
    except (json_format.ParseError, ValueError, TypeError, RecursionError):
        raise WebhookMalformed("the body is not a LiveKit WebhookEvent") from None
    if not message.id:
        raise WebhookMalformed("the WebhookEvent has no id")
    if not message.event:
        raise WebhookMalformed("the WebhookEvent has no event type")
    try:
        return _typed(message, body)
    except (OverflowError, OSError, ValueError):
        # A time no datetime can hold (int64 seconds go far past the year 9999).
        raise WebhookMalformed("the WebhookEvent has a time out of range") from None


def _typed(message: webhook_pb.WebhookEvent, body: bytes) -> LiveKitEvent:
    id_, at = message.id, datetime.fromtimestamp(message.created_at, timezone.utc)
    event = message.event
    if event not in LIVEKIT_EVENTS:
        try:
            payload = orjson.loads(body)
        except orjson.JSONDecodeError:
            # JSON that Python reads and orjson does not (a number past 64 bits, 1e400):
            # keep the fields LiveKit's schema knows, which are plain JSON.
            payload = json_format.MessageToDict(message)
        return OtherLiveKitEvent(
            id=id_,
            created_at=at,
            type=event,
            room=room_info(message.room) if message.HasField("room") else None,
            payload=payload if isinstance(payload, dict) else {},
        )
    if event.startswith("egress_"):
        egress = _egress(message.egress_info)
        if event == "egress_started":
            return EgressStarted(id=id_, created_at=at, egress=egress)
        if event == "egress_updated":
            return EgressUpdated(id=id_, created_at=at, egress=egress)
        return EgressEnded(id=id_, created_at=at, egress=egress)
    if event.startswith("ingress_"):
        ingress = _ingress(message.ingress_info)
        if event == "ingress_started":
            return IngressStarted(id=id_, created_at=at, ingress=ingress)
        return IngressEnded(id=id_, created_at=at, ingress=ingress)
    if event.startswith("agent_job_"):
        job = _job(message.job)
        if event == "agent_job_started":
            return AgentJobStarted(id=id_, created_at=at, job=job)
        return AgentJobEnded(id=id_, created_at=at, job=job)
    room = room_info(message.room)
    if event == "room_started":
        return RoomStarted(id=id_, created_at=at, room=room)
    if event == "room_finished":
        return RoomFinished(id=id_, created_at=at, room=room, reason=_room_end_reason(message))
    who = _participant(message.participant)
    if event == "participant_joined":
        return ParticipantJoined(id=id_, created_at=at, room=room, participant=who)
    if event == "participant_left":
        reason = _disconnect_reason(message.participant)
        return ParticipantLeft(id=id_, created_at=at, room=room, participant=who, reason=reason)
    if event == "participant_connection_aborted":
        return ParticipantConnectionAborted(id=id_, created_at=at, room=room, participant=who)
    track = _track(message.track)
    if event == "track_published":
        return TrackPublished(id=id_, created_at=at, room=room, participant=who, track=track)
    return TrackUnpublished(id=id_, created_at=at, room=room, participant=who, track=track)


def _enum_name(enum: Any, value: int, prefix: str = "") -> str:
    """LiveKit's enum value as a lowercase word without its prefix; "" if unknown."""
    try:
        name: str = enum.Name(value)
    except ValueError:
        return ""
    return name.removeprefix(prefix).lower()


def _room_end_reason(message: webhook_pb.WebhookEvent) -> str:
    reason = _enum_name(models.RoomEndReason, message.room_end_reason, "ROOM_END_")
    return "" if reason == "unknown" else reason


def _disconnect_reason(participant: models.ParticipantInfo) -> str:
    reason = _enum_name(models.DisconnectReason, participant.disconnect_reason)
    return "" if reason == "unknown_reason" else reason


def _participant(info: models.ParticipantInfo) -> Participant:
    plain = participant_info(info)
    return Participant(
        identity=plain.identity,
        name=plain.name,
        joined_at=plain.joined_at,
        is_publisher=plain.is_publisher,
        state=plain.state,
        sid=info.sid,
    )


def _track(track: models.TrackInfo) -> Track:
    return Track(
        sid=track.sid,
        kind=_enum_name(models.TrackType, track.type),
        source=_enum_name(models.TrackSource, track.source),
        name=track.name,
        muted=track.muted,
    )


def _moment(nanoseconds: int) -> datetime | None:
    return datetime.fromtimestamp(nanoseconds / 1e9, timezone.utc) if nanoseconds else None


def _egress(info: egress_pb.EgressInfo) -> Egress:
    return Egress(
        egress_id=info.egress_id,
        room_name=info.room_name,
        room_sid=info.room_id,
        status=_enum_name(egress_pb.EgressStatus, info.status, "EGRESS_"),
        started_at=_moment(info.started_at),
        ended_at=_moment(info.ended_at),
        error=info.error,
    )


def _ingress(info: ingress_pb.IngressInfo) -> Ingress:
    return Ingress(
        ingress_id=info.ingress_id,
        name=info.name,
        room_name=info.room_name,
        participant_identity=info.participant_identity,
        status=_enum_name(ingress_pb.IngressState.Status, info.state.status, "ENDPOINT_"),
        error=info.state.error,
    )


def _job(job: agent_pb.Job) -> AgentJob:
    return AgentJob(
        job_id=job.id,
        dispatch_id=job.dispatch_id,
        agent_name=job.agent_name,
        room_name=job.room.name,
        type=_enum_name(agent_pb.JobType, job.type, "JT_"),
        status=_enum_name(agent_pb.JobStatus, job.state.status, "JS_"),
        participant_identity=job.participant.identity,
        error=job.state.error,
    )
