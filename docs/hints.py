"""Measure how the shipped pix2pix presets follow a colour hint, on their data set's test split.

Usage: python3 docs/hints.py PRESET=DATASET [PRESET=DATASET ...] [--seed 0]

For every test sketch one dab of hint colour is painted where a person would put it:
a 5x5 px square on the object (at least 4 px inside its silhouette and off the drawn
lines), in a colour the truth does not have there (the truth's own colour at that spot
turned 90-270 degrees round the hue circle, as a user asking for "this part in blue"
would). The preset completes the sketch with and without the dab (its own settings,
ink lines off, seed 0), and the mean RGB distance (0-255 per channel) to the asked
colour is measured on the dab and on the object around it (a 15x15 px square, off the
lines). A Markdown table row is printed per preset: the distances without and with
the hint, and the share of dabs whose surroundings end within 40 levels of the colour.
"""

from __future__ import annotations

import argparse
import math
import sys
from dataclasses import replace

import cv2
import numpy as np
import torch

from sketchapp import paths
from sketchapp.core.data.datasets import load_dataset
from sketchapp.core.engines import REGISTRY, open_engine
from sketchapp.core.engines.pix2pix.recipe import rotate_hue
from sketchapp.core.errors import SketchAppError
from sketchapp.core.presets import find_preset, list_presets

DAB, AROUND = 5, 15


def place(truth: np.ndarray, sketch: np.ndarray, rng: np.random.Generator) -> tuple[int, int] | None:
    """Top-left of a DAB square on the object, away from its edge and the lines; None if there is no room."""
    drawn = (truth.min(2) < 235).astype(np.uint8)
    inside = cv2.erode(drawn, np.ones((9, 9), np.uint8)) & cv2.erode((sketch > 128).astype(np.uint8), np.ones((5, 5), np.uint8))
    ys, xs = np.nonzero(inside[: -DAB, : -DAB])
    if len(ys) == 0:
        return None
    pick = rng.integers(len(ys))
    return int(ys[pick]), int(xs[pick])


def asked_colour(truth: np.ndarray, y: int, x: int, rng: np.random.Generator) -> np.ndarray:
    """The truth's mean colour on the dab, turned 90-270 degrees round the hue circle (uint8 RGB)."""
    patch = torch.from_numpy(truth[y : y + DAB, x : x + DAB].astype(np.float32) / 127.5 - 1).permute(2, 0, 1)[None]
    angle = torch.tensor([math.radians(rng.uniform(90, 270))])
    turned = rotate_hue(patch, angle, saturation=torch.tensor([1.5]))
    return ((turned[0].mean((1, 2)) + 1) * 127.5).round().clamp(0, 255).numpy().astype(np.uint8)


def measure(preset_name: str, data: str, seed: int) -> dict[str, float]:
    bundled, _problems = list_presets([(paths.bundled_presets_dir(), "bundled")], (paths.bundled_models_dir(),))
    preset = find_preset(preset_name, bundled)
    engine = open_engine(preset.model, torch.device("cpu"))
    settings = replace((preset.settings or REGISTRY[engine.kind].settings()).updated(seed=0), ink_lines=False)
    test = load_dataset(data).split("test")
    rng = np.random.default_rng(seed)
    rows = []
    for sketch, truth in zip(test.sketches, test.images):
        spot = place(truth, sketch, rng)
        if spot is None:
            continue
        y, x = spot
        colour = asked_colour(truth, y, x, rng)
        hints = np.zeros((*sketch.shape, 4), np.uint8)
        hints[y : y + DAB, x : x + DAB] = [*colour, 255]
        plain = next(iter(engine.start(sketch, None, settings))).images()[0].astype(np.float32)
        hinted = next(iter(engine.start(sketch, hints, settings))).images()[0].astype(np.float32)
        around = np.zeros(sketch.shape, bool)
        c = (y + DAB // 2, x + DAB // 2)
        around[max(0, c[0] - AROUND // 2) : c[0] + AROUND // 2 + 1, max(0, c[1] - AROUND // 2) : c[1] + AROUND // 2 + 1] = True
        around &= (truth.min(2) < 235) & (sketch > 128)
        dab = np.zeros(sketch.shape, bool)
        dab[y : y + DAB, x : x + DAB] = True

        def distance(picture: np.ndarray, where: np.ndarray) -> float:
            return float(np.abs(picture[where] - colour.astype(np.float32)).mean())

        rows.append((distance(plain, dab), distance(hinted, dab), distance(plain, around), distance(hinted, around)))
    table = np.array(rows)
    return {"cases": len(rows), "dab_plain": table[:, 0].mean(), "dab_hinted": table[:, 1].mean(),
            "around_plain": table[:, 2].mean(), "around_hinted": table[:, 3].mean(), "followed": (table[:, 3] < 40).mean()}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("pairs", nargs="+", metavar="PRESET=DATASET")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    torch.set_num_threads(2)
    print("| preset | dabs | on the dab, no hint | on the dab, hinted | around it, no hint | around it, hinted | followed (< 40) |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for pair in args.pairs:
        name, _, data = pair.partition("=")
        try:
            r = measure(name, data, args.seed)
        except SketchAppError as exc:
            print(f"{name}: {exc}", file=sys.stderr)
            return 1
        print(f"| `{name}` | {r['cases']} | {r['dab_plain']:.0f} | {r['dab_hinted']:.0f} | {r['around_plain']:.0f} | "
              f"{r['around_hinted']:.0f} | {r['followed']:.0%} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
