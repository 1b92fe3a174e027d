"""The completion worker in its QThread: frames stream, stale generations are dropped, shutdown is quick.

Worker signals are received by a QObject living in the test's (GUI) thread, as the
window receives them in the app: the deliveries are queued, never run in the worker.
"""

from __future__ import annotations

import time

import numpy as np
import pytest
from PySide6.QtCore import QObject, Qt, Signal, Slot

from sketchapp.workers.completion import CompletionThread, Frame, Request

SKETCH = np.full((32, 32), 255, np.uint8)
SKETCH[8:24, 15:17] = 0


class Collector(QObject):
    cancel_requested = Signal()

    def __init__(self, holder: CompletionThread) -> None:
        super().__init__()
        self.frames: list[Frame] = []
        self.finished: list[int] = []
        self.failed: list[tuple[int, str]] = []
        self.loaded: list[dict] = []
        self.load_failed: list[str] = []
        worker = holder.worker
        worker.frame.connect(self.on_frame)
        worker.finished.connect(self.on_finished)
        worker.failed.connect(self.on_failed)
        worker.model_loaded.connect(self.on_loaded)
        worker.load_failed.connect(self.on_load_failed)
        self.cancel_requested.connect(worker.cancel, Qt.ConnectionType.DirectConnection)

    @Slot(object)
    def on_frame(self, frame: Frame) -> None:
        self.frames.append(frame)

    @Slot(int)
    def on_finished(self, generation: int) -> None:
        self.finished.append(generation)

    @Slot(int, str)
    def on_failed(self, generation: int, message: str) -> None:
        self.failed.append((generation, message))

    @Slot(dict)
    def on_loaded(self, info: dict) -> None:
        self.loaded.append(info)

    @Slot(str)
    def on_load_failed(self, message: str) -> None:
        self.load_failed.append(message)


@pytest.fixture()
def worker(qtbot):
    holder = CompletionThread(device="cpu", threads=1)
    collector = Collector(holder)
    yield holder, collector
    assert holder.stop(2000)


def load(qtbot, holder, collector, checkpoint):
    holder.worker.load(checkpoint, "tiny")
    qtbot.waitUntil(lambda: bool(collector.loaded or collector.load_failed), timeout=15000)
    return collector.loaded[-1]


def test_frames_stream_and_the_run_finishes(qtbot, worker, tiny_checkpoint):
    holder, got = worker
    info = load(qtbot, holder, got, tiny_checkpoint)
    assert info.device == "cpu" and info.size == 16
    holder.worker.request(Request(1, SKETCH, settings={"iterations": 20, "candidates": 3, "seed": 0}))
    qtbot.waitUntil(lambda: got.finished == [1], timeout=20000)
    qtbot.waitUntil(lambda: got.frames[-1].final, timeout=5000)
    last = got.frames[-1]
    assert last.images.shape == (3, 16, 16, 3) and last.sketches.shape == (3, 16, 16, 3)
    assert last.latents is not None and last.latents.shape[0] == 3
    assert all(f.generation == 1 for f in got.frames)
    assert last.settings["seed"] == 0 and last.settings["candidates"] == 3
    assert all(f.preset == "tiny" for f in got.frames)  # the name the model was loaded under
    assert last.settings["iterations"] == 20  # the count in effect (hints may raise it)


def test_frames_carry_the_plain_pictures_and_the_sketch_as_a_line_layer(qtbot, worker, tiny_checkpoint):
    holder, got = worker
    load(qtbot, holder, got, tiny_checkpoint)
    holder.worker.request(Request(1, SKETCH, settings={"iterations": 5, "candidates": 2, "seed": 0, "ink_lines": True}))
    qtbot.waitUntil(lambda: got.finished == [1], timeout=20000)
    qtbot.waitUntil(lambda: got.frames[-1].final, timeout=5000)
    last = got.frames[-1]
    assert last.images.shape == (2, 16, 16, 3)  # the model's pictures: inking is the window's view
    assert last.lines.shape == (32, 32) and last.lines.dtype == np.float32  # the sketch's own resolution
    assert last.lines[8:24, 15:17].max() == 0.0 and last.lines[0, 0] == 1.0
    assert all(f.lines is last.lines for f in got.frames)  # one layer per run, not a copy per frame


def test_a_newer_request_replaces_the_running_one(qtbot, worker, tiny_checkpoint):
    holder, got = worker
    load(qtbot, holder, got, tiny_checkpoint)
    holder.worker.request(Request(1, SKETCH, settings={"iterations": 100000, "patience": 0}))
    qtbot.waitUntil(lambda: len(got.frames) > 0, timeout=10000)
    holder.worker.request(Request(2, SKETCH, settings={"iterations": 5}))
    qtbot.waitUntil(lambda: 2 in got.finished, timeout=10000)
    assert got.finished == [2]
    holder.worker.request(Request(1, SKETCH, settings={"iterations": 5}))  # older than the newest: ignored
    qtbot.wait(300)
    assert got.finished == [2]


