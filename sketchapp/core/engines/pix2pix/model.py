"""A loaded pix2pix model: its generator and discriminator and the record they came with, and what
the generator takes (the sketch with hint channels spread up to the drawn lines)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from sketchapp.core.checkpoint import ModelParts, load_modules
from sketchapp.core.engines.pix2pix.networks import EnhancedGenerator, Pix2PixConfig, UNetGenerator, build_generator
from sketchapp.core.layers import PatchDiscriminator
from sketchapp.core.errors import CheckpointError, SettingsError

PIX2PIX = "pix2pix"


@dataclass
class Pix2PixModel(ModelParts):
    kind = PIX2PIX

    config: Pix2PixConfig
    generator: UNetGenerator | EnhancedGenerator
    discriminator: PatchDiscriminator
    metadata: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def create(cls, config: Pix2PixConfig, **metadata: Any) -> Pix2PixModel:
        return cls(config, build_generator(config), PatchDiscriminator(config.df), dict(metadata))

    @property
    def size(self) -> int:
        return self.config.size

    def style_stack(self) -> tuple[nn.Sequential, bool, bool]:
        return self.discriminator.layers, False, True  # D judges (sketch, picture) pairs

    def modules(self) -> dict[str, nn.Module]:
        return {"G": self.generator, "D": self.discriminator}


def build_pix2pix_model(name: str, metadata: dict[str, Any], tensors: dict[str, torch.Tensor]) -> Pix2PixModel:
    """The networks a pix2pix checkpoint's record describes (validated before anything is built), with its weights."""
    try:
        config = Pix2PixConfig.from_dict(metadata.get("architecture"))
    except (SettingsError, TypeError) as exc:
        raise CheckpointError(f"{name}: invalid pix2pix architecture in metadata ({exc})") from exc
    with torch.device("meta"):  # built without memory or random weights: the file's are assigned
        model = Pix2PixModel.create(config)
    model.metadata = metadata
    load_modules(name, model.modules(), tensors)
    return model


SPREAD = 0.5  # the mask value of a colour spread from a hint (painted hint pixels have 1)


SPREAD_GRID = 128  # hints spread on a grid of at most this side; finer pictures are pooled to it first


def _diffuse(fixed: torch.Tensor, keep: torch.Tensor, steps: int) -> torch.Tensor:
    """``steps`` four-connected diffusion steps: each pixel takes the sum of itself and its four neighbours
    (zero outside the picture) times ``keep``, plus ``fixed``, the values pinned where ``keep`` is zero.

    In place on one padded buffer: sums of shifted slices, several times faster on the CPU
    than a grouped 3x3 convolution or new tensors every step.
    """
    n, c, h, w = fixed.shape
    padded = fixed.new_zeros(n, c, h + 2, w + 2)
    inner = padded[..., 1:-1, 1:-1]
    inner.copy_(fixed)
    total = torch.empty_like(fixed)
    for _ in range(steps):
        torch.add(inner, padded[..., :-2, 1:-1], out=total)
        total += padded[..., 2:, 1:-1]
        total += padded[..., 1:-1, :-2]
        total += padded[..., 1:-1, 2:]
        total.mul_(keep).add_(fixed)
        inner.copy_(total)
    return total


def spread_hints(hints: torch.Tensor, sketch: torch.Tensor) -> torch.Tensor:
    """Hint channels (N, 4, S, S) with each hint's colour spread over the paper around it, up to the drawn lines.

    A hint is a dab inside an area of the drawing; the network should colour the whole
    area. Spreading the colour first (a diffusion that ink blocks, S/2 four-connected
    steps of one pixel, each point taking the weighted mean of the hints that reach it)
    hands the network a dense colour map it only has to copy and shade, where a few hint
    pixels alone are a signal it learns to follow only after long training. Spread
    pixels get mask SPREAD, painted ones keep 1, so the network can tell a colour drawn
    from a guess. Four-connected steps: a one-pixel line drawn 8-connected still closes
    an area. Above SPREAD_GRID px the spreading runs on that grid (cells with any ink
    block, cells with any hint are pinned to the hints' mean) and is scaled back up,
    which costs a few milliseconds instead of a hundred at 256 px; painted pixels keep
    their own colour.
    """
    mask = hints[:, 3:]
    hinted = (mask > 0).flatten(1).any(1)
    if not bool(hinted.any()):
        return hints
    rows = hinted.nonzero().squeeze(1)
    given, mask = hints[rows], mask[rows]
    paper = (sketch[rows] > 0.0).to(hints.dtype)  # grey above the middle: not ink
    painted = mask > 0
    fixed = torch.cat([given[:, :3] * mask, mask], 1)
    side = hints.shape[-1]
    factor = max(1, side // SPREAD_GRID)
    if factor > 1:
        coarse_painted = F.max_pool2d(painted.to(hints.dtype), factor) > 0
        coarse_paper = -F.max_pool2d(-paper, factor)  # a cell with any ink blocks
        coarse_fixed = F.avg_pool2d(fixed, factor) * factor * factor
        weight_sum = coarse_fixed[:, 3:].clamp_min(1e-12)
        coarse_fixed = torch.where(coarse_painted, coarse_fixed / weight_sum, torch.zeros_like(coarse_fixed))
        keep = (~coarse_painted).to(hints.dtype) * coarse_paper / 5
        flow = F.interpolate(_diffuse(coarse_fixed, keep, max(1, side // factor // 2)), scale_factor=factor, mode="nearest")
        flow = flow * paper
    else:
        keep = (~painted).to(hints.dtype) * paper / 5
        flow = _diffuse(fixed, keep, max(1, side // 2))
    colour, weight = flow[:, :3], flow[:, 3:]
    reached = weight > 1e-6
    spread = torch.where(reached, colour / weight.clamp_min(1e-6), torch.zeros_like(colour))
    spread = torch.where(painted, given[:, :3], spread)
    level = torch.where(painted, mask, reached.to(hints.dtype) * SPREAD)
    out = hints.clone()
    out[rows] = torch.cat([spread, level], 1)
    return out


def generator_input(sketch: torch.Tensor, hints: torch.Tensor | None, config: Pix2PixConfig) -> torch.Tensor:
    """What G takes: the sketch (N, 1, S, S), with hint channels (N, 4, S, S), spread (``spread_hints``), when the model has them."""
    if not config.hints:
        return sketch
    if hints is None:
        hints = torch.zeros(len(sketch), 4, *sketch.shape[2:], device=sketch.device, dtype=sketch.dtype)
    return torch.cat([sketch, spread_hints(hints, sketch)], 1)
