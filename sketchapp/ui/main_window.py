"""The main window: canvas beside the live result, candidates, presets, tools and files.

The window knows nothing of torch. It asks for completions through ``completion_requested``
and shows whatever frames it is handed (objects with the attributes of
``sketchapp.workers.completion.Frame``); file reading and writing come from a
``Services`` object, so the app wires it to the core and the tests to fakes.
"""

from __future__ import annotations

import contextlib

import json
import secrets
from collections.abc import Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import qtawesome as qta
from PySide6.QtCore import QPointF, QRectF, QSettings, QSize, Qt, QTimer, Signal
from PySide6.QtGui import (
    QAction,
    QActionGroup,
    QCloseEvent,
    QColor,
    QDragEnterEvent,
    QDropEvent,
    QGuiApplication,
    QIcon,
    QImage,
    QKeySequence,
    QMouseEvent,
    QPainter,
    QPen,
    QPixmap,
    QUndoCommand,
)
from PySide6.QtWidgets import (
    QApplication,
    QColorDialog,
    QDialog,
    QDockWidget,
    QFileDialog,
    QInputDialog,
    QLabel,
    QListWidget,
    QListWidgetItem,
    QMainWindow,
    QMessageBox,
    QProgressBar,
    QSlider,
    QSplitter,
    QToolBar,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from sketchapp.contracts import Capabilities, LoadedModel
from sketchapp.paths import user_state_dir
from sketchapp.ui import session
from sketchapp.ui.canvas import MAX_BRUSH, MIN_BRUSH, Canvas
from sketchapp.ui.help import AboutDialog, GuideDialog, ShortcutsDialog
from sketchapp.ui.history import HistoryEntry, HistoryStrip
from sketchapp.ui.palette import PaletteBar
from sketchapp.ui.preferences import EXPORT_SCALES, Preferences, PreferencesDialog
from sketchapp.ui.sketch import ERASER, PEN, SketchDocument, Stroke, array_to_qimage, qimage_to_grey
from sketchapp.ui.theme import set_theme

AUTOSAVE_MS = 3000
IDLE_MS = 250  # restart a completion this long after the sketch last changed
PALETTE_SIDE = 256  # the drawing's areas for the palette's suggestions are found at least this large
SHARPEN_MS = 200  # the result pane is drawn sharp once no new result has come for this long
SHARPEN_FACTOR = 4  # the upscaler's one step: a 128 px picture at 512 px, the pane's usual size
LIVE_MS = 0  # with a one-pass engine: the pen events already queued share one request, made as soon as they are handled
RECENT_LIMIT = 8
IMPORT_FILTER = "Sketches (*.png *.jpg *.jpeg *.webp *.bmp *.svg);;All files (*)"
DOCUMENT_SUFFIX = ".sketchapp"
DOCUMENT_FILTER = "SketchApp drawings (*.sketchapp)"
OPEN_FILTER = (
    "Drawings, results and sketches (*.sketchapp *.png *.jpg *.jpeg *.webp *.bmp *.svg);;"
    "SketchApp drawings (*.sketchapp);;All files (*)"
)
RESULT_KEY = "sketchapp-document"  # sketchapp.core.document.RESULT_KEY
RESULT_TEXT_LIMIT = 900_000  # a result PNG carries its drawing only below this (PNG readers refuse text chunks over 1 MB)
SEED_RANGE = 2**31
VARIATIONS = 4  # candidates of a drawing at rest while "Colour variations" is on
PASTE_PIXELS = 64_000_000  # as many as an imported file may have


def recalled(settings: dict[str, Any]) -> dict[str, Any]:
    """The engine settings of an earlier run to run with again: the seed has its own control, the ink
    toggle is the window's, and the iteration count is what the run reached, not what it was given."""
    return {k: v for k, v in settings.items() if k not in ("seed", "ink_lines", "iterations")}


def shown(name: str) -> str:
    """A file name fit to show: control and bidirectional-override characters escaped."""
    return "".join(c if c.isprintable() else c.encode("unicode_escape").decode("ascii") for c in name)
EXPORT_FILTER = "PNG (*.png);;JPEG (*.jpg *.jpeg);;WebP (*.webp);;OpenRaster layers for Krita, GIMP, MyPaint (*.ora)"


class UserError(Exception):
    """A problem to show the user as it is (bad file, full disk)."""


class Services(Protocol):
    def load_sketch(self, path: str, side: int) -> np.ndarray: ...  # grey uint8 side x side; raises UserError

    def load_picture(self, path: str, side: int) -> np.ndarray: ...  # RGB uint8, at most 2 x side; raises UserError

    def save_image(self, path: str, pixels: np.ndarray, text: dict[str, str]) -> None: ...  # raises UserError

    def save_images(self, items: list[tuple[str, np.ndarray, dict[str, str]]]) -> None: ...  # all or none; UserError

    def enlarge(self, pixels: np.ndarray, side: int) -> np.ndarray: ...  # side x side, sharp (a learned upscaler)

    def save_layers(self, path: str, layers: list[tuple[str, np.ndarray, bool]]) -> None: ...  # OpenRaster; UserError

    def ink(self, pixels: np.ndarray, lines: np.ndarray, side: int) -> np.ndarray: ...  # lines over pixels, side x side

    def area_at(self, sketch: np.ndarray, x: int, y: int) -> np.ndarray | None: ...  # the closed area at (x, y), bool

    def area_colours(self, sketch: np.ndarray, picture: np.ndarray) -> list[tuple[int, int, int]]: ...  # per closed area

    def prepare_sketch(self, picture: np.ndarray, side: int) -> np.ndarray: ...  # RGB -> grey sketch side x side

    # Documents: ``content`` holds plain values (see ``MainWindow.document_content``); what is read
    # back has the same names as attributes (side, strokes, base, hints, preset, seed, ...).
    def save_document(self, path: str, content: dict[str, Any]) -> None: ...  # atomic; raises UserError

    def read_document(self, path: str) -> Any: ...  # raises UserError

    def read_result(self, path: str) -> Any: ...  # what made a result PNG, None for other pictures; UserError

    def result_text(self, content: dict[str, Any]) -> str: ...  # the drawing as a PNG text chunk


@dataclass(frozen=True)
class PresetEntry:
    id: str
    name: str
    description: str = ""
    thumbnail: np.ndarray | None = None  # RGB pixels, decoded by the core (never a file Qt opens by itself)
    source: str = "bundled"


class _HintEdit(QUndoCommand):
    """An edit of the hint layer (a stroke, a fill, clearing it), undone and redone with the drawing's steps."""

    def __init__(self, view: ResultView, before: QImage, had: bool, text: str) -> None:
        super().__init__(text)
        self.view, self.before, self.had = view, before, had
        self.after, self.has = view.hints.copy(), view.has_hints()
        self.done = True  # pushed after the edit was made: the first redo has nothing to do

    def redo(self) -> None:
        if self.done:
            self.done = False
            return
        self.view.set_hint_layer(self.after, self.has)

    def undo(self) -> None:
        self.view.set_hint_layer(self.before, self.had)


class ResultView(QWidget):
    """The chosen candidate, scaled to fit, with a hint layer the user can paint colours on."""

    hints_changed = Signal()
    hints_painting = Signal()  # a hint stroke grew (live engines recolour while it is painted)
    hints_edited = Signal(object, bool, str)  # the hint layer before an edit (a QImage), whether it had hints, the edit's name
    fill_requested = Signal(int, int)  # a click with the fill tool: the point in hint-layer pixels
    colour_picked = Signal(QColor)  # a click with the eyedropper: the result's colour there
    resized = Signal()
    HINT_SIDE = 512
    BRUSH, FILL, PICK = "brush", "fill", "pick"

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.image: QImage | None = None
        self.placeholder = "Draw on the left: the completion appears here."
        self.hints = QImage(self.HINT_SIDE, self.HINT_SIDE, QImage.Format.Format_ARGB32)
        self.hints.fill(Qt.GlobalColor.transparent)
        self.hint_mode = False
        self.hint_colour = QColor(230, 60, 40)
        self.hint_size = 28.0
        self.hint_tool = self.BRUSH
        self._before: tuple[QImage, bool] | None = None  # the layer as a brush stroke found it
        self._last: QPointF | None = None
        self._painted = False  # kept, not recomputed: a 512 px scan on every request is wasted work
        self.revision = 0  # grows with every change of the hints (autosave writes them when it moved)
        self.setMinimumSize(200, 200)

    def set_image(self, image: QImage | None) -> None:
        self.image = image
        self.update()

    def sheet(self) -> QRectF:
        side = min(self.width(), self.height()) - 16
        return QRectF((self.width() - side) / 2, (self.height() - side) / 2, side, side)

    def has_hints(self) -> bool:
        return self._painted

    @property
    def hint_painting(self) -> bool:
        """A hint stroke is under way (the button is down)."""
        return self._last is not None

    def clear_hints(self, undoable: bool = True) -> None:
        """No hints; an undo step unless the drawing itself is being replaced (New, Open)."""
        if self._painted:
            before = self.hints.copy()
            self._painted = False
            self.revision += 1
            self.hints.fill(Qt.GlobalColor.transparent)
            self.update()
            self.hints_changed.emit()
            if undoable:
                self.hints_edited.emit(before, True, "Clear hints")

    def set_hint_layer(self, layer: QImage, painted: bool) -> None:
        """Put back a hint layer as it was (undo and redo of hint edits)."""
        self.hints = layer.copy()
        self._painted = painted
        self.revision += 1
        self.update()
        self.hints_changed.emit()

    def fill_hint(self, area: np.ndarray) -> None:
        """Hint the whole of ``area`` ((HINT_SIDE, HINT_SIDE) bool) in the hint colour: one undoable edit."""
        before, had = self.hints.copy(), self._painted
        layer = qimage_rgba(self.hints)
        layer[area] = (self.hint_colour.red(), self.hint_colour.green(), self.hint_colour.blue(), 255)
        self.hints = QImage(layer.data, self.HINT_SIDE, self.HINT_SIDE, 4 * self.HINT_SIDE, QImage.Format.Format_RGBA8888).convertToFormat(
            QImage.Format.Format_ARGB32)
        self._painted = True
        self.revision += 1
        self.update()
        self.hints_changed.emit()
        self.hints_edited.emit(before, had, "Fill hint")

    def _hint_point(self, position: QPointF) -> QPointF:
        sheet = self.sheet()
        return (position - sheet.topLeft()) * (self.HINT_SIDE / sheet.width())

    def set_hints(self, image: QImage) -> None:
        """Hints saved earlier (an autosave): scaled to the hint layer."""
        self.hints = image.convertToFormat(QImage.Format.Format_ARGB32).scaled(
            self.HINT_SIDE, self.HINT_SIDE, Qt.AspectRatioMode.IgnoreAspectRatio, Qt.TransformationMode.SmoothTransformation
        )
        self._painted = True
        self.revision += 1
        self.update()

    def hints_array(self, side: int) -> np.ndarray:
        """RGBA uint8 (side, side): the colours painted so far, alpha where painted."""
        scaled = self.hints.scaled(side, side, Qt.AspectRatioMode.IgnoreAspectRatio, Qt.TransformationMode.SmoothTransformation)
        return qimage_rgba(scaled)

    def _paint_hint(self, position: QPointF) -> None:
        point = self._hint_point(position)
        painter = QPainter(self.hints)
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        pen = QPen(self.hint_colour, self.hint_size, Qt.PenStyle.SolidLine, Qt.PenCapStyle.RoundCap, Qt.PenJoinStyle.RoundJoin)
        painter.setPen(pen)
        if self._last is None:
            painter.drawPoint(point)  # a click leaves a dab (a line of length 0 draws nothing)
        else:
            painter.drawLine(self._last, point)
        painter.end()
        self._last = point
        self._painted = True
        self.revision += 1
        self.update()

    def mousePressEvent(self, event: QMouseEvent) -> None:  # noqa: N802
        if not self.hint_mode or event.button() != Qt.MouseButton.LeftButton:
            return
        point = self._hint_point(event.position())
        if self.hint_tool == self.FILL:
            if 0 <= point.x() < self.HINT_SIDE and 0 <= point.y() < self.HINT_SIDE:
                self.fill_requested.emit(int(point.x()), int(point.y()))
        elif self.hint_tool == self.PICK:
            if self.image is not None and 0 <= point.x() < self.HINT_SIDE and 0 <= point.y() < self.HINT_SIDE:
                scale = self.image.width() / self.HINT_SIDE
                self.colour_picked.emit(self.image.pixelColor(int(point.x() * scale), int(point.y() * scale)))
        else:
            self._before = (self.hints.copy(), self._painted)
            self._last = None
            self._paint_hint(event.position())

    def mouseMoveEvent(self, event: QMouseEvent) -> None:  # noqa: N802
        if self.hint_mode and self._before is not None and event.buttons() & Qt.MouseButton.LeftButton:
            self._paint_hint(event.position())
            self.hints_painting.emit()

    def mouseReleaseEvent(self, event: QMouseEvent) -> None:  # noqa: N802
        if self.hint_mode and self._before is not None and event.button() == Qt.MouseButton.LeftButton:
            self._last = None
            before, self._before = self._before, None
            self.hints_changed.emit()
            self.hints_edited.emit(before[0], before[1], "Hint stroke")

    def resizeEvent(self, event: Any) -> None:  # noqa: N802
        super().resizeEvent(event)
        self.resized.emit()

    def paintEvent(self, _event: Any) -> None:  # noqa: N802
        painter = QPainter(self)
        painter.fillRect(self.rect(), self.palette().window())
        sheet = self.sheet()
        if self.image is None:
            painter.setPen(self.palette().placeholderText().color())
            painter.drawText(self.rect(), Qt.AlignmentFlag.AlignCenter | Qt.TextFlag.TextWordWrap, self.placeholder)
        else:
            painter.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform)
            painter.drawImage(sheet, self.image)
        if self.hint_mode or self.image is None:
            painter.setOpacity(0.55)
            painter.drawImage(sheet, self.hints)
        painter.end()


