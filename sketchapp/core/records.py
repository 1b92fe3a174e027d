"""Typed records from JSON: a dataclass built from a dict whose every key it knows."""

from __future__ import annotations

import math
from dataclasses import asdict, fields, replace
from typing import Any, ClassVar, TypeVar

from sketchapp.core.errors import SettingsError

T = TypeVar("T")
R = TypeVar("R", bound="Record")


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


class Record:
    """What the frozen dataclasses kept in files (settings, architectures) share: ``to_dict``,
    ``from_dict`` (a non-object or an unknown key refused in one line naming ``WHAT``, then the
    class's own checks) and ``updated``."""

    WHAT: ClassVar[str] = "record"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)  # type: ignore[call-overload]

    @classmethod
    def from_dict(cls: type[R], data: Any) -> R:
        return from_record(cls, data, cls.WHAT)

    def updated(self: R, **changes: Any) -> R:
        """A copy with ``changes`` to its own fields; None and names it does not have are left out."""
        known = {f.name for f in fields(self)}  # type: ignore[arg-type]
        return replace(self, **{k: v for k, v in changes.items() if v is not None and k in known})  # type: ignore[type-var]
