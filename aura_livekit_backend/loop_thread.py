"""An asyncio event loop serving in a background thread: the LiveKit emulator's and the
development identity provider's, so that a test (or ``--dev``) keeps its own loop free.

Internal: used by :mod:`aura_livekit_backend.emulator` and
:mod:`aura_livekit_backend.testing.issuer`.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Awaitable, Callable

__all__ = ["Cleanup", "LoopThread"]

#: What serving hands back: run on the loop when it stops, before the rest is cancelled.
Cleanup = Callable[[], Awaitable[None]]


async def _cancel_the_rest() -> None:
    """Cancel every other task on this loop: calls still stalled when the server stops."""
    pending = [task for task in asyncio.all_tasks() if task is not asyncio.current_task()]
    for task in pending:
        task.cancel()
    await asyncio.gather(*pending, return_exceptions=True)


class LoopThread:
    """One event loop in a daemon thread, started and stopped from any other thread."""

    def __init__(self, name: str) -> None:
        """The thread is called ``name`` (it shows in stack dumps)."""
        self._name = name
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None

    @property
    def running(self) -> bool:
        """Whether the loop is serving."""
        return self._thread is not None

    def start(self, serve: Callable[[], Awaitable[Cleanup]]) -> None:
        """Run ``serve()`` on a new loop in the thread; return once it has returned (its
        failure is raised here). The loop then runs until :meth:`stop`, which awaits the
        cleanup ``serve`` returned and cancels every task left."""
        if self._thread is not None:
            raise RuntimeError(f"the {self._name} is already running")
        ready = threading.Event()
        failure: list[BaseException] = []

        def run() -> None:
            loop = asyncio.new_event_loop()
            self._loop = loop
            try:
                cleanup = loop.run_until_complete(serve())
            except BaseException as exc:
                failure.append(exc)
                ready.set()
                loop.close()
                return
            ready.set()
            loop.run_forever()
            try:
                loop.run_until_complete(cleanup())
            finally:
                loop.run_until_complete(_cancel_the_rest())
                loop.close()

        self._thread = threading.Thread(target=run, name=self._name, daemon=True)
        self._thread.start()
        ready.wait()
        if failure:
            self._thread = self._loop = None
            raise failure[0]

    def stop(self) -> None:
        """Stop the loop and wait (at most 10 s) for its cleanup; safe to call twice."""
        if self._thread is None or self._loop is None:
            return
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=10)
        self._thread = self._loop = None
