"""Complete ten freehand drawings with bundled presets, measure and save a contact sheet per preset.

Usage: QT_QPA_PLATFORM=offscreen python3 docs/freehand.py PRESET [PRESET ...] [--model NAME=FILE ...]
       [--ink-lines] [--out docs/evaluation]

The drawings (smiley, cat head, heart, ...) are drawn through the real canvas widget with
synthetic mouse events, so its own default brush, assumed mouse pressure, smoothing and
widget -> document transform build the strokes. Each stroke becomes mouse positions about
1.5-5 px apart (slower at its ends), with a seeded hand wobble, rounded to whole pixels.
A drawing is exported as the main window hands it to the completion worker and completed
in-process with the preset's own settings (seed 0, CPU), ink lines off unless asked, so the
model's own picture is judged. Writes OUT/freehand-PRESET.png: a row per drawing, the drawing
beside the best candidate, with the settings in the header; and prints, per drawing, how well
the result follows the lines (edge precision and recall against the drawing, as ``evaluate``
measures them) and how much colour it puts outside the drawing (the share of the paper
around the drawn shapes that is not left white).
"""

from __future__ import annotations

import argparse
import functools
import math
import os
import sys
import time
import zlib
from dataclasses import replace
from pathlib import Path
from typing import Any

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import numpy as np  # noqa: E402
from PIL import Image, ImageDraw, ImageFont  # noqa: E402
from PySide6.QtCore import QPoint, Qt  # noqa: E402
from PySide6.QtTest import QTest  # noqa: E402
from PySide6.QtWidgets import QApplication  # noqa: E402

import cv2  # noqa: E402

from sketchapp import paths  # noqa: E402
from sketchapp.core.device import configure_cpu_threads, select_device  # noqa: E402
from sketchapp.core.engines import REGISTRY, open_engine  # noqa: E402
from sketchapp.core.errors import PresetError  # noqa: E402
from sketchapp.core.evaluation import sketch_fidelity  # noqa: E402
from sketchapp.core.presets import find_preset, list_presets  # noqa: E402
from sketchapp.ui.canvas import Canvas  # noqa: E402
from sketchapp.ui.sketch import SketchDocument  # noqa: E402

DOCS = Path(__file__).resolve().parent
SIDE = 512  # MainWindow: SketchDocument(512)
MARGIN = 8  # Canvas.transform(): fit zoom = (min(w, h) - 16) / side, centred
WIDGET = SIDE + 2 * MARGIN  # zoom 1.0: one widget pixel per document unit
HAND_SEED, WOBBLE, SEED = 7, 2.0, 0  # hand wobble seed and drift (px RMS); completion seed
CELL, GAP, LABEL_W, HEADER_H = 256, 8, 100, 64

Point = tuple[float, float]
Shape = tuple[np.ndarray, bool]  # a stroke's path in document units (y down), and whether it is closed


def arc(cx: float, cy: float, rx: float, ry: float, a0: float, a1: float) -> np.ndarray:
    """Points on an ellipse from angle a0 to a1 (degrees; 0 = right, 90 = down)."""
    t = np.radians(np.linspace(a0, a1, max(8, int(abs(a1 - a0) / 3))))
    return np.stack([cx + rx * np.cos(t), cy + ry * np.sin(t)], 1)


def circle(cx: float, cy: float, r: float, start: float = -90.0, ry: float | None = None) -> np.ndarray:
    return arc(cx, cy, r, ry or r, start, start + 360)


def line(*points: Point) -> np.ndarray:
    return np.array(points, float)


def bezier(p0: Point, p1: Point, p2: Point, p3: Point, n: int = 40) -> np.ndarray:
    t = np.linspace(0, 1, n)[:, None]
    a, b, c, d = (np.array(p, float) for p in (p0, p1, p2, p3))
    return (1 - t) ** 3 * a + 3 * (1 - t) ** 2 * t * b + 3 * (1 - t) * t**2 * c + t**3 * d


