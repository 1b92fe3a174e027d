"""The x4 upscaler: a small learned network that enlarges any engine's picture sharply.

A model draws at its own size (128 or 256 px); a picture shown or exported larger was a
plain enlargement, soft at every edge. The upscaler learns from our own pictures what
their edges look like at four times the size: OpenMoji's SVGs rendered large give exact
targets, and the small picture it learns from is the large one shrunk the way a model's
output is (an area average, with some blur and noise, since a GAN's picture is neither
perfectly clean nor perfectly sharp).

The network is an enhanced deep residual network in small (Lim et al., "Enhanced Deep
Residual Networks for Single Image Super-Resolution", 2017: residual blocks without
batch norm at the small size, then a sub-pixel convolution, Shi et al. 2016) predicting
what a bilinear enlargement misses, so an untrained network already gives the bilinear
picture. It knows no engine: it takes any RGB picture.

``enlarge`` reaches any side: learned x4 steps, then a plain resize of the sharp picture to
the exact side.
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from sketchapp.core.checkpoint import ModelParts, load_modules, read_checkpoint
from sketchapp.core.errors import CheckpointError

UPSCALER = "upscaler"
#: The largest side ``enlarge`` makes (a 1024 px export of a 256 px picture is x4; of 128 px, x8).
MAX_SIDE = 4096


@dataclass(frozen=True)
class UpscalerConfig:
    factor: int = 4
    width: int = 32
    blocks: int = 4

    def __post_init__(self) -> None:
        if self.factor not in (2, 3, 4) or not 4 <= self.width <= 256 or not 0 <= self.blocks <= 32:
            raise CheckpointError(f"upscaler architecture out of range: {self.to_dict()}")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Any) -> UpscalerConfig:
        if not isinstance(data, dict) or set(data) != {"factor", "width", "blocks"}:
            raise CheckpointError("upscaler architecture record is not factor, width and blocks")
        if not all(type(value) is int for value in data.values()):
            raise CheckpointError("upscaler architecture record holds a value that is not a whole number")
        return cls(**data)


class _Block(nn.Module):
    def __init__(self, width: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(width, width, 3, padding=1, padding_mode="replicate")
        self.conv2 = nn.Conv2d(width, width, 3, padding=1, padding_mode="replicate")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.conv2(F.relu(self.conv1(x)))


class UpscalerNet(nn.Module):
    """(N, 3, h, w) in [-1, 1] -> (N, 3, h*f, w*f): a bilinear enlargement plus what it misses."""

    def __init__(self, config: UpscalerConfig) -> None:
        super().__init__()
        self.factor = config.factor
        self.head = nn.Conv2d(3, config.width, 3, padding=1, padding_mode="replicate")
        self.body = nn.Sequential(*(_Block(config.width) for _ in range(config.blocks)))
        self.tail = nn.Conv2d(config.width, 3 * config.factor**2, 3, padding=1, padding_mode="replicate")
        nn.init.zeros_(self.tail.weight)  # a new network is the bilinear enlargement
        nn.init.zeros_(self.tail.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        base = F.interpolate(x, scale_factor=self.factor, mode="bilinear", align_corners=False)
        features = self.head(x)
        return base + F.pixel_shuffle(self.tail(self.body(features)), self.factor)


class UpscalerModel(ModelParts):
    """A trained upscaler: its network (prefix ``U``), architecture and record."""

    kind = UPSCALER

    def __init__(self, config: UpscalerConfig, net: UpscalerNet, metadata: dict[str, Any] | None = None) -> None:
        self.config, self.net = config, net
        self.metadata = dict(metadata or {})

    @classmethod
    def create(cls, config: UpscalerConfig, metadata: dict[str, Any] | None = None) -> UpscalerModel:
        return cls(config, UpscalerNet(config), metadata)

    @property
    def size(self) -> int:
        return int(self.metadata.get("size", 512))

    @property
    def factor(self) -> int:
        return self.config.factor

    def modules(self) -> dict[str, nn.Module]:
        return {"U": self.net}


def load_upscaler(path: str | os.PathLike[str]) -> UpscalerModel:
    """An upscaler model file (a SketchApp checkpoint of kind ``upscaler``), on the CPU, in eval mode."""
    name = Path(path).name
    metadata, tensors = read_checkpoint(path)
    if metadata.get("engine") != UPSCALER:
        raise CheckpointError(f"{name}: a {metadata.get('engine')!r} model, not an upscaler")
    config = UpscalerConfig.from_dict(metadata.get("architecture"))
    with torch.device("meta"):
        net = UpscalerNet(config)
    load_modules(name, {"U": net}, tensors)
    return UpscalerModel(config, net, metadata).eval()


def bundled_upscaler() -> UpscalerModel | None:
    """The shipped x4 upscaler, or None where this install has none (then pictures are enlarged plainly)."""
    from sketchapp import paths

    path = paths.bundled_models_dir() / "upscale-x4.safetensors"
    return load_upscaler(path) if path.is_file() else None


def lanczos(image: np.ndarray, side: int) -> np.ndarray:
    """``image`` resized to ``side`` x ``side`` the plain way (Lanczos up, area average down)."""
    interpolation = cv2.INTER_AREA if side < image.shape[0] else cv2.INTER_LANCZOS4
    return cv2.resize(image, (side, side), interpolation=interpolation)


def _pass(model: UpscalerModel, image: np.ndarray) -> np.ndarray:
    x = torch.from_numpy(np.ascontiguousarray(image)).permute(2, 0, 1)[None].float().div(127.5).sub(1)
    with torch.inference_mode():
        y = model.net(x)
    return y[0].permute(1, 2, 0).add(1).mul(127.5).round().clamp(0, 255).to(torch.uint8).numpy()


def enlarge(image: np.ndarray, side: int, model: UpscalerModel | None) -> np.ndarray:
    """RGB uint8 ``image`` (square) at ``side`` px, or plainly resized without a model or where ``side``
    is not larger. Larger: a learned x``factor`` step, more learned steps while a whole one still
    fits, a Lanczos enlargement of the sharp picture for the rest, an area shrink where a step
    overshot (so x2 is a learned x4 shrunk by half, and 128 px to 1024 px is 128 -> 512 learned,
    then 512 -> 1024 by Lanczos: the second learned step at 512 px would cost 40 times the first)."""
    side = max(1, min(MAX_SIDE, int(side)))
    if model is None or side <= image.shape[0]:
        return image if side == image.shape[0] else lanczos(image, side)
    image = _pass(model, image)
    while image.shape[0] * model.factor <= side:
        image = _pass(model, image)
    return image if image.shape[0] == side else lanczos(image, side)


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    """Peak signal-to-noise ratio of two uint8 pictures, in dB."""
    error = float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))
    return 99.0 if error == 0 else 10 * float(np.log10(255.0**2 / error))


def edge_sharpness(picture: np.ndarray, truth: np.ndarray) -> float:
    """How steep ``picture``'s edges are where ``truth`` has edges, over how steep the truth's are
    (1: as sharp as the truth; a plain enlargement's are lower, an over-sharpened one's higher)."""
    grey_truth = cv2.cvtColor(truth, cv2.COLOR_RGB2GRAY)
    edges = cv2.Canny(grey_truth, 50, 150) > 0
    if not edges.any():
        return 1.0

    def steepness(image: np.ndarray) -> float:
        grey = cv2.cvtColor(image, cv2.COLOR_RGB2GRAY).astype(np.float32)
        magnitude = cv2.magnitude(cv2.Sobel(grey, cv2.CV_32F, 1, 0), cv2.Sobel(grey, cv2.CV_32F, 0, 1))
        return float(magnitude[edges].mean())

    return steepness(picture) / max(steepness(truth), 1e-6)


def upscaler_scores(model: UpscalerModel, pictures: np.ndarray) -> dict[str, dict[str, float]]:
    """PSNR and edge sharpness of each way of enlarging a picture shrunk by the model's factor back to
    its size (``pictures``: N x S x S x 3 uint8 held-out truths), averaged: Lanczos, bicubic, the upscaler."""
    factor = model.factor
    totals: dict[str, list[float]] = {}
    for truth in pictures:
        side = truth.shape[0] - truth.shape[0] % factor
        truth = np.ascontiguousarray(truth[:side, :side])
        small = cv2.resize(truth, (side // factor, side // factor), interpolation=cv2.INTER_AREA)
        ways = {
            "lanczos": lanczos(small, side),
            "bicubic": cv2.resize(small, (side, side), interpolation=cv2.INTER_CUBIC),
            "upscaler": _pass(model, small),
        }
        for way, picture in ways.items():
            totals.setdefault(f"{way}.psnr", []).append(psnr(picture, truth))
            totals.setdefault(f"{way}.sharpness", []).append(edge_sharpness(picture, truth))
    scores: dict[str, dict[str, float]] = {}
    for key, values in totals.items():
        way, measure = key.split(".")
        scores.setdefault(way, {})[measure] = float(np.mean(values))
    return scores
