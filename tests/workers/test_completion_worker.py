"""The completion worker in its QThread: frames stream, stale generations are dropped, shutdown is quick."""

from __future__ import annotations

import time

import numpy as np
import pytest

from sketchapp.workers.completion import CompletionThread, Frame, Request

SKETCH = np.full((32, 32), 255, np.uint8)
SKETCH[8:24, 15:17] = 0


@pytest.fixture()
def worker_thread(qtbot):
    holder = CompletionThread(device="cpu", threads=1)
    yield holder
    assert holder.stop(2000)


def loaded(qtbot, holder, checkpoint):
    with qtbot.waitSignal(holder.worker.model_loaded, timeout=10000) as info:
        holder.worker.load(checkpoint, "tiny")
    return info.args[0]


def test_frames_stream_and_the_run_finishes(qtbot, worker_thread, tiny_checkpoint):
    info = loaded(qtbot, worker_thread, tiny_checkpoint)
    assert info["device"] == "cpu" and info["size"] == 16
    frames: list[Frame] = []
    worker_thread.worker.frame.connect(frames.append)
    with qtbot.waitSignal(worker_thread.worker.finished, timeout=20000) as done:
        worker_thread.worker.request(Request(1, SKETCH, settings={"iterations": 20, "candidates": 3, "seed": 0}))
    assert done.args == [1]
    qtbot.waitUntil(lambda: frames and frames[-1].final, timeout=5000)
    last = frames[-1]
    assert last.images.shape == (3, 16, 16, 3) and last.sketches.shape == (3, 16, 16, 3)
    assert last.latents is not None and last.latents.shape[0] == 3
    assert all(f.generation == 1 for f in frames)


def test_a_newer_request_replaces_the_running_one(qtbot, worker_thread, tiny_checkpoint):
    loaded(qtbot, worker_thread, tiny_checkpoint)
    finished: list[int] = []
    worker_thread.worker.finished.connect(finished.append)
    first: list[Frame] = []
    worker_thread.worker.frame.connect(lambda f: first.append(f) if f.generation == 1 else None)
    worker_thread.worker.request(Request(1, SKETCH, settings={"iterations": 100000, "patience": 0}))
    qtbot.waitUntil(lambda: len(first) > 0, timeout=10000)
    worker_thread.worker.request(Request(2, SKETCH, settings={"iterations": 5}))
    qtbot.waitUntil(lambda: 2 in finished, timeout=10000)
    assert finished == [2]
    worker_thread.worker.request(Request(1, SKETCH, settings={"iterations": 5}))  # older than the newest: ignored
    qtbot.wait(300)
    assert finished == [2]


def test_bad_model_and_no_model_are_reported(qtbot, worker_thread, tmp_path):
    with qtbot.waitSignal(worker_thread.worker.failed, timeout=5000) as failure:
        worker_thread.worker.request(Request(1, SKETCH))
    assert "no model" in failure.args[1]
    junk = tmp_path / "junk.safetensors"
    junk.write_bytes(b"not a model")
    with qtbot.waitSignal(worker_thread.worker.load_failed, timeout=5000) as problem:
        worker_thread.worker.load(junk, "junk")
    assert "junk.safetensors" in problem.args[0]


def test_stopping_during_a_run_ends_the_thread_within_a_second(qtbot, tiny_checkpoint):
    holder = CompletionThread(device="cpu", threads=1)
    loaded(qtbot, holder, tiny_checkpoint)
    frames: list[Frame] = []
    holder.worker.frame.connect(frames.append)
    holder.worker.request(Request(1, SKETCH, settings={"iterations": 100000, "patience": 0}))
    qtbot.waitUntil(lambda: len(frames) > 0, timeout=10000)
    began = time.perf_counter()
    assert holder.stop(1000)
    assert time.perf_counter() - began < 1.0 and holder.thread.isFinished()
