"""Serve an app on a real local port for the length of a test, and call it over HTTP.

Needs the ``test`` extra (sanic-testing, httpx).
"""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import httpx
from sanic import DefaultSanic
from sanic_testing.reusable import ReusableClient

from ..emulator import free_port

__all__ = ["ServiceClient", "free_port", "serving"]


class ServiceClient:
    """Calls a served app: ``client.get("/api/health")`` returns sanic-testing's
    ``TestingResponse`` (an ``httpx.Response`` whose ``.json`` is a property).

    The app's listeners have run, so its LiveKit gateway is open, as in a worker.
    """

    def __init__(self, reusable: ReusableClient) -> None:
        """Wrap a running sanic-testing ``ReusableClient``."""
        self._client = reusable
        self.app: DefaultSanic = reusable.app
        self.url = f"http://{reusable.host}:{reusable.port}"

    def request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        """Send one request; ``kwargs`` are httpx's (``json=``, ``headers=``, ``content=``)."""
        response: httpx.Response
        _, response = self._client.request(path, http_method=method.upper(), **kwargs)
        return response

    def get(self, path: str, **kwargs: Any) -> httpx.Response:
        """GET ``path``."""
        return self.request("get", path, **kwargs)

    def post(self, path: str, **kwargs: Any) -> httpx.Response:
        """POST ``path``."""
        return self.request("post", path, **kwargs)

    def patch(self, path: str, **kwargs: Any) -> httpx.Response:
        """PATCH ``path``."""
        return self.request("patch", path, **kwargs)

    def delete(self, path: str, **kwargs: Any) -> httpx.Response:
        """DELETE ``path``."""
        return self.request("delete", path, **kwargs)

    def run(self, coroutine: Any) -> Any:
        """Run ``coroutine`` on the app's event loop (to call its gateway directly)."""
        return self._client._loop.run_until_complete(coroutine)

    def serve_until(self, condition: Callable[[], bool], seconds: float = 10.0) -> None:
        """Serve (run the app's event loop) until ``condition()`` holds, or fail after
        ``seconds``: the app answers only while the test drives it, so a test waiting
        for the emulator's webhooks to reach it, or for a subscriber, serves meanwhile."""
        deadline = time.monotonic() + seconds
        while not condition():
            if time.monotonic() > deadline:
                raise AssertionError(f"not done within {seconds} s of serving")
            self.run(asyncio.sleep(0.01))


@contextmanager
def serving(app: DefaultSanic) -> Iterator[ServiceClient]:
    """Run ``app``'s listeners and server on 127.0.0.1 until the block ends."""
    app.config.MOTD = False
    loop = asyncio.new_event_loop()
    # Bound here and handed to Sanic, rather than a port found free and bound later:
    # in between, an outgoing connection (of this test run, or of another pytest-xdist
    # worker) may be given that port as its own, and the server fails to bind.
    listener = socket.socket()
    try:
        listener.bind(("127.0.0.1", 0))
        port = listener.getsockname()[1]
        reusable = ReusableClient(
            app, host="127.0.0.1", port=port, loop=loop, server_kwargs={"sock": listener}
        )
        with reusable:
            yield ServiceClient(reusable)
    finally:
        listener.close()
        loop.run_until_complete(loop.shutdown_asyncgens())
        loop.close()
        asyncio.set_event_loop(None)
