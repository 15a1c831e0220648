"""Full-state checkpoints of a training run, resuming from them, and the metrics log kept in step.

``checkpoints/last.pt`` holds everything a resumed run needs to continue exactly (see
:mod:`curate.train.export` for the file); ``metrics.jsonl`` drops the lines of epochs the checkpoint does
not cover, so a resumed run's log reads as if it had never stopped.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

from curate.config import config_to_dict
from curate.errors import CurateError
from curate.storage import atomic_write_text
from curate.train.export import load_checkpoint, restore_rng_states, rng_states, save_checkpoint

logger = logging.getLogger(__name__)


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
        atomic_write_text(self.path, "".join(line + "\n" for line in kept))

    def write(self, record: dict[str, Any]) -> None:
        """Append one record."""
        if self.enabled:
            with open(self.path, "a") as handle:
                handle.write(json.dumps(record) + "\n")


class Checkpointing:
    """Mixed into :class:`~curate.train.loop.Trainer`: its state as a checkpoint, and back.

    ``resume`` starts the projection phase (``ProjectionPhase._start_projection``) when the checkpoint
    was taken in it.
    """

    # set by the Trainer
    config: Any
    rt: Any
    net: Any
    model: Any
    optimizer: Any
    scheduler: Any
    scaler: Any
    monitor: Any
    images: Any
    metrics: MetricsLog
    checkpoint_path: Path
    phase: str
    epoch: int
    step: int

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

    def _maybe_save(self, epochs: int) -> None:
        if self.epoch % self.config.checkpoint_every == 0 or self.epoch == epochs:
            self.save()
