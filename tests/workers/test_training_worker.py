"""The training worker in its QThread: scans, previews, estimates, training with pause, yielding,
cancel and resume, and saving presets, received by a QObject in the test's (GUI) thread."""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np
import pytest
import torch
from PySide6.QtCore import QObject, Slot

from sketchapp.core import device
from sketchapp.core.runs import run_info
from sketchapp.core.trainer import STATE_FILE
from sketchapp.workers.training import TrainingThread
from tests.conftest import make_pictures

TINY = {"half_size": 16, "z_dim": 16, "gf": 8, "df": 8, "ef": 0, "epochs": 2, "batch_size": 4}
PROGRESS_KEYS = {"job", "step", "steps", "epoch", "epochs", "phase", "elapsed", "eta", "rows", "held"}
WAIT = 30000  # ms; every wait ends far sooner unless something is wrong


class Collector(QObject):
    def __init__(self, holder: TrainingThread) -> None:
        super().__init__()
        self.scanned: list[dict] = []
        self.scan_failed: list[str] = []
        self.previews: list[tuple[int, list]] = []
        self.preview_failed: list[tuple[int, str]] = []
        self.estimates: list[tuple[int, dict]] = []
        self.estimate_failed: list[tuple[int, str]] = []
        self.started: list[dict] = []
        self.progress: list[dict] = []
        self.samples: list[str] = []
        self.ended: list[dict] = []
        self.presets: list[dict] = []
        self.preset_failed: list[str] = []
        worker = holder.worker
        worker.scanned.connect(self.on_scanned)
        worker.scan_failed.connect(self.on_scan_failed)
        worker.preview_ready.connect(self.on_preview)
        worker.preview_failed.connect(self.on_preview_failed)
        worker.estimated.connect(self.on_estimated)
        worker.estimate_failed.connect(self.on_estimate_failed)
        worker.started.connect(self.on_started)
        worker.progress.connect(self.on_progress)
        worker.sample.connect(self.on_sample)
        worker.ended.connect(self.on_ended)
        worker.preset_saved.connect(self.on_preset_saved)
        worker.preset_failed.connect(self.on_preset_failed)

    @Slot(dict)
    def on_scanned(self, report: dict) -> None:
        self.scanned.append(report)

    @Slot(str)
    def on_scan_failed(self, message: str) -> None:
        self.scan_failed.append(message)

    @Slot(int, object)
    def on_preview(self, request: int, pairs: list) -> None:
        self.previews.append((request, pairs))

    @Slot(int, str)
    def on_preview_failed(self, request: int, message: str) -> None:
        self.preview_failed.append((request, message))

    @Slot(int, dict)
    def on_estimated(self, request: int, estimate: dict) -> None:
        self.estimates.append((request, estimate))

    @Slot(int, str)
    def on_estimate_failed(self, request: int, message: str) -> None:
        self.estimate_failed.append((request, message))

    @Slot(dict)
    def on_started(self, info: dict) -> None:
        self.started.append(info)

    @Slot(dict)
    def on_progress(self, info: dict) -> None:
        self.progress.append(info)

    @Slot(int, str, object)
    def on_sample(self, _job: int, path: str, pixels: object) -> None:
        assert getattr(pixels, "ndim", 0) == 3  # the grid's pixels, read by the core
        self.samples.append(path)

    @Slot(dict)
    def on_ended(self, result: dict) -> None:
        self.ended.append(result)

    @Slot(dict)
    def on_preset_saved(self, info: dict) -> None:
        self.presets.append(info)

    @Slot(str)
    def on_preset_failed(self, message: str) -> None:
        self.preset_failed.append(message)

    def held(self, reason: str) -> list[dict]:
        return [info for info in self.progress if info["held"] == reason]

    def last_step(self) -> int:
        return max((info["step"] for info in self.progress), default=0)


@pytest.fixture()
def busy() -> threading.Event:
    """Stands for "a live completion is running": the worker's completion_busy flag."""
    return threading.Event()


@pytest.fixture()
def worker(qtbot, busy, monkeypatch):
    # One torch thread: tiny steps run no faster on two, and on a busy two-core machine far slower.
    monkeypatch.setattr(device, "available_cpus", lambda: 1)
    previous = torch.get_num_threads()
    holder = TrainingThread(completion_busy=busy.is_set)
    collector = Collector(holder)
    yield holder, collector
    holder.stop()
    assert holder.thread.isFinished()
    torch.set_num_threads(previous)


