"""One source for every setting: each Config field is an option of its command and a TOML key, same name.

The command line is parsed by the real click command that ``curate`` runs (``make_context``), and the
settings it yields go through the same ``build_config`` as a pipeline's TOML table; both configs must
agree, and differ from the default, for every field of every registered stage, train and evaluate.
"""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys
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


HEAVY = ("pandas", "pyarrow", "scipy", "sklearn", "torch", "dlib", "faiss", "dask.distributed", "imagehash")
HELP_SCRIPT = """
import sys, click, typer
import curate.cli
def walk(command, path):
    context = click.Context(command, info_name=path)
    print("@@", path)
    print(command.get_help(context))
    for name in getattr(command, "commands", {}):
        walk(command.get_command(context, name), path + " " + name)
walk(typer.main.get_command(curate.cli.app), "curate")
heavy = [name for name in sys.argv[1:] if name in sys.modules]
print("@@heavy", ",".join(heavy))
"""


@pytest.fixture(scope="module")
def helps() -> dict[str, str]:
    """The help of every command, built in a fresh interpreter; ``heavy``: heavy modules it loaded."""
    out = subprocess.run(
        [sys.executable, "-c", HELP_SCRIPT, *HEAVY, "onnxruntime"],
        capture_output=True,
        text=True,
        check=True,
        env={"COLUMNS": "80", "PATH": "/usr/bin:/bin", "PYTHONPATH": str(Path(__file__).parents[1])},
    ).stdout
    pages = {}
    for chunk in out.split("@@")[1:]:
        name, _, text = chunk.partition("\n")
        pages[name.strip()] = text
    return pages


def test_help_of_every_command_loads_no_heavy_module(helps):
    assert "curate faces" in helps and "curate review apply" in helps and "curate train" in helps
    assert helps["heavy"].strip() == "", f"--help imported {helps['heavy'].strip()}"


def test_help_shows_every_default_and_keeps_brackets(helps):
    for name, cls in all_configs().items():
        page = " ".join(helps[f"curate {COMMAND.get(name, name)}"].split())
        for field in dataclasses.fields(cls):
            if field.metadata.get("argument") or field.name in NOT_ON_COMMAND.get(name, {}):
                continue
            assert flag(field.name) in page, f"{name}: {flag(field.name)} missing"
        defaults = page.count("[default: ") + page.count("[required]")
        assert defaults >= sum(1 for f in dataclasses.fields(cls) if not f.metadata.get("argument")) - len(
            NOT_ON_COMMAND.get(name, {})
        )
    assert "[train] table" in " ".join(helps["curate train"].split())  # not eaten as markup


def test_option_names_fit_80_columns(helps):
    for name, page in helps.items():
        for line in page.splitlines():
            if line.lstrip().startswith("--"):
                declaration = line.strip().split("  ")[0]
                assert len(declaration) <= 78, f"{name}: {declaration}"
            assert len(line) <= 80, f"{name}: {line!r}"


def test_global_workers_and_train_loader_workers_are_two_names(helps):
    assert "--workers" in helps["curate"] and "--loader-workers" in helps["curate train"]
    assert "--workers " not in helps["curate train"]


def _curate(tmp_path: Path, *args: str) -> subprocess.CompletedProcess:
    script = "import sys; from curate.cli import main; sys.argv[0] = 'curate'\n"
    script += (
        "try:\n    main()\nfinally:\n    print('dask loaded' if 'dask.distributed' in sys.modules else '')"
    )
    return subprocess.run(
        [sys.executable, "-c", script, "-w", str(tmp_path / "w"), "--workers", "2", *args],
        capture_output=True,
        text=True,
        env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(Path(__file__).parents[1])},
    )


@pytest.mark.parametrize(
    ("args", "said"),
    [
        (["faces", "--upsample", "9"], "'faces.upsample' = 9: use a value from 0 to 3"),
        (["faces", "--detector", "mtcnn"], "'mtcnn' is not one of"),
        (["dedup", "--set", "nprobe=0"], "'dedup.nprobe' = 0: use a value of at least 1 lists"),
        (["dedup", "--set", "nprobes=3"], "unknown key; known keys:"),
        (["rank", "--min-score", "2"], "'rank.min_score' = 2.0: use a value from 0 to 1"),
        (["describe", "--hashes", "md5"], "'describe.hashes' = 'md5': choose one of: phash, dhash"),
    ],
)
def test_a_bad_option_is_one_line_before_any_cluster_starts(tmp_path, args, said):
    done = _curate(tmp_path, *args)
    assert done.returncode == 1, done.stderr
    assert done.stderr.count("\n") == 1 and done.stderr.startswith("error: ") and said in done.stderr
    assert "dask loaded" not in done.stdout
    assert not (tmp_path / "w" / args[0]).exists()


def test_a_bad_value_in_a_later_pipeline_stage_stops_before_the_first(tmp_path, data_dir):
    pipeline = tmp_path / "p.toml"
    source = data_dir / "orl_faces"
    pipeline.write_text(
        f'stages = ["collect", "faces"]\n[collect]\nsource = "{source}"\n[faces]\npadding = 5\n'
    )
    done = _curate(tmp_path, "run", str(pipeline))
    assert done.returncode == 1 and done.stderr.count("\n") == 1
    assert "'faces.padding' = 5" in done.stderr and "0 to 2" in done.stderr
    assert "dask loaded" not in done.stdout and not (tmp_path / "w" / "collect").exists()


def test_collect_refuses_an_option_of_the_other_source_kind(tmp_path, data_dir):
    done = _curate(tmp_path, "collect", str(data_dir / "orl_faces"), "--concurrency", "3")
    assert done.returncode == 1 and "'--concurrency' = 3: applies to URL lists only" in done.stderr


def test_set_and_options_reach_the_same_setting(things):
    option = _from_cli("faces", ["--upsample", "2"], {})
    assert option == _from_cli("faces", ["--set", "upsample=2"], {}) and option["upsample"] == 2
    assert _from_cli("faces", ["--set", "upsample=2", "--upsample", "3"], {})["upsample"] == 3
    assert _from_cli("dedup", ["--hashes", ""], {})["hashes"] == []  # the shell's --hashes ''

    assert _from_cli("dedup", ["--hashes", "phash", "--hashes", "dhash,ahash"], {})["hashes"] == [
        "phash",
        "dhash",
        "ahash",
    ]


def test_a_relative_path_given_with_set_is_resolved_like_an_option(tmp_path, data_dir, monkeypatch):
    from curate.commands.common import resolved_settings

    monkeypatch.chdir(data_dir)
    by_option = _from_cli("select", ["--candidates", "orl_faces/README"], {})
    by_set = _from_cli("select", ["--set", "candidates=orl_faces/README"], {})
    assert by_option == by_set
    command: Any = typer.main.get_command(app).get_command(None, "select")
    settings = command.callback.settings_of(
        dict(command.make_context("select", ["--set", "candidates=orl_faces/README"]).params)
    )
    assert resolved_settings(settings)["candidates"] == data_dir / "orl_faces" / "README"


def test_train_reads_the_global_workdir_and_its_config_file_under_the_options(tmp_path):
    from curate.commands.train import train_settings

    config_file = tmp_path / "train.toml"
    config_file.write_text("[train]\nepochs = 3\nlr = 0.05\n")
    settings = train_settings(tmp_path / "w", {"epochs": 5}, config_file)
    config = build_config(all_configs()["train"], settings)
    assert config.workdir == tmp_path / "w" and config.out == tmp_path / "w" / "train"
    assert (config.epochs, config.lr) == (5, 0.05)  # the option wins over the file
