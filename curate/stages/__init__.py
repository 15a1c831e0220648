"""The stage registry: a key per stage, resolved lazily so ``curate --help`` stays fast.

``STAGES`` names each stage's class, ``CONFIGS`` its ``Config`` in a light module (no heavy imports), so
commands and docs can be built from the configs without loading the stages.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

from curate.errors import ConfigError

if TYPE_CHECKING:
    from curate.stage import Stage

STAGES: dict[str, str] = {
    "collect": "curate.stages.ingest:IngestStage",
    "download": "curate.stages.download:DownloadStage",
    "exact": "curate.stages.exact:ExactStage",
    "faces": "curate.stages.faces:FacesStage",
    "select": "curate.stages.select:SelectStage",
    "describe": "curate.stages.describe:DescribeStage",
    "dedup": "curate.stages.dedup:DedupStage",
    "rank": "curate.stages.rank:RankStage",
    "review": "curate.stages.review:ReviewStage",
}

CONFIGS: dict[str, str] = {
    "collect": "curate.stages.ingest_config:IngestConfig",
    "download": "curate.stages.download_config:DownloadConfig",
    "exact": "curate.stages.exact_config:ExactConfig",
    "faces": "curate.stages.faces_config:FacesConfig",
    "select": "curate.stages.select_config:SelectConfig",
    "describe": "curate.stages.describe_config:DescribeConfig",
    "dedup": "curate.stages.dedup_config:DedupConfig",
    "rank": "curate.stages.rank_config:RankConfig",
    "review": "curate.stages.review_config:ReviewConfig",
}


def _load(spec: str) -> type:
    module_name, _, class_name = spec.partition(":")
    return getattr(importlib.import_module(module_name), class_name)


def _check(key: str) -> None:
    if key not in STAGES:
        raise ConfigError("stage", key, f"unknown stage; choose one of: {', '.join(STAGES)}")


def stage_class(key: str) -> type[Stage]:
    """The stage class registered under ``key``."""
    _check(key)
    return _load(STAGES[key])


def config_class(key: str) -> type:
    """The ``Config`` dataclass of the stage registered under ``key``, without importing the stage."""
    _check(key)
    return _load(CONFIGS[key])
