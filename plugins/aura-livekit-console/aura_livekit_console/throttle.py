"""Failed sign-ins per client address, held back past a rate.

The rate is the service's own ``AURA_RATE_LIMIT_AUTH_FAILURES`` (30 a minute), in the
``limits`` notation it is written in. Counted in each worker's memory with a fixed
window: the contract does not hand plugins the service's (possibly Redis-backed)
limiter, so with N workers an address gets at most N times the rate — against keys of
at least 16 random characters, still nothing a guesser can use. The failed sign-in
answers 401, which the service's own limiter counts as well.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from limits import parse_many

__all__ = ["Throttle"]

#: Addresses remembered at most; past it, windows that are over are dropped first.
_MAX_ADDRESSES = 10_000


class Throttle:
    """Counts failures per address; :meth:`retry_after` says when one may try again."""

    def __init__(self, rate: str | None, *, clock: Callable[[], float] = time.monotonic) -> None:
        """``rate`` in limits' notation (``30/minute``); None or empty: no throttle.

        With several rates (``5/second;30/minute``) the strictest window counts: the one
        allowing the fewest failures per second."""
        self._limit: tuple[int, float] | None = None
        if rate:
            items = parse_many(rate)
            strictest = min(items, key=lambda item: item.amount / item.get_expiry())
            self._limit = (strictest.amount, float(strictest.get_expiry()))
        self._clock = clock
        self._windows: dict[str, tuple[float, int]] = {}

    def retry_after(self, address: str) -> int:
        """Seconds until ``address`` may try again; 0 when it may now."""
        if self._limit is None:
            return 0
        amount, seconds = self._limit
        start, count = self._windows.get(address, (0.0, 0))
        left = start + seconds - self._clock()
        if left <= 0 or count < amount:
            return 0
        return max(1, int(left + 0.999))

    def failed(self, address: str) -> None:
        """Count one failed sign-in from ``address``."""
        if self._limit is None:
            return
        now = self._clock()
        seconds = self._limit[1]
        start, count = self._windows.get(address, (now, 0))
        if now - start >= seconds:
            start, count = now, 0
        if address not in self._windows and len(self._windows) >= _MAX_ADDRESSES:
            self._forget_old(now)
        self._windows[address] = (start, count + 1)

    def _forget_old(self, now: float) -> None:
        seconds = self._limit[1] if self._limit else 0.0
        for address, (start, _) in list(self._windows.items()):
            if now - start >= seconds:
                del self._windows[address]
        while len(self._windows) >= _MAX_ADDRESSES:
            # Still full of live windows: the oldest goes (dicts keep insertion order).
            del self._windows[next(iter(self._windows))]
