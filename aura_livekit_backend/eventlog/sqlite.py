"""The event log in one SQLite file, shared by every worker process of one host.

The file is ``events.sqlite3`` in ``AURA_DATA_DIR``, in WAL mode: readers never block
the writer, and each worker's writer waits for the others' (``busy_timeout``) instead
of failing. A position is SQLite's ``AUTOINCREMENT`` row id, which never goes back,
not even after the newest rows are deleted. Each id is also kept in the table
``seen`` for the retention age but at most a day, as the Redis log keeps its id keys:
while it is there, appending that id appends nothing, even after retention by count
has deleted the entry itself (``AURA_EVENT_LOG_MAX_EVENTS`` may be 1).

The disk is touched only in one thread per worker, never in the event loop. Appends
that arrive while that thread writes are committed together in the next transaction
(group commit): each ``append`` returns once its transaction is committed, and one
commit serves many events. ``synchronous=NORMAL``: a committed event survives the
process crashing; an operating-system crash or power loss may take the last few
commits back.

Retention runs in the writing transaction: entries beyond ``max_events`` are deleted
with each commit (one range delete on the primary key), entries older than
``max_age`` at most once a second (a scan that stops at the first young entry, so
it costs what it deletes).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import sqlite3
import time
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

import orjson

from . import EventLogUnavailable, LoggedEvent
from ._waiters import Waiters

__all__ = ["FILE_NAME", "SQLiteEventLog", "default_path", "prepare"]


T = TypeVar("T")

#: The log's file in the data directory.
FILE_NAME = "events.sqlite3"
#: Milliseconds a writer waits for another process's transaction before failing.
BUSY_TIMEOUT_MS = 5000
#: The most appends one transaction commits (a bound on one commit's latency).
MAX_BATCH = 1000
#: Seconds between two age trims of one worker.
AGE_TRIM_EVERY = 1.0
#: The longest an id is remembered for dedupe, as in Redis (LiveKit retries within a
#: minute or so).
DEDUPE_TTL_CAP = 86400

_SCHEMA = (
    """
CREATE TABLE IF NOT EXISTS events (
    position INTEGER PRIMARY KEY AUTOINCREMENT,
    id TEXT NOT NULL UNIQUE,
    name TEXT NOT NULL,
    room TEXT,
    at REAL NOT NULL,
    -- when it was appended (Unix seconds): what retention by age goes by
    added REAL NOT NULL,
    data BLOB NOT NULL
)
""",
    # The ids appended, kept by age only: dedupe must not end when retention by count
    # deletes an entry. A file from before this table has none of its ids here; their
    # entries still refuse them (the UNIQUE id of `events`).
    """
CREATE TABLE IF NOT EXISTS seen (
    id TEXT NOT NULL UNIQUE,
    -- when it was appended (Unix seconds): what the age trim goes by; rows come in
    -- rowid order, which is time order, so the trim needs no index of its own
    added REAL NOT NULL,
    -- 1 once a delivery of it was told to subscribers (mark_told)
    told INTEGER NOT NULL DEFAULT 0
)
""",
)
_SEE = "INSERT OR IGNORE INTO seen (id, added) VALUES (?, ?)"
_INSERT = "INSERT OR IGNORE INTO events (id, name, room, at, added, data) VALUES (?, ?, ?, ?, ?, ?)"
_LAST = "SELECT seq FROM sqlite_sequence WHERE name = 'events'"

Row = tuple[str, str, str | None, float, bytes]


def _describe(exc: BaseException) -> str:
    if isinstance(exc, OSError):
        return exc.strerror or str(exc)
    return str(exc)


def _connect(path: Path, setting: str) -> sqlite3.Connection:
    """Open (creating it if need be) the log's file, in WAL mode, with its table."""
    try:
        # Only the service's user may read a directory it makes: the log names rooms
        # and people. One that exists is left as it is.
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        # Autocommit: transactions are begun and committed explicitly.
        connection = sqlite3.connect(
            path, isolation_level=None, check_same_thread=False, timeout=BUSY_TIMEOUT_MS / 1000
        )
    except (OSError, sqlite3.Error) as exc:
        raise EventLogUnavailable(
            f"cannot open the event log {path} ({setting}): {_describe(exc)}"
        ) from exc
    deadline = time.monotonic() + BUSY_TIMEOUT_MS / 1000
    try:
        while True:
            try:
                _set_up(connection)
                break
            except sqlite3.OperationalError as exc:
                # Switching a new file to WAL while another worker does the same fails
                # at once ("database is locked"): SQLite's busy handler does not wait
                # there, so this does.
                if connection.in_transaction:
                    connection.execute("ROLLBACK")
                if "locked" not in str(exc) or time.monotonic() > deadline:
                    raise
                time.sleep(0.01)
    except sqlite3.Error as exc:
        connection.close()
        raise EventLogUnavailable(
            f"cannot write the event log {path} ({setting}): {_describe(exc)}"
        ) from exc
    return connection


