"""Evaluation of a completion model on held-out sketch/image pairs.

For every test pair the sketch is completed from three starts and read at several
iteration counts (one run per start; the best candidate by the engine's own loss is
what a user would see at that moment):

* ``random``  best K of 30 random codes, then optimisation (the paper);
* ``encoder`` the encoder's code alone, no optimisation (one forward pass);
* ``refine``  the encoder's code and jittered neighbours, then optimisation (iGAN's hybrid).

A one-pass engine (pix2pix) has no starts or iterations: its single pass is the
``one-pass`` row. A baseline that needs no GAN at all is reported beside them: the image of the training
pair whose sketch looks most like the test sketch. Metrics compare the result's image
half with the true image (SSIM, PSNR, L1) and the edges of the result with the input
sketch (precision and recall within a small tolerance).
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import cv2
import numpy as np
import torch

from sketchapp.core.data.datasets import PairSet
from sketchapp.core.engine import CancelToken
from sketchapp.core.images import contact_grid

STARTS = ("random", "encoder", "refine")
START_LABELS = {
    "random": "best-of-30 random + optimisation (paper)",
    "encoder": "encoder alone (no optimisation)",
    "refine": "encoder + optimisation",
    "one-pass": "one pass (pix2pix or CycleGAN)",
    "nearest": "nearest training image (baseline)",
}
METRICS = ("ssim", "psnr", "l1", "precision", "recall", "chroma", "true_chroma", "region_de", "seconds")
#: A pixel of a true picture is part of the object (not the paper) where any channel is below this.
PAPER_LEVEL = 240


def ssim(a: np.ndarray, b: np.ndarray) -> float:
    """Structural similarity of two uint8 pictures (Wang et al. 2004: 11-tap Gaussian, sigma 1.5), channel mean."""
    x, y = a.astype(np.float64), b.astype(np.float64)
    if x.ndim == 2:
        x, y = x[..., None], y[..., None]
    c1, c2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2
    scores = []
    for ch in range(x.shape[2]):
        p, q = x[..., ch], y[..., ch]

        def blur(v: np.ndarray) -> np.ndarray:
            return cv2.GaussianBlur(v, (11, 11), 1.5, borderType=cv2.BORDER_REFLECT)

        mu_p, mu_q = blur(p), blur(q)
        var_p = blur(p * p) - mu_p**2
        var_q = blur(q * q) - mu_q**2
        cov = blur(p * q) - mu_p * mu_q
        index = ((2 * mu_p * mu_q + c1) * (2 * cov + c2)) / ((mu_p**2 + mu_q**2 + c1) * (var_p + var_q + c2))
        scores.append(index.mean())
    return float(np.mean(scores))


PSNR_LIMIT = 100.0  # dB for identical pictures: a finite value keeps the means of a table finite


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))
    return PSNR_LIMIT if mse == 0 else min(PSNR_LIMIT, 10.0 * np.log10(255.0**2 / mse))


def l1(a: np.ndarray, b: np.ndarray) -> float:
    """Mean absolute difference, in [0, 1] of the full range."""
    return float(np.mean(np.abs(a.astype(np.float64) - b.astype(np.float64))) / 255.0)


def edges_of(image: np.ndarray) -> np.ndarray:
    """Boolean edge map of an RGB picture (Canny with thresholds from its median grey)."""
    grey = cv2.cvtColor(image, cv2.COLOR_RGB2GRAY)
    median = float(np.median(grey))
    low, high = max(10.0, 0.66 * median * 0.5), max(30.0, min(255.0, 1.33 * median * 0.5))
    return cv2.Canny(grey, low, high, L2gradient=True) > 0


def sketch_fidelity(image: np.ndarray, sketch: np.ndarray, tolerance: int = 2) -> tuple[float, float]:
    """(precision, recall) of the image's edges against the sketch's ink, within ``tolerance`` pixels.

    Precision: edges of the result that lie near a sketched line. Recall: sketched ink
    that has an edge of the result nearby. A blank result has precision 1 and recall 0.
    """
    ink = sketch < 128
    found = edges_of(image)
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * tolerance + 1, 2 * tolerance + 1))
    near_ink = cv2.dilate(ink.astype(np.uint8), kernel) > 0
    near_edges = cv2.dilate(found.astype(np.uint8), kernel) > 0
    precision = float((found & near_ink).sum() / found.sum()) if found.any() else 1.0
    recall = float((ink & near_edges).sum() / ink.sum()) if ink.any() else 1.0
    return precision, recall


def lab(image: np.ndarray) -> np.ndarray:
    """CIELab (L 0-100, a, b) of a uint8 RGB picture, as float32."""
    return cv2.cvtColor(image.astype(np.float32) / 255, cv2.COLOR_RGB2Lab)


def ciede2000(lab1: np.ndarray, lab2: np.ndarray) -> np.ndarray:
    """CIEDE2000 colour difference of CIELab colours (..., 3) (Sharma, Wu and Dalal 2005; kL = kC = kH = 1)."""
    L1, a1, b1 = np.moveaxis(np.asarray(lab1, np.float64), -1, 0)
    L2, a2, b2 = np.moveaxis(np.asarray(lab2, np.float64), -1, 0)
    c_mean = (np.hypot(a1, b1) + np.hypot(a2, b2)) / 2
    g = 0.5 * (1 - np.sqrt(c_mean**7 / (c_mean**7 + 25.0**7)))
    a1p, a2p = a1 * (1 + g), a2 * (1 + g)
    c1p, c2p = np.hypot(a1p, b1), np.hypot(a2p, b2)
    h1p = np.degrees(np.arctan2(b1, a1p)) % 360
    h2p = np.degrees(np.arctan2(b2, a2p)) % 360
    dl, dc = L2 - L1, c2p - c1p
    dh = h2p - h1p
    dh = np.where(dh > 180, dh - 360, np.where(dh < -180, dh + 360, dh))
    dh = np.where(c1p * c2p == 0, 0, dh)
    dH = 2 * np.sqrt(c1p * c2p) * np.sin(np.radians(dh) / 2)
    l_mean, cp_mean = (L1 + L2) / 2, (c1p + c2p) / 2
    h_sum = h1p + h2p
    h_mean = np.where(np.abs(h1p - h2p) > 180, np.where(h_sum < 360, h_sum + 360, h_sum - 360), h_sum) / 2
    h_mean = np.where(c1p * c2p == 0, h_sum, h_mean)
    t = (1 - 0.17 * np.cos(np.radians(h_mean - 30)) + 0.24 * np.cos(np.radians(2 * h_mean))
         + 0.32 * np.cos(np.radians(3 * h_mean + 6)) - 0.20 * np.cos(np.radians(4 * h_mean - 63)))
    s_l = 1 + 0.015 * (l_mean - 50) ** 2 / np.sqrt(20 + (l_mean - 50) ** 2)
    s_c, s_h = 1 + 0.045 * cp_mean, 1 + 0.015 * cp_mean * t
    r_t = (-2 * np.sqrt(cp_mean**7 / (cp_mean**7 + 25.0**7))
           * np.sin(np.radians(60 * np.exp(-(((h_mean - 275) / 25) ** 2)))))
    return np.sqrt((dl / s_l) ** 2 + (dc / s_c) ** 2 + (dH / s_h) ** 2 + r_t * (dc / s_c) * (dH / s_h))


def closed_regions(sketch: np.ndarray, smallest: float = 1 / 400) -> list[np.ndarray]:
    """Boolean masks of the sketch's closed areas: 4-connected pieces of paper that do not touch the
    border, at least ``smallest`` of the picture, shrunk by a pixel so no line's edge counts."""
    paper = (sketch > 127).astype(np.uint8)
    found, labels, stats, _ = cv2.connectedComponentsWithStats(paper, connectivity=4)
    border = set(np.unique(np.concatenate([labels[0], labels[-1], labels[:, 0], labels[:, -1]])).tolist())
    regions = []
    for i in range(1, found):
        if i in border or stats[i, cv2.CC_STAT_AREA] < smallest * sketch.size:
            continue
        inside = cv2.erode((labels == i).astype(np.uint8), np.ones((3, 3), np.uint8)).astype(bool)
        if inside.any():
            regions.append(inside)
    return regions


