"""Style presets: a trained model, the sketch style it expects and its engine settings.

A preset is a small JSON file. Loading validates it fully and touches nothing else
(the model is only located, not loaded), so listing presets is cheap and safe.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from typing import Any

from sketchapp.core.engines import LEGACY_KIND, REGISTRY, recorded_kind
from sketchapp.core.errors import PresetError, SettingsError, SketchAppError
from sketchapp.core.fileio import check_regular, printable, read_json, read_user_file, write_bytes_atomic

_FIELDS = {"name", "engine", "model", "sketch_style", "settings", "thumbnail", "description"}
#: the preset the app starts with and ``sketchapp complete`` uses when given none (chosen by docs/evaluation.md)
DEFAULT_PRESET = "emoji-pix2pix"
THUMBNAIL_SIDE = 128  # pixels a side a preset's picture is read at (the list shows it at 48)
THUMBNAIL_BYTES = 8 << 20


@dataclass(frozen=True)
class Preset:
    id: str  # the file stem; what --preset takes (the display name works too)
    name: str
    engine: str
    model: Path
    sketch_style: str
    settings: Any = field(default_factory=REGISTRY[LEGACY_KIND].settings)  # the engine's own settings class
    thumbnail: Path | None = None
    description: str = ""
    source: str = "bundled"  # "bundled" or "user"


def load_preset(path: str | os.PathLike[str], model_dirs: tuple[Path, ...] = (), source: str = "user") -> Preset:
    """Read and validate one preset file; its model is looked up beside it, then in ``model_dirs``."""
    file = Path(path)
    data = read_json(file, PresetError, "preset")
    if not isinstance(data, dict):
        raise PresetError(f"{file.name}: preset must be a JSON object")
    unknown = sorted(set(data) - _FIELDS)
    if unknown:
        raise PresetError(f"{file.name}: unknown preset fields: {', '.join(unknown)}")
    for key in ("name", "model", "sketch_style"):
        if not isinstance(data.get(key), str) or not data[key].strip():
            raise PresetError(f"{file.name}: preset needs a non-empty {key!r}")
    engine = recorded_kind(data)
    if not isinstance(engine, str) or engine not in REGISTRY:
        raise PresetError(f"{file.name}: engine {str(engine)[:40]!r} is not supported (choose from {', '.join(REGISTRY)})")
    try:
        settings = REGISTRY[engine].settings.from_dict(data.get("settings") or {})
    except (SettingsError, TypeError) as exc:
        raise PresetError(f"{file.name}: {exc}") from exc
    thumbnail = data.get("thumbnail")
    if thumbnail is not None and not isinstance(thumbnail, str):
        raise PresetError(f"{printable(file.name)}: the thumbnail must be a file name")
    return Preset(
        id=file.stem,
        name=printable(data["name"].strip())[:200],
        engine=engine,
        model=_locate(file, data["model"], (file.parent, *model_dirs)),
        sketch_style=printable(data["sketch_style"])[:80],
        settings=settings,
        thumbnail=_thumbnail(file, thumbnail) if thumbnail else None,
        description=printable(str(data.get("description", "")))[:2000],
        source=source,
    )


def _thumbnail(preset: Path, name: str) -> Path | None:
    """The preset's picture, or None when it is missing, not a regular file (a pipe would block the
    window's preset list) or too large; the preset itself stays usable."""
    path = _locate(preset, name, (preset.parent,))
    try:
        check_regular(path, PresetError, "thumbnail")
    except PresetError:
        return None
    return path


def thumbnail_pixels(path: Path | None, side: int = THUMBNAIL_SIDE) -> np.ndarray | None:
    """A preset's picture as RGB pixels at most ``side`` a side, through the same door as every user file
    (size limits, decompression bombs), or None where it cannot be read. Only raster pictures: a preset
    thumbnail is drawn at every start, and an SVG can cost seconds to draw."""
    if path is None:
        return None
    from sketchapp.core.images import decode_image
    from sketchapp.core.svg import looks_like_svg

    try:
        data = read_user_file(path, PresetError, "thumbnail", THUMBNAIL_BYTES)
        if looks_like_svg(data, path.name):
            return None
        return decode_image(data, path.name, "RGB", max_side=side)
    except SketchAppError:
        return None


def _locate(preset: Path, name: str, folders: tuple[Path, ...]) -> Path:
    """The file ``name`` (a model or thumbnail of ``preset``) in the first of ``folders`` that has it.

    It must stay inside them: an absolute path or one that climbs out with ``..`` (or a link
    that leads out) is refused, so a preset cannot make the app read files elsewhere.
    """
    candidate = Path(name)
    if candidate.is_absolute() or ".." in candidate.parts:
        raise PresetError(
            f"{printable(preset.name)}: {printable(name)[:80]!r} is outside the preset's folder; "
            "name a file beside the preset or in the models folder"
        )
    for folder in folders:
        path = folder / candidate
        if path.exists():
            try:
                path.resolve().relative_to(folder.resolve())
            except ValueError:
                raise PresetError(f"{printable(preset.name)}: {printable(name)[:80]!r} leads outside the preset's folder") from None
            return path
    return folders[0] / candidate


