"""A small curated workdir over real CFP images, shaped as the ``rank`` stage leaves it, for review tests.

The rows are real images with their real content ids; the scores and flags are set by hand so tests know
which image sits where: identity ``cfp-001`` holds a borderline duplicate pair (its first two images),
``cfp-002`` is flagged impure, ``cfp-002`` and ``cfp-003`` overlap each other.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pyarrow as pa
from stage_helpers import seal_stage

from curate import manifest
from curate.pipeline import WORKDIR_FILE
from curate.record import BASE_COLUMNS, Status
from curate.stages.dedup import COLUMNS as DEDUP_COLUMNS
from curate.stages.rank import COLUMNS as RANK_COLUMNS

TYPES = {**BASE_COLUMNS, "crop_path": pa.string(), **DEDUP_COLUMNS, **RANK_COLUMNS}


def cfp_rows(data_dir: Path, identities: int = 3, per_identity: int = 12) -> list[dict]:
    """Rows for the first ``identities`` CFP people: frontal images, scores falling from 0.95."""
    root = data_dir / "cfp" / "Data" / "Images"
    rows = []
    for k in range(identities):
        folder = root / f"{k + 1:03d}" / "frontal"
        files = sorted(folder.glob("*.jpg"))[:per_identity]
        name = f"cfp-{k + 1:03d}"
        for i, path in enumerate(files):
            score = round(0.95 - 0.07 * i, 3)
            rows.append(
                {
                    "image_id": hashlib.sha256(path.read_bytes()).hexdigest(),
                    "identity_id": name,
                    "identity_name": name,
                    "source": str(path),
                    "path": str(path),
                    "status": Status.OK.value if score >= 0.5 else Status.LOW_SCORE.value,
                    "reason": "" if score >= 0.5 else f"rank score {score:.3f} below min_score 0.5",
                    "rank_score": score,
                    "rank_in_identity": i + 1,
                    "identity_purity": 0.7 if k == 1 else 0.95,
                    "identity_review": k == 1,
                    "overlap_with": {1: "cfp-003", 2: "cfp-002"}.get(k, ""),
                    "needs_review": False,
                }
            )
    first, second = rows[0], rows[1]
    for row, other in ((first, second), (second, first)):
        row["needs_review"] = True
        row["review_reason"] = f"possible near-duplicate of {other['image_id']} ({other['source']}): cos 0.95"
    return rows


def _value(value: object) -> object:
    """None for a missing value (pandas gives NaN), else the value."""
    return None if isinstance(value, float) and value != value else value


def write_stage(workdir: Path, stage: str, rows: list[dict], n_shards: int = 2) -> None:
    """Write ``rows`` as a finished stage (shards by identity, markers), plus the workdir files."""
    workdir.mkdir(parents=True, exist_ok=True)
    (workdir / WORKDIR_FILE).write_text(json.dumps({"n_shards": n_shards}))
    for shard in range(n_shards):
        own = [r for r in rows if manifest.shard_of(r["identity_id"], n_shards) == shard]
        table = pa.table({c: pa.array([_value(r.get(c)) for r in own], type=t) for c, t in TYPES.items()})
        path = manifest.shard_path(workdir, stage, shard)
        manifest.write_shard(table, path)
    seal_stage(workdir, stage, n_shards)


def make_workdir(workdir: Path, data_dir: Path, identities: int = 3, per_identity: int = 12) -> list[dict]:
    """A workdir whose last curation stage is ``rank`` over real CFP images; returns its rows."""
    rows = cfp_rows(data_dir, identities, per_identity)
    write_stage(workdir, "rank", rows)
    config = {"config": {"source": str(data_dir / "cfp" / "Data" / "Images")}}
    (workdir / "collect").mkdir(parents=True, exist_ok=True)
    (workdir / "collect" / "_config.json").write_text(json.dumps(config))
    return rows