def polar(cx: float, cy: float, r: float, deg: float) -> Point:
    return (cx + r * math.cos(math.radians(deg)), cy + r * math.sin(math.radians(deg)))


def shapes() -> dict[str, list[Shape]]:
    """The ten drawings: name -> strokes."""
    cat_outline = np.concatenate([
        line(polar(256, 292, 165, 200), (118, 70), polar(256, 292, 165, 243)), arc(256, 292, 165, 165, 243, 297),
        line(polar(256, 292, 165, 297), (394, 70), polar(256, 292, 165, 340)), arc(256, 292, 165, 165, 340, 560)])
    cat_mouth = np.concatenate([arc(240, 340, 16, 16, 0, 150)[::-1], arc(272, 340, 16, 16, 30, 180)[::-1]])
    whiskers = [line((256 + side * 62, 336 + dy), (256 + side * 215, ty))
                for side in (-1, 1) for dy, ty in ((-8, 300), (6, 338), (20, 378))]
    t = np.linspace(0, 2 * np.pi, 160)
    heart = np.stack([256 + 12 * (16 * np.sin(t) ** 3),
                      246 - 12 * (13 * np.cos(t) - 5 * np.cos(2 * t) - 2 * np.cos(3 * t) - np.cos(4 * t))], 1)
    ticks = [line(polar(256, 256, 165 if hour % 3 else 150, hour * 30 - 90), polar(256, 256, 182, hour * 30 - 90))
             for hour in range(12)]
    rays = [line(polar(256, 256, 125, i * 30 - 90), polar(256, 256, 180 if i % 2 else 205, i * 30 - 90))
            for i in range(12)]
    fish = np.concatenate([bezier((75, 262), (150, 120), (300, 130), (370, 258)),
                           bezier((370, 258), (300, 390), (150, 400), (75, 262))])
    apple = np.concatenate([bezier((256, 160), (205, 115), (85, 125), (82, 275)),
                            bezier((82, 275), (82, 400), (185, 480), (256, 440)),
                            bezier((256, 440), (327, 480), (430, 400), (430, 275)),
                            bezier((430, 275), (427, 125), (307, 115), (256, 160))])
    leaf = np.concatenate([bezier((268, 118), (295, 70), (345, 62), (375, 80)),
                           bezier((375, 80), (345, 120), (300, 130), (268, 118))])
    return {
        "smiley": [(circle(256, 256, 190), True), (circle(190, 200, 14, ry=24), True),
                   (circle(322, 200, 14, ry=24), True), (arc(256, 270, 115, 95, 20, 160), False)],
        "cat-head": [(cat_outline, True), (circle(196, 262, 20, ry=28), True), (circle(316, 262, 20, ry=28), True),
                     (line((242, 320), (270, 320), (256, 336), (242, 320)), True), (cat_mouth, False)]
        + [(whisker, False) for whisker in whiskers],
        "heart": [(heart, True)],
        "star": [(line(*(polar(256, 270, 82 if i % 2 else 205, -90 + 36 * i) for i in range(11))), True)],
        "balloon": [(circle(256, 200, 135, start=100, ry=165), True),
                    (line((256, 364), (238, 388), (274, 388), (256, 364)), True),
                    (bezier((256, 388), (300, 420), (205, 455), (262, 500)), False)],
        "clock": [(circle(256, 256, 195), True), (circle(256, 256, 7), True)] + [(tick, False) for tick in ticks]
        + [(line((256, 256), polar(256, 256, 95, -150)), False), (line((256, 256), polar(256, 256, 140, -30)), False)],
        "sun": [(circle(256, 256, 95), True)] + [(ray, False) for ray in rays],
        "house": [(line((130, 250), (130, 455), (382, 455), (382, 250)), False),
                  (line((100, 262), (256, 95), (412, 262), (100, 262)), True),
                  (line((320, 166), (320, 120), (355, 120), (355, 199)), False),
                  (line((226, 455), (226, 360), (286, 360), (286, 455)), False),
                  (line((160, 300), (210, 300), (210, 350), (160, 350), (160, 300)), True),
                  (line((185, 300), (185, 350)), False), (line((160, 325), (210, 325)), False)],
        "fish": [(fish, True), (line((370, 258), (455, 175), (440, 262), (455, 345), (370, 258)), True),
                 (circle(140, 240, 11), True), (arc(130, 262, 55, 70, -40, 40), False),
                 (bezier((200, 172), (225, 115), (290, 118), (305, 180)), False)],
        "apple": [(apple, True), (bezier((256, 162), (258, 130), (262, 105), (276, 75)), False), (leaf, True)],
    }


