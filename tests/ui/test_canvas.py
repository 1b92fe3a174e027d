"""Canvas and sketch document: input events draw, undo/redo per stroke, rasterising for the model."""

from __future__ import annotations

import numpy as np
import pytest
from PySide6.QtCore import QPoint, QPointF, Qt
from PySide6.QtGui import QImage
from PySide6.QtTest import QTest

from sketchapp.ui.canvas import Canvas
from sketchapp.ui.sketch import ERASER, PEN, SketchDocument, Stroke, array_to_qimage, qimage_to_grey


@pytest.fixture()
def canvas(qtbot):
    document = SketchDocument(side=256)
    widget = Canvas(document)
    widget.resize(300, 300)
    qtbot.addWidget(widget)
    widget.show()
    qtbot.waitExposed(widget)
    return widget


def drag(widget, points, button=Qt.MouseButton.LeftButton, modifier=Qt.KeyboardModifier.NoModifier):
    QTest.mousePress(widget, button, modifier, QPoint(*points[0]))
    for point in points[1:]:
        QTest.mouseMove(widget, QPoint(*point))
    QTest.mouseRelease(widget, button, modifier, QPoint(*points[-1]))


def ink(document, side=64):
    return int((document.to_array(side) < 128).sum())


def test_a_mouse_stroke_draws_ink_where_the_pointer_went(canvas, qtbot):
    with qtbot.waitSignals([canvas.stroke_started, canvas.stroke_finished]):
        drag(canvas, [(60, 150), (100, 150), (150, 150), (240, 150)])
    document = canvas.document
    assert len(document.strokes) == 1 and document.undo_stack.count() == 1
    sketch = document.to_array(256)
    start = canvas.to_document(QPointF(100, 150))
    row = int(round(start.y()))
    assert sketch[row, int(start.x())] < 100  # ink on the drawn line
    assert sketch[20, 20] == 255  # paper elsewhere
    assert (qimage_to_grey(document.raster()) == sketch).mean() > 0.99  # incremental raster matches a redraw


def test_undo_redo_and_clear_are_one_step_each(canvas):
    drag(canvas, [(60, 100), (200, 100)])
    drag(canvas, [(60, 200), (200, 200)])
    document = canvas.document
    two = ink(document)
    document.undo_stack.undo()
    one = ink(document)
    assert 0 < one < two
    document.undo_stack.redo()
    assert ink(document) == two
    document.clear()
    assert ink(document) == 0 and document.is_empty()
    document.undo_stack.undo()
    assert ink(document) == two


def test_eraser_removes_ink_and_is_undoable(canvas):
    drag(canvas, [(60, 150), (240, 150)])
    before = ink(canvas.document)
    canvas.set_tool(ERASER)
    canvas.set_brush(30)
    drag(canvas, [(150, 100), (150, 200)])
    assert ink(canvas.document) < before
    canvas.document.undo_stack.undo()
    assert ink(canvas.document) == before
    with pytest.raises(ValueError):
        canvas.set_tool("spray")


def test_pressure_shapes_the_width():
    document = SketchDocument(side=128)
    light, heavy = Stroke(PEN, 12.0), Stroke(PEN, 12.0)
    for x in range(20, 110, 4):
        light.add(x, 40, 0.05)
        heavy.add(x, 90, 1.0)
    document.add_stroke(light)
    document.add_stroke(heavy)
    sketch = document.to_array()
    assert (sketch[:, 64] < 128)[70:110].sum() > 2 * (sketch[:, 64] < 128)[20:60].sum()


def test_brush_size_and_zoom_limits(canvas):
    canvas.set_brush(6)
    canvas.grow_brush(1.25)
    assert canvas.brush == 7.5
    canvas.set_brush(1000)
    assert canvas.brush == 64
    anchor = QPointF(100, 120)
    before = canvas.to_document(anchor)
    canvas.set_zoom(3.0, anchor)
    after = canvas.to_document(anchor)
    assert abs(before.x() - after.x()) < 1e-6 and abs(before.y() - after.y()) < 1e-6
    canvas.fit_to_window()
    assert canvas.fit


def test_pan_with_middle_button_does_not_draw(canvas):
    drag(canvas, [(100, 100), (160, 160)], button=Qt.MouseButton.MiddleButton)
    assert canvas.document.is_empty() and not canvas.fit


