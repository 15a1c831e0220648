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
see :mod:`curate.train.recipe`).
"""

from __future__ import annotations

import json
import logging
import math
import os
import random
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.distributed as torch_dist
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from torch import nn

from curate.config import config_to_dict
from curate.errors import CurateError
from curate.train.backbones import build_net
from curate.train.config import Recipe, TrainConfig
from curate.train.data import MEAN, STD, FaceDataset, load_images, make_loader
from curate.train.export import (
    export_embedder,
    load_checkpoint,
    restore_rng_states,
    rng_states,
    save_checkpoint,
)
from curate.train.heads import MarginHead
from curate.train.losses import TrainingModel
from curate.train.monitor import ChanceMonitor
from curate.train.optim import lr_factor, make_optimizer
from curate.train.recipe import ProjectionPhase

logger = logging.getLogger(__name__)


@dataclass
class Runtime:
    """Where this process trains: device, precision, and its place among DDP processes."""

    device: torch.device
    dtype: torch.dtype | None  # autocast dtype, None for fp32
    rank: int = 0
    world_size: int = 1

    @property
    def main(self) -> bool:
        """Only rank 0 writes checkpoints, metrics and the export."""
        return self.rank == 0

    def autocast(self) -> torch.autocast:
        """Mixed precision for the forward pass (a no-op in fp32)."""
        return torch.autocast(
            self.device.type, dtype=self.dtype or torch.float32, enabled=self.dtype is not None
        )


@dataclass
class TrainResult:
    """What a call to :func:`train` left behind."""

    out: Path
    model_dir: Path | None  # None when the call stopped before the last epoch
    checkpoint: Path
    epochs_done: int
    last_metrics: dict[str, Any]


def setup_runtime(config: TrainConfig) -> Runtime:
    """Pick the device; join the process group when launched by torchrun."""
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    cuda = torch.cuda.is_available() and config.device != "cpu"
    if world_size > 1:
        if not torch_dist.is_initialized():
            torch_dist.init_process_group(backend="nccl" if cuda else "gloo")
        device = torch.device(f"cuda:{int(os.environ.get('LOCAL_RANK', '0'))}" if cuda else "cpu")
    else:
        device = torch.device(
            config.device if config.device not in ("auto",) else ("cuda" if cuda else "cpu")
        )
    if device.type == "cuda":
        torch.cuda.set_device(device)
    precision = (
        config.precision if config.precision != "auto" else ("bf16" if device.type == "cuda" else "fp32")
    )
    dtype = {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}[precision]
    return Runtime(device, dtype, rank, world_size)


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and torch (all devices)."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def _progress(enabled: bool) -> Progress:
    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[status]}"),
        TimeRemainingColumn(),
        disable=not enabled,
    )


class MetricsLog:
    """``metrics.jsonl``: one line per finished epoch; on resume, lines past the checkpoint are dropped."""

    def __init__(self, path: Path, enabled: bool) -> None:
        self.path, self.enabled = path, enabled

    def truncate(self, phase: str, epoch: int) -> None:
        """Keep the lines up to ``epoch`` of ``phase`` (and every earlier phase)."""
        if not (self.enabled and self.path.is_file()):
            return
        order = {"classify": 0, "projection": 1}
        kept = [
            line
            for line in self.path.read_text().splitlines()
            if line.strip()
            and (order[json.loads(line)["phase"]], json.loads(line)["epoch"]) <= (order[phase], epoch)
        ]
        self.path.write_text("".join(line + "\n" for line in kept))

    def write(self, record: dict[str, Any]) -> None:
        """Append one record."""
        if self.enabled:
            with open(self.path, "a") as handle:
                handle.write(json.dumps(record) + "\n")


class Trainer(ProjectionPhase):
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

    def state(self) -> dict[str, Any]:
        """The full training state (what a checkpoint holds)."""
        return {
            "model": self.net.state_dict(),
            "head": self.model.head.state_dict() if self.model.head is not None else None,
            "center": self.model.center.state_dict() if self.model.center is not None else None,
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "scaler": self.scaler.state_dict(),
            "rng": rng_states(),
            "phase": self.phase,
            "epoch": self.epoch,
            "step": self.step,
            "chance_strikes": self.monitor.strikes,
            "projection_dim": self.config.projection_dim if self.phase == "projection" else None,
            "config": config_to_dict(self.config),
            "classes": self.images.classes,
        }

    def save(self) -> None:
        """Write ``checkpoints/last.pt`` atomically (rank 0 only)."""
        if self.rt.main:
            save_checkpoint(self.state(), self.checkpoint_path)

    def resume(self) -> None:
        """Restore every piece of state from ``checkpoints/last.pt``."""
        state = load_checkpoint(self.checkpoint_path)
        if state["classes"] != self.images.classes:
            raise CurateError(f"{self.checkpoint_path} was trained on other identities; use a new --out")
        if state["phase"] == "projection":
            self._start_projection()
        self.net.load_state_dict(state["model"])
        for part in ("head", "center"):
            module = getattr(self.model, part)
            if (module is None) != (state[part] is None):
                raise CurateError(
                    f"{self.checkpoint_path} has another {part} than this config; use a new --out"
                )
            if module is not None:
                module.load_state_dict(state[part])
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        self.scaler.load_state_dict(state["scaler"])
        restore_rng_states(state["rng"])
        self.phase, self.epoch, self.step = state["phase"], state["epoch"], state["step"]
        self.monitor.strikes = int(state.get("chance_strikes", 0))
        self.metrics.truncate(self.phase, self.epoch)
        logger.info(
            "resumed %s at phase %s epoch %d step %d", self.checkpoint_path, self.phase, self.epoch, self.step
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
            (self.out / "config.json").write_text(json.dumps(config_to_dict(c), indent=2) + "\n")
        budget = stop_after if stop_after is not None else math.inf
        record: dict[str, Any] = {}
        with _progress(c.progress and self.rt.main) as progress:
            while budget > 0 and (self.phase == "classify" and self.epoch < c.epochs):
                record = self._classify_epoch(progress)
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

    def _maybe_save(self, epochs: int) -> None:
        if self.epoch % self.config.checkpoint_every == 0 or self.epoch == epochs:
            self.save()

    def _classify_epoch(self, progress: Progress) -> dict[str, Any]:
        c, rt = self.config, self.rt
        self.model.train()
        loader = self._loader(self.epoch)
        task = progress.add_task(f"epoch {self.epoch + 1}/{c.epochs}", total=len(loader), status="")
        sums: dict[str, torch.Tensor] = {}
        seen, start = 0, time.perf_counter()
        fmt = torch.channels_last if self.channels_last else torch.contiguous_format
        for images, labels in loader:
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
            if self.step % 10 == 0 or seen == len(labels):
                progress.update(task, status=progress_status(sums, seen))
            progress.update(task, advance=1)
        progress.remove_task(task)
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
            hits, total = _global_counts(float(sums["correct"]), seen, rt)
            self.monitor.check(self.epoch, hits / total, total, c.epochs)
        return record


def _global_counts(hits: float, seen: int, rt: Runtime) -> tuple[float, int]:
    """Top-1 hits and images over every DDP process (this process's own when training alone)."""
    if rt.world_size == 1:
        return hits, seen
    counts = torch.tensor([hits, float(seen)], device=rt.device)
    torch_dist.all_reduce(counts)
    return float(counts[0]), int(counts[1])


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
