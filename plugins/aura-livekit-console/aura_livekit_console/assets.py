"""The console's stylesheet, script and icon, served by the plugin under hashed names.

Each URL a page names carries the first 16 hex digits of its file's SHA-256
(``/console/assets/console.3f9a61c2d4e5b6a7.js``), so a browser keeps it for a year
(``immutable``) and still sees a new release at once; an ETag answers a revalidation
with 304. Only these files are served: no path from a request reaches the file system.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

__all__ = ["Asset", "AssetFiles"]

_HERE = Path(__file__).parent / "assets"
_TYPES = {
    ".css": "text/css; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".svg": "image/svg+xml",
}


@dataclass(frozen=True, slots=True)
class Asset:
    """One file, ready to answer."""

    body: bytes
    content_type: str
    #: The first 16 hex digits of the body's SHA-256.
    version: str

    @property
    def etag(self) -> str:
        """The strong ETag of the body."""
        return f'"{self.version}"'


class AssetFiles:
    """The files under ``assets/``, read on first use (not in the app factory)."""

    def __init__(
        self, names: tuple[str, ...] = ("console.css", "console.js", "favicon.svg")
    ) -> None:
        """Serve ``names`` from the package's ``assets`` folder."""
        self._names = names

    @cached_property
    def _by_url_name(self) -> dict[str, Asset]:
        found = {}
        for name in self._names:
            body = (_HERE / name).read_bytes()
            stem, suffix = name.rsplit(".", 1)
            asset = Asset(body, _TYPES["." + suffix], hashlib.sha256(body).hexdigest()[:16])
            found[f"{stem}.{asset.version}.{suffix}"] = asset
        return found

    @cached_property
    def _urls(self) -> dict[str, str]:
        return {
            name.rsplit(".", 2)[0] + "." + name.rsplit(".", 1)[1]: f"/console/assets/{name}"
            for name in self._by_url_name
        }

    def url(self, name: str) -> str:
        """The hashed URL of ``name`` (``console.js``)."""
        return self._urls[name]

    def get(self, url_name: str) -> Asset | None:
        """The asset served as ``url_name`` (a hashed name), or None."""
        return self._by_url_name.get(url_name)
