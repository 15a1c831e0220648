"""Metric-learning losses on a batch of embeddings: centre, contrastive and triplet with online mining.

Every loss works from the ``B x B`` distance matrix of the batch, so memory grows with the square of the
batch size. Semi-hard mining in particular never builds the ``B x B x B`` (anchor, positive, negative)
cube: each anchor's negative distances are sorted once and every positive looks its semi-hard negative up
with a binary search (``torch.searchsorted``).
"""

from __future__ import annotations

import logging

import torch
import torch.nn.functional as F
from torch import nn

from curate.train.config import Mining, PairLoss, TrainConfig
from curate.train.heads import MarginHead, build_head

logger = logging.getLogger(__name__)


def pairwise_distances(embeddings: torch.Tensor) -> torch.Tensor:
    """``B x B`` Euclidean distances (float32); a floor under the square root keeps gradients finite."""
    x = embeddings.float()
    squared = x.pow(2).sum(1)
    d2 = squared[:, None] + squared[None, :] - 2.0 * (x @ x.t())
    return torch.sqrt(d2.clamp_min(1e-12))


def _masks(labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(positive, negative) ``B x B`` masks; a sample is never its own positive."""
    same = labels[:, None] == labels[None, :]
    eye = torch.eye(len(labels), dtype=torch.bool, device=labels.device)
    return same & ~eye, ~same


class CenterLoss(nn.Module):
    """Centre loss (Wen et al., ECCV 2016): half the mean squared distance of features to their class centre.

    The centres are parameters updated by the same optimiser as the network.
    """

    def __init__(self, num_classes: int, embedding_dim: int) -> None:
        super().__init__()
        self.centers = nn.Parameter(torch.zeros(num_classes, embedding_dim))

    def forward(self, features: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """``0.5 * mean_i ||f_i - c_{y_i}||^2``."""
        return 0.5 * (features.float() - self.centers[labels]).pow(2).sum(1).mean()


class ContrastiveLoss(nn.Module):
    """Contrastive pair loss (Hadsell et al., 2006) over every pair in the batch.

    Positive pairs cost ``d^2``, negative pairs ``max(0, margin_dist - d)^2``; the two means are averaged so
    the many negatives of a P x K batch do not drown the few positives.
    """

    def __init__(self, margin_dist: float = 1.0) -> None:
        super().__init__()
        self.margin_dist = margin_dist

    def forward(self, embeddings: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """Scalar loss; zero contributions from a side that has no pairs."""
        d = pairwise_distances(embeddings)
        positive, negative = _masks(labels)
        terms = []
        if positive.any():
            terms.append(d[positive].pow(2).mean())
        if negative.any():
            terms.append(F.relu(self.margin_dist - d[negative]).pow(2).mean())
        return torch.stack(terms).mean() if terms else d.sum() * 0.0


class TripletLoss(nn.Module):
    """Triplet loss ``max(0, d(a,p) - d(a,n) + margin_dist)`` with online mining inside the batch.

    - ``batch_hard`` (Hermans et al., 2017): per anchor, its farthest positive and nearest negative; mean over
      anchors that have both.
    - ``semi_hard`` (Schroff et al., FaceNet 2015): per (anchor, positive) pair, the nearest negative farther
      than the positive; when none is, the farthest negative. Mean over every (anchor, positive) pair.
    """

    def __init__(self, margin_dist: float = 0.2, mining: Mining = Mining.SEMI_HARD) -> None:
        super().__init__()
        self.margin_dist = margin_dist
        self.mining = Mining(mining)

    def forward(self, embeddings: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """Scalar loss (0 when the batch holds no valid triplet)."""
        d = pairwise_distances(embeddings)
        positive, negative = _masks(labels)
        if self.mining is Mining.BATCH_HARD:
            return self._batch_hard(d, positive, negative)
        return self._semi_hard(d, positive, negative)

    def _batch_hard(self, d: torch.Tensor, positive: torch.Tensor, negative: torch.Tensor) -> torch.Tensor:
        hardest_positive = d.masked_fill(~positive, float("-inf")).amax(1)
        hardest_negative = d.masked_fill(~negative, float("inf")).amin(1)
        valid = positive.any(1) & negative.any(1)
        if not valid.any():
            return d.sum() * 0.0
        return F.relu(hardest_positive[valid] - hardest_negative[valid] + self.margin_dist).mean()

    def _semi_hard(self, d: torch.Tensor, positive: torch.Tensor, negative: torch.Tensor) -> torch.Tensor:
        negative_d, _ = d.masked_fill(~negative, float("inf")).sort(dim=1)  # per anchor, ascending, inf last
        n_negative = negative.sum(1, keepdim=True)
        # For every (a, p): index of the first negative distance strictly greater than d(a, p).
        first_farther = torch.searchsorted(negative_d.detach(), d.detach().contiguous(), right=True)
        farthest = (n_negative - 1).clamp_min(0).expand_as(first_farther)
        chosen = torch.where(first_farther < n_negative, first_farther, farthest)
        d_negative = negative_d.gather(1, chosen)
        valid = positive & (n_negative > 0)
        if not valid.any():
            return d.sum() * 0.0
        return F.relu(d[valid] - d_negative[valid] + self.margin_dist).mean()


class TrainingModel(nn.Module):
    """The network and its whole objective in one module (so DDP synchronises every gradient).

    Terms: the head's cross-entropy (on raw features; margin heads normalise them), ``center_loss_weight``
    times the centre loss (raw features) and ``pair_loss_weight`` times the pair/triplet loss (on
    L2-normalised embeddings).
    """

    def __init__(self, config: TrainConfig, net: nn.Module, num_classes: int) -> None:
        super().__init__()
        self.net = net
        self.head = build_head(config, num_classes)
        self.center = CenterLoss(num_classes, config.embedding_dim) if config.center_loss_weight > 0 else None
        self.center_weight = config.center_loss_weight
        self.pair_weight = config.pair_loss_weight
        self.pair: nn.Module | None = None
        if config.pair_loss is PairLoss.TRIPLET:
            self.pair = TripletLoss(config.triplet_margin_dist, config.mining)
        elif config.pair_loss is PairLoss.CONTRASTIVE:
            self.pair = ContrastiveLoss(config.contrastive_margin_dist)

    def forward(self, images: torch.Tensor, labels: torch.Tensor) -> dict[str, torch.Tensor]:
        """Named loss terms ``*_loss`` (already weighted) and ``correct`` (top-1 hits without margin)."""
        features = self.net.backbone(images)
        out: dict[str, torch.Tensor] = {}
        if self.head is not None:
            logits = self.head(features, labels)
            out["head_loss"] = F.cross_entropy(logits.float(), labels)
            with torch.no_grad():  # top-1 without the margin: the margin only handicaps the target class
                plain = self.head(features) if isinstance(self.head, MarginHead) else logits
                out["correct"] = (plain.argmax(1) == labels).sum()
        if self.center is not None:
            out["center_loss"] = self.center_weight * self.center(features, labels)
        if self.pair is not None:
            out["pair_loss"] = self.pair_weight * self.pair(F.normalize(features.float(), dim=1), labels)
        return out