def qimage_rgba(image: QImage) -> np.ndarray:
    converted = image.convertToFormat(QImage.Format.Format_RGBA8888)
    width, height, stride = converted.width(), converted.height(), converted.bytesPerLine()
    buffer = np.frombuffer(converted.constBits(), np.uint8, count=stride * height).reshape(height, stride)
    return buffer[:, : width * 4].reshape(height, width, 4).copy()


class MainWindow(QMainWindow):
    # generation, sketch (grey), hints (RGBA) or None, z or None, settings for this run (the seed when locked)
    completion_requested = Signal(int, object, object, object, object)
    completion_cancelled = Signal()
    preset_chosen = Signal(str)
    training_requested = Signal()
    autosave_failed = Signal(str)
    import_finished = Signal(bool)  # an import ended: its picture is the base layer now (True) or it failed
    _import_done = Signal(int, str, object)  # from the import thread: ticket, path, pixels or a UserError
    _style_loaded = Signal(int, str, object)  # from the import thread: ticket, reference name, pixels or a UserError
    _sharpened = Signal(int, object)  # from the enlarging thread: ticket, the pane's sharp picture
    _document_read = Signal(int, str, object)  # from the import thread: ticket, path, what was read or a UserError
    document_opened = Signal(bool)  # a document or result was opened (True) or could not be
    preferences_changed = Signal(object)  # Preferences: the app moves the model to the new device or threads
    sketch_requested = Signal(int, object)  # ticket, an RGB picture the engine should draw a sketch of
    style_requested = Signal(int, object, object, float)  # ticket, the chosen result, the reference picture, strength
    style_finished = Signal(bool)  # a style reference was applied to the result (True) or failed

    def __init__(self, services: Services, settings: QSettings | None = None, state_dir: Path | None = None) -> None:
        super().__init__()
        self.services = services
        self.state_dir = state_dir or user_state_dir()
        self.slot = session.Slot(self.state_dir)  # this window's own autosave folder, locked while it runs
        self.saved_revision: tuple[int, int] = (0, 0)  # (document, hints) revisions last autosaved
        self.settings = settings or QSettings("SketchApp", "SketchApp")
        self.generation = 0
        self.model_side = 64
        self.frame: Any = None
        self.chosen = 0
        self.preset_name = ""
        self.ink_preset: str | None = None  # the preset whose ink default the toggle last took
        self.live = True
        # What the loaded engine offers (the worker reports it): "live" engines complete in one
        # pass, so the window asks while the pen moves and shows the newest result that arrives.
        self.capabilities = Capabilities()
        self.preset_candidates = 1
        self.accept_from = 0  # frames of an older generation than this are never shown (a stop, a new model)
        self.document_path: str | None = None  # the .sketchapp file the drawing was last saved to or opened from
        self.clean_revision: tuple[int, int] = (0, 0)  # (document, hints) revisions when it was
        self.seed_locked = False
        self.seed: int | None = None  # the locked seed, or the one of the result on show
        self._next_seed: int | None = None  # one run with this seed (an opened document's), locked or not
        self._next_seed_generation = -1  # the run that asked with it: the seed is spent once its result shows
        self.overrides: dict[str, Any] = {}  # engine settings recalled from a document or result
        self._pending_ink: bool | None = None  # an opened document's ink toggle, once its preset is loaded
        self._settled = -1  # the generation asked for with the pen up: its final result goes to the history
        self._restoring = False  # a history entry or document is being put back: no completion for that
        self._seed_chosen_generation = -1  # the newest run whose seed was locked or given (not drawn at random)
        self.setWindowTitle("SketchApp")
        self.setAcceptDrops(True)

        self.document = SketchDocument(512, self)
        self.canvas = Canvas(self.document)
        self.result = ResultView()
        self.gallery = QListWidget()
        self.gallery.setViewMode(QListWidget.ViewMode.IconMode)
        self.gallery.setIconSize(QSize(72, 72))
        self.gallery.setFlow(QListWidget.Flow.LeftToRight)
        self.gallery.setWrapping(False)
        self.gallery.setFixedHeight(100)
        policy = self.gallery.sizePolicy()
        policy.setRetainSizeWhenHidden(True)  # the result pane keeps its size whether an engine shows candidates or not
        self.gallery.setSizePolicy(policy)
        self.gallery.currentRowChanged.connect(self._choose)
        self.presets = QListWidget()
        self.presets.setIconSize(QSize(48, 48))
        # full names, wrapped, never cut off behind a sideways scroll bar
        self.presets.setWordWrap(True)
        self.presets.setTextElideMode(Qt.TextElideMode.ElideNone)
        self.presets.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.presets.itemActivated.connect(lambda item: self._pick_preset(item.data(Qt.ItemDataRole.UserRole)))
        self.presets.itemClicked.connect(lambda item: self._pick_preset(item.data(Qt.ItemDataRole.UserRole)))
        self.history = HistoryStrip()
        self.history.restore_requested.connect(self.restore_history)

        right = QWidget()
        column = QVBoxLayout(right)
        column.setContentsMargins(0, 0, 0, 0)
        column.addWidget(self.result, 1)
        self.palette_bar = PaletteBar()
        self.palette_bar.chosen.connect(self.set_hint_colour)
        column.addWidget(self.palette_bar)
        column.addWidget(self.gallery)
        self.splitter = QSplitter()
        self.splitter.addWidget(self.presets)
        self.splitter.addWidget(self.canvas)
        self.splitter.addWidget(right)
        self.splitter.setStretchFactor(1, 1)
        self.splitter.setStretchFactor(2, 1)
        self.splitter.setSizes([170, 520, 520])
        self.setCentralWidget(self.splitter)
        self.history_dock = QDockWidget("History", self)
        self.history_dock.setObjectName("history")
        self.history_dock.setWidget(self.history)
        self.history_dock.setFeatures(QDockWidget.DockWidgetFeature.DockWidgetClosable | QDockWidget.DockWidgetFeature.DockWidgetMovable)
        self.addDockWidget(Qt.DockWidgetArea.BottomDockWidgetArea, self.history_dock)

        self.idle = QTimer(self)
        self.idle.setSingleShot(True)
        self.idle.setInterval(IDLE_MS)
        self.idle.timeout.connect(self.request_completion)
        self.pen_timer = QTimer(self)
        self.pen_timer.setSingleShot(True)
        self.pen_timer.setInterval(LIVE_MS)
        self.pen_timer.timeout.connect(self.request_completion)
        self.document.changed.connect(self._sketch_changed)
        self.document.changed.connect(self._update_title)
        self.document.underlay_changed.connect(self._update_title)
        self.result.hints_changed.connect(self._update_title)
        self.canvas.stroke_started.connect(self.idle.stop)
        self.canvas.stroke_moved.connect(self._drawing)
        self.result.hints_changed.connect(self._sketch_changed)
        self.result.hints_painting.connect(self._drawing)
        self.result.hints_edited.connect(self._hints_edited)
        self.result.fill_requested.connect(self._fill_hint)
        self.result.colour_picked.connect(self._picked)

        # Imports decode and clean up photos of up to 64 megapixels: off the GUI thread, so the
        # window keeps drawing; the newest import wins.
        self._import_pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="import")
        self._import_ticket = 0
        self._open_ticket = 0  # documents and results being read: the newest one opened wins
        self._sketching: tuple[int, str] | None = None  # (ticket, file name) of a picture the model is sketching
        self._styling: tuple[int, int, int, str] | None = None  # (ticket, generation, candidate, reference name)
        self._import_done.connect(self._imported)
        self._document_read.connect(self._document_arrived)
        self._style_loaded.connect(self._style_reference_read)
        self._style_picture: np.ndarray | None = None
        self._autosave_pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="autosave")
        self._autosave_job: Future | None = None
        # The result pane's sharp picture: enlarged by the upscaler once results stop arriving.
        self._enlarge_pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="enlarge")
        self._sharpen_ticket = 0
        self._sharpened.connect(self._show_sharpened)
        self.sharpen_timer = QTimer(self)
        self.sharpen_timer.setSingleShot(True)
        self.sharpen_timer.setInterval(SHARPEN_MS)
        self.sharpen_timer.timeout.connect(self._sharpen)
        self.result.resized.connect(self.sharpen_timer.start)
        self.autosave_failed.connect(lambda message: self.statusBar().showMessage(f"Autosave failed: {message}", 8000))
        self.autosave = QTimer(self)
        self.autosave.setInterval(AUTOSAVE_MS)
        self.autosave.timeout.connect(self.save_session)
        self.autosave.start()

        self.preferences = Preferences.load(self.settings)
        self._build_actions()
        self._build_status()
        self._update_title()
        self.apply_preferences(self.preferences)
        self.resize(1280, 760)
        geometry = self.settings.value("geometry")
        if geometry is not None:
            self.restoreGeometry(geometry)

    # -- building -------------------------------------------------------------------------
    def _action(self, icon: str, text: str, slot: Any, shortcut: Any = None, checkable: bool = False) -> QAction:
        action = QAction(qta.icon(icon), text, self)
        if shortcut is not None:
            action.setShortcuts(shortcut if isinstance(shortcut, list) else [QKeySequence(shortcut)])
        action.setCheckable(checkable)
        action.triggered.connect(slot)
        return action

    def _build_actions(self) -> None:
        self.pen_action = self._action("fa5s.pen", "Pen", lambda: self._tool(PEN), "B", checkable=True)
        self.eraser_action = self._action("fa5s.eraser", "Eraser", lambda: self._tool(ERASER), "E", checkable=True)
        self.pen_action.setChecked(True)
        undo = self.document.undo_stack.createUndoAction(self, "Undo")
        undo.setIcon(qta.icon("fa5s.undo"))
        undo.setShortcut(QKeySequence.StandardKey.Undo)
        redo = self.document.undo_stack.createRedoAction(self, "Redo")
        redo.setIcon(qta.icon("fa5s.redo"))
        # the platform's own Redo keys and both common ones, each once: a key sequence given twice is
        # ambiguous to Qt and then triggers nothing (StandardKey.Redo is Ctrl+Shift+Z on Linux)
        keys = [QKeySequence("Ctrl+Shift+Z"), QKeySequence("Ctrl+Y"), *QKeySequence.keyBindings(QKeySequence.StandardKey.Redo)]
        redo.setShortcuts(list(dict.fromkeys(keys)))
        self.undo_action, self.redo_action = undo, redo
        self.clear_action = self._action("fa5s.trash-alt", "Clear", self.document.clear, "Ctrl+Backspace")
        self.ghost_action = self._action("fa5s.ghost", "Ghost guide", self.canvas.show_ghost, "G", checkable=True)
        self.new_action = self._action("fa5s.file", "New drawing", self.new_document, QKeySequence.StandardKey.New)
        self.open_action = self._action("fa5s.folder-open", "Open…", self.open_dialog, QKeySequence.StandardKey.Open)
        self.open_action.setToolTip("Open a drawing (.sketchapp), or a result PNG to bring back its drawing, preset, seed and settings")
        self.save_action = self._action("fa5s.save", "Save", self.save, QKeySequence.StandardKey.Save)
        self.save_as_action = self._action("fa5s.save", "Save as…", self.save_as, "Ctrl+Shift+S")
        self.import_action = self._action("fa5s.file-import", "Import sketch…", self.import_dialog, "Ctrl+Shift+O")
        self.paste_action = self._action("fa5s.paste", "Paste as sketch", self.paste, QKeySequence.StandardKey.Paste)
        self.export_sketch_action = self._action("fa5s.file-image", "Export sketch…", self.export_sketch_dialog, "Ctrl+Shift+E")
        self.lock_seed_action = self._action("fa5s.lock", "Lock seed", self.lock_seed, "Ctrl+L", checkable=True)
        self.lock_seed_action.setToolTip("Every run uses the same seed while locked, so the result changes only with the drawing")
        self.new_seed_action = self._action("fa5s.dice", "New seed", self.new_seed, "N")
        self.sketch_of_action = self._action("fa5s.drafting-compass", "Sketch from a picture…", self.sketch_of_dialog)
        self.sketch_of_action.setToolTip("The preset's model draws a sketch of a photo or picture, to draw on (CycleGAN presets)")
        self.sketch_of_action.setVisible(False)
        self.style_action = self._action("fa5s.fill-drip", "Style reference…", self.style_dialog)
        self.style_action.setToolTip("The result takes the colours and textures of a picture you choose (Gatys et al.)")
        self.export_action = self._action("fa5s.file-export", "Export result…", self.export_dialog, "Ctrl+E")
        self.export_all_action = self._action("fa5s.images", "Export all candidates…", self.export_all_dialog)
        self.sheet_action = self._action("fa5s.columns", "Export sketch | result sheet…", self.export_sheet_dialog)
        self.copy_action = self._action("fa5s.copy", "Copy result", self.copy_result, QKeySequence.StandardKey.Copy)
        self.stop_action = self._action("fa5s.stop", "Stop", self.stop, "Esc")
        self.run_action = self._action("fa5s.play", "Complete now", self.request_completion, "Ctrl+Return")
        self.refine_action = self._action("fa5s.magic", "Refine chosen candidate", self.refine, "R")
        self.variations_action = self._action(
            "fa5s.dice", "Colour variations", self._set_variations, "V", checkable=True,
        )
        self.variations_action.setVisible(False)  # until a model that offers them is loaded
        self.variations_action.setToolTip(
            f"When you lift the pen, {VARIATIONS} candidates: the model's own picture and {VARIATIONS - 1} in sampled palettes (V)"
        )
        self.hint_action = self._action("fa5s.paint-brush", "Colour hints", self._hint_mode, "H", checkable=True)
        self.hint_colour_action = self._action("fa5s.palette", "Hint colour…", self.choose_hint_colour)
        self.clear_hints_action = self._action("fa5s.eraser", "Clear hints", lambda: self.result.clear_hints())
        # how a click on the result hints: paint a stroke, fill the closed area under it, or pick its colour
        self.hint_brush_action = self._action("fa5s.paint-brush", "Hint brush", lambda: self._hint_tool(ResultView.BRUSH),
                                              "Shift+H", checkable=True)
        self.fill_action = self._action("fa5s.fill", "Fill an area", lambda: self._hint_tool(ResultView.FILL), "Shift+F", checkable=True)
        self.fill_action.setToolTip("Click inside a closed area of the result: the whole area gets the hint colour (Shift+F)")
        self.pick_action = self._action("fa5s.eye-dropper", "Pick a colour", lambda: self._hint_tool(ResultView.PICK), "O", checkable=True)
        self.pick_action.setToolTip("Click the result to take its colour as the hint colour (O)")
        self.underlay_action = self._action("fa5s.layer-group", "Use result as underlay", self.use_result_as_underlay, "U")
        self.underlay_action.setToolTip("Show the result under your drawing, to keep drawing over it; the model still "
                                        "sees only your lines (U)")
        self.show_underlay_action = self._action("fa5s.eye", "Show underlay", self._show_underlay, "Shift+U", checkable=True)
        self.show_underlay_action.setChecked(True)
        self.fade_underlay_action = self._action("fa5s.adjust", "Fade underlay", self.fade_underlay, "Alt+U")
        self.fade_underlay_action.setToolTip("Underlay opacity: 25, 50, 75 or 100 % in turn (Alt+U)")
        self.clear_underlay_action = self._action("fa5s.times", "Clear underlay", lambda: self.document.set_underlay(None, "Clear underlay"))
        hint_tools = QActionGroup(self)
        for action in (self.hint_brush_action, self.fill_action, self.pick_action):
            hint_tools.addAction(action)
        self.hint_brush_action.setChecked(True)
        self.ink_action = self._action("fa5s.pen-nib", "Ink my lines over the result", self._set_ink, "I", checkable=True)
        self.ink_action.setToolTip("Draw your own lines over the coloured result (I); each preset has its default")
        self.live_action = self._action("fa5s.bolt", "Live completion", self._set_live, checkable=True)
        self.live_action.setChecked(True)
        smaller = self._action("fa5s.minus", "Smaller brush", lambda: self.canvas.grow_brush(1 / 1.25), "[")
        bigger = self._action("fa5s.plus", "Bigger brush", lambda: self.canvas.grow_brush(1.25), "]")
        self.fit_action = self._action("fa5s.expand", "Fit to window", self.canvas.fit_to_window, "Ctrl+0")
        quit_action = self._action("fa5s.power-off", "Quit", self.close, QKeySequence.StandardKey.Quit)
        self.train_action = self._action("fa5s.graduation-cap", "Train a preset…", self.training_requested.emit, "Ctrl+T")
        self.train_action.setToolTip("Train a preset on your own pictures (Ctrl+T)")

        self.brush_slider = QSlider(Qt.Orientation.Horizontal)
        self.brush_slider.setRange(int(MIN_BRUSH), int(MAX_BRUSH))
        self.brush_slider.setValue(int(self.canvas.brush))
        self.brush_slider.setFixedWidth(120)
        self.brush_slider.setToolTip("Brush size ([ and ])")
        self.brush_slider.valueChanged.connect(self.canvas.set_brush)
        self.canvas.brush_changed.connect(lambda size: self.brush_slider.setValue(int(round(size))))

        tools = QToolBar("Tools")
        tools.setObjectName("tools")
        tools.setMovable(False)
        for action in (self.open_action, self.save_action, self.import_action, self.export_action, None, self.pen_action,
                       self.eraser_action):
            tools.addSeparator() if action is None else tools.addAction(action)
        tools.addWidget(self.brush_slider)
        for action in (undo, redo, self.clear_action, None, self.live_action, self.run_action, self.stop_action,
                       self.refine_action, self.variations_action, self.ghost_action, None, self.hint_action,
                       self.hint_colour_action, None, self.train_action):
            tools.addSeparator() if action is None else tools.addAction(action)
        self.addToolBar(tools)
        self.addActions([smaller, bigger])

        menus = self.menuBar()
        file_menu = menus.addMenu("&File")
        file_menu.addAction(self.new_action)
        file_menu.addAction(self.open_action)
        self.recent_menu = file_menu.addMenu(qta.icon("fa5s.history"), "Open recent")
        self.recent_menu.aboutToShow.connect(self._fill_recent)
        for action in (self.save_action, self.save_as_action, None, self.import_action, self.sketch_of_action, None,
                       self.export_action, self.export_all_action, self.sheet_action, self.export_sketch_action, None,
                       quit_action):
            file_menu.addSeparator() if action is None else file_menu.addAction(action)
        edit = menus.addMenu("&Edit")
        for action in (undo, redo, None, self.clear_action, self.copy_action, self.paste_action):
            edit.addSeparator() if action is None else edit.addAction(action)
        view = menus.addMenu("&View")
        history_toggle = self.history_dock.toggleViewAction()
        history_toggle.setShortcut(QKeySequence("Ctrl+H"))
        for action in (self.fit_action, self.ghost_action, self.ink_action, history_toggle):
            view.addAction(action)
        complete = menus.addMenu("&Completion")
        for action in (self.live_action, self.run_action, self.stop_action, self.refine_action, self.variations_action, None,
                       self.lock_seed_action, self.new_seed_action, None,
                       self.hint_action, self.hint_brush_action, self.fill_action, self.pick_action, self.hint_colour_action,
                       self.clear_hints_action, None, self.style_action):
            complete.addSeparator() if action is None else complete.addAction(action)
        layers = menus.addMenu("&Layers")
        for action in (self.underlay_action, self.show_underlay_action, self.fade_underlay_action, self.clear_underlay_action):
            layers.addAction(action)
        brush = menus.addMenu("&Brush")
        for action in (self.pen_action, self.eraser_action, smaller, bigger):
            brush.addAction(action)
        menus.addMenu("&Training").addAction(self.train_action)
        edit.addSeparator()
        edit.addAction(self._action("fa5s.cog", "Preferences…", self.preferences_dialog, "Ctrl+,"))
        help_menu = menus.addMenu("&Help")
        help_menu.addAction(self._action("fa5s.book", "User guide", lambda: self._show_dialog(GuideDialog(self)),
                                         QKeySequence.StandardKey.HelpContents))
        help_menu.addAction(self._action("fa5s.keyboard", "Keyboard shortcuts",
                                         lambda: self._show_dialog(ShortcutsDialog(self.menu_actions(), self)), "Ctrl+/"))
        help_menu.addSeparator()
        help_menu.addAction(self._action("fa5s.info-circle", "About SketchApp", lambda: self._show_dialog(AboutDialog(self))))

    def menu_actions(self) -> list[QAction]:
        """Every action of the menus, in menu order (the shortcut list is made of them)."""
        found: list[QAction] = []

        def walk(actions: list[QAction]) -> None:
            for action in actions:
                if action.menu() is not None:
                    walk(action.menu().actions())
                elif not action.isSeparator():
                    found.append(action)

        walk(self.menuBar().actions())
        return found + [a for a in self.actions() if a not in found]

    def _show_dialog(self, dialog: QDialog) -> None:
        dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        dialog.show()

    def preferences_dialog(self) -> None:
        dialog = PreferencesDialog(self.preferences, self)
        if dialog.exec() == QDialog.DialogCode.Accepted:
            self.set_preferences(dialog.preferences())

    def set_preferences(self, preferences: Preferences) -> None:
        """Keep and apply new preferences; the app hears of them (device, threads)."""
        preferences.save(self.settings)
        self.preferences = preferences
        self.apply_preferences(preferences)
        self.preferences_changed.emit(preferences)

    def apply_preferences(self, preferences: Preferences) -> None:
        self.canvas.smoothing = preferences.smoothing
        self.canvas.simulate_pressure = preferences.simulate_pressure
        self.autosave.setInterval(preferences.autosave_seconds * 1000)
        app = QApplication.instance()
        if isinstance(app, QApplication) and app.style().name().lower() == "fusion":  # the app's own styling is on
            set_theme(app, preferences.theme)

    def _build_status(self) -> None:
        bar = self.statusBar()
        self.device_label = QLabel("loading model…")
        self.preset_label = QLabel("")
        self.progress_label = QLabel("")
        self.busy = QProgressBar()
        self.busy.setRange(0, 0)
        self.busy.setFixedWidth(80)
        self.busy.setVisible(False)
        for widget in (self.preset_label, self.device_label):
            bar.addWidget(widget)
        self.seed_button = QToolButton()
        self.seed_button.setAutoRaise(True)
        self.seed_button.setCheckable(True)
        self.seed_button.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextBesideIcon)
        self.seed_button.clicked.connect(lambda _checked: self.lock_seed_action.trigger())
        bar.addPermanentWidget(self.seed_button)
        self._update_seed()
        self.importing = QProgressBar()
        self.importing.setRange(0, 0)
        self.importing.setFixedWidth(80)
        self.importing.setFormat("importing")
        self.importing.setVisible(False)
        bar.addPermanentWidget(self.progress_label)
        bar.addPermanentWidget(self.importing)
        bar.addPermanentWidget(self.busy)

    # -- tools ---------------------------------------------------------------------------
    def _tool(self, tool: str) -> None:
        self.canvas.set_tool(tool)
        self.pen_action.setChecked(tool == PEN)
        self.eraser_action.setChecked(tool == ERASER)

    def _hint_mode(self, on: bool) -> None:
        self.result.hint_mode = on
        self.result.setCursor(Qt.CursorShape.CrossCursor if on else Qt.CursorShape.ArrowCursor)
        self.result.update()

    def use_result_as_underlay(self) -> None:
        """The result on show, under the drawing (sharp at the sheet's size): keep drawing over it."""
        if self.frame is None:
            self.statusBar().showMessage("No result yet to put under the drawing", 3000)
            return
        image = self.frame.images[self.chosen]
        side = self.document.side
        large = self.services.enlarge(image, side) if side > image.shape[0] else image
        self.document.set_underlay(array_to_qimage(large))
        self.show_underlay_action.setChecked(True)
        self._show_underlay(True)

    def _show_underlay(self, on: bool) -> None:
        self.document.underlay_visible = on
        self.canvas.update()

    def fade_underlay(self) -> None:
        """The next of 25, 50, 75 and 100 % opacity for the underlay."""
        steps = (0.25, 0.5, 0.75, 1.0)
        now = min(range(len(steps)), key=lambda i: abs(steps[i] - self.document.underlay_opacity))
        self.document.underlay_opacity = steps[(now + 1) % len(steps)]
        self.canvas.update()
        self.statusBar().showMessage(f"Underlay at {self.document.underlay_opacity:.0%}", 2000)

    def _hint_tool(self, tool: str) -> None:
        """Choose what a click on the result does (and turn hinting on)."""
        self.result.hint_tool = tool
        self.hint_action.setChecked(True)
        self._hint_mode(True)

    def choose_hint_colour(self) -> None:
        colour = QColorDialog.getColor(self.result.hint_colour, self, "Hint colour")
        if colour.isValid():
            self.set_hint_colour(colour)

    def set_hint_colour(self, colour: QColor) -> None:
        """Hint in ``colour`` from now on; it joins the palette's recent colours."""
        self.result.hint_colour = QColor(colour)
        self.palette_bar.remember(colour)
        if not self.hint_action.isChecked():
            self.hint_action.setChecked(True)
            self._hint_mode(True)

    def _picked(self, colour: QColor) -> None:
        """The eyedropper took a colour from the result: hint with it, back to the tool that was in use before."""
        self.set_hint_colour(colour)
        self.statusBar().showMessage(f"Hint colour {colour.name()} taken from the result", 3000)

    def _fill_hint(self, x: int, y: int) -> None:
        """Hint the closed area of the drawing under (x, y) of the hint layer in the hint colour."""
        sketch = self.document.to_array(ResultView.HINT_SIDE)
        area = self.services.area_at(sketch, x, y)
        if area is None:
            self.statusBar().showMessage("That is a line: click inside an area to fill it", 3000)
            return
        self.result.fill_hint(area)
        self.palette_bar.remember(self.result.hint_colour)

    def _hints_edited(self, before: QImage, had: bool, text: str) -> None:
        self.document.undo_stack.push(_HintEdit(self.result, before, had, text))

    def _set_ink(self, _on: bool) -> None:
        if self.frame is not None:
            self._show_candidates(self.frame)
            self._show_result(self.chosen)

    def _variations_on(self) -> bool:
        return self.variations_action.isVisible() and self.variations_action.isChecked()

    def _show_gallery(self) -> None:
        self.gallery.setVisible(self.preset_candidates > 1 or self._variations_on())

    def _set_variations(self, _on: bool) -> None:
        """Colour variations on or off: the gallery follows, and the drawing is completed again at once."""
        self._show_gallery()
        if not self.document.is_empty():
            self.request_completion()

    def _set_live(self, live: bool) -> None:
        self.live = live
        if not live:
            self.idle.stop()
            self.pen_timer.stop()

    @property
    def engine_live(self) -> bool:
        return self.capabilities.live

    # -- presets and model ----------------------------------------------------------------
    def set_presets(self, entries: Sequence[PresetEntry], current: str | None = None) -> None:
        self.presets.clear()
        for entry in entries:
            item = QListWidgetItem(entry.name + ("" if entry.source == "bundled" else "  (yours)"))
            item.setData(Qt.ItemDataRole.UserRole, entry.id)
            # the name the command line takes (sketchapp complete --preset ID) beside the description
            about = f"{entry.name}: {entry.description}" if entry.description else entry.name
            item.setToolTip(f"{about}\nOn the command line: --preset {entry.id}")
            if entry.thumbnail is not None:
                item.setIcon(QIcon(QPixmap.fromImage(array_to_qimage(entry.thumbnail))))
            self.presets.addItem(item)
            if entry.id == current:
                self.presets.setCurrentItem(item)

    def model_ready(self, info: LoadedModel) -> None:
        self.model_side = info.size
        self.capabilities = info.capabilities
        self.accept_from = self.generation + 1  # nothing the previous model drew
        self.ghost_action.setVisible(self.capabilities.ghost)
        if not self.capabilities.ghost:
            self.canvas.set_ghost(None)
        self.refine_action.setVisible(self.capabilities.refine)
        self.sketch_of_action.setVisible(self.capabilities.sketch_of)
        self.variations_action.setVisible(self.capabilities.variations)
        self.preset_candidates = info.candidates
        self._show_gallery()
        current = self.presets.currentItem()
        preset = current.data(Qt.ItemDataRole.UserRole) if current is not None else info.name
        if preset != self.ink_preset:  # a new preset brings its ink default; reloading one keeps the user's choice
            self.ink_preset = preset
            self.ink_action.setChecked(info.ink_lines)
            self._set_ink(self.ink_action.isChecked())  # the frame on show follows the toggle at once
        if self._pending_ink is not None:  # an opened drawing's own choice, over the preset's default
            self.ink_action.setChecked(self._pending_ink)
            self._pending_ink = None
        self.preset_name = info.name
        self.preset_label.setText(f"Preset: {self.preset_name}")
        self.device_label.setText(f"Device: {info.device}")
        self.request_completion()  # an empty sheet clears what the previous preset drew

    def model_failed(self, message: str) -> None:
        self.device_label.setText("no model")
        QMessageBox.warning(self, "SketchApp", f"The model could not be loaded.\n\n{message}")

    # -- completion -----------------------------------------------------------------------
    def _sketch_changed(self) -> None:
        if self._restoring:
            return
        if self.document.is_empty():  # cleared, a new drawing, or undone back to nothing
            self._clear_result()
        elif self.live:
            (self.pen_timer if self.engine_live else self.idle).start()

    def _drawing(self) -> None:
        """The pen (or the hint brush) moved: a live engine completes the drawing as it is now."""
        if self.live and self.engine_live and not self.pen_timer.isActive():
            self.pen_timer.start()

    def request_completion(self, z: Any = None) -> None:
        stroke = self.canvas.stroke
        if self.document.is_empty() and stroke is None:
            self._clear_result()
            return
        self.generation += 1
        self.busy.setVisible(True)
        side = self.model_side * 4
        if stroke is not None and side > self.document.side:
            # while the pen moves, the sheet as it is kept (still twice a 256 px model's side)
            # instead of a redraw of every stroke at four times it on each pen event
            side = self.document.side
        hints = self.result.hints_array(side) if self.result.has_hints() else None
        if stroke is None and not self.result.hint_painting:
            self._settled = self.generation  # a result of the drawing at rest: it goes to the history
        settings = self.run_settings()
        if self._variations_on():  # the drawing at rest in several palettes; while the pen moves, one keeps up with it
            settings["candidates"] = VARIATIONS if stroke is None else 1
        self.completion_requested.emit(
            self.generation, self.document.to_array(side, stroke), hints, z if isinstance(z, np.ndarray) else None,
            settings,
        )

    def _clear_result(self) -> None:
        """An empty sheet shows no picture: the result, candidates and ghost go, and runs still under way are dropped."""
        self.generation += 1
        self.accept_from = self.generation + 1
        self.frame = None
        self.gallery.clear()
        self._sharpen_ticket += 1
        self.result.set_image(None)
        self.canvas.set_ghost(None)
        self.busy.setVisible(False)
        self.progress_label.setText("")

    def run_settings(self) -> dict[str, Any]:
        """Engine settings for the next run: recalled ones, and the seed when it is locked (or given once)."""
        settings = dict(self.overrides)
        seed = self._next_seed if self._next_seed is not None else (self.seed if self.seed_locked else None)
        if self._next_seed is not None:
            self._next_seed_generation = self.generation  # kept until that run's result is shown
        if seed is not None:
            settings["seed"] = seed
            self._seed_chosen_generation = self.generation  # its result is a picture the user asked for by seed
        else:
            settings.pop("seed", None)
        return settings

    def refine(self) -> None:
        if self.frame is not None and self.frame.latents is not None:
            self.request_completion(self.frame.latents[self.chosen : self.chosen + 1])

    def stop(self) -> None:
        self.idle.stop()
        self.pen_timer.stop()
        self.generation += 1  # whatever still arrives is stale
        self.accept_from = self.generation
        self.busy.setVisible(False)
        self.completion_cancelled.emit()

    def _current(self, frame: Any) -> bool:
        """Whether ``frame`` may be shown: the newest request's, or with a live engine the newest that arrives.

        While the pen moves a one-pass engine's results lag the pen by a request or two;
        each is shown unless it is older than the one on show, or from before a stop or
        a change of model.
        """
        if frame.generation == self.generation:
            return True
        newer = self.frame is None or frame.generation >= self.frame.generation
        return self.engine_live and self.accept_from <= frame.generation < self.generation and newer

    def show_frame(self, frame: Any) -> None:
        """A frame from the worker; frames of an older generation are dropped (see ``_current``)."""
        if not self._current(frame):
            return
        first = self.frame is None or self.frame.generation != frame.generation
        self.frame = frame
        if first or frame.final:
            self.chosen = int(frame.best)
        self.chosen = min(self.chosen, len(frame.images) - 1)
        self._show_candidates(frame)
        self._show_result(self.chosen)
        if frame.final and frame.generation == self._next_seed_generation:
            self._next_seed, self._next_seed_generation = None, -1
        if not self.seed_locked and isinstance((frame.settings or {}).get("seed"), int):
            self.seed = frame.settings["seed"]
            self._update_seed()
        if frame.final and frame.generation == self._settled:
            self._settled = -1
            self._remember_result(frame)
        if frame.final and self.canvas.stroke is None:  # not while the pen moves: each live frame is final
            image = frame.images[self.chosen]
            sketch = self.document.to_array(max(PALETTE_SIDE, image.shape[0]))  # thin lines stay closed
            self.palette_bar.suggest(self.services.area_colours(sketch, image))
        if frame.sketches is not None:
            self.canvas.set_ghost(array_to_qimage(frame.sketches[frame.best]))
        if self.engine_live:
            self.progress_label.setText(f"one pass  {1000 / frame.rate:.0f} ms" if frame.rate > 0 else "one pass")
        else:
            phase = "choosing starts" if frame.phase == "init" else f"iteration {frame.iteration}/{frame.iterations}"
            self.progress_label.setText(f"{phase}  loss {float(frame.losses[frame.best]):.4f}  {frame.rate:.1f} it/s")
        if frame.final and frame.generation == self.generation:
            self.busy.setVisible(False)

    def completion_failed(self, generation: int, message: str) -> None:
        if generation == self.generation:
            self.busy.setVisible(False)
            self.statusBar().showMessage(message, 8000)

    def _show_candidates(self, frame: Any) -> None:
        count = len(frame.images)
        self.gallery.blockSignals(True)
        while self.gallery.count() > count:
            self.gallery.takeItem(self.gallery.count() - 1)
        while self.gallery.count() < count:
            self.gallery.addItem(QListWidgetItem(""))
        for index in range(count):
            self.gallery.item(index).setIcon(QIcon(QPixmap.fromImage(array_to_qimage(self._picture(index, 1)))))
        self.gallery.setCurrentRow(self.chosen)
        self.gallery.blockSignals(False)

    def _choose(self, row: int) -> None:
        if self.frame is not None and 0 <= row < len(self.frame.images):
            self.chosen = row
            self._show_result(row)

    def _picture(self, index: int, scale: int = 0) -> np.ndarray:
        """Candidate ``index`` as the user gets it: on screen (scale 0) or exported at x``scale``.

        With the ink toggle on, the sketch's own lines are drawn over the model's picture:
        on screen at the line layer's resolution, in an export at the export's.
        """
        image = self.frame.images[index]
        lines = getattr(self.frame, "lines", None)
        inked = self.ink_action.isChecked() and lines is not None
        if scale == 0:
            return self.services.ink(image, lines, lines.shape[0]) if inked else image
        side = image.shape[0] * scale
        large = self.services.enlarge(image, side) if scale > 1 else image
        return self.services.ink(large, lines, side) if inked else large

    def _show_result(self, index: int) -> None:
        """Candidate ``index`` in the result pane; once results stop arriving, drawn again sharp at the pane's size."""
        self._sharpen_ticket += 1
        self.result.set_image(array_to_qimage(self._picture(index)))
        self.sharpen_timer.start()

    def _sharpen(self) -> None:
        """The shown candidate enlarged x4 by the learned upscaler (on the enlarging thread) where the pane
        shows it more than a fifth larger than the model drew it; a plain enlargement stands in meanwhile."""
        if self.frame is None or self.canvas.stroke is not None or self.result.hint_painting:
            return
        image = self.frame.images[self.chosen]
        shown = self.result.sheet().width() * self.result.devicePixelRatioF()
        if shown <= 1.2 * image.shape[0]:
            return
        side = image.shape[0] * SHARPEN_FACTOR
        lines = getattr(self.frame, "lines", None)
        inked = self.ink_action.isChecked() and lines is not None
        ticket = self._sharpen_ticket

        def work() -> None:
            try:
                large = self.services.enlarge(image, side)
                self._sharpened.emit(ticket, self.services.ink(large, lines, side) if inked else large)
            except Exception:  # noqa: BLE001 - the plain enlargement stays on show
                return

        with contextlib.suppress(RuntimeError):  # the window is closing: no more enlargements
            self._enlarge_pool.submit(work)

    def _show_sharpened(self, ticket: int, pixels: np.ndarray) -> None:
        if ticket == self._sharpen_ticket:  # nothing else was shown meanwhile
            self.result.set_image(array_to_qimage(pixels))

    # -- files ------------------------------------------------------------------------------
    def import_sketch(self, path: str, as_picture: bool = False) -> None:
        """Read ``path`` as the new base layer on the import thread; ``import_finished`` tells the outcome.

        The drawing stays as it is (and can still be drawn on) until the picture is ready;
        a file that cannot be read changes nothing. ``as_picture``: the file is a photo or
        picture, and the preset's model draws a sketch of it (engines with ``sketch_of``).
        """
        self._import_ticket += 1
        ticket, side = self._import_ticket, self.document.side
        self.importing.setVisible(True)
        self.statusBar().showMessage(f"{'Sketching' if as_picture else 'Importing'} {shown(Path(path).name)}…")
        load = self.services.load_picture if as_picture else self.services.load_sketch
        self._read_in_background(load, path, side, lambda result: self._import_done.emit(ticket, path, (result, as_picture)))

    def _read_in_background(self, load: Any, path: str, side: int, deliver: Any) -> None:
        """``deliver(load(path, side))`` on the import thread, a failure delivered as a UserError (never raised)."""

        def work() -> None:
            try:
                result: Any = load(path, side)
            except UserError as exc:
                result = exc
            except Exception as exc:  # noqa: BLE001 - a decoder bug must not take the window with it
                result = UserError(f"{Path(path).name}: could not import ({type(exc).__name__}: {exc})"[:300])
            deliver(result)

        self._import_pool.submit(work)

    def _imported(self, ticket: int, path: str, outcome: Any) -> None:
        if ticket != self._import_ticket:
            return  # a newer import was asked for meanwhile
        result, as_picture = outcome
        if isinstance(result, UserError):
            self.importing.setVisible(False)
            self.statusBar().clearMessage()
            QMessageBox.warning(self, "Import sketch", str(result))
            self.import_finished.emit(False)
            return
        if path:
            self._remember(path)
        if as_picture:  # the model draws it: the busy bar stays until its sketch arrives
            self._sketching = (ticket, Path(path).name)
            self.sketch_requested.emit(ticket, result)
            return
        self.importing.setVisible(False)
        self.statusBar().clearMessage()
        self.result.clear_hints()  # hints painted for the drawing before are no colours of this one
        self.document.set_base(array_to_qimage(result), f"Import {Path(path).name}" if path else "Paste")
        self.import_finished.emit(True)

    def picture_sketched(self, ticket: int, sketch: np.ndarray) -> None:
        """The model's sketch of an imported picture: the new base layer, enlarged sharply to the sheet
        (the learned upscaler; the model draws it at 128 px)."""
        if self._sketching is None or self._sketching[0] != ticket or ticket != self._import_ticket:
            return
        name = self._sketching[1]
        self._sketching = None
        self.importing.setVisible(False)
        self.statusBar().showMessage(f"Sketched {name} with {self.preset_name}", 4000)
        self.result.clear_hints()
        if sketch.shape[0] < self.document.side:
            rgb = sketch if sketch.ndim == 3 else np.repeat(sketch[..., None], 3, axis=2)
            sketch = self.services.enlarge(np.ascontiguousarray(rgb), self.document.side)
        self.document.set_base(array_to_qimage(sketch), f"Sketch of {name}")
        self.import_finished.emit(True)

    def style_dialog(self) -> None:
        if self.frame is None:
            self.statusBar().showMessage("Draw something first: the style reference changes the result", 5000)
            return
        path = self._open_path("Style reference")
        if path:
            self.apply_style(path)

    def apply_style(self, path: str, strength: float = 1.0) -> None:
        """Read the reference on the import thread, then ask the worker to restyle the chosen result with it."""
        if self.frame is None:
            return
        self._import_ticket += 1
        ticket, generation, chosen = self._import_ticket, self.frame.generation, self.chosen
        picture = np.ascontiguousarray(self.frame.images[chosen])
        name = Path(path).name
        self.importing.setVisible(True)
        self.statusBar().showMessage(f"Taking the style of {name}…")
        self._styling = (ticket, generation, chosen, name)
        self._style_picture = picture
        self._read_in_background(self.services.load_picture, path, self.model_side,
                                 lambda result: self._style_loaded.emit(ticket, name, result))

    def _style_reference_read(self, ticket: int, name: str, result: Any) -> None:
        if self._styling is None or self._styling[0] != ticket:
            return
        if isinstance(result, UserError):
            self._styling = None
            self.importing.setVisible(False)
            self.statusBar().clearMessage()
            QMessageBox.warning(self, "Style reference", str(result))
            self.style_finished.emit(False)
            return
        self.style_requested.emit(ticket, self._style_picture, result, 1.0)

    def picture_styled(self, ticket: int, picture: np.ndarray, step: int, steps: int) -> None:
        """A step of the restyled result: shown as it forms; the last one replaces the candidate."""
        if self._styling is None or self._styling[0] != ticket or self.frame is None:
            return
        _, generation, chosen, name = self._styling
        if self.frame.generation != generation:
            self._styling = None  # the drawing changed meanwhile: its new result stands
            self.importing.setVisible(False)
            self.statusBar().showMessage("The style reference stopped: the drawing changed", 5000)
            self.style_finished.emit(False)
            return
        images = self.frame.images.copy()
        images[chosen] = picture
        settings = {**self.frame.settings, "style_reference": name} if step == steps else self.frame.settings
        self.frame = replace(self.frame, images=images, settings=settings)
        self.chosen = chosen
        self._show_candidates(self.frame)
        self._show_result(chosen)
        self.progress_label.setText(f"style of {name}: step {step}/{steps}")
        if step == steps:
            self._styling = None
            self.importing.setVisible(False)
            self.statusBar().showMessage(f"The result has the style of {name}", 5000)
            self.style_finished.emit(True)

    def style_failed(self, ticket: int, message: str) -> None:
        if self._styling is None or self._styling[0] != ticket:
            return
        self._styling = None
        self.importing.setVisible(False)
        if message:
            self.statusBar().clearMessage()
            QMessageBox.warning(self, "Style reference", message)
        else:
            self.statusBar().showMessage("The style reference stopped: the drawing changed", 5000)
        self.style_finished.emit(False)

    def picture_sketch_failed(self, ticket: int, message: str) -> None:
        if self._sketching is None or self._sketching[0] != ticket:
            return
        self._sketching = None
        self.importing.setVisible(False)
        self.statusBar().clearMessage()
        QMessageBox.warning(self, "Sketch from a picture", message)
        self.import_finished.emit(False)

    def recent_files(self) -> list[str]:
        value = self.settings.value("recent", [])
        items = [value] if isinstance(value, str) else list(value or [])
        return [item for item in items if Path(item).is_file()]

    def _remember(self, path: str) -> None:
        absolute = str(Path(path).resolve())
        recent = [absolute] + [item for item in self.recent_files() if item != absolute]
        self.settings.setValue("recent", recent[:RECENT_LIMIT])

    def _fill_recent(self) -> None:
        self.recent_menu.clear()
        for path in self.recent_files():
            action = self.recent_menu.addAction(shown(Path(path).name))
            action.setToolTip(path)
            action.triggered.connect(lambda _checked=False, p=path: self.open_path(p))
        if self.recent_menu.isEmpty():
            self.recent_menu.addAction("No recent files").setEnabled(False)

    def _open_path(self, title: str) -> str:
        start = str(self.settings.value("last_folder", str(Path.home())))
        path, _ = QFileDialog.getOpenFileName(self, title, start, IMPORT_FILTER)
        if path:
            self.settings.setValue("last_folder", str(Path(path).parent))
        return path

    def import_dialog(self) -> None:
        """Import a sketch; with a preset that can sketch pictures, offer that for the file first."""
        path = self._open_path("Import sketch")
        if not path:
            return
        use = self.ask_import_use(Path(path).name) if self.capabilities.sketch_of else "drawing"
        if use is not None:
            self.import_sketch(path, use == "picture")

    def ask_import_use(self, name: str) -> str | None:
        """With a preset that can sketch pictures: "picture" (make a sketch of it), "drawing" (use it as it is) or None."""
        box = QMessageBox(QMessageBox.Icon.Question, "Import", f"How should {name} be used?", parent=self)
        box.setInformativeText(f"{self.preset_name} can draw a sketch of a photo or picture for you to draw on.")
        make = box.addButton("Make a sketch from this picture", QMessageBox.ButtonRole.AcceptRole)
        keep = box.addButton("Use it as my drawing", QMessageBox.ButtonRole.ActionRole)
        box.addButton(QMessageBox.StandardButton.Cancel)
        box.exec()
        return {id(make): "picture", id(keep): "drawing"}.get(id(box.clickedButton()))

    def sketch_of_dialog(self) -> None:
        path = self._open_path("Sketch from a picture")
        if path:
            self.import_sketch(path, as_picture=True)

    def dragEnterEvent(self, event: QDragEnterEvent) -> None:  # noqa: N802
        if event.mimeData().hasUrls():
            event.acceptProposedAction()

    def dropEvent(self, event: QDropEvent) -> None:  # noqa: N802
        for url in event.mimeData().urls():
            if url.isLocalFile():
                self.import_sketch(url.toLocalFile())
                break

    def _metadata(self, candidate: int) -> dict[str, str]:
        made_by = getattr(self.frame, "preset", "") or self.preset_name  # a frame from before a preset switch keeps its own
        text = {"preset": made_by, "candidate": str(candidate + 1), "software": "SketchApp"}
        made_with = getattr(self.frame, "preset_id", "") or self.current_preset_id()
        if made_with:
            text["preset_id"] = made_with
        settings = dict(getattr(self.frame, "settings", None) or {})
        if settings:
            settings["ink_lines"] = self.ink_action.isChecked() and getattr(self.frame, "lines", None) is not None
            text["seed"] = str(settings.get("seed"))
            text["settings"] = json.dumps(settings, sort_keys=True)
        self._embed_drawing(text)
        return text

    def _embed_drawing(self, text: dict[str, str]) -> None:
        """The drawing in a PNG's text, so opening the PNG brings it back (left out when too big)."""
        try:
            drawing = self.services.result_text({**self.document_content(), "underlay": None})  # the picture is the PNG itself
        except ValueError:
            return
        if len(drawing) <= RESULT_TEXT_LIMIT:
            text[RESULT_KEY] = drawing

    def export_result(self, path: str, scale: int = 1) -> bool:
        if self.frame is None:
            return False
        if path.lower().endswith(".ora"):
            return self.export_layers(path, scale)
        return self._save(path, self._picture(self.chosen, max(1, scale)), self._metadata(self.chosen))

    def export_layers(self, path: str, scale: int = 1) -> bool:
        """The drawing's layers as OpenRaster, for Krita, GIMP or MyPaint: your lines (black, their darkness as
        alpha), the colour hints, the chosen result (enlarged x``scale``) and the imported picture."""
        if self.frame is None:
            return False
        image = self.frame.images[self.chosen]
        side = image.shape[0] * max(1, scale)
        lines = np.zeros((side, side, 4), np.uint8)
        lines[..., 3] = 255 - self.document.to_array(side)
        layers = [("Lines", lines, True)]
        if self.result.has_hints():
            layers.append(("Colour hints", self.result.hints_array(side), False))
        large = self.services.enlarge(image, side) if side > image.shape[0] else image
        layers.append((f"Result ({self.preset_name})" if self.preset_name else "Result", large, True))
        for name, picture in (("Underlay", self.document.underlay), ("Imported picture", self.document.base)):
            if picture is not None:
                pixels = qimage_rgba(picture.scaled(side, side, Qt.AspectRatioMode.IgnoreAspectRatio,
                                                    Qt.TransformationMode.SmoothTransformation))
                layers.append((name, pixels, False))
        try:
            self.services.save_layers(path, layers)
        except UserError as exc:
            QMessageBox.warning(self, "Export", str(exc))
            return False
        self.statusBar().showMessage(f"Saved {shown(path)}", 5000)
        return True

    def export_all(self, path: str, scale: int = 1) -> bool:
        if self.frame is None:
            return False
        target = Path(path)
        items = [
            (str(target.with_name(f"{target.stem}-{index + 1}{target.suffix}")), self._picture(index, max(1, scale)), self._metadata(index))
            for index in range(len(self.frame.images))
        ]
        try:
            self.services.save_images(items)  # every candidate or none: a failure half way leaves no partial set
        except UserError as exc:
            QMessageBox.warning(self, "Export", str(exc))
            return False
        self.statusBar().showMessage(f"Saved {len(items)} pictures as {target.stem}-N{target.suffix}", 5000)
        return True

    def export_sheet(self, path: str) -> bool:
        if self.frame is None:
            return False
        result = self._picture(self.chosen, 4)
        side = result.shape[0]
        sketch = self.document.to_array(side)
        sheet = np.concatenate([np.repeat(sketch[..., None], 3, axis=2), np.full((side, 8, 3), 255, np.uint8), result], axis=1)
        return self._save(path, sheet, self._metadata(self.chosen))

    def _save(self, path: str, pixels: np.ndarray, text: dict[str, str]) -> bool:
        try:
            self.services.save_image(path, pixels, text)
        except UserError as exc:
            QMessageBox.warning(self, "Export", str(exc))
            return False
        self.statusBar().showMessage(f"Saved {shown(path)}", 5000)
        return True

    def export_suggestion(self) -> Path:
        """Where an export is offered: beside the drawing's document under its name, else in the folder of
        the last export as "drawing", in the preferences' format (unless the user types another)."""
        if self.document_path:
            start = Path(self.document_path)
        else:
            last = self.settings.value("last_export")
            start = (Path(str(last)).parent if last else Path.home()) / "drawing"
        return start.with_suffix("." + self.preferences.export_format)

    def _ask_path(self, title: str) -> str:
        path, _ = QFileDialog.getSaveFileName(self, title, str(self.export_suggestion()), EXPORT_FILTER)
        if path:
            self.settings.setValue("last_export", path)
        return path

    def _ask_scale(self) -> int | None:
        scales = [f"x{scale}" for scale in EXPORT_SCALES]
        choice, ok = QInputDialog.getItem(self, "Export", "Size:", scales, EXPORT_SCALES.index(self.preferences.export_scale), False)
        return int(choice[1:]) if ok else None

    def export_dialog(self) -> None:
        if self.frame is None:
            return
        path = self._ask_path("Export result")
        scale = self._ask_scale() if path else None
        if path and scale:
            self.export_result(path, scale)

    def export_all_dialog(self) -> None:
        if self.frame is None:
            return
        path = self._ask_path("Export all candidates")
        scale = self._ask_scale() if path else None
        if path and scale:
            self.export_all(path, scale)

    def export_sheet_dialog(self) -> None:
        if self.frame is not None:
            path = self._ask_path("Export sketch | result sheet")
            if path:
                self.export_sheet(path)

    def copy_result(self) -> None:
        if self.frame is not None:
            QGuiApplication.clipboard().setImage(array_to_qimage(self._picture(self.chosen, 4)))

    # -- documents --------------------------------------------------------------------------
    def current_preset_id(self) -> str:
        item = self.presets.currentItem()
        return str(item.data(Qt.ItemDataRole.UserRole)) if item is not None else ""

    def _pick_preset(self, preset_id: str) -> None:
        """The user chose a preset from the list: its own settings, not ones recalled for another."""
        self.overrides = {}
        self.preset_chosen.emit(preset_id)

    def _select_preset(self, preset_id: str) -> bool:
        """Switch to an installed preset by id (a document's); False when it is not installed."""
        for row in range(self.presets.count()):
            item = self.presets.item(row)
            if item.data(Qt.ItemDataRole.UserRole) == preset_id:
                if item is not self.presets.currentItem():
                    self.presets.setCurrentItem(item)
                    self.preset_chosen.emit(preset_id)
                return True
        return False

    def is_modified(self) -> bool:
        """Changed since it was last saved or opened (an empty new sheet is not)."""
        if self._revisions() == self.clean_revision:
            return False
        return self.document_path is not None or not self.document.is_empty() or self.result.has_hints()

    def _update_title(self) -> None:
        name = shown(Path(self.document_path).name) if self.document_path else "Untitled"
        self.setWindowTitle(f"{name}[*] — SketchApp")
        self.setWindowModified(self.is_modified())

    def _mark_clean(self, path: str | None) -> None:
        self.document_path = path
        self.clean_revision = self._revisions()
        self._update_title()

    def document_content(self) -> dict[str, Any]:
        """The drawing, its hints and what its result was made with, as plain values (Services.save_document)."""
        base = self.document.base
        settings = {k: v for k, v in (getattr(self.frame, "settings", None) or {}).items()
                    if isinstance(v, (str, int, float, bool, type(None)))}
        thumbnail = qimage_to_grey(self.document.raster().scaled(
            128, 128, Qt.AspectRatioMode.IgnoreAspectRatio, Qt.TransformationMode.SmoothTransformation))
        return {
            "side": float(self.document.side),
            "strokes": [(s.tool, s.size, list(s.points)) for s in self.document.strokes],
            "base": qimage_rgba(base)[..., :3].copy() if base is not None else None,
            "hints": qimage_rgba(self.result.hints) if self.result.has_hints() else None,
            "preset": self.current_preset_id(),
            "seed": self.seed,
            "seed_locked": self.seed_locked,
            "settings": {**settings, **self.overrides},
            "ink_lines": self.ink_action.isChecked(),
            "thumbnail": np.repeat(thumbnail[..., None], 3, axis=2),
            "underlay": qimage_rgba(self.document.underlay)[..., :3].copy() if self.document.underlay is not None else None,
            "underlay_opacity": float(self.document.underlay_opacity),
        }

    def save_document(self, path: str) -> bool:
        if Path(path).suffix.lower() != DOCUMENT_SUFFIX:
            path += DOCUMENT_SUFFIX
        try:
            self.services.save_document(path, self.document_content())
        except UserError as exc:
            QMessageBox.warning(self, "Save", str(exc))
            return False
        self._mark_clean(path)
        self._remember(path)
        self.statusBar().showMessage(f"Saved {shown(Path(path).name)}", 5000)
        return True

    def save(self) -> bool:
        return self.save_document(self.document_path) if self.document_path else self.save_as()

    def save_as(self) -> bool:
        start = self.document_path or str(Path(str(self.settings.value("last_folder", str(Path.home())))) / "drawing.sketchapp")
        path, _ = QFileDialog.getSaveFileName(self, "Save drawing", start, DOCUMENT_FILTER)
        if not path:
            return False
        self.settings.setValue("last_folder", str(Path(path).parent))
        return self.save_document(path)

    def ask_save_changes(self) -> QMessageBox.StandardButton:
        """Save, Discard or Cancel for a drawing with unsaved changes."""
        name = shown(Path(self.document_path).name) if self.document_path else "this drawing"
        return QMessageBox.question(
            self, "SketchApp", f"Save the changes to {name}?",
            QMessageBox.StandardButton.Save | QMessageBox.StandardButton.Discard | QMessageBox.StandardButton.Cancel,
            QMessageBox.StandardButton.Save,
        )

    def forget_changes(self) -> None:
        """Treat the drawing as saved (a throwaway one: a self-test's, a screenshot's), so closing does not ask."""
        self.clean_revision = self._revisions()
        self._update_title()

    def maybe_save(self) -> bool:
        """Before the drawing is replaced or the window closes: False when the user cancels."""
        if not self.is_modified():
            return True
        answer = self.ask_save_changes()
        if answer == QMessageBox.StandardButton.Save:
            return self.save()
        return answer == QMessageBox.StandardButton.Discard

    def new_document(self) -> None:
        if not self.maybe_save():
            return
        self.document.restore([], None)
        self.result.clear_hints(undoable=False)  # a new drawing starts a new history
        self.overrides, self._next_seed = {}, None  # a fresh drawing: the preset's own settings (the seed lock stays)
        self._mark_clean(None)

    def open_dialog(self) -> None:
        start = str(self.settings.value("last_folder", str(Path.home())))
        path, _ = QFileDialog.getOpenFileName(self, "Open", start, OPEN_FILTER)
        if path:
            self.settings.setValue("last_folder", str(Path(path).parent))
            self.open_path(path)

    def open_path(self, path: str) -> None:
        """A drawing (.sketchapp) opens as it was saved; a result PNG brings back its drawing, preset, seed
        and settings; any other picture is imported as a sketch. Read on the import thread."""
        document = Path(path).suffix.lower() == DOCUMENT_SUFFIX
        if document and not self.maybe_save():
            self.document_opened.emit(False)
            return
        self._open_ticket += 1
        ticket = self._open_ticket
        self.importing.setVisible(True)
        self.statusBar().showMessage(f"Opening {shown(Path(path).name)}…")
        read = self.services.read_document if document else self.services.read_result
        self._read_in_background(lambda p, _side: read(p), path, 0, lambda result: self._document_read.emit(ticket, path, result))

    def _document_arrived(self, ticket: int, path: str, result: Any) -> None:
        if ticket != self._open_ticket:
            return  # another file was opened meanwhile
        self.importing.setVisible(False)
        self.statusBar().clearMessage()
        if result is None:  # a picture SketchApp did not make: a sketch to import
            self.import_sketch(path)
            return
        if isinstance(result, UserError):
            QMessageBox.warning(self, "Open", str(result))
            self.document_opened.emit(False)
            return
        is_document = Path(path).suffix.lower() == DOCUMENT_SUFFIX
        if result.side > 0 and not is_document and not self.maybe_save():
            self.document_opened.emit(False)  # the user kept the drawing on the sheet
            return
        self._remember(path)
        told = self._apply_document(result)
        if is_document:
            self._mark_clean(path)
        elif result.side > 0:  # the result's drawing replaced the sheet: a new, untitled drawing
            self._mark_clean(None)
        self.statusBar().showMessage(f"Opened {shown(Path(path).name)}{told}", 8000)
        self.document_opened.emit(True)

    def _apply_document(self, content: Any) -> str:
        """Put a document's drawing, hints, preset, seed and settings in place; what to tell the user."""
        if content.side > 0:
            scale = self.document.side / content.side
            strokes = [Stroke(tool, size * scale, [(x * scale, y * scale, p) for x, y, p in points])
                       for tool, size, points in ((s.tool, s.size, s.points) for s in content.strokes)]
            base = None
            if content.base is not None:
                base = array_to_qimage(content.base).convertToFormat(QImage.Format.Format_RGB32).scaled(
                    self.document.side, self.document.side, Qt.AspectRatioMode.IgnoreAspectRatio,
                    Qt.TransformationMode.SmoothTransformation)
            self._restoring = True
            try:
                self.document.restore(strokes, base)
                underlay = getattr(content, "underlay", None)
                if underlay is not None:
                    self.document.restore_underlay(array_to_qimage(underlay), float(content.underlay_opacity))
                if content.hints is not None:
                    self.result.set_hints(array_to_qimage(content.hints))
                else:
                    self.result.clear_hints(undoable=False)
            finally:
                self._restoring = False
        self.overrides = recalled(content.settings)
        self.seed = content.seed
        self.seed_locked = bool(content.seed_locked)
        self.lock_seed_action.setChecked(self.seed_locked)
        self._update_seed()
        self._next_seed = content.seed  # the first run gives back the result it was saved with
        missing = ""
        switching = False
        if content.preset:
            switching = content.preset != self.current_preset_id()
            if not self._select_preset(content.preset):
                missing, switching = f"; its preset {content.preset!r} is not installed, so {self.preset_name} completes it", False
        if content.ink_lines is not None:
            if switching:
                self._pending_ink = content.ink_lines  # after the preset's own default arrives with its model
            else:
                self.ink_action.setChecked(content.ink_lines)
                self._set_ink(content.ink_lines)
        if not switching and not self.document.is_empty():
            self.request_completion()  # a new preset asks by itself once its model is loaded
        seed = f" (seed {content.seed})" if content.seed is not None else ""
        return seed + missing

    def paste(self) -> None:
        """A picture on the clipboard becomes the sketch (cleaned like an import); a copied file is opened."""
        mime = QGuiApplication.clipboard().mimeData()
        if mime is not None and mime.hasUrls():
            local = [url.toLocalFile() for url in mime.urls() if url.isLocalFile()]
            if local:
                self.open_path(local[0])
                return
        image = QGuiApplication.clipboard().image()
        if image.isNull():
            self.statusBar().showMessage("The clipboard holds no picture to paste", 5000)
            return
        if image.width() * image.height() > PASTE_PIXELS:
            QMessageBox.warning(self, "Paste", f"The clipboard's picture is {image.width()}x{image.height()} pixels, "
                                f"more than the {PASTE_PIXELS // 1_000_000} megapixels SketchApp takes")
            return
        self._import_ticket += 1
        ticket, side = self._import_ticket, self.document.side

        def prepare(_path: str, size: int) -> np.ndarray:  # on the import thread: a big picture is reduced there
            reduced = image.scaled(2 * size, 2 * size, Qt.AspectRatioMode.KeepAspectRatio, Qt.TransformationMode.SmoothTransformation) \
                if max(image.width(), image.height()) > 2 * size else image
            return self.services.prepare_sketch(qimage_rgba(reduced.convertToFormat(QImage.Format.Format_RGB32))[..., :3].copy(), size)

        self.importing.setVisible(True)
        self.statusBar().showMessage("Pasting…")
        self._read_in_background(prepare, "clipboard", side, lambda result: self._import_done.emit(ticket, "", (result, False)))

    def export_sketch(self, path: str, scale: int = 1) -> bool:
        """The drawing alone, redrawn from its strokes at the sheet's size x ``scale`` (its PNG opens as the drawing)."""
        side = self.document.side * max(1, min(8, scale))
        grey = self.document.to_array(side)
        text = {"software": "SketchApp", "content": "sketch"}
        self._embed_drawing(text)
        return self._save(path, np.repeat(grey[..., None], 3, axis=2), text)

    def export_sketch_dialog(self) -> None:
        if self.document.is_empty():
            self.statusBar().showMessage("Nothing drawn yet to export", 5000)
            return
        path = self._ask_path("Export sketch")
        scale = self._ask_scale() if path else None
        if path and scale:
            self.export_sketch(path, scale)

    # -- seed and history -----------------------------------------------------------------------
    def lock_seed(self, locked: bool) -> None:
        """While locked every run uses the same seed: the result changes only where the drawing does."""
        self.seed_locked = bool(locked)
        if self.seed_locked and self.seed is None:
            self.seed = secrets.randbelow(SEED_RANGE)
        self.lock_seed_action.setChecked(self.seed_locked)
        self._update_seed()

    def new_seed(self) -> None:
        """Another seed (kept when locked) and a run with it."""
        self.seed = secrets.randbelow(SEED_RANGE)
        self._next_seed = self.seed
        self._update_seed()
        self.request_completion()

    def _update_seed(self) -> None:
        if not hasattr(self, "seed_button"):
            return
        text = f"seed {self.seed}" if self.seed is not None else "seed: new each run"
        self.seed_button.setText(text + (" (locked)" if self.seed_locked else ""))
        self.seed_button.setIcon(qta.icon("fa5s.lock" if self.seed_locked else "fa5s.lock-open"))
        self.seed_button.setChecked(self.seed_locked)
        self.seed_button.setToolTip("Locked: every run uses this seed (Ctrl+L unlocks; N picks a new one)" if self.seed_locked
                                    else "A new seed each run; click or Ctrl+L to keep this one")

    def _remember_result(self, frame: Any) -> None:
        """A result of the drawing at rest: into the history, with the drawing and what made it."""
        hints = self.result.hints.copy() if self.result.has_hints() else None
        entry = HistoryEntry(frame, self.chosen, list(self.document.strokes), self.document.base, hints,
                             self.current_preset_id(), self.preset_name, self.ink_action.isChecked())
        # a re-run of the newest entry's drawing, hints and preset (the preset clicked again, settings reloaded)
        # takes its place; a seed the user locked or asked for anew is a picture worth keeping beside it
        newest = self.history.entries[0] if self.history.entries else None
        chosen_seed = frame.generation == self._seed_chosen_generation
        rerun = newest is not None and newest.same_drawing(entry) and (not chosen_seed or newest.seed == entry.seed)
        self.history.add(entry, array_to_qimage(self._picture(self.chosen, 1)), replace=rerun)

    def restore_history(self, index: int) -> None:
        """Bring back history entry ``index``: its drawing (one undo step), hints, preset, result on show,
        and its seed, locked, so drawing on from it keeps that result's character."""
        if not 0 <= index < len(self.history.entries):
            return
        entry = self.history.entries[index]
        self.stop()
        self._restoring = True
        try:
            if list(self.document.strokes) != entry.strokes or self.document.base is not entry.base:
                self.document.replace(entry.strokes, entry.base, "Back to an earlier result")
            if entry.hints is not None:
                self.result.set_hints(entry.hints)
            else:
                self.result.clear_hints()
        finally:
            self._restoring = False
        self.seed = entry.seed
        self.lock_seed(entry.seed is not None)
        self.overrides = recalled(entry.frame.settings or {})
        if entry.preset_id and entry.preset_id != self.current_preset_id() and self._select_preset(entry.preset_id):
            self._pending_ink = entry.ink  # the preset reloads and completes the drawing again, same seed
        else:
            self.ink_action.setChecked(entry.ink)
            self.frame = entry.frame
            self.chosen = entry.chosen
            self._show_candidates(entry.frame)
            self._show_result(self.chosen)
        self.statusBar().showMessage(f"Back to the result of {entry.describe()}", 6000)

    # -- session safety -----------------------------------------------------------------------
    def _revisions(self) -> tuple[int, int]:
        return self.document.revision, self.result.revision

    def save_session(self) -> None:
        """Autosave: copy the sketch and hints here, write them (with an fsync) on a background thread."""
        folder = self.slot.folder
        if folder is None or self._revisions() == self.saved_revision or (self._autosave_job and not self._autosave_job.done()):
            return
        saved = session.snapshot(self.document, self.result.hints if self.result.has_hints() else None)
        self.saved_revision = self._revisions()
        self._autosave_job = self._autosave_pool.submit(session.write, folder, *saved)
        self._autosave_job.add_done_callback(self._autosave_done)

    def _autosave_done(self, job: Future) -> None:
        if job.exception() is not None:
            self.saved_revision = (-1, -1)  # try again at the next tick
            self.autosave_failed.emit(str(job.exception()))

    def flush_autosave(self) -> None:
        """Wait for an autosave being written (before removing it, and in tests)."""
        if self._autosave_job is not None:
            self._autosave_job.exception()

    def offer_recovery(self) -> bool:
        """After a crash the autosave of the app that crashed is still there: offer it back.

        Only autosaves no running SketchApp holds are offered (one per start, the newest);
        a second window open beside the first says so and keeps its own.
        """
        if self.slot.folder is None:
            self.statusBar().showMessage("Autosave is off: the state folder cannot be written", 15000)
        elif self.slot.shared:
            self.statusBar().showMessage("Another SketchApp window is open: this one autosaves separately", 8000)
        left = session.orphans(self.slot)
        if not left:
            return False
        newest = max(left, key=lambda folder: (folder / session.AUTOSAVE).stat().st_mtime)
        answer = QMessageBox.question(
            self, "Recover sketch", "SketchApp did not close properly last time. Recover the sketch you were drawing?"
        )
        if answer != QMessageBox.StandardButton.Yes:
            session.discard_session(newest)
            return False
        recovered = session.load_session(newest, self.document)
        if isinstance(recovered, QImage):
            self.result.set_hints(recovered)
        if recovered is not False and newest != self.slot.folder:
            self.save_session()  # kept in this window's own folder before the other one goes
            self.flush_autosave()
            session.discard_session(newest)
        self.saved_revision = self._revisions()
        return recovered is not False

    # -- shutdown ---------------------------------------------------------------------------
    def closeEvent(self, event: QCloseEvent) -> None:  # noqa: N802
        for dialog in self.findChildren(QDialog):  # the training wizard may ask first
            if dialog.isVisible():
                dialog.close()
                if dialog.isVisible():
                    event.ignore()
                    return
        if not self.maybe_save():
            event.ignore()
            return
        self.idle.stop()
        self.autosave.stop()
        self.sharpen_timer.stop()
        self.flush_autosave()
        self._autosave_pool.shutdown(wait=True)
        self._import_ticket += 1  # an import still running is dropped when it ends
        self._import_pool.shutdown(wait=False, cancel_futures=True)
        self._enlarge_pool.shutdown(wait=False, cancel_futures=True)
        if self.slot.folder is not None:
            session.discard_session(self.slot.folder)
        self.slot.release()
        self.settings.setValue("geometry", self.saveGeometry())
        self.completion_cancelled.emit()
        super().closeEvent(event)

