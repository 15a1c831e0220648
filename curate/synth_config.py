"""Settings of the synthetic web collection (:mod:`curate.synth`), checked up front; light to import."""

from __future__ import annotations

import math
from dataclasses import dataclass

from curate.errors import ConfigError
from curate.settings import setting

MIN_ORIGINALS = 3
"""Every identity folder keeps at least this many of its own faces, whatever the noise rates."""


@dataclass
class SynthConfig:
    """How big and how noisy the synthetic "web search" collection is.

    Rates are fractions of all files under ``images/``; the exact count of each kind is the rate times the
    number of files, rounded, so a run always holds exactly what was asked for.
    """

    identities: int = setting(30, help="identity folders in the collection")
    images_per_identity: int = setting(20, help="files per identity folder, noise included")
    intruder_rate: float = setting(
        0.12, help="fraction of files showing someone else (a person not in the collection)"
    )
    duplicate_rate: float = setting(
        0.08, help="fraction of near-duplicates (resized, re-encoded, cropped, recoloured, captioned)"
    )
    corrupt_rate: float = setting(0.03, help="fraction of undecodable files named .jpg")
    non_face_rate: float = setting(0.04, help="fraction of decodable pictures with no face")
    intruder_identities: int = setting(10, help="size of the pool of people intruder faces come from")
    cross_duplicate_share: float = setting(
        0.15, help="share of near-duplicates copying a file from another folder"
    )
    image_size: int = setting(128, help="image width and height", unit="pixels")
    nuisance: float = setting(
        1.0, help="strength of pose, lighting, expression and occlusion changes (0 = none, up to 2)"
    )
    seed: int = setting(0, help="random seed; the same seed gives identical files")
    heldout_identities: int = setting(
        10, help="clean extra identities for verification, written to heldout/ (0 = none)"
    )
    heldout_images: int = setting(10, help="images per held-out identity")
    pair_folds: int = setting(10, help="folds in heldout_pairs.txt")
    pairs_per_fold: int = setting(30, help="genuine (and as many impostor) pairs per fold")

    def total_images(self) -> int:
        """Number of files under ``images/``."""
        return self.identities * self.images_per_identity

    def kind_counts(self) -> dict[str, int]:
        """Exact number of files of each noise kind (originals are the rest)."""
        total = self.total_images()
        return {
            "intruder": round(self.intruder_rate * total),
            "near_duplicate": round(self.duplicate_rate * total),
            "corrupt": round(self.corrupt_rate * total),
            "non_face": round(self.non_face_rate * total),
        }

    def validate(self) -> None:
        """Raise :class:`ConfigError` naming the first bad key, its value and the fix."""
        _at_least("identities", self.identities, 1)
        _at_least("images_per_identity", self.images_per_identity, MIN_ORIGINALS)
        for key in (
            "intruder_rate",
            "duplicate_rate",
            "corrupt_rate",
            "non_face_rate",
            "cross_duplicate_share",
        ):
            value = getattr(self, key)
            if not isinstance(value, (int, float)) or not 0.0 <= value <= 1.0:
                raise ConfigError(key, value, "use a fraction between 0 and 1")
        noise = sum(self.kind_counts().values())
        room = self.total_images() - MIN_ORIGINALS * self.identities
        if noise > room:
            raise ConfigError(
                "intruder_rate",
                self.intruder_rate,
                f"the noise rates add up to {noise} files but only {room} fit while every folder keeps "
                f"{MIN_ORIGINALS} originals; lower the rates or raise images_per_identity",
            )
        if self.intruder_rate > 0:
            _at_least("intruder_identities", self.intruder_identities, 1)
        _at_least("image_size", self.image_size, 48)
        if self.image_size > 1024:
            raise ConfigError("image_size", self.image_size, "use at most 1024 pixels")
        if not isinstance(self.nuisance, (int, float)) or not 0.0 <= self.nuisance <= 2.0:
            raise ConfigError("nuisance", self.nuisance, "use a strength between 0 (none) and 2")
        if not isinstance(self.seed, int) or self.seed < 0:
            raise ConfigError("seed", self.seed, "use a non-negative integer")
        self._validate_heldout()

    def _validate_heldout(self) -> None:
        _at_least("heldout_identities", self.heldout_identities, 0)
        if self.heldout_identities == 0:
            return
        if self.heldout_identities < 2:
            raise ConfigError("heldout_identities", self.heldout_identities, "use 0 or at least 2")
        _at_least("heldout_images", self.heldout_images, 2)
        _at_least("pair_folds", self.pair_folds, 1)
        _at_least("pairs_per_fold", self.pairs_per_fold, 1)
        wanted = self.pair_folds * self.pairs_per_fold
        genuine = self.heldout_identities * math.comb(self.heldout_images, 2)
        if wanted > genuine:
            raise ConfigError(
                "pairs_per_fold",
                self.pairs_per_fold,
                f"{self.pair_folds} folds x {self.pairs_per_fold} pairs needs {wanted} distinct genuine "
                f"pairs but the held-out set has {genuine}; lower pairs_per_fold or raise heldout_images",
            )


def _at_least(key: str, value: object, low: int) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or value < low:
        raise ConfigError(key, value, f"use an integer of at least {low}")
