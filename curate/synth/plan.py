"""Decide, before drawing anything, what every file of the synthetic collection will be.

The plan fixes each file's folder, kind, true identity, source (for near-duplicates), transform and search
rank from the seed alone, so drawing can happen in any order and still give the same files.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from curate.synth.scene import NON_FACE_KINDS
from curate.synth.variants import CORRUPTIONS, DUPLICATE_TRANSFORMS
from curate.synth_config import MIN_ORIGINALS, SynthConfig

KINDS = ("original", "intruder", "near_duplicate", "corrupt", "non_face")
FACE_KINDS = ("original", "intruder")


@dataclass
class Slot:
    """One planned file under ``images/``."""

    folder: int  # index of the identity folder it is filed under
    index: int  # position in the folder's plan; keys the file's random stream
    kind: str  # one of KINDS
    true_identity: int | None  # index into the plan's people (collection then intruder pool); None: no face
    transform: str | None = None  # duplicate transform, corruption or non-face picture kind
    source: Slot | None = None  # the face a near-duplicate copies
    score: float = 0.0  # lower ranks higher in the simulated search results
    rank: int = 0  # 1-based search rank within its folder


def _allocate(config: SynthConfig, rng: np.random.Generator) -> list[list[str]]:
    """The kinds of files in each folder: exact totals per kind, noise spread unevenly over folders."""
    per_folder = [["original"] * config.images_per_identity for _ in range(config.identities)]
    room = np.full(config.identities, config.images_per_identity - MIN_ORIGINALS)
    used = np.zeros(config.identities, dtype=int)
    # some names are much noisier than others in real search results; intruders follow a skewed weight
    noisiness = rng.gamma(2.0, 1.0, config.identities)
    for kind, count in config.kind_counts().items():
        weights = noisiness if kind == "intruder" else np.ones(config.identities)
        for _ in range(count):
            open_weights = np.where(used < room, weights, 0.0)
            folder = int(rng.choice(config.identities, p=open_weights / open_weights.sum()))
            per_folder[folder][used[folder]] = kind
            used[folder] += 1
    return per_folder


def plan_collection(config: SynthConfig, rng: np.random.Generator) -> list[Slot]:
    """Every file of the collection, in folder order, with ranks assigned.

    People ``0 .. identities-1`` are the collection's identities; ``identities ..`` the intruder pool.
    """
    pool_weights = 1.0 / np.arange(1, config.intruder_identities + 1)  # a few intruders recur often
    pool_weights /= pool_weights.sum()
    slots: list[Slot] = []
    for folder, kinds in enumerate(_allocate(config, rng)):
        for index, kind in enumerate(kinds):
            slot = Slot(folder=folder, index=index, kind=kind, true_identity=None)
            if kind == "original":
                slot.true_identity = folder
            elif kind == "intruder":
                slot.true_identity = config.identities + int(
                    rng.choice(config.intruder_identities, p=pool_weights)
                )
            elif kind == "corrupt":
                slot.transform = str(rng.choice(CORRUPTIONS))
            elif kind == "non_face":
                slot.transform = str(rng.choice(NON_FACE_KINDS))
            slots.append(slot)
    _link_duplicates(slots, config, rng)
    _rank(slots, config, rng)
    return slots


def _link_duplicates(slots: list[Slot], config: SynthConfig, rng: np.random.Generator) -> None:
    """Give every near-duplicate a face to copy: usually from its own folder, sometimes from another."""
    faces = [slot for slot in slots if slot.kind in FACE_KINDS]
    for slot in slots:
        if slot.kind != "near_duplicate":
            continue
        cross = config.identities > 1 and rng.uniform() < config.cross_duplicate_share
        candidates = [face for face in faces if (face.folder != slot.folder) == cross]
        source = candidates[int(rng.integers(len(candidates)))]
        slot.source = source
        slot.true_identity = source.true_identity
        slot.transform = str(rng.choice(DUPLICATE_TRANSFORMS))


def _rank(slots: list[Slot], config: SynthConfig, rng: np.random.Generator) -> None:
    """Simulated search ranks: the person searched for mostly comes first, wrong people and junk later."""
    offsets = {"original": 0.0, "intruder": 1.2, "corrupt": 0.6, "non_face": 0.9}
    for slot in slots:
        if slot.kind != "near_duplicate":
            slot.score = float(rng.normal(offsets[slot.kind], 1.0))
    for slot in slots:
        if slot.kind == "near_duplicate" and slot.source is not None:
            same_folder = slot.source.folder == slot.folder
            base = slot.source.score if same_folder else float(rng.normal(0.8, 1.0))
            slot.score = base + abs(float(rng.normal(0.0, 0.4)))
    for folder in range(config.identities):
        members = [slot for slot in slots if slot.folder == folder]
        for rank, slot in enumerate(sorted(members, key=lambda s: (s.score, s.index)), start=1):
            slot.rank = rank
