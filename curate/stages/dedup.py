"""The ``dedup`` step: near-duplicates by descriptor range search, within and across identities.

1. **Candidates and decision per pair** (:mod:`curate.search.pairs`): pairs inside any descriptor's review
   band (hash within ``review_max_hamming_bits``, or embedding cosine at least ``review_min_cosine``, each
   found by an all-pairs faiss search, :mod:`curate.search.range_search`). Strong evidence
   (``max_hamming_bits`` / ``min_cosine``) makes a duplicate; a borderline pair is verified by aligning
   the two images' thumbnails (``min_aligned_ncc`` duplicate, ``review_min_aligned_ncc`` review), or goes
   to review when ``verify`` is off.
2. **Within an identity** (VGG-Face's rule) duplicate pairs are joined into clusters (union-find); each
   cluster keeps its best member (highest ``rank_score`` if the column exists, then most pixels
   ``width * height`` if those columns exist, then smallest ``image_id``), so the outcome does not depend
   on row order. The others become ``duplicate``, the reason naming the kept image and its source.
3. **Across identities** the same photo under two names is label noise: both rows become
   ``identity_conflict`` (this wins over ``duplicate``), the reason naming the other image and identity.
   Such a pair needs stronger evidence: every cross-identity duplicate or review pair is checked on the two
   faces (:mod:`curate.search.conflicts`, ``confirm_conflicts_with``). Confirmed: a conflict (a review pair
   too: resized copies of one face often stay in the review band); an unconfirmed duplicate goes to review.
4. Review pairs that no cluster settles set ``needs_review`` on both rows, ``review_reason`` naming the
   other image and the scores.

Columns (null on rows that were not ok on input): ``dup_cluster`` (id shared by a cluster's members, a
hash of the identity and the kept image_id, so stable across runs; null without near-duplicates),
``dup_of`` (the kept member's image_id, on removed rows), ``dup_distance`` (1 - cosine to the kept member,
null without an embedding), ``dup_hamming_bits`` (first hash's Hamming distance to the kept member, null
without hashes), ``needs_review``, ``review_reason``. Default thresholds: see ``docs/dedup.md``.
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections import defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar

import numpy as np
import pyarrow as pa

from curate import manifest, record
from curate.embedders import BUILTIN
from curate.errors import ConfigError, CurateError
from curate.hashing import HASH_BITS, check_hash_names, hamming_bits
from curate.preflight import planned_descriptors, require_descriptors
from curate.record import Status
from curate.search import choose_keepers, cluster_labels
from curate.search.conflicts import FaceCheck, FaceEvidence, add_face_pairs, confirm
from curate.search.pairs import Candidates, Thresholds, classify, describe_scores, find_candidates, verify
from curate.stage import GlobalStage, Stage, StageContext
from curate.stages.describe import THUMBNAILS

logger = logging.getLogger(__name__)

COLUMNS: dict[str, pa.DataType] = {
    "dup_cluster": pa.int64(),
    "dup_of": pa.string(),
    "dup_distance": pa.float32(),
    "dup_hamming_bits": pa.int16(),
    "needs_review": pa.bool_(),
    "review_reason": pa.string(),
}


@dataclass
class DedupConfig:
    """Descriptors, thresholds (named with their units) and search settings."""

    descriptor_stage: str = "describe"  # the stage whose vectors (and hash columns) are read
    hashes: list[str] = field(default_factory=lambda: ["phash"])  # [] = no hashes
    embedding: str = "handcrafted"  # vector name written by the descriptor stage; "" = no embedding
    max_hamming_bits: int = 4
    review_max_hamming_bits: int = 10
    min_cosine: float = 0.90
    review_min_cosine: float = 0.80
    verify: bool = True  # align thumbnails to decide borderline pairs (else they all go to review)
    min_aligned_ncc: float = 0.97
    review_min_aligned_ncc: float = 0.90
    across_identities: bool = True  # also look for the same photo under two identities
    confirm_conflicts_with: str = (
        "dlib"  # face embedder confirming a cross-identity pair; "" = descriptors only
    )
    conflict_min_face_cosine: float = 0.95  # face-embedding cosine of the two aligned crops
    conflict_min_face_ncc: float = (
        0.88  # aligned NCC of the two inner faces (32x32 grey), descriptor duplicates
    )
    conflict_borderline_min_face_ncc: float = 0.92  # the same for pairs the descriptors only put in review
    index: str = "flat"  # "flat" (exact) or "ivf" (approximate, for very large sets)
    nprobe: int = 16  # IVF lists visited per query
    use_gpu: bool | None = None  # None: when faiss sees a GPU

    def validate(self) -> None:
        """Raise ConfigError on a threshold or setting that cannot work."""
        check_hash_names(self.hashes)
        if not self.hashes and not self.embedding:
            raise ConfigError("hashes", self.hashes, "use at least one hash or set an embedding")
        if not 0 <= self.max_hamming_bits <= self.review_max_hamming_bits <= HASH_BITS // 2:
            raise ConfigError(
                "review_max_hamming_bits",
                (self.max_hamming_bits, self.review_max_hamming_bits),
                f"need 0 <= max_hamming_bits <= review_max_hamming_bits <= {HASH_BITS // 2} bits",
            )
        spec = self.confirm_conflicts_with
        if spec and spec not in BUILTIN and not (Path(spec) / "embedder.json").is_file():
            raise ConfigError(
                "confirm_conflicts_with",
                spec,
                f"choose one of {list(BUILTIN)}, an exported model folder, or ''",
            )
        for key in ("conflict_min_face_cosine", "conflict_min_face_ncc", "conflict_borderline_min_face_ncc"):
            if not -1.0 <= getattr(self, key) <= 1.0:
                raise ConfigError(key, getattr(self, key), "give a value from -1 to 1")
        for low, high in (("review_min_cosine", "min_cosine"), ("review_min_aligned_ncc", "min_aligned_ncc")):
            if not -1.0 <= getattr(self, low) <= getattr(self, high) <= 1.0:
                raise ConfigError(
                    low, (getattr(self, low), getattr(self, high)), f"need -1 <= {low} <= {high} <= 1"
                )
        if self.index not in ("flat", "ivf"):
            raise ConfigError("index", self.index, "choose 'flat' (exact) or 'ivf' (approximate)")
        if self.nprobe < 1:
            raise ConfigError("nprobe", self.nprobe, "visit at least 1 IVF list per query")
        if not self.descriptor_stage:
            raise ConfigError(
                "descriptor_stage", self.descriptor_stage, "name the stage that wrote the vectors"
            )

    def thresholds(self) -> Thresholds:
        """The decision thresholds of this config."""
        return Thresholds(
            self.max_hamming_bits,
            self.review_max_hamming_bits,
            self.min_cosine,
            self.review_min_cosine,
            self.min_aligned_ncc,
            self.review_min_aligned_ncc,
        )


def cluster_id(identity_id: str, image_id: str) -> int:
    """A stable non-negative int64 naming a cluster by its identity and kept image."""
    digest = hashlib.sha1(f"{identity_id}/{image_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big") >> 1


@dataclass
class Participants:
    """The ok, described rows of every shard, flattened, with what the decision needs."""

    shard: np.ndarray
    row: np.ndarray
    image_id: list[str]
    identity_id: list[str]
    identity_name: list[str]
    source: list[str]
    rank_score: np.ndarray
    resolution: np.ndarray
    codes: list[np.ndarray]
    vectors: np.ndarray | None
    thumbnails: np.ndarray | None


def _column(table: pa.Table, name: str, default: object) -> list:
    return table.column(name).to_pylist() if name in table.column_names else [default] * table.num_rows


def gather(tables: dict[int, pa.Table], ctx: StageContext, config: DedupConfig) -> Participants:
    """Collect the participating rows and their descriptors from all shards (shard order, row order)."""
    parts: dict[str, list] = defaultdict(list)
    for shard in sorted(tables):
        table = tables[shard]
        described = _column(table, "described", True)
        rows = [r for r, ok in enumerate(record.ok_mask(table)) if ok and described[r]]
        parts["shard"] += [shard] * len(rows)
        parts["row"] += rows
        for name in ("image_id", "identity_id", "identity_name", "source"):
            values = _column(table, name, None)
            parts[name] += [values[r] or "" for r in rows]
        scores, widths, heights = (_column(table, c, None) for c in ("rank_score", "width", "height"))
        parts["rank_score"] += [np.nan if scores[r] is None else scores[r] for r in rows]
        parts["resolution"] += [(widths[r] or 0) * (heights[r] or 0) for r in rows]
        for kind in config.hashes:
            if f"{kind}_code" not in table.column_names:
                raise CurateError(
                    f"shard {shard} has no '{kind}_code' column: add '{kind}' to the hashes of the "
                    f"'{config.descriptor_stage}' stage, or remove it from dedup's hashes"
                )
            values = table.column(f"{kind}_code").to_pylist()
            parts[f"code:{kind}"].append(np.array([values[r] for r in rows], dtype=np.int64))
        if config.embedding:
            parts["vectors"].append(_rows_of(ctx, config, config.embedding, shard, table.num_rows, rows))
        if config.verify:
            parts["thumbnails"].append(_rows_of(ctx, config, THUMBNAILS, shard, table.num_rows, rows))
    vectors = thumbs = None
    if config.embedding:
        stacked = np.concatenate(parts["vectors"]).astype(np.float32)
        vectors = stacked / np.maximum(np.linalg.norm(stacked, axis=1, keepdims=True), 1e-12)
    if config.verify:
        thumbs = np.concatenate(parts["thumbnails"])  # uint8; verification converts the pairs it needs
    return Participants(
        np.array(parts["shard"], dtype=np.int64),
        np.array(parts["row"], dtype=np.int64),
        parts["image_id"],
        parts["identity_id"],
        parts["identity_name"],
        parts["source"],
        np.array(parts["rank_score"], dtype=np.float64),
        np.array(parts["resolution"], dtype=np.float64),
        [np.concatenate(parts[f"code:{kind}"]) for kind in config.hashes],
        vectors,
        thumbs,
    )


def _rows_of(
    ctx: StageContext, config: DedupConfig, name: str, shard: int, n_rows: int, rows: list[int]
) -> np.ndarray:
    """The given rows of one shard's vectors ``name`` from the descriptor stage (checked to line up)."""
    if not manifest.vectors_path(ctx.workdir, config.descriptor_stage, name, shard).exists():
        fix = (
            "run it with thumbnails on, or set dedup verify = false" if name == THUMBNAILS else "run it first"
        )
        raise CurateError(
            f"stage '{config.descriptor_stage}' wrote no '{name}' vectors for shard {shard}: {fix}"
        )
    array = ctx.read_vectors(config.descriptor_stage, name, shard)
    if len(array) != n_rows:
        raise CurateError(
            f"shard {shard}: {len(array)} '{name}' vectors for {n_rows} rows; "
            f"re-run the '{config.descriptor_stage}' stage"
        )
    return array[rows]


