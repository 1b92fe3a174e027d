"""Run folders, for every engine: what the training wizard asks about a run during and after it.

Which run folders can be resumed, their loss history, and the preset made from them.
The training itself is the shared loop of ``core.trainer``; the time estimate before it,
``core.estimate``.
"""

from __future__ import annotations

import csv
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sketchapp.core.checkpoint import read_file_record
from sketchapp.core.fileio import read_json, write_bytes_atomic
from sketchapp.core.trainer import LOSSES_FILE, MODEL_FILE, SETTINGS_FILE, STATE_FILE, STATE_FORMAT, TrainingError

PRESET_FILE = "preset.json"


# -- run folders -----------------------------------------------------------------------


@dataclass(frozen=True)
class RunInfo:
    folder: Path
    step: int
    steps: int
    epochs: int
    elapsed: float
    saved_at: float  # when state.safetensors was last written (seconds since the epoch)
    data: dict[str, Any]
    settings: dict[str, Any]
    has_model: bool
    preset: str | None = None  # the id of the preset made from it, if any

    @property
    def finished(self) -> bool:
        return self.step >= self.steps

    def to_dict(self) -> dict[str, Any]:
        return {
            "folder": str(self.folder), "step": self.step, "steps": self.steps, "epochs": self.epochs,
            "elapsed": self.elapsed, "saved_at": self.saved_at, "data": self.data, "settings": self.settings,
            "has_model": self.has_model, "finished": self.finished, "preset": self.preset,
        }


def _state_metadata(path: Path) -> dict[str, Any]:
    """The JSON metadata of a training state, read from its header alone (no tensors)."""
    try:
        meta, complete = read_file_record(path)
    except OSError as exc:
        raise TrainingError(f"{path}: cannot read ({exc.strerror or exc})") from exc
    except ValueError as exc:
        raise TrainingError(f"{path}: training state is damaged ({exc})") from exc
    if not complete:
        raise TrainingError(f"{path}: training state is truncated (cut off after its header)")
    if not isinstance(meta, dict) or meta.get("format") != STATE_FORMAT:
        raise TrainingError(f"{path}: not a SketchApp training state")
    return meta


def run_info(folder: str | os.PathLike[str]) -> RunInfo:
    """Where a run folder stands: steps done of all, time spent, the data it trains on."""
    root = Path(folder)
    state = root / STATE_FILE
    if not state.exists():
        raise TrainingError(f"{root}: no training was saved here")
    meta = _state_metadata(state)
    from sketchapp.core.engines import engine_spec, recorded_kind
    from sketchapp.core.errors import SketchAppError

    try:
        settings = engine_spec(recorded_kind(meta), str(state)).train_settings.from_dict(meta["settings"])
        step = int(meta["step"])
        if "total_steps" in meta:  # every engine's run since the training loop was shared
            total = int(meta["total_steps"])
        else:  # a contextual run from before: its GAN steps, then the encoder's
            total = int(meta["gan_steps"]) + (settings.encoder_steps if settings.config.has_encoder else 0)
    except (KeyError, TypeError, ValueError, SketchAppError) as exc:
        raise TrainingError(f"{state}: training state is damaged ({exc})") from exc
    data = meta.get("data") or {}
    try:
        recorded = read_json(root / SETTINGS_FILE, TrainingError, "run record").get("data") or data
    except (TrainingError, AttributeError):
        recorded = data
    try:
        preset = read_json(root / PRESET_FILE, TrainingError, "run record").get("preset") if (root / PRESET_FILE).exists() else None
    except (TrainingError, AttributeError):
        preset = None
    return RunInfo(
        root, step, total, settings.epochs, float(meta.get("elapsed", 0.0)),
        state.stat().st_mtime, recorded, settings.to_dict(), (root / MODEL_FILE).exists(),
        preset if isinstance(preset, str) else None,
    )


def mark_preset(folder: str | os.PathLike[str], preset_id: str) -> None:
    """Record in a run folder that a preset was made from it (the wizard then stops offering it)."""
    write_bytes_atomic(Path(folder) / PRESET_FILE, json.dumps({"preset": preset_id}).encode("utf-8"))


def list_runs(root: str | os.PathLike[str]) -> list[RunInfo]:
    """Every readable run folder directly under ``root``, the latest saved first."""
    base = Path(root)
    if not base.is_dir():
        return []
    found = []
    for folder in base.iterdir():
        if (folder / STATE_FILE).exists():
            try:
                found.append(run_info(folder))
            except TrainingError:
                continue
    return sorted(found, key=lambda info: info.saved_at, reverse=True)


def read_losses(folder: str | os.PathLike[str]) -> list[dict[str, float]]:
    """losses.csv of a run as numbers (empty cells left out); [] when there is none yet."""
    path = Path(folder) / LOSSES_FILE
    rows: list[dict[str, float]] = []
    try:
        with open(path, newline="", encoding="utf-8") as handle:
            for row in csv.DictReader(handle):
                entry: dict[str, float] = {}
                for key, value in row.items():
                    if key == "phase" or not value:
                        continue
                    try:
                        entry[key] = float(value)
                    except (TypeError, ValueError):
                        continue
                if "step" in entry:
                    entry["encoder"] = 1.0 if row.get("phase") == "encoder" else 0.0
                    rows.append(entry)
    except FileNotFoundError:
        return []
    except OSError as exc:
        raise TrainingError(f"{path}: cannot read ({exc.strerror or exc})") from exc
    return rows
