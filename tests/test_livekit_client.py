"""The real livekit-client (npm) fetches tokens from the service, in Node.

``.ci/run`` prepares ``tests/node`` (``npm ci --prefix tests/node``); a developer runs
the same command once. Without node, npm or the package this fails, never skips:
the point is to show the real client works.
"""

from __future__ import annotations

import asyncio
import json
import re
import shutil
from asyncio.subprocess import PIPE
from pathlib import Path
from typing import Any

import jwt
import pytest

from aura_livekit_backend.testing.client import ServiceClient
from aura_livekit_backend.testing.pytest_plugin import TEST_API_SECRET

# Start the console script or other processes: see tox.ini for where they run.
pytestmark = pytest.mark.processes

NODE_DIR = Path(__file__).resolve().parent / "node"
README = Path(__file__).resolve().parents[1] / "README.md"
KEY = "k-0123456789abcdef-client"
AGENT = "agent-x"


def node() -> str:
    binary = shutil.which("node")
    if binary is None:
        pytest.fail("node is not installed (Node 20): the real-client test needs it")
    if not (NODE_DIR / "node_modules" / "livekit-client" / "package.json").is_file():
        pytest.fail("livekit-client is not installed: run `npm ci --prefix tests/node`")
    return binary


def run_node(client: ServiceClient, *args: str) -> dict[str, Any]:
    """Run node on the served app's event loop: the app answers only while it runs."""

    async def run() -> tuple[int, bytes, bytes]:
        process = await asyncio.create_subprocess_exec(
            node(), *args, cwd=NODE_DIR, stdout=PIPE, stderr=PIPE
        )
        try:
            out, err = await asyncio.wait_for(process.communicate(), 60)
        except asyncio.TimeoutError:
            process.kill()
            await process.wait()
            raise
        return process.returncode or 0, out, err

    code, out, err = client.run(run())
    assert code == 0, err.decode()
    answer: dict[str, Any] = json.loads(out.decode().strip().splitlines()[-1])
    return answer


def claims(token: str) -> dict[str, Any]:
    return jwt.decode(token, TEST_API_SECRET, algorithms=["HS256"])


def test_token_source_endpoint_of_the_real_client_gets_the_token_it_asked_for(
    serve, livekit_emulator
) -> None:
    client = serve(api_keys=KEY, allowed_agents=AGENT)
    auth = {"Authorization": f"Bearer {KEY}"}
    room = client.post("/api/room/create", json={"userName": "host"}, headers=auth).json
    options = {
        "roomName": room["roomId"],
        "participantIdentity": "ann",
        "participantName": "Ann",
        "participantMetadata": "m",
        "participantAttributes": {"a": "b"},
        "agentName": AGENT,
        "agentMetadata": "am",
    }
    got = run_node(
        client,
        "token_source.mjs",
        f"{client.url}/api/livekit/token",
        f"Bearer {KEY}",
        json.dumps(options),
    )
    assert got["serverUrl"] == room["livekitUrl"]
    seen = claims(got["participantToken"])
    assert seen["video"]["room"] == room["roomId"] and seen["video"]["roomJoin"] is True
    assert (seen["sub"], seen["name"], seen["metadata"], seen["attributes"]) == (
        "ann", "Ann", "m", {"a": "b"},
    )  # fmt: skip
    assert seen["roomConfig"] == {"agents": [{"agentName": AGENT, "metadata": "am"}]}
    assert [d.agent_name for d in livekit_emulator.dispatches(room["roomId"])] == [AGENT]


def test_the_readme_snippet_runs_as_written(serve, livekit_emulator) -> None:
    text = README.read_text(encoding="utf-8")
    snippet = re.search(
        r"<!-- token-source-example -->\n```js\n(.*?)```\n<!-- /token-source-example -->",
        text,
        re.S,
    )
    assert snippet, "README lost its token-source example"
    client = serve(api_keys=KEY, allowed_agents=AGENT)
    prelude = (
        f"const serviceUrl = {json.dumps(client.url)};\n"
        f"const apiKeyOrUserJwt = {json.dumps(KEY)};\n"
        "const roomName = undefined;\n"
    )
    ending = "\nconsole.log(JSON.stringify({ serverUrl, participantToken }));\n"
    got = run_node(client, "--input-type=module", "--eval", prelude + snippet[1] + ending)
    seen = claims(got["participantToken"])
    assert (seen["sub"], seen["attributes"]) == ("ann", {"team": "blue"})
    room = seen["video"]["room"]
    assert [d.agent_name for d in livekit_emulator.dispatches(room)] == [AGENT]
