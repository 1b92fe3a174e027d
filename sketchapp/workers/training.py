"""The training wizard's worker: scans, previews, time estimates, training and saving presets.

It lives in its own QThread and runs one job at a time from a mailbox in which a newer
job of a kind replaces an older one that has not started (slider moves coalesce into
one preview). The GUI calls the public methods directly: they only touch the mailbox
and thread-safe flags, so pause and cancel reach a running training at its next step.

Everything a job hands the GUI is plain data: dicts, lists, strings and numpy arrays.
The training is the engine's ``train`` generator (``sketchapp.core.engines``), driven
step by step; while paused, or while a live completion runs on the same CPU, the worker
simply stops asking it for the next step, so the drawing stays responsive and no step is lost.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

import cv2
import numpy as np
from PySide6.QtCore import QObject, QThread, Signal, Slot

from sketchapp.core.engine import CancelToken
from sketchapp.core.errors import SketchAppError

PRIORITY = ("save", "scan", "preview", "estimate", "train")
PROGRESS_INTERVAL = 0.1  # seconds between progress signals while training


class TrainingWorker(QObject):
    scan_progress = Signal(int, int)
    scanned = Signal(dict)
    scan_failed = Signal(str)
    preview_ready = Signal(int, object)  # request number, [(sketch grey, image RGB), ...]
    preview_failed = Signal(int, str)
    estimated = Signal(int, dict)
    estimate_failed = Signal(int, str)
    # Training signals carry the job number start() returned, so a page ignores a job it did not start.
    loading = Signal(int, int, int)  # job, pictures read, of all: reading the data before a training starts
    started = Signal(dict)  # {"job", "run", "message", "history": [loss rows of earlier sessions], "step", "steps"}
    progress = Signal(dict)  # see _report
    sample = Signal(int, str, object)  # job, a new per-epoch sample grid PNG, its RGB pixels (read by the core, not Qt)
    ended = Signal(dict)  # {"job", "status": "done" | "cancelled" | "failed", "message", "run", ...}
    preset_saved = Signal(dict)  # {"id", "name"}
    preset_failed = Signal(str)
    _wake = Signal()

    def __init__(self, completion_busy: Callable[[], bool] | None = None) -> None:
        super().__init__()
        self.completion_busy = completion_busy or (lambda: False)
        self._lock = threading.Lock()
        self._jobs: dict[str, Any] = {}
        self._scan_cancel = CancelToken()
        self._train_cancel = CancelToken()
        self._paused = threading.Event()
        self._pictures: tuple[tuple[str, int], list[np.ndarray]] | None = None
        self.training = False
        self._job = 0  # number of the latest training job
        self._last_started = 0  # number of the training job the thread took up last
        self._running = False  # a training job is being worked on (not just waiting)
        self._running_cancel = CancelToken()  # that job's token
        self._wake.connect(self._work)

    # -- read-only facts, safe from any thread ---------------------------------------------
    def style_parameters(self, style: str) -> list[dict[str, Any]]:
        from sketchapp.core.data.styles import style_parameters

        return style_parameters(style)

    def devices(self) -> list[tuple[str, str]]:
        from sketchapp.core.device import available_devices

        return available_devices()

    def base_presets(self) -> list[dict[str, Any]]:
        """Presets whose model can be fine-tuned, with the model's size and style."""
        from sketchapp.core.checkpoint import read_metadata
        from sketchapp.core.presets import installed_presets

        found = []
        for preset in installed_presets()[0]:
            try:
                metadata = read_metadata(preset.model)
            except SketchAppError:
                continue
            architecture = metadata.get("architecture") or {}
            size = architecture.get("half_size", architecture.get("size", 0)) if isinstance(architecture, dict) else 0
            found.append({
                "id": preset.id, "name": preset.name, "model": str(preset.model), "style": preset.sketch_style,
                "size": int(size) if isinstance(size, int) else 0, "source": preset.source, "engine": preset.engine,
            })
        return found

    def engines(self) -> list[dict[str, Any]]:
        """Every engine that can be trained: kind, title, what it is good at, the losses it reports and
        the labels of those the wizard plots, the sizes and batch it proposes, and whether it learns unpaired."""
        from sketchapp.core.engines import REGISTRY

        return [{"kind": spec.kind, "title": spec.title, "summary": spec.summary, "losses": list(spec.loss_names),
                 "loss_labels": dict(spec.loss_labels), "sizes": list(spec.sizes), "default_size": spec.default_size,
                 "batch_size": spec.batch_size, "preference": spec.preference, "unpaired": spec.unpaired}
                for spec in REGISTRY.values()]

    def runs(self, root: str) -> list[dict[str, Any]]:
        from sketchapp.core.runs import list_runs

        return [info.to_dict() for info in list_runs(root)]

    # -- requests from the GUI -------------------------------------------------------------
    def scan(self, folders: list[str]) -> None:
        with self._lock:
            self._scan_cancel.cancel()
            self._scan_cancel = CancelToken()
            self._jobs["scan"] = (list(folders), self._scan_cancel)
        self._wake.emit()

    def preview(self, request: int, folder: str, style: str, params: dict[str, Any], size: int) -> None:
        self._post("preview", (request, folder, style, dict(params), size))

    def estimate(self, request: int, job: dict[str, Any]) -> None:
        self._post("estimate", (request, dict(job)))

    def start(self, job: dict[str, Any]) -> int:
        """Train as ``job`` says: {"run", "spec", "settings", "device", "base_model", "base_preset"},
        or {"run", "resume": True, "device", "epochs"?} to continue a saved run.

        Returns the job's number, which every training signal of it carries. Previews and
        estimates not yet begun are dropped: the training is what the user waits for now.
        """
        with self._lock:
            self._job += 1
            self._train_cancel = CancelToken()
            self._paused.clear()
            self.training = True
            self._jobs.pop("preview", None)
            self._jobs.pop("estimate", None)
            self._jobs["train"] = (dict(job), self._train_cancel, self._job)
            number = self._job
        self._wake.emit()
        return number

    def save_preset(self, job: dict[str, Any]) -> None:
        self._post("save", dict(job))

    def pause(self) -> None:
        self._paused.set()

    def resume(self) -> None:
        self._paused.clear()

    @property
    def paused(self) -> bool:
        return self._paused.is_set()

    def cancel(self) -> None:
        """Stop a scan or a training (which saves first, so it can be resumed).

        A training still waiting its turn is dropped, and said so, as one that ran would be.
        """
        with self._lock:
            waiting = self._jobs.pop("train", None)
            self._scan_cancel.cancel()
            self._train_cancel.cancel()
            self._running_cancel.cancel()  # a newer start() may have replaced _train_cancel meanwhile
            if waiting is not None and not self._running:
                self.training = False
        self._paused.clear()
        if waiting is not None:
            self.ended.emit({"job": waiting[2], "status": "cancelled", "run": str(waiting[0].get("run", "")),
                             "message": "Stopped before the training began."})

    def shutdown(self) -> None:
        """Cancel everything and forget the jobs not begun (the app is closing)."""
        self.cancel()
        with self._lock:
            self._jobs.clear()

    def _post(self, kind: str, job: Any) -> None:
        with self._lock:
            self._jobs[kind] = job
        self._wake.emit()

    # -- the worker thread -----------------------------------------------------------------
    @Slot()
    def _work(self) -> None:
        while True:
            with self._lock:
                kind = next((k for k in PRIORITY if k in self._jobs), None)
                if kind is None:
                    return
                job = self._jobs.pop(kind)
            try:
                getattr(self, f"_do_{kind}")(job)
            except Exception as exc:  # noqa: BLE001 - a bug in one job must not kill the worker thread
                self._fail(kind, job, f"{type(exc).__name__}: {exc}")

    def _fail(self, kind: str, job: Any, message: str) -> None:
        if kind == "scan":
            self.scan_failed.emit(message)
        elif kind == "preview":
            self.preview_failed.emit(job[0], message)
        elif kind == "estimate":
            self.estimate_failed.emit(job[0], message)
        elif kind == "save":
            self.preset_failed.emit(message)
        else:
            self.training = False
            self.ended.emit({"job": job[2], "status": "failed", "message": message, "run": job[0].get("run", "")})

    def _do_scan(self, job: tuple[list[str], CancelToken]) -> None:
        from sketchapp.core.data.scan import scan

        folders, cancel = job
        try:
            report = scan(folders, self.scan_progress.emit, cancel)
        except SketchAppError as exc:
            if not cancel.cancelled:
                self.scan_failed.emit(str(exc))
            return
        if cancel.cancelled:
            return
        self.scanned.emit({
            "kind": report.kind, "folders": list(report.folders), "count": report.count, "counts": list(report.counts),
            "skipped": [(s.path, s.reason) for s in report.skipped], "sizes": dict(report.sizes),
            "warnings": list(report.warnings), "summary": report.summary(),
        })

    def _do_preview(self, job: tuple[int, str, str, dict[str, Any], int]) -> None:
        from sketchapp.core.data.datasets import sample_pictures, sketch_from_image

        request, folder, style, params, size = job
        try:
            if self._pictures is None or self._pictures[0] != (folder, size):
                self._pictures = ((folder, size), sample_pictures(folder, 8, size * 4))
            pairs = [
                (sketch_from_image(picture, size, style, params), cv2.resize(picture, (size, size), interpolation=cv2.INTER_AREA))
                for picture in self._pictures[1]
            ]
        except SketchAppError as exc:
            self.preview_failed.emit(request, str(exc))
            return
        self.preview_ready.emit(request, pairs)

    def _do_estimate(self, job: tuple[int, dict[str, Any]]) -> None:
        from sketchapp.core.device import configure_cpu_threads, select_device
        from sketchapp.core.engines import engine_spec

        request, spec = job
        try:
            settings = self._settings(spec)
            device = select_device(spec.get("device", "auto"))
            if device.type == "cpu":
                configure_cpu_threads()
            estimate = engine_spec(self._kind(spec)).estimate(settings, int(spec["count"]), device)
        except SketchAppError as exc:
            self.estimate_failed.emit(request, str(exc))
            return
        self.estimated.emit(request, {**estimate.to_dict(), "half_size": settings.size, "epochs": settings.epochs})

    @staticmethod
    def _kind(job: dict[str, Any]) -> str:
        """The engine a job trains: its base model's, else the one asked for (the legacy engine by default)."""
        from sketchapp.core.engines import model_kind, recorded_kind

        return model_kind(job["base_model"]) if job.get("base_model") else str(recorded_kind(job))

    @classmethod
    def _settings(cls, job: dict[str, Any]) -> Any:
        """The job's training settings: its overrides, on its base model's networks, else on new ones of
        its ``network`` ({"size", "width"}) as the engine makes them."""
        from sketchapp.core.engines import engine_spec, training_settings

        kind, base_model, overrides = cls._kind(job), job.get("base_model") or None, dict(job.get("settings") or {})
        network = job.get("network")
        if network and base_model is None:
            overrides = {**engine_spec(kind).new_model(int(network["size"]), int(network["width"])), **overrides}
        return training_settings(kind, overrides, base_model)

    def _do_save(self, job: dict[str, Any]) -> None:
        from sketchapp.core.engines import REGISTRY, model_kind
        from sketchapp.core.presets import find_preset, installed_presets, save_user_preset

        try:
            kind = model_kind(job["model"])
        except SketchAppError as exc:
            self.preset_failed.emit(f"cannot save the preset: {exc}")
            return
        settings = REGISTRY[kind].settings()
        if job.get("base_preset"):
            try:
                base = find_preset(job["base_preset"], installed_presets()[0])
                if base.engine == kind:  # a fine-tune keeps its base preset's settings
                    settings = base.settings
            except SketchAppError:
                pass  # the base preset was removed meanwhile: the engine defaults serve
        try:
            preset = save_user_preset(
                job["name"], job["model"], job.get("style", "unknown"), settings, job.get("thumbnail"),
                job.get("description", ""),
            )
        except SketchAppError as exc:
            self.preset_failed.emit(str(exc))
            return
        if job.get("run"):
            from sketchapp.core.runs import mark_preset

            mark_preset(job["run"], preset.id)
        self.preset_saved.emit({"id": preset.id, "name": preset.name})

    def _do_train(self, job: tuple[dict[str, Any], CancelToken, int]) -> None:
        from sketchapp.core.data.datasets import load_spec
        from sketchapp.core.device import configure_cpu_threads, select_device
        from sketchapp.core.engines import check_data, engine_spec, resumed_training
        from sketchapp.core.runs import read_losses
        from sketchapp.core.trainer import TrainingError

        spec_job, cancel, number = job
        with self._lock:
            self._last_started = number
            self._running = True
            self._running_cancel = cancel
        run = str(spec_job["run"])
        try:
            device = select_device(spec_job.get("device", "auto"))
            if device.type == "cpu":
                configure_cpu_threads()
            resume = bool(spec_job.get("resume"))
            history: list[dict[str, float]] = []
            if resume:
                engine, settings, recorded = resumed_training(run, int(spec_job["epochs"]) if spec_job.get("epochs") else None)
                if "spec" not in (recorded.get("data") or {}):
                    raise TrainingError(f"{run}: this run does not record where its pictures are; "
                                        f"continue it from a terminal with: sketchapp train {run} --resume")
                spec = recorded["data"]["spec"]
                base_preset = recorded["data"].get("base_preset")
                history = read_losses(run)
                base_model = None
            else:
                spec = dict(spec_job["spec"])
                base_preset = spec_job.get("base_preset")
                base_model = spec_job.get("base_model")
                engine = engine_spec(self._kind(spec_job))
                settings = self._settings(spec_job)
            pairs = load_spec(spec, settings.size, lambda done, total: self.loading.emit(number, done, total), cancel)
            check_data(engine, pairs)
            style = pairs.info.get("sketch_style", spec.get("style", "unknown"))
            record = {**pairs.info, "spec": spec, "base_preset": base_preset}
            events = engine.train(run, pairs, settings, device, cancel, resume, base_model, record)
            unused = getattr(settings, "unused_losses", frozenset())
            labels = {name: label for name, label in engine.loss_labels.items() if name not in unused}
            last = self._drive(events, cancel, device.type, run, history, number, engine, labels)
            if last is None or last.kind == "cancelled":
                step = last.step if last is not None else 0
                steps = last.steps if last is not None else 0
                self._end({"job": number, "status": "cancelled", "run": run, "step": step, "steps": steps,
                                 "message": f"Stopped and saved at step {step} of {steps}; it can be resumed."})
                return
            # the new model's completions of the data's own sketches: what the preset will give
            thumbnails = engine.thumbnails(last.model, 8, sketches=pairs.sketches) if last.model is not None else None
            source = spec.get("folder") or spec.get("images") or spec.get("pictures") or run
            self._end({
                "job": number, "status": "done", "run": run, "model": last.message, "style": style, "engine": engine.kind,
                "base_preset": base_preset, "source": str(source), "count": len(pairs),
                "thumbnails": thumbnails, "step": last.step, "steps": last.steps, "elapsed": last.elapsed,
                "message": f"Finished {last.steps} steps in {_duration(last.elapsed)}.",
            })
        except SketchAppError as exc:
            if cancel.cancelled:
                self._end({"job": number, "status": "cancelled", "run": run,
                                 "message": f"Stopped before the training began ({exc})."})
            else:
                self._end({"job": number, "status": "failed", "run": run, "message": str(exc)})
        finally:
            self._idle()

    def _idle(self) -> None:
        with self._lock:
            self._running = False
            self.training = "train" in self._jobs

    def _end(self, result: dict[str, Any]) -> None:
        """Report the job's end; ``training`` already says whether another waits, for whoever reacts to it."""
        self._idle()
        self.ended.emit(result)

    def _drive(
        self, events: Any, cancel: CancelToken, device_type: str, run: str, history: list[dict[str, float]], number: int,
        engine: Any, labels: dict[str, str],
    ) -> Any:
        """Pull training steps of ``engine`` (its registry entry), reporting at most every PROGRESS_INTERVAL;
        hold while paused or drawing. ``labels``: the losses to plot, with their labels.

        Returns the last TrainEvent ("done" or "cancelled"), None if there was none.
        """
        last = None
        rows: list[dict[str, float]] = []
        last_report = 0.0
        working = 0.0  # seconds spent stepping (holds excluded): the rate behind the ETA
        steps_done = 0
        first_step: int | None = None
        while True:
            began = time.perf_counter()
            event = next(events, None)
            if event is None:
                return last
            working += time.perf_counter() - began
            last = event
            if event.kind == "start":
                first_step = event.step
                working = 0.0  # reading and building were not steps
                self.started.emit({"job": number, "run": run, "message": event.message, "history": history,
                                   "losses": list(engine.loss_names), "loss_labels": labels,
                                   "sample_columns": engine.sample_columns,
                                   "step": event.step, "steps": event.steps})
                continue
            if event.kind in ("step", "encoder"):
                steps_done = event.step - (first_step or 0)
                rows.append({"step": float(event.step), "encoder": float(event.phase == "encoder"), **event.losses})
            if event.kind == "epoch" and event.sample is not None:
                self._emit_sample(number, event.sample)
            if event.kind in ("done", "cancelled"):
                self._report(event, rows, None, "")
                return event
            eta = working / steps_done * (event.steps - event.step) if steps_done else None
            now = time.perf_counter()
            if now - last_report >= PROGRESS_INTERVAL or event.kind == "epoch":
                self._report(event, rows, eta, "")
                rows = []
                last_report = now
            self._hold(cancel, device_type, event, eta)

    def _hold(self, cancel: CancelToken, device_type: str, event: Any, eta: float | None) -> None:
        """Wait while paused, or while a completion runs on the CPU, saying so when it starts and ends."""
        held = ""
        while not cancel.cancelled:
            if self._paused.is_set():
                reason = "paused"
            elif device_type == "cpu" and self.completion_busy():
                reason = "yielding"
            else:
                break
            if reason != held:
                held = reason
                self._report(event, [], eta, held)
            time.sleep(0.03)
        if held:
            self._report(event, [], eta, "")

    def _emit_sample(self, number: int, path: Any) -> None:
        """The epoch's sample grid, read through the core's door (a run folder may have been edited)."""
        from sketchapp.core.errors import SketchAppError
        from sketchapp.core.images import load_image

        try:
            self.sample.emit(number, str(path), load_image(path, "RGB"))
        except SketchAppError:
            return  # the grid is a view of the run, not the run: training goes on without it

    def _report(self, event: Any, rows: list[dict[str, float]], eta: float | None, held: str) -> None:
        self.progress.emit({
            "job": self._last_started, "step": event.step, "steps": event.steps, "epoch": event.epoch, "epochs": event.epochs,
            "phase": event.phase, "elapsed": event.elapsed, "eta": eta, "rows": rows, "held": held,
        })


def _duration(seconds: float) -> str:
    seconds = int(seconds)
    hours, rest = divmod(seconds, 3600)
    if hours:
        return f"{hours} h {rest // 60:02d} min"
    return f"{rest // 60} min {rest % 60:02d} s" if rest >= 60 else f"{rest} s"


class TrainingThread:
    """A TrainingWorker in its own QThread; stopping saves a running training first."""

    def __init__(self, completion_busy: Callable[[], bool] | None = None) -> None:
        self.thread = QThread()
        self.thread.setObjectName("training")
        self.worker = TrainingWorker(completion_busy)
        self.worker.moveToThread(self.thread)
        self.thread.start()
        self.stopped = False

    def stop(self) -> None:
        """Cancel whatever runs (a training saves its state, so it can be resumed) and end the thread."""
        if self.stopped:
            return
        self.stopped = True
        self.worker.shutdown()
        self.thread.quit()
        self.thread.wait()

