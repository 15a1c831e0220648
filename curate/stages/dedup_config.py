"""Settings of the ``dedup`` stage (:mod:`curate.stages.dedup`); light to import."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any

from curate.constants import BUILTIN_EMBEDDERS, HASH_BITS, HashKind
from curate.errors import ConfigError
from curate.settings import setting


class IndexKind(StrEnum):
    """The faiss index dedup searches."""

    AUTO = "auto"  # ivf from 50,000 images on a CPU, flat below (curate.search.range_search.IVF_FROM)
    FLAT = "flat"  # exact
    IVF = "ivf"  # approximate, for very large sets


@dataclass
class DedupConfig:
    """Descriptors, thresholds (named with their units) and search settings."""

    descriptor_stage: str = setting("describe", help="the stage whose vectors (and hash columns) are read")
    hashes: list[HashKind] = setting(["phash"], help="hashes to search ('' = none)")
    embedding: str = setting(
        "handcrafted", help="vector name written by the descriptor stage ('' = no embedding)"
    )
    max_hamming_bits: int = setting(
        4, help="a hash pair at or below this is a duplicate", unit="bits", min=0, max=HASH_BITS // 2
    )
    review_max_hamming_bits: int = setting(
        10, help="a hash pair at or below this goes to review", unit="bits", min=0, max=HASH_BITS // 2
    )
    min_cosine: float = setting(0.90, help="a vector pair at or above this is a duplicate", min=-1.0, max=1.0)
    review_min_cosine: float = setting(
        0.80, help="a vector pair at or above this goes to review", min=-1.0, max=1.0
    )
    verify: bool = setting(
        True, help="align thumbnails to decide borderline pairs (else they all go to review)"
    )
    min_aligned_ncc: float = setting(
        0.97, help="verified pairs at or above this aligned NCC are duplicates", min=-1.0, max=1.0
    )
    review_min_aligned_ncc: float = setting(
        0.90, help="verified pairs at or above this aligned NCC go to review", min=-1.0, max=1.0
    )
    across_identities: bool = setting(
        True, help="also look for the same photo under two identities (identity_conflict)"
    )
    confirm_conflicts_with: str = setting(
        "dlib", help="face embedder confirming a cross-identity pair ('' = descriptors only)"
    )
    conflict_min_face_cosine: float = setting(
        0.95, help="face-embedding cosine of the two aligned crops of a conflict", min=-1.0, max=1.0
    )
    conflict_min_face_ncc: float = setting(
        0.88, help="aligned NCC of the two inner faces (32x32 grey) of a duplicate pair", min=-1.0, max=1.0
    )
    conflict_borderline_min_face_ncc: float = setting(
        0.92, help="the same for pairs the descriptors only put in review", min=-1.0, max=1.0
    )
    conflict_face_only_min_face_ncc: float = setting(
        0.95, help="the same for pairs only the face vectors found", min=-1.0, max=1.0
    )
    index: IndexKind = setting(
        IndexKind.AUTO,
        help="flat (exact), ivf (approximate: about 4 sqrt(N) lists, nprobe of them searched) or auto "
        "(ivf from 50,000 images on a CPU, flat below and on a GPU)",
    )
    nprobe: int = setting(16, help="IVF lists visited per query", unit="lists", min=1)
    use_gpu: bool | None = setting(None, help="search on a GPU (none: when faiss sees one)")

    def validate(self) -> None:
        """Raise ConfigError on a threshold or setting that cannot work (ranges come from the metadata)."""
        if not self.hashes and not self.embedding:
            raise ConfigError("hashes", self.hashes, "use at least one hash or set an embedding")
        if not self.max_hamming_bits <= self.review_max_hamming_bits:
            raise ConfigError(
                "review_max_hamming_bits",
                (self.max_hamming_bits, self.review_max_hamming_bits),
                f"need 0 <= max_hamming_bits <= review_max_hamming_bits <= {HASH_BITS // 2} bits",
            )
        spec = self.confirm_conflicts_with
        if spec and spec not in BUILTIN_EMBEDDERS and not (Path(spec) / "embedder.json").is_file():
            raise ConfigError(
                "confirm_conflicts_with",
                spec,
                f"choose one of {list(BUILTIN_EMBEDDERS)}, an exported model folder, or ''",
            )
        for low, high in (("review_min_cosine", "min_cosine"), ("review_min_aligned_ncc", "min_aligned_ncc")):
            if not getattr(self, low) <= getattr(self, high):
                raise ConfigError(
                    low, (getattr(self, low), getattr(self, high)), f"need -1 <= {low} <= {high} <= 1"
                )
        if not self.descriptor_stage:
            raise ConfigError(
                "descriptor_stage", self.descriptor_stage, "name the stage that wrote the vectors"
            )

    def thresholds(self) -> Any:
        """The decision thresholds of this config (a :class:`curate.search.pairs.Thresholds`)."""
        from curate.search.pairs import Thresholds

        return Thresholds(
            self.max_hamming_bits,
            self.review_max_hamming_bits,
            self.min_cosine,
            self.review_min_cosine,
            self.min_aligned_ncc,
            self.review_min_aligned_ncc,
        )
