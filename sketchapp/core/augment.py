"""Augmentation the engines' recipes share: one warp for a sketch and its picture, and
sketch lines changed as a hand's differ from clean line art.

``settings`` is any engine's training settings with the fields read here: ``flip``,
``rotate_degrees``, ``shear``, ``scale`` and ``shift`` for the warp; ``line_jitter``,
``wobble``, ``gaps`` and ``noise`` for the lines.
"""

from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn.functional as F


def uniform(rng: torch.Generator, *shape: int) -> torch.Tensor:
    return torch.rand(shape, generator=rng) * 2 - 1


def warp_pairs(pairs: torch.Tensor, settings: Any, rng: torch.Generator) -> torch.Tensor:
    """(N, C, S, S) in [-1, 1], sketch and picture stacked: one flip and affine warp (rotation, shear, zoom, shift) for both.

    What the warp uncovers is white paper, like the data's background.
    """
    n = len(pairs)
    if settings.flip:
        flip = torch.rand(n, generator=rng) < 0.5
        pairs = torch.where(flip[:, None, None, None].to(pairs.device), pairs.flip(3), pairs)
    angle = uniform(rng, n) * math.radians(settings.rotate_degrees)
    shear = uniform(rng, n) * settings.shear
    scale = 1 + uniform(rng, n) * settings.scale
    shift = uniform(rng, n, 2) * settings.shift * 2
    cos, sin = torch.cos(angle) / scale, torch.sin(angle) / scale
    theta = torch.stack([
        torch.stack([cos, -sin + shear * cos, shift[:, 0]], 1),
        torch.stack([sin, cos + shear * sin, shift[:, 1]], 1),
    ], 1).to(pairs.device, pairs.dtype)
    grid = F.affine_grid(theta, list(pairs.shape), align_corners=False)
    return F.grid_sample(pairs - 1, grid, mode="bilinear", padding_mode="zeros", align_corners=False) + 1


def freehand_lines(sketch: torch.Tensor, settings: Any, rng: torch.Generator) -> torch.Tensor:
    """Sketches (N, 1, S, S) in [-1, 1] changed as a hand drawing differs from clean line art.

    Per sketch: lines thinner or thicker (erosion or dilation blended by a random
    amount) and lighter or darker; a smooth random displacement of up to ``wobble``
    pixels (the pen does not land exactly on the edge); and for a share of sketches a
    few small gaps cut into the lines.
    """
    n, _, s, _ = sketch.shape
    device, dtype = sketch.device, sketch.dtype
    ink = (1 - sketch) / 2  # 0 on paper, 1 on black
    if settings.line_jitter > 0:
        amount = (uniform(rng, n, 1, 1, 1) * settings.line_jitter).to(device, dtype)
        wider = F.max_pool2d(ink, 3, stride=1, padding=1)
        thinner = -F.max_pool2d(-ink, 3, stride=1, padding=1)
        ink = torch.where(amount > 0, ink + amount * (wider - ink), ink + amount.abs() * (thinner - ink))
        dark = (1 + uniform(rng, n, 1, 1, 1) * settings.line_jitter * 0.5).to(device, dtype)
        ink = (ink * dark).clamp(0, 1)
    if settings.wobble > 0:
        coarse = uniform(rng, n, 2, 4, 4).to(device, dtype) * (settings.wobble * 2 / s)
        flow = F.interpolate(coarse, size=(s, s), mode="bicubic", align_corners=False).permute(0, 2, 3, 1)
        base = F.affine_grid(torch.eye(2, 3, device=device, dtype=dtype).expand(n, 2, 3), [n, 1, s, s], align_corners=False)
        ink = F.grid_sample(ink, base + flow, mode="bilinear", padding_mode="zeros", align_corners=False)
    if settings.gaps > 0:
        gapped = (torch.rand(n, generator=rng) < settings.gaps).to(device)
        cuts = torch.zeros(n, 1, s, s, device=device, dtype=dtype)
        count = 6
        centres = (torch.rand(n, count, 2, generator=rng) * s).to(device)
        radius = max(1.0, s / 64)
        rows = torch.arange(s, device=device, dtype=dtype)
        for i in range(count):
            dy = (rows[None, :, None] - centres[:, i, 0, None, None]) ** 2
            dx = (rows[None, None, :] - centres[:, i, 1, None, None]) ** 2
            cuts = torch.maximum(cuts, ((dy + dx) < radius**2).to(dtype)[:, None])
        ink = torch.where(gapped[:, None, None, None], ink * (1 - cuts), ink)
    sketch = 1 - 2 * ink
    if settings.noise > 0:
        sketch = (sketch + settings.noise * torch.randn(sketch.shape, generator=rng).to(device, dtype)).clamp(-1, 1)
    return sketch
