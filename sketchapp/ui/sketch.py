"""The sketch as a document: vector strokes over an optional base picture, with undo.

Strokes keep their input points (position and pressure), so the sketch can be redrawn
at any resolution: on screen at the zoom the user picked, for the model at its own
size. Each finished stroke and each clear is one QUndoStack command.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import cv2
import numpy as np
from PySide6.QtCore import QObject, QPointF, QRectF, Qt, Signal
from PySide6.QtGui import QColor, QImage, QPainter, QPolygonF, QUndoCommand, QUndoStack

PEN, ERASER = "pen", "eraser"
INK = QColor(0, 0, 0)
PAPER = QColor(255, 255, 255)

#: How strongly input points are pulled towards the previous smoothed point (0 = raw, the default 0.5).
STREAMLINE = 0.5
MAX_STREAMLINE = 0.85
#: Width at zero pressure, as a fraction of the brush size (thinning, as perfect-freehand).
MIN_WIDTH = 0.35
#: A jump between input events this many brush sizes long is taken as it is: sparse events (a fast
#: flick of the mouse) are already far apart, and smoothing them would cut the stroke's corners.
SPARSE_SIZES = 3.0
#: How fast simulated pressure follows the pen's speed (perfect-freehand's RATE_OF_PRESSURE_CHANGE),
#: where it starts (a mouse's usual pressure) and its floor (a flick stays a visible line).
PRESSURE_RATE = 0.275
SIMULATED_START, SIMULATED_FLOOR = 0.6, 0.3


@dataclass(eq=False)  # identity: two identical strokes are still two undo steps
class Stroke:
    """One pen-down to pen-up gesture, in document coordinates.

    ``streamline`` smooths the input (0 = off); ``simulate`` derives pressure from the pen's
    speed, for a mouse (fast is thin, slow is full, after perfect-freehand).
    """

    tool: str
    size: float
    points: list[tuple[float, float, float]] = field(default_factory=list)  # x, y, pressure 0..1
    streamline: float = STREAMLINE
    simulate: bool = False

    def add(self, x: float, y: float, pressure: float = 0.5) -> None:
        """Append an input point, smoothed towards the last one (less the further it jumped)."""
        if not (math.isfinite(x) and math.isfinite(y)):
            return
        pressure = min(1.0, max(0.0, pressure)) if math.isfinite(pressure) else 0.5
        if not self.points:
            self.points.append((x, y, SIMULATED_START if self.simulate else pressure))
            return
        px, py, pp = self.points[-1]
        jump = math.hypot(x - px, y - py)
        pull = min(MAX_STREAMLINE, max(0.0, self.streamline)) * max(0.0, 1 - jump / max(1.0, SPARSE_SIZES * self.size))
        x, y = px + (x - px) * (1 - pull), py + (y - py) * (1 - pull)
        step = math.hypot(x - px, y - py)
        if self.simulate:
            speed = min(1.0, step / max(self.size, 1e-6))
            pressure = min(1.0, max(SIMULATED_FLOOR, pp + (1 - speed - pp) * speed * PRESSURE_RATE))
        if step < 0.25:
            self.points[-1] = (px, py, pressure if self.simulate else max(pp, pressure))
            return
        self.points.append((x, y, pressure))

    def finish(self, x: float, y: float) -> None:
        """End at the pen-up point itself: the smoothed points lag the pen, and a stroke that stops
        short of where the pen lifted looks cut off. The end takes the last pressure: a pen reports
        none as it lifts."""
        if not self.points or not (math.isfinite(x) and math.isfinite(y)):
            return
        px, py, pp = self.points[-1]
        if math.hypot(x - px, y - py) >= 0.25:
            self.points.append((x, y, pp))

    def width(self, pressure: float) -> float:
        return self.size * (MIN_WIDTH + (1 - MIN_WIDTH) * pressure)

    def bounds(self) -> QRectF:
        xs = [p[0] for p in self.points]
        ys = [p[1] for p in self.points]
        pad = self.size
        return QRectF(min(xs) - pad, min(ys) - pad, max(xs) - min(xs) + 2 * pad, max(ys) - min(ys) + 2 * pad)


def stroke_shapes(stroke: Stroke, start: int = 0) -> tuple[list[tuple[QPointF, float]], list[QPolygonF]]:
    """The ink of a stroke from point ``start`` on: pressure-sized discs and the quads joining them (and
    point ``start`` to the one before it).

    Joining consecutive discs by their outer tangents gives the tapered, pressure-shaped
    ink of perfect-freehand without a polygon-offset solver.
    """
    discs: list[tuple[QPointF, float]] = []
    quads: list[QPolygonF] = []
    previous = None
    for index, (x, y, pressure) in enumerate(stroke.points[max(0, start - 1) :], max(0, start - 1)):
        radius = stroke.width(pressure) / 2
        if index >= start:  # point start - 1 only anchors the quad that joins it to point start
            discs.append((QPointF(x, y), radius))
        if previous is not None:
            px, py, pr = previous
            dx, dy = x - px, y - py
            length = math.hypot(dx, dy)
            if length > 1e-6:
                nx, ny = -dy / length, dx / length
                quads.append(
                    QPolygonF(
                        [
                            QPointF(px + nx * pr, py + ny * pr),
                            QPointF(x + nx * radius, y + ny * radius),
                            QPointF(x - nx * radius, y - ny * radius),
                            QPointF(px - nx * pr, py - ny * pr),
                        ]
                    )
                )
        previous = (x, y, radius)
    return discs, quads


def paint_stroke(painter: QPainter, stroke: Stroke, start: int = 0) -> None:
    painter.setPen(Qt.PenStyle.NoPen)
    painter.setBrush(INK if stroke.tool == PEN else PAPER)
    discs, quads = stroke_shapes(stroke, start)
    for centre, radius in discs:
        painter.drawEllipse(centre, radius, radius)
    for quad in quads:
        painter.drawPolygon(quad)


#: Undo steps that keep the sheet as it was before them (1 MB each at 512 units), so undoing a recent
#: stroke or a Clear puts that picture back instead of redrawing every stroke (about 25 us a point).
KEPT_SHEETS = 32


class _Undoable(QUndoCommand):
    """A command that keeps the sheet from before its redo, while it is among the last KEPT_SHEETS."""

    def __init__(self, document: SketchDocument, text: str) -> None:
        super().__init__(text)
        self.document = document
        self.sheet: QImage | None = None

    def keep_sheet(self) -> None:
        self.sheet = self.document._raster.copy()
        kept = self.document._kept_sheets
        if self in kept:
            kept.remove(self)
        kept.append(self)
        while len(kept) > KEPT_SHEETS:
            kept.popleft().sheet = None

    def restore_sheet(self) -> QImage | None:
        """The sheet from before (a copy: the document paints on it), or None to redraw."""
        return self.sheet.copy() if self.sheet is not None else None


class _AddStroke(_Undoable):
    def __init__(self, document: SketchDocument, stroke: Stroke) -> None:
        super().__init__(document, "Stroke" if stroke.tool == PEN else "Erase")
        self.stroke = stroke

    def redo(self) -> None:
        self.keep_sheet()
        self.document._strokes.append(self.stroke)
        self.document._changed(full=False)

    def undo(self) -> None:
        self.document._strokes.remove(self.stroke)
        self.document._changed(full=True, sheet=self.restore_sheet())


class _Replace(_Undoable):
    """Clear, or a new base picture: swaps the whole content, so undo restores all of it."""

    def __init__(self, document: SketchDocument, text: str, strokes: list[Stroke], base: QImage | None) -> None:
        super().__init__(document, text)
        self.after = (strokes, base)
        self.before = (list(document._strokes), document._base)

    def redo(self) -> None:
        self.keep_sheet()
        self.document._strokes, self.document._base = list(self.after[0]), self.after[1]
        self.document._changed(full=True)

    def undo(self) -> None:
        self.document._strokes, self.document._base = list(self.before[0]), self.before[1]
        self.document._changed(full=True, sheet=self.restore_sheet())


class _SetUnderlay(QUndoCommand):
    """Put a picture under the drawing, or take it away: shown on the sheet, never part of the sketch."""

    def __init__(self, document: SketchDocument, picture: QImage | None, text: str) -> None:
        super().__init__(text)
        self.document, self.after, self.before = document, picture, document._underlay

    def redo(self) -> None:
        self.document._set_underlay(self.after)

    def undo(self) -> None:
        self.document._set_underlay(self.before)


class SketchDocument(QObject):
    """Strokes and an optional base picture on a square sheet of ``side`` units, and an underlay: a
    picture shown under them (a result to keep drawing over) that is never part of the sketch."""

    changed = Signal()
    underlay_changed = Signal()

    def __init__(self, side: int = 512, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.side = side
        self._strokes: list[Stroke] = []
        self._base: QImage | None = None
        self._underlay: QImage | None = None
        self.underlay_opacity = 0.5
        self.underlay_visible = True
        self.undo_stack = QUndoStack(self)
        self._kept_sheets: deque[_Undoable] = deque()
        self.revision = 0
        self._raster = QImage(side, side, QImage.Format.Format_RGB32)
        self._raster.fill(PAPER)
        self._live: tuple[Any, ...] | None = None  # a stroke in progress: it, points drawn, revision, sheet, last point

    # -- content ------------------------------------------------------------------------
    @property
    def strokes(self) -> Sequence[Stroke]:
        return tuple(self._strokes)

    @property
    def base(self) -> QImage | None:
        return self._base

    @property
    def underlay(self) -> QImage | None:
        return self._underlay

    def set_underlay(self, picture: QImage | None, text: str = "Use result as underlay") -> None:
        """Show ``picture`` (fitted to the sheet) under the drawing, or none: one undo step."""
        if picture is not None:
            picture = picture.convertToFormat(QImage.Format.Format_RGB32).scaled(
                self.side, self.side, Qt.AspectRatioMode.IgnoreAspectRatio, Qt.TransformationMode.SmoothTransformation)
        if picture is not None or self._underlay is not None:
            self.undo_stack.push(_SetUnderlay(self, picture, text))

    def restore_underlay(self, picture: QImage | None, opacity: float) -> None:
        """An underlay saved with a document, without an undo step."""
        self.underlay_opacity = opacity
        self._set_underlay(picture.scaled(self.side, self.side) if picture is not None else None)

    def _set_underlay(self, picture: QImage | None) -> None:
        self._underlay = picture
        self.revision += 1
        self.underlay_changed.emit()

    def is_empty(self) -> bool:
        return not self._strokes and self._base is None

    def add_stroke(self, stroke: Stroke) -> None:
        if stroke.points:
            self.undo_stack.push(_AddStroke(self, stroke))

    def clear(self) -> None:
        if not self.is_empty():
            self.undo_stack.push(_Replace(self, "Clear", [], None))

    def set_base(self, picture: QImage, text: str = "Import") -> None:
        """Replace everything with ``picture`` (fitted to the sheet) as an editable base layer."""
        fitted = QImage(self.side, self.side, QImage.Format.Format_RGB32)
        fitted.fill(PAPER)
        scaled = picture.scaled(
            self.side, self.side, Qt.AspectRatioMode.KeepAspectRatio, Qt.TransformationMode.SmoothTransformation
        )
        painter = QPainter(fitted)
        painter.drawImage((self.side - scaled.width()) // 2, (self.side - scaled.height()) // 2, scaled)
        painter.end()
        self.undo_stack.push(_Replace(self, text, [], fitted))

    def replace(self, strokes: list[Stroke], base: QImage | None, text: str) -> None:
        """Swap in other content (an earlier result's drawing) as one undo step."""
        self.undo_stack.push(_Replace(self, text, list(strokes), base))

    def restore(self, strokes: list[Stroke], base: QImage | None) -> None:
        """Load saved content without an undo step (autosave recovery, opening a file)."""
        self._strokes, self._base = list(strokes), base
        if self._underlay is not None:  # another drawing: the picture under the old one goes
            self._underlay = None
            self.underlay_changed.emit()
        self.undo_stack.clear()
        self._kept_sheets.clear()
        self._changed(full=True)

    # -- pictures -----------------------------------------------------------------------
    def raster(self) -> QImage:
        """The sheet at full resolution; updated incrementally as strokes arrive."""
        return self._raster

    def render(self, side: int, extra: Stroke | None = None) -> QImage:
        """The sketch redrawn from its vectors at side x side pixels, with ``extra`` (a stroke in progress) on top.

        At the document's own size the incremental raster is copied instead of redrawing
        every stroke, so a live engine can ask for the drawing on every pen move.
        """
        image = self._raster.copy() if side == self.side else self._draw(side)
        if extra is not None:
            painter = QPainter(image)
            painter.setRenderHint(QPainter.RenderHint.Antialiasing)
            painter.scale(side / self.side, side / self.side)
            paint_stroke(painter, extra)
            painter.end()
        return image

    def _draw(self, side: int) -> QImage:
        """Every stroke (and the base layer) drawn afresh at side x side."""
        image = QImage(side, side, QImage.Format.Format_RGB32)
        image.fill(PAPER)
        painter = QPainter(image)
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        if self._base is not None:
            painter.drawImage(QRectF(0, 0, side, side), self._base)
        painter.scale(side / self.side, side / self.side)
        for stroke in self._strokes:
            paint_stroke(painter, stroke)
        painter.end()
        return image

    def to_array(self, side: int | None = None, extra: Stroke | None = None) -> np.ndarray:
        """Grey uint8 (side, side) picture of the sketch (and a stroke in progress), for the model."""
        side = side or self.side
        if extra is not None and side == self.side:
            return qimage_to_grey(self._with_stroke(extra))
        return qimage_to_grey(self.render(side, extra))

    def _with_stroke(self, stroke: Stroke) -> QImage:
        """The sheet with ``stroke`` in progress on it, kept between calls: each pen move adds only its new
        points (a stroke of hundreds of points, redrawn whole on every move, cost milliseconds each)."""
        live = self._live
        points = stroke.points
        if live is not None and live[0] is stroke and live[2] == self.revision and 0 < live[1] <= len(points):
            image, start = live[3], live[1]
            if points[start - 1] != live[4]:  # the last point drawn took more pressure since
                start -= 1
        else:
            image, start = self._raster.copy(), 0
        painter = QPainter(image)
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        paint_stroke(painter, stroke, start)
        painter.end()
        self._live = (stroke, len(points), self.revision, image, points[-1] if points else None)
        return image

    def _changed(self, full: bool, sheet: QImage | None = None) -> None:
        """The content changed: paint the newest stroke on the sheet, or (``full``) take ``sheet``, the
        picture of the content from before a step now undone, or redraw everything."""
        self.revision += 1
        self._live = None
        if full:
            self._raster = sheet if sheet is not None else self._draw(self.side)
        elif self._strokes:
            painter = QPainter(self._raster)
            painter.setRenderHint(QPainter.RenderHint.Antialiasing)
            paint_stroke(painter, self._strokes[-1])
            painter.end()
        self.changed.emit()


def qimage_to_grey(image: QImage) -> np.ndarray:
    """Grey uint8 (H, W) of ``image`` (ITU-R 601 weights), converted by OpenCV straight from the bytes
    of an RGB32 sheet (BGRA in memory): 0.1 ms at 512 px, where QImage's own grey conversion takes 1.5 ms
    of the GUI thread."""
    if image.format() != QImage.Format.Format_RGB32:
        image = image.convertToFormat(QImage.Format.Format_RGB32)
    width, height, stride = image.width(), image.height(), image.bytesPerLine()
    bgra = np.frombuffer(image.constBits(), np.uint8, count=stride * height).reshape(height, stride // 4, 4)
    return cv2.cvtColor(np.ascontiguousarray(bgra[:, :width]), cv2.COLOR_BGRA2GRAY)


def array_to_qimage(pixels: np.ndarray) -> QImage:
    """uint8 grey (H, W), RGB (H, W, 3) or RGBA (H, W, 4) -> a QImage that owns its pixels."""
    pixels = np.ascontiguousarray(pixels)
    height, width = pixels.shape[:2]
    if pixels.ndim == 2:
        fmt, stride = QImage.Format.Format_Grayscale8, width
    elif pixels.shape[2] == 3:
        fmt, stride = QImage.Format.Format_RGB888, width * 3
    elif pixels.shape[2] == 4:
        fmt, stride = QImage.Format.Format_RGBA8888, width * 4
    else:
        raise ValueError(f"cannot show a picture of shape {pixels.shape}")
    return QImage(pixels.data, width, height, stride, fmt).copy()
