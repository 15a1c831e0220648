"""Configs: typed, validated, and every error names the key, the value and the fix."""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from enum import Enum
from pathlib import Path

import pytest

from curate.config import build_config, config_to_dict
from curate.errors import ConfigError
from curate.pipeline import parse_pipeline, resolve_shards
from curate.settings import setting


class Mode(str, Enum):
    FAST = "fast"
    GOOD = "good"


@dataclass
class Example:
    source: Path
    count: int = 3
    ratio: float = 0.5
    mode: Mode = Mode.FAST
    tags: list[str] = field(default_factory=list)
    limit: int | None = None
    on: bool = False

    def validate(self) -> None:
        if not 0 < self.ratio <= 1:
            raise ConfigError("ratio", self.ratio, "give a ratio in (0, 1]")


def test_build_config_converts_types():
    config = build_config(
        Example, {"source": "a/b", "count": "4", "mode": "good", "tags": "x, y", "limit": 2, "on": "true"}
    )
    assert config == Example(Path("a/b"), 4, 0.5, Mode.GOOD, ["x", "y"], 2, True)
    assert config_to_dict(config)["mode"] == "good"


@pytest.mark.parametrize(
    ("values", "key", "fix"),
    [
        ({"source": "a", "cuont": 1}, "x.cuont", "unknown key; known keys: count"),
        ({}, "x.source", "required"),
        ({"source": "a", "count": "many"}, "x.count", "whole number"),
        ({"source": "a", "mode": "slow"}, "x.mode", "choose one of: fast, good"),
        ({"source": "a", "ratio": 2.0}, "x.ratio", "(0, 1]"),
        ({"source": "a", "on": "perhaps"}, "x.on", "true or false"),
    ],
)
def test_build_config_errors_name_key_value_and_fix(values, key, fix):
    with pytest.raises(ConfigError) as caught:
        build_config(Example, values, where="x.")
    assert caught.value.key == key
    assert fix in str(caught.value)
    assert "\n" not in str(caught.value)


def test_pipeline_rejects_unknown_keys_and_stage_tables():
    with pytest.raises(ConfigError, match="unknown pipeline key"):
        parse_pipeline({"stages": ["collect"], "colect": {}})
    with pytest.raises(ConfigError, match="stages"):
        parse_pipeline({"stages": []})
    with pytest.raises(ConfigError, match="unknown stage"):
        parse_pipeline({"stages": ["nope"]})


def test_shard_count_is_fixed_by_the_first_run(tmp_path):
    assert resolve_shards(tmp_path, 4) == 4
    assert resolve_shards(tmp_path, None) == 4
    with pytest.raises(ConfigError, match="started with 4 shards"):
        resolve_shards(tmp_path, 8)


@dataclass
class Ranged:
    bits: int = setting(4, help="bits", unit="bits", min=0, max=32)
    rate: float = setting(0.1, help="rate", min=0.0)
    folds: list[int] = setting([], help="folds", min=1)


@pytest.mark.parametrize(
    ("values", "key", "fix"),
    [
        ({"bits": 33}, "r.bits", "use a value from 0 to 32 bits"),
        ({"bits": -1}, "r.bits", "use a value from 0 to 32 bits"),
        ({"rate": -0.5}, "r.rate", "use a value of at least 0"),
        ({"folds": "1,0"}, "r.folds", "use a value of at least 1"),
    ],
)
def test_ranges_come_from_the_field_metadata(values, key, fix):
    with pytest.raises(ConfigError) as caught:
        build_config(Ranged, values, where="r.")
    assert caught.value.key == key and fix in str(caught.value) and "\n" not in str(caught.value)
    assert build_config(Ranged, {"bits": 32, "rate": 0.0, "folds": [1, 2]}).bits == 32  # bounds included


def test_every_setting_carries_help_and_choices_are_enums():
    from curate.commands.registry import all_configs

    for name, cls in all_configs().items():
        for item in fields(cls):
            assert item.metadata.get("help"), f"{name}.{item.name} has no help"
            low, high = item.metadata.get("min"), item.metadata.get("max")
            assert low is None or high is None or low <= high, f"{name}.{item.name}"


def test_light_config_registry_names_each_stage_config():
    from curate.stages import STAGES, config_class, stage_class

    for key in STAGES:
        assert stage_class(key).Config is config_class(key), key
