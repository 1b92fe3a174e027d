"""How fast each sketch style runs: fast enough to preview live as a slider moves?

Run by hand: ``python benchmarks/styles.py``. Results go to docs/benchmarks.md.
"""

from __future__ import annotations

import datetime as dt
import platform
import statistics
import time

import cv2
import numpy as np

from sketchapp.core.data.styles import STYLES, apply_style


def picture(side: int) -> np.ndarray:
    """A busy synthetic photo: overlapping coloured shapes, a gradient and noise."""
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:side, 0:side]
    img = np.dstack([xx * 200 // side, yy * 200 // side, np.full_like(xx, 120)]).astype(np.uint8)
    for _ in range(40):
        centre = tuple(int(v) for v in rng.integers(0, side, 2))
        colour = tuple(int(v) for v in rng.integers(0, 255, 3))
        cv2.circle(img, centre, int(rng.integers(side // 40, side // 6)), colour, -1)
    return np.clip(img + rng.normal(0, 5, img.shape), 0, 255).astype(np.uint8)


def main() -> None:
    sizes = (256, 512, 1024)
    print(f"# {dt.date.today()} | {platform.machine()} | OpenCV {cv2.__version__} threads {cv2.getNumThreads()}")
    print("| style | " + " | ".join(f"{s} x {s}" for s in sizes) + " |")
    print("|---|" + "---|" * len(sizes))
    for style in STYLES:
        cells = []
        for side in sizes:
            img = picture(side)
            apply_style(style, img)
            times = []
            for _ in range(15):
                start = time.perf_counter()
                apply_style(style, img)
                times.append(time.perf_counter() - start)
            cells.append(f"{statistics.median(times) * 1000:.1f} ms")
        print(f"| {style} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