def train_job(tmp_path: Path, folder: Path, **settings) -> dict:
    return {
        "run": str(tmp_path / "run"),
        "spec": {"kind": "folder", "folder": str(folder), "style": "xdog"},
        "settings": {**TINY, **settings},
        "device": "cpu",
    }


def finish(qtbot, got: Collector) -> dict:
    qtbot.waitUntil(lambda: bool(got.ended), timeout=WAIT)
    return got.ended[-1]


# -- scan, preview, estimate ------------------------------------------------------------------


def test_scanning_a_folder_of_pictures_reports_its_kind_and_count(qtbot, worker, tmp_path):
    holder, got = worker
    folder = make_pictures(tmp_path / "pics", 6)
    holder.worker.scan([str(folder)])
    qtbot.waitUntil(lambda: bool(got.scanned or got.scan_failed), timeout=WAIT)
    report = got.scanned[0]
    assert report["kind"] == "folder" and report["count"] == 6 and report["counts"] == [6]
    assert report["folders"] == [str(folder)] and report["skipped"] == []
    assert report["summary"].startswith("6 pictures") and got.scan_failed == []


def test_scanning_an_empty_folder_fails(qtbot, worker, tmp_path):
    holder, got = worker
    (tmp_path / "empty").mkdir()
    holder.worker.scan([str(tmp_path / "empty")])
    qtbot.waitUntil(lambda: bool(got.scanned or got.scan_failed), timeout=WAIT)
    assert "no image files" in got.scan_failed[0] and got.scanned == []


def test_the_newest_of_several_preview_requests_is_always_answered(qtbot, worker, tmp_path):
    holder, got = worker
    folder = make_pictures(tmp_path / "pics", 6)
    for request in range(1, 6):
        holder.worker.preview(request, str(folder), "xdog", {}, 32)
    qtbot.waitUntil(lambda: any(request == 5 for request, _ in got.previews), timeout=WAIT)
    answered = [request for request, _ in got.previews]
    assert answered == sorted(set(answered)) and set(answered) <= {1, 2, 3, 4, 5}
    assert got.preview_failed == []
    for _, pairs in got.previews:
        assert len(pairs) == 6
        for sketch, image in pairs:
            assert sketch.shape == (32, 32) and sketch.dtype == np.uint8
            assert image.shape == (32, 32, 3) and image.dtype == np.uint8
    holder.worker.preview(6, str(folder), "xdog", {"sigma": 3.0}, 32)
    qtbot.waitUntil(lambda: got.previews[-1][0] == 6, timeout=WAIT)
    default, bolder = got.previews[-2][1], got.previews[-1][1]
    assert not all(np.array_equal(a[0], b[0]) for a, b in zip(default, bolder))
    assert all(np.array_equal(a[1], b[1]) for a, b in zip(default, bolder))


def test_a_preview_in_an_unknown_style_fails_with_its_request_number(qtbot, worker, tmp_path):
    holder, got = worker
    folder = make_pictures(tmp_path / "pics", 3)
    holder.worker.preview(7, str(folder), "crayon", {}, 32)
    qtbot.waitUntil(lambda: bool(got.preview_failed), timeout=WAIT)
    assert got.preview_failed[0][0] == 7 and "crayon" in got.preview_failed[0][1]
    holder.worker.preview(8, str(tmp_path / "missing"), "xdog", {}, 32)
    qtbot.waitUntil(lambda: len(got.preview_failed) == 2, timeout=WAIT)
    assert got.preview_failed[1][0] == 8 and got.previews == []


def test_an_estimate_measures_steps_for_the_settings_asked(qtbot, worker):
    holder, got = worker
    holder.worker.estimate(1, {"settings": {**TINY, "epochs": 1}, "count": 12, "device": "cpu"})
    qtbot.waitUntil(lambda: bool(got.estimates or got.estimate_failed), timeout=WAIT)
    request, estimate = got.estimates[0]
    assert request == 1 and estimate["seconds"] > 0 and estimate["device"] == "cpu"
    assert estimate["half_size"] == 16 and estimate["epochs"] == 1 and estimate["batch_size"] == 4
    assert estimate["encoder_steps"] == 0 and estimate["gan_steps"] == estimate["steps_per_epoch"]


