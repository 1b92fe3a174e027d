"""What the training wizard asks about a training run before, during and after it.

Before: how long it will take, measured on a few real optimiser steps on the chosen
device. During and after: which run folders can be resumed, their loss history, and
samples from the trained model to pick a preset thumbnail from. The training itself is
``sketchapp.core.training.train``.
"""

from __future__ import annotations

import csv
import json
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch

from sketchapp.core.checkpoint import JointModel, load_model, read_file_record
from sketchapp.core.data.datasets import split_names
from sketchapp.core.engine import to_uint8
from sketchapp.core.fileio import read_json, write_bytes_atomic
from sketchapp.core.networks import JointGANConfig, sample_z
from sketchapp.core.trainer import LOSSES_FILE, MODEL_FILE, SETTINGS_FILE, STATE_FILE, STATE_FORMAT, TrainingError, WeightAverage
from sketchapp.core.training import (
    TrainSettings,
    _encoder_step,
    _gan_step,
    augment,
    auto_batch_size,
    default_encoder_steps,
)

PRESET_FILE = "preset.json"


@dataclass(frozen=True)
class TimeEstimate:
    batch_size: int
    train_pairs: int
    steps_per_epoch: int
    gan_steps: int
    encoder_steps: int
    seconds_per_step: float  # one discriminator and g_steps generator updates
    seconds_per_encoder_step: float
    device: str

    @property
    def seconds(self) -> float:
        return self.gan_steps * self.seconds_per_step + self.encoder_steps * self.seconds_per_encoder_step

    def to_dict(self) -> dict[str, Any]:
        return {
            "batch_size": self.batch_size, "train_pairs": self.train_pairs, "steps_per_epoch": self.steps_per_epoch,
            "gan_steps": self.gan_steps, "encoder_steps": self.encoder_steps,
            "seconds_per_step": self.seconds_per_step, "seconds_per_encoder_step": self.seconds_per_encoder_step,
            "seconds": self.seconds, "device": self.device,
        }


def train_share(pair_count: int, seed: int = 0) -> int:
    """How many of ``pair_count`` pairs the seeded split puts in the training part."""
    return len(split_names([str(i) for i in range(pair_count)], seed=seed)["train"])


