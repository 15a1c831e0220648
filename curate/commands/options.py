"""Command-line options generated from a config dataclass: one ``--field-name`` per field.

:func:`config_options` decorates a Typer command whose signature has a ``settings`` parameter: that
parameter is replaced by one option per field of the config (help, unit and range from the field's
metadata, the default shown, enums as choices, bools as ``--x/--no-x``, lists repeatable or
comma-separated), plus ``--set key=value``. The command receives ``settings``: the fields given on the
command line, by their TOML names, ready for :func:`curate.config.build_config`. Nothing heavy is imported.
"""

from __future__ import annotations

import dataclasses
import functools
import inspect
import types
import typing
from collections.abc import Callable, Iterable
from enum import Enum
from pathlib import Path
from typing import Annotated, Any

import typer

from curate.errors import ConfigError
from curate.settings import default_of, help_text, range_text, shown

SET_HELP = "any setting as KEY=VALUE (its TOML name), repeatable; the options above win"


def flag(name: str) -> str:
    """The option name of a field: ``min_face_px`` -> ``--min-face-px``."""
    return "--" + name.replace("_", "-")


def _bare(annotation: Any) -> Any:
    """The type without ``| None``."""
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        return next(arg for arg in typing.get_args(annotation) if arg is not type(None))
    return annotation


def _is_enum(kind: Any) -> bool:
    return isinstance(kind, type) and issubclass(kind, Enum)


def option_help(field: dataclasses.Field) -> str:
    """A field's help with its range (and unit) and its default appended (help is plain text, no markup)."""
    text = help_text(field)
    extent = range_text(field)
    if extent:
        text = f"{text} ({extent})"
    elif field.metadata.get("unit"):
        text = f"{text} (in {field.metadata['unit']})"
    default = default_of(field)
    if field.metadata.get("argument"):
        return text
    return f"{text} [{'required' if default is dataclasses.MISSING else 'default: ' + shown(default)}]"


def _parameter(field: dataclasses.Field, annotation: Any) -> inspect.Parameter:
    """The Typer parameter of one config field."""
    bare = _bare(annotation)
    help_text = option_help(field)
    if field.metadata.get("argument"):
        info: Any = typer.Argument(help=help_text, show_default=False, metavar=field.name.upper())
        return inspect.Parameter(field.name, inspect.Parameter.KEYWORD_ONLY, annotation=Annotated[bare, info])
    decls: list[str] = [flag(field.name)]
    kind: Any = bare | None
    extra: dict[str, Any] = {}
    if bare is bool:
        decls = [f"{flag(field.name)}/--no-{field.name.replace('_', '-')}"]
    elif typing.get_origin(bare) is list:  # repeatable, each value comma-separated
        (item,) = typing.get_args(bare)
        kind = list[str] | None
        extra["metavar"] = "<" + "|".join(str(m.value) for m in item) + ">,..." if _is_enum(item) else "A,B"
    elif _is_enum(bare):
        extra["case_sensitive"] = False
    info = typer.Option(*decls, help=help_text, show_default=False, **extra)
    return inspect.Parameter(
        field.name, inspect.Parameter.KEYWORD_ONLY, default=None, annotation=Annotated[kind, info]
    )


def _split(values: Iterable[str]) -> list[str]:
    """Repeated and comma-separated list items, flattened; ``''`` alone means the empty list."""
    return [part.strip() for value in values for part in str(value).split(",") if part.strip()]


def parse_set(items: Iterable[str], known: Iterable[str]) -> dict[str, str]:
    """``--set key=value`` items as a mapping; a bad item or an unknown key is a ConfigError."""
    names = set(known)
    pairs: dict[str, str] = {}
    for item in items:
        key, sep, value = item.partition("=")
        key = key.strip().replace("-", "_")
        if not sep or not key:
            raise ConfigError("--set", item, "give KEY=VALUE, e.g. --set max_side=800")
        if key not in names:
            raise ConfigError("--set", item, f"unknown key; known keys: {', '.join(sorted(names))}")
        pairs[key] = value
    return pairs


def gather(
    params: dict[str, Any], names: dict[str, tuple[dataclasses.Field, Any]], lists: set[str]
) -> dict[str, Any]:
    """Take the config fields (and ``--set``) out of a command's parsed ``params``: the fields given.

    ``names``: field name -> (field, type). List options are flattened (repeatable and comma-separated);
    paths given with ``--set`` become ``Path``s, as options' are; options win over ``--set``.
    """
    settings: dict[str, Any] = parse_set(params.pop("set_", None) or [], names)
    for name, value in settings.items():
        if _bare(names[name][1]) is Path and value:
            settings[name] = Path(value)
    for name in names:
        value = params.pop(name, None)
        if name in lists:
            value = _split(value) if value else None
        if value is not None:
            settings[name] = value
    return settings


def config_fields(cls: type, skip: Iterable[str] = ()) -> list[tuple[dataclasses.Field, Any]]:
    """The fields of ``cls`` (less ``skip``) with their resolved type annotations."""
    hints = typing.get_type_hints(cls)
    return [(f, hints[f.name]) for f in dataclasses.fields(cls) if f.name not in set(skip)]


def config_options(
    *classes: type, skip: Iterable[str] = ()
) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Replace the command's ``settings`` parameter with one option per field of ``classes``.

    Fields of several classes with one name share one option. Arguments (``argument=True`` in the
    metadata) come first, then the command's own parameters, then the options and ``--set``.
    """
    seen: dict[str, tuple[dataclasses.Field, Any]] = {}
    for cls in classes:
        for field, annotation in config_fields(cls, skip):
            seen.setdefault(field.name, (field, annotation))

    def decorate(command: Callable[..., Any]) -> Callable[..., Any]:
        own = inspect.signature(command)
        hints = typing.get_type_hints(command, include_extras=True)
        mine = [
            p.replace(kind=inspect.Parameter.KEYWORD_ONLY, annotation=hints.get(p.name, p.annotation))
            for p in own.parameters.values()
            if p.name != "settings"
        ]
        generated = [_parameter(f, a) for f, a in seen.values()]
        arguments = [p for p in generated if p.default is inspect.Parameter.empty]
        options = [p for p in generated if p.default is not inspect.Parameter.empty]
        set_option = inspect.Parameter(
            "set_",
            inspect.Parameter.KEYWORD_ONLY,
            default=None,
            annotation=Annotated[
                list[str] | None,
                typer.Option("--set", help=SET_HELP, metavar="KEY=VALUE"),
            ],
        )
        lists = {f.name for f, a in seen.values() if typing.get_origin(_bare(a)) is list}

        @functools.wraps(command)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            return command(*args, settings=gather(kwargs, seen, lists), **kwargs)

        parameters = mine[:1] + arguments + mine[1:] + options + [set_option]
        wrapper.__signature__ = own.replace(parameters=parameters)  # type: ignore[attr-defined]
        wrapper.__annotations__ = {p.name: p.annotation for p in parameters}
        del wrapper.__wrapped__  # Typer must read the new signature, not the command's
        wrapper.config_classes = classes  # type: ignore[attr-defined]
        wrapper.settings_of = functools.partial(gather, names=seen, lists=lists)  # type: ignore[attr-defined]
        return wrapper

    return decorate