def list_presets(folders: list[tuple[Path, str]], model_dirs: tuple[Path, ...] = ()) -> tuple[list[Preset], list[str]]:
    """Every valid preset in ``folders`` ((path, source) pairs), and a message per broken file."""
    found: list[Preset] = []
    problems: list[str] = []
    for folder, source in folders:
        if not folder.is_dir():
            continue
        for file in sorted(folder.glob("*.json")):
            try:
                preset = load_preset(file, model_dirs, source)
            except PresetError as exc:
                problems.append(str(exc))
                continue
            earlier = next((p for p in found if p.id == preset.id or p.name.lower() == preset.name.lower()), None)
            if earlier is not None:  # the first folder wins: a user preset never shadows a bundled one
                problems.append(
                    f"{printable(file.name)}: skipped, {earlier.source} preset {earlier.id!r} has that name already; rename it"
                )
                continue
            found.append(preset)
    return found, problems


def find_preset(key: str, presets: list[Preset]) -> Preset:
    """The preset whose id or display name is ``key`` (case-insensitive); the first listed wins
    (``list_presets`` keeps bundled ones before the user's and never lets a user preset shadow one)."""
    wanted = key.strip().lower()
    matches = [p for p in presets if wanted in (p.id.lower(), p.name.lower())]
    if not matches:
        names = ", ".join(sorted(p.id for p in presets)) or "none installed"
        raise PresetError(f"unknown preset {printable(key)[:80]!r} (available: {names})")
    return matches[0]


#: Problems with presets shown one by one; past this many, one line counts them all.
PROBLEMS_SHOWN = 5


def summarised(problems: list[str]) -> list[str]:
    """The problems one to a line, or past PROBLEMS_SHOWN of them one line with their count and the
    first (thousands of broken user presets must not print thousands of lines at every start)."""
    if len(problems) <= PROBLEMS_SHOWN:
        return problems
    return [f"{len(problems)} presets could not be read; the first: {problems[0]}"]


def installed_presets() -> tuple[list[Preset], list[str]]:
    """Bundled presets and the user's own, with problems found in broken files."""
    from sketchapp import paths

    return list_presets(
        [(paths.bundled_presets_dir(), "bundled"), (paths.user_presets_dir(), "user")],
        (paths.bundled_models_dir(), paths.user_models_dir()),
    )


def save_user_preset(
    name: str,
    model: str | os.PathLike[str],
    sketch_style: str,
    settings: Any = None,
    thumbnail: np.ndarray | None = None,
    description: str = "",
    presets_dir: Path | None = None,
    models_dir: Path | None = None,
) -> Preset:
    """Make a user preset from a trained model: the model is copied into the user models folder.

    The model and thumbnail are written first and the preset file last, each atomically,
    so a full disk or a crash never leaves a preset that points at nothing. An id already
    taken gets a number (my-cats, my-cats-2, ...); nothing is overwritten.
    """
    from sketchapp import paths
    from sketchapp.core.checkpoint import read_checkpoint
    from sketchapp.core.images import save_image

    engine = str(recorded_kind(read_checkpoint(model)[0]))  # refuse a damaged or foreign file before anything is written
    if engine not in REGISTRY:
        raise PresetError(f"{Path(model).name}: made for an engine this SketchApp does not have ({engine[:40]!r})")
    settings = settings if settings is not None else REGISTRY[engine].settings()
    if not isinstance(settings, REGISTRY[engine].settings):
        raise PresetError(f"the preset's settings are not {engine} settings")

    title = " ".join(name.split())
    if not title:
        raise PresetError("give the preset a name")
    if len(title) > 80:
        raise PresetError("a preset name can have at most 80 characters")
    presets_dir = presets_dir or paths.user_presets_dir()
    models_dir = models_dir or paths.user_models_dir()
    if thumbnail is not None and (thumbnail.dtype != np.uint8 or thumbnail.ndim not in (2, 3)):
        raise PresetError(f"a preset thumbnail must be a uint8 picture, got {thumbnail.dtype} of shape {thumbnail.shape}")
    slug = re.sub(r"[^a-z0-9]+", "-", title.lower()).strip("-")[:40].strip("-") or "preset"
    folders = (presets_dir, models_dir, paths.bundled_presets_dir(), paths.bundled_models_dir())

    def taken(candidate: str) -> bool:  # bundled names count: a user preset must never shadow one, or its model
        return any((folder / f"{candidate}{suffix}").exists() for folder in folders for suffix in (".json", ".safetensors"))

    preset_id, number = slug, 1
    while taken(preset_id):
        number += 1
        preset_id = f"{slug}-{number}"
    record: dict[str, object] = {
        "name": title,
        "engine": engine,
        "model": f"{preset_id}.safetensors",
        "sketch_style": sketch_style,
        "settings": settings.to_dict(),
        "description": description,
    }
    written: list[Path] = []
    try:
        weights = read_user_file(model, PresetError, "model")
        written.append(models_dir / f"{preset_id}.safetensors")
        write_bytes_atomic(written[-1], weights)
        if thumbnail is not None:
            written.append(presets_dir / f"{preset_id}.png")
            save_image(written[-1], thumbnail)
            record["thumbnail"] = f"{preset_id}.png"
        write_bytes_atomic(presets_dir / f"{preset_id}.json", json.dumps(record, indent=1).encode("utf-8"))
    except Exception as exc:
        for path in written:  # no half-made preset left behind
            with contextlib.suppress(OSError):
                path.unlink(missing_ok=True)
        if isinstance(exc, SketchAppError):
            raise PresetError(f"cannot save the preset: {exc}") from exc
        if isinstance(exc, OSError):
            raise PresetError(f"cannot save the preset: {exc.strerror or exc}") from exc
        raise
    return load_preset(presets_dir / f"{preset_id}.json", (models_dir,), "user")