class DedupStage(GlobalStage):
    """Near-duplicate removal within identities and conflict flags across them; see the module docstring."""

    name: ClassVar[str] = "dedup"
    Config: ClassVar[type] = DedupConfig
    default_input: ClassVar[str | None] = "rank"  # VGG-Face: ranked first, so a cluster keeps its best

    def reads(self) -> list[str]:
        """The descriptor stage, whose vectors dedup searches."""
        return [self.config.descriptor_stage]

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
        started = time.perf_counter()
        options = {"index": config.index, "use_gpu": config.use_gpu, "nprobe": config.nprobe}
        found = find_candidates(p.codes, p.vectors, limits, **options)
        found, by_face = self._face_candidates(found, tables, p, ctx)
        searched = time.perf_counter()
        verified = verify(found, p.thumbnails, limits) if p.thumbnails is not None else 0
        duplicate, review = classify(found, limits, verified=p.thumbnails is not None)
        identity = np.array(p.identity_id, dtype=object)
        same = identity[found.i] == identity[found.j]
        values = {column: [None] * len(p.row) for column in COLUMNS}
        values["needs_review"] = [False] * len(p.row)
        status: list[tuple[Status, str] | None] = [None] * len(p.row)
        labels = self._clusters(found.i[duplicate & same], found.j[duplicate & same], p, values, status)
        across = ~same if config.across_identities else np.zeros(len(found), bool)
        faces = self._face_check(found, across & (duplicate | review), duplicate, p, tables, ctx)
        cross, unconfirmed = _conflicts(found, duplicate, review, across, faces, p, status)
        settled = same & (labels[found.i] == labels[found.j])
        self._reviews(found, review & ~settled & ~cross & (same | config.across_identities), p, values)
        _unconfirmed_reviews(found, unconfirmed, faces, p, values)
        ctx.stats.update(
            {
                "dedup_rows": len(p.row),
                "dedup_candidate_pairs": len(found),
                "dedup_verified_pairs": verified,
                "dedup_duplicate_pairs": int((duplicate & same).sum()),
                "dedup_conflict_pairs": int(cross.sum()),
                "dedup_face_candidate_pairs": int(by_face.sum()),
                "dedup_unconfirmed_conflict_pairs": int(unconfirmed.sum()),
                "dedup_review_rows": int(sum(values["needs_review"])),
                "dedup_removed": sum(1 for s in status if s and s[0] is Status.DUPLICATE),
                "dedup_conflicts": sum(1 for s in status if s and s[0] is Status.IDENTITY_CONFLICT),
                "dedup_search_seconds": round(searched - started, 3),
                "dedup_verify_seconds": round(time.perf_counter() - searched, 3),
            }
        )
        return _write_back(tables, p, values, status)

    def _face_candidates(
        self, found: Candidates, tables: dict, p: Participants, ctx: StageContext
    ) -> tuple[Candidates, np.ndarray]:
        """Add cross-identity pairs by the face model's vectors when the descriptor stage wrote them.

        Only with verification on: these pairs then need the whole-image evidence of any borderline pair
        (aligned thumbnail NCC in the review band or above) before the faces are compared.
        """
        config: DedupConfig = self.config
        spec = config.confirm_conflicts_with
        name = spec if spec in BUILTIN else f"model:{Path(spec).name}"
        stored = [manifest.vectors_path(ctx.workdir, config.descriptor_stage, name, s) for s in tables]
        wanted = spec and config.across_identities and p.thumbnails is not None
        if not wanted or not stored or not all(x.exists() for x in stored):
            return found, np.zeros(len(found), bool)
        parts = [
            _rows_of(ctx, config, name, shard, tables[shard].num_rows, p.row[p.shard == shard].tolist())
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
        duplicate: np.ndarray,
        p: Participants,
        tables: dict,
        ctx: StageContext,
    ) -> FaceEvidence | None:
        """Face evidence for the cross-identity candidates in ``cross``; None when the check is off."""
        config: DedupConfig = self.config
        if not config.confirm_conflicts_with:
            return None
        check = FaceCheck(
            config.confirm_conflicts_with,
            config.conflict_min_face_cosine,
            config.conflict_min_face_ncc,
            config.conflict_borderline_min_face_ncc,
        )
        return confirm((found.i, found.j), cross, duplicate, (p.shard, p.row), tables, check, ctx)

    @staticmethod
    def _clusters(i: np.ndarray, j: np.ndarray, p: Participants, values: dict, status: list) -> np.ndarray:
        """Union-find over within-identity duplicate pairs; mark every member but the kept one."""
        n = len(p.row)
        labels = cluster_labels(n, i, j)
        keepers = choose_keepers(labels, p.rank_score, p.resolution, p.image_id, [p.identity_id, p.source])
        sizes = np.bincount(labels, minlength=n)
        for member in np.nonzero(sizes[labels] > 1)[0].tolist():
            keeper = int(keepers[member])
            values["dup_cluster"][member] = cluster_id(p.identity_id[keeper], p.image_id[keeper])
            if keeper == member:
                continue
            values["dup_of"][member] = p.image_id[keeper]
            if p.vectors is not None:
                values["dup_distance"][member] = float(1.0 - p.vectors[member] @ p.vectors[keeper])
            if p.codes:
                values["dup_hamming_bits"][member] = int(hamming_bits(p.codes[0][member], p.codes[0][keeper]))
            status[member] = (
                Status.DUPLICATE,
                f"near-duplicate of {p.image_id[keeper]} ({p.source[keeper]})",
            )
        return labels

    @staticmethod
    def _reviews(found: Candidates, pending: np.ndarray, p: Participants, values: dict) -> None:
        """Flag both rows of each pending review pair, naming the closest partner."""
        partners: dict[int, int] = defaultdict(int)
        for a, b in zip(found.i[pending].tolist(), found.j[pending].tolist(), strict=True):
            partners[a] += 1
            partners[b] += 1
        for row, other, scores in _best_partners(found, pending, p):
            where = (
                ""
                if p.identity_id[row] == p.identity_id[other]
                else f" under identity '{p.identity_name[other]}'"
            )
            more = f" and {partners[row] - 1} more" if partners[row] > 1 else ""
            values["needs_review"][row] = True
            values["review_reason"][row] = (
                f"possible near-duplicate of {p.image_id[other]} ({p.source[other]}){where}: {scores}{more}"
            )


