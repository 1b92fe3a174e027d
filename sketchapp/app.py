"""The desktop app: wires the window (ui) to the completion worker (workers) and files (core).

The window is shown before torch is imported; the presets are read and the model is
loaded in the worker thread afterwards, so the first paint does not wait for them.
"""

from __future__ import annotations

import gc
import sys
import threading
from pathlib import Path
from typing import Any

import numpy as np
from PySide6.QtCore import QEvent, QObject, Qt, QTimer
from PySide6.QtWidgets import QApplication

from sketchapp.ui.main_window import MainWindow, PresetEntry, UserError
from sketchapp.ui.theme import follow_system

GIL_SWITCH_SECONDS = 0.0005


class CoreServices:
    """File reading and writing for the window, done by the core (PIL, OpenCV, resvg)."""

    def __init__(self) -> None:
        self._upscaler_lock = threading.Lock()  # the result pane's thread and an export may ask at once
        self._upscaler_model: Any = None  # None: not loaded yet; False: none installed

    def load_sketch(self, path: str, side: int) -> np.ndarray:
        from sketchapp.core.errors import SketchAppError
        from sketchapp.core.images import load_image

        try:
            picture = load_image(path, "RGB", max_side=2 * side)  # twice the sheet: enough for its lines
        except SketchAppError as exc:
            raise UserError(str(exc)) from exc
        return self.prepare_sketch(picture, side)

    def prepare_sketch(self, picture: np.ndarray, side: int) -> np.ndarray:
        """An RGB picture (a file's, the clipboard's) as a side x side grey line drawing: a drawing as it is,
        a photo of paper cleaned to its lines, a picture of a thing drawn as its outlines or edges."""
        from sketchapp.core.data.styles import line_drawing
        from sketchapp.core.prepare import fit_square

        if max(picture.shape[:2]) > 2 * side:
            import cv2

            scale = 2 * side / max(picture.shape[:2])
            size = (max(1, round(picture.shape[1] * scale)), max(1, round(picture.shape[0] * scale)))
            picture = cv2.resize(picture, size, interpolation=cv2.INTER_AREA)
        return fit_square(line_drawing(picture), side, 255)

    def save_document(self, path: str, content: dict[str, Any]) -> None:
        from sketchapp.core.document import save_document
        from sketchapp.core.errors import SketchAppError

        try:
            save_document(path, _sketch_file(content))
        except SketchAppError as exc:
            raise UserError(str(exc)) from exc

    def read_document(self, path: str) -> Any:
        """A SketchFile (sketchapp.core.document) of a ``.sketchapp`` document."""
        from sketchapp.core.document import read_document
        from sketchapp.core.errors import SketchAppError

        try:
            return read_document(path)
        except SketchAppError as exc:
            raise UserError(str(exc)) from exc

    def read_result(self, path: str) -> Any:
        """A SketchFile of what made a result PNG (side 0: no drawing in it), or None for other pictures."""
        from sketchapp.core.document import read_result
        from sketchapp.core.errors import SketchAppError

        try:
            return read_result(path)
        except SketchAppError as exc:
            raise UserError(str(exc)) from exc

    def result_text(self, content: dict[str, Any]) -> str:
        """The drawing as a result PNG's text chunk, so opening the result brings it back."""
        from sketchapp.core.document import result_text

        return result_text(_sketch_file(content))

    def load_picture(self, path: str, side: int) -> np.ndarray:
        from sketchapp.core.errors import SketchAppError
        from sketchapp.core.images import load_image

        try:
            return load_image(path, "RGB", max_side=2 * side)
        except SketchAppError as exc:
            raise UserError(str(exc)) from exc

    def save_image(self, path: str, pixels: np.ndarray, text: dict[str, str]) -> None:
        from sketchapp.core.errors import SketchAppError
        from sketchapp.core.images import save_image

        try:
            save_image(path, pixels, text)
        except SketchAppError as exc:
            raise UserError(str(exc)) from exc

    def save_images(self, items: list[tuple[str, np.ndarray, dict[str, str]]]) -> None:
        from sketchapp.core.errors import SketchAppError
        from sketchapp.core.images import save_images

        try:
            save_images(items)
        except SketchAppError as exc:
            raise UserError(str(exc)) from exc

    def save_layers(self, path: str, layers: list[tuple[str, np.ndarray, bool]]) -> None:
        """(name, RGB or RGBA pixels, visible) of each layer, top first, as an OpenRaster file."""
        from sketchapp.core.errors import SketchAppError
        from sketchapp.core.openraster import Layer, save_openraster

        try:
            save_openraster(path, [Layer(name, pixels, visible) for name, pixels, visible in layers])
        except SketchAppError as exc:
            raise UserError(str(exc)) from exc

    def enlarge(self, pixels: np.ndarray, side: int) -> np.ndarray:
        """``pixels`` at ``side`` px: the learned x4 upscaler past the picture's size (loaded once, on first use)."""
        from sketchapp.core.upscale import MAX_SIDE, enlarge

        return enlarge(pixels, max(1, min(MAX_SIDE, int(side))), self._upscaler())

    def _upscaler(self) -> Any:
        with self._upscaler_lock:
            if self._upscaler_model is None:
                from sketchapp.core.errors import CheckpointError
                from sketchapp.core.upscale import bundled_upscaler

                try:
                    self._upscaler_model = bundled_upscaler() or False
                except CheckpointError:  # a damaged install: pictures are enlarged plainly
                    self._upscaler_model = False
            return self._upscaler_model or None

    def area_colours(self, sketch: np.ndarray, picture: np.ndarray) -> list[tuple[int, int, int]]:
        from sketchapp.core.prepare import area_colours

        return area_colours(sketch, picture)

    def area_at(self, sketch: np.ndarray, x: int, y: int) -> np.ndarray | None:
        from sketchapp.core.prepare import area_at

        return area_at(sketch, x, y)

    def ink(self, pixels: np.ndarray, lines: np.ndarray, side: int) -> np.ndarray:
        from sketchapp.core.prepare import ink_over

        from sketchapp.core.upscale import MAX_SIDE

        return ink_over(pixels[None], lines, max(1, min(MAX_SIDE, int(side))))[0]


