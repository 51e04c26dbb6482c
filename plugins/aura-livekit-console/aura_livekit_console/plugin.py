"""The console's routes: pages, their live fragments, sign-in, actions, assets."""

from __future__ import annotations

import bisect
import hashlib
import hmac
import time
from collections.abc import Awaitable, Callable, Sequence
from functools import wraps
from typing import Any
from urllib.parse import urlencode

from pydantic import TypeAdapter, ValidationError
from sanic import HTTPResponse, Request, json, redirect
from sanic_ext import openapi

from aura_livekit_backend.plugin import (
    ApiError,
    Plugin,
    PluginContext,
    RequiredTopicText,
    RoomInfo,
    RoomSnapshot,
    caller_of,
    check_text,
    failing_to,
    room_position,
)

from . import pages
from .assets import AssetFiles
from .events import MAX_NUMBER, ConsoleEvents, whole_number
from .markup import Html, path
from .session import COOKIE, Session, Sessions
from .settings import ConsoleSettings, ModerationKeys
from .throttle import Throttle

__all__ = ["CONTENT_SECURITY_POLICY", "plugin", "setup"]

#: A route's handler; None once it answered itself (a stream).
Handler = Callable[..., Awaitable[HTTPResponse | None]]

#: Everything from the service itself; no inline script or style, no frames, no plugins.
CONTENT_SECURITY_POLICY = "; ".join(
    (
        "default-src 'none'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self'",
        "connect-src 'self'",
        "base-uri 'none'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    )
)
#: Sent with every console answer, pages, fragments and errors alike.
SECURITY_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "X-Content-Type-Options": "nosniff",
    "Cross-Origin-Opener-Policy": "same-origin",
}
_A_YEAR = 365 * 24 * 3600
_topic = TypeAdapter(RequiredTopicText)


def _secret(ctx: PluginContext, settings: ConsoleSettings) -> bytes:
    """The server-wide signing secret: the same on every worker and replica."""
    parts = [b"aura-livekit-console"]
    livekit = ctx.settings.livekit_api_secret
    parts.append(livekit.get_secret_value().encode() if livekit else b"")
    if settings.session_secret is not None:
        parts.append(settings.session_secret.get_secret_value().encode())
    return hashlib.sha256(b"\0".join(parts)).digest()


def _cursor(room: RoomInfo) -> str:
    ms, name = room_position(room)
    return f"{ms}.{name}"


def _parse_cursor(text: str | None) -> tuple[int, str] | None:
    if not text:
        return None
    ms, dot, name = text.partition(".")
    number = whole_number(ms) if dot and len(text) <= 400 else None
    if number is None:
        raise ApiError(400, "after: not a cursor this console made")
    return (number, name)


def _search_index(snapshot: RoomSnapshot) -> list[str]:
    """Every room's searchable text, lowercased, in the snapshot's order (once per
    snapshot: a search then costs one substring test per room)."""
    return [
        f"{room.topic}\n{room.name}\n{room.sid}\n{room.created_by}".casefold()
        for room in (snapshot.room_at(index) for index in range(snapshot.total))
    ]


