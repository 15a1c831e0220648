"""The manifest documentation stays true: every column a stage declares is documented with its type."""

from __future__ import annotations

import importlib
import re
from pathlib import Path

import pytest

from curate.record import BASE_COLUMNS, Status
from curate.stages import STAGES

DOC = Path(__file__).resolve().parents[1] / "manifests" / "images.md"


def _documented() -> dict[str, str]:
    rows = re.findall(r"^\| `([a-z0-9_]+)` \| ([^|]+) \|", DOC.read_text(), flags=re.MULTILINE)
    return {name: kind.strip() for name, kind in rows}


@pytest.mark.parametrize("key", sorted(STAGES))
def test_every_declared_column_is_documented(key):
    module = importlib.import_module(STAGES[key].partition(":")[0])
    documented = _documented()
    for column in [*BASE_COLUMNS, *module.COLUMNS]:
        assert column in documented, f"{column} ({key}) missing from manifests/images.md"


def test_every_status_is_documented():
    text = DOC.read_text()
    for status in Status:
        assert f"`{status.value}`" in text
