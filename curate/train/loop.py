"""The training run: optimiser, warm-up + cosine/step schedule, full-state checkpoints, resume, metrics.

Layout of ``config.out``::

    checkpoints/last.pt   full state after the last finished epoch (model, head, centres, optimiser,
                          scheduler, grad scaler, every RNG, phase/epoch/step, config, class list)
    metrics.jsonl         one JSON line per epoch
    config.json           the resolved config
    model/                the exported embedder (see :mod:`curate.train.export`)

On CUDA the forward pass runs under bf16 autocast with channels_last tensors. Launched by ``torchrun``
(``WORLD_SIZE`` > 1 in the environment) every process trains a DistributedDataParallel replica on its own
GPU and its share of the batches; only rank 0 writes files. With the ``vggface`` recipe a second phase
learns a triplet-loss projection on the frozen, L2-normalised features of the first (Parkhi et al. 2015;
see :mod:`curate.train.recipe`). Device and DDP set-up: :mod:`curate.train.runtime`; checkpoints, resume
and the metrics log: :mod:`curate.train.resume`.
"""

from __future__ import annotations

import json
import logging
import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from curate.config import config_to_dict
from curate.progress import Bars
from curate.storage import atomic_write_text
from curate.train.backbones import build_net
from curate.train.config import Recipe, TrainConfig
from curate.train.data import MEAN, STD, FaceDataset, load_images, make_loader
from curate.train.export import export_embedder
from curate.train.heads import MarginHead
from curate.train.losses import TrainingModel
from curate.train.monitor import ChanceMonitor
from curate.train.optim import lr_factor, make_optimizer
from curate.train.recipe import ProjectionPhase
from curate.train.resume import Checkpointing, MetricsLog
from curate.train.runtime import global_counts, seed_everything, setup_runtime

logger = logging.getLogger(__name__)


@dataclass
class TrainResult:
    """What a call to :func:`train` left behind."""

    out: Path
    model_dir: Path | None  # None when the call stopped before the last epoch
    checkpoint: Path
    epochs_done: int
    last_metrics: dict[str, Any]


