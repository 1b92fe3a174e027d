"""Training the joint sketch|image DCGAN and its sketch encoder, as a generator of events.

``train`` is driven alike by ``sketchapp train`` and by the training wizard: it yields
a TrainEvent after every optimiser step, writes everything a user needs into a run
folder, and stops cleanly (after saving) when its CancelToken is set.

Run folder::

    settings.json      what was asked for, and the data it was asked on
    splits.json        the names in train / val / test
    state.safetensors  weights, their moving averages, optimiser moments and counters: exact resume
    model.safetensors  the usable model (fp16), refreshed every epoch; with ``ema``, the averaged networks
    losses.csv         one row per optimiser step
    samples/epoch-NNN.png   a grid from fixed codes after every epoch
    epochs/epoch-NNN.safetensors   with keep_every: the model as it was after that epoch

Every random draw of a step (batch order, z, augmentation) comes from a generator seeded
by (seed, step), so a run resumed from ``state.safetensors`` continues exactly as if it
had never stopped. With ``torchrun`` each process takes its share of every global batch
(drawn and augmented as one process would draw the whole batch, so every pair gets its
own augmentation) and DistributedDataParallel averages the gradients; rank 0 alone
writes files.
"""

from __future__ import annotations

import copy
import csv
import io
import json
import math
import os
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.distributed as dist
import torch.nn.functional as F
from safetensors import SafetensorError
from safetensors.torch import load as st_load
from safetensors.torch import save as st_save
from torch import nn

from sketchapp import __version__
from sketchapp.core.checkpoint import JointModel, load_model, save_checkpoint
from sketchapp.core.data.datasets import PairSet, split_names
from sketchapp.core.engine import CancelToken, to_uint8
from sketchapp.core.errors import SettingsError, SketchAppError
from sketchapp.core.fileio import read_user_file, write_bytes_atomic
from sketchapp.core.images import contact_grid, save_image
from sketchapp.core.networks import JointGANConfig, sample_z
from sketchapp.core.prepare import typical_stroke_width

STATE_FILE = "state.safetensors"
MODEL_FILE = "model.safetensors"
SETTINGS_FILE = "settings.json"
SPLITS_FILE = "splits.json"
LOSSES_FILE = "losses.csv"
SAMPLES_DIR = "samples"
EPOCHS_DIR = "epochs"
STATE_FORMAT = "sketchapp.training-state"
SAMPLE_COUNT = 32
#: Encoder-only steps after the GAN, by default: a new encoder needs many, one that starts
#: from a fine-tuned model's encoder far fewer, and none when E already learnt the real
#: pairs during the GAN (``recon_weight``): there the phase, which fits E to G's own
#: samples, lowered the test SSIM of both shipped models' encoder start (0.585 -> 0.569
#: and 0.549 -> 0.520 after 300 steps).
ENCODER_STEPS = 1500
FINE_TUNE_ENCODER_STEPS = 500
LOSS_COLUMNS = ("step", "phase", "epoch", "d_loss", "g_loss", "d_real", "d_fake", "e_loss", "r_loss", "seconds")


class TrainingError(SketchAppError):
    """Training cannot start or continue (bad settings, mismatched resume, no data)."""


