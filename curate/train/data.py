"""Training data: labelled images from a curated manifest or a folder tree, augmentation, P x K batches.

Images are resized to the network's square input exactly as the exported embedder does at inference
(RGB, bilinear resize, ``/255``, ``(x - mean) / std``), so training and evaluation see the same pixels.
Small sets are decoded once into memory; large ones are decoded per item.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch.utils.data import DataLoader, Dataset, DistributedSampler, Sampler
from torchvision.transforms import v2

from curate import manifest
from curate.errors import CurateError
from curate.record import Status

logger = logging.getLogger(__name__)

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".pgm", ".ppm", ".bmp", ".webp", ".tif", ".tiff"}
MEAN = (0.5, 0.5, 0.5)
STD = (0.5, 0.5, 0.5)
PRELOAD_LIMIT_BYTES = 2 * 1024**3


@dataclass
class LabeledImages:
    """Image files with integer labels indexing ``classes`` (identity ids, sorted)."""

    paths: list[Path]
    labels: list[int]
    classes: list[str]

    @classmethod
    def from_pairs(cls, items: list[tuple[Path, str]], keys: list[str] | None = None) -> LabeledImages:
        """Build from (path, identity) pairs, ordered by identity, then by ``keys`` (default: the paths).

        Labels follow the sorted identity order. A manifest's rows are keyed by their sources, so the
        order does not hang on the content-addressed names of the crops: a change in how crops are
        encoded (same pixels, other bytes) would otherwise shuffle the same data and train differently.
        """
        classes = sorted({identity for _, identity in items})
        index = {name: i for i, name in enumerate(classes)}
        order = keys if keys is not None else [str(path) for path, _ in items]
        ranked = sorted(zip(order, items, strict=True), key=lambda keyed: (keyed[1][1], keyed[0]))
        return cls([path for _, (path, _) in ranked], [index[who] for _, (_, who) in ranked], classes)


def from_manifest(workdir: Path, stage: str) -> LabeledImages:
    """Rows with status ``ok``; the aligned ``crop_path`` when the faces stage wrote one, else ``path``."""
    table = manifest.read_stage(workdir, stage)
    wanted = ["status", "identity_id", "source", "path", "crop_path", "review_identity_id"]
    columns = table.select([c for c in wanted if c in table.column_names]).to_pydict()
    crops = columns.get("crop_path", [None] * table.num_rows)
    labels = columns.get("review_identity_id") or columns["identity_id"]  # review may merge twins
    origins = columns.get("source") or columns["path"]  # a hand-made manifest may lack sources
    rows = zip(columns["status"], labels, origins, columns["path"], crops, strict=True)
    items: list[tuple[Path, str]] = []
    sources: list[str] = []
    for status, identity, source, path, crop in rows:
        chosen = crop or path
        if status == Status.OK.value and chosen:
            items.append((Path(chosen), identity))
            sources.append(source)
    if not items:
        raise CurateError(f"no 'ok' rows with an image path in {workdir}/{stage}; check the earlier stages")
    logger.info("manifest %s/%s: %d ok images", workdir, stage, len(items))
    return LabeledImages.from_pairs(items, keys=sources)


def from_folder(root: Path) -> LabeledImages:
    """A folder tree ``<root>/<identity>/**/<image>``: one identity per top-level folder."""
    items = [
        (path, folder.name)
        for folder in sorted(Path(root).iterdir())
        if folder.is_dir()
        for path in sorted(folder.rglob("*"))
        if path.suffix.lower() in IMAGE_SUFFIXES and path.is_file()
    ]
    if not items:
        raise CurateError(f"no images under {root}; expected <identity>/<image> files")
    return LabeledImages.from_pairs(items)


def load_square(path: Path, size: int) -> np.ndarray:
    """``size x size x 3`` uint8 RGB, bilinear resize (the embedder's preprocessing)."""
    try:
        with Image.open(path) as image:
            rgb = image.convert("RGB").resize((size, size), Image.Resampling.BILINEAR)
            return np.asarray(rgb, dtype=np.uint8)
    except OSError as error:
        raise CurateError(f"cannot read training image {path}: {error}; re-run the decode stage") from error


class FaceDataset(Dataset):
    """``(image tensor, label)`` items, augmented (crop, flip, colour) when ``augment`` is set."""

    def __init__(self, images: LabeledImages, input_size: int, augment: bool) -> None:
        self.images = images
        self.input_size = input_size
        steps: list[object] = []
        if augment:
            steps += [
                v2.RandomResizedCrop(input_size, scale=(0.8, 1.0), ratio=(0.9, 1.1), antialias=True),
                v2.RandomHorizontalFlip(),
                v2.ColorJitter(brightness=0.3, contrast=0.3, saturation=0.3),
            ]
        steps += [v2.ToDtype(torch.float32, scale=True), v2.Normalize(MEAN, STD)]
        self.transform = v2.Compose(steps)
        self.cache: torch.Tensor | None = None
        if len(images.paths) * input_size * input_size * 3 <= PRELOAD_LIMIT_BYTES:
            stacked = np.stack([load_square(p, input_size) for p in images.paths])
            self.cache = torch.from_numpy(stacked).permute(0, 3, 1, 2).contiguous()

    def __len__(self) -> int:
        return len(self.images.paths)

    def raw(self, index: int) -> torch.Tensor:
        """The un-augmented ``3 x S x S`` uint8 image."""
        if self.cache is not None:
            return self.cache[index]
        return torch.from_numpy(load_square(self.images.paths[index], self.input_size)).permute(2, 0, 1)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        return self.transform(self.raw(index)), self.images.labels[index]


class PKBatchSampler(Sampler[list[int]]):
    """Batches of ``p`` distinct identities x ``k`` images each, about one pass over the data per epoch.

    Identities are visited in a shuffled cycle and each identity's images in a shuffled queue; an identity
    with fewer than ``k`` images repeats some. The order depends only on ``(seed, epoch)``, so a resumed run
    sees the same batches. Under DistributedDataParallel rank ``r`` of ``w`` takes batches ``r, r+w, ...``.
    """

    def __init__(
        self, labels: list[int], p: int, k: int, seed: int = 0, rank: int = 0, world_size: int = 1
    ) -> None:
        self.labels = np.asarray(labels)
        self.by_class = [np.flatnonzero(self.labels == c) for c in range(int(self.labels.max()) + 1)]
        self.by_class = [members for members in self.by_class if len(members)]
        if p > len(self.by_class):
            raise CurateError(f"P = {p} identities per batch but the data holds only {len(self.by_class)}")
        self.p, self.k, self.seed, self.rank, self.world_size = p, k, seed, rank, world_size
        self.epoch = 0
        self.n_batches = max(world_size, len(labels) // (p * k))

    def set_epoch(self, epoch: int) -> None:
        """Choose the epoch whose batches ``__iter__`` yields."""
        self.epoch = epoch

    def __len__(self) -> int:
        return self.n_batches // self.world_size

    def __iter__(self) -> Iterator[list[int]]:
        rng = np.random.default_rng([self.seed, self.epoch])
        class_queue: list[int] = []
        image_queues: list[list[int]] = [[] for _ in self.by_class]
        for batch_number in range(len(self) * self.world_size):
            chosen: list[int] = []
            while len(chosen) < self.p:
                if not class_queue:
                    class_queue = rng.permutation(len(self.by_class)).tolist()
                candidate = class_queue.pop()
                if candidate not in chosen:
                    chosen.append(candidate)
            batch: list[int] = []
            for c in chosen:
                while len(image_queues[c]) < self.k:
                    image_queues[c] += rng.permutation(self.by_class[c]).tolist()
                batch += image_queues[c][: self.k]
                del image_queues[c][: self.k]
            if batch_number % self.world_size == self.rank:
                yield batch


def make_loader(
    dataset: FaceDataset,
    pk: tuple[int, int] | None,
    batch_size: int,
    workers: int,
    seed: int,
    epoch: int,
    rank: int = 0,
    world_size: int = 1,
) -> DataLoader:
    """The loader for one epoch: P x K batches when ``pk`` is given, else shuffled full batches.

    Worker seeds come from a generator seeded by ``(seed, epoch)`` so augmentation in workers is reproducible.
    """
    generator = torch.Generator().manual_seed(seed * 100_003 + epoch)
    common = {"num_workers": workers, "generator": generator, "persistent_workers": False}
    if pk is not None:
        sampler = PKBatchSampler(dataset.images.labels, pk[0], pk[1], seed, rank, world_size)
        sampler.set_epoch(epoch)
        return DataLoader(dataset, batch_sampler=sampler, **common)
    shuffler = DistributedSampler(dataset, world_size, rank, shuffle=True, seed=seed, drop_last=True)
    shuffler.set_epoch(epoch)
    if len(shuffler) < batch_size:
        raise CurateError(f"{len(dataset)} images are fewer than one batch of {batch_size}; lower batch_size")
    return DataLoader(dataset, batch_size=batch_size, sampler=shuffler, drop_last=True, **common)


def load_images(images: Path | None, workdir: Path | None, stage: str) -> LabeledImages:
    """Training images: ``images`` (folder tree or WebDataset shards), else the manifest ``workdir/stage``."""
    if images is not None:
        from curate.train import webdataset_source  # WebDataset shards written by curate export

        if webdataset_source.is_webdataset(images):
            return webdataset_source.from_shards(images)
        return from_folder(images)
    if workdir is None:
        raise CurateError("no training data: give --images DIR or a --workdir holding a curated manifest")
    return from_manifest(workdir, stage)
