"""Fuzz the served OpenAPI document with schemathesis, LiveKit emulated and sometimes failing.

    python fuzz/run.py [--max-examples 25] [--max-time 90] [--fault-share 0.1]

Starts the LiveKit emulator (failing ``--fault-share`` of its calls in every way it
knows) and the service on 2 workers, both on 127.0.0.1, with API keys on, then runs
schemathesis against ``/docs/openapi.json`` with a fixed seed and a time budget.
Exits with schemathesis' status. ``tox -e fuzz`` runs it; so does CI.

Checks: every schemathesis check, except two, for stated reasons:

- ``not_a_server_error`` refuses every 5xx. The API documents 502 and 503 for a
  failing LiveKit, which this run causes on purpose; ``checks.py`` refuses every
  other 5xx instead.
- ``positive_data_acceptance`` expects every schema-valid request to succeed. Text
  fields refuse control and invisible characters, documented as a ``pattern`` and
  tested to agree with the code (tests/test_openapi.py), but schemathesis' coverage
  phase generates boundary strings without honouring patterns, and then reports the
  documented 400 as a failure.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path

from aura_livekit_backend.emulator import SICK_LIVEKIT

# tools/ holds the helpers shared with the tests, outside the package.
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tools"))
from service_processes import ServiceProcesses

HERE = Path(__file__).resolve().parent
KEY = "fuzz-api-key-0123456789abcdef"
SEED = "20261127"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--max-examples", type=int, default=25)
    # 90 s: the phases that reach every operation (examples, coverage, and fuzzing at
    # --max-examples each) took 63 s with this 2-core machine shared at load 9; the rest
    # goes to stateful sequences, which run until the bound whatever it is. With the
    # seed fixed, more time mostly repeats those sequences.
    parser.add_argument("--max-time", type=int, default=90, help="seconds for schemathesis")
    parser.add_argument("--fault-share", type=float, default=0.1)
    args = parser.parse_args()

    env = {
        "AURA_API_KEYS": KEY,
        "AURA_MODERATION_API_KEYS": KEY,
        "AURA_LIVEKIT_TIMEOUT": "1",
        # schemathesis sends wrong credentials on purpose (its auth check): throttling
        # them would turn every later request from 127.0.0.1 into a 429.
        "AURA_RATE_LIMIT_AUTH_FAILURES": "",
    }
    with ServiceProcesses(faults=SICK_LIVEKIT, fault_share=args.fault_share, env=env) as stack:
        command = [
            str(Path(sys.executable).with_name("schemathesis")), "run",
            f"{stack.url}/docs/openapi.json",
            "--header", f"Authorization: Bearer {KEY}",
            "--checks", "all",
            "--exclude-checks", "not_a_server_error,positive_data_acceptance",
            "--max-examples", str(args.max_examples),
            "--max-time", str(args.max_time),
            "--request-timeout", "10",
            "--max-response-time", "5",
            "--seed", SEED,
            "--workers", "2",
        ]  # fmt: skip
        hooks = {**os.environ, "SCHEMATHESIS_HOOKS": "checks", "PYTHONPATH": str(HERE)}
        result = subprocess.run(command, env=hooks, timeout=args.max_time + 120, check=False)
    service_log = stack.service_log
    tracebacks = service_log.count("Traceback")
    print("emulated LiveKit: " + stack.emulator_report)
    print(f"service tracebacks logged: {tracebacks}")
    if tracebacks:
        print(service_log[-4000:])
        return 1
    return result.returncode


if __name__ == "__main__":
    sys.exit(main())
