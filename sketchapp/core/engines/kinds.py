"""The one rule about engine kinds that holds outside the registry: records written before
there were other engines (checkpoints, presets, runs) name none, and are the Contextual
GAN's. A leaf module, so the trainer and the engines' recipes can read a record's kind
without importing the registry and, through it, every engine.
"""

from __future__ import annotations

from typing import Any

#: The kind of a record that names none.
LEGACY_KIND = "contextual"


def recorded_kind(record: Any) -> Any:
    """The engine a record (a checkpoint's header, a preset, a run's settings) names, ``LEGACY_KIND`` where it names none."""
    return record.get("engine", LEGACY_KIND) if isinstance(record, dict) else LEGACY_KIND
