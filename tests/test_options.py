"""One source for every setting: each Config field is an option of its command and a TOML key, same name.

The command line is parsed by the real click command that ``curate`` runs (``make_context``), and the
settings it yields go through the same ``build_config`` as a pipeline's TOML table; both configs must
agree, and differ from the default, for every field of every registered stage, train and evaluate.
"""

from __future__ import annotations

import dataclasses
import json
import tomllib
import typing
from enum import Enum
from pathlib import Path
from typing import Any

import pytest
import typer

from curate.cli import app
from curate.commands.options import flag
from curate.commands.registry import COMMAND, NOT_ON_COMMAND, all_configs
from curate.commands.train import toml_settings
from curate.config import build_config, config_to_dict
from curate.pipeline import build_stage, parse_pipeline
from curate.settings import default_of
from curate.stages import STAGES

SPECIAL: dict[str, Any] = {  # values that must name something real, or suit the other defaults
    "hashes": ["ahash"],
    "embedders": ["dlib"],
    "allowed_networks": ["127.0.0.0/8"],
    "confirm_conflicts_with": "handcrafted",
    "device": "cpu",
    "head": "arcface",
    "folds": [1, 2],
    "input_size": 96,
}


@pytest.fixture(scope="module")
def things(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("things")
    (root / "folder").mkdir()
    (root / "other").mkdir()
    (root / "urls.csv").write_text("identity,url\na,http://example.invalid/a.jpg\n")
    (root / "names.txt").write_text("a\n")
    (root / "candidates.parquet").write_bytes(b"")
    return root


def _required(name: str, things: Path) -> dict[str, Any]:
    return {
        "collect": {"source": things / "folder"},
        "download": {"source": things / "urls.csv"},
        "train": {"images": things / "folder"},
        "evaluate": {"model": "handcrafted", "pairs": things / "names.txt", "images": things / "folder"},
    }.get(name, {})


def _other_value(field: dataclasses.Field, annotation: Any, things: Path) -> Any:
    """A valid value other than the field's default."""
    if field.name in SPECIAL:
        return SPECIAL[field.name]
    default = default_of(field)
    kind = next((a for a in typing.get_args(annotation) if a is not type(None)), annotation)
    high = field.metadata.get("max")
    if kind is bool:
        return not default
    if isinstance(kind, type) and issubclass(kind, Enum):
        return next(member for member in kind if member != default).value
    if kind is int:
        return default - 1 if high is not None and default + 1 > high else default + 1
    if kind is float:
        if default is None:
            return 0.01
        return round(default - 0.01 if high is not None and default + 0.01 > high else default + 0.01, 6)
    if kind is Path:
        named = {"names_file": "names.txt", "candidates": "candidates.parquet"}
        return things / named.get(field.name, "other")
    assert kind is str, f"no test value for {field.name}: {annotation}"
    return (default if isinstance(default, str) and default else "x") + "-other"


def _toml(value: Any) -> str:
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, list):
        return "[" + ", ".join(_toml(item) for item in value) + "]"
    if isinstance(value, (int, float)):
        return repr(value)
    return json.dumps(str(value))


def _cli_words(field: dataclasses.Field, value: Any) -> list[str]:
    if isinstance(value, bool):
        return [flag(field.name) if value else "--no-" + field.name.replace("_", "-")]
    if isinstance(value, list):
        return [flag(field.name), ",".join(str(item) for item in value)]
    return [flag(field.name), str(value)]


def _from_cli(name: str, words: list[str], required: dict[str, Any]) -> dict[str, Any]:
    """Parse ``words`` with the real command and build its config from what the command receives."""
    command: Any = typer.main.get_command(app)
    for part in COMMAND.get(name, name).split():
        command = command.get_command(None, part)
    context = command.make_context(name, words)
    settings = command.callback.settings_of(dict(context.params))
    return config_to_dict(build_config(all_configs()[name], {**required, **settings}))


def _from_toml(name: str, table: dict[str, Any], tmp: Path) -> dict[str, Any]:
    """Build the config from TOML text: a pipeline's stage table, train's ``--config`` file."""
    text = f"[{name}]\n" + "".join(f"{key} = {_toml(value)}\n" for key, value in table.items())
    if name in STAGES:
        pipeline = parse_pipeline({"stages": [name], **tomllib.loads(text)}, base=tmp)
        return config_to_dict(build_stage(pipeline.stages[0]).config)
    if name == "evaluate":  # no TOML file of its own: the same keys, from TOML text
        return config_to_dict(build_config(all_configs()[name], tomllib.loads(text)[name]))
    path = tmp / "settings.toml"
    path.write_text(text)
    return config_to_dict(build_config(all_configs()[name], toml_settings(path)))


def _cases():
    for name, cls in all_configs().items():
        hints = typing.get_type_hints(cls)
        for field in dataclasses.fields(cls):
            if field.name in NOT_ON_COMMAND.get(name, {}):
                continue  # set another way, as docs/options.md says
            yield pytest.param(name, field, hints[field.name], id=f"{name}.{field.name}")


@pytest.mark.parametrize(("name", "field", "annotation"), list(_cases()))
def test_every_field_is_reachable_from_the_cli_and_toml(name, field, annotation, things, tmp_path):
    required = _required(name, things)
    if field.metadata.get("argument"):
        value, words = required[field.name], [str(required[field.name])]
    else:
        value = _other_value(field, annotation, things)
        positional = [str(v) for k, v in required.items() if k == "source"]
        words = positional + _cli_words(field, value)
    from_cli = _from_cli(name, words, required)
    from_toml = _from_toml(name, {**required, field.name: value}, tmp_path)
    assert from_cli == from_toml
    if not field.metadata.get("argument"):
        default = config_to_dict(build_config(all_configs()[name], required))
        assert from_cli[field.name] != default[field.name], f"{name}.{field.name} kept its default"
