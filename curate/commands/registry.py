"""Every config a command is built from: the registered stages', train's and evaluate's."""

from __future__ import annotations

from curate.stages import STAGES, config_class


def all_configs() -> dict[str, type]:
    """Command name -> its Config class, stages first in registry order, then train and evaluate."""
    from curate.evaluate_config import EvaluateConfig
    from curate.train.config import TrainConfig

    configs = {key: config_class(key) for key in STAGES}
    return {**configs, "train": TrainConfig, "evaluate": EvaluateConfig}