def estimate_training(
    settings: TrainSettings, pair_count: int, device: torch.device | str = "cpu", steps: int = 3
) -> TimeEstimate:
    """Time ``steps`` real training steps (after one warm-up) at the settings' size and batch.

    The networks are new and the batch is noise: a step costs the same whatever the
    weights and pixels are. Batch size 0 is resolved as training would resolve it.
    """
    if pair_count < 1:
        raise TrainingError("there are no pairs to train on")
    device = torch.device(device)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(settings.seed)
        model = JointModel.create(settings.config).to(device)
    model.generator.train()
    model.discriminator.train()
    train_pairs = max(1, train_share(pair_count, settings.seed))
    batch = settings.batch_size or auto_batch_size(model, device)
    batch = min(batch, train_pairs)
    config = settings.config
    rng = torch.Generator().manual_seed(settings.seed)
    real = (torch.rand(batch, 3, config.half_size, 2 * config.half_size, generator=rng) * 2 - 1).to(device)
    z = sample_z(batch, config.z_dim, rng).to(device)
    betas = (settings.beta1, settings.beta2)
    opt_g = torch.optim.Adam(model.generator.parameters(), settings.lr, betas=betas)
    opt_d = torch.optim.Adam(model.discriminator.parameters(), settings.lr, betas=betas)
    redraw = model.encoder if settings.recon_weight else None
    opt_r = torch.optim.Adam(redraw.parameters(), settings.encoder_lr) if redraw is not None else None

    averaged = [model.generator] + ([redraw] if redraw is not None else [])
    averages = [(WeightAverage(m, settings.ema), m) for m in averaged] if settings.ema > 0 else []

    def gan_step() -> None:
        batch_in = augment(real, settings, rng) if settings.augment else real
        _gan_step(model.generator, model.discriminator, opt_g, opt_d, batch_in, z, settings.g_steps, redraw, opt_r,
                  settings.recon_weight, settings.judge_redrawn, settings.r1_gamma, rng if settings.diff_augment else None)
        for average, trained in averages:
            average.update(trained)

    per_step = _timed(gan_step, steps, device)
    per_encoder_step = 0.0
    encoder_steps = settings.encoder_steps if config.has_encoder else 0
    if encoder_steps and model.encoder is not None:
        encoder = model.encoder.train()
        opt_e = torch.optim.Adam(encoder.parameters(), settings.encoder_lr)
        model.generator.eval().requires_grad_(False)
        half = max(1, batch // 2)

        def encoder_step() -> None:
            with torch.no_grad():
                made = model.generator(z[:half])
            targets = torch.cat([made, real[: batch - half]])
            _encoder_step(encoder, model.generator, opt_e, targets, z[:half], config.half_size)

        per_encoder_step = _timed(encoder_step, steps, device)
    steps_per_epoch = max(1, train_pairs // batch)
    return TimeEstimate(
        batch, train_pairs, steps_per_epoch, steps_per_epoch * settings.epochs, encoder_steps, per_step,
        per_encoder_step, device.type,
    )


def _timed(step: Callable[[], None], count: int, device: torch.device) -> float:
    step()  # warm-up: allocator, kernels, thread pool
    _sync(device)
    began = time.perf_counter()
    for _ in range(max(1, count)):
        step()
    _sync(device)
    return (time.perf_counter() - began) / max(1, count)


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


# -- run folders -----------------------------------------------------------------------


@dataclass(frozen=True)
class RunInfo:
    folder: Path
    step: int
    steps: int
    epochs: int
    elapsed: float
    saved_at: float  # when state.safetensors was last written (seconds since the epoch)
    data: dict[str, Any]
    settings: dict[str, Any]
    has_model: bool
    preset: str | None = None  # the id of the preset made from it, if any

    @property
    def finished(self) -> bool:
        return self.step >= self.steps

    def to_dict(self) -> dict[str, Any]:
        return {
            "folder": str(self.folder), "step": self.step, "steps": self.steps, "epochs": self.epochs,
            "elapsed": self.elapsed, "saved_at": self.saved_at, "data": self.data, "settings": self.settings,
            "has_model": self.has_model, "finished": self.finished, "preset": self.preset,
        }


def _state_metadata(path: Path) -> dict[str, Any]:
    """The JSON metadata of a training state, read from its header alone (no tensors)."""
    try:
        meta, complete = read_file_record(path)
    except OSError as exc:
        raise TrainingError(f"{path}: cannot read ({exc.strerror or exc})") from exc
    except ValueError as exc:
        raise TrainingError(f"{path}: training state is damaged ({exc})") from exc
    if not complete:
        raise TrainingError(f"{path}: training state is truncated (cut off after its header)")
    if not isinstance(meta, dict) or meta.get("format") != STATE_FORMAT:
        raise TrainingError(f"{path}: not a SketchApp training state")
    return meta


def run_info(folder: str | os.PathLike[str]) -> RunInfo:
    """Where a run folder stands: steps done of all, time spent, the data it trains on."""
    root = Path(folder)
    state = root / STATE_FILE
    if not state.exists():
        raise TrainingError(f"{root}: no training was saved here")
    meta = _state_metadata(state)
    from sketchapp.core.engines import engine_spec
    from sketchapp.core.errors import SketchAppError

    try:
        settings = engine_spec(meta.get("engine", "contextual"), str(state)).train_settings.from_dict(meta["settings"])
        step = int(meta["step"])
        if "total_steps" in meta:  # every engine's run since the training loop was shared
            total = int(meta["total_steps"])
        else:  # a contextual run from before: its GAN steps, then the encoder's
            total = int(meta["gan_steps"]) + (settings.encoder_steps if settings.config.has_encoder else 0)
    except (KeyError, TypeError, ValueError, SketchAppError) as exc:
        raise TrainingError(f"{state}: training state is damaged ({exc})") from exc
    data = meta.get("data") or {}
    try:
        recorded = read_json(root / SETTINGS_FILE, TrainingError, "run record").get("data") or data
    except (TrainingError, AttributeError):
        recorded = data
    try:
        preset = read_json(root / PRESET_FILE, TrainingError, "run record").get("preset") if (root / PRESET_FILE).exists() else None
    except (TrainingError, AttributeError):
        preset = None
    return RunInfo(
        root, step, total, settings.epochs, float(meta.get("elapsed", 0.0)),
        state.stat().st_mtime, recorded, settings.to_dict(), (root / MODEL_FILE).exists(),
        preset if isinstance(preset, str) else None,
    )


def mark_preset(folder: str | os.PathLike[str], preset_id: str) -> None:
    """Record in a run folder that a preset was made from it (the wizard then stops offering it)."""
    write_bytes_atomic(Path(folder) / PRESET_FILE, json.dumps({"preset": preset_id}).encode("utf-8"))


def list_runs(root: str | os.PathLike[str]) -> list[RunInfo]:
    """Every readable run folder directly under ``root``, the latest saved first."""
    base = Path(root)
    if not base.is_dir():
        return []
    found = []
    for folder in base.iterdir():
        if (folder / STATE_FILE).exists():
            try:
                found.append(run_info(folder))
            except TrainingError:
                continue
    return sorted(found, key=lambda info: info.saved_at, reverse=True)


def read_losses(folder: str | os.PathLike[str]) -> list[dict[str, float]]:
    """losses.csv of a run as numbers (empty cells left out); [] when there is none yet."""
    path = Path(folder) / LOSSES_FILE
    rows: list[dict[str, float]] = []
    try:
        with open(path, newline="", encoding="utf-8") as handle:
            for row in csv.DictReader(handle):
                entry: dict[str, float] = {}
                for key, value in row.items():
                    if key == "phase" or not value:
                        continue
                    try:
                        entry[key] = float(value)
                    except (TypeError, ValueError):
                        continue
                if "step" in entry:
                    entry["encoder"] = 1.0 if row.get("phase") == "encoder" else 0.0
                    rows.append(entry)
    except FileNotFoundError:
        return []
    except OSError as exc:
        raise TrainingError(f"{path}: cannot read ({exc.strerror or exc})") from exc
    return rows


def model_samples(
    model: str | os.PathLike[str] | JointModel, count: int = 8, seed: int = 0, sketches: np.ndarray | None = None,
) -> np.ndarray:
    """(count, H, H, 3) uint8 image halves the model draws.

    Given ``sketches`` ((N, H, H) uint8 grey, say the training data's) and a model with an
    encoder, they are what a preset starts from: G(E(sketch)) for ``count`` sketches
    spread over them. Otherwise they are G's pictures for seeded random codes.
    """
    joint = load_model(model, "cpu") if not isinstance(model, JointModel) else model
    half = joint.config.half_size
    networks = [net for net in (joint.generator, joint.encoder) if net is not None]
    device = next(joint.generator.parameters()).device
    modes = [net.training for net in networks]
    for net in networks:
        net.eval()
    try:
        with torch.no_grad():
            if sketches is not None and len(sketches) and joint.encoder is not None:
                if sketches.shape[1:] != (half, half):
                    raise ValueError(f"sketches must be {half} x {half}, got {sketches.shape[1:]}")
                chosen = sketches[np.linspace(0, len(sketches) - 1, min(count, len(sketches))).astype(int)]
                grey = torch.from_numpy(chosen.astype(np.float32) / 127.5 - 1.0)[:, None].expand(-1, 3, -1, -1)
                codes = joint.encoder(grey.to(device))
            else:
                codes = sample_z(count, joint.config.z_dim, torch.Generator().manual_seed(seed)).to(device)
            pictures = to_uint8(joint.generator(codes))
    finally:
        for net, mode in zip(networks, modes):
            net.train(mode)
    return np.ascontiguousarray(pictures[:, :, half:])


def fine_tune_settings(base: str | os.PathLike[str], **overrides: Any) -> TrainSettings:
    """Training settings that keep a trained model's networks (size and widths), with ``overrides``."""
    from sketchapp.core.checkpoint import read_checkpoint

    meta = read_checkpoint(base)[0]
    try:
        architecture = JointGANConfig.from_dict(meta.get("architecture") if isinstance(meta.get("architecture"), dict) else {}).to_dict()
    except (TypeError, ValueError) as exc:
        raise TrainingError(f"{Path(base).name}: invalid architecture in its record ({exc})") from exc
    inherited: dict[str, Any] = {key: architecture[key] for key in ("half_size", "gf", "df", "ef", "z_dim")}
    trained = ((meta.get("training") or {}).get("settings") or {})
    recon = trained.get("recon_weight")
    if isinstance(recon, (int, float)) and not isinstance(recon, bool) and inherited.get("ef", 1) > 0:
        inherited["recon_weight"] = float(recon)  # the recipe that made the model is the one that fine-tunes it
        if trained.get("judge_redrawn") is True:
            inherited["judge_redrawn"] = True
    if trained.get("diff_augment") is True:
        inherited["diff_augment"] = True
    for key in ("r1_gamma", "line_jitter", "ema"):  # so are D's hold-back, the sketch variation, the averaging
        value = trained.get(key)
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            inherited[key] = float(value)
    settings = {**inherited, **overrides}
    settings.setdefault("encoder_steps", default_encoder_steps(settings.get("recon_weight", 0.0), fine_tune=True))
    return replace(TrainSettings(), **settings)