@dataclass(frozen=True)
class TrainSettings:
    """Defaults follow the Contextual GAN paper and its code: Adam 2e-4, beta1 0.5, batch 64, z of 100, two G steps per D step."""

    half_size: int = 64
    z_dim: int = 100
    gf: int = 64
    df: int = 64
    ef: int = 64  # encoder width; 0 trains no encoder
    epochs: int = 25
    batch_size: int = 64  # 0 = the largest power of two up to 64 that fits in memory
    lr: float = 2e-4
    beta1: float = 0.5
    beta2: float = 0.999
    g_steps: int = 2  # generator updates per discriminator update (the official code's 2 keeps D from winning)
    recon_weight: float = 0.0  # > 0: E and G also learn to redraw each real pair from its sketch (0 = the paper's pure GAN)
    judge_redrawn: bool = False  # D also judges those redrawn pairs, so they come out sharp rather than averaged
    r1_gamma: float = 0.0  # > 0: R1 penalty (Mescheder et al. 2018), gamma/2 * |grad D(real)|^2, holds D back
    diff_augment: bool = False  # D sees every picture, real or generated, through a fresh random colour shift, move and cutout
    ema: float = 0.0  # > 0: the exported G (and E with recon_weight) is a moving average of the trained one, this decay per step
    augment: bool = True
    flip: bool = True
    rotate_degrees: float = 6.0
    scale: float = 0.08
    shift: float = 0.06
    noise: float = 0.02
    line_jitter: float = 0.0  # 0-1: each sketch's lines thickened and darkened by a random amount up to this
    encoder_steps: int = ENCODER_STEPS  # see default_encoder_steps: from_dict and fine-tuning leave it out with recon_weight
    encoder_lr: float = 5e-4
    seed: int = 0
    checkpoint_minutes: float = 5.0
    keep_every: int = 0  # also keep the model of every Nth epoch (GANs oscillate: pick the best later); 0 = off

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            expected = bool if f.type in ("bool", bool) else (float if f.type in ("float", float) else int)
            if expected is float and isinstance(value, int) and not isinstance(value, bool):
                object.__setattr__(self, f.name, float(value))
                value = float(value)
            if type(value) is not expected:
                raise SettingsError(f"training {f.name} must be {expected.__name__}, got {value!r}")
        try:
            JointGANConfig(self.half_size, self.z_dim, self.gf, self.df, 3, self.ef)
        except ValueError as exc:
            raise SettingsError(f"training: {exc}") from exc
        checks = [
            (self.epochs >= 1, "epochs must be at least 1"),
            (1 <= self.g_steps <= 10, "generator steps per discriminator step must be 1-10"),
            (0 <= self.batch_size <= 4096, "batch size must be 0 (auto) to 4096"),
            (0 < self.lr < 1 and 0 < self.encoder_lr < 1, "learning rates must be in (0, 1)"),
            (0 <= self.beta1 < 1 and 0 <= self.beta2 < 1, "betas must be in [0, 1)"),
            (0 <= self.rotate_degrees <= 45, "rotation must be 0-45 degrees"),
            (0 <= self.scale <= 0.5 and 0 <= self.shift <= 0.5, "scale and shift must be 0-0.5"),
            (0 <= self.noise <= 0.5, "noise must be 0-0.5"),
            (self.encoder_steps >= 0, "encoder steps must be >= 0"),
            (0 <= self.recon_weight <= 1000, "reconstruction weight must be 0-1000"),
            (self.recon_weight == 0 or self.ef > 0, "a reconstruction weight needs an encoder (ef > 0)"),
            (not self.judge_redrawn or self.recon_weight > 0, "judging redrawn pairs needs a reconstruction weight"),
            (0 <= self.r1_gamma <= 1000, "R1 gamma must be 0-1000"),
            (0 <= self.ema < 1, "EMA decay must be in [0, 1)"),
            (0 <= self.line_jitter <= 1, "line jitter must be 0-1"),
            (0 <= self.seed < 2**63, "seed must be in [0, 2**63)"),
            (self.checkpoint_minutes > 0, "checkpoint interval must be positive"),
            (self.keep_every >= 0, "keep_every must be >= 0"),
        ]
        for ok, message in checks:
            if not ok:
                raise SettingsError(f"training {message}")

    @property
    def config(self) -> JointGANConfig:
        return JointGANConfig(self.half_size, self.z_dim, self.gf, self.df, 3, self.ef)

    @property
    def size(self) -> int:
        """The side of the pictures trained on (every engine's training settings have it)."""
        return self.half_size

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TrainSettings:
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise SettingsError(f"unknown training settings: {', '.join(unknown)}")
        if "encoder_steps" not in data:
            data = {**data, "encoder_steps": default_encoder_steps(data.get("recon_weight", 0.0))}
        return cls(**data)


def default_encoder_steps(recon_weight: Any, fine_tune: bool = False) -> int:
    """How long the encoder-only phase runs unless told: none after a GAN with a reconstruction term."""
    if isinstance(recon_weight, (int, float)) and not isinstance(recon_weight, bool) and recon_weight > 0:
        return 0
    return FINE_TUNE_ENCODER_STEPS if fine_tune else ENCODER_STEPS


@dataclass
class TrainEvent:
    kind: str  # "start", "step", "epoch", "encoder", "saved", "done", "cancelled"
    step: int  # optimiser steps completed (GAN then encoder)
    steps: int  # total steps of the run
    epoch: int
    epochs: int
    phase: str  # "gan" or "encoder"
    losses: dict[str, float] = field(default_factory=dict)
    elapsed: float = 0.0  # seconds of training in this run, resumed runs included
    eta: float | None = None
    sample: Path | None = None
    message: str = ""
    model: JointModel | None = field(default=None, repr=False)  # on "done": the trained networks


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


def _write_state(
    path: Path, model: JointModel, optimizers: dict[str, torch.optim.Optimizer], record: dict[str, Any],
    averages: dict[str, WeightAverage],
) -> None:
    tensors: dict[str, torch.Tensor] = {}
    _module_tensors({**model.modules(), **{f"ema{name}": average.module for name, average in averages.items()}}, tensors)
    groups = {name: _flatten_optimizer(f"opt{name}", opt, tensors) for name, opt in optimizers.items()}
    meta = {
        **record, "format": STATE_FORMAT, "optimizer_groups": groups,
        "ema_updates": {name: average.updates for name, average in averages.items()},
    }
    payload = st_save(tensors, metadata={"sketchapp": json.dumps(meta)})
    write_bytes_atomic(path, payload)


def read_state(path: Path) -> tuple[dict[str, Any], dict[str, torch.Tensor]]:
    data = read_user_file(path, TrainingError, "training state")
    try:
        tensors = st_load(data)
        size = int.from_bytes(data[:8], "little")
        header = json.loads(data[8 : 8 + size])
        meta = json.loads(header["__metadata__"]["sketchapp"])
    except (SafetensorError, ValueError, KeyError, TypeError, RuntimeError) as exc:
        raise TrainingError(f"{path}: training state is damaged ({exc})") from exc
    if meta.get("format") != STATE_FORMAT:
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


