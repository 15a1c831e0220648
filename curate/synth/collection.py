"""Build the synthetic web collection on disk: ``images/<identity>/…jpg``, ``truth.parquet``, held-out set."""

from __future__ import annotations

import hashlib
import json
import logging
import shutil
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from curate.errors import CurateError
from curate.storage import atomic_path, atomic_write_bytes, atomic_write_text
from curate.synth.draw import photo_jpeg
from curate.synth.heldout import write_heldout
from curate.synth.naming import make_names
from curate.synth.params import IdentityParams, sample_identity
from curate.synth.plan import FACE_KINDS, Slot, plan_collection
from curate.synth.scene import draw_non_face
from curate.synth.variants import corrupt, encode_jpeg, near_duplicate
from curate.synth_config import SynthConfig

logger = logging.getLogger(__name__)

TRUTH_COLUMNS: dict[str, pa.DataType] = {
    "file": pa.string(),  # path relative to images/, POSIX separators
    "folder_identity": pa.string(),  # the identity folder the file is filed under
    "true_identity": pa.string(),  # whose face it really is; null for corrupt and non-face files
    "kind": pa.string(),  # original, intruder, near_duplicate, corrupt, non_face
    "duplicate_of": pa.string(),  # for near-duplicates: the file they copy
    "transform": pa.string(),  # duplicate transform, corruption kind or non-face picture kind
    "search_rank": pa.int32(),  # 1-based rank within the folder's simulated search results
    "sha256": pa.string(),  # hex digest of the file's bytes (the pipeline's image_id)
}
OUTPUTS = ("images", "heldout", "truth.parquet", "heldout_pairs.txt", "synth_config.json")
"""Everything :func:`synthesize` writes inside its output folder."""

# Independent random streams, keyed by purpose so that one part never shifts another's numbers.
_PLAN, _PEOPLE, _FILES = 0, 1, 2


def planned_files(config: SynthConfig) -> int:
    """How many image files :func:`synthesize` writes (collection plus held-out set)."""
    return config.total_images() + config.heldout_identities * config.heldout_images


def synthesize(
    config: SynthConfig, out: Path, overwrite: bool = False, progress: Callable[[int], None] | None = None
) -> pd.DataFrame:
    """Write the synthetic collection for ``config`` under ``out`` and return its ground-truth table.

    The same config (seed included) always gives byte-identical files. An output folder that already holds
    a collection is refused unless ``overwrite``, which first removes exactly the paths in :data:`OUTPUTS`.
    ``progress`` is called with the number of files just written.
    """
    config.validate()
    out = Path(out)
    _prepare(out, overwrite)
    names = make_names(
        config.identities + config.intruder_identities + config.heldout_identities, _rng(config, _PLAN)
    )
    people = [sample_identity(_rng(config, _PEOPLE, i)) for i in range(len(names))]
    slots = plan_collection(config, _rng(config, _PLAN, 1))
    files = {id(slot): _file_name(names[slot.folder], slot.rank) for slot in slots}
    contents = _render(slots, people, config, progress)
    rows = []
    for slot in slots:
        data = contents[id(slot)]
        atomic_write_bytes(out / "images" / files[id(slot)], data)
        rows.append(_truth_row(slot, files, names, data))
    start = config.identities + config.intruder_identities
    write_heldout(config, names[start:], people[start:], out, progress)
    rows.sort(key=lambda row: row["file"])
    table = pa.table(
        {key: pa.array([row[key] for row in rows], type=kind) for key, kind in TRUTH_COLUMNS.items()}
    )
    with atomic_path(out / "truth.parquet") as tmp:
        pq.write_table(table, tmp)
    settings = json.dumps(asdict(config), indent=2, sort_keys=True) + "\n"
    atomic_write_text(out / "synth_config.json", settings)  # last: says the collection is complete
    logger.info(
        "wrote %d collection files and %d held-out files to %s",
        len(slots),
        planned_files(config) - len(slots),
        out,
    )
    return table.to_pandas()


def _rng(config: SynthConfig, *key: int) -> np.random.Generator:
    return np.random.default_rng([config.seed, *key])


def _file_name(folder: str, rank: int) -> str:
    """Files are numbered by search rank, as a search engine's exported results would be."""
    return f"{folder}/{folder}_{rank:04d}.jpg"


def _prepare(out: Path, overwrite: bool) -> None:
    existing = [out / name for name in OUTPUTS if (out / name).exists()]
    if existing and not overwrite:
        raise CurateError(
            f"{out} already holds a synthetic collection ({existing[0].name}); pass --overwrite to replace it"
        )
    for path in existing:
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path)
        else:
            path.unlink()
    out.mkdir(parents=True, exist_ok=True)


def _render(
    slots: list[Slot],
    people: list[IdentityParams],
    config: SynthConfig,
    progress: Callable[[int], None] | None,
) -> dict[int, bytes]:
    """The bytes of every planned file; faces first, since near-duplicates copy them."""
    contents: dict[int, bytes] = {}
    for slot in sorted(slots, key=lambda slot: slot.kind == "near_duplicate"):
        rng = _rng(config, _FILES, slot.folder, slot.index)
        transform = str(slot.transform)
        if slot.kind in FACE_KINDS:
            person = people[int(slot.true_identity)]  # type: ignore[arg-type]  # faces always have one
            contents[id(slot)] = photo_jpeg(person, config.nuisance, config.image_size, rng)
        elif slot.kind == "near_duplicate":
            contents[id(slot)] = near_duplicate(contents[id(slot.source)], transform, rng)
        elif slot.kind == "corrupt":
            face = photo_jpeg(people[slot.folder], config.nuisance, config.image_size, rng)
            contents[id(slot)] = corrupt(transform, face, rng)
        else:
            picture = draw_non_face(rng, config.image_size, transform)
            contents[id(slot)] = encode_jpeg(picture, int(rng.integers(60, 96)))
        if progress is not None:
            progress(1)
    return contents


def _truth_row(slot: Slot, files: dict[int, str], names: list[str], data: bytes) -> dict[str, object]:
    return {
        "file": files[id(slot)],
        "folder_identity": names[slot.folder],
        "true_identity": None if slot.true_identity is None else names[slot.true_identity],
        "kind": slot.kind,
        "duplicate_of": files[id(slot.source)] if slot.source is not None else None,
        "transform": slot.transform,
        "search_rank": slot.rank,
        "sha256": hashlib.sha256(data).hexdigest(),
    }