def colour_scores(result: np.ndarray, truth: np.ndarray, sketch: np.ndarray) -> dict[str, float]:
    """How the result's colours compare with the truth's.

    ``chroma`` and ``true_chroma``: the mean CIELab chroma of the result and of the truth on
    the object (where the truth is not paper); their ratio over a test split says whether a
    model commits to colours (1) or hedges into grey (well below 1). ``region_de``: the
    CIEDE2000 difference between the result's and the truth's mean colour in each closed area
    of the sketch, averaged weighted by area (NaN for a sketch without closed areas).
    """
    result_lab, truth_lab = lab(result), lab(truth)
    obj = truth.min(axis=2) < PAPER_LEVEL
    chroma = float(np.hypot(result_lab[..., 1], result_lab[..., 2])[obj].mean()) if obj.any() else 0.0
    true_chroma = float(np.hypot(truth_lab[..., 1], truth_lab[..., 2])[obj].mean()) if obj.any() else 0.0
    regions = closed_regions(cv2.resize(sketch, truth.shape[1::-1], interpolation=cv2.INTER_AREA))
    if regions:
        errors = [float(ciede2000(result_lab[r].mean(0), truth_lab[r].mean(0))) for r in regions]
        areas = [int(r.sum()) for r in regions]
        region_de = float(np.average(errors, weights=areas))
    else:
        region_de = float("nan")
    return {"chroma": chroma, "true_chroma": true_chroma, "region_de": region_de}


