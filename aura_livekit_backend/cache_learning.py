"""The worker's room caches, following the event log (see :mod:`.livekit.learning`).

One task per worker reads LiveKit's room and participant events from the worker's
:class:`~.event_feed.EventFeed` — every entry, whichever worker or replica appended
it — and hands each to a :class:`~.livekit.learning.RoomLearner`. It follows from
the moment it starts: the worker's first listing, taken after, already knows
everything before. A stream the feed dropped (a full buffer) catches up from the log,
so no entry is lost; with the log unreadable, the caches simply learn nothing until
it is back (the listing still refreshes from LiveKit).
"""

from __future__ import annotations

import asyncio
import logging

from .event_feed import EventFeed
from .eventlog import EventLogUnavailable
from .livekit.learning import LEARNT_EVENTS, RoomLearner
from .livekit.rooms import Rooms

__all__ = ["CacheFollower"]

logger = logging.getLogger("aura_livekit_backend.events")

#: Seconds to wait before reading an unreadable log again.
_RETRY_SECONDS = 1.0


class CacheFollower:
    """Feeds one worker's :class:`Rooms` from its event feed. Built without I/O."""

    def __init__(self, feed: EventFeed, rooms: Rooms) -> None:
        """Follow ``feed`` (once started) and teach ``rooms``."""
        self._feed = feed
        self.learner = RoomLearner(rooms)
        self._task: asyncio.Task[None] | None = None
        #: The log position it follows from (None until it has read it).
        self.since: int | None = None

    def start(self) -> None:
        """Start following, from now (in the worker's loop, once the feed has started)."""
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(
                self._follow(), name="aura-cache-learning"
            )

    async def stop(self) -> None:
        """Stop following; safe to call twice."""
        task, self._task = self._task, None
        # Cancelled again until done: asyncio.wait_for (Python < 3.12) may swallow one.
        while task is not None and not task.done():
            task.cancel()
            await asyncio.wait({task}, timeout=0.1)
        if task is not None and not task.cancelled() and task.exception() is not None:
            logger.error("the room caches had stopped learning", exc_info=task.exception())

    async def _follow(self) -> None:
        while self.since is None:
            try:
                self.since = await self._feed.last_position()
            except EventLogUnavailable:
                await asyncio.sleep(_RETRY_SECONDS)
        stream = self._feed.follow(after=self.since, names=LEARNT_EVENTS)
        try:
            while not self._feed.stopped:
                try:
                    async for entry in stream:
                        try:
                            self.learner.learn(entry.name, entry.data, entry.at)
                        except Exception:
                            # One entry that cannot be learnt must not end the learning.
                            logger.exception("the room caches could not learn %s", entry.name)
                    return  # the feed stopped: the worker is stopping
                except EventLogUnavailable:
                    # The feed warns about the log already; the stream resumes from
                    # where it was once the log is back.
                    await asyncio.sleep(_RETRY_SECONDS)
        finally:
            await stream.aclose()
