"""The second phase of the VGG-Face recipe (Parkhi et al. 2015): a triplet-loss projection on frozen features.

After the classifier phase, the network is frozen; its L2-normalised features of every training image are
computed once, and a linear projection (``embedding_dim`` -> ``projection_dim``) is learnt on them with online
triplet mining over P x K batches. :class:`ProjectionPhase` is mixed into :class:`~curate.train.loop.Trainer`,
whose state (model, optimiser, scheduler, metrics, runtime) it uses.
"""

from __future__ import annotations

import logging
import time
from typing import Any

import torch
import torch.distributed as torch_dist
import torch.nn.functional as F
from torch import nn

from curate.train.data import PKBatchSampler
from curate.train.losses import TripletLoss
from curate.train.optim import lr_factor, make_optimizer

logger = logging.getLogger(__name__)


class ProjectionPhase:
    """Phase 2 of the ``vggface`` recipe, as methods of the trainer."""

    def _start_projection(self) -> None:
        """Phase 2 of the vggface recipe: freeze the network, add the projection, new optimiser."""
        c = self.config
        for parameter in self.model.parameters():
            parameter.requires_grad_(False)
        projection = nn.Linear(c.embedding_dim, c.projection_dim, bias=False)
        nn.init.orthogonal_(projection.weight)
        self.net.projection = projection.to(self.rt.device)
        self.triplet = TripletLoss(c.triplet_margin_dist, c.mining)
        self.optimizer = make_optimizer(c, list(projection.parameters()), c.projection_lr)
        steps = max(1, len(self.images.paths) // (c.identities_per_batch * c.images_per_identity))
        factor = lr_factor(c, steps // self.rt.world_size or 1, c.projection_epochs, 0.0)
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(self.optimizer, factor)
        self.phase, self.epoch = "projection", 0

    @torch.no_grad()
    def _frozen_features(self) -> torch.Tensor:
        """L2-normalised backbone features of every training image, un-augmented (computed once)."""
        if self.features is None:
            self.net.eval()
            parts = []
            for start in range(0, len(self.dataset), 256):
                raw = torch.stack(
                    [self.dataset.raw(i) for i in range(start, min(start + 256, len(self.dataset)))]
                )
                images = (raw.float() / 255.0 - self.mean) / self.std
                with self.rt.autocast():
                    parts.append(F.normalize(self.net.backbone(images.to(self.rt.device)).float(), dim=1))
            self.features = torch.cat(parts)
        return self.features

    def _projection_epoch(self) -> dict[str, Any]:
        c, rt = self.config, self.rt
        features, labels = self._frozen_features(), torch.tensor(self.images.labels, device=rt.device)
        p, k = c.identities_per_batch, c.images_per_identity
        sampler = PKBatchSampler(self.images.labels, p, k, c.seed + 1, rt.rank, rt.world_size)
        sampler.set_epoch(self.epoch)
        total, batches, start = 0.0, 0, time.perf_counter()
        projection = self.net.projection
        for batch in sampler:
            index = torch.tensor(batch, device=rt.device)
            loss = self.triplet(F.normalize(projection(features[index]), dim=1), labels[index])
            self.optimizer.zero_grad(set_to_none=True)
            loss.backward()
            if rt.world_size > 1:
                for parameter in projection.parameters():
                    torch_dist.all_reduce(parameter.grad)
                    parameter.grad /= rt.world_size
            self.optimizer.step()
            self.scheduler.step()
            self.step += 1
            total, batches = total + loss.item(), batches + 1
        self.epoch += 1
        record = {
            "phase": self.phase,
            "epoch": self.epoch,
            "step": self.step,
            "triplet_loss": round(total / max(1, batches), 5),
        }
        record.update(lr=self.optimizer.param_groups[0]["lr"], seconds=round(time.perf_counter() - start, 2))
        self.metrics.write(record)
        logger.info("projection epoch %d/%d: %s", self.epoch, c.projection_epochs, record)
        return record
