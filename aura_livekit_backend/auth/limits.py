"""Rate limits, counted with the ``limits`` library: in each worker's memory, or in
Redis (``AURA_REDIS_URL``) shared by every worker and replica.

Three limits, each off when its setting is empty:

- ``create`` (``AURA_RATE_LIMIT_CREATE``) and ``join`` (``AURA_RATE_LIMIT_JOIN``),
  per identity (per client address for an anonymous caller);
- ``auth`` (``AURA_RATE_LIMIT_AUTH_FAILURES``): failed authentications per client
  address. An address over it gets 429 for every request carrying credentials, right
  or wrong, until the window moves on: otherwise a right guess would still show.

Counting uses a sliding window counter (two counters per key, cheap in memory and in
Redis). A Redis that does not answer within :data:`STORE_TIMEOUT` counts as down for
:data:`RETRY_STORE_AFTER` seconds, so requests meanwhile do not each wait for it:
``AURA_RATE_LIMIT_FAIL=open`` lets them through (logged at most once a minute),
``closed`` answers 503. Never a hang.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Coroutine
from typing import Any, Literal, TypeVar

from limits import RateLimitItem, parse_many
from limits.aio.storage import MemoryStorage, RedisStorage, Storage
from limits.aio.strategies import SlidingWindowCounterRateLimiter
from limits.errors import StorageError

from ..settings import Settings
from .errors import LimitsUnavailable, RateLimited

__all__ = ["RETRY_STORE_AFTER", "STORE_TIMEOUT", "Limit", "RateLimits"]

logger = logging.getLogger("aura_livekit_backend.auth")

Limit = Literal["create", "join", "auth"]
T = TypeVar("T")

#: Seconds one call to the rate-limit store may take before it counts as down.
STORE_TIMEOUT = 0.5
#: Seconds a store that failed is left alone before it is tried again.
RETRY_STORE_AFTER = 5.0
#: Seconds between two "Redis is down" warnings from one worker.
_WARN_EVERY = 60.0
# Every key starts with this, so the service's counts are easy to find in a shared Redis.
_PREFIX = "aura"

_WHAT = {
    "create": "too many rooms created",
    "join": "too many joins",
    "auth": "too many failed authentications from this address",
}


class RateLimits:
    """One worker's rate limits. Built without I/O; :meth:`open` in the worker."""

    def __init__(self, settings: Settings) -> None:
        """Limits from ``settings``; counted in Redis when ``AURA_REDIS_URL`` is set."""
        self._items: dict[str, list[RateLimitItem]] = {
            name: parse_many(rate)
            for name, rate in (
                ("create", settings.rate_limit_create),
                ("join", settings.rate_limit_join),
                ("auth", settings.rate_limit_auth_failures),
            )
            if rate
        }
        self._redis_url = settings.redis_url.get_secret_value() if settings.redis_url else None
        self._fail_open = settings.rate_limit_fail == "open"
        self._storage: Storage | None = None
        self._limiter: SlidingWindowCounterRateLimiter | None = None
        self._warned_at = -_WARN_EVERY
        self._down_until = 0.0

    def __contains__(self, limit: str) -> bool:
        """Whether ``limit`` (create, join, auth) is on."""
        return limit in self._items

    @property
    def shared(self) -> bool:
        """True when counts live in Redis."""
        return self._redis_url is not None

    async def open(self) -> None:
        """Make the store; call inside the worker's running event loop. Connects lazily."""
        if not self._items:
            return
        if self._redis_url:
            self._storage = RedisStorage(
                "async+" + self._redis_url,
                implementation="redispy",
                key_prefix=_PREFIX,
                wrap_exceptions=True,
                socket_timeout=STORE_TIMEOUT,
                socket_connect_timeout=STORE_TIMEOUT,
            )
        else:
            self._storage = MemoryStorage()
        self._limiter = SlidingWindowCounterRateLimiter(self._storage)

    async def close(self) -> None:
        """Drop the store; safe to call twice."""
        storage, self._storage, self._limiter = self._storage, None, None
        if isinstance(storage, RedisStorage):
            # limits has no close of its own: its bridge holds redis-py's client.
            client = storage.bridge.storage  # type: ignore[attr-defined]
            await client.aclose()
        elif isinstance(storage, MemoryStorage) and storage.timer is not None:
            storage.timer.cancel()

    async def hit(self, limit: Limit, key: str) -> None:
        """Count one ``limit`` event for ``key``; :class:`RateLimited` when over it."""
        items = self._items.get(limit)
        if not items or self._limiter is None:
            return
        limiter = self._limiter
        for item in items:
            allowed = await self._bounded(limiter.hit(item, limit, key))
            if allowed is False:
                await self._refuse(limit, item, key)

    async def check(self, limit: Limit, key: str) -> None:
        """:class:`RateLimited` if ``key`` is over ``limit`` now; counts nothing."""
        items = self._items.get(limit)
        if not items or self._limiter is None:
            return
        for item in items:
            if await self._bounded(self._limiter.test(item, limit, key)) is False:
                await self._refuse(limit, item, key)

    async def _refuse(self, limit: Limit, item: RateLimitItem, key: str) -> None:
        assert self._limiter is not None
        stats = await self._bounded(self._limiter.get_window_stats(item, limit, key))
        reset = stats.reset_time if stats is not None else time.time() + item.get_expiry()
        retry = int(reset - time.time() + 0.999)
        raise RateLimited(f"{_WHAT[limit]}; retry in {max(1, retry)} s", retry)

    async def _bounded(self, call: Coroutine[Any, Any, T]) -> T | None:
        """``call``'s answer, or None when the store is down and limits fail open."""
        if time.monotonic() < self._down_until:
            call.close()  # never started: the store is known to be down
            self._down()
            return None
        try:
            return await asyncio.wait_for(call, STORE_TIMEOUT)
        except (asyncio.TimeoutError, StorageError, OSError) as exc:
            now = time.monotonic()
            self._down_until = now + RETRY_STORE_AFTER
            if now - self._warned_at >= _WARN_EVERY:
                self._warned_at = now
                logger.warning(
                    "rate limits: the store did not answer (%s); failing %s",
                    type(exc).__name__,
                    "open" if self._fail_open else "closed",
                )
            self._down()
            return None

    def _down(self) -> None:
        """Nothing when limits fail open; :class:`LimitsUnavailable` when closed."""
        if not self._fail_open:
            raise LimitsUnavailable("rate limits cannot be checked now; retry shortly")