def test_bad_model_and_no_model_are_reported(qtbot, worker, tmp_path):
    holder, got = worker
    holder.worker.request(Request(1, SKETCH))
    qtbot.waitUntil(lambda: bool(got.failed), timeout=5000)
    assert "no model" in got.failed[0][1]
    junk = tmp_path / "junk.safetensors"
    junk.write_bytes(b"not a model")
    holder.worker.load(junk, "junk")
    qtbot.waitUntil(lambda: bool(got.load_failed), timeout=5000)
    assert "junk.safetensors" in got.load_failed[0]


def test_a_preset_whose_model_is_of_another_engine_is_refused_naming_both(qtbot, worker, tiny_checkpoint):
    from sketchapp.core.engines import REGISTRY

    holder, got = worker
    holder.worker.load(tiny_checkpoint, "Mixed", REGISTRY["pix2pix"].settings())
    qtbot.waitUntil(lambda: bool(got.loaded or got.load_failed), timeout=15000)
    assert not got.loaded and len(got.load_failed) == 1
    message = got.load_failed[0]
    assert "\n" not in message and "Mixed" in message and "pix2pix" in message and "contextual" in message


def test_cancel_reaches_a_busy_worker_at_once(qtbot, worker, tiny_checkpoint):
    holder, got = worker
    load(qtbot, holder, got, tiny_checkpoint)
    holder.worker.request(Request(1, SKETCH, settings={"iterations": 100000, "patience": 0}))
    qtbot.waitUntil(lambda: len(got.frames) > 0, timeout=10000)
    got.cancel_requested.emit()
    qtbot.wait(300)
    count = len(got.frames)
    qtbot.wait(500)
    assert len(got.frames) == count and not got.frames[-1].final and got.finished == []


def test_stopping_during_a_run_ends_the_thread_after_at_most_the_step_under_way(qtbot, tiny_checkpoint):
    holder = CompletionThread(device="cpu", threads=1)
    got = Collector(holder)
    load(qtbot, holder, got, tiny_checkpoint)
    holder.worker.request(Request(1, SKETCH, settings={"iterations": 100000, "patience": 0}))
    qtbot.waitUntil(lambda: len(got.frames) > 0, timeout=10000)
    at_stop = len(got.frames)
    assert holder.stop(5000) and holder.thread.isFinished()
    qtbot.wait(100)
    assert len(got.frames) <= at_stop + 1  # the step under way at most, not the 100,000 asked for


def test_the_first_stop_of_a_shipped_contextual_preset_ends_the_run(qtbot):
    """The first optimisation step of a process once took 0.9 s (kernels built), and a stop waited for it:
    the kernels are built when the model loads, and a stop ends the thread after the step under way."""
    from sketchapp.core.presets import find_preset, installed_presets

    preset = find_preset("emoji-colour", installed_presets()[0])
    holder = CompletionThread(device="cpu", threads=1)
    got = Collector(holder)
    holder.worker.load(preset.model, preset.name, preset.settings)
    qtbot.waitUntil(lambda: bool(got.loaded), timeout=30000)
    holder.worker.request(Request(1, SKETCH, settings={"iterations": 100000, "patience": 0}))
    qtbot.waitUntil(lambda: len(got.frames) > 0, timeout=10000)
    at_stop = len(got.frames)
    assert holder.stop(5000) and holder.thread.isFinished()
    qtbot.wait(100)
    assert len(got.frames) <= at_stop + 1


def test_stop_waits_for_a_model_that_is_still_loading(qtbot, tiny_checkpoint, monkeypatch):
    from sketchapp.workers import completion

    real = completion.open_engine

    def slow_load(*args, **kwargs):
        time.sleep(1.5)
        return real(*args, **kwargs)

    monkeypatch.setattr(completion, "open_engine", slow_load)
    holder = CompletionThread(device="cpu", threads=1)
    holder.worker.load(tiny_checkpoint, "tiny")
    time.sleep(0.2)
    assert holder.stop(100) is False  # could not end in time, but did end: never destroyed while running
    assert holder.thread.isFinished()


def test_stop_can_be_called_twice(qtbot):
    holder = CompletionThread(device="cpu", threads=1)
    assert holder.stop(1000) and holder.stop(1000)


def test_a_one_pass_engine_reports_what_it_offers_and_finishes_runs_while_newer_ones_wait(qtbot, worker, tiny_pix2pix_checkpoint):
    holder, got = worker
    info = load(qtbot, holder, got, tiny_pix2pix_checkpoint)
    assert info.engine == "pix2pix" and info.size == 32
    assert info.capabilities.live and not info.capabilities.ghost and not info.capabilities.refine
    holder.worker.request(Request(1, SKETCH, settings={"seed": 0}))
    qtbot.waitUntil(lambda: holder.worker.busy.is_set() or 1 in got.finished, timeout=5000)
    for generation in range(2, 21):  # pen events far faster than the engine: requests coalesce
        holder.worker.request(Request(generation, SKETCH, settings={"seed": 0}))
    qtbot.waitUntil(lambda: 20 in got.finished, timeout=20000)
    assert got.finished[0] == 1  # the run in flight was not cancelled by the requests that followed
    assert len(got.finished) < 20  # only the newest waiting request ran next, not every one
    assert got.finished == sorted(got.finished)
    last = got.frames[-1]
    assert last.final and last.sketches is None and last.latents is None and last.images.shape == (1, 32, 32, 3)
