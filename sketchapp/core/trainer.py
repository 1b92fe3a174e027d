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

import json
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import torch
from safetensors.torch import save as st_save
from torch import nn

from sketchapp import __version__
from sketchapp.core.checkpoint import save_checkpoint
from sketchapp.core.data.datasets import PairSet, split_names
from sketchapp.core.engine import CancelToken
from sketchapp.core.fileio import write_bytes_atomic
from sketchapp.core.images import save_image
from sketchapp.core.prepare import typical_stroke_width
from sketchapp.core.training import (
    EPOCHS_DIR,
    MODEL_FILE,
    SAMPLES_DIR,
    SETTINGS_FILE,
    SPLITS_FILE,
    STATE_FILE,
    STATE_FORMAT,
    RunFolder,
    TrainEvent,
    TrainingError,
    WeightAverage,
    _agree,
    _barrier,
    _flatten_optimizer,
    _module_tensors,
    _prefixed,
    _restore_optimizer,
    _step_generator,
    distributed_world,
    read_state,
)

#: Columns every recipe's ``losses.csv`` starts and ends with; its own loss names go between.
HEAD_COLUMNS = ("step", "phase", "epoch")
TAIL_COLUMNS = ("seconds",)


class Recipe(Protocol):
    """What an engine supplies to ``train_recipe``."""

    kind: str
    settings: Any  # a frozen dataclass: size, epochs, batch_size, seed, ema, checkpoint_minutes, keep_every, to_dict()
    loss_names: tuple[str, ...]

    def networks(self) -> dict[str, nn.Module]:
        """The trained networks by prefix ("G", "D", ...), as saved in the state."""
        ...

    def optimizers(self) -> dict[str, torch.optim.Optimizer]: ...

    def averaged(self) -> tuple[str, ...]:
        """Which networks are averaged when ``settings.ema`` > 0 (what the user gets)."""
        ...

    def fine_tune(self, init_from: str | os.PathLike[str]) -> None:
        """Start from a trained model's weights (refusing one of another engine or architecture)."""
        ...

    def distribute(self, wrap: Any) -> None:
        """Wrap the networks a step runs through with ``wrap`` (DistributedDataParallel)."""
        ...

    def set_data(self, pairs: PairSet, device: torch.device) -> None: ...

    def step(self, indices: torch.Tensor, rng: torch.Generator, share: tuple[int, int], device: torch.device) -> dict[str, float]:
        """One optimiser step on the training pairs ``indices`` (the whole global batch; this process takes ``[rank::world]``)."""
        ...

    def exported(self, networks: dict[str, nn.Module], metadata: dict[str, Any]) -> Any:
        """The model a user gets (a checkpointable object), from ``networks`` (averaged where averaged)."""
        ...

    def samples(self, model: Any) -> np.ndarray:
        """A picture of what the model does now, on fixed inputs (a sample grid)."""
        ...


def loss_columns(recipe: Recipe) -> tuple[str, ...]:
    return (*HEAD_COLUMNS, *recipe.loss_names, *TAIL_COLUMNS)


