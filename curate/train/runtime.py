"""Where a training process runs: device, precision, its rank among DDP processes, and seeding.

Launched by ``torchrun`` (``WORLD_SIZE`` > 1 in the environment) each process joins the process group and
trains on its own GPU; :func:`global_counts` sums figures over the processes so all take the same
decisions.
"""

from __future__ import annotations

import os
import random
from dataclasses import dataclass

import numpy as np
import torch
import torch.distributed as torch_dist

from curate.train.config import TrainConfig


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


def global_counts(hits: float, seen: int, rt: Runtime) -> tuple[float, int]:
    """Top-1 hits and images over every DDP process (this process's own when training alone)."""
    if rt.world_size == 1:
        return hits, seen
    counts = torch.tensor([hits, float(seen)], device=rt.device)
    torch_dist.all_reduce(counts)
    return float(counts[0]), int(counts[1])
