"""The near-duplicate benchmark's image sets: real CFP photos with planted copies, then synthetic draws.

Whole identities of CFP (Sengupta et al., WACV 2016) are taken in a seeded order; every photo of an
identity is an original, so the other photos of the same person (often from the same event) are the hard
negatives. Each original gets 1-3 transformed copies (resize, low-quality JPEG, crop of a few percent,
brightness/colour shift, text overlay, border, greyscale). When CFP's 7,000 photos run out (about 21,000
files with their copies), procedurally drawn people (:mod:`curate.synth`, 4 photos each under fresh
conditions) are originals in the same way.

A set is written once under ``bench/out/neardup/seed<S>/`` (gitignored) and reused: ``items.jsonl`` lists
every file in order, and a benchmark of size N takes the first N files (so the 10k set is a prefix of the
100k set). Work is split per identity across processes, each identity with its own seeded generator, so
the files do not depend on the number of processes.
"""

from __future__ import annotations

import json
import multiprocessing
import random
import shutil
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageEnhance, ImageFont, ImageOps

TRANSFORMS = ("resize", "jpeg", "crop", "colour", "text", "border", "grey")
CAPTIONS = ("© stock photo", "celebrity news", "PHOTO: AP", "www.example.com", "EXCLUSIVE", "2016")
SYNTH_PHOTOS = 4  # photos per synthetic person
IDENTITIES_PER_FOLDER = 100  # sub-folders of the image store keep directory listings short


@dataclass(frozen=True)
class Item:
    """One benchmark file: which original it comes from (``group``) and how it was made."""

    path: Path
    group: int
    identity: str
    original: str  # the photo it comes from: "<id>/<frontal|profile>/<NN>" (CFP) or "syn<k>/photo/<NN>"
    transform: str  # "original" or one of TRANSFORMS


def _resize(image: Image.Image, rng: random.Random) -> Image.Image:
    scale = rng.choice([rng.uniform(0.35, 0.8), rng.uniform(1.2, 2.0)])
    size = (max(16, round(image.width * scale)), max(16, round(image.height * scale)))
    return image.resize(size, Image.Resampling.BICUBIC)


def _crop(image: Image.Image, rng: random.Random) -> Image.Image:
    """Remove 2-6% of the width and of the height, split at random between the two sides."""
    w, h = image.size
    cut_w, cut_h = w * rng.uniform(0.02, 0.06), h * rng.uniform(0.02, 0.06)
    left, top = round(cut_w * rng.random()), round(cut_h * rng.random())
    return image.crop((left, top, left + round(w - cut_w), top + round(h - cut_h)))


def _colour(image: Image.Image, rng: random.Random) -> Image.Image:
    image = ImageEnhance.Brightness(image).enhance(rng.uniform(0.7, 1.3))
    image = ImageEnhance.Contrast(image).enhance(rng.uniform(0.8, 1.2))
    image = ImageEnhance.Color(image).enhance(rng.uniform(0.5, 1.6))
    gains = [rng.uniform(0.88, 1.12) for _ in range(3)]
    channels = [
        band.point(lambda v, g=g: min(255, round(v * g)))
        for band, g in zip(image.split(), gains, strict=True)
    ]
    return Image.merge("RGB", channels)


def _text(image: Image.Image, rng: random.Random) -> Image.Image:
    image = image.copy()
    draw = ImageDraw.Draw(image)
    font = ImageFont.load_default(size=max(8, round(image.height * rng.uniform(0.06, 0.1))))
    caption = rng.choice(CAPTIONS)
    x = round(image.width * rng.uniform(0.02, 0.3))
    y = round(image.height * rng.choice([rng.uniform(0.02, 0.1), rng.uniform(0.82, 0.9)]))
    colour = rng.choice([(255, 255, 255), (255, 255, 0), (0, 0, 0)])
    draw.text((x, y), caption, fill=colour, font=font, stroke_width=1, stroke_fill=(40, 40, 40))
    return image


def _border(image: Image.Image, rng: random.Random) -> Image.Image:
    width = max(2, round(min(image.size) * rng.uniform(0.03, 0.12)))
    colour = rng.choice([(0, 0, 0), (255, 255, 255), (128, 128, 128), (30, 60, 120)])
    return ImageOps.expand(image, border=width, fill=colour)


def _grey(image: Image.Image, rng: random.Random) -> Image.Image:
    return image.convert("L").convert("RGB")


_MAKERS = {
    "resize": _resize,
    "crop": _crop,
    "colour": _colour,
    "text": _text,
    "border": _border,
    "grey": _grey,
}


def write_copy(image: Image.Image, transform: str, target: Path, rng: random.Random) -> None:
    """Write ``image`` transformed by ``transform`` (JPEG quality 10-30 for "jpeg", else 92)."""
    if transform == "jpeg":
        image.save(target, "JPEG", quality=rng.randint(10, 30))
    else:
        _MAKERS[transform](image, rng).save(target, "JPEG", quality=92)


