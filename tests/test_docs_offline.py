"""/docs needs no internet: the page and all it loads come from the service itself."""

from __future__ import annotations

import re
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import urljoin, urlsplit

import pytest

from aura_livekit_backend.docs_page import CONTENT_SECURITY_POLICY, SWAGGER_UI_VERSION

KEY = "k-0123456789abcdef"
PAGES = ("/docs", "/docs/swagger")
# Any absolute or protocol-relative URL: one that names a host.
HOSTED_URL = re.compile(r"(?:[a-z][a-z0-9+.-]*:)?//[^\s\"'<>()]+", re.IGNORECASE)
CSS_REFERENCE = re.compile(r"""url\(\s*['"]?([^'")]+)|@import\s+['"]([^'"]+)""")
CONTENT_TYPES = {".js": "text/javascript", ".css": "text/css", ".png": "image/png"}


class References(HTMLParser):
    """Every ``src`` and ``href`` attribute of a page."""

    def __init__(self) -> None:
        super().__init__()
        self.urls: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.urls += [value for name, value in attrs if name in ("src", "href") and value]


def references(page: str) -> list[str]:
    parser = References()
    parser.feed(page)
    return parser.urls


def same_origin(base: str, url: str) -> bool:
    return urlsplit(urljoin(base, url)).netloc == urlsplit(base).netloc


@pytest.fixture
def keyed(serve):
    """The service with API keys on, so anything not open answers 401."""
    return serve(api_keys=KEY)


def test_the_page_names_only_the_service_and_runs_no_inline_script(keyed) -> None:
    for path in PAGES:
        page = keyed.get(path)
        assert page.status_code == 200
        assert page.headers["content-type"] == "text/html; charset=utf-8"
        assert HOSTED_URL.findall(page.text) == []
        urls = references(page.text)
        assert len(urls) == 5, urls  # icon, two stylesheets, Swagger UI, its starter
        assert all(url.startswith("/docs/assets/") for url in urls), urls
        # No inline script or style, so the policy below can forbid them.
        assert re.search(r"<script(?![^>]*\bsrc=)", page.text) is None
        assert "<style" not in page.text and "style=" not in page.text
        assert page.headers["content-security-policy"] == CONTENT_SECURITY_POLICY


def test_the_policy_lets_the_browser_load_nothing_from_another_host(keyed) -> None:
    policy = keyed.get("/docs").headers["content-security-policy"]
    directives = dict(
        (parts[0], parts[1:]) for parts in (d.split() for d in policy.split(";")) if parts
    )
    assert directives["default-src"] == ["'none'"]
    for name in ("script-src", "style-src", "connect-src"):
        assert directives[name] == ["'self'"], name
    # Swagger UI's stylesheet draws its icons from data: URLs, which name no host.
    assert directives["img-src"] == ["'self'", "data:"]
    assert directives["frame-ancestors"] == ["'none'"]
    for sources in directives.values():
        assert set(sources) <= {"'self'", "'none'", "data:"}, sources


def test_every_asset_the_page_loads_answers_from_the_service(keyed) -> None:
    page = keyed.get("/docs")
    base = keyed.url + "/docs"
    for url in references(page.text):
        assert same_origin(base, url), url
        response = keyed.get(url)
        assert response.status_code == 200, url
        suffix = re.search(r"\.[a-z]+(?=\?|$)", urlsplit(url).path).group()
        assert response.headers["content-type"].startswith(CONTENT_TYPES[suffix]), url
        assert response.headers["x-content-type-options"] == "nosniff"
        if suffix != ".png":
            assert "//cdn" not in response.text, url
        if suffix == ".css":
            # What a stylesheet loads in turn: data: URLs or the service's own.
            for found in CSS_REFERENCE.findall(response.text):
                target = found[0] or found[1]
                assert target.startswith("data:") or same_origin(base, target), target
    starter = keyed.get(next(u for u in references(page.text) if "docs-page.js" in u)).text
    # Our script names no URL at all: the page hands it the document's.
    assert HOSTED_URL.findall(starter) == []
    assert "validatorUrl: null" in starter


def test_swagger_ui_is_the_vendored_release(keyed) -> None:
    bundle = next(u for u in references(keyed.get("/docs").text) if "swagger-ui-bundle" in u)
    assert f'PACKAGE_VERSION:"{SWAGGER_UI_VERSION}"' in keyed.get(bundle).text


def test_assets_are_kept_a_year_by_version_and_revalidated_otherwise(keyed) -> None:
    (css,) = [u for u in references(keyed.get("/docs").text) if "swagger-ui.css" in u]
    versioned = keyed.get(css)
    assert versioned.headers["cache-control"] == "public, max-age=31536000, immutable"
    etag = versioned.headers["etag"]
    assert keyed.get(css, headers={"If-None-Match": etag}).status_code == 304
    bare = keyed.get("/docs/assets/swagger-ui.css")
    assert bare.status_code == 200 and bare.headers["cache-control"] == "no-cache"
    assert bare.headers["etag"] == etag
    assert keyed.get("/docs").headers["cache-control"] == "no-cache"


@pytest.mark.parametrize(
    "path",
    ["/docs/assets/nope.js", "/docs/assets/package.json", "/docs/assets/..%2Fdocs_page.py"],
)
def test_nothing_but_the_listed_assets_is_served(keyed, path) -> None:
    response = keyed.get(path)
    assert response.status_code == 404
    assert response.json["statusCode"] == 404


def test_the_docs_stay_open_under_api_keys_and_out_of_the_document(keyed) -> None:
    assert keyed.get("/api/rooms").status_code == 401  # the keys are on
    for path in (*PAGES, "/docs/openapi.json", *references(keyed.get("/docs").text)):
        assert keyed.get(path).status_code == 200, path
        assert keyed.request("head", path).status_code == 200, path
    documented = keyed.get("/docs/openapi.json").json["paths"]
    assert not [path for path in documented if path.startswith("/docs")]


def test_docs_false_removes_the_page_and_its_assets(serve) -> None:
    on = serve()
    assets = references(on.get("/docs").text)
    off = serve(docs=False)
    for path in (*PAGES, "/docs/openapi.json", *assets):
        assert off.get(path).status_code == 404, path


def test_sanic_ext_cdn_routes_are_gone(serve) -> None:
    client = serve()
    # Its OAuth2 redirect page fetched a CDN file inside the worker; its config fed its page.
    for path in ("/docs/oauth2-redirect.html", "/docs/swagger-config", "/docs/redoc"):
        assert client.get(path).status_code == 404, path


def test_the_readme_names_the_release_served() -> None:
    readme = (Path(__file__).parents[1] / "README.md").read_text()
    assert f"Swagger UI {SWAGGER_UI_VERSION}" in readme
