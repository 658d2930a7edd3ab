"""docs/configuration.md lists every Settings field, once, with its exact default."""

from __future__ import annotations

import re
from dataclasses import MISSING, fields
from pathlib import Path

import pytest

from narrator.settings import Settings

DOC = Path(__file__).resolve().parents[2] / "docs" / "configuration.md"
ROW = re.compile(r"^\| `(NARRATOR_[A-Z0-9_]+)` \| ([^|]*) \|", re.MULTILINE)


def rows() -> dict[str, str]:
    found: dict[str, str] = {}
    for name, default in ROW.findall(DOC.read_text()):
        assert name not in found, f"{name} has two rows"
        found[name] = default.strip()
    return found


def test_every_field_has_a_row_and_every_row_a_field() -> None:
    documented = set(rows())
    known = {f"NARRATOR_{f.name.upper()}" for f in fields(Settings)}
    assert documented - known == set(), "rows for variables Settings does not read"
    assert known - documented == set(), "Settings fields docs/configuration.md does not list"


@pytest.mark.parametrize("field", [f for f in fields(Settings) if f.default is not MISSING], ids=lambda f: f.name)
def test_default_is_the_one_the_class_has(field) -> None:  # type: ignore[no-untyped-def]
    cell = rows()[f"NARRATOR_{field.name.upper()}"]
    default = field.default
    if isinstance(default, bool):
        assert cell.startswith(f"`{str(default).lower()}`"), cell
    elif isinstance(default, (int, float, str)) and default not in ("",):
        assert cell.startswith(f"`{default}`"), cell
    else:  # empty strings, empty lists, the workflows folder: said in words
        assert not cell.startswith("`"), cell
        assert cell.startswith(("empty", "the project's")), cell
