"""Limits every file of strokes shares, read or written (documents, result PNGs, autosaves), with no
Qt and no torch, so the window's autosave and the core's documents apply the same ones.

What SketchApp writes it reads back: a drawing of more strokes' points than any reader takes is
thinned before it is written (points on a straight run between their neighbours left out, a
tenth of a pixel of a 1024 px sheet at first, more only where needed), and a record is refused
by counting its arrays before it is parsed (parsing a few million points took seconds and
gigabytes).
"""

from __future__ import annotations

import numpy as np

#: all strokes together: a long illustration has a few hundred thousand; the canvas redraws them all
#: on opening (about 30 us a point), so this also bounds the wait
MAX_POINTS = 250_000
REACH = 4  # sheet sides a point may lie off the sheet (a stroke drawn past its edge), not more


def too_many_points(raw: bytes) -> bool:
    """Whether a JSON record of strokes holds more than MAX_POINTS points, judged before parsing: every
    point is a JSON array (each stroke and the stroke list add one more; settings a few)."""
    return raw.count(b"[") > 2 * MAX_POINTS + 1000


def simplified(points: np.ndarray, tolerance: float) -> np.ndarray:
    """``points`` (x, y, pressure) less those within ``tolerance`` of the line through their neighbours
    (Ramer-Douglas-Peucker; pressure counts as a third coordinate in units of the stroke's reach)."""
    if len(points) <= 2:
        return points
    keep = np.zeros(len(points), bool)
    keep[[0, -1]] = True
    spans = [(0, len(points) - 1)]
    while spans:
        first, last = spans.pop()
        if last - first < 2:
            continue
        a, b = points[first], points[last]
        inner = points[first + 1 : last]
        direction = b - a
        length = float(np.linalg.norm(direction))
        offsets = inner - a
        if length == 0:
            distances = np.linalg.norm(offsets, axis=1)
        else:
            along = offsets @ direction / length**2
            distances = np.linalg.norm(offsets - along[:, None] * direction, axis=1)
        farthest = int(np.argmax(distances))
        if distances[farthest] > tolerance:
            middle = first + 1 + farthest
            keep[middle] = True
            spans += [(first, middle), (middle, last)]
    return points[keep]


def within_limit(strokes: list[np.ndarray], side: float) -> list[np.ndarray]:
    """``strokes`` (each N x 3: x, y, pressure), thinned where together they hold more than MAX_POINTS
    points; ValueError where no thinning can bring them under it (more strokes than half of it)."""
    if len(strokes) > MAX_POINTS // 2:  # thinning keeps two points a stroke
        raise ValueError(f"more than {MAX_POINTS // 2} strokes")
    tolerance = side / 10240
    pressure = np.array([1.0, 1.0, side / 100])  # a change from no pressure to full counts as 1 % of the side
    while sum(len(points) for points in strokes) > MAX_POINTS:
        strokes = [simplified(points * pressure, tolerance) / pressure for points in strokes]
        tolerance *= 2
    return strokes


def kept(strokes: list[tuple[str, float, object]], side: float, min_size: float) -> list[tuple[str, float, np.ndarray]]:
    """(tool, size, points) of each stroke as every reader takes them: points off the sheet's reach
    clipped to it, pressures to 0..1, sizes to ``min_size``..``side``, anything not finite dropped, and
    thinned past MAX_POINTS points; ValueError where no thinning brings them under it."""
    cleaned = []
    for tool, size, given in strokes:
        points = np.asarray(given, dtype=np.float64).reshape(-1, 3)
        points = points[np.isfinite(points).all(axis=1)]
        if not len(points) or not np.isfinite(size):
            continue
        points[:, :2] = np.clip(points[:, :2], -REACH * side, REACH * side)
        points[:, 2] = np.clip(points[:, 2], 0.0, 1.0)
        cleaned.append((tool, min(max(float(size), min_size), side), points))
    thinned = within_limit([points for _, _, points in cleaned], side)
    return [(tool, size, points) for (tool, size, _), points in zip(cleaned, thinned)]
