"""``sketchapp --self-test OUTDIR``: the real window draws a face, completes it and saves both.

For packagers and the bundle's smoke test: it proves that a build shows the window,
finds the shipped presets and models, loads the default preset's model and completes a
drawing, with no source tree. It writes OUTDIR/window.png (the window),
OUTDIR/result.png (the result, exported as Ctrl+E would) and OUTDIR/wizard.png (the
training wizard, opened afterwards: its loss plot is pyqtgraph's) and prints where the
``sketchapp`` package and its models were found and the seconds from the process's start
(Linux; elsewhere from the self-test's own start) to the window shown, its first paint,
the model loaded and the first final completion. Exit 0, or 1 with one line saying why.

It runs with a temporary settings file, state folder and data folder (``SKETCHAPP_DATA_DIR``),
so the user's settings, autosave and presets are never read or touched, and a dialog the
window would show (a model that fails to load, an export that fails) is a failure, not a
wait for a click.
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
from PySide6.QtCore import QSettings, QTimer
from PySide6.QtWidgets import QApplication, QMessageBox

import sketchapp
from sketchapp import paths
from sketchapp.app import App, CoreServices, FirstPaint, start_after_first_paint
from sketchapp.contracts import LoadedModel
from sketchapp.display import display_problem
from sketchapp.identity import apply_identity
from sketchapp.ui.main_window import MainWindow
from sketchapp.ui.sketch import PEN, Stroke
from sketchapp.ui.theme import follow_system

TIMEOUT_SECONDS = 120.0
POLL_MS = 25
WIZARD_MS = 300  # the training wizard's time to lay itself out before it is grabbed
BLANK_STD = 2.0  # a result whose pixels vary less than this (0-255) is blank
EXIT_OK, EXIT_FAILED = 0, 1


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(
        prog="sketchapp --self-test",
        description="Start the window, draw a face, wait for its completion, save OUTDIR/window.png and "
        "OUTDIR/result.png, open the training wizard and save OUTDIR/wizard.png.",
    )
    parser.add_argument("outdir", metavar="OUTDIR", help="folder for window.png, result.png and wizard.png (made if missing)")
    parser.add_argument("--timeout", type=float, default=TIMEOUT_SECONDS, metavar="S",
                        help=f"seconds to wait for the completion (default {TIMEOUT_SECONDS:.0f})")
    args = parser.parse_args(argv)
    started = time.monotonic() - process_age()
    out = Path(args.outdir)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        return _failed(f"cannot make {out} ({exc.strerror or exc})")
    problem = display_problem()
    if problem is not None:
        return _failed(problem)
    with tempfile.TemporaryDirectory(prefix="sketchapp-self-test-") as scratch:
        os.environ["SKETCHAPP_DATA_DIR"] = str(Path(scratch) / "data")  # no user presets, models or state
        return SelfTest(out, Path(scratch), args.timeout, started).run()


def process_age() -> float:
    """Seconds since this process started, from /proc (Linux); 0 where that cannot be read."""
    try:
        fields = Path("/proc/self/stat").read_text().rsplit(")", 1)[1].split()
        started = int(fields[19]) / os.sysconf("SC_CLK_TCK")  # field 22, starttime, in clock ticks since boot
        uptime = float(Path("/proc/uptime").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 0.0
    return max(0.0, uptime - started)


def face_strokes(side: int) -> list[Stroke]:
    """A round face with two eyes and a smile, as pen strokes on a sheet of ``side`` units."""

    def arc(cx: float, cy: float, rx: float, ry: float, start: float, end: float, steps: int) -> Stroke:
        stroke = Stroke(PEN, side / 64)
        for step in range(steps + 1):
            angle = start + (end - start) * step / steps
            stroke.add(cx + rx * math.cos(angle), cy + ry * math.sin(angle), 0.8)
        return stroke

    middle, radius = side / 2, side * 0.33
    return [
        arc(middle, middle, radius, radius, 0.0, 2 * math.pi, 120),
        arc(middle - radius * 0.38, middle - radius * 0.25, radius * 0.1, radius * 0.14, 0.0, 2 * math.pi, 24),
        arc(middle + radius * 0.38, middle - radius * 0.25, radius * 0.1, radius * 0.14, 0.0, 2 * math.pi, 24),
        arc(middle, middle + radius * 0.1, radius * 0.55, radius * 0.45, 0.15 * math.pi, 0.85 * math.pi, 40),
    ]


class SelfTest:
    """One run: the window of ``sketchapp.app.run`` with temporary settings, a drawing and a deadline."""

    def __init__(self, out: Path, scratch: Path, timeout: float, started: float) -> None:
        self.out = out
        self.scratch = scratch
        self.timeout = timeout
        self.started = started
        self.times: dict[str, float] = {}
        self.reason: str | None = None
        self.app: App | None = None
        self.window: MainWindow | None = None
        self.poll = QTimer()  # looks for the final frame until the pictures are being saved
        self.poll.setInterval(POLL_MS)

    def elapsed(self) -> float:
        return time.monotonic() - self.started

    def run(self) -> int:
        frozen = "yes" if getattr(sys, "frozen", False) else "no"
        _say(f"sketchapp {sketchapp.__version__} from {sketchapp.__file__} (frozen: {frozen})")
        _say(f"bundled models in {paths.bundled_models_dir()}")
        qt = QApplication.instance() or QApplication(sys.argv[:1])
        apply_identity(qt)
        follow_system(qt)
        # A dialog would wait for a click that never comes: a warning is the failure, a question is "No".
        QMessageBox.warning = QMessageBox.critical = self._dialog  # type: ignore[method-assign]
        QMessageBox.question = lambda *args, **kwargs: QMessageBox.StandardButton.No  # type: ignore[method-assign]
        settings = QSettings(str(self.scratch / "settings.ini"), QSettings.Format.IniFormat)
        window = MainWindow(CoreServices(), settings, self.scratch / "state")
        self.window = window
        painted = FirstPaint(lambda: self.times.setdefault("window painted", self.elapsed()))
        window.canvas.installEventFilter(painted)
        window.show()
        self.times["window shown"] = self.elapsed()

        def start() -> None:
            window.offer_recovery()
            self.app = App(window)
            worker = self.app.completion.worker
            worker.model_loaded.connect(self._loaded)
            worker.load_failed.connect(lambda message: self.fail(f"the model did not load: {message}"))
            worker.failed.connect(lambda _generation, message: self.fail(f"the completion failed: {message}"))
            preset = next((p for p in self.app.presets if p.id == settings.value("preset")), None)
            if preset is not None:
                _say(f"preset {preset.id}: {preset.model}")
            for stroke in face_strokes(window.document.side):
                window.document.add_stroke(stroke)

        self.poll.timeout.connect(self._poll)
        self.poll.start()
        QTimer.singleShot(max(0, int((self.timeout - self.elapsed()) * 1000)), self._timed_out)
        waiting = start_after_first_paint(window.canvas, start)  # as sketchapp.app.run does
        qt.exec()
        del waiting
        self.poll.stop()
        if window.isVisible():
            window.forget_changes()  # the test's drawing is throwaway: closing must not ask to save it
            window.close()
        if self.app is not None:
            self.app.stop()
        window.canvas.removeEventFilter(painted)
        if self.reason is not None:
            return _failed(self.reason)
        for name in ("window shown", "window painted", "model loaded", "first completion", "training wizard shown"):
            when = self.times.get(name)
            _say(f"{name} after {when:.2f} s" if when is not None else f"{name}: not seen")
        _say(f"wrote {', '.join(str(self.out / name) for name in ('window.png', 'result.png', 'wizard.png'))}")
        return EXIT_OK

    def _dialog(self, _parent: Any, title: str, text: str, *args: Any, **kwargs: Any) -> Any:
        self.fail(f"the window said: {title}: {' '.join(str(text).split())}")
        return QMessageBox.StandardButton.Ok

    def _loaded(self, info: LoadedModel) -> None:
        self.times.setdefault("model loaded", self.elapsed())
        _say(f"model {info.name} ({info.engine}, {info.size} px) on {info.device}")

    def _poll(self) -> None:
        window = self.window
        frame = window.frame if window is not None else None
        if self.reason is not None or window is None or frame is None or not frame.final:
            return
        self.times.setdefault("first completion", self.elapsed())
        if frame.generation != window.generation or window.idle.isActive() or window.pen_timer.isActive():
            return  # a newer request is on its way: wait for its final frame
        self._finish()

    def _finish(self) -> None:
        window, app = self.window, self.app
        assert window is not None and app is not None  # a final frame comes only after both are made
        self.poll.stop()
        picture = np.asarray(window.frame.images[window.chosen])  # the model's own picture, before any inked lines
        if float(picture.std()) < BLANK_STD:
            self.fail(f"the result is blank (pixel spread {float(picture.std()):.2f})")
            return
        if not window.grab().save(str(self.out / "window.png")):
            self.fail(f"could not write {self.out / 'window.png'}")
            return
        if not window.export_result(str(self.out / "result.png")):
            self.fail(f"could not write {self.out / 'result.png'}")
            return
        app.open_training()  # the training wizard: its loss plot is pyqtgraph's
        wizard = app.wizard
        if wizard is None or not wizard.isVisible():
            self.fail("the training wizard did not open")
            return
        QTimer.singleShot(WIZARD_MS, lambda: self._wizard_shown(wizard))

    def _wizard_shown(self, wizard: Any) -> None:
        self.times.setdefault("training wizard shown", self.elapsed())
        if not wizard.grab().save(str(self.out / "wizard.png")):
            self.fail(f"could not write {self.out / 'wizard.png'}")
            return
        wizard.close()
        if self.window is not None:
            self.window.forget_changes()
            self.window.close()
        self._quit(EXIT_OK)

    def _timed_out(self) -> None:
        loaded = "yes" if "model loaded" in self.times else "no"
        painted = "yes" if "window painted" in self.times else "no"
        self.fail(f"no final completion within {self.timeout:.0f} s (window painted: {painted}, model loaded: {loaded})")

    def fail(self, reason: str) -> None:
        if self.reason is None:
            self.reason = reason
        self._quit(EXIT_FAILED)

    def _quit(self, code: int) -> None:
        app = QApplication.instance()
        if app is not None:
            app.exit(code)  # leaves every event loop, a dialog's included


def _say(line: str) -> None:
    print(f"self-test: {line}", flush=True)


def _failed(reason: str) -> int:
    print(f"sketchapp: self-test failed: {reason}", file=sys.stderr, flush=True)
    return EXIT_FAILED
