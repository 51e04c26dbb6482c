"""How long the console script takes to answer its first request, and to stop.

    python benchmarks/startup.py                 # 10 starts each: with LiveKit credentials, --dev
    python benchmarks/startup.py --runs 3 --workers 2
    python benchmarks/startup.py --command "python other/cli.py" --settle 1.5  # another build

Each run starts ``aura-livekit-backend`` on a free port, polls ``GET /api/health``
every 10 ms and notes, from the moment the process was started: its first log line
(the main process has imported and built the app), Sanic's ``Starting worker`` (the worker
has spawned, imported and built its app), ``Worker ready`` and the first 200. Then
it sends SIGTERM and times the exit. Medians and maxima are printed. Not a test: a
number to read (the target is a first answer within 1 s for one worker).
"""

from __future__ import annotations

import argparse
import os
import shlex
import signal
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx

from aura_livekit_backend.emulator import free_port

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tools"))
from service_processes import worker_pids

SCRIPT = str(Path(sys.executable).with_name("aura-livekit-backend"))
CREDENTIALS = {
    "LIVEKIT_API_KEY": "startup-bench",
    "LIVEKIT_API_SECRET": "startup-bench-secret-0123456789abcdef",
}
#: Log lines whose first appearance is timed, and the column each fills.
MARKS = {"Starting worker": "worker started", "Worker ready": "worker ready"}


def answers(url: str) -> bool:
    try:
        return httpx.get(url, timeout=1).status_code == 200
    except httpx.TransportError:
        return False


def _cpu(pid: int) -> float:
    """CPU seconds (user + system) ``pid`` has used; 0 if it is gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _descendants(pid: int) -> list[int]:
    children = []
    for task in Path(f"/proc/{pid}/task").glob("*/children"):
        children += [int(child) for child in task.read_text().split()]
    return [found for child in children for found in (child, *_descendants(child))]


def cpu_seconds(main: int) -> dict[str, float]:
    """CPU seconds used so far by the main process, its workers and its other children.

    On a busy machine wall-clock time mostly measures the other processes; the CPU
    the start-up itself needed is what an idle machine would spend.
    """
    others = _descendants(main)
    workers = worker_pids(main)
    rest = [pid for pid in others if pid not in workers]
    return {
        "CPU main": _cpu(main),
        "CPU worker": sum(_cpu(pid) for pid in workers),
        "CPU other": sum(_cpu(pid) for pid in rest),
    }


def one_run(
    command: list[str], args: list[str], env: dict[str, str], settle: float, limit: float = 30
) -> dict[str, float]:
    """Start the service once; seconds from start to each mark, and to exit after SIGTERM."""
    port = free_port()
    began = time.monotonic()
    process = subprocess.Popen(
        [*command, "--port", str(port), *args],
        env={**os.environ, **env},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    times: dict[str, float] = {}

    def read() -> None:
        assert process.stdout is not None
        for line in process.stdout:
            now = time.monotonic() - began
            times.setdefault("first log line", now)
            for mark, column in MARKS.items():
                if mark in line:
                    times.setdefault(column, now)

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    try:
        while not answers(f"http://127.0.0.1:{port}/api/health"):
            if process.poll() is not None or time.monotonic() - began > limit:
                raise RuntimeError(f"no answer (exit code {process.returncode})")
            time.sleep(0.01)
        times["first 200"] = time.monotonic() - began
        times.update(cpu_seconds(process.pid))
        time.sleep(settle)
        stopping = time.monotonic()
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=limit)
        times["exit after SIGTERM"] = time.monotonic() - stopping
        if process.returncode != 0:
            raise RuntimeError(f"exit code {process.returncode} after SIGTERM")
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
        reader.join(timeout=5)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--command", default=SCRIPT, help="what to start (default: the script)")
    parser.add_argument(
        "--settle", type=float, default=0.0, help="seconds between the first 200 and SIGTERM"
    )
    options = parser.parse_args()
    command = shlex.split(options.command)
    columns = [
        "first log line",
        *MARKS.values(),
        "first 200",
        "exit after SIGTERM",
        "CPU main",
        "CPU worker",
        "CPU other",
    ]
    modes = {
        "LiveKit credentials": (["--workers", str(options.workers)], CREDENTIALS),
        "--dev (emulator)": (["--dev", "--workers", str(options.workers)], {}),
    }
    print(f"{options.runs} starts each, {options.workers} worker(s); seconds, median / max")
    print("| mode | " + " | ".join(columns) + " |")
    print("|---|" + "---:|" * len(columns))
    for mode, (args, env) in modes.items():
        runs = [one_run(command, args, env, options.settle) for _ in range(options.runs)]
        cells = []
        for column in columns:
            values = [run[column] for run in runs if column in run]
            cells.append(f"{statistics.median(values):.2f} / {max(values):.2f}" if values else "-")
        print(f"| {mode} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