def resample(path: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Mouse-event positions along ``path``: ~1.5 px apart at the ends of a stroke, ~3.5-5 px mid-way."""
    s = np.concatenate([[0], np.cumsum(np.hypot(*np.diff(path, axis=0).T))])
    length = s[-1]
    if length < 1:
        return path[:1]
    positions, at, fast = [0.0], 0.0, rng.uniform(3.5, 5.0)
    while at < length:
        at = min(length, at + 1.5 + (fast - 1.5) * math.sin(math.pi * at / length))
        positions.append(at)
    return np.stack([np.interp(positions, s, path[:, 0]), np.interp(positions, s, path[:, 1])], 1)


def smooth_noise(count: int, rng: np.random.Generator, width: float) -> np.ndarray:
    """(count, 2) low-frequency noise of unit RMS."""
    raw = rng.normal(size=(count + 60, 2))
    kernel = np.exp(-0.5 * (np.arange(-30, 31) / width) ** 2)
    out = np.stack([np.convolve(raw[:, i], kernel / kernel.sum(), mode="valid") for i in range(2)], 1)[:count]
    return out / max(1e-9, float(np.sqrt((out**2).mean())))


def handmade(path: np.ndarray, closed: bool, rng: np.random.Generator) -> np.ndarray:
    """What a hand on a mouse makes of ``path``: drift, jitter, a slight shift, closed shapes over- or undershot."""
    if closed:
        seg = np.hypot(*np.diff(path, axis=0).T)
        extra = rng.uniform(-4.0, 14.0)
        if extra > 0:
            path = np.concatenate([path, path[1 : np.searchsorted(np.cumsum(seg), extra) + 2]])
        else:
            path = path[: len(path) - int(np.argmax(np.cumsum(seg[::-1]) > -extra))]
    points = resample(path, rng)
    drift = smooth_noise(len(points), rng, width=rng.uniform(6, 12)) * WOBBLE
    return points + drift + rng.normal(scale=0.35, size=points.shape) + rng.normal(scale=1.5, size=2)


@functools.cache
def drawings(side: int) -> dict[str, np.ndarray]:
    """Every drawing, drawn on a fresh canvas and exported at ``side`` px as MainWindow.request_completion does."""
    return drawn(side, shapes())


def drawn(side: int, figures: dict[str, list[Shape]], brush_factor: float | None = None) -> dict[str, np.ndarray]:
    """Each of ``figures`` drawn on a fresh canvas with its default brush (times ``brush_factor``), by the
    simulated hand, and exported at ``side`` px as MainWindow.request_completion does."""
    exported: dict[str, np.ndarray] = {}
    for name, strokes in figures.items():
        document = SketchDocument(SIDE)
        canvas = Canvas(document)
        if brush_factor is not None:
            canvas.set_brush(canvas.brush * brush_factor)
        canvas.resize(WIDGET, WIDGET)
        canvas.show()
        QApplication.processEvents()
        if abs(canvas.transform().m11() - 1.0) > 1e-9:
            raise SystemExit(f"{name}: the canvas is not at zoom 1")
        rng = np.random.default_rng([HAND_SEED, zlib.crc32(name.encode())])
        for path, closed in strokes:
            pixels = [QPoint(int(round(x)) + MARGIN, int(round(y)) + MARGIN) for x, y in handmade(path, closed, rng)]
            QTest.mousePress(canvas, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier, pixels[0])
            for pixel in pixels[1:]:
                QTest.mouseMove(canvas, pixel)
            QTest.mouseRelease(canvas, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier, pixels[-1])
        QApplication.processEvents()
        if len(document.strokes) != len(strokes):
            raise SystemExit(f"{name}: the canvas took {len(document.strokes)} strokes of {len(strokes)}")
        exported[name] = document.to_array(side)
        canvas.close()
        canvas.deleteLater()
    return exported


def complete(engine: Any, sketch: np.ndarray, settings: Any) -> np.ndarray:
    """The best candidate, as `sketchapp complete` saves it (inked when the settings ask for it)."""
    last = None
    for snapshot in engine.start(sketch, None, settings):
        last = snapshot
    if last is None or not last.final:
        raise SystemExit("the completion ended without a final result")
    return last.results()[last.best]


def paper_around(drawing: np.ndarray) -> np.ndarray:
    """The paper outside every drawn shape: pixels the page's border reaches without crossing a line."""
    ink = (drawing < 160).astype(np.uint8)
    walls = cv2.dilate(ink, np.ones((3, 3), np.uint8), iterations=max(1, drawing.shape[0] // 64))
    free = (1 - walls).astype(np.uint8)
    padded = cv2.copyMakeBorder(free, 1, 1, 1, 1, cv2.BORDER_CONSTANT, value=1)
    mask = np.zeros((padded.shape[0] + 2, padded.shape[1] + 2), np.uint8)
    cv2.floodFill(padded, mask, (0, 0), 2)
    return (padded[1:-1, 1:-1] == 2) & (free == 1)


#: Results are measured at this side (larger ones reduced to it first): the edge tolerance is in
#: pixels, so models of different sizes are compared at one scale.
MEASURE_SIDE = 128


def measure(drawing: np.ndarray, result: np.ndarray) -> dict[str, float]:
    """Edge precision and recall of the result against the drawing, and the coloured share of the paper around it."""
    if result.shape[0] > MEASURE_SIDE:
        result = cv2.resize(result, (MEASURE_SIDE, MEASURE_SIDE), interpolation=cv2.INTER_AREA)
    side = result.shape[0]
    small = cv2.resize(drawing, (side, side), interpolation=cv2.INTER_AREA)
    precision, recall = sketch_fidelity(result, small)
    outside = paper_around(small)
    coloured = (255 - result.min(axis=2).astype(int)) > 40
    return {"precision": precision, "recall": recall, "outside": float(coloured[outside].mean()) if outside.any() else 0.0}


def settings_line(settings: Any, engine: Any) -> str:
    if engine.capabilities.latents:
        return (f"{settings.iterations} iterations, {settings.candidates} candidates, seed {settings.seed}, "
                f"ink lines {'on' if settings.ink_lines else 'off'}")
    return f"one pass ({engine.kind}), seed {settings.seed}, ink lines {'on' if settings.ink_lines else 'off'}"


def sheet(title: str, subtitle: str, rows: list[tuple[str, np.ndarray, np.ndarray, dict[str, float]]]) -> Image.Image:
    width, height = LABEL_W + 2 * CELL + 3 * GAP, HEADER_H + len(rows) * (CELL + GAP)
    picture = Image.new("RGB", (width, height), (236, 236, 236))
    pen = ImageDraw.Draw(picture)
    big, small = ImageFont.load_default(17), ImageFont.load_default(12)
    pen.text((GAP, 6), title, fill=(0, 0, 0), font=big)
    pen.text((GAP, 28), subtitle, fill=(60, 60, 60), font=small)
    pen.text((LABEL_W + GAP, 46), "drawing (canvas export)", fill=(60, 60, 60), font=small)
    pen.text((LABEL_W + CELL + 2 * GAP, 46), "completion (best candidate)", fill=(60, 60, 60), font=small)
    for index, (name, drawing, result, scores) in enumerate(rows):
        top = HEADER_H + index * (CELL + GAP)
        pen.text((GAP, top + CELL // 2 - 20), name, fill=(0, 0, 0), font=big)
        pen.text((GAP, top + CELL // 2 + 4), f"recall {scores['recall']:.2f}\nout {scores['outside']:.2f}",
                 fill=(60, 60, 60), font=small)
        for column, pixels in enumerate((drawing, result)):
            cell = Image.fromarray(pixels).convert("RGB").resize((CELL, CELL), Image.Resampling.LANCZOS)
            picture.paste(cell, (LABEL_W + GAP + column * (CELL + GAP), top))
    return picture


def models_to_run(parser: argparse.ArgumentParser, args: argparse.Namespace) -> list[tuple[str, Path, Any]]:
    """(name, model file, preset settings or None) of each bundled preset in ``args.presets`` and each
    ``--model NAME=FILE``; a usage error for a preset that is not there or a model without a name."""
    bundled, _problems = list_presets([(paths.bundled_presets_dir(), "bundled")], (paths.bundled_models_dir(),))
    jobs: list[tuple[str, Path, Any]] = []
    try:
        jobs += [(p.id, p.model, p.settings) for p in (find_preset(key, bundled) for key in args.presets)]
    except PresetError as exc:
        parser.error(str(exc))
    for given in args.model:
        name, _, file = given.partition("=")
        if not file:
            parser.error(f"--model takes NAME=FILE, got {given!r}")
        jobs.append((name, Path(file), None))
    if not jobs:
        parser.error("give a preset or --model NAME=FILE")
    return jobs


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("presets", nargs="*", metavar="PRESET", help="bundled preset id, e.g. emoji-colour")
    parser.add_argument("--model", action="append", default=[], metavar="NAME=FILE",
                        help="also a model file (its engine's default settings), shown as NAME")
    parser.add_argument("--ink-lines", action="store_true", help="ink the drawing over the results (default: off)")
    parser.add_argument("--out", type=Path, default=DOCS / "evaluation", help="default: docs/evaluation")
    args = parser.parse_args()
    jobs = models_to_run(parser, args)
    app = QApplication(sys.argv[:1])  # noqa: F841 - the canvas needs it alive
    device = select_device("cpu")
    configure_cpu_threads()
    args.out.mkdir(parents=True, exist_ok=True)
    print("| model | drawing | edge precision | edge recall | colour outside |\n|---|---|---:|---:|---:|")
    for name, model, preset_settings in jobs:
        began = time.perf_counter()
        engine = open_engine(model, device)
        settings = (preset_settings or REGISTRY[engine.kind].settings()).updated(seed=SEED)
        settings = replace(settings, ink_lines=args.ink_lines)
        engine.warm_up(settings)
        rows: list[tuple[str, np.ndarray, np.ndarray, dict[str, float]]] = []
        for drawing_name, sketch in drawings(engine.half_size * 4).items():  # MainWindow: side = model size x 4
            result = complete(engine, sketch, settings)
            scores = measure(sketch, complete(engine, sketch, replace(settings, ink_lines=False)) if args.ink_lines else result)
            rows.append((drawing_name, sketch, result, scores))
            print(f"| {name} | {drawing_name} | {scores['precision']:.2f} | {scores['recall']:.2f} | {scores['outside']:.2f} |")
        mean = {key: float(np.mean([row[3][key] for row in rows])) for key in ("precision", "recall", "outside")}
        print(f"| {name} | **mean** | {mean['precision']:.2f} | {mean['recall']:.2f} | {mean['outside']:.2f} |")
        path = args.out / f"freehand-{name}.png"
        title = f"{name}: {model.name}"
        # 256 colours keep the committed sheets small; the eye sees no difference at this size
        sheet(title, settings_line(settings, engine), rows).quantize(256, method=Image.Quantize.MEDIANCUT).save(path, optimize=True)
        print(f"wrote {path} ({time.perf_counter() - began:.0f} s)", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
