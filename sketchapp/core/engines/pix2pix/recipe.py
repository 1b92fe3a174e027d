"""Training pix2pix (Isola et al. 2017) with colour hints, as a recipe for ``train_recipe``.

Loss (the paper's eq. 4): G* = arg min_G max_D L_cGAN(G, D) + lambda L_L1(G), lambda = 100,
Adam 2e-4, beta1 0.5; optionally plus mu (1 - SSIM(G)), which rewards placing the
picture's structure (highlights, features, shading) where the truth has it, as L1's
averaged fills do not (Zhao et al. 2017, "Loss Functions for Image Restoration with
Neural Networks", mix SSIM and L1 the same way). D judges (sketch, picture) pairs patch by patch; its loss is
halved, as in the paper's code, so it learns more slowly than G.

With a colour grid, colour is classified as well (Zhang et al. 2016, "Colorful Image
Colorization"; their 2017 hint paper keeps the same loss beside regression): the colour
head's cell scores learn a rebalanced cross-entropy against the truth's soft-encoded ab
(weight ``colour_weight``, the weights from the training pictures' colours), L1 keeps
teaching the decoder's own picture, whose lightness the final picture keeps, and D and
the SSIM term judge the final picture, coloured by the scores' annealed mean.

Each step augments the pairs (seed 003: rotation, shear, zoom, shift and Gaussian
noise, one warp for both sides), then changes the sketch alone the way freehand
drawing differs from a clean outline (line width and darkness, a small wobble of the
lines against the picture, small gaps), and samples colour hints from the true picture
(Zhang et al. 2017: none for many samples, else a few small patches of the truth's mean
colour), so the generator learns to follow a hint in one forward pass.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from sketchapp.core.colour import colour_loss, rebalancing_weights, rgb_to_lab
from sketchapp.core.augment import freehand_lines, warp_pairs
from sketchapp.core.data.datasets import PairSet
from sketchapp.core.engine import sketch_thumbnails, to_uint8
from sketchapp.core.engines.pix2pix.model import PIX2PIX, Pix2PixModel, build_pix2pix_model, generator_input
from sketchapp.core.engines.pix2pix.networks import EnhancedGenerator, Pix2PixConfig
from sketchapp.core.engines.base import Training, sized
from sketchapp.core.errors import SettingsError
from sketchapp.core.records import Record, check_field_types
from sketchapp.core.images import contact_grid
from sketchapp.core.losses import ssim
from sketchapp.core.trainer import OnePhaseRecipe, TrainEvent, TrainingError, base_model, inherited_settings, train_recipe

SAMPLE_COUNT = 8


@dataclass(frozen=True)
class Pix2PixTrainSettings(Record):
    """Defaults follow the paper (lambda 100, Adam 2e-4, beta1 0.5) at the width a CPU can train."""

    WHAT = "pix2pix training settings"

    size: int = 128
    gf: int = 32
    df: int = 32
    hints: bool = True
    dropout: float = 0.5
    epochs: int = 20
    decay_epochs: int = 0  # the learning rate falls linearly to zero over the last this many epochs (the paper's niter_decay)
    batch_size: int = 16
    lr: float = 2e-4
    beta1: float = 0.5
    beta2: float = 0.999
    l1_weight: float = 100.0
    ssim_weight: float = 0.0  # weight of 1 - SSIM beside L1 (0: the paper's loss)
    colour_grid: int = 0  # > 0: colour classified over CIELab ab cells of this side (Zhang et al. 2016); 0: regressed only
    colour_weight: float = 1.0  # weight of the rebalanced colour cross-entropy (with a colour grid)
    colour_rebalance: float = 0.5  # the paper's lambda: share of uniform mixed into the colour frequencies (1: no rebalancing)
    global_size: int = 0  # > 0: a U-Net at this size and an enhancer to the full size (``networks.EnhancedGenerator``)
    enhancer: int = 16  # the enhancer's width
    ema: float = 0.0
    augment: bool = True
    flip: bool = True
    rotate_degrees: float = 8.0
    shear: float = 0.08
    scale: float = 0.1
    shift: float = 0.06
    noise: float = 0.03  # Gaussian noise on the sketch
    line_jitter: float = 0.6  # 0-1: lines thinned, thickened, lightened or darkened by up to this much
    wobble: float = 1.5  # pixels the sketch's lines may drift from the picture's edges
    gaps: float = 0.3  # share of sketches that get small gaps in their lines
    no_hints: float = 0.5  # share of samples trained without any hint
    max_hints: int = 10  # at most this many hint patches on the others
    recolour: float = 0.5  # share of hinted samples whose picture is first turned to another hue, lightness and saturation
    seed: int = 0
    checkpoint_minutes: float = 5.0
    keep_every: int = 0

    def __post_init__(self) -> None:
        check_field_types(self, "pix2pix training")
        self.config  # validates the architecture
        checks = [
            (1 <= self.epochs <= 100_000, "epochs must be 1-100000"),
            (0 <= self.decay_epochs <= self.epochs, "decay epochs must be 0 to the number of epochs"),
            (1 <= self.batch_size <= 4096, "batch size must be 1-4096"),
            (0 < self.lr < 1 and 0 <= self.beta1 < 1 and 0 <= self.beta2 < 1, "lr must be in (0, 1), betas in [0, 1)"),
            (0 <= self.l1_weight <= 10_000, "L1 weight must be 0-10000"),
            (0 <= self.ssim_weight <= 10_000, "SSIM weight must be 0-10000"),
            (0 <= self.colour_weight <= 10_000, "colour weight must be 0-10000"),
            (0 < self.colour_rebalance <= 1, "colour rebalance must be in (0, 1]"),
            (0 <= self.ema < 1, "EMA decay must be in [0, 1)"),
            (0 <= self.rotate_degrees <= 45, "rotation must be 0-45 degrees"),
            (0 <= self.shear <= 0.5 and 0 <= self.scale <= 0.5 and 0 <= self.shift <= 0.5, "shear, scale and shift must be 0-0.5"),
            (0 <= self.noise <= 0.5, "noise must be 0-0.5"),
            (all(0 <= v <= 1 for v in (self.line_jitter, self.gaps, self.no_hints, self.recolour)),
             "line jitter, gaps, no_hints and recolour must be 0-1"),
            (0 <= self.wobble <= 8, "wobble must be 0-8 pixels"),
            (0 <= self.max_hints <= 100, "max_hints must be 0-100"),
            (0 <= self.seed < 2**63, "seed must be in [0, 2**63)"),
            (self.checkpoint_minutes > 0, "checkpoint interval must be positive"),
            (self.keep_every >= 0, "keep_every must be >= 0"),
        ]
        for ok, message in checks:
            if not ok:
                raise SettingsError(f"pix2pix training {message}")

    @property
    def unused_losses(self) -> frozenset[str]:
        """Losses its training reports as 0 every step, which a plot leaves out: the colour cells without a colour head."""
        return frozenset() if self.colour_grid else frozenset({"g_colour"})

    @property
    def config(self) -> Pix2PixConfig:
        return Pix2PixConfig(self.size, self.gf, self.df, self.hints, self.dropout, self.colour_grid, self.global_size, self.enhancer)


# -- augmentation ----------------------------------------------------------------------


#: RGB <-> YIQ (NTSC): hue is the angle in the IQ plane, and grey (white paper) has I = Q = 0.
_YIQ = torch.tensor([[0.299, 0.587, 0.114], [0.596, -0.274, -0.322], [0.211, -0.523, 0.312]])


def rotate_hue(
    pictures: torch.Tensor, angles: torch.Tensor, lightness: torch.Tensor | None = None, saturation: torch.Tensor | None = None,
) -> torch.Tensor:
    """(N, 3, S, S) in [-1, 1], each turned by its angle (radians) around the hue circle, its colours'
    saturation scaled by ``saturation`` and their darkness (distance from white) by ``lightness``; white stays white."""
    yiq = _YIQ.to(pictures.device, pictures.dtype)
    n = len(pictures)
    cos, sin = torch.cos(angles).to(pictures), torch.sin(angles).to(pictures)
    chroma = saturation.to(pictures) if saturation is not None else torch.ones(n).to(pictures)
    one, nil = torch.ones_like(cos), torch.zeros_like(cos)
    turn = torch.stack([
        torch.stack([one, nil, nil], 1), torch.stack([nil, cos * chroma, -sin * chroma], 1),
        torch.stack([nil, sin * chroma, cos * chroma], 1),
    ], 1)
    matrix = torch.linalg.inv(yiq) @ turn @ yiq  # (N, 3, 3)
    unit = (pictures + 1) / 2
    turned = torch.einsum("nij,njhw->nihw", matrix, unit)
    if lightness is not None:
        turned = 1 - (1 - turned) * lightness.to(pictures)[:, None, None, None]
    return turned.clamp(0, 1) * 2 - 1


def hint_counts(n: int, settings: Pix2PixTrainSettings, rng: torch.Generator) -> torch.Tensor:
    """How many hint patches each of ``n`` samples gets: none for a share ``no_hints``, else 1 to ``max_hints``."""
    if settings.max_hints == 0:
        return torch.zeros(n, dtype=torch.long)
    counts = torch.randint(1, settings.max_hints + 1, (n,), generator=rng)
    return torch.where(torch.rand(n, generator=rng) < settings.no_hints, torch.zeros_like(counts), counts)


def sample_hints(
    pictures: torch.Tensor, settings: Pix2PixTrainSettings, rng: torch.Generator, counts: torch.Tensor | None = None
) -> torch.Tensor:
    """Hint channels (N, 4, S, S) sampled from the true pictures (N, 3, S, S): colour (RGB) and mask.

    After Zhang et al. 2017: a share ``no_hints`` of samples gets none; the others 1 to
    ``max_hints`` square patches (2 to S/12 pixels a side) at random places, each filled
    with the truth's mean colour there, so a hint says "this area is this colour".
    ``counts`` gives the number of patches per sample instead.
    """
    n, _, s, _ = pictures.shape
    device, dtype = pictures.device, pictures.dtype
    colours = torch.zeros(n, 3, s, s, device=device, dtype=dtype)
    mask = torch.zeros(n, 1, s, s, device=device, dtype=dtype)
    if settings.max_hints == 0:
        return torch.cat([colours, mask], 1)
    counts = hint_counts(n, settings, rng) if counts is None else counts
    largest = max(3, s // 12)
    sides = torch.randint(2, largest + 1, (n, settings.max_hints), generator=rng)
    ys = (torch.rand(n, settings.max_hints, generator=rng) * (s - sides)).long()
    xs = (torch.rand(n, settings.max_hints, generator=rng) * (s - sides)).long()
    for i in range(n):
        for j in range(int(counts[i])):
            y, x, side = int(ys[i, j]), int(xs[i, j]), int(sides[i, j])
            patch = pictures[i, :, y : y + side, x : x + side]
            colours[i, :, y : y + side, x : x + side] = patch.mean((1, 2), keepdim=True)
            mask[i, :, y : y + side, x : x + side] = 1
    return torch.cat([colours, mask], 1)


# -- the recipe ------------------------------------------------------------------------


class Pix2PixRecipe(OnePhaseRecipe):
    """pix2pix's part of a training run: its networks, optimisers, step and samples."""

    kind = PIX2PIX
    loss_names = ("d_loss", "g_gan", "g_l1", "g_ssim", "g_colour", "d_real", "d_fake")

    def __init__(self, settings: Pix2PixTrainSettings) -> None:
        self.settings = settings
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(settings.seed)
            self.model = Pix2PixModel.create(settings.config)
        betas = (settings.beta1, settings.beta2)
        self._optimizers = {
            "G": torch.optim.Adam(self.model.generator.parameters(), settings.lr, betas=betas),
            "D": torch.optim.Adam(self.model.discriminator.parameters(), settings.lr, betas=betas),
        }
        self.G: nn.Module = self.model.generator
        self.D: nn.Module = self.model.discriminator
        self._data: torch.Tensor | None = None
        self._fixed: tuple[torch.Tensor, torch.Tensor, torch.Tensor] | None = None
        self._colour_weights: torch.Tensor | None = None  # rebalancing of the colour cells, from the training pictures

    def averaged(self, first_phase: bool) -> tuple[str, ...]:
        return ("G",)

    def fine_tune(self, init_from: str | os.PathLike[str]) -> None:
        base = base_model(init_from, PIX2PIX, build_pix2pix_model)
        config = self.settings.config
        adds_colour = base.config.colour_grid == 0 and replace(base.config, colour_grid=config.colour_grid) == config
        grows = config.global_size and base.config == config.core
        if base.config != config and not adds_colour and not grows:
            raise TrainingError(
                f"{Path(init_from).name}: its networks ({base.config.to_dict()}) differ from the settings "
                f"({config.to_dict()}); fine-tuning keeps the architecture, adds a colour head or grows it to a larger size"
            )
        generator = self.model.generator
        if grows:  # the trained model becomes the enhanced one's U-Net; the enhancer starts as a plain enlargement
            assert isinstance(generator, EnhancedGenerator)
            generator.core.load_state_dict(base.generator.state_dict())
        else:  # a model without a colour head gives every other weight; the new head starts from scratch
            missing, unexpected = generator.load_state_dict(base.generator.state_dict(), strict=not adds_colour)
            assert not unexpected and all(name.startswith("colour.") for name in missing)
        self.model.discriminator.load_state_dict(base.discriminator.state_dict())

    def distribute(self, wrap: Any) -> None:
        self.G, self.D = wrap(self.model.generator), wrap(self.model.discriminator)

    def set_data(self, pairs: PairSet, device: torch.device) -> None:
        """The training pairs as one uint8 tensor (N, 4, S, S) on the CPU: sketch, then picture."""
        sketches = torch.from_numpy(pairs.sketches)[:, None]
        images = torch.from_numpy(pairs.images).permute(0, 3, 1, 2)
        self._data = torch.cat([sketches, images], 1).contiguous()
        picks = np.linspace(0, len(pairs) - 1, min(SAMPLE_COUNT, len(pairs))).astype(int)
        fixed = self._data[torch.from_numpy(picks)].float().div(127.5).sub(1).to(device)
        sketch, truth = fixed[:, :1], fixed[:, 1:]
        hints = sample_hints(truth, replace(self.settings, no_hints=0.0, max_hints=3), torch.Generator().manual_seed(self.settings.seed + 11))
        hints[: len(hints) // 2] = 0  # the first half of the samples without hints, the second with
        self._fixed = (sketch, hints, truth)
        if self.settings.colour_grid:
            # the cells' frequencies from up to 512 training pictures at 32 px: the paper's rebalancing
            chosen = torch.from_numpy(np.linspace(0, len(pairs) - 1, min(512, len(pairs))).astype(int))
            pictures = self._data[chosen, 1:].float().div(255)
            ab = rgb_to_lab(F.adaptive_avg_pool2d(pictures, 32))[:, 1:]
            self._colour_weights = rebalancing_weights(ab, self.settings.colour_grid, self.settings.colour_rebalance).to(device)

    def batch(self, indices: torch.Tensor, rng: torch.Generator, share: tuple[int, int], device: torch.device) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """This process's share of the step's (sketch, hints, picture), each pair augmented its own way."""
        assert self._data is not None, "set_data first"
        s = self.settings
        pairs = self._data[indices].to(device).float().div_(127.5).sub_(1.0)
        if s.augment:
            pairs = warp_pairs(pairs, s, rng)
            sketch = freehand_lines(pairs[:, :1], s, rng)
        else:
            sketch = pairs[:, :1]
        truth = pairs[:, 1:]
        counts = hint_counts(len(truth), s, rng)
        # A share of the hinted pictures changes colour first, so their colours can be known only
        # from the hints: otherwise a model learns each shape's colour by heart and ignores them.
        n = len(truth)
        turn = (counts > 0) & (torch.rand(n, generator=rng) < s.recolour)
        angles = torch.rand(n, generator=rng) * 2 * math.pi
        lightness, saturation = 0.5 + torch.rand(n, generator=rng), 0.5 + torch.rand(n, generator=rng)
        recoloured = rotate_hue(truth, angles, lightness, saturation)
        truth = torch.where(turn[:, None, None, None].to(truth.device), recoloured, truth)
        hints = sample_hints(truth, s, rng, counts)
        rank, world = share
        return sketch[rank::world], hints[rank::world], truth[rank::world]

    def step(
        self, phase: str, indices: torch.Tensor | None, rng: torch.Generator, share: tuple[int, int], device: torch.device,
    ) -> dict[str, float]:
        assert indices is not None, "pix2pix has one phase, counted in epochs"
        sketch, hints, truth = self.batch(indices, rng, share, device)
        bce = F.binary_cross_entropy_with_logits
        raw, logits = self.G(generator_input(sketch, hints, self.settings.config), unmixed=True)
        fake = raw if logits is None else self.model.generator.mix(raw, logits)
        opt_g, opt_d = self._optimizers["G"], self._optimizers["D"]
        # D: real pairs -> 1, generated -> 0, halved (the paper's code), so D learns slower than G
        d_real = self.D(torch.cat([sketch, truth], 1))
        d_fake = self.D(torch.cat([sketch, fake.detach()], 1))
        d_loss = 0.5 * (bce(d_real, torch.ones_like(d_real)) + bce(d_fake, torch.zeros_like(d_fake)))
        opt_d.zero_grad(set_to_none=True)
        d_loss.backward()
        opt_d.step()
        # G: fool D (non-saturating cGAN term) and stay near the truth (L1, and 1 - SSIM where weighted)
        score = self.D(torch.cat([sketch, fake], 1))
        g_gan = bce(score, torch.ones_like(score))
        g_l1 = F.l1_loss(raw, truth)
        g_loss = g_gan + self.settings.l1_weight * g_l1
        g_colour = torch.zeros(())
        if logits is not None:
            assert self._colour_weights is not None, "set_data first"
            truth_ab = rgb_to_lab((truth + 1) / 2)[:, 1:]
            g_colour = colour_loss(logits, truth_ab, self.settings.colour_grid, self._colour_weights)
            g_loss = g_loss + self.settings.colour_weight * g_colour
        if self.settings.ssim_weight > 0:
            g_ssim = 1 - ssim(fake, truth).mean()
            g_loss = g_loss + self.settings.ssim_weight * g_ssim
        else:
            with torch.no_grad():
                g_ssim = 1 - ssim(fake, truth).mean()
        opt_g.zero_grad(set_to_none=True)
        g_loss.backward()
        opt_g.step()
        return {
            "d_loss": d_loss.item(), "g_gan": g_gan.item(), "g_l1": g_l1.item(), "g_ssim": g_ssim.item(), "g_colour": g_colour.item(),
            "d_real": torch.sigmoid(d_real.detach()).mean().item(), "d_fake": torch.sigmoid(d_fake.detach()).mean().item(),
        }

    def exported(self, networks: dict[str, nn.Module], metadata: dict[str, Any]) -> Pix2PixModel:
        return Pix2PixModel(self.settings.config, networks["G"], networks["D"], {**self.model.metadata, **metadata})  # type: ignore[arg-type]

    def samples(self, model: Pix2PixModel) -> np.ndarray:
        """Rows of sketch | hints | result | truth for fixed training pairs, half of them with hints."""
        assert self._fixed is not None, "set_data first"
        sketch, hints, truth = self._fixed
        generator = model.generator
        was_training = generator.training
        generator.eval()
        try:
            with torch.no_grad():
                result = generator(generator_input(sketch, hints, model.config))
        finally:
            generator.train(was_training)
        shown_hints = torch.where(hints[:, 3:] > 0, hints[:, :3], torch.ones_like(truth))
        tiles = [sketch.expand(-1, 3, -1, -1), shown_hints, result, truth]
        pictures = to_uint8(torch.stack(tiles, 1).flatten(0, 1))
        return contact_grid(pictures, 8, gap=4)


# -- jobs: fine-tuning, time estimates, thumbnails ---------------------------------------


def fine_tune_settings(base: str | os.PathLike[str], **overrides: Any) -> Pix2PixTrainSettings:
    """Training settings that keep a trained pix2pix model's networks and recipe, with ``overrides``.

    A larger ``size`` than the model's grows it: the model becomes the U-Net of an enhanced
    generator at that size (``global_size``, pix2pixHD's coarse-to-fine training).
    """
    inherited = inherited_settings(base, PIX2PIX, _RECIPE_FIELDS)
    size, own = overrides.get("size"), inherited.get("size")
    if isinstance(size, int) and isinstance(own, int) and size > own and not inherited.get("global_size"):
        overrides = {"global_size": own, **overrides}
    return Pix2PixTrainSettings.from_dict({**inherited, **overrides})


#: what a fine-tune inherits of the recipe that made its base model (not epochs, batch or seed)
_RECIPE_FIELDS = ("l1_weight", "ssim_weight", "colour_weight", "colour_rebalance", "line_jitter", "wobble", "gaps", "no_hints", "max_hints", "recolour", "ema")


def estimate_training(settings: Pix2PixTrainSettings, pair_count: int, device: torch.device | str = "cpu", steps: int = 3) -> Any:
    """Time ``steps`` real training steps (after one warm-up) of the recipe on noise pictures of the settings' size."""
    from sketchapp.core.estimate import TimeEstimate, timed, train_share

    if pair_count < 1:
        raise TrainingError("there are no pairs to train on")
    device = torch.device(device)
    train_pairs = max(1, train_share(pair_count, settings.seed))
    batch = min(settings.batch_size, train_pairs)
    rng = np.random.default_rng(settings.seed)
    s = settings.size
    pairs = PairSet(rng.integers(0, 256, (batch, s, s), dtype=np.uint8), rng.integers(0, 256, (batch, s, s, 3), dtype=np.uint8),
                    [str(i) for i in range(batch)])
    recipe = Pix2PixRecipe(settings)
    for module in recipe.networks().values():
        module.to(device).train()
    recipe.set_data(pairs, device)
    generator = torch.Generator().manual_seed(settings.seed)
    per_step = timed(lambda: recipe.step("train", torch.arange(batch), generator, (0, 1), device), steps, device)
    steps_per_epoch = max(1, train_pairs // batch)
    return TimeEstimate(batch, train_pairs, steps_per_epoch, steps_per_epoch * settings.epochs, 0, per_step, 0.0, device.type)


def thumbnails(model: Pix2PixModel, count: int = 8, sketches: np.ndarray | None = None, seed: int = 0) -> np.ndarray:
    """(count, S, S, 3) uint8: the model's pictures of ``count`` sketches spread over ``sketches`` (blank paper without)."""
    from sketchapp.core.engines.pix2pix.engine import Pix2PixEngine, Pix2PixSettings

    engine = Pix2PixEngine(model, next(model.generator.parameters()).device)
    return sketch_thumbnails(engine, count, sketches, Pix2PixSettings(seed=seed))


def train(run_dir: str | os.PathLike[str], data: Any, settings: Pix2PixTrainSettings, *args: Any, **kwargs: Any) -> Iterator[TrainEvent]:
    """Train on ``data`` into ``run_dir``: ``core.trainer.train_recipe``'s arguments after the recipe."""
    return train_recipe(run_dir, Pix2PixRecipe(settings), data, *args, **kwargs)


TRAINING = Training(Pix2PixTrainSettings, train, fine_tune_settings, estimate_training, thumbnails, Pix2PixRecipe.loss_names, sized,
                    {"batch_size": 4, "decay_epochs": 1, "colour_grid": 8},
                    {"size": "size", "l1": "l1_weight", "ssim": "ssim_weight", "no_hints": ("hints", False),
                     "decay_epochs": "decay_epochs", "colour_grid": "colour_grid", "colour_weight": "colour_weight",
                     "colour_rebalance": "colour_rebalance", "global_size": "global_size"})