def test_the_worker_describes_every_engine_as_the_wizard_offers_it(qtbot, worker):
    """Sizes, batch, the losses plotted and their labels come from the engine, not from tables in the wizard."""
    holder, _got = worker
    engines = {engine["kind"]: engine for engine in holder.worker.engines()}
    assert set(engines) == {"contextual", "pix2pix", "cyclegan"}
    for kind, engine in engines.items():
        assert set(engine["loss_labels"]) <= set(engine["losses"]) and engine["default_size"] in engine["sizes"]
        assert not {"d_real", "d_fake"} & set(engine["loss_labels"])  # D's scores are not losses to plot
        size = engine["default_size"]
        assert holder.worker._settings({"engine": kind, "network": {"size": size, "width": 8}}).size == size
    assert engines["pix2pix"]["loss_labels"]["g_ssim"] == "structure (1 - SSIM)"
    assert [engines[k]["batch_size"] for k in ("contextual", "pix2pix", "cyclegan")] == [0, 16, 1]  # 0: measured to fit
    assert sorted(engines, key=lambda k: engines[k]["preference"]) == ["pix2pix", "contextual", "cyclegan"]


def test_a_new_network_in_a_job_is_made_as_its_engine_makes_one(qtbot, worker):
    holder, _got = worker
    contextual = holder.worker._settings({"engine": "contextual", "network": {"size": 64, "width": 8}, "settings": {"epochs": 3}})
    assert (contextual.half_size, contextual.gf, contextual.ef, contextual.recon_weight, contextual.epochs) == (64, 8, 8, 50.0, 3)
    pix2pix = holder.worker._settings({"engine": "pix2pix", "network": {"size": 128, "width": 16}})
    assert (pix2pix.size, pix2pix.gf, pix2pix.df) == (128, 16, 16)


def test_an_estimate_for_invalid_settings_or_device_fails_with_its_request_number(qtbot, worker):
    holder, got = worker
    holder.worker.estimate(2, {"settings": {**TINY, "epochs": 0}, "count": 12, "device": "cpu"})
    qtbot.waitUntil(lambda: bool(got.estimate_failed), timeout=WAIT)
    assert got.estimate_failed[0][0] == 2 and "epochs" in got.estimate_failed[0][1]
    holder.worker.estimate(3, {"settings": TINY, "count": 12, "device": "tpu"})
    qtbot.waitUntil(lambda: len(got.estimate_failed) == 2, timeout=WAIT)
    assert got.estimate_failed[1][0] == 3 and "tpu" in got.estimate_failed[1][1]
    assert got.estimates == []


# -- training -------------------------------------------------------------------------------------


def test_a_plot_leaves_out_the_losses_a_run_does_not_compute(qtbot, worker, tmp_path):
    from sketchapp.core.engines.pix2pix.recipe import Pix2PixTrainSettings

    assert Pix2PixTrainSettings(colour_grid=16).unused_losses == frozenset()
    holder, got = worker
    folder = make_pictures(tmp_path / "pics")
    job = {**train_job(tmp_path, folder), "engine": "pix2pix", "network": {"size": 32, "width": 8},
           "settings": {"epochs": 1, "batch_size": 4}}
    holder.worker.start(job)
    assert finish(qtbot, got)["status"] == "done"
    labels = got.started[0]["loss_labels"]
    assert "g_l1" in labels and "g_colour" not in labels  # no colour head: its cross-entropy is 0 every step


def test_training_reports_progress_samples_and_the_finished_model(qtbot, worker, tmp_path):
    holder, got = worker
    folder = make_pictures(tmp_path / "pics")
    holder.worker.start(train_job(tmp_path, folder))
    result = finish(qtbot, got)
    assert result["status"] == "done", result
    assert Path(result["model"]).is_file() and result["run"] == str(tmp_path / "run")
    assert result["thumbnails"].shape == (8, 16, 16, 3) and result["thumbnails"].dtype == np.uint8
    assert result["step"] == result["steps"] == 4 and result["style"] == "xdog"
    assert len(got.started) == 1 and got.started[0]["step"] == 0 and got.started[0]["history"] == []
    assert got.progress and all(set(info) == PROGRESS_KEYS for info in got.progress)
    steps = [info["step"] for info in got.progress]
    assert steps == sorted(steps) and steps[-1] == 4
    assert all(info["held"] == "" and info["epochs"] == 2 for info in got.progress)
    assert all(info["phase"] == "gan" and info["eta"] is not None for info in got.progress[:-1])
    assert got.progress[-1]["eta"] is None  # the last report is the finished run's
    assert sorted(row["step"] for info in got.progress for row in info["rows"]) == [1.0, 2.0, 3.0, 4.0]
    assert len(got.samples) == 2 and all(Path(path).is_file() for path in got.samples)
    assert (tmp_path / "run" / STATE_FILE).is_file() and not holder.worker.training


