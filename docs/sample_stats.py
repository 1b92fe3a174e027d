"""Compare what a model draws from random codes with its training pictures, by numbers.

Usage: python3 docs/sample_stats.py --data DATASET MODEL [MODEL ...] [--count 512] [--seed 1]

A sample grid is judged by eye; these figures say where a model's random-code pictures
differ from the data they imitate, so that "the grid is rough" can be checked on more
than 32 pictures and a training run can be stopped when they come close. Each picture
is measured the same way for the training split of DATASET (a built data set), for
COUNT random codes of each MODEL (uniform in [-1, 1], seeded) and, where the model has
an encoder, for the codes it gives the validation split's sketches (what the app starts
a completion from). A Markdown table row is printed per source:

- blank: share of image halves with under 1% drawn (not white) pixels
- low colour: share of image halves with under 5% coloured pixels (chroma, the max - min
  of R, G and B, above 0.15); OpenMoji has many black-line symbols, so this is not the
  share of empty pictures
- colour: mean share of coloured pixels in the image halves
- ink: mean share of sketch-half pixels darker than mid-grey
- pieces: median number of separate (8-connected) ink pieces in a sketch half; a clean
  outline is a few long pieces, a loose scribble many
- fill roughness: mean absolute Laplacian of the grey image half inside its fills (drawn
  pixels at least 2 px from white paper and from dark line pixels), over the pictures
  that have fills; flat colour scores near 0, shading, blotches and textures higher
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import cv2
import numpy as np
import torch

from sketchapp.core.engines.contextual.model import JointModel, load_model
from sketchapp.core.data.datasets import load_dataset
from sketchapp.core.engine import to_uint8
from sketchapp.core.errors import SketchAppError
from sketchapp.core.engines.contextual.networks import sample_z
from sketchapp.core.prepare import sketch_tensor

COLOURED, LOW_COLOUR, BLANK, DARK, DRAWN = 0.15, 0.05, 0.01, 0.5, 0.9
MARGIN = np.ones((5, 5), np.uint8)  # 2 px each way
COLUMNS = ("pictures", "blank", "low colour", "colour", "ink", "pieces", "fill roughness")


def measure(joint: np.ndarray) -> tuple[float, float, float, int, float]:
    """Drawn share, coloured share, ink share, ink pieces and fill roughness (NaN: no fills)
    of one (S, 2S, 3) uint8 picture."""
    side = joint.shape[0]
    sketch = joint[:, :side].mean(axis=2) / 255.0
    image = joint[:, side:].astype(np.float32) / 255.0
    grey = cv2.cvtColor(joint[:, side:], cv2.COLOR_RGB2GRAY).astype(np.float32) / 255.0
    drawn = (image.min(axis=2) < DRAWN).astype(np.uint8)
    coloured = float(((image.max(axis=2) - image.min(axis=2)) > COLOURED).mean())
    ink = (sketch < DARK).astype(np.uint8)
    pieces = cv2.connectedComponents(ink, connectivity=8)[0] - 1
    lines = cv2.dilate((grey < DARK).astype(np.uint8), MARGIN) > 0
    fills = (cv2.erode(drawn, MARGIN) > 0) & ~lines
    laplacian = np.abs(cv2.Laplacian(grey, cv2.CV_32F))
    roughness = float(laplacian[fills].mean()) if fills.any() else float("nan")
    return float(drawn.mean()), coloured, float(ink.mean()), pieces, roughness


def row(name: str, pictures: np.ndarray) -> str:
    drawn, coloured, ink, pieces, roughness = (np.array(v) for v in zip(*(measure(p) for p in pictures)))
    cells = (
        f"{len(pictures)}", f"{(drawn < BLANK).mean():.3f}", f"{(coloured < LOW_COLOUR).mean():.3f}",
        f"{coloured.mean():.3f}", f"{ink.mean():.3f}", f"{np.median(pieces):.0f}", f"{np.nanmean(roughness):.3f}",
    )
    return f"| {name} | " + " | ".join(cells) + " |"


def random_pictures(model: JointModel, count: int, seed: int) -> np.ndarray:
    codes = sample_z(count, model.config.z_dim, torch.Generator().manual_seed(seed))
    with torch.no_grad():
        return np.concatenate([to_uint8(model.generator(codes[i : i + 64])) for i in range(0, count, 64)])


def encoder_pictures(model: JointModel, sketches: np.ndarray) -> np.ndarray | None:
    """What the model draws from its encoder's codes for grey uint8 sketches (N, S, S)."""
    if model.encoder is None:
        return None
    size, width = model.config.half_size, model.line_width  # thin lines thickened, as completion does
    halves = torch.cat([sketch_tensor(sketch, size, width) for sketch in sketches])
    with torch.no_grad():
        return to_uint8(model.generator(model.encoder(halves)))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("models", nargs="+", type=Path, metavar="MODEL", help="model checkpoint (.safetensors)")
    parser.add_argument("--data", type=Path, required=True, help="built data set (sketchapp data ...)")
    parser.add_argument("--count", type=int, default=512, help="random codes per model (default 512)")
    parser.add_argument("--seed", type=int, default=1, help="seed of the codes (default 1)")
    args = parser.parse_args()
    try:
        pairs = load_dataset(args.data)
        models = [(path.name, load_model(path)) for path in args.models]
    except SketchAppError as exc:
        parser.error(str(exc))
    print("| source | " + " | ".join(COLUMNS) + " |")
    print("|---|" + "---:|" * len(COLUMNS))
    print(row(f"training split of `{args.data.name}`", pairs.split("train").joint()))
    for name, model in models:
        print(row(f"`{name}`, random codes", random_pictures(model, args.count, args.seed)))
        encoded = encoder_pictures(model, pairs.split("val").sketches)
        if encoded is not None:
            print(row(f"`{name}`, encoder codes of the validation sketches", encoded))
    return 0


if __name__ == "__main__":
    sys.exit(main())
