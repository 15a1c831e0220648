"""Shared fixtures: the real face data beside the repository."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def data_root() -> Path:
    """``CURATE_TEST_DATA`` or ``../shared/data`` next to the repository."""
    return Path(os.environ.get("CURATE_TEST_DATA", REPO.parent / "shared" / "data")).resolve()


@pytest.fixture(scope="session")
def data_dir() -> Path:
    """The real data folder; a missing folder is an error, never a skip."""
    root = data_root()
    if not (root / "orl_faces").is_dir() or not (root / "cfp").is_dir():
        raise RuntimeError(f"real test data not found at {root}; set CURATE_TEST_DATA")
    return root
