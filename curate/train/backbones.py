"""Embedding networks: a small CPU-friendly CNN and IR-ResNets for 112x112 faces.

Every backbone maps ``N x 3 x S x S`` images to ``N x D`` raw (un-normalised) embeddings; the margin heads
and :class:`EmbeddingNet` normalise them. Raw features stay available for softmax and centre loss.
"""

from __future__ import annotations

import logging

import torch
import torch.nn.functional as F
from torch import nn

logger = logging.getLogger(__name__)

RESNET_LAYERS: dict[str, tuple[int, int, int, int]] = {
    "resnet18": (2, 2, 2, 2),
    "resnet34": (3, 4, 6, 3),
    "resnet50": (3, 4, 14, 3),
}


def _conv_bn(cin: int, cout: int, stride: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, 3, stride, 1, bias=False), nn.BatchNorm2d(cout), nn.PReLU(cout))


def _embedding_layer(channels: int, spatial: int, embedding_dim: int, dropout: float) -> nn.Sequential:
    """BN -> dropout -> flatten -> linear -> BN: the "output layer E" of ArcFace-style face networks."""
    return nn.Sequential(
        nn.BatchNorm2d(channels),
        nn.Dropout(dropout),
        nn.Flatten(),
        nn.Linear(channels * spatial * spatial, embedding_dim, bias=False),
        nn.BatchNorm1d(embedding_dim),
    )


class SmallNet(nn.Module):
    """Four stride-2 stages of two 3x3 convolutions (32-64-128-256 channels): trains on a CPU in minutes."""

    def __init__(self, embedding_dim: int = 128, input_size: int = 64, width: int = 32) -> None:
        super().__init__()
        channels = [width, width * 2, width * 4, width * 8]
        layers: list[nn.Module] = []
        cin = 3
        for cout in channels:
            layers += [_conv_bn(cin, cout, 2), _conv_bn(cout, cout, 1)]
            cin = cout
        self.features = nn.Sequential(*layers)
        self.embedding = _embedding_layer(cin, input_size // 16, embedding_dim, dropout=0.0)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Raw embeddings ``N x D``."""
        return self.embedding(self.features(x))


class IRBlock(nn.Module):
    """Improved residual unit (BN-conv-BN-PReLU-conv-BN) of Deng et al.'s IR-ResNets."""

    def __init__(self, cin: int, cout: int, stride: int) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.BatchNorm2d(cin),
            nn.Conv2d(cin, cout, 3, 1, 1, bias=False),
            nn.BatchNorm2d(cout),
            nn.PReLU(cout),
            nn.Conv2d(cout, cout, 3, stride, 1, bias=False),
            nn.BatchNorm2d(cout),
        )
        self.shortcut: nn.Module = nn.Identity()
        if stride != 1 or cin != cout:
            self.shortcut = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Residual sum of the body and the (projected) input."""
        return self.body(x) + self.shortcut(x)


class IRResNet(nn.Module):
    """IR-ResNet for 112x112 aligned faces: 3x3 stem at full resolution, four stride-2 stages -> 7x7."""

    def __init__(
        self, layers: tuple[int, int, int, int], embedding_dim: int = 512, input_size: int = 112
    ) -> None:
        super().__init__()
        widths = (64, 128, 256, 512)
        self.stem = _conv_bn(3, widths[0], 1)
        stages: list[nn.Module] = []
        cin = widths[0]
        for width, depth in zip(widths, layers, strict=True):
            blocks = [IRBlock(cin, width, 2)] + [IRBlock(width, width, 1) for _ in range(depth - 1)]
            stages.append(nn.Sequential(*blocks))
            cin = width
        self.stages = nn.Sequential(*stages)
        self.embedding = _embedding_layer(cin, input_size // 16, embedding_dim, dropout=0.0)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Raw embeddings ``N x D``."""
        return self.embedding(self.stages(self.stem(x)))


def build_backbone(name: str, embedding_dim: int, input_size: int) -> nn.Module:
    """``small`` or ``resnet18|34|50`` producing ``embedding_dim`` features for ``input_size`` squares."""
    if name == "small":
        return SmallNet(embedding_dim, input_size)
    if name in RESNET_LAYERS:
        return IRResNet(RESNET_LAYERS[name], embedding_dim, input_size)
    raise ValueError(f"unknown backbone {name!r}; choose small or one of {sorted(RESNET_LAYERS)}")


class EmbeddingNet(nn.Module):
    """A backbone, optionally followed by a linear projection, with an L2-normalised output.

    This is the module that is exported: input ``N x 3 x H x W`` normalised images, output ``N x D``.
    """

    def __init__(self, backbone: nn.Module, projection: nn.Module | None = None) -> None:
        super().__init__()
        self.backbone = backbone
        self.projection = projection if projection is not None else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Unit-length embeddings."""
        features = F.normalize(self.backbone(x).float(), dim=1)
        return F.normalize(self.projection(features), dim=1)


def build_net(
    backbone: str, embedding_dim: int, input_size: int, projection_dim: int | None = None
) -> EmbeddingNet:
    """The exportable network; ``projection_dim`` adds the bias-free linear projection (vggface recipe)."""
    projection = None if projection_dim is None else nn.Linear(embedding_dim, projection_dim, bias=False)
    return EmbeddingNet(build_backbone(backbone, embedding_dim, input_size), projection)
