"""Differentiable picture losses shared by the training recipes."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

SSIM_TAPS = 11
SSIM_SIGMA = 1.5


def _gaussian(device: torch.device, dtype: torch.dtype) -> torch.Tensor:
    centre = SSIM_TAPS // 2
    taps = torch.tensor([math.exp(-((i - centre) ** 2) / (2 * SSIM_SIGMA**2)) for i in range(SSIM_TAPS)], dtype=torch.float64)
    return (taps / taps.sum()).to(device, dtype)


def _blur(x: torch.Tensor, taps: torch.Tensor) -> torch.Tensor:
    """Separable Gaussian blur of (N, C, H, W), borders mirrored with their edge pixel repeated (OpenCV's BORDER_REFLECT)."""
    pad = SSIM_TAPS // 2
    channels = x.shape[1]
    for dim, kernel in ((3, taps.view(1, 1, 1, -1)), (2, taps.view(1, 1, -1, 1))):
        head = x.narrow(dim, 0, pad).flip(dim)
        tail = x.narrow(dim, x.shape[dim] - pad, pad).flip(dim)
        x = F.conv2d(torch.cat([head, x, tail], dim), kernel.expand(channels, 1, *kernel.shape[2:]), groups=channels)
    return x


def ssim(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Structural similarity (Wang et al. 2004: 11-tap Gaussian, sigma 1.5) of (N, C, H, W) pictures in [-1, 1]:
    one value per picture, the mean over pixels and channels, as ``evaluation.ssim`` scores uint8 pictures.

    Differentiable, so a recipe can train for it; needs pictures of at least 6 px a side.
    """
    x, y = (a.float() + 1) / 2, (b.float() + 1) / 2
    taps = _gaussian(x.device, x.dtype)
    c1, c2 = 0.01**2, 0.03**2
    mu_x, mu_y = _blur(x, taps), _blur(y, taps)
    var_x = _blur(x * x, taps) - mu_x**2
    var_y = _blur(y * y, taps) - mu_y**2
    cov = _blur(x * y, taps) - mu_x * mu_y
    index = ((2 * mu_x * mu_y + c1) * (2 * cov + c2)) / ((mu_x**2 + mu_y**2 + c1) * (var_x + var_y + c2))
    return index.flatten(1).mean(1)
