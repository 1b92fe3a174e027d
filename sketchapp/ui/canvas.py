"""The drawing surface: pen and eraser with tablet pressure, zoom and pan, a ghost guide.

Painting a stroke touches only the cached raster under the new segment, so a repaint
costs a blit of the visible area however long the drawing is. Finished strokes go to
the document (one undo step each); the stroke in progress is drawn on top.
"""

from __future__ import annotations

from PySide6.QtCore import QPointF, QRectF, Qt, Signal
from PySide6.QtGui import (
    QColor,
    QImage,
    QMouseEvent,
    QPainter,
    QPaintEvent,
    QPointingDevice,
    QTabletEvent,
    QTransform,
    QWheelEvent,
)
from PySide6.QtWidgets import QSizePolicy, QWidget

from sketchapp.ui.sketch import ERASER, PEN, STREAMLINE, SketchDocument, Stroke, paint_stroke

MIN_BRUSH, MAX_BRUSH = 1.0, 64.0
MIN_ZOOM, MAX_ZOOM = 0.1, 16.0
MOUSE_PRESSURE = 0.6
GHOST_OPACITY = 0.28


class Canvas(QWidget):
    """Draws into a SketchDocument. ``stroke_started``/``stroke_finished`` drive live completion."""

    stroke_started = Signal()
    stroke_finished = Signal()
    stroke_moved = Signal()  # the stroke in progress grew (live engines complete while the pen moves)
    brush_changed = Signal(float)
    zoom_changed = Signal(float)

    def __init__(self, document: SketchDocument, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.document = document
        self.tool = PEN
        self.brush = 6.0
        self.zoom = 1.0
        self.fit = True  # zoom follows the widget size until the user zooms
        self.offset = QPointF(0, 0)
        self.ghost: QImage | None = None
        self.ghost_visible = False
        self.smoothing = STREAMLINE  # 0 (off) .. MAX_STREAMLINE (strong): the preferences' setting
        self.simulate_pressure = True  # a mouse has no pressure: take it from the pen's speed
        self._stroke: Stroke | None = None
        self._tablet_down = False
        self._pan_from: QPointF | None = None
        self.setAttribute(Qt.WidgetAttribute.WA_OpaquePaintEvent)
        self.setAttribute(Qt.WidgetAttribute.WA_TabletTracking)
        self.setMouseTracking(False)
        self.setFocusPolicy(Qt.FocusPolicy.StrongFocus)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)
        self.setMinimumSize(200, 200)
        self.setCursor(Qt.CursorShape.CrossCursor)
        document.changed.connect(self.update)
        document.underlay_changed.connect(self.update)

    # -- tools --------------------------------------------------------------------------
    def set_tool(self, tool: str) -> None:
        if tool not in (PEN, ERASER):
            raise ValueError(f"unknown tool {tool!r}")
        self.tool = tool

    def set_brush(self, size: float) -> None:
        size = min(MAX_BRUSH, max(MIN_BRUSH, float(size)))
        if size != self.brush:
            self.brush = size
            self.brush_changed.emit(size)

    def grow_brush(self, factor: float) -> None:
        """``[`` and ``]``: brush size in steps of a constant ratio, so small and big sizes feel alike."""
        self.set_brush(round(self.brush * factor, 1))

    def set_ghost(self, picture: QImage | None) -> None:
        self.ghost = picture
        if self.ghost_visible:
            self.update()

    def show_ghost(self, visible: bool) -> None:
        self.ghost_visible = visible
        self.update()

    # -- view ---------------------------------------------------------------------------
    def transform(self) -> QTransform:
        """Document units -> widget pixels."""
        if self.fit:
            side = min(self.width(), self.height()) - 16
            self.zoom = max(MIN_ZOOM, side / self.document.side)
            extent = self.document.side * self.zoom
            self.offset = QPointF((self.width() - extent) / 2, (self.height() - extent) / 2)
        return QTransform(self.zoom, 0, 0, self.zoom, self.offset.x(), self.offset.y())

    def to_document(self, point: QPointF) -> QPointF:
        inverse, _ = self.transform().inverted()
        return inverse.map(point)

    def _on_sheet(self, position: QPointF) -> QPointF:
        """Where a pen event lands on the sheet, held within a sheet's width of it: a stroke may run past
        the edge (zoomed far out, the widget reaches miles beyond), but a document keeps what it can redraw."""
        point = self.to_document(position)
        side = self.document.side
        return QPointF(min(2.0 * side, max(-side, point.x())), min(2.0 * side, max(-side, point.y())))

    def set_zoom(self, zoom: float, anchor: QPointF | None = None) -> None:
        anchor = anchor or QPointF(self.width() / 2, self.height() / 2)
        before = self.to_document(anchor)
        self.fit = False
        self.zoom = min(MAX_ZOOM, max(MIN_ZOOM, zoom))
        self.offset = anchor - before * self.zoom
        self.zoom_changed.emit(self.zoom)
        self.update()

    def fit_to_window(self) -> None:
        self.fit = True
        self.transform()
        self.zoom_changed.emit(self.zoom)
        self.update()

    # -- painting -----------------------------------------------------------------------
    def paintEvent(self, event: QPaintEvent) -> None:  # noqa: N802 (Qt naming)
        painter = QPainter(self)
        painter.fillRect(event.rect(), self.palette().window())
        painter.setTransform(self.transform())
        sheet = QRectF(0, 0, self.document.side, self.document.side)
        painter.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform, self.zoom < 1)
        painter.drawImage(sheet, self.document.raster())
        underlay = self.document.underlay
        if underlay is not None and self.document.underlay_visible:
            # multiplied in: the paper takes the picture's colours, the lines stay black over it
            painter.setOpacity(self.document.underlay_opacity)
            painter.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform, True)
            painter.setCompositionMode(QPainter.CompositionMode.CompositionMode_Multiply)
            painter.drawImage(sheet, underlay)
            painter.setCompositionMode(QPainter.CompositionMode.CompositionMode_SourceOver)
            painter.setOpacity(1.0)
        if self.ghost_visible and self.ghost is not None:
            painter.setOpacity(GHOST_OPACITY)
            painter.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform, True)
            painter.setCompositionMode(QPainter.CompositionMode.CompositionMode_Multiply)
            painter.drawImage(sheet, self.ghost)
            painter.setCompositionMode(QPainter.CompositionMode.CompositionMode_SourceOver)
            painter.setOpacity(1.0)
        if self._stroke is not None:
            painter.setRenderHint(QPainter.RenderHint.Antialiasing)
            paint_stroke(painter, self._stroke)
        painter.setPen(QColor(0, 0, 0, 60))
        painter.setBrush(Qt.BrushStyle.NoBrush)
        painter.drawRect(sheet)
        painter.end()

    def _dirty(self, stroke: Stroke) -> None:
        """Repaint only around the last segment of the stroke in progress."""
        tail = Stroke(stroke.tool, stroke.size, stroke.points[-2:])
        rect = self.transform().mapRect(tail.bounds()).toAlignedRect().adjusted(-2, -2, 2, 2)
        self.update(rect)

    # -- input --------------------------------------------------------------------------
    def _begin(self, position: QPointF, pressure: float, tool: str | None = None, mouse: bool = False) -> None:
        tool = tool or self.tool
        simulate = mouse and self.simulate_pressure and tool == PEN  # the eraser keeps its size
        self._stroke = Stroke(tool, self.brush, streamline=self.smoothing, simulate=simulate)
        point = self._on_sheet(position)
        self._stroke.add(point.x(), point.y(), pressure)
        self.stroke_started.emit()
        self._dirty(self._stroke)

    def _extend(self, position: QPointF, pressure: float) -> None:
        if self._stroke is None:
            return
        point = self._on_sheet(position)
        self._stroke.add(point.x(), point.y(), pressure)
        self._dirty(self._stroke)
        self.stroke_moved.emit()

    @property
    def stroke(self) -> Stroke | None:
        """The stroke being drawn now (not yet in the document), if any."""
        return self._stroke

    def _end(self, position: QPointF | None = None) -> None:
        stroke, self._stroke = self._stroke, None
        if stroke is not None:
            if position is not None:
                point = self._on_sheet(position)
                stroke.finish(point.x(), point.y())
            self.document.add_stroke(stroke)
            self.stroke_finished.emit()

    def cancel_stroke(self) -> None:
        if self._stroke is not None:
            self._stroke = None
            self.update()

    def tabletEvent(self, event: QTabletEvent) -> None:  # noqa: N802
        kind = event.type()
        pressure = float(event.pressure())
        if kind == QTabletEvent.Type.TabletPress:
            self._tablet_down = True
            flipped = event.pointerType() == QPointingDevice.PointerType.Eraser  # the pen's eraser end
            self._begin(event.position(), pressure, ERASER if flipped else None)
        elif kind == QTabletEvent.Type.TabletMove and self._tablet_down:
            self._extend(event.position(), pressure)
        elif kind == QTabletEvent.Type.TabletRelease:
            self._tablet_down = False
            self._end(event.position())
        event.accept()

    def mousePressEvent(self, event: QMouseEvent) -> None:  # noqa: N802
        if self._tablet_down:
            return
        if event.button() == Qt.MouseButton.MiddleButton or (
            event.button() == Qt.MouseButton.LeftButton and event.modifiers() & Qt.KeyboardModifier.ShiftModifier
        ):
            self._pan_from = event.position()
            self.setCursor(Qt.CursorShape.ClosedHandCursor)
        elif event.button() == Qt.MouseButton.LeftButton:
            self._begin(event.position(), MOUSE_PRESSURE, mouse=True)

    def mouseMoveEvent(self, event: QMouseEvent) -> None:  # noqa: N802
        if self._pan_from is not None:
            self.transform()
            self.fit = False
            self.offset += event.position() - self._pan_from
            self._pan_from = event.position()
            self.update()
        elif not self._tablet_down and event.buttons() & Qt.MouseButton.LeftButton:
            self._extend(event.position(), MOUSE_PRESSURE)

    def mouseReleaseEvent(self, event: QMouseEvent) -> None:  # noqa: N802
        if self._pan_from is not None:
            self._pan_from = None
            self.setCursor(Qt.CursorShape.CrossCursor)
        elif not self._tablet_down and event.button() == Qt.MouseButton.LeftButton:
            self._end(event.position())

    def wheelEvent(self, event: QWheelEvent) -> None:  # noqa: N802
        steps = event.angleDelta().y() / 120
        if event.modifiers() & Qt.KeyboardModifier.ControlModifier:
            self.set_zoom(self.zoom * (1.15**steps), event.position())
        else:
            self.transform()
            self.fit = False
            self.offset += QPointF(event.angleDelta().x() / 4, event.angleDelta().y() / 4)
            self.update()
        event.accept()
