"""The pix2pix engine: one forward pass from sketch (and colour hints) to picture.

There is no search: the U-Net draws the picture directly, so a result follows every
line of the drawing and arrives in milliseconds, fast enough to complete while the pen
moves. Hints enter as input channels and act in the same pass.

Variety: pix2pix's only noise is dropout (the paper keeps it on at test time and notes
it changes little: 2-4 grey levels of 255 between candidates of the shipped models).
Real variety comes through the hint channels instead: candidate 0 is the network's own
picture, and each other candidate gets a sampled palette, one dab of colour in each of
the drawing's larger closed areas that the user has not hinted (``palette_hints``), so
the same pass that follows a user's hint recolours the picture. A model with a colour
head draws each area's colour from its own distribution over that area (what it thinks
plausible there); others draw any clear colour. A model without hint inputs, or a
drawing without closed areas, samples dropout instead (``variety "dropout"`` asks for
it). ``variety_spread`` measures how much the candidates differ.
"""

from __future__ import annotations

import colorsys
import copy
import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass, fields, replace
from pathlib import Path

import cv2
import numpy as np
import torch
from torch import nn

from sketchapp.contracts import Capabilities
from sketchapp.core.colour import ab_grid, lab_to_rgb, rgb_to_lab
from sketchapp.core.engine import CancelToken, Snapshot
from sketchapp.core.engines.pix2pix.model import PIX2PIX, Pix2PixModel, generator_input
from sketchapp.core.engines.pix2pix.networks import fold_upsampling
from sketchapp.core.errors import SettingsError
from sketchapp.core.records import Record
from sketchapp.core.prepare import hints_tensor, line_layer, sketch_tensor
from sketchapp.core.runtime import CompiledNet, faster_runtime, seconds


VARIETIES = ("palette", "dropout")


@dataclass(frozen=True)
class Pix2PixSettings(Record):
    """What shapes one pix2pix completion (presets store these)."""

    WHAT = "pix2pix settings"

    candidates: int = 1  # > 1: the others get sampled palettes (or sampled dropout, see ``variety``)
    variety: str = "palette"  # how candidates after the first differ: "palette" (hint colours) or "dropout"
    ink_lines: bool = False
    match_line_width: bool = True
    seed: int | None = None
    channels_last: bool = True
    bfloat16: bool = True  # on the CPU, run in bfloat16 where the warm-up measures it faster (native BF16 units)
    runtime: bool = True  # on the CPU, run the single picture under ONNX Runtime (core.runtime) where the warm-up measures it faster

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            if f.name == "seed":
                ok = value is None or (type(value) is int and 0 <= value < 2**63)
            else:
                ok = type(value) is {"int": int, "bool": bool, "str": str}[str(f.type)]
            if not ok:
                raise SettingsError(f"pix2pix setting {f.name} has a bad value {value!r}")
        if not 1 <= self.candidates <= 16:
            raise SettingsError(f"candidates must be 1..16, got {self.candidates}")
        if self.variety not in VARIETIES:
            raise SettingsError(f"variety must be one of {', '.join(VARIETIES)}, got {self.variety[:40]!r}")


def fold_batch_norm(generator: nn.Module) -> nn.Module:
    """A copy of an eval-mode network with every Conv2d followed by BatchNorm2d merged into one convolution.

    y = gamma (Wx + b - mean) / sqrt(var + eps) + beta is itself a convolution, so the
    normalisation costs nothing at inference.
    """
    folded = copy.deepcopy(generator).eval()
    for module in folded.modules():
        conv, norm = getattr(module, "conv", None), getattr(module, "norm", None)
        if isinstance(conv, nn.Conv2d) and isinstance(norm, nn.BatchNorm2d):
            scale = norm.weight / torch.sqrt(norm.running_var + norm.eps)
            bias = conv.bias if conv.bias is not None else torch.zeros_like(norm.running_mean)
            with torch.no_grad():
                fused = nn.Conv2d(conv.in_channels, conv.out_channels, conv.kernel_size, conv.stride, conv.padding, bias=True)
                fused.weight.copy_(conv.weight * scale[:, None, None, None])
                fused.bias.copy_((bias - norm.running_mean) * scale + norm.bias)
            module.conv, module.norm = fused, nn.Identity()
    return folded.requires_grad_(False)


