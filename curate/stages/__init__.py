"""The stage registry: a key per stage, resolved lazily so ``curate --help`` stays fast."""

from __future__ import annotations

import importlib

from curate.errors import ConfigError
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


def stage_class(key: str) -> type[Stage]:
    """The stage class registered under ``key``."""
    if key not in STAGES:
        raise ConfigError("stage", key, f"unknown stage; choose one of: {', '.join(STAGES)}")
    module_name, _, class_name = STAGES[key].partition(":")
    return getattr(importlib.import_module(module_name), class_name)
