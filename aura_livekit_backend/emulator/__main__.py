"""``python -m aura_livekit_backend.emulator``: a LiveKit emulator on its own, until interrupted.

It prints ``LiveKit emulator on <url>`` once serving, and on SIGINT/SIGTERM how
many calls it got and the faults it served (what a soak run reports).
"""

from __future__ import annotations

import argparse
import os
import signal
import threading

from ..settings import DEV_API_KEY, DEV_API_SECRET
from .faults import FAULTS
from .server import LiveKitEmulator

__all__ = ["WEBHOOK_URLS_ENV", "main"]

#: Where the webhooks go when no --webhook-url is given (comma-separated).
WEBHOOK_URLS_ENV = "EMULATOR_WEBHOOK_URLS"


def main(argv: list[str] | None = None) -> None:
    """Serve until SIGINT or SIGTERM, with the faults and latency the flags ask for."""
    parser = argparse.ArgumentParser(
        prog="python -m aura_livekit_backend.emulator",
        description="LiveKit RoomService emulator (no media).",
    )
    parser.add_argument("--port", type=int, default=7880)
    parser.add_argument("--api-key", default=DEV_API_KEY)
    parser.add_argument("--api-secret", default=DEV_API_SECRET)
    parser.add_argument(
        "--fault",
        action="append",
        default=[],
        metavar="KIND",
        help=f"fail calls this way (repeatable): {', '.join(FAULTS)}, or a Twirp error code",
    )
    parser.add_argument(
        "--fault-share", type=float, default=1.0, help="fraction of calls that fail (0 to 1]"
    )
    parser.add_argument("--latency", type=float, default=0.0, help="seconds before every answer")
    parser.add_argument(
        "--webhook-url",
        action="append",
        default=None,
        metavar="URL",
        help="send LiveKit's webhooks here (repeatable); default: the comma-separated "
        f"{WEBHOOK_URLS_ENV} variable, else nowhere",
    )
    args = parser.parse_args(argv)
    urls = args.webhook_url
    if urls is None:
        urls = [u.strip() for u in os.environ.get(WEBHOOK_URLS_ENV, "").split(",") if u.strip()]
    stopping = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stopping.set())
    with LiveKitEmulator(
        args.api_key, args.api_secret, port=args.port, webhook_urls=urls
    ) as emulator:
        emulator.latency = args.latency
        if args.fault:
            emulator.disturb(args.fault, share=args.fault_share)
        print(f"LiveKit emulator on {emulator.url}", flush=True)
        print(f"hook token: {emulator.hook_token}", flush=True)
        stopping.wait()
        print(f"calls: {dict(emulator.calls)}", flush=True)
        print(f"faults served: {dict(emulator.faults_served)}", flush=True)


if __name__ == "__main__":
    main()
