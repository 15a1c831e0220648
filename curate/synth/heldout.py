"""The held-out verification set: clean photos of extra people and an LFW-format ``pairs.txt``."""

from __future__ import annotations

import itertools
import logging
from collections.abc import Callable
from pathlib import Path

import numpy as np

from curate.storage import atomic_write_bytes, atomic_write_text
from curate.synth.draw import photo_jpeg
from curate.synth.params import IdentityParams
from curate.synth_config import SynthConfig

logger = logging.getLogger(__name__)

_HELDOUT_FILES, _HELDOUT_PAIRS = 3, 4  # random stream keys, distinct from the collection's


def heldout_file(name: str, number: int) -> str:
    """LFW naming: ``<Name>/<Name>_<number as %04d>.jpg``, numbers starting at 1."""
    return f"{name}/{name}_{number:04d}.jpg"


def write_heldout(
    config: SynthConfig,
    names: list[str],
    people: list[IdentityParams],
    out: Path,
    progress: Callable[[int], None] | None = None,
) -> None:
    """Write ``heldout/<Name>/…jpg`` (noise-free folders) and ``heldout_pairs.txt`` for ``names``."""
    if config.heldout_identities == 0:
        return
    for person_index, (name, person) in enumerate(zip(names, people, strict=True)):
        for number in range(1, config.heldout_images + 1):
            rng = np.random.default_rng([config.seed, _HELDOUT_FILES, person_index, number])
            data = photo_jpeg(person, config.nuisance, config.image_size, rng)
            atomic_write_bytes(out / "heldout" / heldout_file(name, number), data)
            if progress is not None:
                progress(1)
    rng = np.random.default_rng([config.seed, _HELDOUT_PAIRS])
    lines = pair_lines(names, config.heldout_images, config.pair_folds, config.pairs_per_fold, rng)
    atomic_write_text(out / "heldout_pairs.txt", "\n".join(lines) + "\n")
    logger.info(
        "held-out set: %d people, %d pairs per fold over %d folds",
        len(names),
        config.pairs_per_fold,
        config.pair_folds,
    )


def pair_lines(
    names: list[str], images: int, folds: int, per_fold: int, rng: np.random.Generator
) -> list[str]:
    """The lines of an LFW ``pairs.txt``: a header ``folds<TAB>per_fold``, then per fold ``per_fold`` genuine
    lines ``Name<TAB>i<TAB>j`` and ``per_fold`` impostor lines ``Name1<TAB>i<TAB>Name2<TAB>j``.

    No pair appears twice. Folds are not identity-disjoint (there are usually fewer held-out people than
    folds); the protocol only needs the threshold chosen on other folds' pairs.
    """
    needed = folds * per_fold
    genuine = [(name, i, j) for name in names for i, j in itertools.combinations(range(1, images + 1), 2)]
    chosen = [genuine[k] for k in rng.permutation(len(genuine))[:needed]]
    impostors: list[tuple[str, int, str, int]] = []
    seen: set[tuple[str, int, str, int]] = set()
    while len(impostors) < needed:
        first, second = sorted(int(k) for k in rng.choice(len(names), 2, replace=False))
        pair = (
            names[first],
            int(rng.integers(1, images + 1)),
            names[second],
            int(rng.integers(1, images + 1)),
        )
        if pair not in seen:
            seen.add(pair)
            impostors.append(pair)
    lines = [f"{folds}\t{per_fold}"]
    for fold in range(folds):
        block = slice(fold * per_fold, (fold + 1) * per_fold)
        lines += [f"{name}\t{i}\t{j}" for name, i, j in chosen[block]]
        lines += [f"{a}\t{i}\t{b}\t{j}" for a, i, b, j in impostors[block]]
    return lines
