"""Training the joint sketch|image DCGAN and its sketch encoder: the Contextual GAN's recipe.

``ContextualRecipe`` holds what is particular to this engine (settings, networks, the
GAN and encoder steps, augmentation, samples); the shared loop of ``core.trainer`` runs
it. ``train`` is driven alike by ``sketchapp train`` and by the training wizard: it
yields a TrainEvent after every optimiser step, writes everything a user needs into a
run folder, and stops cleanly (after saving) when its CancelToken is set. The jobs
around a training (fine-tuning settings from a model, a time estimate on real steps,
thumbnails for a preset) are here too.

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

import math
import os
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from sketchapp.core.checkpoint import read_checkpoint
from sketchapp.core.data.datasets import PairSet
from sketchapp.core.engine import CancelToken, to_uint8
from sketchapp.core.engines.contextual.model import CONTEXTUAL, JointModel, load_model
from sketchapp.core.engines.contextual.networks import JointGANConfig, sample_z
from sketchapp.core.engines.base import Training
from sketchapp.core.errors import SettingsError
from sketchapp.core.images import contact_grid
from sketchapp.core.estimate import TimeEstimate, timed, train_share
from sketchapp.core.trainer import STATE_FILE, TrainEvent, TrainingError, WeightAverage, epoch_order, read_state, train_recipe

SAMPLE_COUNT = 32
#: Encoder-only steps after the GAN, by default: a new encoder needs many, one that starts
#: from a fine-tuned model's encoder far fewer, and none when E already learnt the real
#: pairs during the GAN (``recon_weight``): there the phase, which fits E to G's own
#: samples, lowered the test SSIM of both shipped models' encoder start (0.585 -> 0.569
#: and 0.549 -> 0.520 after 300 steps).
ENCODER_STEPS = 1500
FINE_TUNE_ENCODER_STEPS = 500
LOSS_COLUMNS = ("step", "phase", "epoch", "d_loss", "g_loss", "d_real", "d_fake", "e_loss", "r_loss", "seconds")
#: New models learn to redraw each pair from its sketch while the GAN trains (the
#: shipped models' recipe, see the README); a fine-tuned one keeps its base's setting.
NEW_MODEL_RECON_WEIGHT = 50.0


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


def new_model_settings(size: int, width: int) -> dict[str, Any]:
    """Training settings of a new model as the training wizard makes one: ``size`` px, every network ``width`` wide,
    learning to redraw each pair from its sketch (``NEW_MODEL_RECON_WEIGHT``)."""
    return {"half_size": size, "gf": width, "df": width, "ef": width, "recon_weight": NEW_MODEL_RECON_WEIGHT}


def default_encoder_steps(recon_weight: Any, fine_tune: bool = False) -> int:
    """How long the encoder-only phase runs unless told: none after a GAN with a reconstruction term."""
    if isinstance(recon_weight, (int, float)) and not isinstance(recon_weight, bool) and recon_weight > 0:
        return 0
    return FINE_TUNE_ENCODER_STEPS if fine_tune else ENCODER_STEPS


# -- augmentation ----------------------------------------------------------------------


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
    """Train the joint GAN on ``pairs`` (their train split), streaming TrainEvents; see the module notes.

    The shared training loop (``core.trainer``) runs ``ContextualRecipe``. resume=True
    continues the state saved in ``run_dir`` (its settings win, except that ``epochs``
    may be raised). ``init_from`` starts from a trained model (fine-tuning).
    ``data_record`` describes the data so a later resume can load it again.
    """
    if resume:
        state = Path(run_dir) / STATE_FILE
        if not state.exists():
            raise TrainingError(f"{run_dir}: nothing to resume (no {STATE_FILE})")
        saved = TrainSettings.from_dict(read_state(state)[0]["settings"])
        settings = replace(saved, epochs=max(saved.epochs, settings.epochs))
    return train_recipe(run_dir, ContextualRecipe(settings), pairs, device, cancel, resume, init_from, data_record, splits)


class ContextualRecipe:
    """The joint sketch|image GAN and its encoder, as a recipe of the shared training loop.

    Two phases: the GAN (counted in epochs; with ``recon_weight`` the encoder learns in
    it too), then ``encoder_steps`` of the encoder alone against the frozen (averaged) G.
    """

    kind = CONTEXTUAL
    loss_names = ("d_loss", "g_loss", "d_real", "d_fake", "e_loss", "r_loss")

    def __init__(self, settings: TrainSettings) -> None:
        self.settings = settings
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(settings.seed)
            self.model = JointModel.create(settings.config)
        betas = (settings.beta1, settings.beta2)
        self._optimizers: dict[str, torch.optim.Optimizer] = {
            "G": torch.optim.Adam(self.model.generator.parameters(), settings.lr, betas=betas),
            "D": torch.optim.Adam(self.model.discriminator.parameters(), settings.lr, betas=betas),
        }
        if self.model.encoder is not None:
            self._optimizers["E"] = torch.optim.Adam(self.model.encoder.parameters(), settings.encoder_lr, betas=(0.9, 0.999))
        self.G: nn.Module = self.model.generator
        self.D: nn.Module = self.model.discriminator
        self.E: nn.Module | None = self.model.encoder
        self._wrap: Callable[[nn.Module], nn.Module] | None = None
        self._frozen: nn.Module | None = None  # the generator the encoder-only phase trains E against
        self._data: torch.Tensor | None = None
        self._fixed_z: torch.Tensor | None = None

    def networks(self) -> dict[str, nn.Module]:
        return self.model.modules()

    def optimizers(self) -> dict[str, torch.optim.Optimizer]:
        return self._optimizers

    def phases(self, steps_per_epoch: int) -> list[tuple[str, int]]:
        encoder_steps = self.settings.encoder_steps if self.settings.config.has_encoder else 0
        return [("gan", steps_per_epoch * self.settings.epochs)] + ([("encoder", encoder_steps)] if encoder_steps else [])

    def averaged(self, first_phase: bool) -> tuple[str, ...]:
        # E's codes must suit the averaged G; a finished run resumed for more epochs averages E anew
        redraws = self.model.encoder is not None and self.settings.recon_weight > 0 and first_phase
        return ("G", "E") if redraws else ("G",)

    def fit_batch(self, device: torch.device) -> int:
        return auto_batch_size(self.model, device)

    def fine_tune(self, init_from: str | os.PathLike[str]) -> None:
        base, config = load_model(init_from, "cpu"), self.settings.config
        if (base.config.half_size, base.config.gf, base.config.df, base.config.z_dim) != (config.half_size, config.gf, config.df, config.z_dim):
            raise TrainingError(
                f"{Path(init_from).name}: its networks ({base.config.to_dict()}) differ from the settings; "
                "fine-tuning keeps the architecture"
            )
        self.model.generator.load_state_dict(base.generator.state_dict())
        self.model.discriminator.load_state_dict(base.discriminator.state_dict())
        if base.encoder is not None and self.model.encoder is not None and base.config.ef == config.ef:
            self.model.encoder.load_state_dict(base.encoder.state_dict())

    def distribute(self, wrap: Callable[[nn.Module], nn.Module]) -> None:
        self._wrap = wrap
        self.G, self.D = wrap(self.model.generator), wrap(self.model.discriminator)
        if self.model.encoder is not None and self.settings.recon_weight:
            self.E = wrap(self.model.encoder)

    def set_data(self, pairs: PairSet, device: torch.device) -> None:
        self._data = to_joint_tensor(pairs)
        self._fixed_z = sample_z(SAMPLE_COUNT, self.settings.z_dim, torch.Generator().manual_seed(self.settings.seed + 7)).to(device)

    def begin_phase(self, phase: str, averages: dict[str, WeightAverage]) -> None:
        encoder = self.model.encoder
        if phase == "gan":
            if encoder is not None:
                encoder.train(self.settings.recon_weight > 0)
            return
        assert encoder is not None
        if "E" in averages:  # the encoder-only phase trains E on for the averaged G: from the averaged E
            encoder.load_state_dict(averages.pop("E").module.state_dict())
        self._frozen = (averages["G"].module if "G" in averages else self.model.generator).eval().requires_grad_(False)
        self.E = self._wrap(encoder) if self._wrap is not None else encoder
        encoder.train()

    def end_training(self) -> None:
        if self._frozen is not None:
            self._frozen.requires_grad_(True)
            if self.model.encoder is not None:
                self.model.encoder.eval()

    def step(
        self, phase: str, indices: torch.Tensor | None, rng: torch.Generator, share: tuple[int, int], device: torch.device,
    ) -> dict[str, float]:
        assert self._data is not None, "set_data first"
        s, (rank, world) = self.settings, share
        if phase == "gan":
            assert indices is not None
            real, z = _pairs_and_codes(self._data[indices], s, rng, rank, world, device)
            return _gan_step(
                self.G, self.D, self._optimizers["G"], self._optimizers["D"], real, z, s.g_steps, self.E,
                self._optimizers.get("E"), s.recon_weight, s.judge_redrawn, s.r1_gamma, rng if s.diff_augment else None, share,
            )
        assert self._frozen is not None and self.E is not None
        batch = max(2, min(s.batch_size, len(self._data)))
        z = sample_z(batch // 2, s.z_dim, rng).to(device)
        with torch.no_grad():
            made = self._frozen(z)
        chosen = torch.randint(len(self._data), (batch - batch // 2,), generator=rng)
        real = _as_float(self._data[chosen], device)
        if s.augment:
            real = augment(real, replace(s, noise=0.0), rng)
        targets = torch.cat([made, real])[rank::world]
        z_target = z[rank::world]  # G's own samples come first in every share
        return _encoder_step(self.E, self._frozen, self._optimizers["E"], targets, z_target, s.half_size)

    def exported(self, networks: dict[str, nn.Module], metadata: dict[str, Any]) -> JointModel:
        return JointModel(
            self.settings.config, networks["G"], networks["D"], networks.get("E"),  # type: ignore[arg-type]
            {**self.model.metadata, **metadata},
        )

    def samples(self, model: JointModel) -> np.ndarray:
        assert self._fixed_z is not None, "set_data first"
        return sample_grid(model, self._fixed_z)


def _gan_batch(
    data: torch.Tensor, step: int, steps_per_epoch: int, batch: int, settings: TrainSettings, rng: torch.Generator,
    rank: int, world: int, device: torch.device,
) -> tuple[torch.Tensor, torch.Tensor]:
    """This process's share of the step's real pairs (augmented) and codes.

    Every process draws the whole batch from the same ``rng`` and keeps ``[rank::world]``,
    so the processes together see what one process would, each pair augmented its own way.
    """
    epoch, index = divmod(step, steps_per_epoch)
    order = epoch_order(len(data), settings.seed, epoch)
    return _pairs_and_codes(data[order[index * batch : (index + 1) * batch]], settings, rng, rank, world, device)


def _pairs_and_codes(
    chosen: torch.Tensor, settings: TrainSettings, rng: torch.Generator, rank: int, world: int, device: torch.device,
) -> tuple[torch.Tensor, torch.Tensor]:
    """The step's chosen pairs (uint8) as floats, augmented, and as many codes; this process's share of both."""
    real = _as_float(chosen, device)
    if settings.augment:
        real = augment(real, settings, rng)
    z = sample_z(len(chosen), settings.z_dim, rng)
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


# -- jobs: fine-tuning, time estimates, thumbnails ---------------------------------------


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

    per_step = timed(gan_step, steps, device)
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

        per_encoder_step = timed(encoder_step, steps, device)
    steps_per_epoch = max(1, train_pairs // batch)
    return TimeEstimate(
        batch, train_pairs, steps_per_epoch, steps_per_epoch * settings.epochs, encoder_steps, per_step,
        per_encoder_step, device.type,
    )



def thumbnails(
    model: str | os.PathLike[str] | JointModel, count: int = 8, sketches: np.ndarray | None = None, seed: int = 0,
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


TRAINING = Training(TrainSettings, train, fine_tune_settings, estimate_training, thumbnails, ContextualRecipe.loss_names,
                    new_model_settings, {"z_dim": 16, "batch_size": 8, "encoder_steps": 3},
                    {"size": "half_size", "g_steps": "g_steps", "ef": "ef", "encoder_steps": "encoder_steps", "recon": "recon_weight",
                     "r1": "r1_gamma", "judge_redrawn": ("judge_redrawn", True), "diff_augment": ("diff_augment", True)})