def _sketch_file(content: dict[str, Any]) -> Any:
    """The window's document content (plain values and arrays) as a core SketchFile."""
    from sketchapp.core.document import SketchFile, Stroke

    strokes = [Stroke(tool, float(size), [tuple(p) for p in points]) for tool, size, points in content["strokes"]]
    return SketchFile(**{**content, "strokes": strokes})


class App:
    def __init__(self, window: MainWindow) -> None:
        from sketchapp.core.presets import DEFAULT_PRESET, installed_presets, summarised
        from sketchapp.workers.completion import CompletionThread, Request

        self.window = window
        self.request_type = Request
        # The worker's Python between torch ops holds the GIL; hand it over every 0.5 ms
        # (Python's default is 5 ms) so input events and repaints never wait a frame.
        sys.setswitchinterval(GIL_SWITCH_SECONDS)
        self.presets, problems = installed_presets()
        for problem in summarised(problems):
            print(f"sketchapp: warning: {problem}", file=sys.stderr)
        preferences = window.preferences
        self.completion = CompletionThread(preferences.device, preferences.threads or None)
        worker = self.completion.worker
        worker.model_loaded.connect(window.model_ready)
        # torch and the model leave a million long-lived objects; a full garbage
        # collection walking them all stalled the pen for up to 200 ms. Freeze them.
        worker.model_loaded.connect(lambda _info: gc.freeze())
        worker.load_failed.connect(window.model_failed)
        worker.frame.connect(window.show_frame)
        worker.failed.connect(window.completion_failed)
        worker.sketched.connect(window.picture_sketched)
        worker.sketch_failed.connect(window.picture_sketch_failed)
        window.sketch_requested.connect(worker.sketch_picture, Qt.ConnectionType.DirectConnection)
        worker.styled.connect(window.picture_styled)
        worker.style_failed.connect(window.style_failed)
        window.style_requested.connect(worker.stylise, Qt.ConnectionType.DirectConnection)
        window.completion_requested.connect(self.complete)
        # cancel() only sets a flag under a lock: run it at once, not queued behind the running job
        window.completion_cancelled.connect(worker.cancel, Qt.ConnectionType.DirectConnection)
        window.preset_chosen.connect(self.choose)
        window.preferences_changed.connect(self.apply_preferences)
        window.training_requested.connect(self.open_training)
        self.training: Any = None
        self.wizard: Any = None
        current = str(window.settings.value("preset", DEFAULT_PRESET))
        if not any(p.id == current for p in self.presets) and self.presets:  # a preset removed since (3d-render, 2026-12)
            current = DEFAULT_PRESET if any(p.id == DEFAULT_PRESET for p in self.presets) else self.presets[0].id
        self.show_presets(current)
        if self.presets:
            self.choose(current)
        else:
            window.model_failed("No presets are installed.")

    def show_presets(self, current: str) -> None:
        from sketchapp.core.presets import thumbnail_pixels

        entries = [PresetEntry(p.id, p.name, p.description, thumbnail_pixels(p.thumbnail), p.source) for p in self.presets]
        self.window.set_presets(entries, current)

    def open_training(self) -> None:
        """Show the training wizard (one at a time); its worker thread starts with the first."""
        from sketchapp import paths
        from sketchapp.core.presets import DEFAULT_PRESET
        from sketchapp.ui.training_wizard import TrainingWizard
        from sketchapp.workers.training import TrainingThread

        if self.wizard is not None:
            self.wizard.show()
            self.wizard.raise_()
            self.wizard.activateWindow()
            return
        if self.training is None:
            self.training = TrainingThread(self.completion.worker.busy.is_set)
        current = str(self.window.settings.value("preset", DEFAULT_PRESET))
        wizard = TrainingWizard(self.training.worker, paths.user_data_dir() / "training", current, self.window)
        wizard.preset_created.connect(self.add_preset)
        wizard.destroyed.connect(self._wizard_gone)
        self.wizard = wizard
        wizard.show()

    def _wizard_gone(self) -> None:
        self.wizard = None

    def add_preset(self, preset_id: str) -> None:
        """A preset the wizard just made: list it and switch to it."""
        from sketchapp.core.presets import installed_presets

        self.presets, _problems = installed_presets()
        self.show_presets(preset_id)
        self.choose(preset_id)

    def choose(self, preset_id: str) -> None:
        preset = next((p for p in self.presets if p.id == preset_id), None)
        if preset is None:
            return
        self.window.settings.setValue("preset", preset.id)
        self.window.device_label.setText("loading model…")
        self.completion.worker.load(preset.model, preset.name, preset.settings)

    def apply_preferences(self, preferences: Any) -> None:
        """A new device or thread count: the preset's model loads again there."""
        from sketchapp.core.presets import DEFAULT_PRESET

        worker = self.completion.worker
        threads = preferences.threads or None
        if (worker.device_preference, worker.threads) != (preferences.device, threads):
            worker.device_preference, worker.threads = preferences.device, threads
            self.choose(str(self.window.settings.value("preset", DEFAULT_PRESET)))

    def complete(self, generation: int, sketch: np.ndarray, hints: Any, z: Any, settings: Any = None) -> None:
        self.completion.worker.request(self.request_type(generation, sketch, hints, z, dict(settings or {})))

    def stop(self) -> bool:
        stopped = self.completion.stop(1000)
        if self.training is not None:
            self.training.stop()  # a running training saves first, so the wizard can continue it later
        return stopped


