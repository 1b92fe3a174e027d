"""How a result looks enlarged: Lanczos against the learned x4 upscaler, on freehand drawings.

Usage: QT_QPA_PLATFORM=offscreen python3 docs/upscaler_sheet.py [PRESET ...] [--out docs/evaluation]

Each drawing of ``freehand.py`` (drawn through the real canvas by the simulated hand) is
completed by each pix2pix preset (seed 0, ink lines off) at the model's 128 px and enlarged
to 512 px, the size the result pane shows it at: plainly (Lanczos) and by the upscaler the
app ships. The sheet shows the whole picture and a quarter of it at one screen pixel per
picture pixel, where the difference is. Beside it, the edge steepness of each enlargement
(mean gradient on the edges of the model's own picture, over Lanczos's) is printed.

Writes OUT/upscaler-PRESET.png.
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

from sketchapp.core.device import configure_cpu_threads, select_device  # noqa: E402
from sketchapp.core.engines import REGISTRY, open_engine  # noqa: E402
from sketchapp.core.upscale import bundled_upscaler, enlarge, lanczos  # noqa: E402

DRAWINGS = ("smiley", "heart", "house", "fish", "sun", "apple")
SIDE = 512
GAP = 8


def steepness(picture: np.ndarray, edges: np.ndarray) -> float:
    grey = cv2.cvtColor(picture, cv2.COLOR_RGB2GRAY).astype(np.float32)
    magnitude = cv2.magnitude(cv2.Sobel(grey, cv2.CV_32F, 1, 0), cv2.Sobel(grey, cv2.CV_32F, 0, 1))
    return float(magnitude[edges].mean())


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("presets", nargs="*", default=["emoji-pix2pix", "3d-pix2pix"], metavar="PRESET")
    parser.add_argument("--out", type=Path, default=DOCS / "evaluation")
    args = parser.parse_args()
    args.presets = args.presets or ["emoji-pix2pix", "3d-pix2pix"]
    args.model = []
    jobs = freehand.models_to_run(parser, args)
    app = QApplication(sys.argv[:1])  # noqa: F841 - the canvas needs it alive
    configure_cpu_threads()
    upscaler = bundled_upscaler()
    if upscaler is None:
        parser.error("this install ships no upscaler (models/upscale-x4.safetensors)")
    drawings = {name: drawing for name, drawing in freehand.drawings(512).items() if name in DRAWINGS}
    font = ImageFont.load_default(15)
    print("| preset | drawing | edge steepness, upscaler over Lanczos |\n|---|---|---:|")
    for name, model, preset_settings in jobs:
        engine = open_engine(model, select_device("cpu"))
        settings = (preset_settings or REGISTRY[engine.kind].settings()).updated(seed=0, ink_lines=False)
        rows = []
        for drawing_name, drawing in drawings.items():
            result = freehand.complete(engine, drawing, settings)
            plain, sharp = lanczos(result, SIDE), enlarge(result, SIDE, upscaler)
            edges = cv2.dilate(cv2.Canny(cv2.cvtColor(plain, cv2.COLOR_RGB2GRAY), 30, 90), np.ones((3, 3), np.uint8)) > 0
            ratio = steepness(sharp, edges) / max(steepness(plain, edges), 1e-6)
            print(f"| {name} | {drawing_name} | {ratio:.2f} |")
            quarter = slice(SIDE // 4, SIDE // 4 + SIDE // 2)
            rows.append((drawing_name, [cv2.resize(result, (SIDE // 2, SIDE // 2), interpolation=cv2.INTER_NEAREST),
                                        plain[quarter, quarter], sharp[quarter, quarter]], ratio))
        tile = SIDE // 2
        sheet = Image.new("RGB", (3 * tile + 4 * GAP, 40 + len(rows) * (tile + GAP)), (236, 236, 236))
        pen = ImageDraw.Draw(sheet)
        pen.text((GAP, 8), f"{name}: the model's 128 px picture | Lanczos to 512 px | x4 upscaler to 512 px "
                 "(the middle quarter, 1:1)", fill=(0, 0, 0), font=font)
        for index, (drawing_name, tiles, ratio) in enumerate(rows):
            top = 40 + index * (tile + GAP)
            for column, pixels in enumerate(tiles):
                sheet.paste(Image.fromarray(pixels), (GAP + column * (tile + GAP), top))
            pen.text((GAP + 2 * (tile + GAP) + 6, top + 6), f"{drawing_name}: edges x{ratio:.2f}", fill=(0, 0, 0), font=font)
        args.out.mkdir(parents=True, exist_ok=True)
        sheet.save(args.out / f"upscaler-{name}.png")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