# -- augmentation ----------------------------------------------------------------------


def _step_generator(seed: int, step: int) -> torch.Generator:
    return torch.Generator().manual_seed((seed * 1_000_003 + step) % (2**63))


def jitter_lines(sketch: torch.Tensor, amount: float, rng: torch.Generator) -> torch.Tensor:
    """Sketches (N, 3, H, H) in [-1, 1] with their lines thickened and darkened, each by its own random amount.

    Automatic sketches (XDoG above all) have thin, light lines; a pen drawn in the app or a
    cleaned scan has darker, wider ones. Per sketch, a share t of up to ``amount`` of a
    one-pixel dilation of the ink is blended in, and the ink is multiplied by up to 1 + 2 * amount.
    """
    n = len(sketch)
    ink = (1 - sketch) / 2  # 0 on paper, 1 on black
    thick = torch.rand(n, 1, 1, 1, generator=rng).to(sketch.device, sketch.dtype) * amount
    dark = 1 + torch.rand(n, 1, 1, 1, generator=rng).to(sketch.device, sketch.dtype) * 2 * amount
    wider = F.max_pool2d(ink, 3, stride=1, padding=1)
    ink = ((ink + thick * (wider - ink)) * dark).clamp(0, 1)
    return 1 - 2 * ink


def augment(batch: torch.Tensor, settings: TrainSettings, rng: torch.Generator) -> torch.Tensor:
    """The same flip and small affine warp on both halves; noise on the image half only,
    line jitter (see jitter_lines) on the sketch half only.

    Areas the warp uncovers are white paper, like the data's background.
    """
    n, _, h, w2 = batch.shape
    half = w2 // 2
    sketch, image = batch[..., :half], batch[..., half:]
    if settings.line_jitter > 0:
        sketch = jitter_lines(sketch, settings.line_jitter, rng)
    pair = torch.cat([sketch, image], dim=1)  # (N, 6, H, H): one warp for both
    if settings.flip:
        flip = torch.rand(n, generator=rng) < 0.5
        pair = torch.where(flip[:, None, None, None].to(pair.device), pair.flip(3), pair)
    angle = (torch.rand(n, generator=rng) * 2 - 1) * math.radians(settings.rotate_degrees)
    scale = 1 + (torch.rand(n, generator=rng) * 2 - 1) * settings.scale
    shift = (torch.rand(n, 2, generator=rng) * 2 - 1) * settings.shift * 2
    cos, sin = torch.cos(angle) / scale, torch.sin(angle) / scale
    theta = torch.stack(
        [torch.stack([cos, -sin, shift[:, 0]], 1), torch.stack([sin, cos, shift[:, 1]], 1)], 1
    ).to(pair.device, pair.dtype)
    grid = F.affine_grid(theta, list(pair.shape), align_corners=False)
    pair = F.grid_sample(pair - 1, grid, mode="bilinear", padding_mode="zeros", align_corners=False) + 1
    sketch, image = pair[:, :3], pair[:, 3:]
    if settings.noise > 0:
        noise = torch.randn(image.shape, generator=rng).to(image.device, image.dtype)
        image = (image + settings.noise * noise).clamp(-1, 1)
    return torch.cat([sketch, image], dim=3)


def diff_augment(pictures: torch.Tensor, rng: torch.Generator, share: tuple[int, int] = (0, 1)) -> torch.Tensor:
    """DiffAugment (Zhao et al. 2020) for joint sketch|image pictures (N, 3, H, 2H) in [-1, 1].

    Each picture gets its own random colour change of the image half (brightness,
    saturation, contrast), a move of both halves by up to 1/8 of the size (white paper
    comes in) and a cutout of a quarter of both halves at the same place. It is applied
    to real and generated pictures alike, every time D sees them, and it is
    differentiable, so G learns through it: D cannot memorise a small data set (2,000
    emoji), yet G is never taught to draw the augmentations.

    ``share`` = (rank, world): the pictures are this process's share, ``[rank::world]``,
    of a batch ``world`` times as long. The draws are made for the whole batch and the
    share's are taken, so every process augments its pictures differently, as one
    process would augment the whole batch, with the same ``rng`` on every process.
    """
    n, _, h, w2 = pictures.shape
    half = w2 // 2
    rank, world = share

    def draw(*shape: int) -> torch.Tensor:
        values = torch.rand(shape[0] * world, *shape[1:], generator=rng)[rank::world]
        return values.to(pictures.device, pictures.dtype)

    sketch, image = pictures[..., :half], pictures[..., half:]
    image = image + (draw(n, 1, 1, 1) - 0.5)
    grey = image.mean(1, keepdim=True)
    image = (image - grey) * draw(n, 1, 1, 1) * 2 + grey
    level = image.mean((1, 2, 3), keepdim=True)
    image = (image - level) * (draw(n, 1, 1, 1) + 0.5) + level
    pair = torch.cat([sketch, image], 1)
    shift = torch.round((draw(n, 2) * 2 - 1) * h / 8) * 2 / h  # whole pixels, in grid units
    one, nil = torch.ones_like(shift[:, 0]), torch.zeros_like(shift[:, 0])
    theta = torch.stack([torch.stack([one, nil, shift[:, 0]], 1), torch.stack([nil, one, shift[:, 1]], 1)], 1)
    grid = F.affine_grid(theta, list(pair.shape), align_corners=False)
    pair = F.grid_sample(pair - 1, grid, mode="nearest", padding_mode="zeros", align_corners=False) + 1
    centre = draw(n, 2) * h
    rows = torch.arange(h, device=pair.device, dtype=pair.dtype)
    inside_y = (rows[None, :] - centre[:, :1]).abs() < h / 4
    inside_x = (rows[None, :] - centre[:, 1:]).abs() < h / 4
    keep = ~(inside_y[:, :, None] & inside_x[:, None, :])
    pair = pair * keep[:, None].to(pair.dtype)
    return torch.cat([pair[:, :3], pair[:, 3:]], dim=3)


