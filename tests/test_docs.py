"""The manifest documentation stays true: every column a stage declares is documented with its type."""

from __future__ import annotations

import importlib
import re
from pathlib import Path

import pytest

from curate.record import BASE_COLUMNS, Status
from curate.stages import STAGES

DOC = Path(__file__).resolve().parents[1] / "manifests" / "images.md"


def _documented() -> dict[str, str]:
    rows = re.findall(r"^\| `([a-z0-9_]+)` \| ([^|]+) \|", DOC.read_text(), flags=re.MULTILINE)
    return {name: kind.strip() for name, kind in rows}


@pytest.mark.parametrize("key", sorted(STAGES))
def test_every_declared_column_is_documented(key):
    module = importlib.import_module(STAGES[key].partition(":")[0])
    documented = _documented()
    for column in [*BASE_COLUMNS, *module.COLUMNS]:
        assert column in documented, f"{column} ({key}) missing from manifests/images.md"


def test_every_status_is_documented():
    text = DOC.read_text()
    for status in Status:
        assert f"`{status.value}`" in text


OPTIONS_DOC = Path(__file__).resolve().parents[1] / "docs" / "options.md"


def test_options_doc_is_generated_from_the_configs():
    from curate.commands.registry import options_markdown

    assert OPTIONS_DOC.read_text() == options_markdown(), (
        "docs/options.md is stale; regenerate: python -c 'from curate.commands.registry import "
        'options_markdown; open("docs/options.md", "w").write(options_markdown())\''
    )


def test_options_doc_names_and_types_match_the_configs():
    """Read the committed tables back (not the generator): every field, its option, key and type."""
    import dataclasses
    import typing

    from curate.commands.options import flag
    from curate.commands.registry import COMMAND, NOT_ON_COMMAND, all_configs
    from curate.settings import type_name

    sections = re.split(r"^## curate ", OPTIONS_DOC.read_text(), flags=re.MULTILINE)[1:]
    documented = {}
    for section in sections:
        command = section.splitlines()[0].strip()
        rows = re.findall(r"^\| (.+?) \| `(\w+)` \| `(.+?)` \|", section, flags=re.MULTILINE)
        documented[command] = {key: (option, kind.replace("\\|", "|")) for option, key, kind in rows}
    for name, cls in all_configs().items():
        rows = documented[COMMAND.get(name, name)]
        hints = typing.get_type_hints(cls)
        assert set(rows) == {f.name for f in dataclasses.fields(cls)}, name
        for field in dataclasses.fields(cls):
            option, kind = rows[field.name]
            assert kind == type_name(hints[field.name]), f"{name}.{field.name}: {kind}"
            if field.metadata.get("argument"):
                assert option == "argument"
            elif field.name not in NOT_ON_COMMAND.get(name, {}):
                assert option == f"`{flag(field.name)}`", f"{name}.{field.name}: {option}"
