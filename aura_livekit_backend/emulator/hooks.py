"""The emulator's own HTTP hooks (not LiveKit's): people joining and leaving rooms.

The emulator carries no media, so nobody joins over WebRTC; behind
``aura-livekit-backend --dev`` these let a person, or a test in another process,
stand in for joins and leaves:

- ``POST /_emulator/rooms/{room}/participants`` with ``{"identity": …, "name": …,
  "tracks": [{"kind": "audio", "source": "microphone", "name": …, "muted": false}]}``
  (``name`` and ``tracks`` optional),
  or ``{"token": …}``: a join token, read as LiveKit reads it at signalling (its
  identity, name, metadata, attributes, and its ``roomConfig`` when the join creates
  the room: a room that exists ignores it)
- ``DELETE /_emulator/rooms/{room}/participants/{identity}``
- ``PUT /_emulator/webhooks`` with ``{"urls": [...]}``: where LiveKit's webhooks go

Each needs ``Authorization: Bearer <hook token>`` (a random token per emulator, which
``--dev`` logs), and the POST a ``Content-Type: application/json`` body. Without
both, any web page the developer visits could drive them with a plain form post,
which sends neither and cannot without the emulator agreeing to CORS.
"""

from __future__ import annotations

import hmac
from typing import Any

from aiohttp import web
from google.protobuf import json_format
from livekit.protocol import models
from livekit.protocol import room as room_pb

from .state import RoomFull, Rooms
from .twirp import verify
from .webhooks import WebhookSender

__all__ = ["HOOKS_PREFIX", "add_hooks", "join_with_token"]


def join_with_token(
    rooms: Rooms, token: str, api_key: str, api_secret: str, room: str | None = None
) -> models.ParticipantInfo:
    """Join ``rooms`` as a join token's holder; ValueError for a token LiveKit would
    refuse (bad signature, no roomJoin, another room than ``room``)."""
    claims = verify(f"Bearer {token}", api_key, api_secret)
    video: dict[str, Any] = (claims or {}).get("video") or {}
    if claims is None or not video.get("roomJoin") or not video.get("room"):
        raise ValueError("not a valid join token")
    if room is not None and video["room"] != room:
        raise ValueError("the token is for another room")
    config = None
    if isinstance(claims.get("roomConfig"), dict):
        # As LiveKit's own verifier reads it: camelCase or snake_case, unknown fields ignored.
        config = json_format.ParseDict(
            claims["roomConfig"], room_pb.RoomConfiguration(), ignore_unknown_fields=True
        )
    attributes = claims.get("attributes")
    return rooms.add_participant(
        video["room"],
        str(claims.get("sub", "")),
        str(claims.get("name", "")),
        room_config=config,
        metadata=str(claims.get("metadata", "")),
        attributes=dict(attributes) if isinstance(attributes, dict) else None,
    )


HOOKS_PREFIX = "/_emulator"


def add_hooks(
    app: web.Application,
    rooms: Rooms,
    token: str,
    *,
    keys: tuple[str, str] = ("", ""),
    webhooks: WebhookSender | None = None,
) -> None:
    """Route the hooks on ``app``, acting on ``rooms``, guarded by ``token``; join tokens
    are checked with ``keys`` (the emulated LiveKit's API key and secret); ``webhooks``
    is told where to send."""
    expected = f"Bearer {token}".encode()

    def refusal(request: web.Request) -> web.Response | None:
        given = request.headers.get("Authorization", "").encode()
        if not hmac.compare_digest(given, expected):
            return web.json_response(
                {"error": "send Authorization: Bearer <the emulator's hook token>"}, status=401
            )
        return None

    async def join(request: web.Request) -> web.Response:
        refused = refusal(request)
        if refused is not None:
            return refused
        if request.content_type != "application/json":
            return web.json_response({"error": "send Content-Type: application/json"}, status=415)
        room = request.match_info["room"]
        try:
            body = await request.json()
            tracks: list[Any] = []
            if "token" in body:
                identity, name = None, ""
                join_token = str(body["token"])
            else:
                identity = body["identity"]
                name = body.get("name", "")
                tracks = list(body.get("tracks", []))
        except (ValueError, KeyError, TypeError, AttributeError):
            return web.json_response(
                {"error": 'send {"identity": "...", "name": "..."} or {"token": "..."}'},
                status=400,
            )
        try:
            if identity is None:
                try:
                    joined = join_with_token(rooms, join_token, *keys, room=room)
                except ValueError as exc:
                    return web.json_response({"error": str(exc)}, status=401)
            else:
                joined = rooms.add_participant(room, str(identity), str(name), tracks=tracks)
        except (ValueError, AttributeError, TypeError):
            return web.json_response(
                {"error": 'each track: {"kind": "audio"|"video"|"data", "source": …}'},
                status=400,
            )
        except KeyError:
            return web.json_response({"error": "no such room"}, status=404)
        except RoomFull:
            return web.json_response({"error": "room is full"}, status=409)
        return web.json_response({"identity": joined.identity, "name": joined.name})

    async def leave(request: web.Request) -> web.Response:
        refused = refusal(request)
        if refused is not None:
            return refused
        rooms.remove_participant(request.match_info["room"], request.match_info["identity"])
        return web.Response(status=204)

    async def webhook_urls(request: web.Request) -> web.Response:
        refused = refusal(request)
        if refused is not None:
            return refused
        if request.content_type != "application/json":
            return web.json_response({"error": "send Content-Type: application/json"}, status=415)
        try:
            urls = (await request.json())["urls"]
            if not isinstance(urls, list) or not all(
                isinstance(url, str) and url.startswith(("http://", "https://")) for url in urls
            ):
                raise TypeError(urls)
        except (ValueError, KeyError, TypeError):
            return web.json_response({"error": 'send {"urls": ["http://…", …]}'}, status=400)
        if webhooks is not None:
            webhooks.urls = tuple(urls)
        return web.json_response({"urls": urls})

    app.router.add_put(HOOKS_PREFIX + "/webhooks", webhook_urls)
    app.router.add_post(HOOKS_PREFIX + "/rooms/{room}/participants", join)
    app.router.add_delete(HOOKS_PREFIX + "/rooms/{room}/participants/{identity}", leave)
