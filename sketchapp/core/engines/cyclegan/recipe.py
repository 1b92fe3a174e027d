"""Training CycleGAN (Zhu et al. 2017) on unpaired collections, as a recipe for ``train_recipe``.

The defaults of the paper's code: least-squares GAN loss, cycle loss lambda 10 each way,
identity loss 0.5 lambda, a pool of the last 50 generated pictures per discriminator,
Adam 2e-4 with beta1 0.5, and a learning rate that stays constant and then falls
linearly to zero (``decay_epochs``). Domain A is sketches (grey, repeated to three
channels), domain B pictures. An epoch visits the larger collection once; each A picture
meets a B picture drawn at random, as the paper's unaligned data set does.

Each picture is flipped and slightly warped on its own (no pairs to keep aligned), and
the sketches get the freehand changes of the pix2pix recipe (line width and darkness,
small gaps, noise), so the model meets drawings like the ones a pen makes.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from sketchapp.core.data.datasets import PairSet, UnpairedSet, as_unpaired
from sketchapp.core.engine import sketch_thumbnails, to_uint8
from sketchapp.core.engines.cyclegan.model import CYCLEGAN, CycleGANModel, build_cyclegan_model
from sketchapp.core.engines.cyclegan.networks import CycleGANConfig
from sketchapp.core.augment import freehand_lines, warp_pairs
from sketchapp.core.engines.base import Training, sized
from sketchapp.core.errors import SettingsError
from sketchapp.core.images import contact_grid
from sketchapp.core.records import Record, check_field_types
from sketchapp.core.trainer import OnePhaseRecipe, TrainEvent, TrainingError, base_model, inherited_settings, train_recipe

SAMPLE_COUNT = 4  # rows of A -> B -> A and as many of B -> A -> B


@dataclass(frozen=True)
class CycleGANTrainSettings(Record):
    """Defaults follow the paper's code (LSGAN, lambda 10, identity 0.5, pool 50, Adam 2e-4, beta1 0.5, batch 1),
    at the width a CPU can train."""

    WHAT = "CycleGAN training settings"

    size: int = 128
    gf: int = 32
    df: int = 32
    blocks: int = 0  # residual blocks; 0: the paper's choice for the size (6 below 256 px, else 9)
    epochs: int = 20
    decay_epochs: int = -1  # the learning rate falls linearly to zero over the last this many epochs; -1: the last half (the paper's 100 + 100)
    batch_size: int = 1
    lr: float = 2e-4
    beta1: float = 0.5
    beta2: float = 0.999
    cycle_weight: float = 10.0  # lambda, both ways
    identity_weight: float = 0.5  # times lambda
    pool: int = 50  # generated pictures each discriminator also sees again (0: none)
    ema: float = 0.0
    augment: bool = True
    flip: bool = True
    rotate_degrees: float = 4.0
    shear: float = 0.04
    scale: float = 0.06
    shift: float = 0.04
    noise: float = 0.02  # Gaussian noise on the sketches
    line_jitter: float = 0.4
    wobble: float = 0.0  # no pictures to drift from: the sketch's own lines stay
    gaps: float = 0.2
    seed: int = 0
    checkpoint_minutes: float = 5.0
    keep_every: int = 0

    def __post_init__(self) -> None:
        check_field_types(self, "CycleGAN training")
        if self.decay_epochs == -1:
            object.__setattr__(self, "decay_epochs", self.epochs // 2)
        self.config  # validates the architecture
        checks = [
            (1 <= self.epochs <= 100_000, "epochs must be 1-100000"),
            (0 <= self.decay_epochs <= self.epochs, "decay epochs must be 0 to the number of epochs (or -1: the last half)"),
            (0 <= self.batch_size <= 4096, "batch size must be 0-4096"),
            (0 < self.lr < 1 and 0 <= self.beta1 < 1 and 0 <= self.beta2 < 1, "lr must be in (0, 1), betas in [0, 1)"),
            (0 <= self.cycle_weight <= 1000 and 0 <= self.identity_weight <= 10, "cycle weight must be 0-1000, identity 0-10"),
            (0 <= self.pool <= 1000, "pool must be 0-1000 pictures"),
            (0 <= self.ema < 1, "EMA decay must be in [0, 1)"),
            (0 <= self.rotate_degrees <= 45, "rotation must be 0-45 degrees"),
            (0 <= self.shear <= 0.5 and 0 <= self.scale <= 0.5 and 0 <= self.shift <= 0.5, "shear, scale and shift must be 0-0.5"),
            (0 <= self.noise <= 0.5, "noise must be 0-0.5"),
            (0 <= self.line_jitter <= 1 and 0 <= self.gaps <= 1, "line jitter and gaps must be 0-1"),
            (0 <= self.wobble <= 8, "wobble must be 0-8 pixels"),
            (0 <= self.seed < 2**63, "seed must be in [0, 2**63)"),
            (self.checkpoint_minutes > 0, "checkpoint interval must be positive"),
            (self.keep_every >= 0, "keep_every must be >= 0"),
        ]
        for ok, message in checks:
            if not ok:
                raise SettingsError(f"CycleGAN training {message}")

    @property
    def config(self) -> CycleGANConfig:
        return CycleGANConfig(self.size, self.gf, self.df, self.blocks or CycleGANConfig.default_blocks(self.size))


class ImagePool(nn.Module):
    """The last ``capacity`` generated pictures (Shrivastava et al. 2017, as CycleGAN's code).

    Until it is full a query stores and returns the new pictures. Then each new picture
    is, with even odds, returned as it is, or stored in place of a random old one, which
    is returned instead, so a discriminator also judges what the generator drew earlier
    and the two do not chase each other in circles. The pictures are buffers, so the run's
    state holds them and a resumed run sees the same pool.
    """

    def __init__(self, capacity: int, size: int) -> None:
        super().__init__()
        self.capacity = capacity
        self.register_buffer("pictures", torch.zeros(capacity, 3, size, size))
        self.register_buffer("count", torch.zeros((), dtype=torch.long))

    @torch.no_grad()
    def query(self, pictures: torch.Tensor, rng: torch.Generator) -> torch.Tensor:
        if self.capacity == 0:
            return pictures
        out = []
        for picture in pictures.detach():
            count = int(self.count)
            if count < self.capacity:
                self.pictures[count] = picture
                self.count += 1
                out.append(picture)
            elif float(torch.rand((), generator=rng)) < 0.5:
                index = int(torch.randint(self.capacity, (), generator=rng))
                out.append(self.pictures[index].clone())
                self.pictures[index] = picture
            else:
                out.append(picture)
        return torch.stack(out)


def _lsgan(scores: torch.Tensor, target: float) -> torch.Tensor:
    return F.mse_loss(scores, torch.full_like(scores, target))


class CycleGANRecipe(OnePhaseRecipe):
    """CycleGAN's part of a training run: two generators, two discriminators, their pools and step."""

    kind = CYCLEGAN
    loss_names = ("d_a", "d_b", "g_a", "g_b", "cycle_a", "cycle_b", "idt_a", "idt_b")

    def __init__(self, settings: CycleGANTrainSettings) -> None:
        self.settings = settings
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(settings.seed)
            self.model = CycleGANModel.create(settings.config)
        self.pools = {"PA": ImagePool(settings.pool, settings.size), "PB": ImagePool(settings.pool, settings.size)}
        betas = (settings.beta1, settings.beta2)
        m = self.model
        self._optimizers = {
            "G": torch.optim.Adam([*m.g_ab.parameters(), *m.g_ba.parameters()], settings.lr, betas=betas),
            "D": torch.optim.Adam([*m.d_a.parameters(), *m.d_b.parameters()], settings.lr, betas=betas),
        }
        self.GA: nn.Module = m.g_ab
        self.GB: nn.Module = m.g_ba
        self.DA: nn.Module = m.d_a
        self.DB: nn.Module = m.d_b
        self._a: torch.Tensor | None = None
        self._b: torch.Tensor | None = None
        self._fixed: tuple[torch.Tensor, torch.Tensor] | None = None

    def networks(self) -> dict[str, nn.Module]:
        return {**self.model.modules(), **self.pools}

    def averaged(self, first_phase: bool) -> tuple[str, ...]:
        return ("GA", "GB")

    def fit_batch(self, device: torch.device) -> int:
        return self.settings.batch_size or 1  # the paper trains one picture at a time

    def end_training(self) -> None:
        for net in (self.model.d_a, self.model.d_b):
            net.requires_grad_(True)

    def fine_tune(self, init_from: str | os.PathLike[str]) -> None:
        base = base_model(init_from, CYCLEGAN, build_cyclegan_model)
        if base.config != self.settings.config:
            raise TrainingError(
                f"{Path(init_from).name}: its networks ({base.config.to_dict()}) differ from the settings "
                f"({self.settings.config.to_dict()}); fine-tuning keeps the architecture"
            )
        for mine, theirs in zip(self.model.modules().values(), base.modules().values()):
            mine.load_state_dict(theirs.state_dict())

    def distribute(self, wrap: Any) -> None:
        m = self.model
        self.GA, self.GB, self.DA, self.DB = wrap(m.g_ab), wrap(m.g_ba), wrap(m.d_a), wrap(m.d_b)

    def set_data(self, data: PairSet | UnpairedSet, device: torch.device) -> None:
        """Both collections as uint8 tensors (N, 3, S, S) on the CPU; paired data is used without its pairing."""
        unpaired = data if isinstance(data, UnpairedSet) else as_unpaired(data)
        if not len(unpaired):
            raise TrainingError("CycleGAN needs pictures in both collections")
        self._a = torch.from_numpy(unpaired.a).permute(0, 3, 1, 2).contiguous()
        self._b = torch.from_numpy(unpaired.b).permute(0, 3, 1, 2).contiguous()
        picks = [np.linspace(0, len(x) - 1, min(SAMPLE_COUNT, len(x))).astype(int) for x in (self._a, self._b)]
        self._fixed = (self._unit(self._a[torch.from_numpy(picks[0])], device), self._unit(self._b[torch.from_numpy(picks[1])], device))

    @staticmethod
    def _unit(pictures: torch.Tensor, device: torch.device) -> torch.Tensor:
        return pictures.to(device).float().div_(127.5).sub_(1.0)

    def batch(self, indices: torch.Tensor, rng: torch.Generator, share: tuple[int, int], device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
        """This process's share of the step's (sketches A, pictures B), each augmented its own way."""
        assert self._a is not None and self._b is not None, "set_data first"
        s = self.settings
        a = self._unit(self._a[indices % len(self._a)], device)
        b = self._unit(self._b[torch.randint(len(self._b), (len(indices),), generator=rng)], device)
        if s.augment:
            a, b = warp_pairs(a, s, rng), warp_pairs(b, s, rng)
            a = freehand_lines(a.mean(1, keepdim=True), s, rng).expand(-1, 3, -1, -1)
        rank, world = share
        return a[rank::world].contiguous(), b[rank::world].contiguous()

    def step(
        self, phase: str, indices: torch.Tensor | None, rng: torch.Generator, share: tuple[int, int], device: torch.device,
    ) -> dict[str, float]:
        assert indices is not None, "CycleGAN has one phase, counted in epochs"
        real_a, real_b = self.batch(indices, rng, share, device)
        s = self.settings
        opt_g, opt_d = self._optimizers["G"], self._optimizers["D"]
        fake_b = self.GA(real_a)
        rec_a = self.GB(fake_b)
        fake_a = self.GB(real_b)
        rec_b = self.GA(fake_a)
        # G: fool both discriminators, come back to where it started, leave a picture of the target domain alone
        for net in (self.model.d_a, self.model.d_b):
            net.requires_grad_(False)
        g_a = _lsgan(self.DB(fake_b), 1.0)
        g_b = _lsgan(self.DA(fake_a), 1.0)
        cycle_a = F.l1_loss(rec_a, real_a) * s.cycle_weight
        cycle_b = F.l1_loss(rec_b, real_b) * s.cycle_weight
        loss = g_a + g_b + cycle_a + cycle_b
        idt_a = idt_b = torch.zeros(())
        if s.identity_weight > 0:
            idt_a = F.l1_loss(self.GA(real_b), real_b) * s.cycle_weight * s.identity_weight
            idt_b = F.l1_loss(self.GB(real_a), real_a) * s.cycle_weight * s.identity_weight
            loss = loss + idt_a + idt_b
        opt_g.zero_grad(set_to_none=True)
        loss.backward()
        opt_g.step()
        # D: real -> 1, generated (from the pool) -> 0, halved as in the paper's code
        for net in (self.model.d_a, self.model.d_b):
            net.requires_grad_(True)
        pooled_b = self.pools["PB"].query(fake_b, rng)
        pooled_a = self.pools["PA"].query(fake_a, rng)
        d_b = 0.5 * (_lsgan(self.DB(real_b), 1.0) + _lsgan(self.DB(pooled_b), 0.0))
        d_a = 0.5 * (_lsgan(self.DA(real_a), 1.0) + _lsgan(self.DA(pooled_a), 0.0))
        opt_d.zero_grad(set_to_none=True)
        (d_a + d_b).backward()
        opt_d.step()
        return {
            "d_a": d_a.item(), "d_b": d_b.item(), "g_a": g_a.item(), "g_b": g_b.item(),
            "cycle_a": cycle_a.item(), "cycle_b": cycle_b.item(), "idt_a": idt_a.item(), "idt_b": idt_b.item(),
        }

    def exported(self, networks: dict[str, nn.Module], metadata: dict[str, Any]) -> CycleGANModel:
        return CycleGANModel(
            self.settings.config, networks["GA"], networks["GB"], networks["DA"], networks["DB"],  # type: ignore[arg-type]
            {**self.model.metadata, **metadata},
        )

    def samples(self, model: CycleGANModel) -> np.ndarray:
        """Rows of A -> B -> A, then rows of B -> A -> B, for fixed training pictures."""
        assert self._fixed is not None, "set_data first"
        a, b = self._fixed
        nets = (model.g_ab, model.g_ba)
        modes = [net.training for net in nets]
        for net in nets:
            net.eval()
        try:
            with torch.no_grad():
                fake_b = model.g_ab(a)
                fake_a = model.g_ba(b)
                rows = [torch.stack([a, fake_b, model.g_ba(fake_b)], 1), torch.stack([b, fake_a, model.g_ab(fake_a)], 1)]
        finally:
            for net, mode in zip(nets, modes):
                net.train(mode)
        return contact_grid(to_uint8(torch.cat(rows).flatten(0, 1)), 3, gap=4)


# -- jobs: fine-tuning, time estimates, thumbnails ---------------------------------------

#: what a fine-tune inherits of the recipe that made its base model (not epochs, batch or seed)
_RECIPE_FIELDS = ("cycle_weight", "identity_weight", "pool", "line_jitter", "gaps", "ema")


def fine_tune_settings(base: str | os.PathLike[str], **overrides: Any) -> CycleGANTrainSettings:
    """Training settings that keep a trained CycleGAN model's networks and recipe, with ``overrides``."""
    return CycleGANTrainSettings.from_dict({**inherited_settings(base, CYCLEGAN, _RECIPE_FIELDS), **overrides})


def estimate_training(settings: CycleGANTrainSettings, pair_count: int, device: torch.device | str = "cpu", steps: int = 3) -> Any:
    """Time ``steps`` real training steps (after one warm-up) on noise pictures; ``pair_count`` is the larger collection."""
    from sketchapp.core.estimate import TimeEstimate, timed, train_share

    if pair_count < 1:
        raise TrainingError("there are no pictures to train on")
    device = torch.device(device)
    train_count = max(1, train_share(pair_count, settings.seed))
    batch = min(settings.batch_size or 1, train_count)
    rng = np.random.default_rng(settings.seed)
    s = settings.size
    noise = rng.integers(0, 256, (batch, s, s, 3), dtype=np.uint8)
    names = [str(i) for i in range(batch)]
    recipe = CycleGANRecipe(settings)
    for module in recipe.networks().values():
        module.to(device).train()
    recipe.set_data(UnpairedSet(noise, noise.copy(), names, names), device)
    generator = torch.Generator().manual_seed(settings.seed)
    per_step = timed(lambda: recipe.step("train", torch.arange(batch), generator, (0, 1), device), steps, device)
    steps_per_epoch = max(1, train_count // batch)
    return TimeEstimate(batch, train_count, steps_per_epoch, steps_per_epoch * settings.epochs, 0, per_step, 0.0, device.type)


def thumbnails(model: CycleGANModel, count: int = 8, sketches: np.ndarray | None = None, seed: int = 0) -> np.ndarray:
    """(count, S, S, 3) uint8: the model's pictures of ``count`` sketches spread over ``sketches`` (blank paper without)."""
    from sketchapp.core.engines.cyclegan.engine import CycleGANEngine, CycleGANSettings

    engine = CycleGANEngine(model, next(model.g_ab.parameters()).device)
    return sketch_thumbnails(engine, count, sketches, CycleGANSettings(seed=seed))


def train(run_dir: str | os.PathLike[str], data: Any, settings: CycleGANTrainSettings, *args: Any, **kwargs: Any) -> Iterator[TrainEvent]:
    """Train on ``data`` into ``run_dir``: ``core.trainer.train_recipe``'s arguments after the recipe."""
    return train_recipe(run_dir, CycleGANRecipe(settings), data, *args, **kwargs)


TRAINING = Training(CycleGANTrainSettings, train, fine_tune_settings, estimate_training, thumbnails, CycleGANRecipe.loss_names, sized,
                    {"batch_size": 4, "decay_epochs": 1, "pool": 3, "blocks": 2},
                    {"size": "size", "decay_epochs": "decay_epochs", "cycle": "cycle_weight", "identity": "identity_weight",
                     "pool": "pool", "blocks": "blocks"})