def _conflicts(
    found: Candidates,
    duplicate: np.ndarray,
    review: np.ndarray,
    across: np.ndarray,
    faces: FaceEvidence | None,
    p: Participants,
    status: list,
) -> tuple[np.ndarray, np.ndarray]:
    """Mark cross-identity pairs ``identity_conflict``; return the (conflict, unconfirmed) pair masks.

    Without face evidence the descriptors decide, as within an identity. With it the face decides: a
    confirmed review pair is a conflict too, an unconfirmed duplicate is not (it goes to review).
    """
    if faces is None:
        cross, unconfirmed = duplicate & across, np.zeros(len(found), bool)
    else:
        cross = across & (duplicate | review) & faces.confirmed
        unconfirmed = duplicate & across & ~faces.confirmed
    for row, other, scores in _best_partners(found, cross, p, faces.describe if faces else None):
        status[row] = (
            Status.IDENTITY_CONFLICT,
            f"same photo as {p.image_id[other]} ({p.source[other]}) under identity "
            f"'{p.identity_name[other]}' ({p.identity_id[other]}): {scores}",
        )
    return cross, unconfirmed


def _unconfirmed_reviews(
    found: Candidates, unconfirmed: np.ndarray, faces: FaceEvidence | None, p: Participants, values: dict
) -> None:
    """Send rows of unconfirmed cross-identity duplicates (not already in review) to review."""
    for row, other, scores in _best_partners(found, unconfirmed, p, faces.describe if faces else None):
        if not values["needs_review"][row]:
            values["needs_review"][row] = True
            values["review_reason"][row] = (
                f"same photo as {p.image_id[other]} ({p.source[other]}) under identity "
                f"'{p.identity_name[other]}' by its descriptors, not confirmed by the face: {scores}"
            )


