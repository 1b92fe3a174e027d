"""Typed records from JSON: a dataclass built from a dict whose every key it knows."""

from __future__ import annotations

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
