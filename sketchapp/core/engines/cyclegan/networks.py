"""CycleGAN networks (Zhu et al. 2017): ResNet generators and the 70x70 PatchGAN of pix2pix.

Each generator is the network of Johnson et al. (2016) as in the paper's code:
c7s1-64, d128, d256, then residual blocks (6 at 128 px, 9 at 256), u128, u64,
c7s1-3 and tanh, with instance norm and reflection padding. Both domains are
three-channel pictures: a sketch is its grey repeated three times, so a generator can
take a picture of its own output domain and the identity loss applies.

One change from the paper: the decoder enlarges by nearest-neighbour upsampling and a
3x3 convolution instead of a transposed convolution (Odena et al. 2016), as pix2pix here
does, which leaves no dot grid in flat fills.
"""

from __future__ import annotations

from dataclasses import dataclass, fields

import torch
from torch import nn

from sketchapp.core.layers import PICTURE_CHANNELS, PatchDiscriminator
from sketchapp.core.errors import SettingsError
from sketchapp.core.records import Record

SIZES = (32, 64, 128, 256, 512)
#: checked against the record before anything is built (a hostile file cannot ask for terabytes)
MAX_PARAMETERS = 200_000_000


@dataclass(frozen=True)
class CycleGANConfig(Record):
    """Sizes of a CycleGAN model; stored in every checkpoint's ``architecture`` record."""

    WHAT = "CycleGAN architecture"

    size: int = 128
    gf: int = 32  # generator width (the paper's 64)
    df: int = 32  # discriminator width (the paper's 64)
    blocks: int = 6  # residual blocks (the paper: 6 at 128 px, 9 at 256 px and above)

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            if type(value) is not int:
                raise SettingsError(f"CycleGAN {f.name} must be a whole number, got {value!r}")
        if self.size not in SIZES:
            raise SettingsError(f"CycleGAN size must be one of {', '.join(map(str, SIZES))}, got {self.size}")
        for name in ("gf", "df"):
            if not 4 <= getattr(self, name) <= 256:
                raise SettingsError(f"CycleGAN {name} must be 4-256, got {getattr(self, name)}")
        if not 1 <= self.blocks <= 32:
            raise SettingsError(f"CycleGAN blocks must be 1-32, got {self.blocks}")
        if self.parameter_count() > MAX_PARAMETERS:
            raise SettingsError(f"CycleGAN networks of {self.parameter_count():,} weights are too large")

    @staticmethod
    def default_blocks(size: int) -> int:
        return 9 if size >= 256 else 6

    def parameter_count(self) -> int:
        """Weights of both generators and both discriminators, from the sizes alone."""
        g, c = self.gf, PICTURE_CHANNELS
        generator = c * g * 49 + g * 2 * g * 9 + 2 * g * 4 * g * 9 + self.blocks * 2 * (4 * g) ** 2 * 9
        generator += 4 * g * 2 * g * 9 + 2 * g * g * 9 + g * c * 49
        d = [self.df * min(2**i, 8) for i in range(4)]
        previous, discriminator = c, 0
        for w in [*d, 1]:
            discriminator += previous * w * 16
            previous = w
        return 2 * (generator + discriminator)


def _init(module: nn.Module) -> None:
    """The paper's code: weights N(0, 0.02), biases 0 (nothing on the meta device, see ``init_dcgan``)."""
    if isinstance(module, nn.Conv2d) and not module.weight.is_meta:
        nn.init.normal_(module.weight, 0.0, 0.02)
        if module.bias is not None:
            nn.init.zeros_(module.bias)


class _Residual(nn.Module):
    def __init__(self, width: int) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.ReflectionPad2d(1), nn.Conv2d(width, width, 3, bias=True), nn.InstanceNorm2d(width), nn.ReLU(True),
            nn.ReflectionPad2d(1), nn.Conv2d(width, width, 3, bias=True), nn.InstanceNorm2d(width),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


class ResnetGenerator(nn.Module):
    """G: a picture (N, 3, S, S) in [-1, 1] -> a picture of the other domain (N, 3, S, S) in [-1, 1]."""

    def __init__(self, config: CycleGANConfig) -> None:
        super().__init__()
        g, c = config.gf, PICTURE_CHANNELS
        layers: list[nn.Module] = [nn.ReflectionPad2d(3), nn.Conv2d(c, g, 7), nn.InstanceNorm2d(g), nn.ReLU(True)]
        for cin, cout in ((g, 2 * g), (2 * g, 4 * g)):
            layers += [nn.Conv2d(cin, cout, 3, stride=2, padding=1), nn.InstanceNorm2d(cout), nn.ReLU(True)]
        layers += [_Residual(4 * g) for _ in range(config.blocks)]
        for cin, cout in ((4 * g, 2 * g), (2 * g, g)):
            layers += [
                nn.Upsample(scale_factor=2.0, mode="nearest"), nn.Conv2d(cin, cout, 3, padding=1),
                nn.InstanceNorm2d(cout), nn.ReLU(True),
            ]
        layers += [nn.ReflectionPad2d(3), nn.Conv2d(g, c, 7), nn.Tanh()]
        self.layers = nn.Sequential(*layers)
        self.apply(_init)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layers(x)


def discriminator(config: CycleGANConfig) -> PatchDiscriminator:
    """pix2pix's 70x70 PatchGAN on pictures alone, with instance norm as CycleGAN's code."""
    return PatchDiscriminator(config.df, PICTURE_CHANNELS, norm="instance")