def _originals(job: tuple[str, str, int, str]) -> list[tuple[str, bytes]]:
    """(key, JPEG bytes) of every original photo of one identity (CFP files, or fresh synthetic draws)."""
    kind, identity, seed, cfp = job
    if kind == "cfp":
        photos = sorted((Path(cfp) / "Data" / "Images" / identity).glob("*/*.jpg"))
        return [(f"{identity}/{p.parent.name}/{p.stem}", p.read_bytes()) for p in photos]
    from curate.synth import photo_jpeg, sample_identity

    rng = np.random.default_rng([seed, int(identity.removeprefix("syn"))])
    person = sample_identity(rng)
    sizes = rng.integers(120, 260, SYNTH_PHOTOS)
    photos = [photo_jpeg(person, 1.0, int(size), rng) for size in sizes]
    return [(f"{identity}/photo/{k + 1:02d}", data) for k, data in enumerate(photos)]


def _identity_files(job: tuple[str, str, int, str, str]) -> list[tuple[str, str, str]]:
    """Write one identity's originals and their copies; (file name, original key, transform) per file."""
    kind, identity, seed, cfp, folder = job
    rng = random.Random(f"{seed}:{identity}")
    written = []
    for key, data in _originals((kind, identity, seed, cfp)):
        stem = key.replace("/", "_")
        Path(folder, f"{stem}.jpg").write_bytes(data)
        written.append((f"{stem}.jpg", key, "original"))
        image = Image.open(Path(folder, f"{stem}.jpg")).convert("RGB")
        for transform in rng.sample(TRANSFORMS, rng.randint(1, 3)):
            write_copy(image, transform, Path(folder, f"{stem}_{transform}.jpg"), rng)
            written.append((f"{stem}_{transform}.jpg", key, transform))
    return written


def _jobs(cfp: Path, seed: int, synthetic: int) -> list[tuple[str, str]]:
    """(kind, identity) in benchmark order: CFP identities shuffled by ``seed``, then synthetic people."""
    identities = sorted(p.name for p in (cfp / "Data" / "Images").iterdir() if p.is_dir())
    random.Random(seed).shuffle(identities)
    return [("cfp", name) for name in identities] + [("synth", f"syn{k:06d}") for k in range(synthetic)]


def build_set(cfp: Path, root: Path, n_images: int, seed: int = 0, workers: int = 2) -> list[Item]:
    """The first ``n_images`` files of the seed's set under ``root``, written now if not there yet."""
    store = root / f"seed{seed}"
    index = store / "items.jsonl"
    items = _read_items(index)
    if len(items) < n_images:
        shutil.rmtree(store, ignore_errors=True)
        items = _write_set(cfp, store, n_images, seed, workers)
    return items[:n_images]


def _write_set(cfp: Path, store: Path, n_images: int, seed: int, workers: int) -> list[Item]:
    """Generate identities in parallel (in order) until ``n_images`` files exist; write ``items.jsonl``."""
    synthetic = max(0, (n_images - 3 * 7000) // (SYNTH_PHOTOS * 3) + 50)  # about 3 files per original
    jobs = _jobs(cfp, seed, synthetic)
    store.mkdir(parents=True)
    items: list[Item] = []
    with multiprocessing.get_context("fork").Pool(workers) as pool:
        tasks = []
        for k, (kind, identity) in enumerate(jobs):
            folder = store / f"{k // IDENTITIES_PER_FOLDER:04d}"
            folder.mkdir(exist_ok=True)
            tasks.append((kind, identity, seed, str(cfp), str(folder)))
        for task, written in zip(tasks, pool.imap(_identity_files, tasks, chunksize=8), strict=False):
            for name, key, transform in written:
                group = items[-1].group + (transform == "original") if items else 0
                items.append(Item(Path(task[4]) / name, group, task[1], key, transform))
            if len(items) >= n_images:
                pool.terminate()
                break
    with index_path(store).open("w") as out:
        for item in items:
            out.write(json.dumps({**asdict(item), "path": str(item.path.relative_to(store))}) + "\n")
    return items


def index_path(store: Path) -> Path:
    """The list of a set's files, in benchmark order."""
    return store / "items.jsonl"


def _read_items(index: Path) -> list[Item]:
    if not index.exists():
        return []
    rows = [json.loads(line) for line in index.read_text().splitlines()]
    return [Item(**{**row, "path": index.parent / row["path"]}) for row in rows]


def linked_folder(items: list[Item], folder: Path) -> Path:
    """A flat folder of symlinks to ``items`` (for tools that take a folder), made once per size.

    Built under a temporary name and renamed into place, so two runs never see a half-made folder.
    """
    if folder.is_dir():
        return folder
    building = Path(tempfile.mkdtemp(prefix=f".{folder.name}-", dir=folder.parent))
    for item in items:
        (building / item.path.name).symlink_to(item.path.resolve())
    try:
        building.rename(folder)
    except OSError:  # another run finished the same folder first
        shutil.rmtree(building)
    return folder
