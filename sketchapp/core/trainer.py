"""The one training loop for engine recipes, as a generator of TrainEvents.

A recipe (``Recipe``) holds what is particular to an engine: its settings, networks,
optimisers, loss names, one training step and its sample pictures. ``train_recipe``
does the rest, the same for every engine: the run folder (settings, splits, exact
state, the usable model, ``losses.csv`` with the recipe's own loss names, a sample grid
per epoch, ``--keep-every`` models), resume, saves every epoch and every few minutes,
cancellation, torchrun (DistributedDataParallel) and weight averaging.

Every random draw of a step comes from generators seeded by (seed, step, rank), so a
run resumed from its state continues exactly as if it had never stopped.
"""

from __future__ import annotations

import bisect
import contextlib
import copy
import csv
import io
import itertools
import json
import os
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import torch
import torch.distributed as dist
from safetensors import SafetensorError
from safetensors.torch import load as st_load
from safetensors.torch import save as st_save
from torch import nn

from sketchapp import __version__
from sketchapp.core.checkpoint import save_checkpoint
from sketchapp.core.data.datasets import PairSet, UnpairedSet, split_names
from sketchapp.core.engine import CancelToken
from sketchapp.core.errors import SketchAppError
from sketchapp.core.fileio import parse_json, read_json, read_user_file, write_bytes_atomic
from sketchapp.core.images import save_image
from sketchapp.core.prepare import typical_stroke_width

STATE_FILE = "state.safetensors"
MODEL_FILE = "model.safetensors"
SETTINGS_FILE = "settings.json"
SPLITS_FILE = "splits.json"
LOSSES_FILE = "losses.csv"
SAMPLES_DIR = "samples"
EPOCHS_DIR = "epochs"
STATE_FORMAT = "sketchapp.training-state"


class TrainingError(SketchAppError):
    """Training cannot start or continue (bad settings, mismatched resume, no data)."""


@dataclass
class TrainEvent:
    kind: str  # "start", "step", "epoch", "saved", "done", "cancelled", or a later phase's name ("encoder")
    step: int  # optimiser steps completed (all phases)
    steps: int  # total steps of the run
    epoch: int
    epochs: int
    phase: str  # the recipe's phase ("train" for pix2pix; "gan" or "encoder" for the contextual GAN)
    losses: dict[str, float] = field(default_factory=dict)
    elapsed: float = 0.0  # seconds of training in this run, resumed runs included
    eta: float | None = None
    sample: Path | None = None
    message: str = ""
    model: Any = field(default=None, repr=False)  # on "done": the trained networks (the engine's model)


# -- distributed -----------------------------------------------------------------------


