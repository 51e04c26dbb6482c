"""Room caches learning across processes: the console script as it is deployed.

Two service processes share one SQLite event log and one LiveKit emulator, whose
webhooks go to the first only; the second's room listing, kept for a minute, follows
rooms starting and finishing in LiveKit all the same — through the log.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
from livekit import api
from service_processes import ServiceProcesses

from aura_livekit_backend.emulator.__main__ import WEBHOOK_URLS_ENV

pytestmark = pytest.mark.processes

KEY = "k-0123456789abcdef-processes"
AUTH = {"Authorization": f"Bearer {KEY}"}
#: Generous: four processes on a loaded 2-core machine.
WITHIN = 30.0
#: The emulator's credentials in ServiceProcesses (its defaults).
LIVEKIT_KEY, LIVEKIT_SECRET = "APIprocesses", "processes-livekit-secret-0123456789ab"


def listed(url: str) -> list[str]:
    answer = httpx.get(url + "/api/rooms", headers=AUTH, timeout=WITHIN)
    assert answer.status_code == 200, answer.text
    return [room["roomId"] for room in answer.json()["rooms"]]


def eventually(check: Callable[[], bool]) -> None:
    deadline = time.monotonic() + WITHIN
    while not check():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.1)


def in_livekit(livekit_url: str, action: Callable[[api.LiveKitAPI], object]) -> None:
    """Act on the emulated LiveKit directly, as another tool (not the service) would."""

    async def run() -> None:
        lk = api.LiveKitAPI(livekit_url, LIVEKIT_KEY, LIVEKIT_SECRET)
        try:
            await action(lk)  # type: ignore[misc]
        finally:
            await lk.aclose()

    asyncio.run(run())


def test_a_process_livekit_never_called_learns_rooms_starting_and_finishing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    env = {
        "AURA_API_KEYS": KEY,
        "AURA_DATA_DIR": str(tmp_path / "data"),
        "AURA_ROOM_LIST_CACHE_SECONDS": "60",
    }
    told = ServiceProcesses(workers=1, env=env)
    livekit_url = f"http://127.0.0.1:{told.livekit_port}"
    monkeypatch.setenv(WEBHOOK_URLS_ENV, told.url + "/livekit/webhook")
    with told:
        monkeypatch.delenv(WEBHOOK_URLS_ENV)
        # The other process uses the first one's LiveKit (its own emulator stays idle).
        with ServiceProcesses(workers=1, env={**env, "LIVEKIT_URL": livekit_url}) as other:
            assert listed(other.url) == []  # its listing, kept for a minute from now

            in_livekit(
                livekit_url, lambda lk: lk.room.create_room(api.CreateRoomRequest(name="one"))
            )
            eventually(lambda: listed(other.url) == ["one"])

            in_livekit(
                livekit_url, lambda lk: lk.room.delete_room(api.DeleteRoomRequest(room="one"))
            )
            eventually(lambda: listed(other.url) == [])
    assert "Traceback" not in told.service_log + other.service_log