def train_recipe(
    run_dir: str | os.PathLike[str],
    recipe: Recipe,
    pairs: PairSet,
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
    cancel = cancel or CancelToken()
    settings = recipe.settings
    state_meta: dict[str, Any] | None = None
    state_tensors: dict[str, torch.Tensor] = {}
    if resume:
        if not run.path(STATE_FILE).exists():
            raise TrainingError(f"{folder}: nothing to resume (no {STATE_FILE})")
        state_meta, state_tensors = read_state(run.path(STATE_FILE))
        if state_meta.get("engine", "contextual") != recipe.kind:
            raise TrainingError(f"{folder}: this run trains the {state_meta.get('engine', 'contextual')!r} engine, not {recipe.kind!r}")
        splits = json.loads(run.path(SPLITS_FILE).read_text(encoding="utf-8"))
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

    batch = min(settings.batch_size, len(train_pairs))
    if batch % world:
        batch = max(world, batch - batch % world)
    steps_per_epoch = max(1, len(train_pairs) // batch)
    total_steps = steps_per_epoch * settings.epochs
    start_step = 0
    elapsed_before = 0.0
    if state_meta is not None:
        for prefix, module in networks.items():
            module.load_state_dict(_prefixed(prefix, state_tensors))
        for name, opt in optimizers.items():
            _restore_optimizer(f"opt{name}", opt, state_meta["optimizer_groups"][name], state_tensors)
        if int(state_meta["steps_per_epoch"]) != steps_per_epoch:
            raise TrainingError(
                f"{folder}: the data changed since this run started "
                f"({state_meta['steps_per_epoch']} steps per epoch then, {steps_per_epoch} now)"
            )
        start_step = int(state_meta["step"])
        elapsed_before = float(state_meta.get("elapsed", 0.0))
        run.truncate_losses(start_step)
    averages: dict[str, WeightAverage] = {}
    if state_meta is not None:
        for name, updates in (state_meta.get("ema_updates") or {}).items():
            averages[name] = WeightAverage(networks[name], settings.ema, int(updates))
            averages[name].module.load_state_dict(_prefixed(f"ema{name}", state_tensors))
    elif settings.ema > 0:
        averages = {name: WeightAverage(networks[name], settings.ema) for name in recipe.averaged()}
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
        "total_steps": total_steps,
        "world_size": world,
        "sketch_line_width": typical_stroke_width(train_pairs.sketches),
    }
    clock = time.monotonic()
    last_save = clock
    pending: list[dict[str, Any]] = []
    step = start_step

    def elapsed() -> float:
        return elapsed_before + time.monotonic() - clock

    def eta() -> float | None:
        done = step - start_step
        return None if done <= 0 else (time.monotonic() - clock) / done * (total_steps - step)

    def epoch_of(at: int) -> int:
        return min(settings.epochs, at // steps_per_epoch)

    def shown() -> Any:
        """The model a user gets: averaged networks where weights are averaged."""
        chosen = {name: averages[name].module if name in averages else module for name, module in networks.items()}
        return recipe.exported(chosen, {
            "sketch_style": data.get("sketch_style", "unknown"),
            "sketch_line_width": record_base["sketch_line_width"],
            "data": {k: data[k] for k in ("name", "kind", "licence", "attribution", "source", "size", "count") if k in data},
            "training": {
                "engine": recipe.kind, "settings": settings.to_dict(), "step": step, "steps": total_steps,
                "seconds": round(elapsed(), 1), "device": device.type, "world_size": world,
            },
        })

    def export(path: Path) -> None:
        save_checkpoint(path, shown(), half_precision=True)

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
        return TrainEvent(kind, step, total_steps, epoch_of(step), settings.epochs, "train", elapsed=elapsed())

    yield TrainEvent(
        "start", step, total_steps, epoch_of(step), settings.epochs, "train", elapsed=elapsed(),
        message=f"{len(train_pairs)} training pairs, batch {batch}, {steps_per_epoch} steps per epoch"
        + (f", {world} processes" if world > 1 else ""),
    )
    while step < total_steps:
        stop, due = _agree(cancel.cancelled, time.monotonic() - last_save > settings.checkpoint_minutes * 60, world)
        if stop:
            yield save("cancelled")
            return
        if due:
            yield save("saved")
        epoch, index = divmod(step, steps_per_epoch)
        order = torch.randperm(len(train_pairs), generator=torch.Generator().manual_seed((settings.seed * 7919 + epoch) % 2**63))
        indices = order[index * batch : (index + 1) * batch]
        torch.manual_seed((settings.seed * 1_000_003 + step * 131 + rank) % 2**63)  # dropout: exact on resume
        losses = recipe.step(indices, _step_generator(settings.seed, step), (rank, world), device)
        for name, average in averages.items():
            average.update(networks[name])
        step += 1
        pending.append({
            "step": step, "phase": "train", "epoch": epoch + 1, **{k: f"{v:.5f}" for k, v in losses.items()},
            "seconds": f"{elapsed():.1f}",
        })
        yield TrainEvent("step", step, total_steps, epoch + 1, settings.epochs, "train", losses, elapsed(), eta())
        if step % steps_per_epoch == 0:
            done = step // steps_per_epoch
            sample = None
            if rank == 0:
                sample = run.path(SAMPLES_DIR) / f"epoch-{done:03d}.png"
                save_image(sample, recipe.samples(shown()))
            save("saved")
            if rank == 0 and settings.keep_every and done % settings.keep_every == 0:
                (folder / EPOCHS_DIR).mkdir(exist_ok=True)
                export(folder / EPOCHS_DIR / f"epoch-{done:03d}.safetensors")
            yield TrainEvent("epoch", step, total_steps, done, settings.epochs, "train", losses, elapsed(), eta(), sample)
    final = save("done")
    final.message = str(run.path(MODEL_FILE))
    final.model = shown().eval()
    yield final

