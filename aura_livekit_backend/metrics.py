"""Prometheus metrics, correct across worker processes.

With several workers each process counts on its own, so prometheus-client's
multi-process mode is used: every worker writes its numbers to files in
``PROMETHEUS_MULTIPROC_DIR`` and a scrape sums them. The console script sets that
directory up (fresh at every start) before any worker exists. Without it — one
process, or tests — each app counts in a registry of its own.

prometheus-client picks its mode when first imported, so it is imported here lazily,
never at module import time.
"""

from __future__ import annotations

import os
from typing import Any

__all__ = ["MULTIPROC_ENV", "Metrics"]

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"

_LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)


class Metrics:
    """The service's metrics for one process; see the README for their names."""

    def __init__(self) -> None:
        """Create the collectors (no I/O beyond multi-process mode's own files)."""
        from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

        self.multiprocess = bool(os.environ.get(MULTIPROC_ENV))
        # In multi-process mode values live in files; a registry would only duplicate them.
        self._registry = None if self.multiprocess else CollectorRegistry(auto_describe=True)
        registry = self._registry
        self.requests = Counter(
            "aura_http_requests_total",
            "HTTP requests answered, by route template, method and status.",
            ["route", "method", "status"],
            registry=registry,
        )
        self.request_seconds = Histogram(
            "aura_http_request_duration_seconds",
            "Time to answer an HTTP request, by route template and method.",
            ["route", "method"],
            buckets=_LATENCY_BUCKETS,
            registry=registry,
        )
        self.livekit_calls = Counter(
            "aura_livekit_calls_total",
            "Calls to LiveKit's server API, by Twirp method and outcome.",
            ["method", "outcome"],
            registry=registry,
        )
        self.livekit_seconds = Histogram(
            "aura_livekit_call_duration_seconds",
            "Time a call to LiveKit took, by Twirp method.",
            ["method"],
            buckets=_LATENCY_BUCKETS,
            registry=registry,
        )
        self.tokens = Counter(
            "aura_tokens_minted_total", "LiveKit access tokens minted.", registry=registry
        )
        self._series: dict[tuple[str, str, int], tuple[Any, Any]] = {}
        self.rooms = Counter(
            "aura_rooms_created_total", "LiveKit rooms created.", registry=registry
        )
        # The event stream (event_feed.py, endpoints/events.py). Gauges in multi-process
        # mode: clients summed over the live workers, lag the worst worker's.
        self.sse_clients = Gauge(
            "aura_events_sse_clients",
            "Clients connected to GET /events as a stream.",
            multiprocess_mode="livesum",
            registry=registry,
        )
        self.event_lag = Gauge(
            "aura_events_feed_lag",
            "Entries the newest entry of the event log is ahead of a worker's feed.",
            multiprocess_mode="livemax",
            registry=registry,
        )
        self.events_delivered = Counter(
            "aura_events_delivered_total",
            "Event log entries handed to live followers (one per follower).",
            registry=registry,
        )
        self.events_dropped = Counter(
            "aura_events_followers_dropped_total",
            "Live followers dropped from a feed because their buffer was full.",
            registry=registry,
        )

    def request(self, route: str, method: str, status: int, seconds: float) -> None:
        """Count one answered HTTP request."""
        key = (route, method, status)
        series = self._series.get(key)
        if series is None:
            # labels() takes a lock and builds a key on every call: resolve once per series.
            series = self._series[key] = (
                self.requests.labels(route, method, str(status)),
                self.request_seconds.labels(route, method),
            )
        series[0].inc()
        series[1].observe(seconds)

    def livekit_call(self, method: str, outcome: str, seconds: float) -> None:
        """Count one call to LiveKit; ``outcome`` is ``ok`` or what went wrong."""
        self.livekit_calls.labels(method, outcome).inc()
        self.livekit_seconds.labels(method).observe(seconds)

    def token_minted(self) -> None:
        """Count one minted token."""
        self.tokens.inc()

    def room_created(self) -> None:
        """Count one created room."""
        self.rooms.inc()

    def sse_client(self, change: int) -> None:
        """A stream client connected (+1) or went away (-1)."""
        self.sse_clients.inc(change)

    def feed_lag(self, entries: int) -> None:
        """How many entries this worker's feed is behind the log's newest."""
        self.event_lag.set(entries)

    def events_fanned_out(self, delivered: int, dropped: int) -> None:
        """Count entries handed to followers and followers dropped for a full buffer."""
        if delivered:
            self.events_delivered.inc(delivered)
        if dropped:
            self.events_dropped.inc(dropped)

    def exposition(self) -> tuple[bytes, str]:
        """The current numbers in Prometheus' text format, and its content type."""
        from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

        return generate_latest(self._scrape_registry()), CONTENT_TYPE_LATEST

    def _scrape_registry(self) -> Any:
        if self._registry is not None:
            return self._registry
        return multiprocess_registry()


def multiprocess_registry() -> Any:
    """A registry that sums every worker's files (multi-process mode only)."""
    from prometheus_client import CollectorRegistry, multiprocess

    registry = CollectorRegistry()
    multiprocess.MultiProcessCollector(registry)
    return registry
