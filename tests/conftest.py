"""Shared fixtures: the real face data beside the repository."""

from __future__ import annotations

import json
import os
import shutil
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


@pytest.fixture(scope="session")
def curated_workdir(data_dir: Path, tmp_path_factory) -> Path:
    """ORL faces with an exact copy, a broken file and a benchmark identity, curated up to dedup."""
    root = tmp_path_factory.mktemp("export")
    images = root / "images"
    for n in range(1, 7):
        shutil.copytree(data_dir / "orl_faces" / f"s{n}", images / f"s{n}")
    shutil.copy(images / "s1" / "1.pgm", images / "s1" / "copy.pgm")
    (images / "s2" / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    names = root / "names.jsonl"
    names.write_text(
        "".join(json.dumps({"name": f"s{n}", "gender": "f" if n % 2 else "m"}) + "\n" for n in range(1, 7))
    )
    benchmark = root / "benchmark.txt"
    benchmark.write_text("s6\n")
    workdir = root / "work"
    from curate.candidates import build_candidates, write_candidates
    from curate.candidates.build import CandidatesConfig
    from curate.executor import ExecutorOptions
    from curate.pipeline import parse_pipeline, run_specs

    table = build_candidates([names], CandidatesConfig(exclude=[benchmark]))
    write_candidates(table, workdir)
    pipeline = {
        "stages": ["collect", "exact", "faces", "select", "describe", "rank", "dedup"],
        "collect": {"source": str(images)},
        "faces": {"keep_whole_if_no_face": True, "crop_size": 64},
        "describe": {"hashes": ["phash"], "embedders": ["handcrafted"]},
        "rank": {"embedder": "handcrafted", "positives": 4, "rounds": 1, "keep": 8},
        "dedup": {"embedding": "handcrafted"},
    }
    specs = parse_pipeline(pipeline).stages
    run_specs(specs, workdir, ExecutorOptions(workers=1, processes=False), shards=2)
    return workdir