def _best_partners(
    found: Candidates, mask: np.ndarray, p: Participants, more: Callable[[int], str] | None = None
) -> Iterator[tuple[int, int, str]]:
    """For each row in a masked pair: its closest partner (by cosine, bits, image_id) and their scores.

    ``more`` adds text about pair ``k`` to its scores (the face evidence of a cross-identity pair).
    """
    best: dict[int, tuple] = {}
    cosine = np.nan_to_num(found.cosine, nan=-2.0)
    for k in np.nonzero(mask)[0].tolist():
        a, b = int(found.i[k]), int(found.j[k])
        for row, other in ((a, b), (b, a)):
            key = (-float(cosine[k]), int(found.bits[k]), p.image_id[other], p.identity_id[other], other, k)
            if row not in best or key < best[row]:
                best[row] = key
    for row in sorted(best):
        other, k = best[row][-2:]
        scores = describe_scores(float(found.cosine[k]), int(found.bits[k]), float(found.ncc[k]))
        yield row, other, scores if more is None else f"{scores}, {more(k)}"


def _write_back(
    tables: dict[int, pa.Table], p: Participants, values: dict, status: list
) -> dict[int, pa.Table]:
    """Scatter participant values back to their shard rows and set their statuses."""
    out: dict[int, pa.Table] = {}
    for shard, table in tables.items():
        columns = {column: [None] * table.num_rows for column in COLUMNS}
        changed: dict[Status, tuple[list[int], list[str]]] = {}
        for k in np.nonzero(p.shard == shard)[0].tolist():
            row = int(p.row[k])
            for column in COLUMNS:
                columns[column][row] = values[column][k]
            if status[k] is not None:
                changed.setdefault(status[k][0], ([], []))[0].append(row)
                changed[status[k][0]][1].append(status[k][1])
        table = record.add_columns(table, columns, COLUMNS)
        for new_status, (rows, reasons) in changed.items():
            table = record.set_status(table, rows, new_status, reasons)
        out[shard] = table
    return out
