"""The event log the settings ask for: SQLite in ``AURA_DATA_DIR``, or Redis Streams.

:func:`build_event_log` does no I/O (the app factory calls it in the main process and
in every worker); the log connects or opens its file in :meth:`EventLog.open`.
"""

from __future__ import annotations

from ..settings import Settings
from . import EventLog
from .sqlite import SQLiteEventLog, default_path

__all__ = ["build_event_log"]


def build_event_log(settings: Settings) -> EventLog:
    """The log for ``settings``: Redis Streams with ``AURA_REDIS_URL``, else SQLite."""
    max_age = settings.event_log_max_age.total_seconds()
    if settings.redis_url is not None:
        # Imported only here: a SQLite deployment never needs redis-py's asyncio side.
        from .redis import RedisEventLog

        return RedisEventLog(
            settings.redis_url.get_secret_value(),
            max_events=settings.event_log_max_events,
            max_age=max_age,
        )
    return SQLiteEventLog(
        default_path(settings.data_dir),
        max_events=settings.event_log_max_events,
        max_age=max_age,
    )
