"""A sick LiveKit: which calls fail, how, and the answers they get instead.

A disturbance answers some or all calls (of one method or every method) with a
Twirp error or one of the :data:`FAULTS` — what a sick LiveKit, or what stands
between it and the service, would send — for a while or until healed.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

from aiohttp import web

from .twirp import METHODS, STATUS, TwirpFault

__all__ = ["FAULTS", "SICK_LIVEKIT", "STALL_SECONDS", "Faults"]

#: How long a "stall" fault holds its answer: past any sane client timeout.
STALL_SECONDS = 30.0
#: What a call can get besides a Twirp error, as a sick LiveKit, or what stands
#: between it and the service, would answer.
FAULTS = {
    "garbage": "200 with a body that is not protobuf (a broken proxy or server)",
    "reset": "the connection is dropped without an answer",
    "plain_401": "a plain-text 401, as LiveKit's auth middleware refuses a token",
    "proxy_502": "an HTML 502 page from a proxy in front of LiveKit",
    "stall": f"no answer for {STALL_SECONDS:g} s, then the real one (a LiveKit that hangs)",
}
#: A sick LiveKit: every fault above, and the two Twirp errors it answers most when ill.
SICK_LIVEKIT = (*FAULTS, "unavailable", "internal")
# Sixteen 0xff bytes: a varint longer than protobuf allows, so never a valid message.
_GARBAGE = b"\xff" * 16


@dataclass(frozen=True)
class _Disturbance:
    kinds: tuple[str, ...]
    share: float
    #: time.monotonic() after which it heals by itself; None: until healed.
    until: float | None
    msg: str


class Faults:
    """The disturbances in force, and the count of the faults they served."""

    def __init__(self) -> None:
        """A healthy LiveKit."""
        #: Calls answered with a fault instead, by kind (a FAULTS name or Twirp code).
        self.served: Counter[str] = Counter()
        # By method name; None disturbs every method.
        self._disturbances: dict[str | None, _Disturbance] = {}
        self._random = random.Random()  # noqa: S311 (picks faults to serve, not secrets)

    def disturb(
        self,
        kind: str | Sequence[str],
        *,
        method: str | None = None,
        share: float = 1.0,
        seconds: float | None = None,
        msg: str = "emulated failure",
    ) -> None:
        """Answer calls with a fault from now on (see ``LiveKitEmulator.disturb``)."""
        kinds = (kind,) if isinstance(kind, str) else tuple(kind)
        for one in kinds:
            if one not in FAULTS and one not in STATUS:
                raise ValueError(f"unknown fault {one!r}: one of {sorted(FAULTS)} or a Twirp code")
        if not kinds:
            raise ValueError("name at least one fault")
        if method is not None and method not in METHODS:
            raise ValueError(f"RoomService has no method {method}")
        if not 0 < share <= 1:
            raise ValueError("share must be more than 0 and at most 1")
        until = None if seconds is None else time.monotonic() + seconds
        self._disturbances[method] = _Disturbance(kinds, share, until, msg)

    def heal(self) -> None:
        """Drop every disturbance."""
        self._disturbances.clear()

    def _pick(self, method: str) -> _Disturbance | None:
        """The disturbance that hits this call of ``method``, if any."""
        for key in (method, None):
            found = self._disturbances.get(key)
            if found is None:
                continue
            if found.until is not None and time.monotonic() >= found.until:
                self._disturbances.pop(key, None)
                continue
            if found.share >= 1 or self._random.random() < found.share:
                return found
            return None
        return None

    async def answer(self, request: web.Request, method: str) -> web.StreamResponse | None:
        """The sick answer to this call of ``method``, or None to answer it normally.

        A stall holds the call for :data:`STALL_SECONDS`, then lets it through.
        """
        found = self._pick(method)
        if found is None:
            return None
        kind = self._random.choice(found.kinds)
        self.served[kind] += 1
        if kind == "stall":
            await asyncio.sleep(STALL_SECONDS)
            return None
        if kind == "reset":
            if request.transport is not None:
                request.transport.abort()
            # Nothing reaches the client; this only ends the handler.
            return web.Response(status=499)
        if kind == "garbage":
            return web.Response(body=_GARBAGE, content_type=request.content_type)
        if kind == "plain_401":
            return web.Response(status=401, text="invalid token\n")
        if kind == "proxy_502":
            return web.Response(
                status=502,
                text="<html><body><h1>502 Bad Gateway</h1></body></html>",
                content_type="text/html",
            )
        return TwirpFault(kind, found.msg).response()
