"""The completion worker: runs the engine iterator in a QThread and streams snapshots.

The GUI calls ``request``/``cancel``/``load`` directly (they only touch a lock-guarded
mailbox and the cancel token), so a new sketch never waits behind a running one: the
run in flight is cancelled within one iteration and only the newest request is taken.
Every request carries a generation number; the worker never runs an outdated one and
the GUI drops any snapshot whose generation is not current. Snapshots are emitted at
most ``max_rate`` times a second, as plain numpy copies.
"""

from __future__ import annotations

import secrets
import threading
import time
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

import numpy as np
from PySide6.QtCore import QObject, QThread, Signal, Slot

from sketchapp.contracts import LoadedModel
from sketchapp.core.device import available_cpus, configure_cpu_threads, select_device
from sketchapp.core.engine import CancelToken, Engine, Snapshot
from sketchapp.core.engines import LEGACY_KIND, REGISTRY, engine_settings, open_engine
from sketchapp.core.errors import SketchAppError


@dataclass
class Request:
    generation: int
    sketch: np.ndarray
    hints: np.ndarray | None = None
    z: np.ndarray | None = None
    settings: dict[str, Any] = field(default_factory=dict)


@dataclass
class Frame:
    """What the GUI needs of a Snapshot: copies only, no tensors."""

    generation: int
    iteration: int
    iterations: int
    phase: str
    images: np.ndarray  # (K, H, H, 3) the results
    sketches: np.ndarray | None  # (K, H, H, 3) the model's own sketches (ghost guide), where the engine draws them
    losses: np.ndarray  # (K,) total loss per candidate
    best: int
    latents: np.ndarray | None
    rate: float  # iterations per second so far
    final: bool
    settings: dict[str, Any] = field(default_factory=dict)  # the run's settings, seed included
    lines: np.ndarray | None = None  # the request's sketch as an ink layer (S, S) float32, shared by its frames
    preset: str = ""  # the name the model that drew this frame was loaded under


def frame_of(
    snapshot: Snapshot, generation: int, rate: float, settings: dict[str, Any] | None = None, preset: str = ""
) -> Frame:
    sketches = snapshot.images("sketch") if snapshot.sketches is not None else None
    return Frame(
        generation, snapshot.iteration, snapshot.iterations, snapshot.phase, snapshot.images("image"),
        sketches, np.asarray(snapshot.losses["total"]).copy(), snapshot.best, snapshot.z(), rate,
        snapshot.final, {**settings, "iterations": snapshot.iterations} if settings else {}, snapshot.lines, preset,
    )


