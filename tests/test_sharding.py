"""``pytest --shard K/N`` (tools/sharding.py): how tox splits the suite between 3.11 and 3.12."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from sharding import _parse, shard_of

TOOLS = Path(__file__).resolve().parents[1] / "tools"


def test_shares_are_disjoint_cover_everything_and_are_about_even() -> None:
    ids = [f"tests/test_{n % 40}.py::test_{n}[case-{n % 7}]" for n in range(2000)]
    for shares in (2, 3):
        sizes = [sum(shard_of(node, shares) == k for node in ids) for k in range(1, shares + 1)]
        assert sum(sizes) == len(ids)  # each id in exactly one share
        assert all(abs(size - len(ids) / shares) < len(ids) * 0.05 for size in sizes), sizes


@pytest.mark.processes
def test_a_test_has_the_same_share_in_every_process() -> None:
    # Each pytest-xdist worker and each interpreter decides alone: a salted hash() would
    # give each its own split, losing some tests and running others twice.
    script = (
        "from sharding import shard_of; "
        "print([shard_of(f'tests/test_x.py::test_{n}', 2) for n in range(64)])"
    )
    answers = {
        subprocess.run(
            [sys.executable, "-c", script],
            env={**os.environ, "PYTHONHASHSEED": seed, "PYTHONPATH": str(TOOLS)},
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        for seed in ("1", "2", "3")
    }
    assert len(answers) == 1


@pytest.mark.parametrize("value", ["0/2", "3/2", "1", "a/b", "1/0", " 1/2"])
def test_a_shard_that_is_not_k_of_n_is_a_usage_error(value: str) -> None:
    with pytest.raises(pytest.UsageError, match="--shard: expected K/N"):
        _parse(value)
    assert _parse("2/2") == (2, 2)
