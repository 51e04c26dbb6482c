"""The emulator as a server: LiveKit's RoomService on 127.0.0.1, in a background thread.

It ties the parts together — the rooms (:mod:`.state`), the wire (:mod:`.twirp`),
the faults (:mod:`.faults`) and the hooks (:mod:`.hooks`) — and runs them on an
event loop of its own, so a test can drive it synchronously while the service under
test runs on another loop.
"""

from __future__ import annotations

import asyncio
import secrets
import socket
import threading
import time
import warnings
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

import jwt
from aiohttp import web
from livekit.protocol import models
from livekit.protocol.agent_dispatch import AgentDispatch

from ..loop_thread import Cleanup, LoopThread
from ..settings import DEV_API_KEY, DEV_API_SECRET, MIN_SECRET_BYTES
from .faults import Faults
from .hooks import add_hooks, join_with_token
from .state import MAX_METADATA_BYTES, Rooms
from .twirp import serve_call
from .webhooks import WebhookSender

__all__ = ["LiveKitEmulator", "free_port"]


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class LiveKitEmulator:
    """LiveKit's RoomService on ``127.0.0.1``, in a background thread.

    ::

        with LiveKitEmulator(api_key="key", api_secret="a-secret-of-32-bytes-or-more…") as lk:
            settings = Settings(livekit_url=lk.url, livekit_api_key="key", …)
    """

    def __init__(
        self,
        api_key: str = DEV_API_KEY,
        api_secret: str = DEV_API_SECRET,
        *,
        port: int = 0,
        clock: Callable[[], float] = time.time,
        webhook_urls: Iterable[str] = (),
    ) -> None:
        """Emulate a LiveKit that accepts ``api_key``/``api_secret``; ``port`` 0 picks one.

        ``clock`` is the time in seconds that rooms age by (a test may pass its own).
        ``webhook_urls``: where its webhooks go (also settable later, on :attr:`webhooks`).
        """
        self.api_key = api_key
        self.api_secret = api_secret
        self.port = port
        #: Seconds added before every Twirp answer (a slow LiveKit).
        self.latency = 0.0
        #: Twirp calls received, by method name.
        self.calls: Counter[str] = Counter()
        #: The bearer token the ``/_emulator/…`` hooks demand; one per emulator, kept
        #: across an :meth:`outage`.
        self.hook_token = secrets.token_urlsafe(32)
        self._rooms = Rooms(clock)
        #: LiveKit's webhooks: set ``webhooks.urls`` to receive them (see
        #: :class:`~.webhooks.WebhookSender` for duplicates, backoff and what was sent).
        self.webhooks = WebhookSender(api_key, api_secret, webhook_urls)
        self._rooms.on_event = self.webhooks.report
        self._faults = Faults()
        self._outage: threading.Timer | None = None
        self._server = LoopThread("livekit-emulator")

    @property
    def url(self) -> str:
        """The URL to give the service as ``LIVEKIT_URL``."""
        return f"http://127.0.0.1:{self.port}"

    @property
    def clock(self) -> Callable[[], float]:
        """The time in seconds that rooms age by."""
        return self._rooms.clock

    @property
    def faults_served(self) -> Counter[str]:
        """Calls answered with a fault instead, by kind (a FAULTS name or Twirp code)."""
        return self._faults.served

    # -- lifecycle ---------------------------------------------------------------

    def start(self) -> LiveKitEmulator:
        """Start serving; returns once the port accepts connections."""
        if self._server.running:
            raise RuntimeError("the emulator is already running")
        if len(self.api_secret.encode()) < MIN_SECRET_BYTES:
            # LiveKit's dev secret is short by design; PyJWT would warn at every call.
            warnings.filterwarnings("ignore", category=jwt.InsecureKeyLengthWarning)
        self._server.start(self._serve)
        return self

    async def _serve(self) -> Cleanup:
        app = web.Application(client_max_size=2 * MAX_METADATA_BYTES)
        app.router.add_route("*", "/twirp/{path:.*}", self._twirp)
        add_hooks(
            app,
            self._rooms,
            self.hook_token,
            keys=(self.api_key, self.api_secret),
            webhooks=self.webhooks,
        )
        # A stalled call must not hold up stop() for its 30 s.
        runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.5)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", self.port, reuse_address=True)
        await site.start()
        # What port 0 became.
        self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        loop = asyncio.get_running_loop()
        expiry = loop.create_task(self._close_expired_rooms())
        self.webhooks.attach(loop)

        async def cleanup() -> None:
            expiry.cancel()
            await self.webhooks.detach()
            await runner.cleanup()

        return cleanup

    async def _close_expired_rooms(self) -> None:
        """Close rooms past their timeouts as they expire, not at the next call, so their
        room_finished webhooks go out when LiveKit's would."""
        while True:
            await asyncio.sleep(0.5)
            if self.webhooks.urls:
                self._rooms.names()

    async def _twirp(self, request: web.Request) -> web.StreamResponse:
        return await serve_call(
            request,
            api_key=self.api_key,
            api_secret=self.api_secret,
            rooms=self._rooms,
            intercept=self._intercept,
        )

    async def _intercept(self, request: web.Request, method: str) -> web.StreamResponse | None:
        """Count the call, then make it slow or sick as the test asked."""
        self.calls[method] += 1
        if self.latency:
            await asyncio.sleep(self.latency)
        return await self._faults.answer(request, method)

    def stop(self) -> None:
        """Stop serving (connections are refused from now on); rooms are kept."""
        if self._outage is not None:
            self._outage.cancel()
            self._outage = None
        self._halt()

    def _halt(self) -> None:
        self._server.stop()

    def __enter__(self) -> LiveKitEmulator:
        """Start; the block runs with the emulator serving."""
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        """Stop."""
        self.stop()

    # -- what a test may do to the emulated LiveKit --------------------------------

    def add_participant(
        self,
        room: str,
        identity: str,
        name: str = "",
        *,
        publisher: bool = False,
        tracks: Iterable[Mapping[str, Any]] = (),
    ) -> models.ParticipantInfo:
        """Join ``identity`` to ``room`` as LiveKit would at WebRTC signalling.

        ``tracks``: what they publish, e.g. ``[{"kind": "audio", "source": "microphone"}]``
        (also ``name``, ``muted``); each gets a ``TR_`` sid, and MutePublishedTrack works
        on it.

        A second join with the same identity replaces the first (LiveKit disconnects
        it). Raises :class:`~.state.RoomFull` when max_participants are already in,
        KeyError when the room does not exist.
        """
        return self._rooms.add_participant(room, identity, name, publisher=publisher, tracks=tracks)

    def create_rooms(
        self, names: Iterable[str], *, empty_timeout: int = 0, metadata: str = ""
    ) -> None:
        """Make rooms named ``names`` at once, as CreateRoom would, without a call each:
        a test of 10,000 rooms fills the emulator in a moment (existing names are kept)."""
        self._rooms.create_rooms(names, empty_timeout=empty_timeout, metadata=metadata)

    def join_with_token(self, token: str) -> models.ParticipantInfo:
        """Join as the holder of a join ``token`` would: its room, identity, name,
        metadata and attributes; its ``roomConfig`` creates the room (agents dispatched)
        only if the room does not exist, as LiveKit does. ValueError for a bad token."""
        return join_with_token(self._rooms, token, self.api_key, self.api_secret)

    def dispatches(self, room: str) -> list[AgentDispatch]:
        """The room's agent dispatches, oldest first; KeyError when no such room."""
        return self._rooms.dispatches(room)

    def remove_participant(self, room: str, identity: str) -> None:
        """``identity`` leaves ``room`` (the departure timeout starts when it empties)."""
        self._rooms.remove_participant(room, identity)

    def close_room(self, room: str) -> None:
        """Close ``room`` now, as LiveKit's DeleteRoom would; KeyError when it does not exist.

        Everyone in it is disconnected; the service learns of it at its next call.
        """
        self._rooms.close(room)

    def room_names(self) -> list[str]:
        """The names of the rooms that are open now, sorted."""
        return self._rooms.names()

    def disturb(
        self,
        kind: str | Sequence[str],
        *,
        method: str | None = None,
        share: float = 1.0,
        seconds: float | None = None,
        msg: str = "emulated failure",
    ) -> None:
        """Answer calls with a fault instead of their answer, from now on.

        ``kind`` is a name in :data:`~.faults.FAULTS` or a Twirp error code
        (``"unavailable"``, ``"internal"``, …; ``msg`` is its message), or several, one
        picked at random for each call hit. ``method`` limits it to one RoomService
        method (a method's own disturbance wins over an all-methods one); ``share`` is
        the fraction of calls hit, at random; ``seconds`` heals it by itself after that
        long. The call is still counted in :attr:`calls`. Raises ValueError for an
        unknown kind or method, or a share outside (0, 1].
        """
        self._faults.disturb(kind, method=method, share=share, seconds=seconds, msg=msg)

    def heal(self) -> None:
        """Drop every disturbance and the latency: LiveKit is well again."""
        self._faults.heal()
        self.latency = 0.0

    def outage(self, seconds: float) -> None:
        """Refuse every connection for ``seconds``, then serve again on the same port.

        Returns at once; the rooms are kept, as a LiveKit that restarts with Redis would.
        """
        if not self._server.running:
            raise RuntimeError("the emulator is not running")
        self._halt()
        self._outage = threading.Timer(seconds, self._end_outage)
        self._outage.daemon = True
        self._outage.start()

    def _end_outage(self) -> None:
        self._outage = None
        self.start()
