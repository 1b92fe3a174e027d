"""Pen latency while a completion runs: python3 benchmarks/ui_latency.py [--preset NAME] [--size PX] [--rate HZ] [--load]

Synthetic strokes are posted to the canvas as mouse events while the completion worker
runs on the CPU in its thread. For every move the time from posting the event to the
end of the canvas repaint that shows it is recorded ("pen repaint"); p50, p99 and max
are printed.

With a live (one-pass) preset the window completes while the pen moves; then the time
from each move to the first repaint of the result that includes it is measured too
("pen move -> repainted result"). ``--rate`` paces the moves like a real pen or mouse
(events per second; 0 = as fast as the canvas repaints). For those it also prints
where the time goes, per stage (medians over the requests).

``--size 256`` runs a pix2pix preset's network at 256 px (its architecture at that
size, untrained weights: the same work per pass as a trained model) from a preset made
in a temporary data folder. ``--load`` keeps another process busy on one core
throughout, as a browser or a compiler would. Waiting for a repaint blocks in Qt's event
loop (it sleeps until an event comes) instead of spinning, so the benchmark takes no CPU
from what it measures.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
FOLDER = Path(tempfile.mkdtemp())
os.environ["SKETCHAPP_DATA_DIR"] = str(FOLDER / "data")  # before sketchapp reads it: the --size preset lives here

from PySide6.QtCore import QEvent, QEventLoop, QPointF, QSettings, Qt, QTimer  # noqa: E402
from PySide6.QtGui import QMouseEvent  # noqa: E402
from PySide6.QtWidgets import QApplication, QMessageBox  # noqa: E402

from sketchapp.app import App, CoreServices  # noqa: E402
from sketchapp.ui.main_window import MainWindow  # noqa: E402


def sized_preset(preset_id: str, size: int, global_size: int = 0) -> str:
    """A user preset running ``preset_id``'s pix2pix network at ``size`` px (untrained weights), its U-Net at
    ``global_size`` with an enhancer where that is given; its id."""
    from dataclasses import replace

    from sketchapp.core.checkpoint import save_checkpoint
    from sketchapp.core.engines import load_engine_model
    from sketchapp.core.presets import find_preset, installed_presets

    preset = find_preset(preset_id, installed_presets()[0])
    base = load_engine_model(preset.model, "cpu")
    model = type(base).create(replace(base.config, size=size, global_size=global_size))
    models, presets = Path(os.environ["SKETCHAPP_DATA_DIR"]) / "models", Path(os.environ["SKETCHAPP_DATA_DIR"]) / "presets"
    models.mkdir(parents=True)
    presets.mkdir(parents=True)
    save_checkpoint(models / f"bench-{size}.safetensors", model, half_precision=True, sketch_style=preset.sketch_style)
    record = {"name": f"Benchmark {size} px", "engine": base.kind, "model": f"bench-{size}.safetensors",
              "sketch_style": preset.sketch_style, "settings": preset.settings.to_dict()}
    (presets / f"bench-{size}.json").write_text(json.dumps(record), encoding="utf-8")
    return f"bench-{size}"


def wait_until(app: QApplication, done: Callable[[], bool], seconds: float) -> None:
    """Run Qt's event loop until ``done()`` or ``seconds`` pass, sleeping while no event comes."""
    deadline = time.perf_counter() + seconds
    tick = QTimer()
    tick.start(2)  # wakes the loop now and then, so a deadline is noticed
    while not done() and time.perf_counter() < deadline:
        app.processEvents(QEventLoop.ProcessEventsFlag.WaitForMoreEvents)
    tick.stop()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--preset", default="emoji-pix2pix")
    parser.add_argument("--size", type=int, default=0, help="run the preset's pix2pix network at this size (default: its own)")
    parser.add_argument("--global-size", type=int, default=0,
                        help="with --size: the U-Net at this size and an enhancer to --size (a coarse-to-fine model)")
    parser.add_argument("--threads", type=int, default=0, help="the model's CPU threads (default 0: the app's automatic choice)")
    parser.add_argument("--strokes", type=int, default=40)
    parser.add_argument("--points", type=int, default=60, help="moves per stroke")
    parser.add_argument("--rate", type=float, default=0.0, help="moves per second (default 0: as fast as they repaint)")
    parser.add_argument("--load", action="store_true", help="keep another process busy on one core throughout")
    args = parser.parse_args()

    preset = sized_preset(args.preset, args.size, args.global_size) if args.size else args.preset
    busy = subprocess.Popen([sys.executable, "-c", "while True: pass"]) if args.load else None
    app = QApplication(sys.argv[:1])
    settings = QSettings(str(FOLDER / "s.ini"), QSettings.Format.IniFormat)
    settings.setValue("preset", preset)
    settings.setValue("preferences/threads", args.threads)
    window = MainWindow(CoreServices(), settings, FOLDER)
    window.ask_save_changes = lambda: QMessageBox.StandardButton.Discard  # type: ignore[method-assign]
    window.resize(1280, 720)
    window.show()
    runner = App(window)
    wait_until(app, lambda: "Preset" in window.preset_label.text(), 120)
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
        time.sleep(0.05)  # a pen lifts and lands again, not instantly
        for i in range(args.points):
            x = 100 + i * 6
            y = cy + 15 * math.sin(i / 5)
            before = painted[0]
            began = time.perf_counter()
            post(QEvent.Type.MouseMove, x, y, Qt.MouseButton.LeftButton)
            moves.append(began)
            wait_until(app, lambda: painted[0] != before, 10)
            latencies.append((time.perf_counter() - began) * 1000)
            busy_moves += window.busy.isVisible()
            if args.rate:
                wait_until(app, lambda: False, max(0.0, 1 / args.rate - (time.perf_counter() - began)))
        post(QEvent.Type.MouseButtonRelease, x, y, Qt.MouseButton.NoButton)
        app.processEvents()
    wait_until(app, lambda: not moves, 2)  # the last stroke's result
    window.close()
    runner.stop()
    if busy is not None:
        busy.kill()
    latencies.sort()
    p = lambda q: latencies[min(len(latencies) - 1, int(q * len(latencies)))]  # noqa: E731
    print(f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, Qt platform {app.platformName()}, "
          f"preset {args.preset}" + (f" at {args.size} px" if args.size else "")
          + (f" (U-Net at {args.global_size} px)" if args.global_size else "") + (f", {args.threads} threads" if args.threads else "") + (", another process on one core" if args.load else ""))
    print(f"{len(latencies)} moves, completion running during {busy_moves} of them")
    print(f"pen repaint (input -> canvas repaint): p50 {p(0.5):.2f} ms, p99 {p(0.99):.2f} ms, max {latencies[-1]:.2f} ms, mean {statistics.mean(latencies):.2f} ms")
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
