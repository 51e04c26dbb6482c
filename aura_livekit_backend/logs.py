"""Log lines: text or JSON, each carrying the id of the request that caused it.

The request id lives in a context variable set when a request arrives; Sanic runs a
request's middleware and handler in one task, so every line logged on its behalf —
the access line, a LiveKit failure, an unexpected exception — carries the same id.
"""

from __future__ import annotations

import json
import logging
import sys
from contextvars import ContextVar
from datetime import datetime, timezone
from typing import Any

from .settings import Settings

__all__ = ["ACCESS_LOGGER", "JsonFormatter", "RequestIdFilter", "log_config", "request_id"]

#: The id of the request being handled in this task; "-" outside any request.
request_id: ContextVar[str] = ContextVar("request_id", default="-")

#: The access log: one line per request, when AURA_ACCESS_LOG is on.
ACCESS_LOGGER = "aura_livekit_backend.access"

#: Structured fields a log call may pass in ``extra=`` and JSON lines carry as keys.
FIELDS = ("method", "route", "path", "status", "duration_ms", "client", "livekit_method")


class RequestIdFilter(logging.Filter):
    """Stamps every record with the current request id."""

    def filter(self, record: logging.LogRecord) -> bool:
        """Add ``record.request_id``; never drops a record."""
        record.request_id = request_id.get()
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object per line, for log pipelines."""

    def format(self, record: logging.LogRecord) -> str:
        """The record as JSON: time, level, logger, message, request id, pid, fields."""
        line: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, timezone.utc).isoformat(
                timespec="milliseconds"
            ),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "request_id": getattr(record, "request_id", "-"),
            "pid": record.process,
        }
        for field in FIELDS:
            if hasattr(record, field):
                line[field] = getattr(record, field)
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        return json.dumps(line, ensure_ascii=False, default=str)


_TEXT = "%(asctime)s %(levelname)s [%(process)d] [%(request_id)s] %(name)s: %(message)s"


def log_config(settings: Settings) -> dict[str, Any]:
    """A ``logging.config.dictConfig`` for Sanic's loggers and ours, in the chosen format."""
    formatter: dict[str, Any] = (
        {"()": JsonFormatter} if settings.log_format == "json" else {"format": _TEXT}
    )

    def handler(stream: Any) -> dict[str, Any]:
        return {
            "class": "logging.StreamHandler",
            "formatter": "main",
            "filters": ["request_id"],
            "stream": stream,
        }

    def logger(handler_name: str, level: str = "INFO") -> dict[str, Any]:
        # Propagating, as Sanic's own configuration does: the root has no handler of
        # ours, and a host application's (or pytest's caplog) sees our lines too.
        return {"level": level, "handlers": [handler_name], "propagate": True}

    return {
        "version": 1,
        "disable_existing_loggers": False,
        "filters": {"request_id": {"()": RequestIdFilter}},
        "formatters": {"main": formatter},
        "handlers": {"stdout": handler(sys.stdout), "stderr": handler(sys.stderr)},
        "loggers": {
            "sanic.root": logger("stdout"),
            "sanic.server": logger("stdout"),
            "sanic.websockets": logger("stdout"),
            "sanic.error": logger("stderr"),
            "sanic.access": logger("stdout"),
            "aura_livekit_backend": logger("stderr", settings.log_level),
            # No handler of its own: its lines go out through the service's logger.
            ACCESS_LOGGER: {"level": "INFO"},
        },
    }
