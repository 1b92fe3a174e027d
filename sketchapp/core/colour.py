"""Colour as classification (Zhang, Isola and Efros 2016, "Colorful Image Colorization").

Regressing colour with L1 or L2 draws the average of the colours a shape could have,
which is grey: a heart that may be red or pink comes out a dull mix. Zhang et al. predict
instead a distribution over quantised colours (the CIELab ab plane cut into a grid, the
cells inside the sRGB gamut), trained with cross-entropy against soft-encoded targets and
rebalanced so rare, saturated colours are not drowned by the common greys, and read it out
with an *annealed mean* (the mean of the distribution sharpened at temperature 0.38), which
commits to a colour where the plain mean would hedge.

Here: sRGB <-> CIELab (D65) in torch, the in-gamut ab grid, soft encoding, the rebalancing
weights and the annealed mean. Pictures are (N, 3, H, W) in [0, 1] unless said otherwise.
"""

from __future__ import annotations

from functools import lru_cache

import torch
import torch.nn.functional as F

#: The paper's read-out temperature: between the mean (1) and the mode (0).
ANNEALED_T = 0.38
#: Rebalancing mixes the data's colour frequencies with the uniform distribution by this much (the paper's lambda).
REBALANCE_MIX = 0.5
#: Soft encoding: each target spreads over the cells with a Gaussian of half a cell's width
#: (the paper: its 5 nearest cells, sigma 5 on a grid of 10; beyond those the weights are below 1 %).
SOFT_SIGMA = 0.5

_RGB_TO_XYZ = torch.tensor([[0.4124564, 0.3575761, 0.1804375], [0.2126729, 0.7151522, 0.0721750], [0.0193339, 0.1191920, 0.9503041]])
_WHITE = torch.tensor([0.95047, 1.0, 1.08883])
_EPS, _KAPPA = 216 / 24389, 24389 / 27


def _linear(rgb: torch.Tensor) -> torch.Tensor:
    """sRGB in [0, 1] (clamped) -> linear light."""
    rgb = rgb.clamp(0, 1)
    return torch.where(rgb > 0.04045, ((rgb + 0.055) / 1.055) ** 2.4, rgb / 12.92)


def rgb_to_lab(rgb: torch.Tensor) -> torch.Tensor:
    """sRGB (N, 3, H, W) in [0, 1] -> CIELab (L 0-100, a and b about -110..100), D65 white."""
    linear = _linear(rgb)
    xyz = torch.einsum("ij,njhw->nihw", _RGB_TO_XYZ.to(rgb), linear) / _WHITE.to(rgb)[:, None, None]
    f = torch.where(xyz > _EPS, xyz.clamp_min(1e-12) ** (1 / 3), (_KAPPA * xyz + 16) / 116)
    return torch.stack([116 * f[:, 1] - 16, 500 * (f[:, 0] - f[:, 1]), 200 * (f[:, 1] - f[:, 2])], 1)


def lightness(rgb: torch.Tensor) -> torch.Tensor:
    """CIELab L (N, 1, H, W) of sRGB (N, 3, H, W) in [0, 1]: ``rgb_to_lab``'s first channel, from Y alone."""
    y = torch.einsum("j,njhw->nhw", _RGB_TO_XYZ[1].to(rgb), _linear(rgb))[:, None]
    f = torch.where(y > _EPS, y.clamp_min(1e-12) ** (1 / 3), (_KAPPA * y + 16) / 116)
    return 116 * f - 16


def lab_to_rgb(lab: torch.Tensor) -> torch.Tensor:
    """CIELab (N, 3, H, W) -> sRGB in [0, 1] (colours outside the gamut clipped)."""
    fy = (lab[:, 0] + 16) / 116
    f = torch.stack([fy + lab[:, 1] / 500, fy, fy - lab[:, 2] / 200], 1)
    cube = f * f * f
    xyz = torch.where(cube > _EPS, cube, (116 * f - 16) / _KAPPA) * _WHITE.to(lab)[:, None, None]
    linear = torch.einsum("ij,njhw->nihw", torch.linalg.inv(_RGB_TO_XYZ).to(lab), xyz).clamp(0, 1)
    return torch.where(linear > 0.0031308, 1.055 * linear.clamp_min(1e-12) ** (1 / 2.4) - 0.055, 12.92 * linear).clamp(0, 1)


@lru_cache(maxsize=8)
def _ab_grid(step: int) -> torch.Tensor:
    v = torch.linspace(0, 1, 33)
    rgb = torch.stack(torch.meshgrid(v, v, v, indexing="ij"), 0).reshape(1, 3, -1, 1)
    ab = rgb_to_lab(rgb)[0, 1:, :, 0].T
    cells = torch.unique(torch.round(ab / step).to(torch.int64), dim=0)
    return (cells * step).to(torch.float32)


