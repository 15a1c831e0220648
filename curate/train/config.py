"""The training configuration: one dataclass, built from TOML/CLI dicts by ``curate.config.build_config``.

Margins carry their unit in the name: ``margin_rad`` (ArcFace, additive angle in radians), ``margin_cos``
(CosFace, subtracted from the cosine), ``margin_mult`` (SphereFace, multiplies the angle) and
``*_margin_dist`` (pair and triplet losses, Euclidean distance between L2-normalised embeddings).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

from curate.errors import ConfigError

logger = logging.getLogger(__name__)


class HeadKind(StrEnum):
    """The classification head trained on top of the embedding (``none``: pair/triplet losses only)."""

    NONE = "none"
    SOFTMAX = "softmax"
    SPHEREFACE = "sphereface"
    COSFACE = "cosface"
    ARCFACE = "arcface"


class PairLoss(StrEnum):
    """A metric-learning loss on the batch's embeddings, added to the head's loss."""

    NONE = "none"
    CONTRASTIVE = "contrastive"
    TRIPLET = "triplet"


class Mining(StrEnum):
    """How the triplet loss picks negatives inside a batch."""

    BATCH_HARD = "batch_hard"
    SEMI_HARD = "semi_hard"


class Recipe(StrEnum):
    """``standard``: one phase with the chosen head and losses. ``vggface``: classifier, then a
    triplet-loss projection learnt on the frozen features (Parkhi et al., BMVC 2015)."""

    STANDARD = "standard"
    VGGFACE = "vggface"


class Optimizer(StrEnum):
    """The optimiser for every trainable parameter."""

    SGD = "sgd"
    ADAMW = "adamw"


class Schedule(StrEnum):
    """Learning-rate decay after the linear warm-up."""

    COSINE = "cosine"
    STEP = "step"


BACKBONES = ("small", "resnet18", "resnet34", "resnet50")
PRECISIONS = ("auto", "fp32", "bf16", "fp16")


@dataclass
class TrainConfig:
    """Everything ``curate train`` needs; ``validate()`` checks ranges and combinations up front."""

    out: Path = Path("runs/train")  # checkpoints, metrics.jsonl, the exported model (out/model)
    workdir: Path | None = None  # read the curated manifest from here ...
    manifest_stage: str = "dedup"  # ... at this stage (the last: ranked, then near-duplicates removed)
    images: Path | None = None  # or train on a folder tree <images>/<identity>/**/<image>
    backbone: str = "small"
    embedding_dim: int = 128
    input_size: int = 64  # square input side in pixels
    head: HeadKind = HeadKind.SOFTMAX  # learns on 25-250 identities in a few epochs (bench/results/train.md)
    scale: float = 32.0  # logit scale of the margin heads
    margin_rad: float = 0.5  # ArcFace
    margin_cos: float = 0.35  # CosFace
    margin_mult: int = 4  # SphereFace
    sphere_lambda: float = 5.0  # SphereFace blend weight of the plain cosine (stabilises training)
    center_loss_weight: float = 0.0
    pair_loss: PairLoss = PairLoss.NONE
    pair_loss_weight: float = 1.0
    mining: Mining = Mining.SEMI_HARD
    triplet_margin_dist: float = 0.2
    contrastive_margin_dist: float = 1.0
    recipe: Recipe = Recipe.STANDARD
    projection_dim: int = 64  # vggface recipe: output size of the triplet projection
    projection_epochs: int = 10  # vggface recipe: epochs of the second phase
    projection_lr: float = 0.01
    optimizer: Optimizer = Optimizer.SGD
    lr: float = 0.1
    momentum: float = 0.9
    weight_decay: float = 5e-4
    schedule: Schedule = Schedule.COSINE
    warmup_epochs: float = 1.0
    margin_warmup_epochs: float = 2.0  # margin heads: the margin grows linearly from 0 over this many epochs
    stop_at_chance: bool = True  # stop when training accuracy is still at chance after the warm-ups
    step_every_epochs: int = 10  # step schedule: multiply the rate by step_gamma this often
    step_gamma: float = 0.1
    epochs: int = 10
    batch_size: int = 64  # batches without a pair loss; with one, P x K below sets the batch
    identities_per_batch: int = 16  # P
    images_per_identity: int = 4  # K
    augment: bool = True
    workers: int = 0  # DataLoader worker processes
    threads: int = 0  # torch CPU threads (0 = torch's default; 1 is fastest on a busy shared machine)
    seed: int = 0
    device: str = "auto"  # auto | cpu | cuda | cuda:N
    precision: str = "auto"  # auto (bf16 on CUDA, fp32 on CPU) | fp32 | bf16 | fp16
    checkpoint_every: int = 1  # epochs between full-state checkpoints
    resume: bool = False
    progress: bool = True

    @property
    def uses_pk_sampler(self) -> bool:
        """Pair and triplet losses need several images of each identity in every batch."""
        return self.pair_loss is not PairLoss.NONE

    def validate(self) -> None:
        """Raise ConfigError naming the first bad key, its value and the fix."""
        if (self.workdir is None) == (self.images is None):
            raise ConfigError(
                "images", self.images, "give exactly one of --workdir (a manifest) or --images DIR"
            )
        if self.images is not None and not Path(self.images).is_dir():
            raise ConfigError("images", self.images, "give an existing folder of <identity>/<image> files")
        if self.backbone not in BACKBONES:
            raise ConfigError("backbone", self.backbone, f"choose one of: {', '.join(BACKBONES)}")
        if self.precision not in PRECISIONS:
            raise ConfigError("precision", self.precision, f"choose one of: {', '.join(PRECISIONS)}")
        if not (self.device in ("auto", "cpu", "cuda") or self.device.startswith("cuda:")):
            raise ConfigError("device", self.device, "give auto, cpu, cuda or cuda:N")
        minimum = 32 if self.backbone == "small" else 64
        if self.input_size < minimum or self.input_size % 16:
            raise ConfigError("input_size", self.input_size, f"give a multiple of 16, at least {minimum}")
        positive = {
            "embedding_dim": self.embedding_dim,
            "scale": self.scale,
            "epochs": self.epochs,
            "batch_size": self.batch_size,
            "lr": self.lr,
            "checkpoint_every": self.checkpoint_every,
            "step_every_epochs": self.step_every_epochs,
            "projection_dim": self.projection_dim,
            "projection_lr": self.projection_lr,
        }
        for key, value in positive.items():
            if value <= 0:
                raise ConfigError(key, value, "give a value above 0")
        non_negative = {
            "margin_rad": self.margin_rad,
            "margin_cos": self.margin_cos,
            "sphere_lambda": self.sphere_lambda,
            "center_loss_weight": self.center_loss_weight,
            "pair_loss_weight": self.pair_loss_weight,
            "triplet_margin_dist": self.triplet_margin_dist,
            "contrastive_margin_dist": self.contrastive_margin_dist,
            "weight_decay": self.weight_decay,
            "warmup_epochs": self.warmup_epochs,
            "margin_warmup_epochs": self.margin_warmup_epochs,
            "workers": self.workers,
            "threads": self.threads,
            "projection_epochs": self.projection_epochs,
        }
        for key, value in non_negative.items():
            if value < 0:
                raise ConfigError(key, value, "give a value of 0 or more")
        if self.margin_rad >= 1.5:
            raise ConfigError(
                "margin_rad", self.margin_rad, "give an angle in radians below pi/2 (0.5 is usual)"
            )
        if self.margin_cos >= 1.0:
            raise ConfigError("margin_cos", self.margin_cos, "give a cosine margin below 1 (0.35 is usual)")
        if self.margin_mult < 1:
            raise ConfigError(
                "margin_mult", self.margin_mult, "give a whole multiplier of 1 or more (4 is usual)"
            )
        if not 0 < self.step_gamma <= 1:
            raise ConfigError("step_gamma", self.step_gamma, "give a factor in (0, 1]")
        if not 0 <= self.momentum < 1:
            raise ConfigError("momentum", self.momentum, "give a value in [0, 1)")
        if self.uses_pk_sampler and (self.identities_per_batch < 2 or self.images_per_identity < 2):
            raise ConfigError(
                "images_per_identity",
                (self.identities_per_batch, self.images_per_identity),
                "pair and triplet losses need at least 2 identities x 2 images per batch",
            )
        if self.head is HeadKind.NONE and self.pair_loss is PairLoss.NONE:
            raise ConfigError(
                "pair_loss", self.pair_loss.value, "with head = none choose contrastive or triplet"
            )
        if self.recipe is Recipe.VGGFACE:
            if self.head is HeadKind.NONE:
                raise ConfigError("head", self.head.value, "the vggface recipe starts with a classifier head")
            if self.projection_epochs < 1:
                raise ConfigError(
                    "projection_epochs", self.projection_epochs, "give 1 or more for the vggface recipe"
                )
            if self.identities_per_batch < 2 or self.images_per_identity < 2:
                raise ConfigError(
                    "images_per_identity",
                    (self.identities_per_batch, self.images_per_identity),
                    "the triplet phase needs at least 2 identities x 2 images per batch",
                )
