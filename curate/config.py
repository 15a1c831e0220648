"""Typed configs from plain mappings (TOML tables, CLI options), validated up front.

Every error names the key, the value and the fix, so ``curate`` can print it on one line.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from collections.abc import Mapping
from enum import Enum
from pathlib import Path
from typing import Any, TypeVar

from curate.errors import ConfigError
from curate.settings import check_ranges

C = TypeVar("C")


def _convert(key: str, value: Any, annotation: Any) -> Any:
    """Coerce ``value`` to ``annotation`` (simple types only) or raise ConfigError."""
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        options = typing.get_args(annotation)
        if value is None and type(None) in options:
            return None
        errors = []
        for option in options:
            if option is type(None):
                continue
            try:
                return _convert(key, value, option)
            except ConfigError as error:
                errors.append(error.fix)
        raise ConfigError(key, value, " or ".join(errors))
    if origin is list:
        (item_type,) = typing.get_args(annotation) or (Any,)
        if isinstance(value, str):
            value = [part.strip() for part in value.split(",") if part.strip()]
        if not isinstance(value, (list, tuple)):
            raise ConfigError(key, value, 'give a list (e.g. ["a", "b"] in TOML, a,b on the command line)')
        return [_convert(key, item, item_type) for item in value]
    if annotation is Any:
        return value
    if isinstance(annotation, type) and issubclass(annotation, Enum):
        try:
            return annotation(value.value if isinstance(value, Enum) else value)
        except ValueError:
            choices = ", ".join(str(member.value) for member in annotation)
            raise ConfigError(key, value, f"choose one of: {choices}") from None
    if annotation is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in {"true", "false", "1", "0", "yes", "no"}:
            return value.lower() in {"true", "1", "yes"}
        raise ConfigError(key, value, "give true or false")
    if annotation is int:
        if isinstance(value, bool) or not isinstance(value, (int, str)):
            raise ConfigError(key, value, "give a whole number")
        try:
            return int(value)
        except ValueError:
            raise ConfigError(key, value, "give a whole number") from None
    if annotation is float:
        if isinstance(value, bool) or not isinstance(value, (int, float, str)):
            raise ConfigError(key, value, "give a number")
        try:
            return float(value)
        except ValueError:
            raise ConfigError(key, value, "give a number") from None
    if annotation is str:
        if not isinstance(value, (str, Path)):
            raise ConfigError(key, value, "give a text value")
        return str(value)
    if annotation is Path:
        if not isinstance(value, (str, Path)) or str(value) == "":
            raise ConfigError(key, value, "give a file or folder path")
        return Path(value)
    raise TypeError(f"config field {key!r} has an unsupported type {annotation!r}")


def build_config(cls: type[C], values: Mapping[str, Any], where: str = "") -> C:
    """Build the dataclass ``cls`` from ``values``: unknown keys, missing keys and bad types are errors.

    ``where`` prefixes key names in messages (e.g. ``"dedup."``). ``None`` values mean "use the default".
    After construction the ranges declared in each field's metadata are checked
    (:func:`curate.settings.check_ranges`), then the dataclass's own ``validate()`` (if any) checks
    relations between fields.
    """
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    unknown = sorted(set(values) - set(fields))
    if unknown:
        known = ", ".join(sorted(fields))
        raise ConfigError(f"{where}{unknown[0]}", values[unknown[0]], f"unknown key; known keys: {known}")
    kwargs: dict[str, Any] = {}
    for name, field in fields.items():
        if name in values and values[name] is not None:
            kwargs[name] = _convert(f"{where}{name}", values[name], hints[name])
        elif field.default is dataclasses.MISSING and field.default_factory is dataclasses.MISSING:
            raise ConfigError(f"{where}{name}", None, "this key is required; set it")
    config = cls(**kwargs)
    check_ranges(config, where)
    validate = getattr(config, "validate", None)
    if callable(validate):
        try:
            validate()
        except ConfigError as error:
            if where and not error.key.startswith(where):
                raise ConfigError(f"{where}{error.key}", error.value, error.fix) from None
            raise
    return config


def config_to_dict(config: Any) -> dict[str, Any]:
    """A JSON-ready view of a config dataclass (paths and enums as strings), for ``_config.json``."""

    def plain(value: Any) -> Any:
        if isinstance(value, Enum):
            return value.value
        if isinstance(value, Path):
            return str(value)
        if isinstance(value, (list, tuple)):
            return [plain(item) for item in value]
        if dataclasses.is_dataclass(value) and not isinstance(value, type):
            return config_to_dict(value)
        return value

    return {f.name: plain(getattr(config, f.name)) for f in dataclasses.fields(config)}