def test_imported_base_layer_is_fitted_and_undoable():
    document = SketchDocument(side=100)
    wide = np.full((50, 200), 255, np.uint8)
    wide[:, 90:110] = 0
    document.set_base(array_to_qimage(wide))
    sketch = document.to_array()
    assert sketch[50, 50] < 128 and sketch[10, 50] == 255  # centred, aspect kept
    document.undo_stack.undo()
    assert document.is_empty()


def test_ghost_overlay_is_drawn_faintly(canvas):
    ghost = QImage(64, 64, QImage.Format.Format_RGB32)
    ghost.fill(Qt.GlobalColor.black)
    canvas.set_ghost(ghost)
    centre = QPoint(150, 150)
    plain = canvas.grab().toImage().pixelColor(centre).value()
    canvas.show_ghost(True)
    shaded = canvas.grab().toImage().pixelColor(centre).value()
    assert plain == 255 and 120 < shaded < 230


def test_tablet_pressure_draws_and_the_eraser_end_erases(canvas):
    from PySide6.QtGui import QInputDevice, QPointingDevice, QTabletEvent

    def tablet(kind, x, y, pressure, pointer=QPointingDevice.PointerType.Pen):
        device = QPointingDevice(
            "test pen", 1, QInputDevice.DeviceType.Stylus, pointer,
            QInputDevice.Capability.Position | QInputDevice.Capability.Pressure, 1, 3,
        )
        point = QPointF(x, y)
        event = QTabletEvent(kind, device, point, canvas.mapToGlobal(point), pressure, 0, 0, 0, 0, 0,
                             Qt.KeyboardModifier.NoModifier, Qt.MouseButton.LeftButton, Qt.MouseButton.LeftButton)
        canvas.tabletEvent(event)

    tablet(QTabletEvent.Type.TabletPress, 60, 150, 0.1)
    for x in range(60, 240, 8):
        tablet(QTabletEvent.Type.TabletMove, x, 150, 0.1 + 0.9 * (x - 60) / 180)
    tablet(QTabletEvent.Type.TabletRelease, 240, 150, 0.0)
    stroke = canvas.document.strokes[0]
    assert stroke.tool == PEN and stroke.points[0][2] < 0.2 and stroke.points[-1][2] > 0.8
    tablet(QTabletEvent.Type.TabletPress, 150, 100, 1.0, QPointingDevice.PointerType.Eraser)
    tablet(QTabletEvent.Type.TabletRelease, 150, 100, 0.0, QPointingDevice.PointerType.Eraser)
    assert canvas.document.strokes[-1].tool == ERASER
    tablet(QTabletEvent.Type.TabletPress, 150, 200, 0.5)  # turned back to the tip: the pen again
    tablet(QTabletEvent.Type.TabletRelease, 150, 200, 0.0)
    assert canvas.document.strokes[-1].tool == PEN and canvas.tool == PEN


def test_undo_removes_that_stroke_even_when_an_identical_one_exists():
    document = SketchDocument(side=64)
    dot = Stroke(PEN, 6.0, [(32.0, 32.0, 0.5)])
    document.add_stroke(dot)
    document.add_stroke(Stroke(ERASER, 12.0, [(32.0, 32.0, 1.0)]))
    document.add_stroke(Stroke(PEN, 6.0, [(32.0, 32.0, 0.5)]))
    document.undo_stack.undo()
    assert [s.tool for s in document.strokes] == [PEN, ERASER]
    assert document.to_array()[32, 32] == 255  # the dot stays erased


def test_a_stroke_in_progress_is_drawn_for_the_model_incrementally_and_exactly(qapp):
    """Each pen move adds only its new points to the live sheet; the picture equals a full redraw."""
    import math

    document = SketchDocument(256)
    earlier = Stroke(PEN, 5.0)
    for i in range(20):
        earlier.add(20 + i * 10, 40, 0.5)
    document.add_stroke(earlier)
    stroke = Stroke(PEN, 6.0)
    for i in range(60):
        stroke.add(20 + i * 3.5, 150 + 30 * math.sin(i / 6), 0.3 + 0.5 * (i % 7) / 7)
        if i % 9 == 0:
            stroke.add(20 + i * 3.5 + 0.1, 150 + 30 * math.sin(i / 6), 0.95)  # a pause: the last point gains pressure
        live = document.to_array(256, stroke)
        assert np.array_equal(live, qimage_to_grey(document.render(256, stroke)))
    document.undo_stack.undo()  # the sheet under the stroke changed: drawn afresh
    assert np.array_equal(document.to_array(256, stroke), qimage_to_grey(document.render(256, stroke)))


