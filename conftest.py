"""What every test folder (``tests/`` and the plugins') shares: the browser harness's
fixtures and ``--shard K/N`` (``tools/sharding.py``).

Here, at the root, so each folder shares one definition (one Chromium per pytest-xdist
worker) and no plugin's own ``conftest.py`` has to name them.
"""

from browser_harness import browser, chromium, live_service, screenshots

pytest_plugins = ["sharding"]

__all__ = ["browser", "chromium", "live_service", "screenshots"]