def setup(ctx: PluginContext) -> None:
    """Add the console's routes under ``/console``.

    The plugin is mounted at the root (``Plugin(at_root=True)``); every route checks
    the console's own sign-in instead of the service's API keys (``ctx_api_keys=False``),
    but for ``POST /console/sign-in/token``, where the service verifies the JWT.
    """
    settings = ctx.read_settings(ConsoleSettings)
    moderation = ctx.read_settings(ModerationKeys)
    keys = [key.get_secret_value() for key in (*settings.keys, *moderation.api_keys)]
    sessions = Sessions(secret=_secret(ctx, settings), keys=keys, lifetime=settings.session_seconds)
    jwt_mode = ctx.settings.auth_mode == "jwt" and bool(settings.role_names)
    throttle = Throttle(ctx.settings.rate_limit_auth_failures)
    assets = AssetFiles()
    events = ConsoleEvents(ctx)
    rooms = ctx.rooms
    bp = ctx.blueprint
    size = settings.page_size

    # -- answers -----------------------------------------------------------------

    async def secure(request: Request, response: HTTPResponse) -> None:
        for name, value in SECURITY_HEADERS.items():
            response.headers.setdefault(name, value)
        # Signed-in pages and fragments are the operator's alone: never stored.
        response.headers.setdefault("Cache-Control", "no-store")

    bp.middleware(secure, "response")

    def page(markup: Html, status: int = 200) -> HTTPResponse:
        return HTTPResponse(markup, status=status, content_type="text/html; charset=utf-8")

    def session_of(request: Request) -> Session | None:
        found = sessions.check(request.cookies.get(COOKIE))
        if found is not None and found.kind == "jwt" and not jwt_mode:
            return None  # the identity provider was switched off since
        return found

    def signed_in(handler: Handler) -> Handler:
        """Pages: without a session, to the sign-in page (no data)."""

        @wraps(handler)
        async def guarded(request: Request, *args: Any, **kwargs: Any) -> HTTPResponse | None:
            session = session_of(request)
            if session is None:
                return redirect("/console/sign-in", status=303)
            return await handler(request, session, *args, **kwargs)

        return guarded

    def signed_in_json(handler: Handler) -> Handler:
        """Fragments and streams: without a session, a 401 (the script goes to sign-in)."""

        @wraps(handler)
        async def guarded(request: Request, *args: Any, **kwargs: Any) -> HTTPResponse | None:
            session = session_of(request)
            if session is None:
                raise ApiError(401, "sign in to the console first")
            return await handler(request, session, *args, **kwargs)

        return guarded

    def action(handler: Handler) -> Handler:
        """Actions: a session, and its CSRF token in the form (or ``X-CSRF-Token``)."""

        @wraps(handler)
        async def guarded(request: Request, *args: Any, **kwargs: Any) -> HTTPResponse | None:
            session = session_of(request)
            if session is None:
                return redirect("/console/sign-in", status=303)
            given = _form(request, "csrf") or request.headers.get("x-csrf-token")
            if not sessions.csrf_ok(session, given):
                raise ApiError(403, "the console's CSRF token is missing or wrong: reload the page")
            return await handler(request, session, *args, **kwargs)

        return guarded

    def failed(session: Session | None, error: ApiError, back: str) -> HTTPResponse:
        csrf = sessions.csrf_token(session) if session else None
        markup = pages.error_page(
            error.status_code,
            str(error.message),
            assets=assets,
            who=session.who if session else None,
            csrf=csrf,
            back=back,
        )
        return page(markup, status=error.status_code)

    def open_session(request: Request, response: HTTPResponse, session: Session) -> None:
        response.add_cookie(
            COOKIE,
            session.cookie,
            path="/console",
            httponly=True,
            samesite="Strict",
            # The request's scheme honours the service's proxy settings
            # (AURA_FORWARDED_SECRET, AURA_PROXIES_COUNT): https behind a TLS proxy.
            secure=request.scheme in ("https", "wss"),
            max_age=max(1, session.expires - int(time.time())),
        )

    def route(
        uri: str, methods: Sequence[str] = ("GET",), **options: Any
    ) -> Callable[[Handler], Handler]:
        """A console route: out of the OpenAPI document (it is HTML, not the API), and
        exempt from the service's key check unless ``ctx_api_keys=True`` is given."""
        guarded = options.pop("ctx_api_keys", False)

        def add(handler: Handler) -> Handler:
            excluded = openapi.exclude()(handler)
            bp.route(uri, methods=list(methods), ctx_api_keys=guarded, **options)(excluded)
            return handler

        return add

    # -- sign-in -----------------------------------------------------------------

    def sign_in_markup(message: str = "") -> Html:
        return pages.sign_in_page(assets, message=message, keys=bool(sessions), jwt=jwt_mode)

    @route("/console/sign-in")
    async def sign_in_form(request: Request) -> HTTPResponse:
        if session_of(request) is not None:
            return redirect("/console", status=303)
        return page(sign_in_markup())

    @route("/console/sign-in", methods=("POST",))
    async def sign_in(request: Request) -> HTTPResponse:
        address = caller_of(request).address
        wait = throttle.retry_after(address)
        if wait:
            response = page(
                sign_in_markup(f"Too many failed sign-ins from this address; retry in {wait} s."),
                status=429,
            )
            response.headers["Retry-After"] = str(wait)
            return response
        given = (_form(request, "key") or "").strip()
        fingerprint = sessions.match_key(given) if given else None
        if fingerprint is None:
            throttle.failed(address)
            message = "The console is closed." if not sessions else "That key is not valid."
            return page(sign_in_markup(message), status=401)
        response = redirect("/console", status=303)
        open_session(request, response, sessions.open("key", fingerprint))
        return response

    @route("/console/sign-in/token", methods=("POST",), ctx_api_keys=True)
    async def sign_in_with_token(request: Request) -> HTTPResponse:
        # The service's access check ran first: with AURA_AUTH=jwt the caller is a
        # verified person here, or the request was refused with 401.
        if not jwt_mode:
            raise ApiError(
                403, "signing in with a token needs AURA_AUTH=jwt and AURA_CONSOLE_ROLES"
            )
        caller = caller_of(request)
        if caller.identity is None:
            raise ApiError(403, "sign in with a person's token from the identity provider")
        roles = caller.claims.get(settings.role_claim)
        held = (
            {roles}
            if isinstance(roles, str)
            else set(roles or ())
            if isinstance(roles, list)
            else set()
        )
        if not held & settings.role_names:
            raise ApiError(
                403,
                f"the token's {settings.role_claim} claim holds none of: "
                + ", ".join(sorted(settings.role_names)),
            )
        expires = caller.claims.get("exp")
        # Verified by the service, but any size: one beyond a float (10**400) is as
        # good as none, and the session's own lifetime ends it.
        not_after = (
            float(expires)
            if isinstance(expires, (int, float)) and abs(expires) <= MAX_NUMBER
            else None
        )
        session = sessions.open("jwt", caller.identity, not_after=not_after)
        response = json({"signedIn": True, "identity": caller.identity})
        open_session(request, response, session)
        return response

    @route("/console/sign-out", methods=("POST",))
    @action
    async def sign_out(request: Request, session: Session) -> HTTPResponse:
        response = redirect("/console/sign-in", status=303)
        response.delete_cookie(COOKIE, path="/console")
        return response

    # -- rooms -------------------------------------------------------------------

    async def rooms_view(request: Request) -> pages.RoomsView:
        query = (request.args.get("q") or "").strip()[:200]
        after = _parse_cursor(request.args.get("after"))
        with failing_to("list rooms"):
            snapshot = await rooms.snapshot()
        indices: Sequence[int]
        if query:
            needle = query.casefold()
            index = snapshot.memo("console.search", _search_index)
            indices = snapshot.memo(
                "console.search:" + needle,
                lambda _: [i for i, text in enumerate(index) if needle in text],
            )
        else:
            indices = range(snapshot.total)
        # Pages stand on positions, not offsets: a room that closes does not shift the next.
        first = bisect.bisect_left(indices, snapshot.start_after(after))
        chosen = [snapshot.room_at(i) for i in indices[first : first + size]]
        previous = max(0, first - size)
        return pages.RoomsView(
            rooms=chosen,
            matching=len(indices),
            total=snapshot.total,
            query=query,
            before=None
            if first == 0
            else ("" if previous == 0 else _cursor(snapshot.room_at(indices[previous - 1]))),
            after=_cursor(chosen[-1]) if first + size < len(indices) and chosen else None,
            now=time.time(),
        )

    def rooms_query(request: Request) -> str:
        kept = {key: request.args.get(key) for key in ("q", "after") if request.args.get(key)}
        return "?" + urlencode(kept) if kept else ""

    @route("/console", strict_slashes=False)
    @signed_in
    async def rooms_page(request: Request, session: Session) -> HTTPResponse:
        try:
            view = await rooms_view(request)
        except ApiError as exc:
            return failed(session, exc, "/console")
        return page(
            pages.rooms_page(
                view,
                assets=assets,
                who=session.who,
                csrf=sessions.csrf_token(session),
                live="/console/rooms.json" + rooms_query(request),
                done=request.args.get("done"),
            )
        )

    @route("/console/rooms.json")
    @signed_in_json
    async def rooms_fragment(request: Request, session: Session) -> HTTPResponse:
        return json(pages.rooms_fragment(await rooms_view(request)))

    # -- one room ----------------------------------------------------------------

    async def room_parts(room_id: str, session: Session) -> tuple[RoomInfo, dict[str, Any]]:
        with failing_to("get room"):
            room, people = await rooms.participants(room_id)
            dispatches = await rooms.dispatches(room.name)
        recent = await events.recent(room=room.name, limit=20)
        live = pages.room_live(
            room, people, dispatches, recent, csrf=sessions.csrf_token(session), now=time.time()
        )
        return room, live

    @route("/console/room/<roomId:str>")
    @signed_in
    async def room_page(request: Request, session: Session, roomId: str) -> HTTPResponse:
        room_id = _text("roomId", roomId)
        try:
            room, live = await room_parts(room_id, session)
        except ApiError as exc:
            return failed(session, exc, "/console")
        return page(
            pages.room_page(
                room,
                live,
                assets=assets,
                who=session.who,
                csrf=sessions.csrf_token(session),
                live_url=path("room", room.name, "live"),
                done=request.args.get("done"),
            )
        )

    @route("/console/room/<roomId:str>/live")
    @signed_in_json
    async def room_fragment(request: Request, session: Session, roomId: str) -> HTTPResponse:
        _, live = await room_parts(_text("roomId", roomId), session)
        return json(live)

    # -- actions -----------------------------------------------------------------

    def confirm(
        request: Request,
        session: Session,
        *,
        title: str,
        question: str,
        button: str,
        fields: dict[str, str],
        cancel: str,
    ) -> HTTPResponse | None:
        """The confirmation page, unless this is the confirmed submission."""
        if _form(request, "confirmed") == "yes":
            return None
        return page(
            pages.confirm_page(
                title=title,
                question=question,
                action=request.path,
                fields=fields,
                button=button,
                cancel=cancel,
                assets=assets,
                who=session.who,
                csrf=sessions.csrf_token(session),
            )
        )

    @route("/console/room/<roomId:str>/close", methods=("POST",))
    @action
    async def close_room(request: Request, session: Session, roomId: str) -> HTTPResponse:
        room_id = _text("roomId", roomId)
        back = path("room", room_id)
        asking = confirm(
            request,
            session,
            title="Close the room?",
            question=f"Close {room_id}? Everyone in it is disconnected.",
            button="Close room",
            fields={},
            cancel=back,
        )
        if asking is not None:
            return asking
        try:
            with failing_to("close room"):
                await rooms.delete(room_id)
        except ApiError as exc:
            return failed(session, exc, back)
        return redirect("/console?" + urlencode({"done": "closed"}), status=303)

    @route("/console/room/<roomId:str>/topic", methods=("POST",))
    @action
    async def change_topic(request: Request, session: Session, roomId: str) -> HTTPResponse:
        room_id = _text("roomId", roomId)
        back = path("room", room_id)
        try:
            topic = _topic.validate_python(_form(request, "topic") or "")
        except ValidationError as exc:
            reason = exc.errors()[0]["msg"].removeprefix("Value error, ")
            return failed(session, ApiError(400, f"topic: {reason}"), back)
        asking = confirm(
            request,
            session,
            title="Change the topic?",
            question=f"Change the topic of {room_id} to “{topic}”?",
            button="Change topic",
            fields={"topic": topic},
            cancel=back,
        )
        if asking is not None:
            return asking
        try:
            with failing_to("update room"):
                await rooms.update(room_id, topic=topic)
        except ApiError as exc:
            return failed(session, exc, back)
        return redirect(back + "?done=topic", status=303)

    @route("/console/room/<roomId:str>/remove", methods=("POST",))
    @action
    async def remove_participant(request: Request, session: Session, roomId: str) -> HTTPResponse:
        room_id = _text("roomId", roomId)
        back = path("room", room_id)
        identity = _text("identity", _form(request, "identity") or "")
        asking = confirm(
            request,
            session,
            title="Remove the participant?",
            question=f"Remove {identity} from {room_id}? They can rejoin with a token they hold.",
            button="Remove",
            fields={"identity": identity},
            cancel=back,
        )
        if asking is not None:
            return asking
        try:
            with failing_to("remove participant"):
                await rooms.remove_participant(room_id, identity)
        except ApiError as exc:
            return failed(session, exc, back)
        return redirect(back + "?done=removed", status=303)

    @route("/console/room/<roomId:str>/mute", methods=("POST",))
    @action
    async def mute_track(request: Request, session: Session, roomId: str) -> HTTPResponse:
        room_id = _text("roomId", roomId)
        back = path("room", room_id)
        identity = _text("identity", _form(request, "identity") or "")
        track = _text("track", _form(request, "track") or "")
        asking = confirm(
            request,
            session,
            title="Mute the track?",
            question=f"Mute track {track} of {identity} in {room_id}?",
            button="Mute",
            fields={"identity": identity, "track": track},
            cancel=back,
        )
        if asking is not None:
            return asking
        try:
            with failing_to("mute track"):
                await rooms.mute_track(room_id, identity, track)
        except ApiError as exc:
            return failed(session, exc, back)
        return redirect(back + "?done=muted", status=303)

    # -- events and history ------------------------------------------------------

    @route("/console/events")
    @signed_in
    async def events_page(request: Request, session: Session) -> HTTPResponse:
        recent = await events.recent(limit=50)
        last = recent[0].position if recent else await events.last_position()
        return page(
            pages.events_page(
                recent,
                last=last,
                assets=assets,
                who=session.who,
                csrf=sessions.csrf_token(session),
            )
        )

    @route("/console/events/stream")
    @signed_in_json
    async def events_stream(request: Request, session: Session) -> HTTPResponse | None:
        return await events.relay(request, until=session.expires)

    # Before Sanic waits for open connections to finish: a stream would hold it up.
    @bp.before_server_stop
    async def end_streams(app: Any) -> None:
        await events.stop()

    @route("/console/history")
    @signed_in
    async def history_page(request: Request, session: Session) -> HTTPResponse:
        found = await events.ended_rooms()
        ended, complete = found if found is not None else (None, True)
        return page(
            pages.history_page(
                ended,
                complete=complete,
                assets=assets,
                who=session.who,
                csrf=sessions.csrf_token(session),
            )
        )

    # -- assets ------------------------------------------------------------------

    @route("/console/assets/<name:str>")
    async def asset(request: Request, name: str) -> HTTPResponse:
        found = assets.get(name)
        if found is None:
            raise ApiError(404, "no such asset")
        headers = {
            "Cache-Control": f"public, max-age={_A_YEAR}, immutable",
            "ETag": found.etag,
        }
        if hmac.compare_digest(request.headers.get("if-none-match", ""), found.etag):
            return HTTPResponse(status=304, headers=headers)
        return HTTPResponse(found.body, content_type=found.content_type, headers=headers)


def _form(request: Request, name: str) -> str | None:
    """A field of an urlencoded form body, or None."""
    try:
        form = request.form
    except Exception:  # a body that is no form at all is a form without the field
        return None
    value = form.get(name) if form else None
    return value if isinstance(value, str) else None


def _text(name: str, value: str) -> str:
    """A name from a path or form: 1 to 256 characters, no control or invisible ones."""
    if not value or len(value) > 256:
        raise ApiError(400, f"{name}: must be 1 to 256 characters")
    try:
        check_text(value)
    except ValueError as exc:
        raise ApiError(400, f"{name}: {exc}") from None
    return value


plugin = Plugin(
    setup=setup,
    description="Console: rooms, people and events in the browser at /console (sign-in).",
    at_root=True,
)