class Pix2PixEngine:
    """One-pass completion for a loaded pix2pix model; reusable across runs."""

    kind = PIX2PIX
    #: what the window offers with this engine (the worker reports it)
    capabilities = Capabilities(live=True)

    def __init__(self, model: Pix2PixModel, device: torch.device | str = "cpu") -> None:
        # sampled palettes go in through the hint channels: real variety only where the model has them
        self.capabilities = replace(Pix2PixEngine.capabilities, variations=model.config.hints, hints=model.config.hints)
        self.device = torch.device(device)
        self.model = model.to(self.device).eval()
        self.model.generator.requires_grad_(False)
        self.folded = fold_upsampling(fold_batch_norm(self.model.generator)).to(self.device)
        self._layout = torch.contiguous_format
        self.fast: nn.Module | None = None  # a bfloat16 copy of ``folded``, where the warm-up found it faster
        self.compiled: CompiledNet | None = None  # ``folded`` under ONNX Runtime for one picture, where the warm-up found it faster

    @property
    def half_size(self) -> int:
        return self.model.config.size

    @property
    def line_width(self) -> float | None:
        return self.model.line_width

    def set_layout(self, channels_last: bool) -> None:
        layout = torch.channels_last if channels_last else torch.contiguous_format
        if layout is not self._layout:
            for net in (self.folded, self.fast):
                if net is not None:
                    net.to(memory_format=layout)
            self._layout = layout

    def warm_up(self, settings: Pix2PixSettings | None = None, cache: Path | None = None) -> None:
        """Throw-away passes so the first real result comes at full speed (kernels built), and on the CPU
        the choice of how a picture runs, each kept only where it measures at least 10 % faster than
        what it would replace: bfloat16 (CPUs with native BF16 units; elsewhere it emulates and is
        slower), then ONNX Runtime for the single picture (``core.runtime``; converted networks are kept
        in ``cache``, by default the user's cache folder)."""
        settings = settings or Pix2PixSettings()
        blank = np.full((self.half_size, self.half_size), 255, np.uint8)
        for _ in self.start(blank, None, settings.updated(seed=0)):
            pass
        self.fast, self.compiled = None, None
        if self.device.type != "cpu":
            return
        x = generator_input(torch.ones(1, 1, self.half_size, self.half_size), None, self.model.config)
        x = x.contiguous(memory_format=self._layout)
        plain = seconds(self.folded, x)
        if settings.bfloat16:
            try:
                fast = copy.deepcopy(self.folded).to(torch.bfloat16)
                quick = seconds(fast, x.to(torch.bfloat16))
            except RuntimeError:  # no bfloat16 kernels on this build
                quick = math.inf
            if quick < 0.9 * plain:
                self.fast, plain = fast, quick
        if settings.runtime:
            self.compiled = faster_runtime(self.folded, x, plain, cache, unmixed=True)

    def start(
        self,
        sketch: np.ndarray,
        hints: np.ndarray | None = None,
        settings: Pix2PixSettings | None = None,
        cancel: CancelToken | None = None,
        z: np.ndarray | None = None,
    ) -> Iterator[Snapshot]:
        """Complete ``sketch`` in one pass; yields one final Snapshot (none when cancelled).

        ``hints`` is an RGBA picture over the sketch: opaque pixels are colours the
        result should have. ``z`` has no meaning here (no latent code) and is refused.
        """
        if z is not None:
            raise SettingsError("pix2pix has no latent code to refine")
        settings = settings or Pix2PixSettings()
        cancel = cancel or CancelToken()
        if cancel.cancelled:
            return
        size = self.half_size
        line_width = self.line_width if settings.match_line_width else None
        grey = sketch_tensor(sketch, size, line_width)[:, :1].to(self.device)
        hint_channels = None
        if hints is not None and self.model.config.hints:
            colours, alpha = hints_tensor(hints, sketch.shape, size)
            mask = (alpha > 0.5).float()
            hint_channels = torch.cat([colours * mask, mask], 1).to(self.device)
        self.set_layout(settings.channels_last and self.device.type == "cpu")
        seed = settings.seed if settings.seed is not None else int(torch.seed() % (2**63))
        with torch.inference_mode():
            x = generator_input(grey, hint_channels, self.model.config).contiguous(memory_format=self._layout)
            raw, logits = self._run(x, settings)
            pictures = raw.float() if logits is None else self.folded.mix(raw, logits)
            if settings.candidates > 1:
                colours = plausible_colours(pictures, logits, self.model.config.colour_grid) if logits is not None else None
                pictures = torch.cat([pictures, self._variations(grey, hint_channels, x, settings, seed, colours)])
        if cancel.cancelled:
            return
        spread = variety_spread(pictures)
        lines = line_layer(sketch, size) if settings.ink_lines else None
        zero = np.zeros(len(pictures), np.float32)
        yield Snapshot(
            iteration=1, iterations=1, phase="done", losses={"total": zero}, best=0,
            pictures=pictures.contiguous(), final=True, info={"spread": spread}, lines=lines,
        )

    def _run(self, x: torch.Tensor, settings: Pix2PixSettings) -> tuple[torch.Tensor, torch.Tensor | None]:
        """The folded generator's parts for ``x``: under ONNX Runtime or in bfloat16 where the warm-up kept them."""
        if self.compiled is not None and settings.runtime and tuple(x.shape) == self.compiled.shape:
            outputs = self.compiled(x)
            return outputs[0], outputs[1] if len(outputs) > 1 else None
        if self.fast is not None and settings.bfloat16:
            return self.fast(x.to(torch.bfloat16), unmixed=True)  # type: ignore[no-any-return]
        return self.folded(x, unmixed=True)  # type: ignore[no-any-return]

    def _variations(
        self, grey: torch.Tensor, hint_channels: torch.Tensor | None, x: torch.Tensor, settings: Pix2PixSettings, seed: int,
        colours: AreaColours | None = None,
    ) -> torch.Tensor:
        """``settings.candidates - 1`` more pictures: sampled palettes where the model takes hints and the
        drawing has closed areas the user left unhinted, else sampled dropout."""
        count = settings.candidates - 1
        palettes = None
        if settings.variety == "palette" and self.model.config.hints:
            palettes = palette_hints(grey, hint_channels, count, seed, colours)
        if palettes is None:
            return self._sampled(x, count, seed)
        batch = generator_input(grey.expand(count, -1, -1, -1), palettes.to(grey), self.model.config)
        raw, logits = self._run(batch.contiguous(memory_format=self._layout), settings)
        return raw.float() if logits is None else self.folded.mix(raw, logits)

    def _sampled(self, x: torch.Tensor, count: int, seed: int) -> torch.Tensor:
        """``count`` pictures with the decoder's dropout sampled (batch norm stays in eval mode)."""
        generator = self.model.generator
        dropouts = [m for m in generator.modules() if isinstance(m, nn.Dropout)]
        if not dropouts:
            return self.folded(x.expand(count, -1, -1, -1).contiguous(memory_format=self._layout)).float()
        with torch.random.fork_rng(devices=[self.device] if self.device.type == "cuda" else []):
            torch.manual_seed(seed)
            for module in dropouts:
                module.train()
            try:
                return generator(x.expand(count, -1, -1, -1).contiguous()).float()
            finally:
                for module in dropouts:
                    module.eval()


