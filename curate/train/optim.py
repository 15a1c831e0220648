"""Optimisers and learning-rate schedules: SGD or AdamW; linear warm-up, then cosine or step decay."""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from torch import nn

from curate.train.config import Optimizer, Schedule, TrainConfig


def lr_factor(
    config: TrainConfig, steps_per_epoch: int, epochs: int, warmup_epochs: float
) -> Callable[[int], float]:
    """Multiplier of the base rate at each optimiser step: linear warm-up, then cosine or step decay."""
    total = max(1, epochs * steps_per_epoch)
    warmup = min(total - 1, round(warmup_epochs * steps_per_epoch))

    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / (warmup + 1)
        if config.schedule is Schedule.COSINE:
            return 0.5 * (1.0 + math.cos(math.pi * (step - warmup) / max(1, total - warmup)))
        return config.step_gamma ** ((step - warmup) // (config.step_every_epochs * steps_per_epoch))

    return factor


def make_optimizer(config: TrainConfig, params: list[nn.Parameter], lr: float) -> torch.optim.Optimizer:
    """SGD with Nesterov-free momentum, or AdamW."""
    if config.optimizer is Optimizer.ADAMW:
        return torch.optim.AdamW(params, lr=lr, weight_decay=config.weight_decay)
    return torch.optim.SGD(params, lr=lr, momentum=config.momentum, weight_decay=config.weight_decay)
