"""The wire to LiveKit's server API: one HTTP session, signed calls, bounded waits.

Every call goes through :meth:`Transport.call`, which enforces the timeout, turns
Twirp and transport failures into :mod:`.errors` (logging what LiveKit said, never
a token) and reports each call's outcome to the observer (the metrics).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable
from typing import Protocol, TypeVar

import aiohttp
from google.protobuf.message import DecodeError
from livekit import api
from livekit.api.agent_dispatch_service import AgentDispatchService
from livekit.api.room_service import RoomService

from .errors import LiveKitError, LiveKitRejected, LiveKitUnavailable, NotFoundInLiveKit
from .signing import Signer

__all__ = ["CallObserver", "Transport"]

logger = logging.getLogger("aura_livekit_backend.livekit")

T = TypeVar("T")


class CallObserver(Protocol):
    """Hears of every call to LiveKit (the metrics implement it)."""

    def livekit_call(self, method: str, outcome: str, seconds: float) -> None:
        """One call ended: ``ok``, or the outcome of its failure."""


class _Unobserved:
    def livekit_call(self, method: str, outcome: str, seconds: float) -> None:
        pass


class _SignedRoomService(RoomService):
    """livekit-api's RoomService, its auth header from our :class:`Signer`.

    livekit-api names the grants each call needs and signs a fresh JWT with them;
    here the signer reuses one while it is fresh. ``_auth_header`` is the SDK's own
    hook for this (its pre-signed-token path goes through it too).
    """

    def __init__(self, session: aiohttp.ClientSession, url: str, signer: Signer) -> None:
        # failover=False: livekit-api fails over only between LiveKit Cloud hosts.
        super().__init__(session, url, signer.api_key, "", failover=False)
        self._signer = signer

    def _auth_header(
        self, grants: api.VideoGrants | None, sip: api.SIPGrants | None = None
    ) -> dict[str, str]:
        token = self._signer.service_token(grants or api.VideoGrants())
        return {"authorization": f"Bearer {token}"}


class _SignedAgentDispatchService(AgentDispatchService):
    """livekit-api's AgentDispatchService, signed as :class:`_SignedRoomService` is."""

    def __init__(self, session: aiohttp.ClientSession, url: str, signer: Signer) -> None:
        super().__init__(session, url, signer.api_key, "", failover=False)
        self._signer = signer

    def _auth_header(
        self, grants: api.VideoGrants | None, sip: api.SIPGrants | None = None
    ) -> dict[str, str]:
        token = self._signer.service_token(grants or api.VideoGrants())
        return {"authorization": f"Bearer {token}"}


class Transport:
    """One worker's connection to LiveKit: open it in the worker, close it on stop."""

    def __init__(
        self,
        url: str,
        signer: Signer,
        *,
        timeout: float,
        observer: CallObserver | None = None,
    ) -> None:
        """Call LiveKit at ``url``, signing with ``signer``, waiting ``timeout`` s at most."""
        self._url = url
        self._signer = signer
        self.timeout = timeout
        self._observer = observer or _Unobserved()
        self._session: aiohttp.ClientSession | None = None
        self._room: RoomService | None = None
        self._dispatch: AgentDispatchService | None = None

    async def open(self) -> None:
        """Open the HTTP session; call inside the worker's running event loop."""
        self._session = aiohttp.ClientSession()
        self._room = _SignedRoomService(self._session, self._url, self._signer)
        self._dispatch = _SignedAgentDispatchService(self._session, self._url, self._signer)

    async def close(self) -> None:
        """Close the HTTP session; safe to call twice."""
        session, self._session, self._room = self._session, None, None
        self._dispatch = None
        if session is not None:
            await session.close()

    @property
    def room(self) -> RoomService:
        """LiveKit's RoomService client, each call signed with the grants it needs."""
        if self._room is None:
            raise RuntimeError("LiveKit is used before the server started")
        return self._room

    @property
    def agent_dispatch(self) -> AgentDispatchService:
        """LiveKit's AgentDispatchService client, signed like :attr:`room`."""
        if self._dispatch is None:
            raise RuntimeError("LiveKit is used before the server started")
        return self._dispatch

    async def call(self, method: str, call: Awaitable[T]) -> T:
        """Await one LiveKit call (Twirp ``method``), translating its failures."""
        started = time.perf_counter()
        outcome = "ok"
        try:
            # Our own deadline: livekit-api 1.2 hands aiohttp timeout=None on every
            # request, which overrides the session's timeout and waits forever.
            return await asyncio.wait_for(call, self.timeout)
        except api.TwirpError as exc:
            failure = _twirp_failure(method, exc)
            outcome = failure.outcome
            raise failure from None
        except asyncio.TimeoutError:
            outcome = "timeout"
            logger.warning("LiveKit %s: no answer within %g s", method, self.timeout)
            raise LiveKitUnavailable(
                f"LiveKit is unavailable (no answer within {self.timeout:g} s)"
            ) from None
        except aiohttp.ClientConnectorError as exc:
            outcome = "unreachable"
            logger.warning("LiveKit %s: cannot connect (%s)", method, type(exc).__name__)
            raise LiveKitUnavailable("LiveKit is unavailable (cannot connect)") from None
        except aiohttp.ClientError as exc:
            # Connected, then the connection died: a LiveKit restarting, a proxy timing out.
            outcome = "unreachable"
            logger.warning("LiveKit %s: connection dropped (%s)", method, type(exc).__name__)
            raise LiveKitUnavailable(
                "LiveKit is unavailable (the connection was dropped)"
            ) from None
        except DecodeError:
            outcome = "undecodable"
            logger.warning("LiveKit %s: the answer is not protobuf", method)
            raise LiveKitError("LiveKit sent an answer that could not be read") from None
        finally:
            self._observer.livekit_call(method, outcome, time.perf_counter() - started)


def _twirp_failure(method: str, exc: api.TwirpError) -> LiveKitError:
    logger.warning("LiveKit %s answered %s %s: %.200s", method, exc.status, exc.code, exc.message)
    if exc.code == api.TwirpErrorCode.UNAUTHENTICATED and "permission" in exc.message.lower():
        # LiveKit wraps a missing grant as unauthenticated "permissions denied"
        # (pkg/service/auth.go), unlike a token it cannot verify (plain-text 401).
        return LiveKitRejected("LiveKit refused the call: the API key lacks a permission")
    if exc.status == 401 or exc.code == api.TwirpErrorCode.UNAUTHENTICATED:
        return LiveKitRejected(
            "LiveKit rejected the service's credentials "
            "(check LIVEKIT_API_KEY and LIVEKIT_API_SECRET)"
        )
    if exc.status == 403 or exc.code == api.TwirpErrorCode.PERMISSION_DENIED:
        return LiveKitRejected("LiveKit refused the call: the API key lacks a permission")
    # 502 and 504 come from a proxy in front of a LiveKit that is down or slow.
    if exc.status in (408, 429, 502, 503, 504) or exc.code in (
        api.TwirpErrorCode.UNAVAILABLE,
        api.TwirpErrorCode.RESOURCE_EXHAUSTED,
        api.TwirpErrorCode.DEADLINE_EXCEEDED,
    ):
        return LiveKitUnavailable(f"LiveKit is unavailable ({exc.status} {exc.code})")
    if exc.code == api.TwirpErrorCode.NOT_FOUND:
        return NotFoundInLiveKit(
            f"LiveKit answered with an unexpected error ({exc.status} {exc.code})"
        )
    return LiveKitError(f"LiveKit answered with an unexpected error ({exc.status} {exc.code})")
