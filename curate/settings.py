"""One declaration per setting: a config field carries its help, unit and range in its metadata.

Every stage's ``Config`` (and train's, evaluate's) declares its fields with :func:`setting`. From that one
declaration come the command-line options (:mod:`curate.commands.options`), the TOML keys (the field
names), the range checks (:func:`check_ranges`, run by :func:`curate.config.build_config`) and the option
reference (``docs/options.md``). This module imports nothing heavy.
"""

from __future__ import annotations

import dataclasses
import typing
from enum import Enum
from pathlib import Path
from typing import Any

from curate.errors import ConfigError


def setting(
    default: Any = dataclasses.MISSING,
    *,
    help: str,
    unit: str | None = None,
    min: float | None = None,
    max: float | None = None,
    argument: bool = False,
    speed_only: bool = False,
) -> Any:
    """A dataclass field with its ``help``, ``unit`` and inclusive range ``min``/``max`` in its metadata.

    A list default is copied per instance. ``argument``: the command takes it as a positional argument.
    ``speed_only``: the setting changes how fast a stage runs, never what it writes, so changing it
    neither refuses a resume nor makes finished shards stale (:func:`decisive_settings`).
    """
    metadata = {
        "help": help,
        "unit": unit,
        "min": min,
        "max": max,
        "argument": argument,
        "speed_only": speed_only,
    }
    if isinstance(default, list):
        items = list(default)
        return dataclasses.field(default_factory=lambda: list(items), metadata=metadata)
    return dataclasses.field(default=default, metadata=metadata)


def fields_of(cls: type) -> list[dataclasses.Field]:
    """The dataclass fields of a config class, in declaration order."""
    return list(dataclasses.fields(cls))


def help_text(field: dataclasses.Field) -> str:
    """A setting's help, saying so when it is ``speed_only``."""
    text = str(field.metadata.get("help", ""))
    return f"{text} (speed only: a change keeps finished work)" if field.metadata.get("speed_only") else text


def default_of(field: dataclasses.Field) -> Any:
    """A field's default value (``MISSING`` when it is required)."""
    if field.default_factory is not dataclasses.MISSING:
        return field.default_factory()
    return field.default


def decisive_settings(values: dict[str, Any], cls: type) -> dict[str, Any]:
    """``values`` (a config as :func:`curate.config.config_to_dict` writes it) with every ``speed_only``
    setting of ``cls`` at its default: what decides a stage's output, compared on resume and fingerprinted."""
    speed_only = {f.name: f for f in dataclasses.fields(cls) if f.metadata.get("speed_only")}
    return {
        name: _plain(default_of(speed_only[name])) if name in speed_only else value
        for name, value in values.items()
    }


def _plain(value: Any) -> Any:
    """A default as ``config_to_dict`` writes values (enums by value, paths as strings)."""
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, Path):
        return str(value)
    return value


def shown(value: Any) -> str:
    """A value as typed: enums by value, lists comma-separated (``''``: empty), ``None`` as ``none``."""
    if value is None:
        return "none"
    if value == "":
        return "''"
    if isinstance(value, Enum):
        return str(value.value)
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, (list, tuple)):
        return ",".join(shown(item) for item in value) if value else "''"
    if isinstance(value, Path):
        return str(value)
    return str(value)


def range_text(field: dataclasses.Field) -> str:
    """``0 to 3 bits``, ``at least 1``, ``at most 1`` or ``""`` for a field without a range."""
    low, high, unit = field.metadata.get("min"), field.metadata.get("max"), field.metadata.get("unit")
    suffix = f" {unit}" if unit else ""
    if low is not None and high is not None:
        return f"{low:g} to {high:g}{suffix}"
    if low is not None:
        return f"at least {low:g}{suffix}"
    if high is not None:
        return f"at most {high:g}{suffix}"
    return ""


def type_name(annotation: Any) -> str:
    """A short name for a field's type: ``int``, ``float``, ``list[str]``, ``DetectorKind | None``..."""
    origin = typing.get_origin(annotation)
    if origin is list:
        (item,) = typing.get_args(annotation)
        return f"list[{type_name(item)}]"
    if origin is not None:  # a union
        return " | ".join(type_name(arg) for arg in typing.get_args(annotation))
    if annotation is type(None):
        return "None"
    return getattr(annotation, "__name__", str(annotation))


def check_ranges(config: Any, where: str = "") -> None:
    """Raise ConfigError for the first field whose value lies outside its declared ``min``/``max``."""
    for field in dataclasses.fields(config):
        low, high = field.metadata.get("min"), field.metadata.get("max")
        if low is None and high is None:
            continue
        value = getattr(config, field.name)
        values = value if isinstance(value, (list, tuple)) else [value]
        for item in values:
            if item is None or isinstance(item, bool) or not isinstance(item, (int, float)):
                continue
            if (low is not None and item < low) or (high is not None and item > high):
                both = low is not None and high is not None
                fix = f"use a value {'from' if both else 'of'} {range_text(field)}"
                raise ConfigError(f"{where}{field.name}", value, fix)
