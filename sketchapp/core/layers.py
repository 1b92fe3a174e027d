"""Layers the engines share: the DCGAN initialisation, the 70x70 PatchGAN discriminator
and the channel counts of sketches and pictures.

Engines import these from here and never from one another, so each engine package
stands alone (an import-linter contract holds them to it).
"""

from __future__ import annotations

import torch
from torch import nn

SKETCH_CHANNELS = 1
PICTURE_CHANNELS = 3
MAX_WIDTH_MULT = 8  # a network's widths grow by doubling up to this many times its base width


def init_dcgan(module: nn.Module) -> None:
    """DCGAN initialisation: N(0, 0.02) weights, N(1, 0.02) batch-norm scales.

    Networks built on the meta device (to be filled from a file) are left alone: there is
    nothing to draw, and torch's meta ``normal_`` loads its compiler (2 s) to do nothing.
    """
    if isinstance(getattr(module, "weight", None), torch.Tensor) and module.weight.is_meta:
        return
    if isinstance(module, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)):
        nn.init.normal_(module.weight, 0.0, 0.02)
        if module.bias is not None:
            nn.init.zeros_(module.bias)
    elif isinstance(module, nn.BatchNorm2d):
        nn.init.normal_(module.weight, 1.0, 0.02)
        nn.init.zeros_(module.bias)


class PatchDiscriminator(nn.Module):
    """D: (sketch, picture) (N, 1 + 3, S, S) -> a realism logit per 70x70 patch (N, 1, S/8 - 2, S/8 - 2).

    C64-C128-C256-C512 (4x4, stride 2, 2, 2, 1) and a 1-channel 4x4 convolution: each
    output sees a 70x70 patch of the input, so D judges texture and local structure and
    leaves the layout to the L1 term, as in the paper. CycleGAN uses the same network on
    pictures alone (``in_channels`` 3) with instance norm (``norm="instance"``).
    """

    def __init__(self, df: int, in_channels: int = SKETCH_CHANNELS + PICTURE_CHANNELS, norm: str = "batch") -> None:
        super().__init__()
        if norm not in ("batch", "instance"):
            raise ValueError(f"norm must be 'batch' or 'instance', not {norm!r}")
        widths = [df * min(2**i, MAX_WIDTH_MULT) for i in range(4)]
        layers: list[nn.Module] = []
        previous = in_channels
        for i, w in enumerate(widths):
            stride = 2 if i < 3 else 1
            layers.append(nn.Conv2d(previous, w, 4, stride=stride, padding=1, bias=i == 0))
            if i > 0:
                layers.append(nn.BatchNorm2d(w) if norm == "batch" else nn.InstanceNorm2d(w))
            layers.append(nn.LeakyReLU(0.2, inplace=True))
            previous = w
        layers.append(nn.Conv2d(previous, 1, 4, stride=1, padding=1))
        self.layers = nn.Sequential(*layers)
        self.apply(init_dcgan)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layers(x)
