"""Where GET /rooms spends its time with many rooms, step by step, in one process.

    python benchmarks/rooms_breakdown.py [--rooms 10000]

Times each step the service takes after LiveKit answers ListRooms: decoding the
protobuf answer, reading each room's metadata JSON into a RoomInfo, shaping the
reply, and encoding it as JSON — with the standard library, and with orjson when it
is installed, to show whether a faster encoder would be worth a dependency.
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Callable
from functools import partial

from livekit import api

from aura_livekit_backend.livekit.metadata import new_room_facts, room_info
from aura_livekit_backend.schemas import room_reply


def best_of(runs: int, step: Callable[[], object]) -> float:
    """The fastest of ``runs`` timings of ``step``, in milliseconds."""
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        step()
        times.append((time.perf_counter() - started) * 1000)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rooms", type=int, default=10_000)
    parser.add_argument("--runs", type=int, default=20)
    args = parser.parse_args()
    now = int(time.time())
    answer = api.ListRoomsResponse(
        rooms=[
            api.Room(
                sid=f"RM_{n:012d}",
                name=f"room-{now}-{n:06d}",
                max_participants=20,
                creation_time=now,
                creation_time_ms=now * 1000 + n,
                metadata=new_room_facts(topic="주간 회의", description="", created_by=f"user-{n}"),
                num_participants=n % 7,
            )
            for n in range(args.rooms)
        ]
    )
    wire = answer.SerializeToString()
    decoded = api.ListRoomsResponse.FromString(wire)
    infos = [room_info(room) for room in decoded.rooms]
    infos.sort(key=lambda room: (room.created_at, room.name))
    reply = {"rooms": [room_reply(room) for room in infos], "total": len(infos)}
    stdlib = partial(json.dumps, ensure_ascii=False, separators=(",", ":"))

    steps = [
        ("protobuf decode", lambda: api.ListRoomsResponse.FromString(wire)),
        ("metadata JSON → RoomInfo", lambda: [room_info(room) for room in decoded.rooms]),
        ("sort", lambda: sorted(infos, key=lambda room: (room.created_at, room.name))),
        ("room_reply shapes", lambda: [room_reply(room) for room in infos]),
        ("JSON encode (stdlib)", lambda: stdlib(reply)),
    ]
    try:
        import orjson

        steps.append(("JSON encode (orjson)", lambda: orjson.dumps(reply)))
    except ImportError:
        steps.append(("JSON encode (orjson)", None))

    print(f"{args.rooms:,} rooms, {len(wire) / 1e6:.1f} MB protobuf, "
          f"{len(stdlib(reply)) / 1e6:.1f} MB JSON; best of {args.runs}\n")  # fmt: skip
    print("| step | ms |")
    print("|---|---:|")
    for name, step in steps:
        timing = "not installed" if step is None else f"{best_of(args.runs, step):.1f}"
        print(f"| {name} | {timing} |")


if __name__ == "__main__":
    main()
