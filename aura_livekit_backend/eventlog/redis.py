"""The event log in Redis Streams, shared by every worker of every replica.

Three kinds of keys, all under ``aura:events``:

- ``aura:events`` — the stream; an entry's id is ``<position>-0``, its fields ``t``
  (when it was appended: what retention by age goes by) and ``e`` (the event as JSON);
- ``aura:events:seq`` — the counter positions come from (it only grows). When it is
  missing — a new Redis, or one restarted without persistence, which lost every key —
  the append that finds it so starts it at Redis's clock in microseconds. Positions
  then still grow across the loss: the counter it lost was started the same way and
  has since grown by one per event, and no log appends a million events a second for
  as long as it ran, so it stayed below the clock. A Lua number holds these exactly
  (below 2^53) for the next two centuries;
- ``aura:events:id:<id>`` — one per event id, kept for the retention age but at most a
  day: while it exists, appending that id appends nothing;
- ``aura:events:told:<id>`` — set (``NX``, with the same lifetime) by the one
  delivery of that id that tells it to subscribers (:meth:`RedisEventLog.mark_told`).

An append is one Lua script, so it is atomic across replicas: claim the id
(``SET NX``), take the next position (``INCR``) and add the entry with it (``XADD``,
trimmed to the count). Readers wait with a blocking ``XREAD``, one per worker however
many readers wait. Every call is bounded (0.5 s socket timeouts, no retries), so a
Redis that is down is :class:`~aura_livekit_backend.eventlog.EventLogUnavailable` at
once; redis-py reconnects on the next call, so the log recovers when Redis does.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, TypeVar

import orjson
import redis.asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import NoScriptError, RedisError

from . import EventLogUnavailable, LoggedEvent
from ._waiters import Waiters

__all__ = ["DEDUPE_TTL_CAP", "KEY", "TIMEOUT", "RedisEventLog"]

T = TypeVar("T")

logger = logging.getLogger("aura_livekit_backend.eventlog")

#: The stream's key; the counter and the id keys start with it.
KEY = "aura:events"
#: Seconds one Redis call may take before the log counts as unavailable.
TIMEOUT = 0.5
#: The longest an id is remembered for dedupe (LiveKit retries within a minute or so).
DEDUPE_TTL_CAP = 86400
#: How long one blocking read waits before it looks again at who is waiting.
BLOCK_SECONDS = 0.25
#: Seconds between two age trims of one worker.
AGE_TRIM_EVERY = 1.0
#: The most entries one age trim examines (the rest waits for the next one).
AGE_TRIM_MAX = 10_000
#: The most appends one pipeline sends.
MAX_BATCH = 500

# KEYS: stream, counter, id key. ARGV: dedupe TTL, max entries, appended at, event JSON.
_APPEND = """
if not redis.call('SET', KEYS[3], '1', 'NX', 'EX', ARGV[1]) then
  return 0
end
local position
if redis.call('EXISTS', KEYS[2]) == 1 then
  position = redis.call('INCR', KEYS[2])
else
  -- Lost (or never set): start at the clock, above every position given before.
  local now = redis.call('TIME')
  position = tonumber(now[1]) * 1000000 + tonumber(now[2])
  redis.call('SET', KEYS[2], string.format('%d', position))
end
-- %d: a Lua 5.1 number past 1e14 would print as 1e+14.
local entry = string.format('%d-0', position)
redis.call('XADD', KEYS[1], 'MAXLEN', ARGV[2], entry, 't', ARGV[3], 'e', ARGV[4])
return position
"""

# KEYS: stream. ARGV: cutoff (Unix seconds), the most entries to examine.
# Walks from the oldest entry and stops at the first young one: it reads only what
# it deletes. Returns how many entries it deleted.
_TRIM_AGE = """
local cutoff = tonumber(ARGV[1])
local budget = tonumber(ARGV[2])
local start = '-'
local last = nil
while budget > 0 do
  local entries = redis.call('XRANGE', KEYS[1], start, '+', 'COUNT', 100)
  if #entries == 0 then
    break
  end
  for _, entry in ipairs(entries) do
    if tonumber(entry[2][2]) >= cutoff then
      return redis.call('XTRIM', KEYS[1], 'MINID', entry[1])
    end
    last = entry[1]
  end
  budget = budget - #entries
  start = '(' .. last
end
if last == nil then
  return 0
end
local position = tonumber(string.match(last, '^(%d+)'))
return redis.call('XTRIM', KEYS[1], 'MINID', string.format('%d-0', position + 1))
"""

# KEYS: id key, told key. ARGV: TTL. Only an id the log remembers can be marked.
_MARK_TOLD = """
if redis.call('EXISTS', KEYS[1]) == 0 then
  return 0
end
if redis.call('SET', KEYS[2], '1', 'NX', 'EX', ARGV[1]) then
  return 1