def test_training_holds_while_a_completion_runs_on_the_cpu(qtbot, worker, busy, tmp_path):
    holder, got = worker
    busy.set()
    holder.worker.start(train_job(tmp_path, make_pictures(tmp_path / "pics"), epochs=200))
    qtbot.waitUntil(lambda: bool(got.held("yielding")), timeout=WAIT)
    held_at = got.held("yielding")[0]["step"]
    qtbot.wait(500)
    assert got.last_step() == held_at and got.ended == []
    busy.clear()
    qtbot.waitUntil(lambda: got.last_step() > held_at, timeout=WAIT)
    holder.worker.cancel()
    assert finish(qtbot, got)["status"] == "cancelled"


def test_training_holds_while_paused_and_continues_on_resume(qtbot, worker, tmp_path):
    holder, got = worker
    holder.worker.start(train_job(tmp_path, make_pictures(tmp_path / "pics"), epochs=200))
    qtbot.waitUntil(lambda: got.last_step() > 0, timeout=WAIT)
    holder.worker.pause()
    assert holder.worker.paused
    qtbot.waitUntil(lambda: bool(got.held("paused")), timeout=WAIT)
    held_at = got.held("paused")[0]["step"]
    qtbot.wait(500)
    assert got.last_step() == held_at and got.ended == []
    holder.worker.resume()
    assert not holder.worker.paused
    qtbot.waitUntil(lambda: got.last_step() > held_at, timeout=WAIT)
    holder.worker.cancel()
    assert finish(qtbot, got)["status"] == "cancelled"


def test_progress_after_resuming_is_no_longer_marked_paused(qtbot, worker, tmp_path):
    holder, got = worker
    holder.worker.start(train_job(tmp_path, make_pictures(tmp_path / "pics"), epochs=200))
    qtbot.waitUntil(lambda: got.last_step() > 0, timeout=WAIT)
    holder.worker.pause()
    qtbot.waitUntil(lambda: bool(got.held("paused")), timeout=WAIT)
    held_at = got.held("paused")[0]["step"]
    qtbot.wait(300)  # longer than PROGRESS_INTERVAL: the first step after resuming is reported
    holder.worker.resume()
    qtbot.waitUntil(lambda: got.last_step() > held_at + 2, timeout=WAIT)
    holder.worker.cancel()
    finish(qtbot, got)
    hold = next(index for index, info in enumerate(got.progress) if info["held"] == "paused")
    assert [info["held"] for info in got.progress[hold + 1 :]] == [""] * (len(got.progress) - hold - 1)


def test_a_run_without_an_encoder_never_reports_the_encoder_phase(qtbot, worker, tmp_path):
    holder, got = worker
    holder.worker.start(train_job(tmp_path, make_pictures(tmp_path / "pics"), epochs=1))
    assert finish(qtbot, got)["status"] == "done"
    assert [info["phase"] for info in got.progress] == ["gan"] * len(got.progress)


def test_a_cancelled_training_is_saved_and_resumes_from_its_step(qtbot, worker, busy, tmp_path):
    holder, got = worker
    busy.set()  # the training holds after its first step, so the cancel lands mid-run
    holder.worker.start(train_job(tmp_path, make_pictures(tmp_path / "pics")))
    qtbot.waitUntil(lambda: bool(got.held("yielding")), timeout=WAIT)
    holder.worker.cancel()
    stopped = finish(qtbot, got)
    assert stopped["status"] == "cancelled" and 0 < stopped["step"] < stopped["steps"] == 4
    run = tmp_path / "run"
    assert (run / STATE_FILE).is_file() and run_info(run).step == stopped["step"]
    assert not holder.worker.training

    busy.clear()
    got.progress.clear()
    holder.worker.start({"run": str(run), "resume": True, "device": "cpu"})
    qtbot.waitUntil(lambda: len(got.ended) == 2, timeout=WAIT)
    resumed = got.ended[-1]
    assert got.started[-1]["step"] == stopped["step"]
    assert [row["step"] for row in got.started[-1]["history"]] == [float(s) for s in range(1, stopped["step"] + 1)]
    assert got.progress[0]["step"] > stopped["step"]
    assert resumed["status"] == "done" and resumed["step"] == resumed["steps"] == 4
    assert run_info(run).finished


