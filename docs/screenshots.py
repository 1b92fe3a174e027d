"""Render the README's screenshots from the real app: python3 docs/screenshots.py

Draws a smiley with the pen (as strokes, like a user would), lets the default preset
complete it on the CPU, asks for a second result with a new seed and locks that seed (so the
History strip holds both), and saves the main window in the light and the dark scheme;
then paints a colour hint on the face and saves the recoloured result, fills the face with
the fill tool and saves that (the palette under the result), puts the result under the
drawing as its underlay and saves that, turns on colour
variations and saves the four candidates, and the preferences, shortcuts, user guide and
About dialogs (light scheme).
"""

from __future__ import annotations

import math
import os
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from PySide6.QtCore import QEventLoop, QPointF, QSettings, Qt, QTimer  # noqa: E402
from PySide6.QtGui import QColor  # noqa: E402
from PySide6.QtWidgets import QApplication  # noqa: E402

from sketchapp.app import App, CoreServices  # noqa: E402
from sketchapp.ui.help import AboutDialog, GuideDialog, ShortcutsDialog  # noqa: E402
from sketchapp.ui.main_window import MainWindow  # noqa: E402
from sketchapp.ui.preferences import PreferencesDialog  # noqa: E402
from sketchapp.ui.sketch import PEN, Stroke  # noqa: E402

DOCS = Path(__file__).resolve().parent


def smiley(window: MainWindow) -> None:
    def arc(cx: float, cy: float, r: float, a0: float, a1: float, size: float, n: int = 48) -> Stroke:
        stroke = Stroke(PEN, size)
        for i in range(n + 1):
            a = a0 + (a1 - a0) * i / n
            stroke.add(cx + r * math.cos(a), cy + r * math.sin(a), 0.55 + 0.35 * math.sin(3 * a))
        return stroke

    side = window.document.side
    c = side / 2
    for stroke in (
        arc(c, c, side * 0.36, 0, 2 * math.pi, 10, 96),
        arc(c - side * 0.13, c - side * 0.08, side * 0.035, 0, 2 * math.pi, 9),
        arc(c + side * 0.13, c - side * 0.08, side * 0.035, 0, 2 * math.pi, 9),
        arc(c, c + side * 0.02, side * 0.2, 0.2 * math.pi, 0.8 * math.pi, 10),
    ):
        window.document.add_stroke(stroke)


def wait_until(done: Callable[[], bool], seconds: float = 120) -> None:
    """Run the event loop (idle, not spinning: the worker thread needs the CPU) until done()."""
    loop = QEventLoop()
    deadline = time.monotonic() + seconds
    timer = QTimer()
    timer.timeout.connect(lambda: loop.quit() if done() or time.monotonic() > deadline else None)
    timer.start(20)
    loop.exec()
    timer.stop()


def hint(window: MainWindow, colour: QColor) -> None:
    """A dab of ``colour`` inside the face, left of the mouth, as the hint brush paints it."""
    view = window.result
    sheet = view.sheet()
    window.hint_action.trigger()
    view.hint_colour = colour
    for dx in range(0, 30, 3):
        view._paint_hint(QPointF(sheet.left() + sheet.width() * 0.3 + dx, sheet.top() + sheet.height() * 0.62))
    view._last = None  # the button is up: the stroke of hint is done
    view.hints_changed.emit()


def dialogs(window: MainWindow) -> None:
    """The preferences, shortcuts, guide and About dialogs, and the question before unsaved changes go."""
    shots = {
        "dialog-preferences.png": PreferencesDialog(window.preferences, window),
        "dialog-shortcuts.png": ShortcutsDialog(window.menu_actions(), window),
        "dialog-guide.png": GuideDialog(window),
        "dialog-about.png": AboutDialog(window),
    }
    for name, dialog in shots.items():
        dialog.show()
        wait_until(lambda: True)
        dialog.grab().save(str(DOCS / name))
        print(f"wrote {DOCS / name}")
        dialog.close()


def shoot(app: QApplication, scheme: Qt.ColorScheme, path: Path, hinted: Path | None = None) -> None:
    folder = Path(tempfile.mkdtemp())
    os.environ["SKETCHAPP_DATA_DIR"] = str(folder / "data")  # the bundled presets only, not this machine's own
    settings = QSettings(str(folder / "s.ini"), QSettings.Format.IniFormat)
    settings.setValue("preferences/theme", "dark" if scheme == Qt.ColorScheme.Dark else "light")  # the theme preference
    window = MainWindow(CoreServices(), settings, folder)
    window.resize(1280, 720)
    window.show()
    runner = App(window)
    wait_until(lambda: "Preset" in window.preset_label.text())
    smiley(window)
    window.request_completion()
    settled = lambda: window.frame is not None and window.frame.generation == window.generation and window.frame.final  # noqa: E731
    wait_until(settled)
    window.new_seed()  # a second result in the history, then that seed locked (as in the status bar)
    wait_until(settled)
    window.lock_seed_action.trigger()
    if window.ghost_action.isVisible():
        window.ghost_action.trigger()
    wait_until(lambda: True)
    window.grab().save(str(path))
    print(f"wrote {path}")
    if hinted is not None:
        before = window.generation
        hint(window, QColor(40, 110, 230))
        wait_until(lambda: window.generation > before and settled())
        wait_until(lambda: True)
        window.grab().save(str(hinted))
        print(f"wrote {hinted}")
        window.result.clear_hints()
        before = window.generation
        window.fill_action.trigger()  # the fill tool: the whole face in one click, the palette beneath
        window.set_hint_colour(QColor(250, 190, 30))
        side = window.result.HINT_SIDE
        window._fill_hint(side // 2, int(side * 0.3))
        wait_until(lambda: window.generation > before and settled())
        wait_until(lambda: True)
        window.grab().save(str(DOCS / "screenshot-fill.png"))
        print(f"wrote {DOCS / 'screenshot-fill.png'}")
        window.underlay_action.trigger()  # the result under the drawing, to keep drawing over it
        wait_until(lambda: True)
        window.grab().save(str(DOCS / "screenshot-underlay.png"))
        print(f"wrote {DOCS / 'screenshot-underlay.png'}")
        window.clear_underlay_action.trigger()
        window.result.clear_hints()
        window.hint_brush_action.trigger()
        window.variations_action.trigger()  # colour variations: four candidates of the drawing at rest
        wait_until(lambda: len(window.frame.images) == 4 and settled())
        wait_until(lambda: True)
        window.grab().save(str(DOCS / "screenshot-variations.png"))
        print(f"wrote {DOCS / 'screenshot-variations.png'}")
        dialogs(window)
    window.forget_changes()
    window.close()
    runner.stop()


def main() -> int:
    app = QApplication(sys.argv[:1])
    app.setStyle("Fusion")
    shoot(app, Qt.ColorScheme.Light, DOCS / "screenshot-light.png", DOCS / "screenshot-hints.png")
    shoot(app, Qt.ColorScheme.Dark, DOCS / "screenshot-dark.png")
    return 0


if __name__ == "__main__":
    sys.exit(main())
