"""Readers waiting for the log to grow, shared by the backends.

Each backend has one watcher per worker (a poll of the SQLite file, a blocking read of
the Redis stream) however many readers wait: the watcher learns the newest position and
:meth:`Waiters.advance` wakes every reader waiting for less. An append in this worker
advances it at once.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

__all__ = ["Waiters"]


class Waiters:
    """The readers of one worker waiting for a position past theirs."""

    def __init__(self) -> None:
        """No reader waits, and no position is known yet."""
        #: The highest position this worker knows to exist.
        self.known = 0
        self._waiting: dict[asyncio.Future[None], int] = {}

    def __bool__(self) -> bool:
        """Whether any reader waits."""
        return bool(self._waiting)

    def lowest(self) -> int:
        """The lowest position a reader waits past (call only while one waits)."""
        return min(self._waiting.values())

    def advance(self, position: int) -> None:
        """An entry at ``position`` exists: wake every reader waiting for less."""
        if position <= self.known:
            return
        self.known = position
        for future, after in list(self._waiting.items()):
            if after < position:
                _resolve(future)

    async def wait(self, after: int, timeout: float, watch: Callable[[], None]) -> None:
        """Return once an entry past ``after`` is known, or after ``timeout`` seconds.

        ``watch`` makes sure the backend's watcher runs (called after registering).
        """
        if self.known > after or timeout <= 0:
            return
        loop = asyncio.get_running_loop()
        future: asyncio.Future[None] = loop.create_future()
        self._waiting[future] = after
        # A timer that resolves the future, not asyncio.wait_for: before Python 3.12 that
        # returns normally when a cancellation (a client gone, the feed stopping) arrives
        # as the future completes, and the caller carries on as if never cancelled.
        timer = loop.call_later(timeout, _resolve, future)
        try:
            watch()
            await future
        finally:
            timer.cancel()
            self._waiting.pop(future, None)

    def release(self) -> None:
        """Wake every reader (the log is closing)."""
        for future in self._waiting:
            _resolve(future)


def _resolve(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)
