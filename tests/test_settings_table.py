"""README's configuration table and the Settings model say the same thing.

Every setting's environment variable has a row under "## Configuration", every row
names a real setting, and where the table gives a plain default (one literal in
backticks) it is the model's default.
"""

from __future__ import annotations

import re
from datetime import timedelta
from pathlib import Path

import pytest

from aura_livekit_backend.settings import Settings, env_name

README = Path(__file__).resolve().parents[1] / "README.md"
HEADER = "| Variable | Default | Meaning |"


def table() -> dict[str, str]:
    """Variable → its Default cell, from the table under "## Configuration"."""
    section = README.read_text(encoding="utf-8").split("\n## Configuration\n", 1)[1]
    section = section.split("\n## ", 1)[0]
    lines = section[section.index(HEADER) :].splitlines()
    assert re.fullmatch(r"\|(-+\|){3}", lines[1].replace(" ", "")), lines[1]
    rows: dict[str, str] = {}
    for line in lines[2:]:
        if not line.startswith("|"):
            break
        variable, default, _meaning = (cell.strip() for cell in line.strip("|").split(" | ", 2))
        name = re.fullmatch(r"`([A-Z_]+)`", variable)
        assert name, f"not a variable in backticks: {variable}"
        assert name[1] not in rows, f"{name[1]} has two rows"
        rows[name[1]] = default
    return rows


FIELDS = {env_name(field): field for field in Settings.model_fields}


def test_every_setting_has_a_row() -> None:
    assert sorted(set(FIELDS) - set(table())) == []


def test_every_row_is_a_setting() -> None:
    assert sorted(set(table()) - set(FIELDS)) == []


def plain(value: object) -> str | None:
    """How a default that is a plain value reads in the table; None for the rest."""
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, timedelta):
        value = value.total_seconds()
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, (int, float, str)):
        return str(value)
    return None


@pytest.mark.parametrize("variable", sorted(FIELDS))
def test_a_plain_default_in_the_table_is_the_models(variable: str) -> None:
    cell = table().get(variable)
    if cell is None:
        pytest.fail(f"{variable} has no row")
    field = Settings.model_fields[FIELDS[variable]]
    model = plain(field.get_default(call_default_factory=True))
    literal = re.fullmatch(r"`([^`]*)`", cell)
    if model is None:
        # None, an empty list, a value worked out at start-up: the table says it in words.
        assert literal is None, f"{variable}: the table gives {cell}, the model has no such value"
    else:
        assert literal is not None, f"{variable}: the table should give `{model}`, not {cell}"
        assert literal[1] == model, f"{variable}: the table says {cell}, the model `{model}`"
