"""Training the x4 upscaler (``sketchapp upscaler train``), through the one training loop.

Each step takes one crop of every picture in the batch at the data's size (the target),
shrinks it by the factor with an area average (what drawing the picture small gives),
blurs half of the small crops a little and adds faint noise to a third (a model's
picture is softer and grainier than a clean shrink), and fits the network to the target
with an L1 loss (Lim et al. 2017). Crops fall where the picture has something on it:
paper alone teaches nothing.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from sketchapp.core.data.datasets import PairSet
from sketchapp.core.engine import to_uint8
from sketchapp.core.errors import CheckpointError, SettingsError
from sketchapp.core.images import contact_grid
from sketchapp.core.records import Record, check_field_types
from sketchapp.core.trainer import OnePhaseRecipe, TrainEvent, TrainingError, train_recipe
from sketchapp.core.upscale import UPSCALER, UpscalerConfig, UpscalerModel, load_upscaler

SAMPLE_COUNT = 6
PAPER = 250  # a pixel at least this light in every channel is paper


@dataclass(frozen=True)
class UpscalerTrainSettings(Record):
    """How an upscaler is trained (a run's settings.json keeps them)."""

    WHAT = "upscaler training settings"

    size: int = 512  # the side of the data set's pictures (the targets)
    factor: int = 4
    width: int = 32
    blocks: int = 4
    patch: int = 128  # side of a target crop
    epochs: int = 40
    decay_epochs: int = 10
    batch_size: int = 16
    lr: float = 5e-4
    blur: float = 0.5  # share of small crops blurred (sigma 0.3-1.0 small pixels)
    noise: float = 0.3  # share of small crops given Gaussian noise (sigma up to 0.03)
    ema: float = 0.0
    seed: int = 0
    checkpoint_minutes: float = 5.0
    keep_every: int = 0

    def __post_init__(self) -> None:
        check_field_types(self, "upscaler training")
        self.config  # validates the architecture
        checks = [
            (self.patch % self.factor == 0 and self.factor * 4 <= self.patch <= self.size, "patch must be a multiple of the factor, 4 small pixels to the picture size"),
            (1 <= self.epochs <= 100_000 and 0 <= self.decay_epochs <= self.epochs, "epochs must be 1-100000, decay epochs 0 to that"),
            (1 <= self.batch_size <= 4096 and 0 < self.lr < 1, "batch size must be 1-4096, lr in (0, 1)"),
            (0 <= self.blur <= 1 and 0 <= self.noise <= 1 and 0 <= self.ema < 1, "blur and noise shares must be 0-1, EMA decay in [0, 1)"),
            (0 <= self.seed < 2**63 and self.checkpoint_minutes > 0 and self.keep_every >= 0, "bad seed, checkpoint interval or keep_every"),
        ]
        for ok, message in checks:
            if not ok:
                raise SettingsError(f"upscaler training: {message}")

    @property
    def config(self) -> UpscalerConfig:
        try:
            return UpscalerConfig(self.factor, self.width, self.blocks)
        except CheckpointError as exc:
            raise SettingsError(str(exc)) from exc


def _gaussian_blur(x: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
    """Each picture of ``x`` blurred with its own sigma (small pixels), by a 5-tap separable kernel."""
    taps = torch.arange(-2, 3, dtype=x.dtype, device=x.device)
    kernel = torch.exp(-(taps[None] ** 2) / (2 * sigma[:, None] ** 2))
    kernel = kernel / kernel.sum(1, keepdim=True)  # (N, 5)
    n, c, h, w = x.shape
    flat = F.pad(x.reshape(1, n * c, h, w), (2, 2, 2, 2), mode="replicate")
    rows = kernel.repeat_interleave(c, 0)
    flat = F.conv2d(flat, rows[:, None, None, :], groups=n * c)
    flat = F.conv2d(flat, rows[:, None, :, None], groups=n * c)
    return flat.reshape(n, c, h, w)


def shrink(target: torch.Tensor, factor: int) -> torch.Tensor:
    """The picture a model would have drawn at 1/``factor`` the size: an area average."""
    return F.avg_pool2d(target, factor)


class UpscalerRecipe(OnePhaseRecipe):
    """The upscaler's part of a training run."""

    kind = UPSCALER
    loss_names = ("l1", "l1_bilinear")

    def __init__(self, settings: UpscalerTrainSettings) -> None:
        self.settings = settings
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(settings.seed)
            self.model = UpscalerModel.create(settings.config, {"size": settings.size})
        self._optimizers = {"U": torch.optim.Adam(self.model.net.parameters(), settings.lr)}
        self.U: nn.Module = self.model.net
        self._pictures: torch.Tensor | None = None
        self._boxes: torch.Tensor | None = None
        self._fixed: torch.Tensor | None = None

    def averaged(self, first_phase: bool) -> tuple[str, ...]:
        return ("U",)

    def fine_tune(self, init_from: str | os.PathLike[str]) -> None:
        base = load_upscaler(init_from)
        if base.config != self.settings.config:
            raise TrainingError(f"{os.path.basename(init_from)}: its network ({base.config.to_dict()}) differs from the settings")
        self.model.net.load_state_dict(base.net.state_dict())

    def distribute(self, wrap: Any) -> None:
        self.U = wrap(self.model.net)

    def set_data(self, pairs: PairSet, device: torch.device) -> None:
        """The training pictures (uint8, N x 3 x S x S, on the CPU) and where each has something on it."""
        self._pictures = torch.from_numpy(pairs.images).permute(0, 3, 1, 2).contiguous()
        s, patch = self.settings.size, self.settings.patch
        boxes = []
        for picture in pairs.images:
            ys, xs = np.nonzero((picture < PAPER).any(2))
            if len(ys) == 0:
                boxes.append((0, 0, s - patch, s - patch))
                continue
            # crop corners whose crop overlaps the drawn part
            boxes.append((
                max(0, min(int(ys.min()) - patch // 2, s - patch)), max(0, min(int(xs.min()) - patch // 2, s - patch)),
                max(0, min(int(ys.max()) - patch // 2, s - patch)), max(0, min(int(xs.max()) - patch // 2, s - patch)),
            ))
        self._boxes = torch.tensor(boxes)
        picks = np.linspace(0, len(pairs) - 1, min(SAMPLE_COUNT, len(pairs))).astype(int)
        self._fixed = self._crops(torch.from_numpy(picks), torch.Generator().manual_seed(self.settings.seed + 11)).to(device)

    def _crops(self, indices: torch.Tensor, rng: torch.Generator) -> torch.Tensor:
        """One target crop (in [-1, 1]) of each picture, somewhere on its drawn part, turned and flipped at random."""
        assert self._pictures is not None and self._boxes is not None, "set_data first"
        patch, factor = self.settings.patch, self.settings.factor
        crops = []
        for index in indices.tolist():
            y0, x0, y1, x1 = self._boxes[index].tolist()
            y = (y0 + int(torch.randint(0, y1 - y0 + 1, (1,), generator=rng))) // factor * factor
            x = (x0 + int(torch.randint(0, x1 - x0 + 1, (1,), generator=rng))) // factor * factor
            crop = self._pictures[index, :, y : y + patch, x : x + patch]
            crop = torch.rot90(crop, int(torch.randint(0, 4, (1,), generator=rng)), (1, 2))
            crops.append(crop.flip(2) if bool(torch.rand(1, generator=rng) < 0.5) else crop)
        return torch.stack(crops).float().div(127.5).sub(1)

    def degraded(self, target: torch.Tensor, rng: torch.Generator) -> torch.Tensor:
        """The small picture a model gives for ``target``: shrunk, some blurred, some grainy."""
        s = self.settings
        small = shrink(target, s.factor)
        n = len(small)
        blurred = torch.rand(n, generator=rng) < s.blur
        sigma = 0.3 + 0.7 * torch.rand(n, generator=rng)
        small = torch.where(blurred[:, None, None, None], _gaussian_blur(small, sigma), small)
        grainy = (torch.rand(n, generator=rng) < s.noise).float() * 0.06 * torch.rand(n, generator=rng)
        noise = torch.randn(small.shape, generator=rng) * grainy[:, None, None, None]
        return (small + noise.to(small.device)).clamp(-1, 1)

    def step(
        self, phase: str, indices: torch.Tensor | None, rng: torch.Generator, share: tuple[int, int], device: torch.device,
    ) -> dict[str, float]:
        assert indices is not None, "the upscaler has one phase, counted in epochs"
        rank, world = share
        target = self._crops(indices, rng)
        small = self.degraded(target, rng)
        target, small = target[rank::world].to(device), small[rank::world].to(device)
        out = self.U(small)
        loss = F.l1_loss(out, target)
        optimizer = self._optimizers["U"]
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        with torch.no_grad():
            bilinear = F.l1_loss(F.interpolate(small, scale_factor=self.settings.factor, mode="bilinear", align_corners=False), target)
        return {"l1": loss.item(), "l1_bilinear": bilinear.item()}

    def exported(self, networks: dict[str, nn.Module], metadata: dict[str, Any]) -> UpscalerModel:
        return UpscalerModel(self.settings.config, networks["U"], {**self.model.metadata, **metadata})  # type: ignore[arg-type]

    def samples(self, model: UpscalerModel) -> np.ndarray:
        """Rows of enlarged plainly (bicubic) | the upscaler's | the truth, for fixed crops."""
        assert self._fixed is not None, "set_data first"
        target = self._fixed
        small = shrink(target, self.settings.factor)
        was_training = model.net.training
        model.net.eval()
        try:
            with torch.no_grad():
                ours = model.net(small).clamp(-1, 1)
        finally:
            model.net.train(was_training)
        plain = F.interpolate(small, scale_factor=self.settings.factor, mode="bicubic", align_corners=False).clamp(-1, 1)
        pictures = to_uint8(torch.stack([plain, ours, target], 1).flatten(0, 1))
        return contact_grid(pictures, 3, gap=4)


def train(
    run_dir: str | os.PathLike[str], data: PairSet, settings: UpscalerTrainSettings, *args: Any, **kwargs: Any,
) -> Iterator[TrainEvent]:
    return train_recipe(run_dir, UpscalerRecipe(settings), data, *args, **kwargs)
