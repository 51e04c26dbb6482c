"""The event log the settings ask for: SQLite in ``AURA_DATA_DIR``.

:func:`build_event_log` does no I/O (the app factory calls it in the main process and
in every worker); the log connects or opens its file in :meth:`EventLog.open`.
"""

from __future__ import annotations

from ..settings import Settings
from . import EventLog
from .sqlite import SQLiteEventLog, default_path

__all__ = ["build_event_log"]


def build_event_log(settings: Settings) -> EventLog:
    """The log for ``settings``: a SQLite file in ``AURA_DATA_DIR``."""
    max_age = settings.event_log_max_age.total_seconds()
    return SQLiteEventLog(
        default_path(settings.data_dir),
        max_events=settings.event_log_max_events,
        max_age=max_age,
    )