PALETTE_AREAS = 6  # at most this many closed areas get a sampled colour, the largest first
DAB = 3  # side of a sampled colour's dab, in model pixels

#: A colour (RGB in [0, 1]) for one closed area (a boolean mask of the model's size), drawn with ``rng``.
AreaColours = Callable[[np.ndarray, np.random.Generator], tuple[float, float, float]]


def clear_colour(area: np.ndarray, rng: np.random.Generator) -> tuple[float, float, float]:
    """Any hue, saturation 0.45-0.9, value 0.55-0.95: clear colours that shade well."""
    return colorsys.hsv_to_rgb(rng.uniform(0, 1), rng.uniform(0.45, 0.9), rng.uniform(0.55, 0.95))


def plausible_colours(pictures: torch.Tensor, logits: torch.Tensor, grid: int) -> AreaColours:
    """Colours drawn from a colour-head model's own belief: for an area, a cell sampled from the mean of
    its pixels' distributions (``logits`` (1, S/2, S/2, Q)), at the lightness the picture (1, 3, S, S) has there."""
    probabilities = torch.softmax(logits[0].float(), -1).cpu()
    lightness = rgb_to_lab((pictures[:1].float().cpu() + 1) / 2)[0, 0].numpy()
    centres = ab_grid(grid)
    half = probabilities.shape[0]

    def colour(area: np.ndarray, rng: np.random.Generator) -> tuple[float, float, float]:
        small = cv2.resize(area.astype(np.uint8), (half, half), interpolation=cv2.INTER_NEAREST).astype(bool)
        if not small.any():
            small = cv2.resize(area.astype(np.uint8), (half, half), interpolation=cv2.INTER_AREA) > 0
        belief = probabilities[torch.from_numpy(small)].mean(0).double().numpy()
        a, b = centres[int(rng.choice(len(belief), p=belief / belief.sum()))].tolist()
        lab = torch.tensor([float(lightness[area].mean()), a, b]).reshape(1, 3, 1, 1)
        return tuple(float(v) for v in lab_to_rgb(lab)[0, :, 0, 0])  # type: ignore[return-value]

    return colour


