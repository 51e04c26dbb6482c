"""HTML that escapes by default.

Every page is built from templates filled with :func:`html`, which escapes each value
(``&``, ``<``, ``>``, both quotes) unless it is already :class:`Html` — markup this
module or a template made. A room topic, a participant's name or a room's metadata
can hold anything (``<img src=x onerror=…>``, ``</script>``): they only ever reach
a page through here, as text. No value ever starts an attribute that a browser would
follow or run: every link the console makes is a path of its own, with the value
percent-encoded inside it (:func:`path`).
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timezone
from html import escape
from urllib.parse import quote

__all__ = ["Html", "ago", "duration", "html", "join", "path", "when"]


class Html(str):
    """Markup that is safe as it is: a template's output, never a value from outside."""

    __slots__ = ()


def html(template: str, /, **values: object) -> Html:
    """``template`` with each ``{name}`` replaced by ``values[name]``, escaped unless it
    is :class:`Html`. The template itself is trusted: never build one from data."""
    return Html(
        template.format_map(
            {
                name: value if isinstance(value, Html) else escape(str(value), quote=True)
                for name, value in values.items()
            }
        )
    )


def join(parts: Iterable[Html], separator: str = "") -> Html:
    """Pieces of markup, one after the other."""
    return Html(separator.join(parts))


def path(*segments: str) -> str:
    """A console path with each segment percent-encoded (``/`` too), e.g.
    ``path("room", name)`` → ``/console/room/<name>``. Escape it like any value."""
    return "/console/" + "/".join(quote(segment, safe="") for segment in segments)


def duration(seconds: float) -> str:
    """``45 s``, ``12 min``, ``3 h 4 min``, ``2 d 3 h``."""
    seconds = max(0, int(seconds))
    if seconds < 60:
        return f"{seconds} s"
    minutes = seconds // 60
    if minutes < 60:
        return f"{minutes} min"
    hours, minutes = divmod(minutes, 60)
    if hours < 24:
        return f"{hours} h {minutes} min" if minutes else f"{hours} h"
    days, hours = divmod(hours, 24)
    return f"{days} d {hours} h" if hours else f"{days} d"


def ago(moment: datetime, now: float) -> str:
    """How long ago ``moment`` was, as :func:`duration`."""
    return duration(now - moment.timestamp())


def when(moment: datetime | float) -> Html:
    """A ``<time>`` element: UTC, to the second, machine-readable in ``datetime``."""
    if not isinstance(moment, datetime):
        moment = datetime.fromtimestamp(moment, tz=timezone.utc)
    moment = moment.astimezone(timezone.utc)
    return html(
        '<time datetime="{iso}">{text}</time>',
        iso=moment.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
        text=moment.strftime("%Y-%m-%d %H:%M:%S UTC"),
    )