def to_joint_tensor(pairs: PairSet) -> torch.Tensor:
    """(N, 3, S, 2S) uint8 on the CPU; batches are turned into floats one at a time."""
    return torch.from_numpy(pairs.joint()).permute(0, 3, 1, 2).contiguous()


def _as_float(batch: torch.Tensor, device: torch.device) -> torch.Tensor:
    return batch.to(device, non_blocking=True).float().div_(127.5).sub_(1.0)


# -- batch size ------------------------------------------------------------------------


def auto_batch_size(model: JointModel, device: torch.device, largest: int = 64) -> int:
    """The largest power of two up to ``largest`` whose training step fits in memory.

    On a GPU a step is tried and halved on out-of-memory. On the CPU the step's memory
    is measured at a small batch and scaled, then compared with the free memory.
    """
    size = 1 << max(0, int(largest).bit_length() - 1)
    if device.type == "cuda":
        while size > 1:
            try:
                _probe_step(model, device, size)
                return size
            except torch.OutOfMemoryError:
                torch.cuda.empty_cache()
                size //= 2
        return 1
    free = _available_memory()
    if free is None:
        return size
    per_sample = _activation_bytes(model, device)
    while size > 1 and per_sample * size * 3 > free * 0.5:
        size //= 2
    return size


def _probe_step(model: JointModel, device: torch.device, size: int) -> None:
    config = model.config
    z = sample_z(size, config.z_dim).to(device)
    fake = model.generator(z)
    loss = model.discriminator(fake).mean()
    loss.backward()
    for module in model.modules().values():
        module.zero_grad(set_to_none=True)


def _activation_bytes(model: JointModel, device: torch.device) -> int:
    """Bytes of every layer output in one G+D forward pass for a single sample."""
    total = 0

    def hook(_module: nn.Module, _inputs: Any, output: Any) -> None:
        nonlocal total
        if isinstance(output, torch.Tensor):
            total += output.numel() * output.element_size()

    handles = [m.register_forward_hook(hook) for part in (model.generator, model.discriminator) for m in part.modules()]
    try:
        with torch.no_grad():
            model.discriminator(model.generator(sample_z(2, model.config.z_dim).to(device)))
    finally:
        for handle in handles:
            handle.remove()
    return total // 2


def _available_memory() -> int | None:
    try:
        with open("/proc/meminfo", encoding="ascii") as handle:
            for line in handle:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        return None
    return None


# -- the run ---------------------------------------------------------------------------


class RunFolder:
    """Paths and the rank-0-only writers of one run folder."""

    def __init__(self, folder: Path, rank: int, columns: tuple[str, ...] = LOSS_COLUMNS) -> None:
        self.folder = folder
        self.rank = rank
        self.columns = columns

    def path(self, name: str) -> Path:
        return self.folder / name

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
        with open(path, newline="", encoding="utf-8") as handle:
            rows = [row for row in csv.DictReader(handle) if int(row["step"]) <= step]
        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, fieldnames=self.columns, lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
        write_bytes_atomic(path, buffer.getvalue().encode("utf-8"))


