"""The event log: every event, LiveKit's and the service's own, in one ordered log.

Each entry gets a *position* that only grows, so a reader resumes after the last
position it saw (``Last-Event-ID``, ``?after=N``). An entry's ``id`` is unique in
the log: appending an id that is already there appends nothing, which is how an
event LiveKit delivers twice, to two workers or two replicas, is processed once.

Kept is not told: a delivery may be kept and still answered 503 (the store's reply
came too late, the request was cancelled), and LiveKit's retry is then a duplicate.
So the log also records, apart, that an event was told to subscribers
(:meth:`EventLog.mark_told`): whichever delivery of an id marks it first tells it,
exactly once across workers and replicas.

Backends implement :class:`EventLog`: SQLite (one file shared by the workers of one
host, the default) and Redis Streams (shared by every replica). The rest of the
service sees only this module's names.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

__all__ = ["EventLog", "EventLogUnavailable", "LoggedEvent"]


@dataclass(frozen=True, slots=True)
class LoggedEvent:
    """One entry of the log."""

    #: Where the entry sits in the log: greater than every position before it.
    position: int
    #: Unique in the log: LiveKit's event id, or one the service made for its own.
    id: str
    #: The event's name, ``<source>.<thing>.<happened>`` (``livekit.room.started``).
    name: str
    #: The room's name, when the event is about a room (filters use it).
    room: str | None
    #: When the event happened, Unix seconds.
    at: float
    #: The event's payload, JSON-ready.
    data: Mapping[str, Any]


class EventLogUnavailable(Exception):
    """The log cannot be read or written now (Redis down, disk full); the message says why."""


class EventLog(Protocol):
    """Where events are appended and read back, in order, across workers."""

    async def open(self) -> None:
        """Connect or open files; called once per worker before it serves."""

    async def close(self) -> None:
        """Release what :meth:`open` took; called once per worker when it stops."""

    async def append(
        self, id: str, name: str, room: str | None, at: float, data: Mapping[str, Any]
    ) -> int | None:
        """Append one event; its position, or None when ``id`` is already in the log.

        Raises :class:`EventLogUnavailable` when the log cannot be written.
        """

    async def mark_told(self, id: str) -> bool:
        """Record that the event ``id``, appended before, is being told to subscribers.

        True for the one call that records it, whichever worker or replica makes it
        (that caller tells); False once it is recorded, and for an id the log no longer
        remembers (older than a day or the retention age). Raises
        :class:`EventLogUnavailable` when the log cannot be written.
        """

    async def read(self, after: int, limit: int) -> list[LoggedEvent]:
        """Up to ``limit`` entries with positions greater than ``after``, oldest first."""

    async def last_position(self) -> int:
        """The position of the newest entry (0 for an empty log)."""

    async def wait(self, after: int, timeout: float) -> None:
        """Return once an entry past ``after`` may exist, or after ``timeout`` seconds.

        Any worker or replica may have appended it; a reader follows the log by
        alternating :meth:`read` and :meth:`wait`.
        """
