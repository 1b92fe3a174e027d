"""Pen latency while a completion runs: python3 benchmarks/ui_latency.py [--preset NAME] [--rate HZ]

Synthetic strokes are posted to the canvas as mouse events while the completion worker
runs on the CPU in its thread. For every move the time from posting the event to the
end of the canvas repaint that shows it is recorded; p50, p99 and max are printed.

With a live (one-pass) preset the window completes while the pen moves; then the time
from each move to the first repaint of the result that includes it is measured too
("pen move -> repainted result"). ``--rate`` paces the moves like a real pen or mouse
(events per second; 0 = as fast as the canvas repaints). For those it also prints
where the time goes, per stage (medians over the requests).
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
    parser.add_argument("--rate", type=float, default=0.0, help="moves per second (default 0: as fast as they repaint)")
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

    # pen move -> repainted result: when each request was made, and when a result that includes it was painted
    asked: dict[int, float] = {}
    window.completion_requested.connect(lambda generation, *_: asked.__setitem__(generation, time.perf_counter()))
    # stage times of each request: began in the worker, frame emitted, taken and shown by the window, painted
    stages: dict[str, dict[int, float]] = {"began": {}, "emitted": {}, "taken": {}, "shown": {}, "painted": {}}
    worker = runner.completion.worker
    original_run = worker._run

    def timed_run(request, cancel):  # noqa: ANN001
        stages["began"][request.generation] = time.perf_counter()
        original_run(request, cancel)

    worker._run = timed_run  # type: ignore[method-assign]
    worker.frame.connect(lambda frame: stages["emitted"].setdefault(frame.generation, time.perf_counter()),
                         Qt.ConnectionType.DirectConnection)
    original_show = window.show_frame

    def timed_show(frame):  # noqa: ANN001
        stages["taken"].setdefault(frame.generation, time.perf_counter())
        original_show(frame)
        stages["shown"].setdefault(frame.generation, time.perf_counter())

    window.show_frame = timed_show  # type: ignore[method-assign]
    worker.frame.disconnect(original_show)
    worker.frame.connect(timed_show)
    moves: list[float] = []  # posting time of every move not yet shown in a result
    caught: list[float] = []
    original_result_paint = window.result.paintEvent

    def result_paint(event):  # noqa: ANN001
        original_result_paint(event)
        frame = window.frame
        if frame is None or frame.generation not in asked:
            return
        now, made = time.perf_counter(), asked[frame.generation]
        stages["painted"].setdefault(frame.generation, now)
        while moves and moves[0] <= made:
            caught.append((now - moves.pop(0)) * 1000)

    window.result.paintEvent = result_paint  # type: ignore[method-assign]

    def post(kind: QEvent.Type, x: float, y: float, buttons: Qt.MouseButton) -> None:
        point = QPointF(x, y)
        event = QMouseEvent(kind, point, canvas.mapToGlobal(point), Qt.MouseButton.LeftButton, buttons, Qt.KeyboardModifier.NoModifier)
        QApplication.postEvent(canvas, event)

    latencies: list[float] = []
    busy_moves = 0
    live = window.engine_live
    for stroke in range(args.strokes):
        if not live:
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
            moves.append(began)
            while painted[0] == before:
                app.processEvents()
            latencies.append((time.perf_counter() - began) * 1000)
            busy_moves += window.busy.isVisible()
            while args.rate and time.perf_counter() - began < 1 / args.rate:
                app.processEvents()
        post(QEvent.Type.MouseButtonRelease, x, y, Qt.MouseButton.NoButton)
        app.processEvents()
    window.close()
    runner.stop()
    latencies.sort()
    p = lambda q: latencies[min(len(latencies) - 1, int(q * len(latencies)))]  # noqa: E731
    print(f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, Qt platform {app.platformName()}")
    print(f"{len(latencies)} moves, completion running during {busy_moves} of them")
    print(f"input -> repaint latency: p50 {p(0.5):.2f} ms, p99 {p(0.99):.2f} ms, max {latencies[-1]:.2f} ms, mean {statistics.mean(latencies):.2f} ms")
    if caught:
        caught.sort()
        q = lambda f: caught[min(len(caught) - 1, int(f * len(caught)))]  # noqa: E731
        print(f"pen move -> repainted result ({len(caught)} moves): p50 {q(0.5):.1f} ms, p90 {q(0.9):.1f} ms, "
              f"p99 {q(0.99):.1f} ms, max {caught[-1]:.1f} ms")
        shown = [g for g in stages["painted"] if all(g in stages[k] for k in stages) and g in asked]
        marks = [("asked", asked), *stages.items()]
        parts = []
        for (name_a, a), (name_b, b) in zip(marks, marks[1:]):
            parts.append(f"{name_a} -> {name_b} {statistics.median((b[g] - a[g]) * 1000 for g in shown):.1f}")
        print(f"stages of the {len(shown)} requests shown (median ms): " + ", ".join(parts))
        print(f"requests: {len(asked)}, run: {len(stages['began'])}, shown: {len(shown)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