end
return 0
"""

_APPEND_SHA = hashlib.sha1(_APPEND.encode()).hexdigest()  # noqa: S324 (Redis names scripts so)
_TRIM_AGE_SHA = hashlib.sha1(_TRIM_AGE.encode()).hexdigest()  # noqa: S324


def _position(entry_id: bytes | str) -> int:
    text = entry_id.decode() if isinstance(entry_id, bytes) else entry_id
    return int(text.partition("-")[0])


class RedisEventLog:
    """An :class:`~aura_livekit_backend.eventlog.EventLog` in a Redis stream."""

    def __init__(
        self,
        url: str,
        *,
        max_events: int,
        max_age: float,
        key: str = KEY,
        timeout: float = TIMEOUT,
        clock: Callable[[], float] = time.time,
    ) -> None:
        """A log in the Redis at ``url`` (never logged: it may hold a password).

        Nothing connects until the first call after :meth:`open`. ``max_events`` and
        ``max_age`` (seconds) bound what it keeps; ``key`` is the stream's key; one
        call may take ``timeout`` seconds; ``clock`` tells the time retention goes by.
        """
        self._url = url
        self._max_events = max_events
        self._max_age = max_age
        self._key = key
        self._timeout = timeout
        self._clock = clock
        self._dedupe_ttl = max(1, int(min(max_age, DEDUPE_TTL_CAP)))
        self._client: aioredis.Redis | None = None
        self._blocking: aioredis.Redis | None = None
        self._loaded = False
        self._watcher: asyncio.Task[None] | None = None
        self._queue: list[tuple[str, bytes, asyncio.Future[int | None]]] = []
        self._writer: asyncio.Task[None] | None = None
        self._waiters = Waiters()
        self._aged_at = float("-inf")

    def _connect(self, timeout: float) -> aioredis.Redis:
        return aioredis.Redis.from_url(
            self._url,
            socket_timeout=timeout,
            socket_connect_timeout=self._timeout,
            # No retries: a Redis that is down must fail the call now, not in seconds.
            retry=Retry(NoBackoff(), 0),
            health_check_interval=0,
        )

    async def open(self) -> None:
        """Make the clients; they connect on first use, so a Redis that is down now
        fails the calls, not the worker's start."""
        if self._client is not None:
            return
        self._client = self._connect(self._timeout)
        # Its own connection: a blocking read must not hold one the appends need.
        self._blocking = self._connect(BLOCK_SECONDS + self._timeout)

    async def close(self) -> None:
        """Finish the appends under way, stop waiting, close the connections; safe twice."""
        if self._writer is not None:
            await asyncio.gather(self._writer, return_exceptions=True)
        if self._watcher is not None:
            self._watcher.cancel()
            await asyncio.gather(self._watcher, return_exceptions=True)
        self._waiters.release()
        clients = [c for c in (self._client, self._blocking) if c is not None]
        self._client = self._blocking = None
        for client in clients:
            await client.aclose()

    async def append(
        self, id: str, name: str, room: str | None, at: float, data: Mapping[str, Any]
    ) -> int | None:
        """Append one event; its position, or None when ``id`` is already in the log."""
        self._redis()
        payload = orjson.dumps([id, name, room, at, data if isinstance(data, dict) else dict(data)])
        loop = asyncio.get_running_loop()
        future: asyncio.Future[int | None] = loop.create_future()
        self._queue.append((id, payload, future))
        if self._writer is None:
            self._writer = loop.create_task(self._write_queued())
        return await future

    async def _write_queued(self) -> None:
        """Send what is queued, in order, one pipeline per batch, until none is left.

        One writer per worker keeps a worker's appends in the order they were made
        (separate connections would race), and a pipeline makes a batch one round trip.
        """
        try:
            while self._queue:
                batch, self._queue = self._queue[:MAX_BATCH], self._queue[MAX_BATCH:]
                try:
                    positions = await self._call(self._send(batch))
                except EventLogUnavailable as failure:
                    for *_, future in batch:
                        if not future.done():
                            future.set_exception(failure)
                    continue
                for (*_, future), position in zip(batch, positions, strict=True):
                    if future.done():  # its caller gave up; the event is written all the same
                        continue
                    if isinstance(position, EventLogUnavailable):
                        future.set_exception(position)
                    else:
                        future.set_result(position)
                written = [p for p in positions if isinstance(p, int)]
                if written:
                    self._waiters.advance(max(written))
        finally:
            self._writer = None

    async def _send(
        self, batch: list[tuple[str, bytes, asyncio.Future[int | None]]]
    ) -> list[int | EventLogUnavailable | None]:
        """Each append's position, None (a duplicate) or why it failed; the age trim
        rides along at most once a second."""
        for attempt in range(2):
            client = self._redis()
            if not self._loaded:
                # Once per connection to a fresh Redis, not once per batch.
                for script in (_APPEND, _TRIM_AGE):
                    await client.script_load(script)
                self._loaded = True
            now = self._clock()
            pipeline = client.pipeline(transaction=False)
            for id, payload, _ in batch:
                pipeline.evalsha(
                    _APPEND_SHA, 3, self._key, f"{self._key}:seq", f"{self._key}:id:{id}",
                    self._dedupe_ttl, self._max_events, repr(now), payload,
                )  # fmt: skip
            age_trim = now - self._aged_at >= AGE_TRIM_EVERY
            if age_trim:
                pipeline.evalsha(
                    _TRIM_AGE_SHA, 1, self._key, repr(now - self._max_age), AGE_TRIM_MAX
                )
            # Errors come back in place: one failed call must not fail the appends
            # that were made.
            replies = await pipeline.execute(raise_on_error=False)
            if any(isinstance(reply, NoScriptError) for reply in replies) and not attempt:
                # Redis restarted (or its scripts were flushed): the calls that named a
                # missing script did nothing, and a second try of one that did finds its
                # id taken. Load the scripts and send again.
                self._loaded = False
                continue
            if age_trim:
                self._aged_at = now
                trimmed = replies.pop()
                if isinstance(trimmed, Exception):
                    logger.warning("event log: the age trim failed: %s", trimmed)
            return [
                EventLogUnavailable(f"cannot append to the event log in Redis: {reply}")
                if isinstance(reply, Exception)
                else int(reply) or None
                for reply in replies
            ]
        raise AssertionError("unreachable")

    async def mark_told(self, id: str) -> bool:
        """Record that ``id`` is being told; True for the one call that records it."""
        # EVAL, not EVALSHA: a webhook's rate, and nothing to reload after a restart.
        marked: Any = await self._call(
            self._redis().eval(
                _MARK_TOLD, 2, f"{self._key}:id:{id}", f"{self._key}:told:{id}", self._dedupe_ttl
            )
        )
        return bool(marked)

    async def read(self, after: int, limit: int) -> list[LoggedEvent]:
        """Up to ``limit`` entries with positions greater than ``after``, oldest first."""
        if limit <= 0:
            return []
        # redis-py types a reply by the stream's key type; here: [(id, {field: value})].
        entries: Any = await self._call(
            self._redis().xrange(self._key, min=f"{after + 1}-0", max="+", count=limit)
        )
        events = []
        for entry_id, fields in entries:
            id, name, room, at, data = orjson.loads(fields[b"e"])
            events.append(LoggedEvent(_position(entry_id), id, name, room, at, data))
        if events:
            self._waiters.advance(events[-1].position)
        return events

    async def last_position(self) -> int:
        """The position of the newest entry ever appended (0 for a log never appended to)."""
        value = await self._call(self._redis().get(f"{self._key}:seq"))
        position = int(value) if value else 0
        if position < self._waiters.known:
            # The counter went back (lost before appends seeded it): forget the higher
            # positions, or every wait past the new ones would return at once.
            self._waiters.known = position
        self._waiters.advance(position)
        return position

    async def wait(self, after: int, timeout: float) -> None:
        """Return once an entry past ``after`` may exist, or after ``timeout`` seconds."""
        await self._waiters.wait(after, timeout, self._watch)

    def _redis(self) -> aioredis.Redis:
        if self._client is None:
            raise EventLogUnavailable("the event log is not open")
        return self._client

    async def _call(self, work: Awaitable[T]) -> T:
        """``work``, bounded in time, with Redis's failures as EventLogUnavailable."""
        try:
            # Twice the socket timeout: a connect and a command, each bounded.
            return await asyncio.wait_for(work, 2 * self._timeout + 0.5)
        except (RedisError, OSError, asyncio.TimeoutError) as exc:
            reason = str(exc) or type(exc).__name__
            # redis-py's messages name the host and port, never the URL's password.
            raise EventLogUnavailable(f"Redis (AURA_REDIS_URL) is unavailable: {reason}") from exc

    def _watch(self) -> None:
        if self._watcher is None and self._blocking is not None:
            self._watcher = asyncio.get_running_loop().create_task(self._follow())

    async def _follow(self) -> None:
        """While readers wait: block on the stream past the lowest position waited for."""
        try:
            while self._waiters and self._blocking is not None:
                since = self._waiters.lowest()
                try:
                    reply: Any = await asyncio.wait_for(
                        self._blocking.xread(
                            {self._key: f"{since}-0"},
                            count=1,
                            block=int(BLOCK_SECONDS * 1000),
                        ),
                        BLOCK_SECONDS + 2 * self._timeout + 0.5,
                    )
                except (RedisError, OSError, asyncio.TimeoutError):
                    # The readers time out; their next read says why. Redis is not
                    # asked again at once, which would spin while it is down.
                    await asyncio.sleep(BLOCK_SECONDS)
                    continue
                for _stream, entries in reply or ():
                    if entries:
                        self._waiters.advance(_position(entries[-1][0]))
        finally:
            self._watcher = None
