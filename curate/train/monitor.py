"""Is the run learning? Training accuracy against chance, checked after the warm-up.

A classifier that has not left chance once the learning-rate and margin warm-ups are over will rarely
recover (a margin too large for the data, a rate too high, or labels that carry no signal). The monitor
warns at the first such epoch and stops the run at the second in a row with one line naming the fixes,
rather than letting it train to the end and export a model that has learnt nothing.
"""

from __future__ import annotations

import logging
import math
from collections import Counter
from collections.abc import Sequence

from curate.errors import CurateError

logger = logging.getLogger(__name__)

PATIENCE = 2  # consecutive post-warm-up epochs at chance before the run stops
SIGMAS = 3.0  # "at chance": not this many binomial standard deviations above the chance rate


def chance_rate(labels: Sequence[int]) -> float:
    """Top-1 accuracy of always guessing the most common class."""
    if not labels:
        return 0.0
    return max(Counter(labels).values()) / len(labels)


def at_chance(accuracy: float, chance: float, seen: int) -> bool:
    """True when ``accuracy`` over ``seen`` images is not clearly above ``chance``."""
    spread = math.sqrt(max(chance * (1.0 - chance), 1e-12) / max(seen, 1))
    return accuracy <= chance + SIGMAS * spread


class ChanceMonitor:
    """Counts post-warm-up epochs whose training accuracy stays at chance; warns, then stops the run."""

    def __init__(self, labels: Sequence[int], warmup_epochs: float, enabled: bool = True) -> None:
        self.chance = chance_rate(labels)
        self.first_checked = math.ceil(warmup_epochs) + 1  # the first epoch that starts after the warm-up
        self.enabled = enabled
        self.strikes = 0

    def check(self, epoch: int, accuracy: float | None, seen: int, last_epoch: int) -> None:
        """Called after each finished epoch (1-based); raises CurateError on the second strike in a row."""
        if not self.enabled or accuracy is None or epoch < self.first_checked:
            return
        if not at_chance(accuracy, self.chance, seen):
            self.strikes = 0
            return
        self.strikes += 1
        what = f"training accuracy {accuracy:.4f} is at chance ({self.chance:.4f}) after the warm-up"
        if self.strikes < PATIENCE:
            if epoch < last_epoch:
                logger.warning("epoch %d: %s; stopping if the next epoch is no better", epoch, what)
            else:
                logger.warning("epoch %d: %s; the exported model has learnt nothing", epoch, what)
            return
        raise CurateError(
            f"{what} for {self.strikes} epochs: the model is not learning; check the labels, "
            "lower --lr, raise --warmup-epochs/--margin-warmup-epochs or try --head softmax"
        )
