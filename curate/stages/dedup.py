"""The ``dedup`` step: near-duplicates by descriptor range search, within and across identities.

1. **Candidates and decision per pair** (:mod:`curate.search.pairs`): pairs inside any descriptor's review
   band (hash within ``review_max_hamming_bits``, or embedding cosine at least ``review_min_cosine``, each
   found by an all-pairs faiss search, :mod:`curate.search.range_search`). Strong evidence
   (``max_hamming_bits`` / ``min_cosine``) makes a duplicate; a borderline pair is verified by aligning
   the two images' thumbnails (``min_aligned_ncc`` duplicate, ``review_min_aligned_ncc`` review), or goes
   to review when ``verify`` is off.
2. **Within an identity** (VGG-Face's rule) duplicate pairs are joined into clusters (connected
   components); each cluster keeps its best member (highest ``rank_score`` if the column exists, then
   most pixels ``width * height`` if those columns exist, then smallest ``image_id``), so the outcome
   does not depend on row order. The others become ``duplicate``, the reason naming the kept image and
   its source. Rank's ``low_score`` rows take part here (only here), since a review may bring them back:
   a cluster keeps an ``ok`` member when it has one, and its ``low_score`` copies become ``duplicate``
   too; among ``low_score`` copies alone, the best stays ``low_score``.
3. **Across identities** the same photo under two names is label noise: both rows become
   ``identity_conflict`` (this wins over ``duplicate``), the reason naming the other image and identity.
   Such a pair needs stronger evidence: every cross-identity duplicate or review pair is checked on the two
   faces (:mod:`curate.search.conflicts`, ``confirm_conflicts_with``). Confirmed: a conflict (a review pair
   too: resized copies of one face often stay in the review band); an unconfirmed duplicate goes to review.
4. Review pairs that no cluster settles set ``needs_review`` on both rows, ``review_reason`` naming the
   other image and the scores.

Columns (null on rows that were neither ok nor low_score on input): ``dup_cluster`` (id shared by a
cluster's members, a hash of the identity and the kept image_id, so stable across runs; null without
near-duplicates), ``dup_of`` (the kept member's image_id, on removed rows), ``dup_distance`` (1 - cosine to
the kept member, null without an embedding), ``dup_hamming_bits`` (first hash's Hamming distance to the kept
member, null without hashes), ``needs_review``, ``review_reason``. Default thresholds: see
``docs/dedup.md``.

The stage reads its rows with :mod:`curate.search.rows` and marks them with :mod:`curate.search.verdicts`.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import ClassVar

import numpy as np
import pyarrow as pa

from curate import manifest
from curate.embedders import BUILTIN, model_files
from curate.preflight import planned_descriptors, require_descriptors
from curate.record import Status
from curate.search.conflicts import FaceCheck, FaceEvidence, StoredVectors, add_face_pairs, confirm
from curate.search.pairs import Candidates, classify, find_candidates, verify
from curate.search.rows import Participants, gather, rows_of
from curate.search.verdicts import (
    mark_clusters,
    mark_conflicts,
    mark_reviews,
    unconfirmed_reviews,
    write_back,
)
from curate.stage import GlobalStage, Stage, StageContext
from curate.stages.dedup_config import DedupConfig

logger = logging.getLogger(__name__)

COLUMNS: dict[str, pa.DataType] = {
    "dup_cluster": pa.int64(),
    "dup_of": pa.string(),
    "dup_distance": pa.float32(),
    "dup_hamming_bits": pa.int16(),
    "needs_review": pa.bool_(),
    "review_reason": pa.string(),
}


class DedupStage(GlobalStage):
    """Near-duplicate removal within identities and conflict flags across them; see the module docstring."""

    name: ClassVar[str] = "dedup"
    Config: ClassVar[type] = DedupConfig
    default_input: ClassVar[str | None] = "rank"  # VGG-Face: ranked first, so a cluster keeps its best
    # 2: rank scores within SCORE_TIE tie and the larger copy is kept; 3: low_score rows cluster too
    version: ClassVar[int] = 3

    def reads(self) -> list[str]:
        """The descriptor stage, whose vectors dedup searches."""
        return [self.config.descriptor_stage]

    def read_files(self, workdir: Path) -> list[Path]:
        """The face check's model when it is an exported one: it embeds the faces describe did not."""
        return model_files([self.config.confirm_conflicts_with])

    def check_input(self, workdir: Path, input_stage: str | None) -> None:
        """Refuse, before any work, an input without the hash columns, vectors or thumbnails dedup reads."""
        c: DedupConfig = self.config
        require_descriptors(
            workdir, "dedup", input_stage, c.descriptor_stage, c.hashes, c.embedding, c.verify
        )

    def check_plan(self, earlier: dict[str, Stage]) -> None:
        """In a pipeline: the descriptor stage listed before dedup must be set to make what dedup reads."""
        c: DedupConfig = self.config
        if c.descriptor_stage in earlier:
            planned_descriptors("dedup", earlier[c.descriptor_stage], c.hashes, c.embedding, c.verify)

    def run_all(self, tables: dict[int, pa.Table], ctx: StageContext) -> dict[int, pa.Table]:
        """Return every shard with the dedup columns added and duplicates / conflicts marked."""
        config: DedupConfig = self.config
        limits = config.thresholds()
        p = gather(tables, ctx, config)
        ctx.progress(1, 4)  # the steps: gather, search, verify, classify
        started = time.perf_counter()
        options = {"index": config.index, "use_gpu": config.use_gpu, "nprobe": config.nprobe}
        found = find_candidates(p.codes, p.vectors, limits, **options)
        found, by_face = self._face_candidates(found, tables, p, ctx)
        searched = time.perf_counter()
        ctx.progress(2, 4)
        verified = verify(found, p.thumbnails, limits) if p.thumbnails is not None else 0
        ctx.progress(3, 4)
        duplicate, review = classify(found, limits, verified=p.thumbnails is not None)
        identity = np.array(p.identity_id, dtype=object)
        same = identity[found.i] == identity[found.j]
        both_kept = p.kept[found.i] & p.kept[found.j]  # a low_score row only meets copies in its identity
        values = {column: [None] * len(p.row) for column in COLUMNS}
        values["needs_review"] = [False] * len(p.row)
        status: list[tuple[Status, str] | None] = [None] * len(p.row)
        labels = mark_clusters(found.i[duplicate & same], found.j[duplicate & same], p, values, status)
        across = ~same & both_kept if config.across_identities else np.zeros(len(found), bool)
        checked = across & (duplicate | review | by_face)
        faces = self._face_check(found, checked, (duplicate, review), p, tables, ctx)
        cross, unconfirmed = mark_conflicts(found, duplicate, across, faces, p, status)
        settled = same & (labels[found.i] == labels[found.j])
        pending = review & ~settled & ~cross & both_kept & (same | config.across_identities)
        mark_reviews(found, pending, p, values)
        unconfirmed_reviews(found, unconfirmed, faces, p, values)
        ctx.stats.update(
            {
                "dedup_rows": len(p.row),
                "dedup_low_score_rows": int((~p.kept).sum()),
                "dedup_low_score_removed": sum(
                    1 for s, kept in zip(status, p.kept, strict=True) if s and not kept
                ),
                "dedup_candidate_pairs": len(found),
                "dedup_verified_pairs": verified,
                "dedup_duplicate_pairs": int((duplicate & same).sum()),
                "dedup_conflict_pairs": int(cross.sum()),
                "dedup_face_candidate_pairs": int(by_face.sum()),
                "dedup_unconfirmed_conflict_pairs": int(unconfirmed.sum()),
                "dedup_face_vectors_embedded": faces.embedded if faces else 0,
                "dedup_face_vectors_stored": faces.reused if faces else 0,
                "dedup_review_rows": int(sum(values["needs_review"])),
                "dedup_removed": sum(1 for s in status if s and s[0] is Status.DUPLICATE),
                "dedup_conflicts": sum(1 for s in status if s and s[0] is Status.IDENTITY_CONFLICT),
                "dedup_search_seconds": round(searched - started, 3),
                "dedup_verify_seconds": round(time.perf_counter() - searched, 3),
            }
        )
        return write_back(tables, p, values, status, COLUMNS)

    def _face_candidates(
        self, found: Candidates, tables: dict, p: Participants, ctx: StageContext
    ) -> tuple[Candidates, np.ndarray]:
        """Add cross-identity pairs by the face model's vectors when the descriptor stage wrote them.

        Only with verification on. These pairs go to the face check whatever their whole-image scores: on
        aligned crops of loosely framed photos the padding runs off the picture, and a cropped copy fills
        it differently from its original, so the whole-crop thumbnails of one photo can disagree while
        the inner faces agree.
        """
        config: DedupConfig = self.config
        name = self._stored_face_name(tables, ctx)
        if name is None or not config.across_identities or p.thumbnails is None:
            return found, np.zeros(len(found), bool)
        parts = [
            rows_of(ctx, config, name, shard, tables[shard].num_rows, p.row[p.shard == shard].tolist())
            for shard in sorted(tables)
        ]
        options = {"index": config.index, "use_gpu": config.use_gpu, "nprobe": config.nprobe}
        identities = np.array(p.identity_id, dtype=object)
        vectors = np.concatenate(parts).astype(np.float32)
        return add_face_pairs(
            found, vectors, identities, config.conflict_min_face_cosine, p.codes, p.vectors, **options
        )

    def _face_check(
        self,
        found: Candidates,
        cross: np.ndarray,
        support: tuple[np.ndarray, np.ndarray],
        p: Participants,
        tables: dict,
        ctx: StageContext,
    ) -> FaceEvidence | None:
        """Face evidence for the cross-identity candidates in ``cross`` (``support``: the descriptors'
        duplicate and review masks); None when the check is off."""
        config: DedupConfig = self.config
        if not config.confirm_conflicts_with:
            return None
        check = FaceCheck(
            config.confirm_conflicts_with,
            config.conflict_min_face_cosine,
            config.conflict_min_face_ncc,
            config.conflict_borderline_min_face_ncc,
            config.conflict_face_only_min_face_ncc,
        )
        stored = self._stored_face_vectors(tables, ctx)
        return confirm((found.i, found.j), cross, support, (p.shard, p.row), tables, check, ctx, stored)

    def _stored_face_name(self, tables: dict, ctx: StageContext) -> str | None:
        """The vector name of the check's face model when the descriptor stage wrote it for every shard."""
        config: DedupConfig = self.config
        spec = config.confirm_conflicts_with
        if not spec or not tables:
            return None
        name = spec if spec in BUILTIN else f"model:{Path(spec).name}"
        paths = [manifest.vectors_path(ctx.workdir, config.descriptor_stage, name, s) for s in tables]
        return name if all(path.exists() for path in paths) else None

    def _stored_face_vectors(self, tables: dict, ctx: StageContext) -> StoredVectors | None:
        """The descriptor stage's vectors of the check's face model, where they embed the faces stage's crop.

        describe embeds ``crop_path`` with the same model, so for a row whose face was detected the stored
        vector is the one the check would compute; other rows (no crop, a whole image kept) are not usable.
        """
        config: DedupConfig = self.config
        name = self._stored_face_name(tables, ctx)
        if name is None:
            return None

        def lookup(shards: np.ndarray, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
            vectors: np.ndarray | None = None
            usable = np.zeros(len(rows), dtype=bool)
            for shard in np.unique(shards).tolist():
                at = np.nonzero(shards == shard)[0]
                table, wanted = tables[shard], rows[at].tolist()
                part = rows_of(ctx, config, name, shard, table.num_rows, wanted).astype(np.float32)
                if vectors is None:
                    vectors = np.zeros((len(rows), part.shape[1]), dtype=np.float32)
                vectors[at] = part
                if {"face_source", "crop_path"} <= set(table.column_names):
                    source = table.column("face_source").take(wanted).to_pylist()
                    crop = table.column("crop_path").take(wanted).to_pylist()
                    detected = [s == "detected" and bool(c) for s, c in zip(source, crop, strict=True)]
                    usable[at] = np.array(detected, dtype=bool) & part.any(axis=1)
            return (vectors if vectors is not None else np.zeros((0, 0), np.float32)), usable

        return lookup
