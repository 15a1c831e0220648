"""Every config a command is built from (the registered stages', train's, evaluate's) and the option
reference generated from them (``docs/options.md``)."""

from __future__ import annotations

import dataclasses
import typing
from enum import Enum

from curate.commands.options import flag
from curate.settings import default_of, help_text, range_text, shown, type_name
from curate.stages import STAGES, config_class

COMMAND = {"review": "review apply"}  # the command that runs a stage, where it is not the stage's key
NOT_ON_COMMAND = {  # fields set another way than by the command's own option
    "train": {"workdir": "the global --workdir (curate -w DIR train)"},
    "review": {"digest": "computed by 'curate review apply' from the decision log"},
}
TOML_TABLE = {
    "train": "the `[train]` table of `curate train --config FILE`",
    "evaluate": "none: `curate evaluate` takes options only",
}
NOTES = {"collect": " A URL list given to `curate collect` runs the download stage, with its options."}
DOCS_INTRO = """# Options and TOML keys

Generated from the `Config` dataclasses by `curate.commands.registry.options_markdown()`; do not edit by
hand (`tests/test_docs.py` checks that this file is current). Every setting has one name: `--kebab-case` on
the command line, `snake_case` in TOML (a pipeline's `[stage]` table). Any setting can also be given as
`--set key=value`. Lists are comma-separated (`--hashes phash,dhash`; `''` for none) or repeated options.
Global options (`--workdir`, `--workers` (dask processes), `--scheduler`, `--shards`, `--log-level`) come
before the command: see `curate --help`.
"""


def all_configs() -> dict[str, type]:
    """Command name -> its Config class, stages first in registry order, then train and evaluate."""
    from curate.evaluate_config import EvaluateConfig
    from curate.train.config import TrainConfig

    configs = {key: config_class(key) for key in STAGES}
    return {**configs, "train": TrainConfig, "evaluate": EvaluateConfig}


def _cell(text: str) -> str:
    return text.replace("|", "\\|")


def _row(field: dataclasses.Field, annotation: typing.Any, elsewhere: str | None) -> str:
    """One table row: option, TOML key, type, default, range or choices, meaning."""
    bare = [a for a in typing.get_args(annotation) if a is not type(None)] or [annotation]
    if typing.get_origin(bare[0]) is list:  # a list of choices
        bare = list(typing.get_args(bare[0]))
    if isinstance(bare[0], type) and issubclass(bare[0], Enum):
        extent = "one of " + ", ".join(str(member.value) for member in bare[0])
    else:
        extent = range_text(field)
    default = default_of(field)
    default_text = "required" if default is dataclasses.MISSING else f"`{shown(default)}`"
    option = "argument" if field.metadata.get("argument") else elsewhere or f"`{flag(field.name)}`"
    cells = [
        option,
        f"`{field.name}`",
        f"`{type_name(annotation)}`",
        default_text,
        extent,
        help_text(field),
    ]
    return "| " + " | ".join(_cell(cell) for cell in cells) + " |"


def options_markdown() -> str:
    """The option reference: one table per command, one row per config field."""
    parts = [DOCS_INTRO]
    for name, cls in all_configs().items():
        command = COMMAND.get(name, name)
        table = TOML_TABLE.get(name, f"the `[{name}]` table of a pipeline file")
        parts.append(f"## curate {command}\n\n`{cls.__name__}`; TOML: {table}.{NOTES.get(name, '')}\n")
        hints = typing.get_type_hints(cls)
        rows = [
            _row(field, hints[field.name], NOT_ON_COMMAND.get(name, {}).get(field.name))
            for field in dataclasses.fields(cls)
        ]
        if not rows:
            parts.append("No settings.\n")
            continue
        header = "| option | key | type | default | range | meaning |\n|---|---|---|---|---|---|"
        parts.append(header + "\n" + "\n".join(rows) + "\n")
    return "\n".join(parts)