def score(result: np.ndarray, truth: np.ndarray, sketch: np.ndarray) -> dict[str, float]:
    precision, recall = sketch_fidelity(result, sketch)
    return {"ssim": ssim(result, truth), "psnr": psnr(result, truth), "l1": l1(result, truth),
            "precision": precision, "recall": recall, **colour_scores(result, truth, sketch)}


class NearestBaseline:
    """The training image whose (slightly blurred) sketch is closest to the test sketch."""

    def __init__(self, train: PairSet) -> None:
        self.images = train.images
        self.keys = np.stack([self._key(s) for s in train.sketches])

    @staticmethod
    def _key(sketch: np.ndarray) -> np.ndarray:
        ink = 1.0 - sketch.astype(np.float32) / 255.0
        return cv2.GaussianBlur(ink, (0, 0), max(1.0, sketch.shape[0] / 32)).ravel()

    def __call__(self, sketch: np.ndarray) -> np.ndarray:
        distances = ((self.keys - self._key(sketch)) ** 2).sum(axis=1)
        return self.images[int(np.argmin(distances))]


@dataclass
class EvalProgress:
    done: int
    total: int
    name: str
    seconds: float


@dataclass
class EvalReport:
    checkpoints: tuple[int, ...]
    candidates: int
    cases: int
    # rows[start][checkpoint] -> metric -> mean; "encoder" and "nearest" use checkpoint 0
    rows: dict[str, dict[int, dict[str, float]]] = field(default_factory=dict)
    sheet: np.ndarray | None = None
    per_case: list[dict[str, Any]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "checkpoints": list(self.checkpoints),
            "candidates": self.candidates,
            "cases": self.cases,
            "rows": {start: {str(c): m for c, m in cols.items()} for start, cols in self.rows.items()},
            "per_case": self.per_case,
        }

    def markdown(self) -> str:
        lines = [
            "| start | iterations | SSIM ↑ | PSNR dB ↑ | L1 ↓ | edge precision ↑ | edge recall ↑ | chroma ratio → 1 "
            "| region ΔE2000 ↓ | s / completion |",
            "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
        ]
        for start in ("one-pass", "random", "encoder", "refine", "nearest"):
            for checkpoint, m in sorted(self.rows.get(start, {}).items()):
                lines.append(
                    f"| {START_LABELS[start]} | {checkpoint} | {m['ssim']:.3f} | {m['psnr']:.2f} | {m['l1']:.3f} "
                    f"| {m['precision']:.3f} | {m['recall']:.3f} | {m['chroma_ratio']:.2f} | {m['region_de']:.1f} "
                    f"| {m['seconds']:.2f} |"
                )
        return "\n".join(lines)


