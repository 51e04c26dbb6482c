"""``pytest --shard K/N``: run the K-th of N disjoint shares of the collected tests.

tox runs the suite on four interpreters; 3.11 and 3.12 each run half of what 3.10 and
3.13 run whole (see the README's "Test it"). A test's share follows from its node id
alone (a CRC-32, not Python's salted ``hash``), so it is the same on every machine and
run, the shares are disjoint and together are every test, and a file's tests spread
over all shares (its module fixtures are set up once in each).
"""

from __future__ import annotations

import re
import zlib

import pytest

__all__ = ["pytest_addoption", "pytest_collection_modifyitems", "shard_of"]

_SHARD = re.compile(r"([1-9][0-9]*)/([1-9][0-9]*)")


def shard_of(node_id: str, shards: int) -> int:
    """The share (1 to ``shards``) the test ``node_id`` belongs to."""
    return zlib.crc32(node_id.encode()) % shards + 1


def _parse(value: str) -> tuple[int, int]:
    match = _SHARD.fullmatch(value)
    if match is None or int(match[1]) > int(match[2]):
        raise pytest.UsageError(f"--shard: expected K/N with 1 <= K <= N, got {value!r}")
    return int(match[1]), int(match[2])


def pytest_addoption(parser: pytest.Parser) -> None:
    """Add ``--shard K/N``."""
    parser.addoption(
        "--shard",
        metavar="K/N",
        help="run only the K-th of N disjoint shares of the collected tests",
    )


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Deselect every test outside the share ``--shard`` names."""
    value = config.getoption("--shard")
    if not value:
        return
    share, shares = _parse(value)
    kept = [item for item in items if shard_of(item.nodeid, shares) == share]
    dropped = [item for item in items if shard_of(item.nodeid, shares) != share]
    items[:] = kept
    config.hook.pytest_deselected(items=dropped)
