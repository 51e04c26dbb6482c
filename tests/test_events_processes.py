"""The event stream across processes: the console script as it is deployed.

An event one service process logs reaches an SSE client of another process sharing
the SQLite file, and of another "replica" sharing a real redis-server; a stop ends
open streams cleanly instead of waiting for them.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import orjson
import pytest
from service_processes import ServiceProcesses

pytestmark = pytest.mark.processes

KEY = "k-0123456789abcdef-processes"
AUTH = {"Authorization": f"Bearer {KEY}"}
STREAM = {**AUTH, "Accept": "text/event-stream"}
#: Generous: four processes on a loaded 2-core machine; the bench measures speed.
WITHIN = 30.0


async def blocks(response: httpx.Response) -> AsyncIterator[dict[str, str]]:
    """SSE blocks as they arrive: fields, and ``comment`` for comment lines."""
    block: dict[str, str] = {}
    async for line in response.aiter_lines():
        if not line:
            yield block
            block = {}
        elif line.startswith(":"):
            block["comment"] = line[1:].strip()
        else:
            field, _, value = line.partition(": ")
            block[field] = value


async def created_elsewhere_arrives(writer: str, reader: str) -> tuple[str, dict[str, object]]:
    """Open a stream on ``reader``, create a room through ``writer``; the room's
    ``aura.room.created`` entry as the stream delivered it."""
    async with (
        httpx.AsyncClient(timeout=WITHIN) as http,
        http.stream("GET", reader + "/api/events", headers=STREAM) as response,
    ):
        assert response.status_code == 200
        stream = blocks(response)
        first = await asyncio.wait_for(anext(stream), WITHIN)
        assert first.get("comment") == "connected"
        made = await http.post(writer + "/api/room/create", json={"userName": "ann"}, headers=AUTH)
        assert made.status_code == 200, made.text
        room = made.json()["roomId"]

        async def find() -> tuple[str, dict[str, object]]:
            async for block in stream:
                if block.get("event") == "aura.room.created":
                    data = orjson.loads(block["data"])
                    if data["room"] == room:
                        return block["id"], data
            raise AssertionError("the stream ended")

        return await asyncio.wait_for(find(), WITHIN)


def test_an_event_logged_by_one_process_reaches_a_stream_on_another(tmp_path: Path) -> None:
    env = {"AURA_API_KEYS": KEY, "AURA_DATA_DIR": str(tmp_path / "data")}
    with ServiceProcesses(workers=1, env=env) as a, ServiceProcesses(workers=1, env=env) as b:
        position, entry = asyncio.run(created_elsewhere_arrives(a.url, b.url))
    assert entry["name"] == "aura.room.created" and entry["position"] == int(position)


def test_an_event_logged_by_one_replica_reaches_a_stream_on_another_with_redis(
    tmp_path: Path, redis_server
) -> None:
    redis_server.flush()
    base = {"AURA_API_KEYS": KEY, "AURA_REDIS_URL": redis_server.url}
    # Separate data directories: nothing but Redis is shared.
    env_a = {**base, "AURA_DATA_DIR": str(tmp_path / "a")}
    env_b = {**base, "AURA_DATA_DIR": str(tmp_path / "b")}
    with ServiceProcesses(workers=1, env=env_a) as a, ServiceProcesses(workers=1, env=env_b) as b:
        position, entry = asyncio.run(created_elsewhere_arrives(a.url, b.url))
    assert entry["name"] == "aura.room.created" and entry["position"] == int(position)


def test_a_stop_ends_open_streams_cleanly(tmp_path: Path) -> None:
    env = {"AURA_API_KEYS": KEY, "AURA_DATA_DIR": str(tmp_path / "data")}
    stack = ServiceProcesses(workers=2, env=env).__enter__()

    async def stream_through_a_stop() -> list[dict[str, str]]:
        async with (
            httpx.AsyncClient(timeout=WITHIN) as http,
            http.stream("GET", stack.url + "/api/events", headers=STREAM) as response,
        ):
            stream = blocks(response)
            seen = [await asyncio.wait_for(anext(stream), WITHIN)]
            stopping = asyncio.get_running_loop().run_in_executor(None, stack.__exit__)
            # The answer ends with its last chunk: httpx raises RemoteProtocolError for
            # a connection cut in the middle (what Sanic does to a request still running
            # when its graceful-stop wait is over).
            seen += [block async for block in stream]
            await stopping
            return seen

    try:
        seen = asyncio.run(stream_through_a_stop())
    except BaseException:
        stack.__exit__()
        raise
    assert seen == [{"retry": "2000", "comment": "connected"}]
    assert "Traceback" not in stack.service_log