def train(
    run_dir: str | os.PathLike[str],
    pairs: PairSet,
    settings: TrainSettings = TrainSettings(),
    device: torch.device | str = "cpu",
    cancel: CancelToken | None = None,
    resume: bool = False,
    init_from: str | os.PathLike[str] | None = None,
    data_record: dict[str, Any] | None = None,
    splits: dict[str, list[str]] | None = None,
) -> Iterator[TrainEvent]:
    """Train on ``pairs`` (their train split), streaming TrainEvents; see the module notes.

    resume=True continues the state saved in ``run_dir`` (its settings win, except that
    ``epochs`` may be raised). ``init_from`` starts from a trained model (fine-tuning).
    ``data_record`` describes the data so a later resume can load it again.
    """
    device = torch.device(device)
    folder = Path(run_dir)
    rank, world = distributed_world()
    run = RunFolder(folder, rank)
    cancel = cancel or CancelToken()
    start_step = 0
    elapsed_before = 0.0
    state_meta: dict[str, Any] | None = None
    state_tensors: dict[str, torch.Tensor] = {}
    if resume:
        if not run.path(STATE_FILE).exists():
            raise TrainingError(f"{folder}: nothing to resume (no {STATE_FILE})")
        state_meta, state_tensors = read_state(run.path(STATE_FILE))
        saved = TrainSettings.from_dict(state_meta["settings"])
        settings = replace(saved, epochs=max(saved.epochs, settings.epochs))
        start_step = int(state_meta["step"])
        elapsed_before = float(state_meta.get("elapsed", 0.0))
        splits = json.loads(run.path(SPLITS_FILE).read_text(encoding="utf-8"))
    elif run.path(STATE_FILE).exists():
        raise TrainingError(f"{folder}: already holds a training run; resume it or choose another folder")
    if splits is None:
        splits = pairs.splits or split_names(pairs.names, seed=settings.seed)
    train_pairs = pairs.subset(splits["train"])
    if len(train_pairs) == 0:
        raise TrainingError("the training split is empty: the data set needs at least one usable pair")
    if train_pairs.size != settings.half_size:
        raise TrainingError(f"data is {train_pairs.size} px but the model is {settings.half_size} px")

    config = settings.config
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(settings.seed)
        model = JointModel.create(config)
    if init_from is not None and state_meta is None:
        base = load_model(init_from, "cpu")
        if base.config.half_size != config.half_size or base.config.gf != config.gf or base.config.df != config.df or base.config.z_dim != config.z_dim:
            raise TrainingError(
                f"{Path(init_from).name}: its networks ({base.config.to_dict()}) differ from the settings; "
                "fine-tuning keeps the architecture"
            )
        model.generator.load_state_dict(base.generator.state_dict())
        model.discriminator.load_state_dict(base.discriminator.state_dict())
        if base.encoder is not None and model.encoder is not None and base.config.ef == config.ef:
            model.encoder.load_state_dict(base.encoder.state_dict())
    model.to(device)
    model.generator.train()
    model.discriminator.train()

    if settings.batch_size == 0:
        batch_size = auto_batch_size(model, device)
        if world > 1:  # every process must use the same batch: the smallest that fits everywhere
            agreed = torch.tensor([batch_size], device=device if device.type == "cuda" else "cpu")
            dist.all_reduce(agreed, op=dist.ReduceOp.MIN)
            batch_size = int(agreed.item())
        settings = replace(settings, batch_size=batch_size)
    batch = min(settings.batch_size, len(train_pairs))
    if batch % world:
        batch = max(world, batch - batch % world)
    steps_per_epoch = max(1, len(train_pairs) // batch)
    gan_steps = steps_per_epoch * settings.epochs
    encoder_steps = settings.encoder_steps if config.has_encoder else 0
    total_steps = gan_steps + encoder_steps

    betas = (settings.beta1, settings.beta2)
    opt_g = torch.optim.Adam(model.generator.parameters(), settings.lr, betas=betas)
    opt_d = torch.optim.Adam(model.discriminator.parameters(), settings.lr, betas=betas)
    optimizers: dict[str, torch.optim.Optimizer] = {"G": opt_g, "D": opt_d}
    if model.encoder is not None:
        optimizers["E"] = torch.optim.Adam(model.encoder.parameters(), settings.encoder_lr, betas=(0.9, 0.999))

    if state_meta is not None:
        for prefix, module in model.modules().items():
            module.load_state_dict(_prefixed(prefix, state_tensors))
        for name, opt in optimizers.items():
            _restore_optimizer(f"opt{name}", opt, state_meta["optimizer_groups"][name], state_tensors)
        model.to(device)
        if int(state_meta["steps_per_epoch"]) != steps_per_epoch:
            raise TrainingError(
                f"{folder}: the data changed since this run started "
                f"({state_meta['steps_per_epoch']} steps per epoch then, {steps_per_epoch} now)"
            )
        finished_gan = int(state_meta.get("gan_steps", gan_steps))
        if start_step > finished_gan and gan_steps > finished_gan:
            start_step = finished_gan  # more epochs: back to the GAN, then the encoder follows the new G
        run.truncate_losses(start_step)
    averages: dict[str, WeightAverage] = {}
    if state_meta is not None:
        for name, updates in (state_meta.get("ema_updates") or {}).items():
            averages[name] = WeightAverage(model.modules()[name], settings.ema, int(updates))
            averages[name].module.load_state_dict(_prefixed(f"ema{name}", state_tensors))
    elif settings.ema > 0:
        averages["G"] = WeightAverage(model.generator, settings.ema)
    if settings.ema > 0 and model.encoder is not None and settings.recon_weight > 0 and start_step < gan_steps:
        # E's codes must suit the averaged G; a finished run resumed for more epochs averages E anew
        averages.setdefault("E", WeightAverage(model.encoder, settings.ema))
    if state_meta is None:
        if rank == 0:
            folder.mkdir(parents=True, exist_ok=True)
            (folder / SAMPLES_DIR).mkdir(exist_ok=True)
        run.write_json(SETTINGS_FILE, {"settings": settings.to_dict(), "data": data_record or pairs.info, "app_version": __version__})
        run.write_json(SPLITS_FILE, splits)
    _barrier(world)

    generator_net: nn.Module = model.generator
    discriminator_net: nn.Module = model.discriminator
    encoder_net: nn.Module | None = model.encoder
    if model.encoder is not None:
        model.encoder.train(settings.recon_weight > 0)
    if world > 1:
        from torch.nn.parallel import DistributedDataParallel as DDP

        ids = [device.index] if device.type == "cuda" else None
        generator_net = DDP(model.generator, device_ids=ids)
        discriminator_net = DDP(model.discriminator, device_ids=ids)
        if model.encoder is not None and settings.recon_weight:
            encoder_net = DDP(model.encoder, device_ids=ids)

    data = to_joint_tensor(train_pairs)
    fixed_z = sample_z(SAMPLE_COUNT, config.z_dim, torch.Generator().manual_seed(settings.seed + 7)).to(device)
    record_base: dict[str, Any] = {
        "settings": settings.to_dict(),
        "data": data_record or pairs.info,
        "steps_per_epoch": steps_per_epoch,
        "gan_steps": gan_steps,
        "world_size": world,
        # what completion thickens a drawing's thinner lines to (prepare.match_stroke_width)
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
        if done <= 0:
            return None
        return (time.monotonic() - clock) / done * (total_steps - step)

    def shown() -> JointModel:
        """The networks a user gets: the averaged ones where weights are averaged."""
        return JointModel(
            config,
            averages["G"].module if "G" in averages else model.generator,
            model.discriminator,
            averages["E"].module if "E" in averages else model.encoder,
            model.metadata,
        )

    def save(kind: str) -> TrainEvent:
        nonlocal last_save, pending
        run.append_losses(pending)
        pending = []
        if rank == 0:
            record = {**record_base, "step": step, "elapsed": elapsed()}
            _write_state(run.path(STATE_FILE), model, optimizers, record, averages)
            exported = shown()
            _export(run.path(MODEL_FILE), exported, settings, record_base, step, total_steps, elapsed(), device)
            model.metadata = exported.metadata  # what the file says (line width, style, training) goes with the model
        _barrier(world)
        last_save = time.monotonic()
        return TrainEvent(kind, step, total_steps, _epoch(step), settings.epochs, _phase(step), elapsed=elapsed())

    def _epoch(at: int) -> int:
        return min(settings.epochs, at // steps_per_epoch)

    def _phase(at: int) -> str:
        return "gan" if at < gan_steps or not encoder_steps else "encoder"

    yield TrainEvent(
        "start", step, total_steps, _epoch(step), settings.epochs, _phase(step), elapsed=elapsed(),
        message=f"{len(train_pairs)} training pairs, batch {batch}, {steps_per_epoch} steps per epoch"
        + (f", {world} processes" if world > 1 else ""),
    )
    def save_due() -> bool:
        return time.monotonic() - last_save > settings.checkpoint_minutes * 60

    while step < gan_steps:
        stop, due = _agree(cancel.cancelled, save_due(), world)
        if stop:
            yield save("cancelled")
            return
        if due:
            yield save("saved")
        epoch = step // steps_per_epoch
        rng = _step_generator(settings.seed, step)
        real, z = _gan_batch(data, step, steps_per_epoch, batch, settings, rng, rank, world, device)
        losses = _gan_step(
            generator_net, discriminator_net, opt_g, opt_d, real, z, settings.g_steps,
            encoder_net, optimizers.get("E"), settings.recon_weight, settings.judge_redrawn, settings.r1_gamma,
            rng if settings.diff_augment else None, (rank, world),
        )
        for name, average in averages.items():
            average.update(model.modules()[name])
        step += 1
        pending.append({"step": step, "phase": "gan", "epoch": epoch + 1, **{k: f"{v:.5f}" for k, v in losses.items()}, "seconds": f"{elapsed():.1f}"})
        yield TrainEvent("step", step, total_steps, epoch + 1, settings.epochs, "gan", losses, elapsed(), eta())
        if step % steps_per_epoch == 0:
            sample = None
            if rank == 0:
                sample = run.path(SAMPLES_DIR) / f"epoch-{step // steps_per_epoch:03d}.png"
                save_image(sample, sample_grid(shown(), fixed_z))
            save("saved")
            epoch_done = step // steps_per_epoch
            if rank == 0 and settings.keep_every and epoch_done % settings.keep_every == 0:
                (folder / EPOCHS_DIR).mkdir(exist_ok=True)
                _export(folder / EPOCHS_DIR / f"epoch-{epoch_done:03d}.safetensors", shown(), settings, record_base, step,
                        total_steps, elapsed(), device)
            yield TrainEvent("epoch", step, total_steps, step // steps_per_epoch, settings.epochs, "gan", losses, elapsed(), eta(), sample)

    if encoder_steps and step < total_steps:
        if "E" in averages:  # the encoder-only phase trains E on for the averaged G: from the averaged E
            assert model.encoder is not None
            model.encoder.load_state_dict(averages.pop("E").module.state_dict())
        for event in _train_encoder(shown(), optimizers["E"], data, settings, device, step, total_steps, cancel, save_due, rank, world):
            step = event.step
            if event.kind == "cancelled":
                yield save("cancelled")
                return
            if event.kind == "save-due":
                yield save("saved")
                continue
            event.elapsed, event.eta = elapsed(), eta()
            pending.append({"step": step, "phase": "encoder", "epoch": settings.epochs, "e_loss": f"{event.losses['e_loss']:.5f}", "seconds": f"{elapsed():.1f}"})
            yield event
    final = save("done")
    final.message = str(run.path(MODEL_FILE))
    final.model = shown().eval()
    yield final


def _gan_batch(
    data: torch.Tensor, step: int, steps_per_epoch: int, batch: int, settings: TrainSettings, rng: torch.Generator,
    rank: int, world: int, device: torch.device,
) -> tuple[torch.Tensor, torch.Tensor]:
    """This process's share of the step's real pairs (augmented) and codes.

    Every process draws the whole batch from the same ``rng`` and keeps ``[rank::world]``,
    so the processes together see what one process would, each pair augmented its own way.
    """
    epoch, index = divmod(step, steps_per_epoch)
    order = torch.randperm(len(data), generator=torch.Generator().manual_seed((settings.seed * 7919 + epoch) % 2**63))
    real = _as_float(data[order[index * batch : (index + 1) * batch]], device)
    if settings.augment:
        real = augment(real, settings, rng)
    z = sample_z(batch, settings.z_dim, rng)
    return real[rank::world], z[rank::world].to(device)


def _gan_step(
    generator_net: nn.Module, discriminator_net: nn.Module, opt_g: torch.optim.Optimizer, opt_d: torch.optim.Optimizer,
    real: torch.Tensor, z: torch.Tensor, g_steps: int, encoder_net: nn.Module | None = None,
    opt_e: torch.optim.Optimizer | None = None, recon_weight: float = 0.0, judge_redrawn: bool = False,
    r1_gamma: float = 0.0, augment_rng: torch.Generator | None = None, share: tuple[int, int] = (0, 1),
) -> dict[str, float]:
    """One discriminator update, then ``g_steps`` generator updates on the same codes.

    With an encoder and ``recon_weight`` > 0, G also draws each real pair from
    E(its sketch half) in the same batch, and G and E together learn to redraw it (L1
    on both halves, weighted). That ties the latent space to the drawings, so the
    encoder's start lands on a matching picture: the pure GAN needs far more training
    for the same. With ``judge_redrawn`` the discriminator also judges the redrawn pairs
    (L1 alone draws the average of the pictures a sketch could be: blurry, as pix2pix
    found); otherwise it only sees the random codes' pictures.

    ``r1_gamma`` > 0 adds the R1 penalty to D's loss: gamma / 2 times the squared gradient
    of D's score at the real pairs, so D cannot grow steep around them and overpower G
    (without it OpenMoji at 128 px ended with D rating real pairs 0.92, generated 0.07,
    and every random code drawing the same scribble). ``d_loss`` reports the
    cross-entropy alone.

    With ``augment_rng`` D sees every picture through ``diff_augment``, drawn from it;
    ``share`` = (rank, world) says which share of the batch ``real`` and ``z`` are.
    """
    bce = F.binary_cross_entropy_with_logits
    count = len(z)
    redraw = encoder_net is not None and opt_e is not None and recon_weight > 0
    updated = [opt_g, opt_e] if redraw and opt_e is not None else [opt_g]

    def draw() -> tuple[torch.Tensor, torch.Tensor | None]:
        if not redraw:
            return generator_net(z), None
        assert encoder_net is not None
        codes = encoder_net(real[..., : real.shape[-1] // 2])
        both = generator_net(torch.cat([z, codes]))
        return both[:count], both[count:]

    def judged(fake: torch.Tensor, redrawn: torch.Tensor | None) -> torch.Tensor:
        return torch.cat([fake, redrawn]) if judge_redrawn and redrawn is not None else fake

    def seen(pictures: torch.Tensor) -> torch.Tensor:
        return diff_augment(pictures, augment_rng, share) if augment_rng is not None else pictures

    fake, redrawn = draw()
    judged_real = seen(real).detach()
    if r1_gamma > 0:  # the slope is taken at the pictures D sees (as StyleGAN2-ADA), augmented or not
        judged_real.requires_grad_(True)
    d_real = discriminator_net(judged_real)
    d_fake = discriminator_net(seen(judged(fake, redrawn).detach()))
    d_loss = bce(d_real, torch.ones_like(d_real)) + bce(d_fake, torch.zeros_like(d_fake))
    d_total = d_loss
    if r1_gamma > 0:
        (slope,) = torch.autograd.grad(d_real.sum(), judged_real, create_graph=True)
        d_total = d_loss + r1_gamma / 2 * slope.pow(2).flatten(1).sum(1).mean()
    opt_d.zero_grad(set_to_none=True)
    d_total.backward()
    opt_d.step()
    recon_loss = None
    for g_round in range(g_steps):
        if g_round:
            fake, redrawn = draw()
        g_score = discriminator_net(seen(judged(fake, redrawn)))
        g_loss = bce(g_score, torch.ones_like(g_score))
        total = g_loss
        if redrawn is not None:
            recon_loss = F.l1_loss(redrawn, real)
            total = g_loss + recon_weight * recon_loss
        for optimizer in updated:
            optimizer.zero_grad(set_to_none=True)
        total.backward()
        for optimizer in updated:
            optimizer.step()
    losses = {
        "d_loss": d_loss.item(), "g_loss": g_loss.item(),
        "d_real": torch.sigmoid(d_real.detach()).mean().item(), "d_fake": torch.sigmoid(d_fake.detach()).mean().item(),
    }
    if recon_loss is not None:
        losses["r_loss"] = recon_loss.item()
    return losses


def _encoder_step(
    encoder_net: nn.Module, generator: nn.Module, optimizer: torch.optim.Optimizer, targets: torch.Tensor,
    z_target: torch.Tensor, half: int,
) -> dict[str, float]:
    """E(sketch) -> z, judged by how G(E(sketch)) redraws the pair, and by z itself where it is known."""
    predicted = encoder_net(targets[..., :half])
    redrawn = generator(predicted)
    sketch_loss = F.l1_loss(redrawn[..., :half], targets[..., :half])
    image_loss = F.l1_loss(redrawn[..., half:], targets[..., half:])
    n_made = len(z_target)
    z_loss = F.mse_loss(predicted[:n_made], z_target[:n_made]) if n_made else predicted.sum() * 0
    loss = 2.0 * sketch_loss + image_loss + 0.5 * z_loss
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    optimizer.step()
    return {"e_loss": loss.item(), "sketch_l1": sketch_loss.item(), "image_l1": image_loss.item()}


def _train_encoder(
    model: JointModel, optimizer: torch.optim.Optimizer, data: torch.Tensor, settings: TrainSettings,
    device: torch.device, step: int, total_steps: int, cancel: CancelToken, save_due: Callable[[], bool],
    rank: int, world: int,
) -> Iterator[TrainEvent]:
    """E(sketch) -> z with G frozen (iGAN's hybrid start).

    Half of each batch is G's own samples (E must recover their z, and G(E(x)) must
    redraw x's sketch); half is real training sketches (G(E(s)) must redraw s and its
    true image), so E also lands near the answer for drawings G never made.
    """
    assert model.encoder is not None
    encoder = model.encoder
    if world > 1:
        from torch.nn.parallel import DistributedDataParallel as DDP

        encoder_net: nn.Module = DDP(encoder, device_ids=[device.index] if device.type == "cuda" else None)
    else:
        encoder_net = encoder
    generator = model.generator.eval()
    for parameter in generator.parameters():
        parameter.requires_grad_(False)
    encoder.train()
    batch = max(2, min(settings.batch_size, len(data)))
    half = settings.half_size
    try:
        while step < total_steps:
            stop, due = _agree(cancel.cancelled, save_due(), world)
            if stop:
                yield TrainEvent("cancelled", step, total_steps, settings.epochs, settings.epochs, "encoder")
                return
            if due:
                yield TrainEvent("save-due", step, total_steps, settings.epochs, settings.epochs, "encoder")
            rng = _step_generator(settings.seed + 1, step)
            z = sample_z(batch // 2, settings.z_dim, rng).to(device)
            with torch.no_grad():
                made = generator(z)
            chosen = torch.randint(len(data), (batch - batch // 2,), generator=rng)
            real = _as_float(data[chosen], device)
            if settings.augment:
                real = augment(real, replace(settings, noise=0.0), rng)
            targets = torch.cat([made, real])[rank::world]
            z_target = z[rank::world]  # G's own samples come first in every share
            losses = _encoder_step(encoder_net, generator, optimizer, targets, z_target, half)
            step += 1
            yield TrainEvent("encoder", step, total_steps, settings.epochs, settings.epochs, "encoder", losses)
    finally:
        for parameter in generator.parameters():
            parameter.requires_grad_(True)
        encoder.eval()


def sample_grid(model: JointModel, z: torch.Tensor, columns: int = 4) -> np.ndarray:
    """Joint pictures from fixed codes, as the finished model draws them (eval mode)."""
    generator = model.generator
    was_training = generator.training
    generator.eval()
    try:
        with torch.no_grad():
            pictures = to_uint8(generator(z))
    finally:
        generator.train(was_training)
    return contact_grid(pictures, columns, gap=4)


def _export(
    path: Path, model: JointModel, settings: TrainSettings, record: dict[str, Any], step: int, total: int,
    elapsed: float, device: torch.device,
) -> None:
    data = record.get("data") or {}
    save_checkpoint(
        path,
        model,
        half_precision=True,
        sketch_style=data.get("sketch_style", "unknown"),
        sketch_line_width=record.get("sketch_line_width"),
        data={k: data[k] for k in ("name", "kind", "licence", "attribution", "source", "size", "count") if k in data},
        training={
            "settings": settings.to_dict(),
            "step": step,
            "steps": total,
            "seconds": round(elapsed, 1),
            "device": device.type,
            "world_size": record.get("world_size", 1),
        },
    )


def resume_record(run_dir: str | os.PathLike[str]) -> dict[str, Any]:
    """settings.json of a run folder: what ``--resume`` needs to reload the same data."""
    path = Path(run_dir) / SETTINGS_FILE
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise TrainingError(f"{run_dir}: not a training run folder ({exc.strerror or exc})") from exc
    except json.JSONDecodeError as exc:
        raise TrainingError(f"{path}: damaged ({exc})") from exc

