"""The emulator's own HTTP hooks (not LiveKit's): people joining and leaving rooms.

The emulator carries no media, so nobody joins over WebRTC; behind
``aura-livekit-backend --dev`` these let a person, or a test in another process,
stand in for joins and leaves:

- ``POST /_emulator/rooms/{room}/participants`` with ``{"identity": …, "name": …}``
- ``DELETE /_emulator/rooms/{room}/participants/{identity}``

Each needs ``Authorization: Bearer <hook token>`` (a random token per emulator, which
``--dev`` logs), and the POST a ``Content-Type: application/json`` body. Without
both, any web page the developer visits could drive them with a plain form post,
which sends neither and cannot without the emulator agreeing to CORS.
"""

from __future__ import annotations

import hmac

from aiohttp import web

from .state import RoomFull, Rooms

__all__ = ["HOOKS_PREFIX", "add_hooks"]

HOOKS_PREFIX = "/_emulator"


def add_hooks(app: web.Application, rooms: Rooms, token: str) -> None:
    """Route the hooks on ``app``, acting on ``rooms``, guarded by ``token``."""
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
        try:
            body = await request.json()
            identity = body["identity"]
            name = body.get("name", "")
        except (ValueError, KeyError, TypeError, AttributeError):
            return web.json_response(
                {"error": 'send {"identity": "...", "name": "..."}'}, status=400
            )
        try:
            joined = rooms.add_participant(request.match_info["room"], str(identity), str(name))
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

    app.router.add_post(HOOKS_PREFIX + "/rooms/{room}/participants", join)
    app.router.add_delete(HOOKS_PREFIX + "/rooms/{room}/participants/{identity}", leave)
