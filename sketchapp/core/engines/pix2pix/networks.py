"""pix2pix networks (Isola et al. 2017): a U-Net generator (the 70x70 PatchGAN discriminator is in ``core.layers``).

The generator takes the sketch (one grey channel) and colour hints (three colour
channels and a mask, after Zhang et al. 2017, "Real-Time User-Guided Image Colorization
with Learned Deep Priors"), and returns the picture. Its encoder halves the size down to
1x1 (C64-C128-C256-C512-C512..., 4x4 convolutions, stride 2, leaky ReLU 0.2, batch norm
after the first); its decoder mirrors it, each stage fed the matching encoder stage
through a skip connection, so the drawing's lines reach the output directly.

One change from the paper: each decoder stage is a nearest-neighbour upsampling followed
by a 3x3 convolution (Odena et al. 2016, "Deconvolution and Checkerboard Artifacts"),
which leaves no dot grid in flat fills; its 3x3 weights are the stored parameters. That
pair is exactly a 4x4 stride-2 transposed convolution whose taps are sums of the 3x3
weights (``upsampling_taps``), so it runs as one: the same function at 45 % fewer
multiply-adds, in training (the taps derived from the weights at every step, so the
gradient reaches the 3x3 weights) and at inference (derived once, ``fold_upsampling``).

Large pictures are drawn coarse to fine, after pix2pixHD (Wang et al. 2018, "High-Resolution
Image Synthesis and Semantic Manipulation with Conditional GANs"): with ``global_size`` the
U-Net (their global generator) runs on the drawing pooled to that size, and a small
enhancer at the full size (their local enhancer, here two 3x3 convolutions) adds to the
U-Net's enlarged picture the detail it sees in the full-size drawing. A 256 px model so
costs little more than a 128 px one, and starts as a trained 128 px model whose picture
is enlarged (the enhancer's last layer starts at zero).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields, replace
from typing import Any

import torch
from torch import nn

from sketchapp.core.colour import annealed_mean, bin_count, with_lightness
from sketchapp.core.errors import SettingsError
from sketchapp.core.records import Record
from sketchapp.core.layers import MAX_WIDTH_MULT, PICTURE_CHANNELS, SKETCH_CHANNELS, init_dcgan

HINT_CHANNELS = 4  # hint colour (RGB) and hint mask
#: The largest networks a file may ask for: a checkpoint's record is checked against
#: this before anything is built, so a tiny hostile file cannot ask for terabytes.
MAX_PARAMETERS = 200_000_000
SIZES = (32, 64, 128, 256, 512)


@dataclass(frozen=True)
class Pix2PixConfig(Record):
    """Sizes of a pix2pix model; stored in every checkpoint's ``architecture`` record."""

    WHAT = "pix2pix architecture"

    size: int = 128
    gf: int = 32  # generator width (the paper's 64)
    df: int = 32  # discriminator width (the paper's 64)
    hints: bool = True  # the generator takes hint colours and a hint mask
    dropout: float = 0.5  # in the three innermost decoder stages, as the paper
    colour_grid: int = 0  # > 0: colour is also classified over CIELab ab cells of this side (``core.colour``)
    global_size: int = 0  # > 0: the U-Net runs at this size (half the size or less) and an enhancer adds the full size's detail
    enhancer: int = 16  # the enhancer's width (with a global size)

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            if f.type == "bool" and type(value) is not bool:
                raise SettingsError(f"pix2pix {f.name} must be true or false, got {value!r}")
            if f.type == "int" and type(value) is not int:
                raise SettingsError(f"pix2pix {f.name} must be a whole number, got {value!r}")
            if f.type == "float" and (type(value) not in (int, float) or not math.isfinite(value)):
                raise SettingsError(f"pix2pix {f.name} must be a finite number, got {value!r}")
        if self.size not in SIZES:
            raise SettingsError(f"pix2pix size must be one of {', '.join(map(str, SIZES))}, got {self.size}")
        for name in ("gf", "df"):
            if not 4 <= getattr(self, name) <= 256:
                raise SettingsError(f"pix2pix {name} must be 4-256, got {getattr(self, name)}")
        if not 0 <= self.dropout < 1:
            raise SettingsError(f"pix2pix dropout must be in [0, 1), got {self.dropout}")
        if self.global_size and (self.global_size not in SIZES or self.global_size * 2 > self.size):
            raise SettingsError(f"pix2pix global size must be 0 (none) or one of {', '.join(map(str, SIZES))} up to half "
                                f"the size, got {self.global_size}")
        if not 4 <= self.enhancer <= 64:
            raise SettingsError(f"pix2pix enhancer width must be 4-64, got {self.enhancer}")
        if self.colour_grid and not 6 <= self.colour_grid <= 32:
            raise SettingsError(f"pix2pix colour grid must be 0 (none) or 6-32, got {self.colour_grid}")
        if self.parameter_count() > MAX_PARAMETERS:
            raise SettingsError(f"pix2pix networks of {self.parameter_count():,} weights are too large")

    @property
    def depth(self) -> int:
        """Stride-2 stages of the U-Net from its size down to 1 x 1."""
        return int(math.log2(self.global_size or self.size))

    @property
    def core(self) -> Pix2PixConfig:
        """The U-Net's own sizes: these, less the enhancer, at the global size (these themselves without one)."""
        return replace(self, size=self.global_size, global_size=0) if self.global_size else self

    @property
    def in_channels(self) -> int:
        return SKETCH_CHANNELS + (HINT_CHANNELS if self.hints else 0)

    @property
    def colour_bins(self) -> int:
        """How many colour cells the colour head scores (0 without one)."""
        return bin_count(self.colour_grid) if self.colour_grid else 0

    def widths(self) -> list[int]:
        return [self.gf * min(2**i, MAX_WIDTH_MULT) for i in range(self.depth)]

    def parameter_count(self) -> int:
        """Weights of G and D, from the sizes alone (no network is built)."""
        widths = self.widths()
        total, previous = 0, self.in_channels
        for w in widths:  # encoder 4x4 convolutions
            total += previous * w * 16
            previous = w
        ups = [*widths[::-1][1:], PICTURE_CHANNELS]
        previous = widths[-1]
        for i, w in enumerate(ups):  # decoder 3x3 convolutions on the upsampled input (+ skips after the first)
            total += previous * w * 9
            previous = w * 2 if i < len(ups) - 1 else w
        if self.colour_grid:
            total += (widths[0] * 2 + 1) * self.colour_bins
        if self.global_size:
            total += ((self.in_channels + PICTURE_CHANNELS) * 9 + 1) * self.enhancer + (self.enhancer * 9 + 1) * PICTURE_CHANNELS
        d = [self.df * min(2**i, MAX_WIDTH_MULT) for i in range(4)]
        previous = SKETCH_CHANNELS + PICTURE_CHANNELS
        for w in [*d, 1]:
            total += previous * w * 16
            previous = w
        return total