class CompletionWorker(QObject):
    model_loaded = Signal(object)  # sketchapp.contracts.LoadedModel
    load_failed = Signal(str)
    frame = Signal(object)  # Frame
    finished = Signal(int)  # generation that ended with a final frame
    failed = Signal(int, str)
    sketched = Signal(int, object)  # ticket, the model's sketch (S, S) grey uint8 of a picture
    sketch_failed = Signal(int, str)
    styled = Signal(int, object, int, int)  # ticket, the picture so far (S, S, 3) uint8, step, steps
    style_failed = Signal(int, str)  # ticket, why ("" when a newer completion stopped it)
    _wake = Signal()

    def __init__(self, device: str = "auto", threads: int | None = None, max_rate: float = 30.0) -> None:
        super().__init__()
        self.device_preference = device
        self.threads = threads
        self.min_interval = 1.0 / max_rate
        self.engine: Engine | None = None
        self.settings: Any = REGISTRY[LEGACY_KIND].settings()  # until a model is loaded
        self.model_name = ""
        self._lock = threading.Lock()
        self._pending: Request | None = None
        self._pending_model: tuple[Path, str, Any] | None = None
        self._pending_sketch: tuple[int, np.ndarray] | None = None
        self._pending_style: tuple[int, np.ndarray, np.ndarray, float] | None = None
        self._style_cancel = CancelToken()
        self._cancel = CancelToken()
        self._latest = 0
        self._live = False  # the loaded engine is one-pass: requests coalesce, runs in flight are not cancelled
        self.busy = threading.Event()  # set while a completion runs (a training on the same CPU waits)
        self._wake.connect(self._work)

    # -- called from the GUI thread ----------------------------------------------------
    def load(self, model: str | Path, name: str, settings: Any = None) -> None:
        """Load ``model``; ``settings`` are its engine's settings (a preset's), or that engine's defaults."""
        with self._lock:
            self._pending_model = (Path(model), name, settings)
            self._cancel.cancel()
        self._wake.emit()

    def request(self, request: Request) -> None:
        """Run ``request`` next. An iterative run in flight is cancelled; a one-pass run (pix2pix) is
        left to finish, since it ends within milliseconds and its picture is the freshest there is
        while the pen moves: cancelling it for every pen event would show nothing until the pen stops."""
        with self._lock:
            self._latest = max(self._latest, request.generation)
            self._pending = request
            self._style_cancel.cancel()  # a new drawing: the picture being styled is out of date
            if not self._live:
                self._cancel.cancel()
        self._wake.emit()

    def sketch_picture(self, ticket: int, picture: np.ndarray) -> None:
        """Draw a sketch of an RGB ``picture`` with the loaded engine (CycleGAN's B -> A); ``sketched`` answers."""
        with self._lock:
            self._pending_sketch = (ticket, picture)
        self._wake.emit()

    def stylise(self, ticket: int, picture: np.ndarray, reference: np.ndarray, strength: float = 1.0) -> None:
        """Move ``picture`` (a result) toward ``reference``'s colours and textures (core.style, the preset's
        discriminator features); ``styled`` streams it. A completion asked for meanwhile stops it."""
        with self._lock:
            self._style_cancel.cancel()
            self._style_cancel = CancelToken()
            self._pending_style = (ticket, picture, reference, strength)
        self._wake.emit()

    def cancel(self) -> None:
        with self._lock:
            self._pending = None
            self._cancel.cancel()
            self._style_cancel.cancel()

    # -- the worker thread --------------------------------------------------------------
    @Slot()
    def _work(self) -> None:
        while True:
            with self._lock:
                model, self._pending_model = self._pending_model, None
                request, self._pending = self._pending, None
                sketch, self._pending_sketch = self._pending_sketch, None
                style, self._pending_style = self._pending_style, None
                style_cancel = self._style_cancel
                if model is None and request is None and sketch is None and style is None:
                    return
                self._cancel = CancelToken()
                cancel = self._cancel
            if model is not None:
                self._load(*model)
            if sketch is not None:
                self._sketch(*sketch)
            if style is not None:
                self._style(*style, style_cancel)
            if request is not None and request.generation >= self._latest:
                self.busy.set()
                try:
                    self._run(request, cancel)
                finally:
                    self.busy.clear()

    def _load(self, path: Path, name: str, settings: Any) -> None:
        try:
            device = select_device(self.device_preference)
            engine = open_engine(path, device)
            live = engine.capabilities.live
            if self.threads is None and live and device.type == "cpu":
                # A live engine runs while the pen moves: on all cores it would fight the GUI
                # thread for them, so it leaves one to the pen (see docs/benchmarks.md).
                configure_cpu_threads(max(1, available_cpus() - 1))
            else:
                configure_cpu_threads(self.threads)
            settings = engine_settings(engine.kind, settings, name)
            engine.warm_up(settings)
        except SketchAppError as exc:
            self.load_failed.emit(str(exc))
            return
        except Exception as exc:  # noqa: BLE001 - torch/CUDA errors must reach the user, not kill the thread
            self.load_failed.emit(f"{path.name}: {type(exc).__name__}: {exc}")
            return
        model = engine.model
        with self._lock:
            self.engine, self.settings, self.model_name = engine, settings, name
            self._live = live
        self.model_loaded.emit(LoadedModel(
            name, engine.kind, device.type, engine.half_size, model.sketch_style, getattr(model, "encoder", None) is not None,
            settings.ink_lines, int(getattr(settings, "candidates", 1)), engine.capabilities,
        ))

    def _sketch(self, ticket: int, picture: np.ndarray) -> None:
        engine = self.engine
        if engine is None or not engine.capabilities.sketch_of:
            self.sketch_failed.emit(ticket, "this preset's engine cannot draw a sketch from a picture (CycleGAN presets can)")
            return
        try:
            self.sketched.emit(ticket, engine.sketch_of(picture).copy())  # type: ignore[attr-defined]
        except SketchAppError as exc:
            self.sketch_failed.emit(ticket, str(exc))
        except Exception as exc:  # noqa: BLE001 - keep the worker alive
            self.sketch_failed.emit(ticket, f"sketching failed: {type(exc).__name__}: {exc}")

    def _style(self, ticket: int, picture: np.ndarray, reference: np.ndarray, strength: float, cancel: CancelToken) -> None:
        from sketchapp.core.style import StyleSettings, discriminator_features, stylise

        if self.engine is None:
            self.style_failed.emit(ticket, "no model is loaded yet")
            return
        try:
            settings = StyleSettings(strength=strength)
            features = discriminator_features(self.engine.model)
            device = getattr(self.engine, "device", "cpu")
            last = time.perf_counter()
            self.busy.set()
            for step, styled, _losses in stylise(picture, reference, features, settings, cancel, device):
                now = time.perf_counter()
                if step == settings.steps or now - last >= 0.1:
                    self.styled.emit(ticket, styled, step, settings.steps)
                    last = now
            if cancel.cancelled:
                self.style_failed.emit(ticket, "")  # stopped by a newer completion: no message, the window moves on
        except SketchAppError as exc:
            self.style_failed.emit(ticket, str(exc))
        except Exception as exc:  # noqa: BLE001 - keep the worker alive
            self.style_failed.emit(ticket, f"the style reference failed: {type(exc).__name__}: {exc}")
        finally:
            self.busy.clear()

    def _run(self, request: Request, cancel: CancelToken) -> None:
        if self.engine is None:
            self.failed.emit(request.generation, "no model is loaded yet")
            return
        try:
            # the window's settings for this run (a locked seed, a recalled result's): those this engine has
            known = {f.name for f in fields(self.settings)} - {"ink_lines"}
            settings = self.settings.updated(**{k: v for k, v in request.settings.items() if k in known})
            if settings.seed is None:  # every result can be reproduced from its PNG
                settings = settings.updated(seed=secrets.randbelow(2**31))
            record = settings.to_dict()
            # Inking is the window's view of a frame (its toggle, recorded at export): the run
            # always gives its snapshots the sketch's line layer, and frames carry the plain pictures.
            settings = settings.updated(ink_lines=True)
            began = time.perf_counter()
            last_emit = 0.0
            for snapshot in self.engine.start(request.sketch, request.hints, settings, cancel, request.z):
                now = time.perf_counter()
                if snapshot.final or now - last_emit >= self.min_interval or snapshot.phase == "init":
                    rate = snapshot.iteration / (now - began) if now > began else 0.0
                    self.frame.emit(frame_of(snapshot, request.generation, rate, record, self.model_name))
                    last_emit = now
                if snapshot.final:
                    self.finished.emit(request.generation)
        except SketchAppError as exc:
            self.failed.emit(request.generation, str(exc))
        except Exception as exc:  # noqa: BLE001 - e.g. out of GPU memory: report it, keep the worker alive
            self.failed.emit(request.generation, f"completion failed: {type(exc).__name__}: {exc}")


class CompletionThread:
    """A CompletionWorker in its own QThread, and a shutdown that never leaves it running."""

    def __init__(self, device: str = "auto", threads: int | None = None) -> None:
        self.thread = QThread()
        self.thread.setObjectName("completion")
        self.worker = CompletionWorker(device, threads)
        self.worker.moveToThread(self.thread)
        self.thread.start()
        self.stopped = False

    def stop(self, timeout_ms: int = 1000) -> bool:
        """Cancel any run and end the thread; True when it ended within the timeout.

        A run stops within one iteration. Loading a model cannot be interrupted, so if
        one is under way the wait goes on until it is done: a QThread must never be
        destroyed while it runs.
        """
        if self.stopped:  # idempotent: the app and the window may both ask
            return True
        self.stopped = True
        self.worker.cancel()
        self.thread.quit()
        if self.thread.wait(timeout_ms):
            return True
        self.thread.wait()
        return False