def evaluate(
    model: Any,
    test: PairSet,
    train: PairSet | None,
    settings: Any,
    checkpoints: Sequence[int] = (50, 200, 1000),
    starts: Sequence[str] = STARTS,
    device: torch.device | str = "cpu",
    cancel: CancelToken | None = None,
    sheet_rows: int = 12,
) -> Iterator[EvalProgress | EvalReport]:
    """Yield an EvalProgress per test pair, then the EvalReport; ``model`` is any engine's (``settings`` its engine's)."""
    from sketchapp.core.engines import engine_spec

    if len(test) == 0:
        raise ValueError("the test set is empty: nothing to evaluate")
    device = torch.device(device)
    marks = tuple(sorted(set(int(c) for c in checkpoints)))
    if not marks or marks[0] < 1:
        raise ValueError("iteration checkpoints must be positive")
    cancel = cancel or CancelToken()
    engine = engine_spec(model.kind).engine(model, device)
    iterative = engine.capabilities.latents
    if not iterative:
        starts, marks = ["one-pass"], (0,)
    elif getattr(model, "encoder", None) is None:
        starts = [s for s in starts if s == "random"]
    # The model's own picture is scored: inked lines would copy the test sketch into the result.
    base = settings.updated(seed=settings.seed if settings.seed is not None else 0, ink_lines=False)
    base = replace(base, ink_lines=False, **({"iterations": marks[-1], "patience": 0} if iterative else {}))
    engine.warm_up(base)
    baseline = NearestBaseline(train) if train is not None and len(train) else None
    sums: dict[str, dict[int, list[dict[str, float]]]] = {}
    sheet: list[np.ndarray] = []
    per_case: list[dict[str, Any]] = []
    clock = time.monotonic()
    for index, name in enumerate(test.names):
        sketch, truth = test.sketches[index], test.images[index]
        results: dict[str, np.ndarray] = {}
        case: dict[str, Any] = {"name": name}
        for start in starts:
            if cancel.cancelled:
                return
            outcome = _complete(engine, sketch, start, base, marks, cancel)
            if outcome is None:
                return
            for mark, (image, seconds) in outcome.items():
                metrics = {**score(image, truth, sketch), "seconds": seconds}
                sums.setdefault(start, {}).setdefault(mark, []).append(metrics)
                case[f"{start}@{mark}"] = metrics
                results[start] = image
        if baseline is not None:
            began = time.perf_counter()
            guess = baseline(sketch)
            metrics = {**score(guess, truth, sketch), "seconds": time.perf_counter() - began}
            sums.setdefault("nearest", {}).setdefault(0, []).append(metrics)
            case["nearest"] = metrics
            results["nearest"] = guess
        per_case.append(case)
        if len(sheet) < sheet_rows:
            sheet.append(_sheet_row(sketch, truth, results))
        yield EvalProgress(index + 1, len(test), name, time.monotonic() - clock)
    rows = {start: {mark: _means(runs) for mark, runs in cols.items()} for start, cols in sums.items()}
    yield EvalReport(marks, getattr(base, "candidates", 1), len(test), rows, _sheet(sheet, list(results)), per_case)


def _means(runs: list[dict[str, float]]) -> dict[str, float]:
    """Each metric's mean over the cases that have it (region ΔE only where a sketch has closed areas),
    and the chroma ratio: the mean chroma of the results on their objects over the truths'."""
    means = {m: float(np.nanmean([r[m] for r in runs])) if any(np.isfinite(r[m]) for r in runs) else float("nan")
             for m in METRICS}
    means["chroma_ratio"] = means["chroma"] / means["true_chroma"] if means["true_chroma"] > 0 else float("nan")
    return means


def _complete(
    engine: Any, sketch: np.ndarray, start: str, settings: Any,
    marks: tuple[int, ...], cancel: CancelToken,
) -> dict[int, tuple[np.ndarray, float]] | None:
    """The best candidate's image at each mark (and the seconds it took to get there)."""
    if start == "one-pass":
        run = settings
    elif start == "encoder":
        run = replace(settings, start="encoder", iterations=0)
    else:
        run = replace(settings, start="random" if start == "random" else "encoder")
    began = time.perf_counter()
    found: dict[int, tuple[np.ndarray, float]] = {}
    last = None
    for snapshot in engine.start(sketch, None, run, cancel):
        last = snapshot
        if snapshot.phase == "optimise" and snapshot.iteration in marks:
            found[snapshot.iteration] = (snapshot.images("image")[snapshot.best], time.perf_counter() - began)
    if cancel.cancelled or last is None:
        return None
    final = (last.images("image")[last.best], time.perf_counter() - began)
    if start in ("encoder", "one-pass"):
        return {0: final}
    return {mark: found.get(mark, final) for mark in marks}


def _sheet_row(sketch: np.ndarray, truth: np.ndarray, results: dict[str, np.ndarray]) -> np.ndarray:
    cells = [np.repeat(sketch[..., None], 3, axis=2)] + list(results.values()) + [truth]
    return np.stack(cells)


def _sheet(rows: list[np.ndarray], columns: list[str]) -> np.ndarray | None:
    """Contact sheet: a header row of labels, then sketch | each start | truth per test pair."""
    if not rows:
        return None
    size = rows[0].shape[1]
    labels = ["sketch", *columns, "truth"]
    header = np.full((len(labels), max(14, size // 4), size, 3), 255, np.uint8)
    for cell, text in zip(header, labels):
        scale = 0.3 if size <= 64 else 0.45
        cv2.putText(cell, text, (2, cell.shape[0] - 4), cv2.FONT_HERSHEY_SIMPLEX, scale, (0, 0, 0), 1, cv2.LINE_AA)
    body = contact_grid(np.concatenate(rows), columns=len(labels), gap=2)
    top = contact_grid(header, columns=len(labels), gap=2)
    return np.concatenate([top, np.full((2, body.shape[1], 3), 255, np.uint8), body])