class _Down(nn.Module):
    def __init__(self, cin: int, cout: int, norm: bool) -> None:
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, 4, stride=2, padding=1, bias=not norm)
        self.norm = nn.BatchNorm2d(cout) if norm else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.norm(self.conv(nn.functional.leaky_relu(x, 0.2)))


#: Which 3x3 tap rows feed each of the 4 rows of the equivalent transposed convolution's taps:
#: output row 2m reads input rows m-1 (tap 3) and m (tap 1), output row 2m+1 rows m (tap 2) and m+1
#: (tap 0); after a nearest upsampling, row m-1 meets the 3x3 row 0, row m rows 1-2 or 0-1, row m+1 row 2.
_TAP_ROWS = torch.tensor([[0.0, 0.0, 1.0], [0.0, 1.0, 1.0], [1.0, 1.0, 0.0], [1.0, 0.0, 0.0]])


def upsampling_taps(weight: torch.Tensor) -> torch.Tensor:
    """The 4x4 stride-2 transposed-convolution taps (in, out, 4, 4) equal to a nearest x2 upsampling
    followed by the 3x3 convolution ``weight`` (out, in, 3, 3) with padding 1."""
    rows = _TAP_ROWS.to(weight)
    return torch.einsum("ay,bx,oiyx->ioab", rows, rows, weight)


class _Up(nn.Module):
    """ReLU, nearest x2 upsampling and a 3x3 convolution, run as the equal 4x4 stride-2 transposed
    convolution; batch norm and dropout after, tanh on the last stage."""

    def __init__(self, cin: int, cout: int, last: bool, dropout: float) -> None:
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, 3, padding=1, bias=last)
        self.norm = nn.Identity() if last else nn.BatchNorm2d(cout)
        self.dropout = nn.Dropout(dropout) if dropout > 0 else nn.Identity()
        self.last = last
        self.taps: torch.Tensor | None
        self.register_buffer("taps", None, persistent=False)  # the 4x4 taps fixed once for inference (``fold_upsampling``)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        taps = self.taps if self.taps is not None else upsampling_taps(self.conv.weight)
        x = nn.functional.conv_transpose2d(torch.relu(x), taps, self.conv.bias, stride=2, padding=1)
        x = self.dropout(self.norm(x))
        return torch.tanh(x) if self.last else x


def fold_upsampling(generator: nn.Module) -> nn.Module:
    """``generator`` (in place, for inference) with each decoder stage's 4x4 taps derived once from its
    3x3 weights instead of at every pass; later changes to the weights no longer reach it."""
    for module in generator.modules():
        if isinstance(module, _Up):
            with torch.no_grad():
                module.taps = upsampling_taps(module.conv.weight).contiguous()
    return generator


class ColourHead(nn.Module):
    """Scores of the CIELab ab cells (N, S/2, S/2, Q) from the last decoder stage's input (Zhang et al. 2016).

    A linear map of each pixel's features at half size to the cells (Zhang et al. score at a
    quarter of the size); the picture's lightness, and so its lines, stay at full size. The
    scores are pixel-major (cells last), where softmax and the read-out are several times
    faster on a CPU than over a channel axis.
    """

    #: The scores are the linear map's output times this (Karras et al. 2018's equalised learning rate):
    #: Adam moves each weight by about the learning rate a step, and a distribution over ~100 cells
    #: needs scores several units apart, which the DCGAN-initialised map alone reaches only after
    #: thousands of steps at the paper's 2e-4.
    GAIN = 16.0

    def __init__(self, cin: int, bins: int) -> None:
        super().__init__()
        self.score = nn.Linear(cin, bins)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.score(torch.relu(x).permute(0, 2, 3, 1)) * self.GAIN


