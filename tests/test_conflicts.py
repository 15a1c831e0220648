"""``identity_conflict`` needs the face: real CFP photos, planted cross-identity copies, look-alike layouts.

The compositions are DIFFERENT CFP people pasted into one template (team card, ID photo, lectern): on
whole images their descriptors call them duplicates, so without the face check they are flagged; with it
only the planted copies (one photo under two names) are.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest
from conflictset import ConflictSet, build

from curate.config import build_config
from curate.search.conflicts import add_face_pairs
from curate.search.pairs import Candidates
from curate.stage import local_context
from curate.stages.dedup import DedupStage
from curate.stages.describe import DescribeStage
from curate.stages.faces import FacesStage
from curate.stages.ingest import IngestConfig, IngestStage

IDENTITIES = ["002", "005", "009", "012", "020", "027", "033", "041"]
PARTNER = re.compile(r"^same photo as ([0-9a-f]{64}) ")


@pytest.fixture(scope="module")
def planted(data_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> ConflictSet:
    root = tmp_path_factory.mktemp("conflicts") / "images"
    return build(data_dir, root, IDENTITIES, originals=2, copies=3, templates=6, seed=3)


def _described(truth: ConflictSet, work: Path, crops: bool) -> pa.Table:
    """collect (-> faces) -> describe; with crops describe writes dlib vectors too (as pipelines/cfp.toml)."""
    stage = IngestStage(IngestConfig(source=truth.root))
    table = stage.run_shard(stage.plan(work, 1)[0], local_context(work, "collect", 0, 1))
    if crops:
        faces = FacesStage(build_config(FacesStage.Config, {}))
        table = faces.run_shard(table, local_context(work, "faces", 0, 1))
    settings = {
        "hashes": ["phash", "dhash"],
        "embedders": ["handcrafted", "dlib"] if crops else ["handcrafted"],
    }
    describe = DescribeStage(build_config(DescribeStage.Config, settings))
    return describe.run_shard(table, local_context(work, "describe", 0, 1))


def _flagged(
    table: pa.Table, truth: ConflictSet, work: Path, stats: dict | None = None, **settings: object
) -> tuple[set, dict]:
    """(flagged pairs of relative paths, row per relative path) after dedup with ``settings``; the stage's
    statistics go into ``stats``."""
    ctx = local_context(work, "dedup", None, 1)
    out = DedupStage(build_config(DedupStage.Config, settings)).run_all({0: table}, ctx)[0]
    if stats is not None:
        stats.update(ctx.stats)
    rows = {str(Path(row["source"]).relative_to(truth.root)): row for row in out.to_pylist()}
    by_id = {row["image_id"]: name for name, row in rows.items()}
    pairs = set()
    for name, row in rows.items():
        found = PARTNER.match(row["reason"] or "") if row["status"] == "identity_conflict" else None
        if found:
            pairs.add(frozenset((name, by_id[found.group(1)])))
    return pairs, rows


def test_lookalike_compositions_are_not_conflicts_but_copies_are(
    planted: ConflictSet, tmp_path: Path
) -> None:
    described = _described(planted, tmp_path, crops=False)
    lookalikes = {frozenset(pair) for pair in planted.lookalikes}
    before, _ = _flagged(described, planted, tmp_path, confirm_conflicts_with="")
    assert before & lookalikes, "the old rule should flag some look-alike compositions"
    after, rows = _flagged(described, planted, tmp_path)
    assert not after & lookalikes
    for original, copy in planted.conflicts:
        assert rows[original]["status"] == rows[copy]["status"] == "identity_conflict", (original, copy)
        assert "face cosine" in rows[copy]["reason"]
    copies = {name for pair in planted.conflicts for name in pair}
    assert all(pair <= copies for pair in after)  # precision 1.0 here
    refused = [rows[a] for pair in before & lookalikes for a in pair]
    # no longer conflicts: in review (or a within-identity duplicate when one person has two such layouts)
    assert all(row["needs_review"] and row["status"] in ("ok", "duplicate") for row in refused)
    assert any("not confirmed by the face" in row["review_reason"] for row in refused)


def test_copies_are_conflicts_on_aligned_crops(planted: ConflictSet, tmp_path: Path) -> None:
    stats: dict = {}
    after, rows = _flagged(_described(planted, tmp_path, crops=True), planted, tmp_path, stats=stats)
    # describe stored the crops' dlib vectors: the check reads them instead of embedding the faces again
    assert stats["dedup_face_vectors_stored"] > 0 and stats["dedup_face_vectors_embedded"] == 0
    for original, copy in planted.conflicts:
        assert rows[original]["status"] == rows[copy]["status"] == "identity_conflict", (original, copy)
    copies = {name for pair in planted.conflicts for name in pair}
    assert after and all(pair <= copies for pair in after)


def test_face_vectors_add_cross_identity_candidates_only() -> None:
    found = Candidates(
        np.array([0]),
        np.array([1]),
        np.array([0.95], np.float32),
        np.array([3]),
        np.full(1, np.nan, np.float32),
    )
    faces = np.array([[1, 0, 0], [0, 1, 0], [0.99, 0.1, 0], [0, 0.99, 0.1]], dtype=np.float32)
    identities = np.array(["ann", "bob", "cid", "bob"], dtype=object)
    codes = [np.array([0, 1, 0b111, 1], dtype=np.int64)]
    vectors = np.eye(4, dtype=np.float32)
    merged, added = add_face_pairs(found, faces, identities, 0.95, codes, vectors)
    assert list(zip(merged.i.tolist(), merged.j.tolist(), strict=True)) == [
        (0, 1),
        (0, 2),
    ]  # (1, 3): one identity
    assert added.tolist() == [False, True]
    assert merged.bits.tolist() == [3, 3] and merged.cosine[1] == 0.0 and np.isnan(merged.ncc[1])


def test_face_vectors_mark_pairs_already_found_without_repeating_them() -> None:
    found = Candidates(
        np.array([0, 1]),
        np.array([2, 3]),
        np.array([0.5, 0.5], np.float32),
        np.array([9, 9]),
        np.full(2, np.nan, np.float32),
    )
    faces = np.array([[1, 0, 0], [0, 1, 0], [0.99, 0.1, 0], [0, 0.99, 0.1]], dtype=np.float32)
    identities = np.array(["ann", "bob", "cid", "bob"], dtype=object)
    codes = [np.zeros(4, dtype=np.int64)]
    merged, by_face = add_face_pairs(found, faces, identities, 0.95, codes, None)
    # (0, 2) is already a candidate (say, a hash pair whose whole-crop thumbnails disagree): it is marked
    # for the face check, not added again; (1, 3) is one identity
    assert len(merged) == 2 and by_face.tolist() == [True, False]
