"""Classification heads that own the class centres, with the margin as a plug-in.

A margin function maps the cosine between a feature and its own class centre to a smaller "target" cosine,
so the network must pull features closer than plain softmax would. Non-target cosines are left unchanged.

- :class:`ArcMargin` (ArcFace, Deng et al. 2019): ``cos(theta + margin_rad)``.
- :class:`CosMargin` (CosFace, Wang et al. 2018): ``cos(theta) - margin_cos``.
- :class:`SphereMargin` (SphereFace, Liu et al. 2017): ``psi(theta) = (-1)^k cos(m theta) - 2k`` for
  ``theta`` in ``[k pi/m, (k+1) pi/m]``, blended with ``cos(theta)`` by ``sphere_lambda`` as in the paper.
"""

from __future__ import annotations

import logging
import math

import torch
import torch.nn.functional as F
from torch import nn

from curate.train.config import HeadKind, TrainConfig

logger = logging.getLogger(__name__)


class ArcMargin(nn.Module):
    """Additive angular margin; past ``theta = pi - m`` it goes on linearly so the target stays monotonic."""

    def __init__(self, margin_rad: float) -> None:
        super().__init__()
        self.margin_rad = margin_rad
        self.cos_m = math.cos(margin_rad)
        self.sin_m = math.sin(margin_rad)
        self.threshold = math.cos(math.pi - margin_rad)
        self.linear_drop = math.sin(math.pi - margin_rad) * margin_rad

    def forward(self, cos_target: torch.Tensor) -> torch.Tensor:
        """``cos(theta + m)`` where ``theta + m <= pi``, else ``cos(theta) - m sin(m)``."""
        sin_target = torch.sqrt((1.0 - cos_target * cos_target).clamp_min(1e-9))
        shifted = cos_target * self.cos_m - sin_target * self.sin_m
        return torch.where(cos_target > self.threshold, shifted, cos_target - self.linear_drop)


class CosMargin(nn.Module):
    """Additive cosine margin."""

    def __init__(self, margin_cos: float) -> None:
        super().__init__()
        self.margin_cos = margin_cos

    def forward(self, cos_target: torch.Tensor) -> torch.Tensor:
        """``cos(theta) - m``."""
        return cos_target - self.margin_cos


class SphereMargin(nn.Module):
    """Multiplicative angular margin ``psi(theta)``, blended: ``(lambda cos(theta) + psi) / (1 + lambda)``."""

    def __init__(self, margin_mult: int, sphere_lambda: float = 0.0) -> None:
        super().__init__()
        self.margin_mult = margin_mult
        self.sphere_lambda = sphere_lambda

    def forward(self, cos_target: torch.Tensor) -> torch.Tensor:
        """The monotonic extension of ``cos(m theta)`` over ``[0, pi]``."""
        theta = torch.acos(cos_target.clamp(-1.0 + 1e-7, 1.0 - 1e-7))
        k = torch.floor(self.margin_mult * theta / math.pi).detach()
        sign = 1.0 - 2.0 * torch.remainder(k, 2.0)
        psi = sign * torch.cos(self.margin_mult * theta) - 2.0 * k
        return (self.sphere_lambda * cos_target + psi) / (1.0 + self.sphere_lambda)


class MarginHead(nn.Module):
    """Class centres ``W`` (``C x D``); logits ``scale * cos``, the target cosine through ``margin``."""

    def __init__(self, num_classes: int, embedding_dim: int, scale: float, margin: nn.Module) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.empty(num_classes, embedding_dim))
        nn.init.normal_(self.weight, std=0.01)
        self.scale = scale
        self.margin = margin
        self.strength = 1.0  # share of the margin applied (the trainer ramps it up during margin warm-up)

    def cosines(self, features: torch.Tensor) -> torch.Tensor:
        """``N x C`` cosines between features and class centres (float32 even under autocast)."""
        with torch.autocast(device_type=features.device.type, enabled=False):
            return F.normalize(features.float(), dim=1) @ F.normalize(self.weight.float(), dim=1).t()

    def forward(self, features: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        """Scaled logits; with ``labels`` the margin is applied to each row's own class."""
        cos = self.cosines(features)
        if labels is None:
            return cos * self.scale
        index = labels.view(-1, 1)
        plain = cos.gather(1, index)
        target = plain + self.strength * (self.margin(plain) - plain)
        return cos.scatter(1, index, target) * self.scale


class SoftmaxHead(nn.Module):
    """Plain linear classifier on the raw features (the softmax baseline; VGG-Face's first phase)."""

    def __init__(self, num_classes: int, embedding_dim: int) -> None:
        super().__init__()
        self.linear = nn.Linear(embedding_dim, num_classes)

    def forward(self, features: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        """Logits; ``labels`` are accepted for a uniform head interface and ignored."""
        del labels
        return self.linear(features.float())


def build_head(config: TrainConfig, num_classes: int) -> nn.Module | None:
    """The head the config asks for, or ``None`` for ``head = none``."""
    dim = config.embedding_dim
    if config.head is HeadKind.NONE:
        return None
    if config.head is HeadKind.SOFTMAX:
        return SoftmaxHead(num_classes, dim)
    margin: nn.Module
    if config.head is HeadKind.ARCFACE:
        margin = ArcMargin(config.margin_rad)
    elif config.head is HeadKind.COSFACE:
        margin = CosMargin(config.margin_cos)
    else:
        margin = SphereMargin(config.margin_mult, config.sphere_lambda)
    return MarginHead(num_classes, dim, config.scale, margin)
