"""What is in the folders a user picked: the training wizard's data page, and its checks.

Reading only image headers, a scan says which kind of data set the folders make, how
many usable pictures or pairs there are, which files cannot be read and why, and how
big the pictures are, so a user learns about problems before a training starts.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from sketchapp.core.data.datasets import (
    FEW_UNPAIRED,
    DataError,
    Progress,
    Skipped,
    _name,
    is_built_dataset,
    list_images,
    reason,
)
from sketchapp.core.engine import CancelToken
from sketchapp.core.errors import SketchAppError
from sketchapp.core.fileio import check_regular, read_user_file
from sketchapp.core.images import MAX_ASPECT, MAX_PIXELS, MAX_SIDE, READ_FORMATS
from sketchapp.core.svg import render_svg

#: Fewer pictures than this train a model that mostly remembers them.
FEW_IMAGES = 500
#: A picture this much wider than tall (within 6 %) holds two halves side by side.
SIDE_BY_SIDE_RATIO = 2.0
#: Two folders are a paired set when this share of the smaller one finds a partner.
PAIRED_SHARE = 0.5


@dataclass
class ScanReport:
    kind: str  # "dataset", "folder", "side-by-side", "paired" or "unpaired"
    folders: tuple[str, ...]
    count: int  # usable pictures ("folder") or pairs; for "unpaired" the larger folder (an epoch's pictures)
    counts: tuple[int, ...]  # usable pictures per folder
    skipped: list[Skipped] = field(default_factory=list)
    sizes: dict[str, int] = field(default_factory=dict)  # min/median/max width and height
    warnings: list[str] = field(default_factory=list)

    def summary(self) -> str:
        what = {
            "dataset": "a data set built by SketchApp",
            "folder": "a folder of pictures (sketches will be drawn automatically)",
            "side-by-side": "pictures holding a sketch and its image side by side",
            "paired": "sketches and images paired by file name",
            "unpaired": f"two unpaired folders ({self.counts[0]} sketches, {self.counts[-1]} pictures)",
        }[self.kind]
        unit = "pairs" if self.kind in ("paired", "side-by-side", "dataset") else "pictures"
        text = f"{self.count} {unit}: {what}"
        if self.skipped:
            text += f"; {len(self.skipped)} files skipped"
        return text


def _probe(path: Path) -> tuple[int, int]:
    """(width, height) from the header alone; raises SketchAppError with a reason."""
    if path.suffix.lower() in (".svg", ".svgz"):
        picture = render_svg(read_user_file(path, SketchAppError, "image"), path.name, 64)
        return picture.shape[1], picture.shape[0]
    check_regular(path, SketchAppError, "image")
    try:
        with Image.open(path, formats=READ_FORMATS) as image:
            width, height = image.size
            orientation = image.getexif().get(0x0112, 1) if hasattr(image, "getexif") else 1
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
        raise SketchAppError(f"not a readable image ({exc})") from exc
    if width * height > MAX_PIXELS:
        raise SketchAppError(f"{width}x{height} pixels, more than the {MAX_PIXELS // 1_000_000} megapixel limit")
    if max(width, height) > MAX_SIDE or max(width, height) > MAX_ASPECT * max(1, min(width, height)):
        raise SketchAppError(f"{width}x{height} pixels: more than {MAX_SIDE} a side, or narrower than 1:{MAX_ASPECT}")
    return (height, width) if orientation in (5, 6, 7, 8) else (width, height)


def _probe_all(
    root: Path, files: list[Path], skipped: list[Skipped], progress: Progress | None, cancel: CancelToken | None,
    done: int, total: int,
) -> dict[str, tuple[int, int]]:
    sizes: dict[str, tuple[int, int]] = {}
    for i, path in enumerate(files):
        if cancel is not None and cancel.cancelled:
            raise DataError("the scan was cancelled")
        if progress is not None:
            progress(done + i, total)
        name = _name(path, root)
        if name in sizes:
            skipped.append(Skipped(str(path), "same name as another file in the folder"))
            continue
        try:
            sizes[name] = _probe(path)
        except (SketchAppError, OSError) as exc:
            skipped.append(Skipped(str(path), reason(exc)))
    return sizes


def _statistics(sizes: Sequence[tuple[int, int]]) -> dict[str, int]:
    widths = np.array([w for w, _ in sizes])
    heights = np.array([h for _, h in sizes])
    return {
        "min_width": int(widths.min()), "median_width": int(np.median(widths)), "max_width": int(widths.max()),
        "min_height": int(heights.min()), "median_height": int(np.median(heights)), "max_height": int(heights.max()),
    }


def scan(
    folders: Sequence[str | os.PathLike[str]], progress: Progress | None = None, cancel: CancelToken | None = None
) -> ScanReport:
    """Classify one or two folders; DataError when they hold nothing usable."""
    roots = tuple(Path(f) for f in folders)
    if len(roots) not in (1, 2):
        raise DataError("choose one folder, or two (sketches and images)")
    if len(roots) == 1 and is_built_dataset(roots[0]):
        files = list_images(roots[0] / "pairs")
        return ScanReport("dataset", (str(roots[0]),), len(files), (len(files),))
    listed = [list_images(root) for root in roots]
    total = sum(len(files) for files in listed)
    skipped: list[Skipped] = []
    probed = []
    done = 0
    for root, files in zip(roots, listed):
        probed.append(_probe_all(root, files, skipped, progress, cancel, done, total))
        done += len(files)
    if progress is not None:
        progress(total, total)
    for root, sizes in zip(roots, probed):
        if not sizes:
            raise DataError(f"{root}: none of its {len(listed[roots.index(root)])} image files could be read")
    counts = tuple(len(sizes) for sizes in probed)
    every = [size for sizes in probed for size in sizes.values()]
    if len(roots) == 1:
        sizes = probed[0]
        wide = sum(1 for w, h in sizes.values() if abs(w / h - SIDE_BY_SIDE_RATIO) <= 0.06 * SIDE_BY_SIDE_RATIO)
        kind = "side-by-side" if wide >= 0.9 * len(sizes) else "folder"
        report = ScanReport(kind, (str(roots[0]),), len(sizes), counts, skipped, _statistics(every))
    else:
        common = set(probed[0]) & set(probed[1])
        if len(common) >= PAIRED_SHARE * min(counts):
            for index, root in enumerate(roots):
                for name in sorted(set(probed[index]) - common):
                    skipped.append(Skipped(str(root / name), "no partner with the same name in the other folder"))
            report = ScanReport("paired", tuple(map(str, roots)), len(common), counts, skipped, _statistics(every))
        else:
            report = ScanReport("unpaired", tuple(map(str, roots)), max(counts), counts, skipped, _statistics(every))
            for root, count in zip(roots, counts):
                if count < FEW_UNPAIRED:
                    report.warnings.append(f"{root.name} has only {count} usable pictures; unpaired training wants a few hundred in each folder")
    if report.kind != "unpaired" and report.count < FEW_IMAGES:
        report.warnings.append(
            f"only {report.count} usable; with fewer than {FEW_IMAGES} a model mostly remembers its pictures "
            "(fine-tuning a preset's model copes best)"
        )
    if report.sizes and min(report.sizes["min_width"], report.sizes["min_height"]) < 64:
        report.warnings.append("some pictures are smaller than 64 pixels and will be enlarged")
    return report