def distributed_world() -> tuple[int, int]:
    """(rank, world size) under torchrun, (0, 1) otherwise."""
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def init_distributed(device: torch.device) -> tuple[int, int]:
    """Join the process group torchrun describes in the environment (no-op without it)."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1 or not dist.is_available():
        return 0, 1
    if not dist.is_initialized():
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    return dist.get_rank(), dist.get_world_size()


def _agree(stop: bool, save_due: bool, world: int) -> tuple[bool, bool]:
    """(stop, save now), agreed by every process, so they all stop or save at the same step.

    A timed save or a Ctrl-C seen by one rank alone would put the ranks' collectives
    out of step; one all-reduce per step keeps them together.
    """
    if world <= 1:
        return stop, save_due
    flags = torch.tensor([float(stop), float(save_due)])
    if dist.get_backend() == "nccl":
        flags = flags.cuda()
    dist.all_reduce(flags, op=dist.ReduceOp.MAX)
    return bool(flags[0].item() > 0), bool(flags[1].item() > 0)


def _barrier(world: int) -> None:
    if world > 1:
        dist.barrier()


# -- state files -----------------------------------------------------------------------


def _flatten_optimizer(prefix: str, optimizer: torch.optim.Optimizer, tensors: dict[str, torch.Tensor]) -> list[Any]:
    state = optimizer.state_dict()
    for index, values in state["state"].items():
        for key, value in values.items():
            tensors[f"{prefix}.{index}.{key}"] = torch.as_tensor(value).detach().cpu().contiguous()
    return json.loads(json.dumps(state["param_groups"]))


def _restore_optimizer(
    prefix: str, optimizer: torch.optim.Optimizer, groups: list[Any], tensors: dict[str, torch.Tensor]
) -> None:
    state: dict[int, dict[str, torch.Tensor]] = {}
    for key, value in tensors.items():
        head, _, rest = key.partition(".")
        if head != prefix:
            continue
        index, _, name = rest.partition(".")
        state.setdefault(int(index), {})[name] = value
    optimizer.load_state_dict({"state": state, "param_groups": groups})


def _module_tensors(modules: dict[str, nn.Module], tensors: dict[str, torch.Tensor]) -> None:
    for prefix, module in modules.items():
        for name, value in module.state_dict().items():
            tensors[f"{prefix}.{name}"] = value.detach().cpu().contiguous()


def read_state(path: Path) -> tuple[dict[str, Any], dict[str, torch.Tensor]]:
    data = read_user_file(path, TrainingError, "training state")
    try:
        tensors = st_load(data)
        size = int.from_bytes(data[:8], "little")
        header = parse_json(data[8 : 8 + size], TrainingError, f"{path}: training state header")
        meta = parse_json(header["__metadata__"]["sketchapp"], TrainingError, f"{path}: training state record")
    except (SafetensorError, ValueError, KeyError, TypeError, RuntimeError) as exc:
        raise TrainingError(f"{path}: training state is damaged ({exc})") from exc
    if not isinstance(meta, dict) or meta.get("format") != STATE_FORMAT:
        raise TrainingError(f"{path}: not a SketchApp training state")
    return meta, tensors


def _prefixed(prefix: str, tensors: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    return {k.partition(".")[2]: v for k, v in tensors.items() if k.partition(".")[0] == prefix}


# -- weight averaging ------------------------------------------------------------------


class WeightAverage:
    """An exponential moving average of a network's weights and batch-norm statistics.

    A GAN's generator wanders around a good solution from step to step; the average of
    its recent weights draws cleaner pictures than any one of them (Karras et al. 2018,
    Yazici et al. 2019). The decay ramps up from 0.1 towards ``decay`` (as
    TensorFlow's ExponentialMovingAverage with num_updates), so a short fine-tune
    averages its own steps rather than staying near the model it started from.
    """

    def __init__(self, module: nn.Module, decay: float, updates: int = 0) -> None:
        self.module = copy.deepcopy(module).eval().requires_grad_(False)
        self.decay = decay
        self.updates = updates

    def rate(self) -> float:
        """How far the next update moves the average towards the trained weights."""
        return 1 - min(self.decay, (1 + self.updates) / (10 + self.updates))

    @torch.no_grad()
    def update(self, trained: nn.Module) -> None:
        rate = self.rate()
        mine, theirs = self.module.state_dict(), trained.state_dict()
        floats = [key for key, value in mine.items() if value.is_floating_point()]
        torch._foreach_lerp_([mine[k] for k in floats], [theirs[k].detach() for k in floats], rate)
        for key, value in mine.items():
            if not value.is_floating_point():
                value.copy_(theirs[key])
        self.updates += 1


# -- the run folder --------------------------------------------------------------------


def _step_generator(seed: int, step: int) -> torch.Generator:
    return torch.Generator().manual_seed((seed * 1_000_003 + step) % (2**63))


def epoch_order(count: int, seed: int, epoch: int) -> torch.Tensor:
    """The order an epoch visits ``count`` training pairs in: drawn from the seed and the epoch alone."""
    return torch.randperm(count, generator=torch.Generator().manual_seed((seed * 7919 + epoch) % 2**63))


class RunFolder:
    """Paths and the rank-0-only writers of one run folder."""

    def __init__(self, folder: Path, rank: int, columns: tuple[str, ...]) -> None:
        self.folder = folder
        self.rank = rank
        self.columns = columns

    def path(self, name: str) -> Path:
        return self.folder / name

    def remove_stale_temps(self) -> int:
        """Delete the temp files of saves a kill interrupted (``.NAME.XXXX.tmp``, atomic_write's); how many."""
        if self.rank != 0:
            return 0
        removed = 0
        for folder in (self.folder, self.folder / SAMPLES_DIR, self.folder / EPOCHS_DIR):
            if folder.is_dir():
                for stale in folder.glob(".*.tmp"):
                    with contextlib.suppress(OSError):
                        stale.unlink()
                        removed += 1
        return removed

    def write_json(self, name: str, data: Any) -> None:
        if self.rank == 0:
            write_bytes_atomic(self.path(name), json.dumps(data, indent=1).encode("utf-8"))

    def append_losses(self, rows: list[dict[str, Any]]) -> None:
        if self.rank != 0 or not rows:
            return
        path = self.path(LOSSES_FILE)
        new = not path.exists()
        with open(path, "a", newline="", encoding="utf-8") as handle:
            writer = csv.DictWriter(handle, fieldnames=self.columns)
            if new:
                writer.writeheader()
            writer.writerows(rows)
            handle.flush()
            os.fsync(handle.fileno())

    def truncate_losses(self, step: int) -> None:
        """Drop rows past ``step`` (written after the last saved state, before a kill)."""
        path = self.path(LOSSES_FILE)
        if self.rank != 0 or not path.exists():
            return
        try:
            with open(path, newline="", encoding="utf-8") as handle:
                rows = [row for row in csv.DictReader(handle) if int(row["step"]) <= step]
        except (ValueError, KeyError, TypeError, csv.Error, UnicodeDecodeError) as exc:
            raise TrainingError(f"{path}: damaged ({type(exc).__name__}: {exc})"[:300]) from None
        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, fieldnames=self.columns, lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
        write_bytes_atomic(path, buffer.getvalue().encode("utf-8"))


def resume_record(run_dir: str | os.PathLike[str]) -> dict[str, Any]:
    """settings.json of a run folder: what ``--resume`` needs to reload the same data."""
    path = Path(run_dir) / SETTINGS_FILE
    if not path.exists():
        raise TrainingError(f"{run_dir}: not a training run folder (no {SETTINGS_FILE})")
    record = read_json(path, TrainingError, "run record")
    if not isinstance(record, dict):
        raise TrainingError(f"{path}: damaged (not a JSON object)")
    data = record.get("data")
    for field, value in (("settings", record.get("settings")), ("data", data),
                         ("data.spec", data.get("spec") if isinstance(data, dict) else None)):
        if not isinstance(value, dict):
            raise TrainingError(f"{path}: damaged ({field} is {'missing' if value is None else 'not a JSON object'})")
    return record


#: Columns every recipe's ``losses.csv`` starts and ends with; its own loss names go between.
HEAD_COLUMNS = ("step", "phase", "epoch")
TAIL_COLUMNS = ("seconds",)


class Recipe(Protocol):
    """What an engine supplies to ``train_recipe``."""

    kind: str
    settings: Any  # a frozen dataclass: size, epochs, batch_size, seed, ema, checkpoint_minutes, keep_every, to_dict()
    loss_names: tuple[str, ...]  # the losses.csv columns it fills (a step may report more)

    def networks(self) -> dict[str, nn.Module]:
        """The trained networks by prefix ("G", "D", ...), as saved in the state."""
        ...

    def optimizers(self) -> dict[str, torch.optim.Optimizer]: ...

    def phases(self, steps_per_epoch: int) -> list[tuple[str, int]]:
        """(name, steps) of each phase in order; the first is counted in epochs (samples, saves, kept models)."""
        ...

    def averaged(self, first_phase: bool) -> tuple[str, ...]:
        """Which networks are averaged when ``settings.ema`` > 0 (what the user gets), in the first phase or after."""
        ...

    def fit_batch(self, device: torch.device) -> int:
        """The largest batch that fits ``device`` (for a batch size of 0)."""
        ...

    def fine_tune(self, init_from: str | os.PathLike[str]) -> None:
        """Start from a trained model's weights (refusing one of another engine or architecture)."""
        ...

    def distribute(self, wrap: Any) -> None:
        """Wrap the networks a step runs through with ``wrap`` (DistributedDataParallel)."""
        ...

    def set_data(self, pairs: PairSet, device: torch.device) -> None: ...

    def begin_phase(self, phase: str, averages: dict[str, WeightAverage]) -> None:
        """Set up ``phase`` (also when a resumed run starts inside it); may take over an average."""
        ...

    def end_training(self) -> None:
        """Undo what the phases changed on the networks (frozen weights), however the run ends."""
        ...

    def step(
        self, phase: str, indices: torch.Tensor | None, rng: torch.Generator, share: tuple[int, int], device: torch.device,
    ) -> dict[str, float]:
        """One optimiser step. In the first phase ``indices`` are the training pairs of the whole
        global batch (this process takes ``[rank::world]``); later phases draw their own from ``rng``."""
        ...

    def exported(self, networks: dict[str, nn.Module], metadata: dict[str, Any]) -> Any:
        """The model a user gets (a checkpointable object), from ``networks`` (averaged where averaged)."""
        ...

    def samples(self, model: Any) -> np.ndarray:
        """A picture of what the model does now, on fixed inputs (a sample grid)."""
        ...


class OnePhaseRecipe:
    """What a recipe of one phase counted in epochs shares (pix2pix, CycleGAN, the upscaler): its networks
    are its model's, its optimisers are ``self._optimizers``, its batch is the settings' own, and nothing is
    set up between phases or frozen along the way. A recipe overrides what differs."""

    model: Any
    settings: Any
    _optimizers: dict[str, torch.optim.Optimizer]

    def networks(self) -> dict[str, nn.Module]:
        return self.model.modules()

    def optimizers(self) -> dict[str, torch.optim.Optimizer]:
        return self._optimizers

    def phases(self, steps_per_epoch: int) -> list[tuple[str, int]]:
        return [("train", steps_per_epoch * self.settings.epochs)]

    def fit_batch(self, device: torch.device) -> int:
        return self.settings.batch_size

    def begin_phase(self, phase: str, averages: dict[str, Any]) -> None:
        """One phase, nothing to set up."""

    def end_training(self) -> None:
        """Nothing is frozen along the way."""


def base_model(path: str | os.PathLike[str], kind: str, build: Callable[[str, dict[str, Any], dict[str, torch.Tensor]], Any]) -> Any:
    """The model a fine-tune of engine ``kind`` starts from: ``path`` read and built by that engine's ``build``
    (on the CPU, in eval mode); a file made for another engine is a TrainingError."""
    from sketchapp.core.checkpoint import read_checkpoint

    name = Path(path).name
    metadata, tensors = read_checkpoint(path)
    made_for = metadata.get("engine")
    if made_for != kind:
        shown = f"the {str(made_for)[:40]!r} engine" if made_for else "an engine of an older version"
        raise TrainingError(f"{name}: made for {shown}; fine-tuning {kind} needs a {kind} model")
    return build(name, metadata, tensors).eval()


def inherited_settings(base: str | os.PathLike[str], kind: str, recipe_fields: tuple[str, ...]) -> dict[str, Any]:
    """What a fine-tune of the ``kind`` model ``base`` keeps: its architecture and the ``recipe_fields`` of
    the training that made it; a model of another engine is a TrainingError."""
    from sketchapp.core.checkpoint import read_metadata

    metadata = read_metadata(base)
    if metadata.get("engine") != kind:
        raise TrainingError(f"{Path(base).name}: a {str(metadata.get('engine'))[:40]!r} model cannot start a {kind} training")
    architecture = metadata.get("architecture")
    trained = (metadata.get("training") or {}).get("settings")
    inherited = {k: v for k, v in (trained if isinstance(trained, dict) else {}).items() if k in recipe_fields}
    inherited.update(architecture if isinstance(architecture, dict) else {})
    return inherited


def loss_columns(recipe: Recipe) -> tuple[str, ...]:
    return (*HEAD_COLUMNS, *recipe.loss_names, *TAIL_COLUMNS)


def learning_rate(settings: Any, step: int, steps_per_epoch: int) -> float:
    """The rate of ``step`` for settings with ``decay_epochs`` > 0: ``settings.lr``, falling linearly to zero over the last ``decay_epochs`` epochs."""
    decay = settings.decay_epochs * steps_per_epoch
    left = settings.epochs * steps_per_epoch - step
    return settings.lr * min(1.0, left / decay)


def _described(data: PairSet | UnpairedSet) -> str:
    if isinstance(data, UnpairedSet):
        return f"{len(data.names_a)} sketches and {len(data.names_b)} pictures without pairs"
    return f"{len(data)} training pairs"



def _restore(
    meta: dict[str, Any], tensors: dict[str, torch.Tensor], networks: dict[str, nn.Module],
    optimizers: dict[str, torch.optim.Optimizer], averages: dict[str, WeightAverage], settings: Any,
    steps_per_epoch: int, epoch_steps: int, device: torch.device, folder: Path,
) -> tuple[int, float]:
    """Load a saved state into the networks, optimisers and ``averages``; (the step it continues from,
    seconds trained before). KeyError, ValueError, TypeError or RuntimeError where the state is damaged."""
    for prefix, module in networks.items():
        module.load_state_dict(_prefixed(prefix, tensors))
    for name, opt in optimizers.items():
        _restore_optimizer(f"opt{name}", opt, meta["optimizer_groups"][name], tensors)
    if int(meta["steps_per_epoch"]) != steps_per_epoch:
        raise TrainingError(
            f"{folder}: the data changed since this run started "
            f"({meta['steps_per_epoch']} steps per epoch then, {steps_per_epoch} now)"
        )
    recorded_threads = meta.get("threads")
    if device.type == "cpu" and type(recorded_threads) is int and 1 <= recorded_threads <= 4096:
        torch.set_num_threads(recorded_threads)  # the same thread count, or a resumed run is not exact
    start_step = int(meta["step"])
    finished = int(meta.get("epoch_steps", meta.get("gan_steps", epoch_steps)))
    if start_step > finished and epoch_steps > finished:
        start_step = finished  # more epochs: back to the first phase, and the later ones follow it again
    if start_step < 0:
        raise ValueError(f"step {start_step}")
    elapsed_before = float(meta.get("elapsed", 0.0))
    for name, updates in (meta.get("ema_updates") or {}).items():
        averages[name] = WeightAverage(networks[name], settings.ema, int(updates))
        averages[name].module.load_state_dict(_prefixed(f"ema{name}", tensors))
    return start_step, elapsed_before

def train_recipe(
    run_dir: str | os.PathLike[str],
    recipe: Recipe,
    pairs: PairSet | UnpairedSet,
    device: torch.device | str = "cpu",
    cancel: CancelToken | None = None,
    resume: bool = False,
    init_from: str | os.PathLike[str] | None = None,
    data_record: dict[str, Any] | None = None,
    splits: dict[str, list[str]] | None = None,
) -> Iterator[TrainEvent]:
    """Train ``recipe`` on ``pairs`` (their train split), streaming TrainEvents.

    resume=True continues the state saved in ``run_dir``: the recipe must have been
    made from that run's settings (``epochs`` may be raised). ``init_from`` fine-tunes
    from a trained model. ``data_record`` describes the data so a resume can reload it.
    """
    device = torch.device(device)
    folder = Path(run_dir)
    rank, world = distributed_world()
    run = RunFolder(folder, rank, loss_columns(recipe))
    stale = run.remove_stale_temps()  # what kills during earlier saves left
    cancel = cancel or CancelToken()
    settings = recipe.settings
    state_meta: dict[str, Any] | None = None
    state_tensors: dict[str, torch.Tensor] = {}
    if resume:
        if not run.path(STATE_FILE).exists():
            raise TrainingError(f"{folder}: nothing to resume (no {STATE_FILE})")
        state_meta, state_tensors = read_state(run.path(STATE_FILE))
        from sketchapp.core.engines.kinds import recorded_kind

        if recorded_kind(state_meta) != recipe.kind:
            raise TrainingError(f"{folder}: this run trains the {str(recorded_kind(state_meta))[:40]!r} engine, not {recipe.kind!r}")
        splits = read_json(run.path(SPLITS_FILE), TrainingError, "run record")
        if not isinstance(splits, dict) or not all(
            isinstance(splits.get(part), list) and all(isinstance(name, str) for name in splits[part]) for part in ("train", "val", "test")
        ):
            raise TrainingError(f"{run.path(SPLITS_FILE)}: damaged (train, val and test must be lists of names)")
    elif run.path(STATE_FILE).exists():
        raise TrainingError(f"{folder}: already holds a training run; resume it or choose another folder")
    if splits is None:
        splits = pairs.splits or split_names(pairs.names, seed=settings.seed)
    train_pairs = pairs.subset(splits["train"])
    if len(train_pairs) == 0:
        raise TrainingError("the training split is empty: the data set needs at least one usable pair")
    if train_pairs.size != settings.size:
        raise TrainingError(f"data is {train_pairs.size} px but the model is {settings.size} px")
    if init_from is not None and state_meta is None:
        recipe.fine_tune(init_from)
    networks = recipe.networks()
    for module in networks.values():
        module.to(device).train()
    optimizers = recipe.optimizers()

    if settings.batch_size == 0:
        batch_size = recipe.fit_batch(device)
        if world > 1:  # every process must use the same batch: the smallest that fits everywhere
            agreed = torch.tensor([batch_size], device=device if device.type == "cuda" else "cpu")
            dist.all_reduce(agreed, op=dist.ReduceOp.MIN)
            batch_size = int(agreed.item())
        settings = recipe.settings = replace(settings, batch_size=batch_size)
    batch = min(settings.batch_size, len(train_pairs))
    if batch % world:
        batch = max(world, batch - batch % world)
    steps_per_epoch = max(1, len(train_pairs) // batch)
    phases = recipe.phases(steps_per_epoch)
    epoch_steps = phases[0][1]
    total_steps = sum(steps for _, steps in phases)
    ends = list(itertools.accumulate(steps for _, steps in phases))
    start_step = 0
    elapsed_before = 0.0
    averages: dict[str, WeightAverage] = {}
    if state_meta is not None:
        try:
            start_step, elapsed_before = _restore(state_meta, state_tensors, networks, optimizers, averages, settings,
                                                  steps_per_epoch, epoch_steps, device, folder)
        except (KeyError, ValueError, TypeError, RuntimeError, AttributeError, IndexError) as exc:
            what = f"no {exc}" if isinstance(exc, KeyError) else f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
            raise TrainingError(f"{folder / STATE_FILE}: training state is damaged ({what})"[:300]) from None
        run.truncate_losses(start_step)
    if settings.ema > 0:
        for name in recipe.averaged(start_step < epoch_steps):
            averages.setdefault(name, WeightAverage(networks[name], settings.ema))
    if state_meta is None:
        if rank == 0:
            folder.mkdir(parents=True, exist_ok=True)
            (folder / SAMPLES_DIR).mkdir(exist_ok=True)
        run.write_json(SETTINGS_FILE, {
            "engine": recipe.kind, "settings": settings.to_dict(), "data": data_record or pairs.info,
            "app_version": __version__,
        })
        run.write_json(SPLITS_FILE, splits)
    _barrier(world)
    if world > 1:
        from torch.nn.parallel import DistributedDataParallel as DDP

        ids = [device.index] if device.type == "cuda" else None
        recipe.distribute(lambda module: DDP(module, device_ids=ids))
    recipe.set_data(train_pairs, device)
    data = data_record or pairs.info
    record_base: dict[str, Any] = {
        "engine": recipe.kind,
        "settings": settings.to_dict(),
        "data": data,
        "steps_per_epoch": steps_per_epoch,
        "epoch_steps": epoch_steps,
        "total_steps": total_steps,
        "world_size": world,
        "threads": torch.get_num_threads() if device.type == "cpu" else None,
        # what completion thickens a drawing's thinner lines to (prepare.match_stroke_width)
        "sketch_line_width": typical_stroke_width(train_pairs.sketches),
    }
    clock = time.monotonic()
    last_save = clock
    pending: list[dict[str, Any]] = []
    step = start_step
    exported: list[Any] = [None]  # the model last written, with the record its file holds

    def elapsed() -> float:
        return elapsed_before + time.monotonic() - clock

    def eta() -> float | None:
        done = step - start_step
        return None if done <= 0 else (time.monotonic() - clock) / done * (total_steps - step)

    def epoch_of(at: int) -> int:
        return min(settings.epochs, at // steps_per_epoch)

    def phase_at(at: int) -> int:
        return min(bisect.bisect_right(ends, at), len(phases) - 1)

    def shown() -> Any:
        """The model a user gets: averaged networks where weights are averaged."""
        chosen = {name: averages[name].module if name in averages else module for name, module in networks.items()}
        return recipe.exported(chosen, {
            "sketch_style": data.get("sketch_style", "unknown"),
            "sketch_line_width": record_base["sketch_line_width"],
            "data": {k: data[k] for k in ("name", "kind", "licence", "attribution", "source", "size", "count") if k in data},
            "training": {
                "settings": settings.to_dict(), "step": step, "steps": total_steps,
                "seconds": round(elapsed(), 1), "device": device.type, "world_size": world,
            },
        })

    def export(path: Path) -> None:
        model = shown()
        save_checkpoint(path, model, half_precision=True)
        exported[0] = model

    def save(kind: str) -> TrainEvent:
        nonlocal last_save, pending
        run.append_losses(pending)
        pending = []
        if rank == 0:
            tensors: dict[str, torch.Tensor] = {}
            _module_tensors({**networks, **{f"ema{n}": a.module for n, a in averages.items()}}, tensors)
            groups = {name: _flatten_optimizer(f"opt{name}", opt, tensors) for name, opt in optimizers.items()}
            meta = {
                **record_base, "step": step, "elapsed": elapsed(), "format": STATE_FORMAT, "optimizer_groups": groups,
                "ema_updates": {name: average.updates for name, average in averages.items()},
            }
            write_bytes_atomic(run.path(STATE_FILE), st_save(tensors, metadata={"sketchapp": json.dumps(meta)}))
            export(run.path(MODEL_FILE))
        _barrier(world)
        last_save = time.monotonic()
        return TrainEvent(kind, step, total_steps, epoch_of(step), settings.epochs, phases[phase_at(step)][0], elapsed=elapsed())

    yield TrainEvent(
        "start", step, total_steps, epoch_of(step), settings.epochs, phases[phase_at(step)][0], elapsed=elapsed(),
        message=f"{_described(train_pairs)}, batch {batch}, {steps_per_epoch} steps per epoch"
        + (f", {world} processes" if world > 1 else "")
        + (f", on {torch.get_num_threads()} threads as when it started" if state_meta is not None and device.type == "cpu" else "")
        + (f"; removed {stale} unfinished save{'s' if stale != 1 else ''} of an earlier kill" if stale else ""),
    )
    current = -1
    try:
        while step < total_steps:
            stop, due = _agree(cancel.cancelled, time.monotonic() - last_save > settings.checkpoint_minutes * 60, world)
            if stop:
                yield save("cancelled")
                return
            if due:
                yield save("saved")
            index = phase_at(step)
            phase = phases[index][0]
            if index != current:
                recipe.begin_phase(phase, averages)
                current = index
            first = index == 0
            epoch, within = divmod(step, steps_per_epoch)
            indices = None
            if first:
                indices = epoch_order(len(train_pairs), settings.seed, epoch)[within * batch : (within + 1) * batch]
            if first and getattr(settings, "decay_epochs", 0):
                rate = learning_rate(settings, step, steps_per_epoch)
                for opt in optimizers.values():
                    for group in opt.param_groups:
                        group["lr"] = rate
            torch.manual_seed((settings.seed * 1_000_003 + step * 131 + rank) % 2**63)  # dropout: exact on resume
            losses = recipe.step(phase, indices, _step_generator(settings.seed + index, step), (rank, world), device)
            if first:
                for name, average in averages.items():
                    average.update(networks[name])
            step += 1
            shown_epoch = epoch + 1 if first else settings.epochs
            pending.append({
                "step": step, "phase": phase, "epoch": shown_epoch,
                **{k: f"{v:.5f}" for k, v in losses.items() if k in recipe.loss_names}, "seconds": f"{elapsed():.1f}",
            })
            kind = "step" if first else phase
            yield TrainEvent(kind, step, total_steps, shown_epoch, settings.epochs, phase, losses, elapsed(), eta())
            if not first and (step - ends[index - 1]) % steps_per_epoch == 0 and step < total_steps:
                yield save("saved")  # later phases save as often as the first, not only every few minutes
            if first and step % steps_per_epoch == 0:
                done = step // steps_per_epoch
                sample = None
                if rank == 0:
                    sample = run.path(SAMPLES_DIR) / f"epoch-{done:03d}.png"
                    save_image(sample, recipe.samples(shown()))
                save("saved")
                if rank == 0 and settings.keep_every and done % settings.keep_every == 0:
                    (folder / EPOCHS_DIR).mkdir(exist_ok=True)
                    export(folder / EPOCHS_DIR / f"epoch-{done:03d}.safetensors")
                yield TrainEvent("epoch", step, total_steps, done, settings.epochs, phase, losses, elapsed(), eta(), sample)
    finally:
        recipe.end_training()
    final = save("done")
    final.message = str(run.path(MODEL_FILE))
    final.model = (exported[0] if exported[0] is not None else shown()).eval()
    yield final

