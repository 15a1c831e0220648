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
from curate.settings import setting

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


class Backbone(StrEnum):
    """The convolutional trunk under the embedding layer."""

    SMALL = "small"
    RESNET18 = "resnet18"
    RESNET34 = "resnet34"
    RESNET50 = "resnet50"


class Precision(StrEnum):
    """Arithmetic precision: auto is bf16 on CUDA, fp32 on a CPU."""

    AUTO = "auto"
    FP32 = "fp32"
    BF16 = "bf16"
    FP16 = "fp16"


@dataclass
class TrainConfig:
    """Everything ``curate train`` needs; ``validate()`` checks combinations up front."""

    out: Path = setting(
        Path("runs/train"),
        help="checkpoints, metrics.jsonl and the exported model (<out>/model); curate train: <workdir>/train",
    )
    workdir: Path | None = setting(None, help="read the curated manifest from this workdir (--workdir)")
    manifest_stage: str = setting(
        "dedup", help="manifest stage to train on (curate train: review once applied, else dedup)"
    )
    images: Path | None = setting(None, help="or train on a folder tree <images>/<identity>/**/<image>")
    backbone: Backbone = setting(Backbone.SMALL, help="the convolutional trunk")
    embedding_dim: int = setting(128, help="embedding size", min=1)
    input_size: int = setting(64, help="square input side (a multiple of 16)", unit="pixels", min=32)
    head: HeadKind = setting(
        HeadKind.SOFTMAX,
        help="classification head (softmax learns 25-250 identities in a few epochs: bench/results/train.md)",
    )
    scale: float = setting(32.0, help="logit scale of the margin heads", min=0.001)
    margin_rad: float = setting(0.5, help="ArcFace additive angle", unit="radians", min=0.0, max=1.5)
    margin_cos: float = setting(0.35, help="CosFace margin subtracted from the cosine", min=0.0, max=0.999)
    margin_mult: int = setting(4, help="SphereFace angle multiplier", min=1)
    sphere_lambda: float = setting(
        5.0, help="SphereFace blend weight of the plain cosine (stabilises training)", min=0.0
    )
    center_loss_weight: float = setting(0.0, help="weight of the centre loss (0 = off)", min=0.0)
    pair_loss: PairLoss = setting(PairLoss.NONE, help="pair or triplet loss on P x K batches")
    pair_loss_weight: float = setting(1.0, help="weight of the pair loss", min=0.0)
    mining: Mining = setting(Mining.SEMI_HARD, help="how the triplet loss picks negatives")
    triplet_margin_dist: float = setting(0.2, help="triplet margin", unit="distance", min=0.0)
    contrastive_margin_dist: float = setting(
        1.0, help="contrastive loss margin for negatives", unit="distance", min=0.0
    )
    recipe: Recipe = setting(
        Recipe.STANDARD, help="standard, or vggface: a classifier, then a triplet projection"
    )
    projection_dim: int = setting(64, help="vggface recipe: output size of the triplet projection", min=1)
    projection_epochs: int = setting(10, help="vggface recipe: epochs of the second phase", min=0)
    projection_lr: float = setting(0.01, help="vggface recipe: learning rate of the projection", min=1e-12)
    optimizer: Optimizer = setting(Optimizer.SGD, help="the optimiser for every trainable parameter")
    lr: float = setting(0.1, help="peak learning rate", min=1e-12)
    momentum: float = setting(0.9, help="SGD momentum", min=0.0, max=0.999)
    weight_decay: float = setting(5e-4, help="weight decay", min=0.0)
    schedule: Schedule = setting(Schedule.COSINE, help="learning-rate decay after the warm-up")
    warmup_epochs: float = setting(1.0, help="linear warm-up length", unit="epochs", min=0.0)
    margin_warmup_epochs: float = setting(
        2.0,
        help="margin heads: the margin grows linearly from 0 over this many epochs",
        unit="epochs",
        min=0.0,
    )
    stop_at_chance: bool = setting(
        True, help="stop when training accuracy is still at chance after the warm-ups"
    )
    step_every_epochs: int = setting(
        10, help="step schedule: multiply the rate by step_gamma this often", unit="epochs", min=1
    )
    step_gamma: float = setting(0.1, help="step schedule: the factor", min=1e-12, max=1.0)
    epochs: int = setting(10, help="training epochs", min=1)
    batch_size: int = setting(64, help="batch size without a pair loss (with one, P x K sets it)", min=1)
    identities_per_batch: int = setting(16, help="P: identities per batch with a pair loss", min=1)
    images_per_identity: int = setting(4, help="K: images per identity with a pair loss", min=1)
    augment: bool = setting(True, help="random flips, crops and colour jitter")
    loader_workers: int = setting(0, help="DataLoader worker processes (0 = load in the main process)", min=0)
    threads: int = setting(
        0, help="torch CPU threads (0 = torch's default; 1 is fastest on a busy machine)", min=0
    )
    seed: int = setting(0, help="random seed")
    device: str = setting("auto", help="auto, cpu, cuda or cuda:N")
    precision: Precision = setting(
        Precision.AUTO, help="auto (bf16 on CUDA, fp32 on a CPU), fp32, bf16 or fp16"
    )
    checkpoint_every: int = setting(1, help="epochs between full-state checkpoints", unit="epochs", min=1)
    resume: bool = setting(False, help="continue from <out>/checkpoints/last.pt")
    progress: bool = setting(True, help="show a progress bar")

    @property
    def uses_pk_sampler(self) -> bool:
        """Pair and triplet losses need several images of each identity in every batch."""
        return self.pair_loss is not PairLoss.NONE

    def validate(self) -> None:
        """Raise ConfigError naming the first bad key, its value and the fix (ranges: the metadata)."""
        if (self.workdir is None) == (self.images is None):
            raise ConfigError(
                "images", self.images, "give exactly one of --workdir (a manifest) or --images DIR"
            )
        if self.images is not None and not Path(self.images).is_dir():
            raise ConfigError("images", self.images, "give an existing folder of <identity>/<image> files")
        if not (self.device in ("auto", "cpu", "cuda") or self.device.startswith("cuda:")):
            raise ConfigError("device", self.device, "give auto, cpu, cuda or cuda:N")
        minimum = 32 if self.backbone is Backbone.SMALL else 64
        if self.input_size < minimum or self.input_size % 16:
            raise ConfigError("input_size", self.input_size, f"give a multiple of 16, at least {minimum}")
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
