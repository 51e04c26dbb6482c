"""The browsable API page at ``/docs``: Swagger UI, served by the service itself.

sanic-ext's own page loads Swagger UI from a public CDN, so behind a firewall, in an
air-gapped cluster or under a strict Content-Security-Policy it shows nothing; its
``/docs/oauth2-redirect.html`` even fetches a CDN file from inside the worker. Here
sanic-ext keeps serving the OpenAPI document (``/docs/openapi.json``) with its pages
switched off, and this module serves the page and everything it loads:

- ``/docs`` (and ``/docs/swagger``, the old address): a small HTML page that names
  only ``/docs/assets/…`` and ``/docs/openapi.json``, with a Content-Security-Policy
  that lets it load nothing from anywhere else and run no inline script;
- ``/docs/assets/<name>``: Swagger UI's files (``docs_assets/swagger-ui``, the
  unmodified ``swagger-ui-dist`` release with its licence) and ``docs-page.js``,
  the script that starts it. Each URL the page names carries its file's hash, so a
  browser keeps the file for a year and still sees a new release at once.

The routes are named ``openapi.*`` as sanic-ext names its own (its start-up banner
links to ``openapi.index``), hold no secret, stay open under ``AURA_API_KEYS`` and are
left out of the OpenAPI document; they exist only while the document does
(``AURA_DOCS``).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from functools import cache
from html import escape
from pathlib import Path

from sanic import DefaultSanic, HTTPResponse, Request
from sanic.exceptions import NotFound

__all__ = ["CONTENT_SECURITY_POLICY", "SWAGGER_UI_VERSION", "install"]

_ASSETS = Path(__file__).parent / "docs_assets"
_SWAGGER_UI = _ASSETS / "swagger-ui"

#: The Swagger UI release served (``docs_assets/swagger-ui/package.json``).
SWAGGER_UI_VERSION: str = json.loads((_SWAGGER_UI / "package.json").read_bytes())["version"]

#: The page's policy: everything from the service itself. ``data:`` images are the
#: icons inside Swagger UI's stylesheet; they come from no host.
CONTENT_SECURITY_POLICY = "; ".join(
    (
        "default-src 'none'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' data:",
        "connect-src 'self'",
        "base-uri 'none'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    )
)

# Every file the page may load, by the name it has under /docs/assets/: nothing else
# is served, so no path from a request ever reaches the file system.
_FILES = {
    "swagger-ui.css": (_SWAGGER_UI / "swagger-ui.css", "text/css; charset=utf-8"),
    "index.css": (_SWAGGER_UI / "index.css", "text/css; charset=utf-8"),
    "swagger-ui-bundle.js": (
        _SWAGGER_UI / "swagger-ui-bundle.js",
        "text/javascript; charset=utf-8",
    ),
    "docs-page.js": (_ASSETS / "docs-page.js", "text/javascript; charset=utf-8"),
    "favicon-32x32.png": (_SWAGGER_UI / "favicon-32x32.png", "image/png"),
}

_NO_SNIFF = {"X-Content-Type-Options": "nosniff"}
_A_YEAR = 365 * 24 * 3600


@dataclass(frozen=True)
class _Asset:
    body: bytes
    content_type: str
    version: str  # the first 16 hex digits of the body's SHA-256

    @property
    def etag(self) -> str:
        return f'"{self.version}"'


@cache
def _assets() -> dict[str, _Asset]:
    # Read on the first request that needs them (about 2 MB, once per worker), not in
    # the app factory, which runs in every process and stays free of I/O.
    assets = {}
    for name, (path, content_type) in _FILES.items():
        body = path.read_bytes()
        assets[name] = _Asset(body, content_type, hashlib.sha256(body).hexdigest()[:16])
    return assets


def _page(title: str, spec_url: str, assets_url: str) -> str:
    def url(name: str) -> str:
        return escape(f"{assets_url}/{name}?v={_assets()[name].version}")

    return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{escape(title)}</title>
<link rel="icon" type="image/png" href="{url("favicon-32x32.png")}">
<link rel="stylesheet" href="{url("swagger-ui.css")}">
<link rel="stylesheet" href="{url("index.css")}">
</head>
<body>
<div id="swagger-ui" data-spec-url="{escape(spec_url)}"></div>
<script src="{url("swagger-ui-bundle.js")}"></script>
<script src="{url("docs-page.js")}"></script>
</body>
</html>
"""


def install(app: DefaultSanic, *, title: str) -> None:
    """Serve the ``/docs`` page (titled ``title``) and its assets on ``app``, when its
    OpenAPI document is on.

    Call it after sanic-ext is set up on ``app``, with ``OAS_UI_SWAGGER`` and
    ``OAS_UI_REDOC`` off: the page takes the place of theirs, under
    ``OAS_URL_PREFIX``, and reads the document at ``OAS_URI_TO_JSON``.
    """
    config = app.config
    if not config.OAS:
        return
    prefix = config.OAS_URL_PREFIX.rstrip("/")
    spec_url = f"{prefix}/{config.OAS_URI_TO_JSON.lstrip('/')}"
    assets_url = f"{prefix}/assets"

    @cache
    def page_html() -> bytes:
        return _page(title, spec_url, assets_url).encode()

    async def page(request: Request) -> HTTPResponse:
        return HTTPResponse(
            page_html(),
            content_type="text/html; charset=utf-8",
            headers={
                "Content-Security-Policy": CONTENT_SECURITY_POLICY,
                # Always asked again: the page names the current assets' versions.
                "Cache-Control": "no-cache",
                **_NO_SNIFF,
            },
        )

    async def asset(request: Request, name: str) -> HTTPResponse:
        found = _assets().get(name)
        if found is None:
            raise NotFound("No such docs asset")
        # The version the page named never changes its bytes; any other URL may.
        cache_control = (
            f"public, max-age={_A_YEAR}, immutable"
            if request.args.get("v") == found.version
            else "no-cache"
        )
        headers = {"Cache-Control": cache_control, "ETag": found.etag, **_NO_SNIFF}
        if found.etag in request.headers.get("if-none-match", ""):
            return HTTPResponse(status=304, headers=headers)
        return HTTPResponse(found.body, content_type=found.content_type, headers=headers)

    # ctx_api_keys=False: open under AURA_API_KEYS, like the document (access.py).
    app.add_route(page, prefix, name="openapi.index", ctx_api_keys=False)
    app.add_route(page, f"{prefix}/swagger", name="openapi.swagger", ctx_api_keys=False)
    app.add_route(asset, f"{assets_url}/<name:str>", name="openapi.asset", ctx_api_keys=False)
