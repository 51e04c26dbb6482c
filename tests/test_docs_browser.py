"""/docs in a real browser: Swagger UI renders from the service alone, under its CSP.

The page's HTML and assets are checked byte by byte in ``test_docs_offline.py``; here
headless Chromium (``browser_harness``) shows that they add up to a working page on a
machine whose only host is 127.0.0.1, and that the browser enforces the policy.
"""

from __future__ import annotations

import pytest
from selenium.webdriver.common.by import By

pytestmark = pytest.mark.browser

KEY = "k-0123456789abcdef"
METHODS = {"get", "put", "post", "delete", "patch", "head", "options"}


@pytest.fixture
def docs(live_service):
    """The service with API keys on (the page must stay open), and its operations."""
    service = live_service(api_keys=KEY)
    document = service.http.get("/docs/openapi.json").json()
    operations = sorted(
        (method.upper(), path)
        for path, item in document["paths"].items()
        for method in item
        if method in METHODS
    )
    assert len(operations) > 5
    return service, operations


def test_the_page_lists_every_operation_loading_only_from_the_service(browser, docs) -> None:
    service, operations = docs
    browser.get(f"{service.url}/docs")

    def shown() -> list[tuple[str, str]]:
        blocks = browser.driver.find_elements(By.CSS_SELECTOR, ".opblock-summary")
        return sorted(
            (
                block.find_element(By.CSS_SELECTOR, ".opblock-summary-method").text,
                block.find_element(By.CSS_SELECTOR, ".opblock-summary-path").get_attribute(
                    "data-path"
                ),
            )
            for block in blocks
        )

    assert browser.wait_until(lambda: shown() == operations, what="the operations") is True
    assert browser.console_errors() == []
    requested = browser.requested_urls()
    assert f"{service.url}/docs/openapi.json" in requested
    assert f"{service.url}/docs" in requested
    # Everything else came from the service too (Swagger UI's icons are data: URLs).
    elsewhere = [url for url in requested if not url.startswith((f"{service.url}/", "data:"))]
    assert elsewhere == []


def test_the_browser_enforces_the_policy_an_inline_script_does_not_run(browser, docs) -> None:
    service, _ = docs
    browser.get(f"{service.url}/docs")
    browser.wait_until(
        lambda: browser.driver.find_elements(By.CSS_SELECTOR, ".opblock"), what="the page"
    )
    assert browser.console_errors() == []
    # What an injection would add to the page: an inline script and an inline handler.
    browser.script(
        """
        const script = document.createElement("script");
        script.textContent = "window.injected = 'script';";
        document.body.append(script);
        const image = document.createElement("img");
        image.setAttribute("onerror", "window.injected = 'handler';");
        image.src = "/docs/assets/no-such-image.png";
        document.body.append(image);
        """
    )
    refusals = browser.wait_until(
        lambda: [m for m in browser.console_errors() if "Content Security Policy" in m],
        what="the browser's refusals",
    )
    assert browser.script("return window.injected;") is None
    assert any("inline script" in message for message in refusals), refusals
    assert any("inline event handler" in message for message in refusals), refusals
