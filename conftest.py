"""The browser harness's fixtures for every test folder (``tests/`` and the plugins').

Here, at the root, so each folder shares one definition (one Chromium per pytest-xdist
worker) and no plugin's own ``conftest.py`` has to name them.
"""

from browser_harness import browser, chromium, live_service, screenshots

__all__ = ["browser", "chromium", "live_service", "screenshots"]