def test_a_sparse_stroke_keeps_its_corners_and_ends_where_the_pen_lifted(canvas):
    """A fast flick: four events far apart (an L and back up). Smoothing must not round the corner
    off or stop short of the pen-up point."""
    corners = [(60, 60), (60, 240), (240, 240), (240, 80)]
    drag(canvas, corners)
    stroke = canvas.document.strokes[0]
    expected = [canvas.to_document(QPointF(*p)) for p in corners]
    end = stroke.points[-1]
    assert abs(end[0] - expected[-1].x()) < 0.5 and abs(end[1] - expected[-1].y()) < 0.5
    for corner in expected[1:3]:
        nearest = min(np.hypot(x - corner.x(), y - corner.y()) for x, y, _ in stroke.points)
        assert nearest < 0.5, "a corner was cut"


def test_dense_input_is_smoothed_by_the_setting_and_ends_at_the_pen(canvas):
    def wobbly():
        return [(60 + 2 * i, 150 + (3 if i % 2 else -3)) for i in range(60)]

    canvas.smoothing = 0.0
    drag(canvas, wobbly())
    raw = np.array(canvas.document.strokes[-1].points)
    canvas.smoothing = 0.8
    drag(canvas, wobbly())
    smooth = np.array(canvas.document.strokes[-1].points)
    assert np.ptp(smooth[5:-1, 1]) < 0.5 * np.ptp(raw[5:-1, 1])  # the zigzag is mostly gone
    end = canvas.to_document(QPointF(*wobbly()[-1]))
    assert abs(smooth[-1, 0] - end.x()) < 0.5 and abs(smooth[-1, 1] - end.y()) < 0.5


def test_simulated_pressure_thins_fast_mouse_strokes_for_the_pen_only(canvas):
    slow = [(40 + i, 100) for i in range(0, 200, 2)]
    fast = [(40 + i, 200) for i in range(0, 200, 25)]
    drag(canvas, slow)
    drag(canvas, fast)
    slow_pressure = np.mean([p for _, _, p in canvas.document.strokes[0].points[1:]])
    fast_pressure = np.mean([p for _, _, p in canvas.document.strokes[1].points[1:]])
    assert fast_pressure < slow_pressure - 0.1
    canvas.set_tool(ERASER)
    drag(canvas, fast)
    assert {p for _, _, p in canvas.document.strokes[2].points} == {0.6}  # the eraser keeps its size
    canvas.set_tool(PEN)
    canvas.simulate_pressure = False
    drag(canvas, fast)
    assert {p for _, _, p in canvas.document.strokes[3].points} == {0.6}


def test_undoing_recent_strokes_and_a_clear_puts_the_sheet_back_without_a_redraw(monkeypatch):
    from sketchapp.ui import sketch

    document = SketchDocument(side=128)
    for row in range(sketch.KEPT_SHEETS + 4):
        document.add_stroke(Stroke(PEN, 3.0, [(5.0, 3.0 + row * 3, 0.5), (120.0, 3.0 + row * 3, 0.7)]))
    document.clear()
    redraws = []
    real = document._draw
    monkeypatch.setattr(document, "_draw", lambda side: redraws.append(side) or real(side))
    document.undo_stack.undo()  # the Clear
    for _ in range(sketch.KEPT_SHEETS - 1):
        document.undo_stack.undo()
    assert redraws == []
    kept = qimage_to_grey(document.raster())
    assert (kept == qimage_to_grey(real(document.side))).mean() > 0.99  # the same picture a redraw gives
    document.undo_stack.undo()  # older than the sheets kept: redrawn from the strokes
    assert redraws == [document.side] and len(document.strokes) == 4
    document.undo_stack.redo()
    assert len(document.strokes) == 5
