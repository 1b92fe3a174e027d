"""Typed records from JSON: a dataclass built from a dict whose every key it knows."""

from __future__ import annotations

import math
from dataclasses import fields
from typing import Any, TypeVar

from sketchapp.core.errors import SettingsError

T = TypeVar("T")


def from_record(cls: type[T], data: Any, what: str) -> T:
    """``cls(**data)``, refusing a non-object and unknown keys with a one-line SettingsError naming ``what``.

    The dataclass's own ``__post_init__`` then checks every value.
    """
    if not isinstance(data, dict):
        raise SettingsError(f"{what} must be a JSON object")
    unknown = sorted(set(map(str, data)) - {f.name for f in fields(cls)})  # type: ignore[arg-type]
    if unknown:
        raise SettingsError(f"unknown {what}: {', '.join(unknown)[:200]}")
    return cls(**data)


def check_field_types(record: Any, what: str) -> None:
    """A frozen dataclass whose fields are all bool, int or float: every value of exactly its type (a whole
    number is taken where a float belongs), floats finite; a SettingsError naming ``what`` and the field."""
    for f in fields(record):
        value = getattr(record, f.name)
        if f.type == "float" and type(value) is int:
            object.__setattr__(record, f.name, float(value))
            value = float(value)
        expected = {"bool": bool, "int": int, "float": float}[str(f.type)]
        if type(value) is not expected or (expected is float and not math.isfinite(value)):
            raise SettingsError(f"{what} {f.name} must be {'a finite ' if expected is float else ''}{expected.__name__}, got {value!r}")