class Trainer(Checkpointing, ProjectionPhase):
    """One training run: builds everything from the config, then :meth:`run` trains, checkpoints, exports."""

    def __init__(self, config: TrainConfig) -> None:
        self.config = config
        self.rt = setup_runtime(config)
        self.out = Path(config.out)
        self.checkpoint_path = self.out / "checkpoints" / "last.pt"
        if config.threads:
            torch.set_num_threads(config.threads)
        seed_everything(config.seed + self.rt.rank)
        self.images = load_images(config.images, config.workdir, config.manifest_stage)
        self.dataset = FaceDataset(self.images, config.input_size, config.augment)
        self.net = build_net(config.backbone, config.embedding_dim, config.input_size)
        self.model = TrainingModel(config, self.net, len(self.images.classes)).to(self.rt.device)
        self.channels_last = self.rt.device.type == "cuda"
        if self.channels_last:
            self.model = self.model.to(memory_format=torch.channels_last)
        self.ddp: nn.Module = self.model
        if self.rt.world_size > 1:
            ids = [self.rt.device.index] if self.rt.device.type == "cuda" else None
            self.ddp = nn.parallel.DistributedDataParallel(self.model, device_ids=ids)
        self.pk = (
            (config.identities_per_batch, config.images_per_identity) if config.uses_pk_sampler else None
        )
        self.steps_per_epoch = len(self._loader(0))
        self.optimizer = make_optimizer(config, list(self.model.parameters()), config.lr)
        factor = lr_factor(config, self.steps_per_epoch, config.epochs, config.warmup_epochs)
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(self.optimizer, factor)
        self.scaler = torch.amp.GradScaler(self.rt.device.type, enabled=self.rt.dtype is torch.float16)
        self.metrics = MetricsLog(self.out / "metrics.jsonl", self.rt.main)
        self.phase, self.epoch, self.step = "classify", 0, 0
        self.features: torch.Tensor | None = None  # frozen features for the projection phase
        warmup = max(config.warmup_epochs, config.margin_warmup_epochs if self._margin_head() else 0.0)
        self.monitor = ChanceMonitor(self.images.labels, warmup, config.stop_at_chance)
        self.mean, self.std = torch.tensor(MEAN).view(1, 3, 1, 1), torch.tensor(STD).view(1, 3, 1, 1)

    def _margin_head(self) -> MarginHead | None:
        head = self.model.head
        return head if isinstance(head, MarginHead) else None

    def _ramp_margin(self) -> None:
        """Margin warm-up: the share of the margin grows linearly to 1 over ``margin_warmup_epochs``."""
        head = self._margin_head()
        if head is not None:
            ramp = self.config.margin_warmup_epochs * self.steps_per_epoch
            head.strength = 1.0 if ramp <= 0 else min(1.0, (self.step + 1) / ramp)

    def _loader(self, epoch: int) -> Any:
        c = self.config
        return make_loader(
            self.dataset,
            self.pk,
            c.batch_size,
            c.loader_workers,
            c.seed,
            epoch,
            self.rt.rank,
            self.rt.world_size,
        )

    def run(self, stop_after: int | None = None) -> TrainResult:
        """Train (resuming if asked), checkpoint every ``checkpoint_every`` epochs, export at the end."""
        c = self.config
        if c.resume and self.checkpoint_path.is_file():
            self.resume()
        elif c.resume:
            logger.warning("--resume: no checkpoint at %s, starting from scratch", self.checkpoint_path)
        elif self.rt.main:
            self.metrics.truncate("classify", 0)
        if self.rt.main:
            self.out.mkdir(parents=True, exist_ok=True)
            atomic_write_text(self.out / "config.json", json.dumps(config_to_dict(c), indent=2) + "\n")
        budget = stop_after if stop_after is not None else math.inf
        record: dict[str, Any] = {}
        with Bars(status=True, eta=True, enabled=c.progress and self.rt.main) as bars:
            while budget > 0 and (self.phase == "classify" and self.epoch < c.epochs):
                record = self._classify_epoch(bars)
                budget -= 1
                self._maybe_save(c.epochs)
            if c.recipe is Recipe.VGGFACE and self.phase == "classify" and budget > 0:
                self._start_projection()
            while budget > 0 and self.phase == "projection" and self.epoch < c.projection_epochs:
                record = self._projection_epoch()
                budget -= 1
                self._maybe_save(c.projection_epochs)
        if c.recipe is Recipe.VGGFACE:
            finished = self.phase == "projection" and self.epoch >= c.projection_epochs
        else:
            finished = self.epoch >= c.epochs
        model_dir = None
        if finished and self.rt.main:
            model_dir = export_embedder(self.net, self.out / "model", c.input_size)
        return TrainResult(self.out, model_dir, self.checkpoint_path, self.epoch, record)

    def _classify_epoch(self, bars: Bars) -> dict[str, Any]:
        c, rt = self.config, self.rt
        self.model.train()
        loader = self._loader(self.epoch)
        bar = f"epoch {self.epoch + 1}/{c.epochs}"
        bars.update(bar, 0, len(loader), status="")
        sums: dict[str, torch.Tensor] = {}
        seen, start = 0, time.perf_counter()
        fmt = torch.channels_last if self.channels_last else torch.contiguous_format
        for batch, (images, labels) in enumerate(loader, 1):
            images = images.to(rt.device, non_blocking=True, memory_format=fmt)
            labels = labels.to(rt.device, non_blocking=True)
            self._ramp_margin()
            with rt.autocast():
                out = self.ddp(images, labels)
            loss = sum(value for key, value in out.items() if key.endswith("_loss"))
            self.optimizer.zero_grad(set_to_none=True)
            self.scaler.scale(loss).backward()
            self.scaler.step(self.optimizer)
            self.scaler.update()
            self.scheduler.step()
            self.step += 1
            seen += len(labels)
            for key, value in {**out, "loss": loss}.items():
                sums[key] = sums.get(key, 0.0) + value.detach() * (1 if key == "correct" else len(labels))
            shown = self.step % 10 == 0 or batch in (1, len(loader))  # reading the figures waits for the GPU
            bars.advance(bar, 1, status=progress_status(sums, seen) if shown else None)
        bars.close(bar)
        self.epoch += 1
        record = {"phase": self.phase, "epoch": self.epoch, "step": self.step}
        record.update({k: round(float(v) / seen, 5) for k, v in sums.items() if k != "correct"})
        if "correct" in sums:
            record["train_acc"] = round(float(sums["correct"]) / seen, 5)
        seconds = time.perf_counter() - start
        record.update(lr=self.optimizer.param_groups[0]["lr"], seconds=round(seconds, 2))
        record["images_per_s"] = round(seen * rt.world_size / seconds, 1)
        self.metrics.write(record)
        logger.info("epoch %d/%d: %s", self.epoch, c.epochs, record)
        if "correct" in sums:  # every process must take the same stop decision
            hits, total = global_counts(float(sums["correct"]), seen, rt)
            self.monitor.check(self.epoch, hits / total, total, c.epochs)
        return record


def progress_status(sums: dict[str, Any], seen: int) -> str:
    """The progress bar's running figures: mean loss and (with a head) training accuracy so far."""
    text = f"loss {float(sums['loss']) / seen:.3f}"
    if "correct" in sums:
        text += f" acc {float(sums['correct']) / seen:.3f}"
    return text


def train(config: TrainConfig, stop_after: int | None = None) -> TrainResult:
    """Train as ``config`` says; ``stop_after`` ends this call after that many epochs (``resume`` continues).

    Returns where the checkpoint, the metrics and (once every epoch is done) the exported model are.
    """
    return Trainer(config).run(stop_after)
