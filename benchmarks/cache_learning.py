"""What learning from LiveKit's events costs a worker with many rooms, in one process.

    python benchmarks/cache_learning.py [--rooms 10000] [--events 1000]

Fills an in-process LiveKit emulator with ``--rooms`` rooms, takes the worker's
listing through the real LiveKit layer, then times (best of ``--runs``):
``RoomLearner.learn`` on ``--events`` participant events read back from their logged
JSON (what each worker's feed hands it), and the next listing read, which applies
them all at once (one copy of the snapshot, one room re-encoded per change).
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import time
from datetime import datetime, timezone

# The LiveKit package first: events.py imports its models, whose package imports events.
from aura_livekit_backend import livekit as _livekit  # noqa: F401
from aura_livekit_backend.emulator import LiveKitEmulator
from aura_livekit_backend.events import ParticipantJoined
from aura_livekit_backend.livekit import LiveKit
from aura_livekit_backend.livekit.learning import RoomLearner
from aura_livekit_backend.livekit.models import Participant
from aura_livekit_backend.schemas import room_json
from aura_livekit_backend.settings import Settings

KEY, SECRET = "APIbenchmark", "benchmark-secret-0123456789abcdefghij"


async def measure(rooms: int, events: int, runs: int, url: str) -> None:
    settings = Settings(
        _env_file=None,  # type: ignore[call-arg]
        livekit_url=url,
        livekit_api_key=KEY,
        livekit_api_secret=SECRET,
        room_list_cache_seconds=60,
    )
    livekit = LiveKit(settings, encode_room=room_json)
    await livekit.open()
    try:
        snapshot = await livekit.rooms.snapshot()
        listed = snapshot.page().rooms
        learner = RoomLearner(livekit.rooms)
        learn_us, apply_ms = [], []
        at = time.time()
        for run in range(runs):
            entries = []
            for n in range(events):
                room = listed[(run * events + n) % len(listed)]
                event = ParticipantJoined(
                    id=f"EV_{run}_{n}",
                    created_at=datetime.now(timezone.utc),
                    room=dataclasses.replace(room, num_participants=run + 1),
                    participant=_someone(n),
                )
                entries.append((event.name, event.data()))
            at += 1
            started = time.perf_counter()
            for name, data in entries:
                learner.learn(name, data, at)
            learn_us.append((time.perf_counter() - started) / events * 1e6)
            started = time.perf_counter()
            await livekit.rooms.snapshot()
            apply_ms.append((time.perf_counter() - started) * 1000)
        print(f"{rooms:,} rooms, {events:,} participant events per read, best of {runs}:")
        print(f"  learn one event (JSON read back, noted): {min(learn_us):.1f} µs")
        print(f"  next listing read, applying all {events:,}: {min(apply_ms):.1f} ms")
    finally:
        await livekit.close()


def _someone(n: int) -> Participant:
    return Participant(
        identity=f"user-{n}",
        name=f"User {n}",
        joined_at=datetime.now(timezone.utc),
        is_publisher=False,
        state="active",
        sid=f"PA_{n:012d}",
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rooms", type=int, default=10_000)
    parser.add_argument("--events", type=int, default=1_000)
    parser.add_argument("--runs", type=int, default=10)
    args = parser.parse_args()
    with LiveKitEmulator(KEY, SECRET) as emulator:
        emulator.create_rooms(f"room-{n:06d}" for n in range(args.rooms))
        asyncio.run(measure(args.rooms, args.events, args.runs, emulator.url))


if __name__ == "__main__":
    main()