def _set_up(connection: sqlite3.Connection) -> None:
    connection.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
    mode = connection.execute("PRAGMA journal_mode = WAL").fetchone()[0]
    if str(mode).lower() != "wal":
        raise sqlite3.OperationalError(f"the file system gives journal mode {mode}, not WAL")
    connection.execute("PRAGMA synchronous = NORMAL")
    for statement in _SCHEMA:
        connection.execute(statement)
    # The last step writes: a file that can be read but not written fails here.
    connection.execute("BEGIN IMMEDIATE")
    connection.execute("COMMIT")


def prepare(path: Path, setting: str = "AURA_DATA_DIR") -> None:
    """Create the log's directory and file now, or raise :class:`EventLogUnavailable`.

    The console script calls it in the main process before any worker starts, so an
    unwritable directory is one line at start-up, not a failure in every worker.
    """
    _connect(path, setting).close()


class SQLiteEventLog:
    """An :class:`~aura_livekit_backend.eventlog.EventLog` in one SQLite file."""

    def __init__(
        self,
        path: Path,
        *,
        max_events: int,
        max_age: float,
        setting: str = "AURA_DATA_DIR",
        poll_interval: float = 0.05,
        clock: Callable[[], float] = time.time,
    ) -> None:
        """A log in the file ``path``; nothing is opened until :meth:`open`.

        ``max_events`` and ``max_age`` (seconds) bound what it keeps; ``setting`` is
        what error messages name; other workers' appends are noticed within
        ``poll_interval`` seconds; ``clock`` tells the time retention goes by.
        """
        self.path = path
        self._max_events = max_events
        self._max_age = max_age
        self._setting = setting
        self._poll_interval = poll_interval
        self._dedupe_ttl = max(1.0, min(max_age, DEDUPE_TTL_CAP))
        self._clock = clock
        self._connection: sqlite3.Connection | None = None
        self._executor: ThreadPoolExecutor | None = None
        self._queue: list[tuple[Row, asyncio.Future[int | None]]] = []
        self._writer: asyncio.Task[None] | None = None
        self._watcher: asyncio.Task[None] | None = None
        self._waiters = Waiters()
        self._aged_at = float("-inf")

    async def open(self) -> None:
        """Open the file in this worker's own thread (creating it if need be)."""
        if self._executor is not None:
            return
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="aura-eventlog")
        try:
            self._connection = await self._run(_connect, self.path, self._setting)
            self._waiters.known = await self._run(self._last)
        except BaseException:
            await self.close()
            raise

    async def close(self) -> None:
        """Finish the appends under way, then close the file; safe to call twice."""
        executor = self._executor
        if executor is None:
            return
        if self._writer is not None:
            await asyncio.gather(self._writer, return_exceptions=True)
        if self._watcher is not None:
            self._watcher.cancel()
            await asyncio.gather(self._watcher, return_exceptions=True)
        self._waiters.release()
        connection, self._connection = self._connection, None
        if connection is not None:
            await asyncio.get_running_loop().run_in_executor(executor, connection.close)
        self._executor = None
        executor.shutdown(wait=False)

    async def append(
        self, id: str, name: str, room: str | None, at: float, data: Mapping[str, Any]
    ) -> int | None:
        """Append one event; its position, or None when ``id`` is already in the file."""
        if self._executor is None:
            raise EventLogUnavailable("the event log is not open")
        payload = orjson.dumps(data if isinstance(data, dict) else dict(data))
        row: Row = (id, name, room, at, payload)
        loop = asyncio.get_running_loop()
        future: asyncio.Future[int | None] = loop.create_future()
        self._queue.append((row, future))
        if self._writer is None:
            self._writer = loop.create_task(self._write_queued())
        return await future

    async def mark_told(self, id: str) -> bool:
        """Record that ``id`` is being told; True for the one call that records it."""
        return await self._run(self._mark_told, id)

    async def read(self, after: int, limit: int) -> list[LoggedEvent]:
        """Up to ``limit`` entries with positions greater than ``after``, oldest first."""
        if limit <= 0:
            return []
        rows = await self._run(self._select, after, limit)
        events = [
            LoggedEvent(position, id, name, room, at, orjson.loads(data))
            for position, id, name, room, at, data in rows
        ]
        if events:
            self._waiters.advance(events[-1].position)
        return events

    async def last_position(self) -> int:
        """The position of the newest entry ever appended (0 for a log never appended to)."""
        position = await self._run(self._last)
        self._waiters.advance(position)
        return position

    async def wait(self, after: int, timeout: float) -> None:
        """Return once an entry past ``after`` may exist, or after ``timeout`` seconds."""
        await self._waiters.wait(after, timeout, self._watch)

    # -- the event loop's side -----------------------------------------------------

    async def _run(self, function: Callable[..., T], *args: Any) -> T:
        if self._executor is None:
            raise EventLogUnavailable("the event log is not open")
        return await asyncio.get_running_loop().run_in_executor(self._executor, function, *args)

    async def _write_queued(self) -> None:
        """Commit what is queued, in batches, until the queue is empty."""
        try:
            while self._queue:
                batch, self._queue = self._queue[:MAX_BATCH], self._queue[MAX_BATCH:]
                try:
                    positions = await self._run(self._insert, [row for row, _ in batch])
                except Exception as exc:
                    failure = (
                        exc
                        if isinstance(exc, EventLogUnavailable)
                        else EventLogUnavailable(f"cannot write the event log: {exc}")
                    )
                    for _, future in batch:
                        if not future.done():
                            future.set_exception(failure)
                    continue
                for (_, future), position in zip(batch, positions, strict=True):
                    if not future.done():  # its caller may have given up; it is written
                        future.set_result(position)
                written = [p for p in positions if p is not None]
                if written:
                    self._waiters.advance(max(written))
        finally:
            self._writer = None

    def _watch(self) -> None:
        if self._watcher is None and self._executor is not None:
            self._watcher = asyncio.get_running_loop().create_task(self._poll())

    async def _poll(self) -> None:
        """While readers wait: look for other workers' appends every poll interval."""
        try:
            while self._waiters:
                # A failure leaves the readers to time out; their next read says why.
                with contextlib.suppress(EventLogUnavailable, sqlite3.Error):
                    self._waiters.advance(await self._run(self._last))
                await asyncio.sleep(self._poll_interval)
        finally:
            self._watcher = None

    # -- the thread's side ----------------------------------------------------------

    def _db(self) -> sqlite3.Connection:
        if self._connection is None:
            raise EventLogUnavailable("the event log is not open")
        return self._connection

    def _insert(self, rows: list[Row]) -> list[int | None]:
        db = self._db()
        now = self._clock()
        positions: list[int | None] = []
        try:
            db.execute("BEGIN IMMEDIATE")
            try:
                cursor = db.cursor()
                for id, name, room, at, data in rows:
                    cursor.execute(_SEE, (id, now))
                    if cursor.rowcount != 1:
                        positions.append(None)
                        continue
                    # Ignored when the entry outlived its id in `seen` (an age over a
                    # day, or a file from before `seen`): a duplicate all the same,
                    # told when it was first kept.
                    cursor.execute(_INSERT, (id, name, room, at, now, data))
                    if cursor.rowcount == 1:
                        positions.append(cursor.lastrowid)
                    else:
                        cursor.execute("UPDATE seen SET told = 1 WHERE id = ?", (id,))
                        positions.append(None)
                self._trim(db, now)
                db.execute("COMMIT")
            except BaseException:
                if db.in_transaction:
                    db.execute("ROLLBACK")
                raise
        except sqlite3.Error as exc:
            raise EventLogUnavailable(
                f"cannot write the event log {self.path} ({self._setting}): {exc}"
            ) from exc
        return positions

    def _trim(self, db: sqlite3.Connection, now: float) -> None:
        last = db.execute(_LAST).fetchone()
        if last is not None and last[0] > self._max_events:
            db.execute("DELETE FROM events WHERE position <= ?", (last[0] - self._max_events,))
        if now - self._aged_at < AGE_TRIM_EVERY:
            return
        self._aged_at = now
        forgotten = now - self._dedupe_ttl
        young = db.execute(
            "SELECT rowid FROM seen WHERE added >= ? ORDER BY rowid LIMIT 1", (forgotten,)
        ).fetchone()
        if young is None:
            db.execute("DELETE FROM seen WHERE added < ?", (forgotten,))
        else:
            db.execute("DELETE FROM seen WHERE rowid < ?", (young[0],))
        cutoff = now - self._max_age
        # Walks from the oldest entry and stops at the first young one: it reads only
        # what it deletes (appends come in time order, give or take the workers' clocks).
        young = db.execute(
            "SELECT position FROM events WHERE added >= ? ORDER BY position LIMIT 1", (cutoff,)
        ).fetchone()
        if young is None:
            db.execute("DELETE FROM events WHERE added < ?", (cutoff,))
        else:
            db.execute("DELETE FROM events WHERE position < ?", (young[0],))

    def _mark_told(self, id: str) -> bool:
        try:
            # One statement, its own transaction: SQLite's write lock makes it atomic
            # across the workers' processes.
            cursor = self._db().execute("UPDATE seen SET told = 1 WHERE id = ? AND told = 0", (id,))
        except sqlite3.Error as exc:
            raise EventLogUnavailable(
                f"cannot write the event log {self.path} ({self._setting}): {exc}"
            ) from exc
        return cursor.rowcount == 1

    def _select(self, after: int, limit: int) -> list[tuple[Any, ...]]:
        try:
            return (
                self._db()
                .execute(
                    "SELECT position, id, name, room, at, data FROM events "
                    "WHERE position > ? ORDER BY position LIMIT ?",
                    (after, limit),
                )
                .fetchall()
            )
        except sqlite3.Error as exc:
            raise EventLogUnavailable(f"cannot read the event log {self.path}: {exc}") from exc

    def _last(self) -> int:
        try:
            row = self._db().execute(_LAST).fetchone()
        except sqlite3.Error as exc:
            raise EventLogUnavailable(f"cannot read the event log {self.path}: {exc}") from exc
        return int(row[0]) if row else 0


def default_path(data_dir: Path) -> Path:
    """Where the log's file is in ``data_dir`` (made absolute: workers may move about)."""
    return Path(os.path.abspath(data_dir)) / FILE_NAME
