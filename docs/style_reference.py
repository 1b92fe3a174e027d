"""Does a style reference show? Its palette in the drawn shapes, the paper left white, before and after.

Usage: QT_QPA_PLATFORM=offscreen python3 docs/style_reference.py --references DIR [PRESET] [--out docs/evaluation]

Drawings of ``freehand.py`` (drawn through the real canvas by the simulated hand) are
completed by the preset (default ``emoji-pix2pix``; seed 0, ink lines off) and given each
picture in DIR as a style reference, the way the window's *Style reference* does
(``core.style.stylise``, the preset's discriminator features, default settings):

- **before**: the method as it was until 2026-12-07, Gram matrices alone from the result
  as it is, the paper free to change (``colours`` 0 and no paper held);
- **after**: the reference's colour statistics carried into the drawn part first, then
  the Gram matrices, the paper held white.

Measured per drawing and reference: the palette distance (mean CIELab distance of the
drawn part's pixels to the nearest of the reference's 8 main colours; lower is nearer the
reference's palette) of the result, before and after, and the paper: its mean grey level
and the share of it more than 40 levels from white.

Writes OUT/style-reference-PRESET.png (a row per reference: the reference, then each
drawing's result, before and after) and prints a table.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import cv2
import numpy as np
from PIL import Image, ImageDraw, ImageFont

sys.path.insert(0, str(Path(__file__).resolve().parent))

import freehand  # noqa: E402
from freehand import DOCS  # noqa: E402
from PySide6.QtWidgets import QApplication  # noqa: E402

from sketchapp.core import style  # noqa: E402
from sketchapp.core.device import configure_cpu_threads, select_device  # noqa: E402
from sketchapp.core.engines import REGISTRY, open_engine  # noqa: E402
from sketchapp.core.images import load_image  # noqa: E402

DRAWINGS = ("smiley", "heart", "house", "fish")
TILE = 128
GAP = 6


def paper_scores(result: np.ndarray, drawing: np.ndarray) -> tuple[float, float]:
    """(mean grey level, share more than 40 levels from white) of the paper around the drawing."""
    outside = freehand.paper_around(cv2.resize(drawing, result.shape[:2][::-1], interpolation=cv2.INTER_AREA))
    grey = result.min(axis=2).astype(float)[outside]
    return float(grey.mean()), float((grey < 215).mean())


def styled(picture: np.ndarray, reference: np.ndarray, features: style.Features, before: bool) -> np.ndarray:
    settings = style.StyleSettings(colours=0.0) if before else style.StyleSettings()
    held = style.paper_of
    if before:  # the old method: nothing held
        style.paper_of = lambda p: np.zeros(p.shape[:2], bool)
    try:
        last = picture
        for _, last, _ in style.stylise(picture, reference, features, settings):
            pass
    finally:
        style.paper_of = held
    return last


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("presets", nargs="*", metavar="PRESET")
    parser.add_argument("--references", type=Path, required=True, help="a folder of reference pictures")
    parser.add_argument("--out", type=Path, default=DOCS / "evaluation")
    args = parser.parse_args()
    args.presets = args.presets or ["emoji-pix2pix"]
    args.model = []
    jobs = freehand.models_to_run(parser, args)
    app = QApplication(sys.argv[:1])  # noqa: F841 - the canvas needs it alive
    configure_cpu_threads()
    references = {p.stem: load_image(p, "RGB", max_side=512) for p in sorted(args.references.iterdir()) if p.is_file()}
    drawings = {name: d for name, d in freehand.drawings(512).items() if name in DRAWINGS}
    font = ImageFont.load_default(13)
    print("| preset | reference | drawing | palette distance before | after | paper grey before | after | paper coloured before | after |")
    print("|---|---|---|---:|---:|---:|---:|---:|---:|")
    for name, model, preset_settings in jobs:
        engine = open_engine(model, select_device("cpu"))
        settings = (preset_settings or REGISTRY[engine.kind].settings()).updated(seed=0, ink_lines=False)
        features = style.discriminator_features(engine.model)
        results = {d: freehand.complete(engine, drawing, settings) for d, drawing in drawings.items()}
        rows, totals = [], {"before": [], "after": []}
        for ref_name, reference in references.items():
            tiles = [np.asarray(Image.fromarray(reference).resize((TILE, TILE)))]
            for d, result in results.items():
                pair = [styled(result, reference, features, before) for before in (True, False)]
                scores = [(style.palette_distance(p, reference), *paper_scores(p, drawings[d])) for p in pair]
                for key, score in zip(("before", "after"), scores):
                    totals[key].append(score)
                (pb, gb, cb), (pa, ga, ca) = scores
                print(f"| {name} | {ref_name} | {d} | {pb:.1f} | {pa:.1f} | {gb:.0f} | {ga:.0f} | {cb:.0%} | {ca:.0%} |", flush=True)
                tiles += [np.asarray(Image.fromarray(p).resize((TILE, TILE))) for p in pair]
            rows.append((ref_name, tiles))
        for key, values in totals.items():
            mean = np.mean(values, axis=0)
            print(f"| {name} | all | {key} | {mean[0]:.1f} | | {mean[1]:.0f} | | {mean[2]:.0%} | |")
        width = len(rows[0][1]) * (TILE + GAP) + GAP
        sheet = Image.new("RGB", (width, 44 + len(rows) * (TILE + GAP + 16)), (236, 236, 236))
        pen = ImageDraw.Draw(sheet)
        pen.text((GAP, 6), f"{name}: reference, then each drawing before (Gram matrices alone) | after "
                 "(colours carried, paper held)", fill=(0, 0, 0), font=font)
        for index, (ref_name, tiles) in enumerate(rows):
            top = 30 + index * (TILE + GAP + 16)
            pen.text((GAP, top), ref_name, fill=(0, 0, 0), font=font)
            for column, tile in enumerate(tiles):
                sheet.paste(Image.fromarray(tile), (GAP + column * (TILE + GAP), top + 16))
        args.out.mkdir(parents=True, exist_ok=True)
        sheet.save(args.out / f"style-reference-{name}.png")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