class _Generator(nn.Module):
    """What every pix2pix generator offers: the picture, or its unmixed parts, and the colour mix."""

    config: Pix2PixConfig

    def forward(self, x: torch.Tensor, unmixed: bool = False) -> Any:
        """The picture; with ``unmixed``, ``parts(x)`` instead (a keyword, so a DDP wrapper passes it on)."""
        picture, logits = self.parts(x)
        if unmixed:
            return picture, logits
        return picture if logits is None else self.mix(picture, logits)

    def mix(self, picture: torch.Tensor, logits: torch.Tensor) -> torch.Tensor:
        """The decoder's ``picture``'s lightness with the annealed-mean colour of ``logits``, in [-1, 1] (float32)."""
        rgb = with_lightness((picture.float() + 1) / 2, annealed_mean(logits, self.config.colour_grid))
        return rgb * 2 - 1

    def parts(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        raise NotImplementedError


class UNetGenerator(_Generator):
    """G: (sketch, hint colours, hint mask) (N, 1 + 4, S, S) in [-1, 1] -> picture (N, 3, S, S) in [-1, 1].

    With a colour head (``colour_grid``), the picture takes its lightness from the decoder's
    own picture and its colour from the annealed mean of the head's cell scores; ``parts``
    gives both unmixed, for training and for sampling colours.
    """

    def __init__(self, config: Pix2PixConfig) -> None:
        super().__init__()
        self.config = config
        widths = config.widths()
        downs: list[nn.Module] = []
        previous = config.in_channels
        for i, w in enumerate(widths):
            downs.append(_Down(previous, w, norm=0 < i < len(widths) - 1))
            previous = w
        self.downs = nn.ModuleList(downs)
        ups: list[nn.Module] = []
        targets = [*widths[::-1][1:], PICTURE_CHANNELS]
        for i, w in enumerate(targets):
            last = i == len(targets) - 1
            ups.append(_Up(previous, w, last, config.dropout if i < 3 and not last else 0.0))
            previous = w * 2 if not last else w
        self.ups = nn.ModuleList(ups)
        self.colour = ColourHead(widths[0] * 2, config.colour_bins) if config.colour_grid else None
        self.apply(init_dcgan)

    def parts(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        """The decoder's picture (N, 3, S, S) and the colour head's cell scores (N, S/2, S/2, Q), or None without one."""
        skips: list[torch.Tensor] = []
        h = self.downs[0].norm(self.downs[0].conv(x))  # no activation on the input itself
        skips.append(h)
        for down in self.downs[1:]:
            h = down(h)
            skips.append(h)
        skips.pop()  # the 1x1 bottleneck feeds the decoder directly
        for up in self.ups[:-1]:
            h = torch.cat([up(h), skips.pop()], dim=1)
        logits = self.colour(h) if self.colour is not None else None
        return self.ups[-1](h), logits


class EnhancedGenerator(_Generator):
    """G at ``size`` drawn coarse to fine (pix2pixHD's global generator and local enhancer): the U-Net
    (``core``) on the input pooled to ``global_size``, its picture enlarged (bilinear) and corrected by
    two 3x3 convolutions at the full size that see the full-size input beside it.

    The colour head's scores stay at the U-Net's half size; the mix enlarges them under the
    full-size lightness, which carries the lines.
    """

    def __init__(self, config: Pix2PixConfig) -> None:
        super().__init__()
        self.config = config
        self.core = UNetGenerator(config.core)
        self.enhance = nn.Sequential(
            nn.Conv2d(config.in_channels + PICTURE_CHANNELS, config.enhancer, 3, padding=1),
            nn.ReLU(),
            nn.Conv2d(config.enhancer, PICTURE_CHANNELS, 3, padding=1),
        )
        self.enhance.apply(init_dcgan)
        with torch.no_grad():  # starts as the U-Net's picture, enlarged
            self.enhance[-1].weight.zero_()
            self.enhance[-1].bias.zero_()

    @property
    def factor(self) -> int:
        return self.config.size // self.config.global_size

    def parts(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        """The enhanced picture (N, 3, S, S), not clamped (the mix and the read-out clamp), and the U-Net's cell scores."""
        picture, logits = self.core.parts(nn.functional.avg_pool2d(x, self.factor))
        enlarged = nn.functional.interpolate(picture, scale_factor=self.factor, mode="bilinear", align_corners=False)
        return enlarged + self.enhance(torch.cat([x, enlarged], 1)), logits


def build_generator(config: Pix2PixConfig) -> UNetGenerator | EnhancedGenerator:
    """The generator ``config`` describes: a U-Net, or a U-Net with an enhancer where it has a global size."""
    return EnhancedGenerator(config) if config.global_size else UNetGenerator(config)