def test_a_run_folder_that_cannot_be_resumed_ends_as_failed(qtbot, worker, tmp_path):
    holder, got = worker
    holder.worker.start({"run": str(tmp_path / "nothing"), "resume": True, "device": "cpu"})
    result = finish(qtbot, got)
    assert result["status"] == "failed" and "not a training run folder" in result["message"]
    assert got.started == [] and not holder.worker.training


# -- presets ---------------------------------------------------------------------------------------


def test_a_trained_model_becomes_a_user_preset(qtbot, worker, tmp_path, monkeypatch):
    holder, got = worker
    monkeypatch.setenv("SKETCHAPP_DATA_DIR", str(tmp_path / "data"))
    holder.worker.start(train_job(tmp_path, make_pictures(tmp_path / "pics"), epochs=1))
    result = finish(qtbot, got)
    assert result["status"] == "done", result
    holder.worker.save_preset({"name": "Shapes", "model": result["model"], "style": "xdog",
                               "thumbnail": result["thumbnails"][0]})
    qtbot.waitUntil(lambda: bool(got.presets or got.preset_failed), timeout=WAIT)
    assert got.presets == [{"id": "shapes", "name": "Shapes"}] and got.preset_failed == []
    data = tmp_path / "data"
    assert (data / "presets" / "shapes.json").is_file() and (data / "presets" / "shapes.png").is_file()
    assert (data / "models" / "shapes.safetensors").read_bytes() == Path(result["model"]).read_bytes()


def test_saving_a_preset_of_a_missing_model_fails(qtbot, worker, tmp_path, monkeypatch):
    holder, got = worker
    monkeypatch.setenv("SKETCHAPP_DATA_DIR", str(tmp_path / "data"))
    holder.worker.save_preset({"name": "Gone", "model": str(tmp_path / "missing.safetensors"), "style": "xdog",
                               "thumbnail": np.zeros((16, 16, 3), np.uint8)})
    qtbot.waitUntil(lambda: bool(got.presets or got.preset_failed), timeout=WAIT)
    assert "missing.safetensors" in got.preset_failed[0] and got.presets == []
    assert not (tmp_path / "data" / "presets").exists()


def test_a_training_still_waiting_its_turn_is_dropped_on_cancel_and_says_so(qtbot, worker, busy, tmp_path):
    holder, got = worker
    busy.set()  # the first training holds after a step, so the second waits in the mailbox
    first = holder.worker.start(train_job(tmp_path, make_pictures(tmp_path / "pics")))
    qtbot.waitUntil(lambda: bool(got.held("yielding")), timeout=WAIT)
    second = holder.worker.start({**train_job(tmp_path, tmp_path / "pics"), "run": str(tmp_path / "second")})
    assert second == first + 1
    holder.worker.cancel()
    qtbot.waitUntil(lambda: len(got.ended) == 2, timeout=WAIT)
    by_job = {result["job"]: result for result in got.ended}
    assert by_job[second]["status"] == "cancelled" and "before the training began" in by_job[second]["message"]
    assert by_job[first]["status"] == "cancelled" and by_job[first]["step"] > 0
    assert not (tmp_path / "second").exists() and not holder.worker.training
    assert {info["job"] for info in got.progress} == {first}


def test_a_finished_run_with_a_preset_made_from_it_records_the_preset(qtbot, worker, tmp_path, monkeypatch):
    monkeypatch.setenv("SKETCHAPP_DATA_DIR", str(tmp_path / "data"))
    holder, got = worker
    holder.worker.start(train_job(tmp_path, make_pictures(tmp_path / "pics")))
    result = finish(qtbot, got)
    assert holder.worker.runs(str(tmp_path))[0]["preset"] is None
    holder.worker.save_preset({"name": "Shapes", "model": result["model"], "style": "xdog", "run": result["run"]})
    qtbot.waitUntil(lambda: bool(got.presets), timeout=WAIT)
    assert holder.worker.runs(str(tmp_path))[0]["preset"] == "shapes"