def ab_grid(step: int) -> torch.Tensor:
    """(Q, 2): the centres of the ab cells of side ``step`` that hold a colour of the sRGB gamut, in a fixed order."""
    return _ab_grid(step).clone()


def bin_count(step: int) -> int:
    return len(_ab_grid(step))


def _square_distances(ab: torch.Tensor, step: int) -> torch.Tensor:
    """(N, H, W, Q): squared distance of each ab value (N, 2, H, W) to each cell's centre."""
    centres = _ab_grid(step).to(ab)
    flat = ab.permute(0, 2, 3, 1)
    return (flat.square().sum(-1, keepdim=True) - 2 * flat @ centres.T + centres.square().sum(1)).clamp_min(0)


def soft_encode(ab: torch.Tensor, step: int) -> torch.Tensor:
    """Target distributions (N, H, W, Q) for ab (N, 2, H, W): a Gaussian over the cells round each value."""
    return torch.softmax(_square_distances(ab, step) / (-2 * (SOFT_SIGMA * step) ** 2), -1)


def nearest_bin(ab: torch.Tensor, step: int) -> torch.Tensor:
    """(N, H, W) indices of the cell nearest each ab value."""
    return _square_distances(ab, step).argmin(-1)


def rebalancing_weights(ab: torch.Tensor, step: int, mix: float = REBALANCE_MIX) -> torch.Tensor:
    """(Q,) per-cell loss weights from the colours ``ab`` (N, 2, H, W) of a training set (the paper's eq. 4).

    w is proportional to 1 / ((1 - lambda) p~ + lambda / Q), p~ the cells' frequencies smoothed
    with a Gaussian of one cell, normalised so the expected weight under p~ is 1: a rare
    saturated colour counts as much as the paper's white, which covers most pixels. ``mix``
    is lambda: 1 weighs every cell the same (no rebalancing).
    """
    centres = _ab_grid(step).to(ab)
    q = len(centres)
    counts = torch.bincount(nearest_bin(ab, step).flatten(), minlength=q).to(ab)
    kernel = torch.exp(-torch.cdist(centres, centres) ** 2 / (2 * step**2))
    smooth = kernel @ (counts / counts.sum())
    smooth = smooth / smooth.sum()
    weights = 1 / ((1 - mix) * smooth + mix / q)
    return weights / (smooth * weights).sum()


def colour_loss(logits: torch.Tensor, truth_ab: torch.Tensor, step: int, weights: torch.Tensor) -> torch.Tensor:
    """Rebalanced cross-entropy of the cell scores ``logits`` (N, h, w, Q) against the truth's ab (N, 2, H, W),
    reduced to the scores' size first (area average) where it is larger."""
    with torch.no_grad():
        if truth_ab.shape[-2:] != logits.shape[1:3]:
            truth_ab = F.adaptive_avg_pool2d(truth_ab, logits.shape[1:3])
        target = soft_encode(truth_ab.float(), step)
        pixel_weight = weights.to(target)[target.argmax(-1)]  # the weight of each pixel's nearest cell
    cross = -(target * F.log_softmax(logits.float(), -1)).sum(-1)
    return (pixel_weight * cross).mean()


def annealed_mean(logits: torch.Tensor, step: int, temperature: float = ANNEALED_T) -> torch.Tensor:
    """ab (N, 2, H, W) from cell scores (N, H, W, Q): the mean of their distribution sharpened at ``temperature``."""
    centres = _ab_grid(step).to(logits.device, torch.float32)
    p = torch.softmax(logits.float() / temperature, -1)
    return (p @ centres).permute(0, 3, 1, 2)


def with_lightness(lightness_rgb: torch.Tensor, ab: torch.Tensor) -> torch.Tensor:
    """sRGB in [0, 1]: the lightness of ``lightness_rgb`` with the colour ``ab`` (enlarged to its size)."""
    light = lightness(lightness_rgb.float())
    if ab.shape[-1] != light.shape[-1]:
        ab = F.interpolate(ab, size=light.shape[-2:], mode="bilinear", align_corners=False)
    return lab_to_rgb(torch.cat([light, ab], 1))


def chroma(rgb: torch.Tensor) -> torch.Tensor:
    """(N, H, W): CIELab chroma, sqrt(a^2 + b^2), of sRGB pictures in [0, 1]."""
    ab = rgb_to_lab(rgb)[:, 1:]
    return ab.square().sum(1).sqrt()
