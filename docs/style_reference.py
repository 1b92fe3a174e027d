"""Show what a style reference does with bundled presets: drawing | result | reference | restyled.

Usage: QT_QPA_PLATFORM=offscreen python3 docs/style_reference.py PRESET [PRESET ...] --reference PICTURE
       [--reference PICTURE ...] [--out docs/evaluation/style-reference.png]

Three of docs/freehand.py's drawings (drawn through the real canvas) are completed with
each preset (seed 0, ink lines off), then restyled toward each reference with the
window's defaults (core.style: the preset's own discriminator features, 150 steps,
strength 1). Prints the style distance (the style term at strength 1) to the reference
before and after, and the content term at the end: how much of the result was kept.
"""

from __future__ import annotations

import argparse
import os
import sys
from dataclasses import replace
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
sys.path.insert(0, str(Path(__file__).resolve().parent))

import numpy as np  # noqa: E402
from PIL import Image, ImageDraw, ImageFont  # noqa: E402
from PySide6.QtWidgets import QApplication  # noqa: E402

from freehand import complete, drawings  # noqa: E402
from sketchapp import paths  # noqa: E402
from sketchapp.core.device import configure_cpu_threads  # noqa: E402
from sketchapp.core.engines import open_engine  # noqa: E402
from sketchapp.core.images import load_image  # noqa: E402
from sketchapp.core.presets import find_preset, list_presets  # noqa: E402
from sketchapp.core.style import StyleSettings, discriminator_features, style_distance, stylise  # noqa: E402

DRAWINGS = ("smiley", "heart", "fish")
CELL, GAP, LABEL_H = 160, 6, 22


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("presets", nargs="+", metavar="PRESET")
    parser.add_argument("--reference", action="append", required=True, metavar="PICTURE")
    parser.add_argument("--out", type=Path, default=Path(__file__).resolve().parent / "evaluation" / "style-reference.png")
    args = parser.parse_args()
    app = QApplication(sys.argv[:1])  # noqa: F841 - the canvas needs it alive
    configure_cpu_threads()
    bundled, _ = list_presets([(paths.bundled_presets_dir(), "bundled")], (paths.bundled_models_dir(),))
    references = [(Path(p).name, load_image(p, "RGB", max_side=1024)) for p in args.reference]
    rows: list[tuple[str, list[np.ndarray]]] = []
    print("| preset | drawing | reference | style distance before | after | content change |\n|---|---|---|---:|---:|---:|")
    for key in args.presets:
        preset = find_preset(key, bundled)
        engine = open_engine(preset.model, "cpu")
        settings = replace(preset.settings.updated(seed=0), ink_lines=False)
        features = discriminator_features(engine.model)
        sketches = drawings(engine.half_size * 4)
        for name in DRAWINGS:
            sketch = sketches[name]
            result = complete(engine, sketch, settings)
            cells = [np.repeat(np.asarray(Image.fromarray(sketch).resize(result.shape[:2][::-1]))[..., None], 3, 2), result]
            for ref_name, reference in references:
                *_, (_, styled, losses) = stylise(result, reference, features, StyleSettings())
                before, after = style_distance(result, reference, features), style_distance(styled, reference, features)
                print(f"| {key} | {name} | {ref_name} | {before:.3f} | {after:.3f} | {losses['content']:.3f} |")
                fitted = np.asarray(Image.fromarray(reference).resize(result.shape[:2][::-1], Image.Resampling.LANCZOS))
                cells += [fitted, styled]
            rows.append((f"{key}: {name}", cells))
    columns = len(rows[0][1])
    sheet = Image.new("RGB", (columns * (CELL + GAP) + GAP, len(rows) * (CELL + GAP + LABEL_H) + GAP), (236, 236, 236))
    pen = ImageDraw.Draw(sheet)
    font = ImageFont.load_default(13)
    heads = ["drawing", "result"] + [text for ref_name, _ in references for text in (f"reference {ref_name}", "restyled")]
    for index, (label, cells) in enumerate(rows):
        top = GAP + index * (CELL + GAP + LABEL_H)
        pen.text((GAP, top), f"{label}    " + " | ".join(heads), fill=(0, 0, 0), font=font)
        for column, pixels in enumerate(cells):
            cell = Image.fromarray(pixels).resize((CELL, CELL), Image.Resampling.LANCZOS)
            sheet.paste(cell, (GAP + column * (CELL + GAP), top + LABEL_H))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    sheet.quantize(256, method=Image.Quantize.MEDIANCUT).save(args.out, optimize=True)
    print(f"wrote {args.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