def palette_hints(
    grey: torch.Tensor, hints: torch.Tensor | None, count: int, seed: int, colours: AreaColours | None = None,
) -> torch.Tensor | None:
    """Hint channels (count, 4, S, S) with a sampled palette each, or None where the drawing has no closed area.

    ``grey`` (1, 1, S, S) in [-1, 1] is the sketch as the model takes it, ``hints`` (1, 4,
    S, S) the user's hint channels or None. The closed areas are the paper's 4-connected
    pieces that do not touch the border (the paper around a drawing is left alone), of at
    least 1/2000 of the picture; the user's own hints stay, and an area they touch keeps
    the user's colour. Each other area among the PALETTE_AREAS largest gets a DAB-pixel dab
    at its deepest point (farthest from its edge) in a colour drawn from candidate ``k``'s
    seed by ``colours`` (default ``clear_colour``).
    """
    colours = colours or clear_colour
    side = grey.shape[-1]
    paper = (grey[0, 0] > 0).cpu().numpy().astype(np.uint8)
    found, labels, stats, _ = cv2.connectedComponentsWithStats(paper, connectivity=4)
    edge = set(np.unique(np.concatenate([labels[0], labels[-1], labels[:, 0], labels[:, -1]])).tolist())
    taken = set()
    if hints is not None:
        taken = set(np.unique(labels[(hints[0, 3] > 0).cpu().numpy()]).tolist())
    smallest = max(4, side * side // 2000)
    areas = [i for i in range(1, found) if i not in edge and i not in taken and stats[i, cv2.CC_STAT_AREA] >= smallest]
    if not areas:
        return None
    areas = sorted(areas, key=lambda i: -stats[i, cv2.CC_STAT_AREA])[:PALETTE_AREAS]
    dabs = []
    for area in areas:
        inside = (labels == area).astype(np.uint8)
        depth = cv2.distanceTransform(np.pad(inside, 1), cv2.DIST_L2, 3)[1:-1, 1:-1]
        y, x = np.unravel_index(int(np.argmax(depth)), depth.shape)
        top, left = max(0, y - DAB // 2), max(0, x - DAB // 2)
        dabs.append((inside.astype(bool), top, left, inside[top : top + DAB, left : left + DAB].astype(bool)))
    out = torch.zeros(count, 4, side, side)
    if hints is not None:
        out[:] = hints[0].cpu()
    for k in range(count):
        rng = np.random.default_rng([seed % 2**63, k + 1])
        for area, top, left, where in dabs:
            rgb = colours(area, rng)
            h, w = where.shape
            out[k, :, top : top + h, left : left + w][:, torch.from_numpy(where)] = torch.tensor([*(2 * v - 1 for v in rgb), 1.0])[:, None]
    return out


def variety_spread(pictures: torch.Tensor) -> float:
    """Mean absolute difference between candidates and their mean, on the 0-255 scale (0 for one)."""
    if len(pictures) < 2:
        return 0.0
    value = float((pictures - pictures.mean(0, keepdim=True)).abs().mean() * 127.5)
    return value if math.isfinite(value) else 0.0
