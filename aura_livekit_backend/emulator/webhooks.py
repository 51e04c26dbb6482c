"""The emulated LiveKit's webhooks, sent as LiveKit sends them.

What LiveKit's open-source server does (``shared/notes/livekit-clients-and-webhooks.md``,
section 4), so duplicates, retries and drops happen in tests as they do in production:

- a POST of the protojson ``WebhookEvent``, ``Content-Type: application/webhook+json``,
  ``User-Agent: LiveKit``, ``Authorization: <JWT>`` with no "Bearer": HS256, ``iss``
  the API key, valid five minutes, ``sha256`` the base64 SHA-256 of the body;
- one FIFO queue per URL and room, so a room's events arrive in order and a failing
  send holds back that room's later ones;
- up to 4 more attempts, backing off exponentially from 1 s to 30 s, after a
  connection error, a 429 or a 5xx other than 501; any other answer is final;
- an event that waited over 30 s in its queue, or that finds 200 queued, is dropped;
- no deduplication: :meth:`WebhookSender.duplicate_next` sends the next events twice,
  as a retry after a lost answer would.

Tests may shorten the backoff and the wait (:attr:`WebhookSender.backoff`,
:attr:`WebhookSender.max_age`); the defaults are LiveKit's.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import threading
import time
from collections import Counter, deque
from collections.abc import Iterable
from dataclasses import dataclass

import aiohttp
import jwt
from google.protobuf import json_format
from livekit.protocol import webhook as webhook_pb

__all__ = [
    "MAX_AGE_SECONDS",
    "MAX_QUEUED",
    "RETRIES",
    "Attempt",
    "WebhookSender",
    "encode_event",
    "sign_webhook",
]

#: LiveKit's delivery rules (its webhook notifier and go-retryablehttp's defaults).
RETRIES = 4
BACKOFF = (1.0, 30.0)
MAX_AGE_SECONDS = 30.0
MAX_QUEUED = 200
#: How long one POST may take.
TIMEOUT_SECONDS = 10.0
#: How long a webhook token is valid, as LiveKit signs it.
TOKEN_SECONDS = 5 * 60
#: Attempts remembered for :attr:`WebhookSender.attempts`.
ATTEMPTS_KEPT = 10_000


def encode_event(event: webhook_pb.WebhookEvent) -> bytes:
    """The body LiveKit sends: protojson (camelCase keys, int64 as strings, zeros left out)."""
    return json.dumps(
        json_format.MessageToDict(event), separators=(",", ":"), ensure_ascii=False
    ).encode()


def sign_webhook(body: bytes, api_key: str, api_secret: str, *, now: float | None = None) -> str:
    """The Authorization header LiveKit sends with ``body``: the bare JWT."""
    issued = int(time.time() if now is None else now)
    digest = base64.b64encode(hashlib.sha256(body).digest()).decode()
    claims = {"iss": api_key, "nbf": issued, "exp": issued + TOKEN_SECONDS, "sha256": digest}
    return jwt.encode(claims, api_secret, algorithm="HS256")


@dataclass(frozen=True)
class Attempt:
    """One POST of one event to one URL."""

    event_id: str
    #: LiveKit's event type (``participant_joined``).
    event: str
    url: str
    #: The answer's status, or None when the connection failed.
    status: int | None
    #: 0 for the first attempt, 1… for retries.
    retry: int


def _retryable(status: int | None) -> bool:
    # go-retryablehttp's DefaultRetryPolicy, which LiveKit's notifier uses.
    return status is None or status == 429 or (status >= 500 and status != 501)


class WebhookSender:
    """Sends the emulated LiveKit's events to :attr:`urls`; safe to call from any thread."""

    def __init__(self, api_key: str, api_secret: str, urls: Iterable[str] = ()) -> None:
        """Sign as ``api_key`` with ``api_secret``; send to ``urls`` (none: send nothing)."""
        self._api_key = api_key
        self._api_secret = api_secret
        #: Where events go. Set it at any time; events queued already keep their URL.
        self.urls: tuple[str, ...] = tuple(urls)
        #: (first, longest) seconds between attempts; LiveKit's are (1, 30).
        self.backoff: tuple[float, float] = BACKOFF
        #: Seconds an event may wait in its queue before it is dropped; LiveKit's is 30.
        self.max_age = MAX_AGE_SECONDS
        #: Every POST made (the latest :data:`ATTEMPTS_KEPT`), oldest first.
        self.attempts: deque[Attempt] = deque(maxlen=ATTEMPTS_KEPT)
        #: Events given up on, by why: ``too_old``, ``queue_full``, ``refused`` (a final
        #: answer that is not 2xx), ``retries_exhausted`` or ``stopped``.
        self.dropped: Counter[str] = Counter()
        #: Events delivered (a 2xx), counting each copy of a duplicate.
        self.delivered = 0
        self._duplicates = 0
        self._lock = threading.Lock()
        self._queues: dict[tuple[str, str], deque[tuple[float, webhook_pb.WebhookEvent]]] = {}
        self._busy = 0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._session: aiohttp.ClientSession | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    # -- what a test does ---------------------------------------------------------------

    def duplicate_next(self, count: int = 1) -> None:
        """Send each of the next ``count`` events twice, as LiveKit does when an answer is
        lost and it retries (the same id, the same body)."""
        with self._lock:
            self._duplicates += count

    def idle(self) -> bool:
        """True when nothing is queued or being sent."""
        with self._lock:
            return not self._queues and not self._busy

    def wait_idle(self, timeout: float = 10.0) -> None:
        """Block until :meth:`idle`; TimeoutError after ``timeout`` seconds."""
        deadline = time.monotonic() + timeout
        while not self.idle():
            if time.monotonic() > deadline:
                raise TimeoutError("webhooks were still being sent")
            time.sleep(0.005)

    # -- what the rooms do --------------------------------------------------------------

    def report(self, event: webhook_pb.WebhookEvent, queue: str) -> None:
        """Queue ``event`` for every URL, behind the events of the same ``queue`` (room)."""
        if not self.urls:
            return
        with self._lock:
            loop = self._loop
            if loop is None or loop.is_closed():
                self.dropped["stopped"] += len(self.urls)
                return
            for url in self.urls:
                key = (url, queue)
                waiting = self._queues.get(key)
                if waiting is not None and len(waiting) >= MAX_QUEUED:
                    self.dropped["queue_full"] += 1
                    continue
                if waiting is None:
                    waiting = self._queues[key] = deque()
                    loop.call_soon_threadsafe(self._start, key)
                waiting.append((time.monotonic(), event))

    # -- the emulator's loop ------------------------------------------------------------

    def attach(self, loop: asyncio.AbstractEventLoop) -> None:
        """Send from ``loop`` (the emulator's, while it serves)."""
        with self._lock:
            self._loop = loop

    async def detach(self) -> None:
        """Stop sending: what is queued is lost, as when LiveKit restarts."""
        with self._lock:
            self._loop = None
            lost = sum(len(queue) for queue in self._queues.values())
            self._queues.clear()
            self.dropped["stopped"] += lost
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._session is not None:
            await self._session.close()
            self._session = None

    def _start(self, key: tuple[str, str]) -> None:
        task = asyncio.get_running_loop().create_task(self._drain(key))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _drain(self, key: tuple[str, str]) -> None:
        url = key[0]
        while True:
            with self._lock:
                queue = self._queues.get(key)
                if not queue:
                    self._queues.pop(key, None)
                    return
                queued_at, event = queue.popleft()
                self._busy += 1
                copies = 1
                if self._duplicates:
                    self._duplicates -= 1
                    copies = 2
            try:
                if time.monotonic() - queued_at > self.max_age:
                    self.dropped["too_old"] += 1
                    continue
                for _ in range(copies):
                    await self._deliver(url, event)
            finally:
                with self._lock:
                    self._busy -= 1

    async def _deliver(self, url: str, event: webhook_pb.WebhookEvent) -> None:
        body = encode_event(event)
        headers = {
            "Content-Type": "application/webhook+json",
            "User-Agent": "LiveKit",
            "Authorization": sign_webhook(body, self._api_key, self._api_secret),
        }
        for retry in range(RETRIES + 1):
            status = await self._post(url, body, headers)
            self.attempts.append(Attempt(event.id, event.event, url, status, retry))
            if status is not None and 200 <= status < 300:
                self.delivered += 1
                return
            if not _retryable(status):
                self.dropped["refused"] += 1
                return
            if retry < RETRIES:
                first, longest = self.backoff
                await asyncio.sleep(min(longest, first * 2**retry))
        self.dropped["retries_exhausted"] += 1

    async def _post(self, url: str, body: bytes, headers: dict[str, str]) -> int | None:
        if self._session is None:
            self._session = aiohttp.ClientSession(
                timeout=aiohttp.ClientTimeout(total=TIMEOUT_SECONDS),
                # No idle connection is left open to a receiver: a test's server stopping
                # before the emulator would otherwise close under one.
                connector=aiohttp.TCPConnector(force_close=True),
            )
        try:
            async with self._session.post(url, data=body, headers=headers) as answer:
                await answer.read()
                return answer.status
        except (aiohttp.ClientError, asyncio.TimeoutError, OSError):
            return None
