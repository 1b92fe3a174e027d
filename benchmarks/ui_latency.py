"""Pen latency while a completion runs: python3 benchmarks/ui_latency.py [--preset NAME]

Synthetic strokes are posted to the canvas as mouse events while the completion worker
optimises on the CPU in its thread. For every move the time from posting the event to
the end of the canvas repaint that shows it is recorded; p50, p99 and max are printed.
"""

from __future__ import annotations

import argparse
import math
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from PySide6.QtCore import QEvent, QPointF, QSettings, Qt  # noqa: E402
from PySide6.QtGui import QMouseEvent  # noqa: E402
from PySide6.QtWidgets import QApplication  # noqa: E402

from sketchapp.app import App, CoreServices  # noqa: E402
from sketchapp.ui.main_window import MainWindow  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--preset", default="emoji-colour")
    parser.add_argument("--strokes", type=int, default=40)
    parser.add_argument("--points", type=int, default=60, help="moves per stroke")
    args = parser.parse_args()

    app = QApplication(sys.argv[:1])
    folder = Path(tempfile.mkdtemp())
    settings = QSettings(str(folder / "s.ini"), QSettings.Format.IniFormat)
    settings.setValue("preset", args.preset)
    window = MainWindow(CoreServices(), settings, folder)
    window.resize(1280, 720)
    window.show()
    runner = App(window)
    deadline = time.monotonic() + 120
    while "Preset" not in window.preset_label.text() and time.monotonic() < deadline:
        app.processEvents()
    canvas = window.canvas
    painted = [0]
    original = canvas.paintEvent

    def counting_paint(event):  # noqa: ANN001
        original(event)
        painted[0] += 1

    canvas.paintEvent = counting_paint  # type: ignore[method-assign]

    def post(kind: QEvent.Type, x: float, y: float, buttons: Qt.MouseButton) -> None:
        point = QPointF(x, y)
        event = QMouseEvent(kind, point, canvas.mapToGlobal(point), Qt.MouseButton.LeftButton, buttons, Qt.KeyboardModifier.NoModifier)
        QApplication.postEvent(canvas, event)

    latencies: list[float] = []
    busy_moves = 0
    for stroke in range(args.strokes):
        window.request_completion()  # keep the worker busy: a fresh run before every stroke
        cy = 120 + (stroke % 10) * 40
        post(QEvent.Type.MouseButtonPress, 100, cy, Qt.MouseButton.LeftButton)
        app.processEvents()
        for i in range(args.points):
            x = 100 + i * 6
            y = cy + 15 * math.sin(i / 5)
            before = painted[0]
            began = time.perf_counter()
            post(QEvent.Type.MouseMove, x, y, Qt.MouseButton.LeftButton)
            while painted[0] == before:
                app.processEvents()
            latencies.append((time.perf_counter() - began) * 1000)
            busy_moves += window.busy.isVisible()
        post(QEvent.Type.MouseButtonRelease, x, y, Qt.MouseButton.NoButton)
        app.processEvents()
    window.close()
    runner.stop()
    latencies.sort()
    p = lambda q: latencies[min(len(latencies) - 1, int(q * len(latencies)))]  # noqa: E731
    print(f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, Qt platform {app.platformName()}")
    print(f"{len(latencies)} moves, completion running during {busy_moves} of them")
    print(f"input -> repaint latency: p50 {p(0.5):.2f} ms, p99 {p(0.99):.2f} ms, max {latencies[-1]:.2f} ms, mean {statistics.mean(latencies):.2f} ms")
    return 0


if __name__ == "__main__":
    sys.exit(main())
