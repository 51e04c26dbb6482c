"""How the API writes a moment in time: ISO 8601, UTC, milliseconds, ``Z``."""

from __future__ import annotations

from datetime import datetime, timezone

__all__ = ["from_unix_ms", "iso_ms", "utc_now"]


def utc_now() -> datetime:
    """The current time, timezone-aware, in UTC."""
    return datetime.now(timezone.utc)


def from_unix_ms(milliseconds: int) -> datetime:
    """A UTC datetime from milliseconds since the epoch (how LiveKit counts)."""
    return datetime.fromtimestamp(milliseconds / 1000, timezone.utc)


def iso_ms(moment: datetime) -> str:
    """``2025-12-30T16:21:40.876Z``: the form every time in the API takes."""
    # isoformat is several times faster than strftime, and GET /rooms writes thousands.
    return moment.astimezone(timezone.utc).isoformat(timespec="milliseconds")[:-6] + "Z"