class FirstPaint(QObject):
    """Calls ``seen`` at the first paint of the widget it filters (the window on screen, not just asked to show)."""

    def __init__(self, seen: Any) -> None:
        super().__init__()
        self.seen = seen

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:  # noqa: N802
        if event.type() == QEvent.Type.Paint and self.seen is not None:
            self.seen, seen = None, self.seen
            seen()
        return False


FALLBACK_START_MS = 1500  # a window that never paints (started minimised) still loads its model


def start_after_first_paint(widget: Any, start: Any) -> FirstPaint:
    """Run ``start`` (reading presets, which imports torch: seconds) once ``widget`` has painted, so the window
    is drawn first, or after ``FALLBACK_START_MS``. Keep the returned filter alive until then."""
    done = [False]

    def once() -> None:
        if not done[0]:
            done[0] = True
            widget.removeEventFilter(painted)
            start()

    painted = FirstPaint(lambda: QTimer.singleShot(0, once))
    widget.installEventFilter(painted)
    QTimer.singleShot(FALLBACK_START_MS, once)
    return painted


def run(argv: list[str], open_path: str | None = None) -> int:
    """The desktop app; ``open_path``: a drawing, result or sketch to open at once (``sketchapp FILE``)."""
    from sketchapp.identity import apply_identity

    app = QApplication.instance() or QApplication(argv)
    apply_identity(app)  # name, desktop file name and the icon every window and dialog takes
    follow_system(app)
    window = MainWindow(CoreServices())
    window.show()
    holder: dict[str, App] = {}

    def start() -> None:
        window.offer_recovery()
        holder["app"] = App(window)
        if open_path:
            window.open_path(str(Path(open_path).absolute()))

    waiting = start_after_first_paint(window.canvas, start)
    code = app.exec()
    del waiting
    if "app" in holder:
        holder["app"].stop()
    return int(code)
