"""The joint-image DCGAN of Contextual GAN (Lu et al. 2018): one picture = sketch | image.

The generator maps z (uniform in [-1, 1]) to an H x 2H picture whose left half is a
sketch and right half the image; the discriminator scores the whole joint picture, so
it learns what a *matching* sketch and image look like. Layers follow the official code
(DCGAN with 5x5 kernels, stride 2, batch norm, ReLU in G, leaky ReLU in D).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields
from typing import Any

import torch
from torch import nn

from sketchapp.core.layers import init_dcgan

KERNEL = 5
BASE_HEIGHT = 4  # the generator starts from a 4 x 8 feature map
MAX_WIDTH_MULT = 8
#: the range of every architecture field a checkpoint may record, and a budget for the whole
LIMITS = {"half_size": (8, 512), "z_dim": (1, 4096), "gf": (1, 512), "df": (1, 512), "channels": (1, 4), "ef": (0, 512)}
MAX_PARAMETERS = 300_000_000


@dataclass(frozen=True)
class JointGANConfig:
    """Sizes of a joint-image DCGAN; stored in every checkpoint's metadata."""

    half_size: int = 64
    z_dim: int = 100
    gf: int = 64
    df: int = 64
    channels: int = 3
    ef: int = 0  # encoder width; 0 means the model has no encoder

    def __post_init__(self) -> None:
        if self.half_size < 8 or self.half_size & (self.half_size - 1):
            raise ValueError(f"half_size must be a power of two >= 8, got {self.half_size}")
        for name in ("z_dim", "gf", "df", "channels"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be positive, got {getattr(self, name)}")
        if self.ef < 0:
            raise ValueError(f"ef must be >= 0, got {self.ef}")

    @property
    def layers(self) -> int:
        """Number of stride-2 stages between the 4 x 8 base and H x 2H."""
        return int(math.log2(self.half_size // BASE_HEIGHT))

    @property
    def has_encoder(self) -> bool:
        return self.ef > 0

    def to_dict(self) -> dict[str, int]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> JointGANConfig:
        """A config from a checkpoint's record, every field checked before any network is built.

        Whole numbers only (not text, fractions, NaN or true/false), each within what a model
        of this app can be, so a small hostile file cannot ask for terabytes.
        """
        known = {f.name for f in fields(cls)}
        unknown = set(map(str, data)) - known
        if unknown:
            raise ValueError(f"unknown architecture fields: {', '.join(sorted(unknown))[:200]}")
        for name, value in data.items():
            if type(value) is not int:
                raise ValueError(f"architecture {name} must be a whole number, got {str(value)[:40]!r}")
            low, high = LIMITS[name]
            if not low <= value <= high:
                raise ValueError(f"architecture {name} must be {low}-{high}, got {value}")
        config = cls(**data)
        if config.parameter_count() > MAX_PARAMETERS:
            raise ValueError(f"networks of {config.parameter_count():,} weights are too large")
        return config

    def parameter_count(self) -> int:
        """Weights of G, D and E, from the sizes alone (the convolutions and linear layers; no network is built)."""
        n = self.layers
        g = self.z_dim * _width(self.gf, 2 ** (n - 1)) * BASE_HEIGHT * BASE_HEIGHT * 2
        width = _width(self.gf, 2 ** (n - 1))
        for i in range(n):
            out = self.channels if i == n - 1 else _width(self.gf, 2 ** (n - 2 - i))
            g += width * out * KERNEL * KERNEL
            width = out

        def down(base: int) -> int:
            total, width = 0, self.channels
            for i in range(n):
                total += width * _width(base, 2**i) * KERNEL * KERNEL
                width = _width(base, 2**i)
            return total + width * BASE_HEIGHT * BASE_HEIGHT * 2

        return g + down(self.df) + (down(self.ef) + self.z_dim * _width(self.ef, 2 ** (n - 1)) * 16 if self.ef else 0)


def _width(base: int, mult: int) -> int:
    return base * min(mult, MAX_WIDTH_MULT)


class JointGenerator(nn.Module):
    """G: z -> joint picture (N, C, H, 2H) in [-1, 1]."""

    def __init__(self, config: JointGANConfig) -> None:
        super().__init__()
        self.config = config
        n = config.layers
        width = _width(config.gf, 2 ** (n - 1))
        self.base_channels = width
        self.project = nn.Linear(config.z_dim, width * BASE_HEIGHT * BASE_HEIGHT * 2)
        self.project_bn = nn.BatchNorm2d(width)
        blocks: list[nn.Module] = []
        for i in range(n):
            last = i == n - 1
            out = config.channels if last else _width(config.gf, 2 ** (n - 2 - i))
            blocks.append(
                nn.ConvTranspose2d(width, out, KERNEL, stride=2, padding=2, output_padding=1, bias=last)
            )
            blocks.append(nn.Tanh() if last else nn.Sequential(nn.BatchNorm2d(out), nn.ReLU(inplace=True)))
            width = out
        self.blocks = nn.Sequential(*blocks)
        self.apply(init_dcgan)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        h = self.project(z).view(z.shape[0], self.base_channels, BASE_HEIGHT, BASE_HEIGHT * 2)
        h = torch.relu(self.project_bn(h))
        return self.blocks(h)


def _down_stack(in_channels: int, base: int, layers: int) -> tuple[nn.Sequential, int]:
    """Stride-2 5x5 convolutions, leaky ReLU, batch norm after the first (DCGAN's D)."""
    modules: list[nn.Module] = []
    width = in_channels
    for i in range(layers):
        out = _width(base, 2**i)
        modules.append(nn.Conv2d(width, out, KERNEL, stride=2, padding=2, bias=i == 0))
        if i > 0:
            modules.append(nn.BatchNorm2d(out))
        modules.append(nn.LeakyReLU(0.2, inplace=True))
        width = out
    return nn.Sequential(*modules), width


class JointDiscriminator(nn.Module):
    """D: joint picture -> realism logit (N,). The sigmoid is left to the losses."""

    def __init__(self, config: JointGANConfig) -> None:
        super().__init__()
        self.config = config
        self.features, width = _down_stack(config.channels, config.df, config.layers)
        self.score = nn.Linear(width * BASE_HEIGHT * BASE_HEIGHT * 2, 1)
        self.apply(init_dcgan)

    def forward(self, picture: torch.Tensor) -> torch.Tensor:
        return self.score(self.features(picture).flatten(1)).squeeze(1)


class SketchEncoder(nn.Module):
    """E: sketch half (N, C, H, H) -> z in [-1, 1], a start near the answer (iGAN's hybrid)."""

    def __init__(self, config: JointGANConfig) -> None:
        super().__init__()
        if not config.has_encoder:
            raise ValueError("config has no encoder (ef = 0)")
        self.config = config
        self.features, width = _down_stack(config.channels, config.ef, config.layers)
        self.head = nn.Linear(width * BASE_HEIGHT * BASE_HEIGHT, config.z_dim)
        self.apply(init_dcgan)

    def forward(self, sketch: torch.Tensor) -> torch.Tensor:
        return torch.tanh(self.head(self.features(sketch).flatten(1)))


def sample_z(count: int, z_dim: int, generator: torch.Generator | None = None) -> torch.Tensor:
    """z uniform in [-1, 1], as in the paper; drawn on the CPU so seeds agree across devices."""
    return torch.rand(count, z_dim, generator=generator) * 2.0 - 1.0
