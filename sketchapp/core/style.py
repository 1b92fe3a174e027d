"""A style reference: the result takes a picture's colours and textures, and keeps its content.

Gatys, Ecker and Bethge (2016), "Image Style Transfer Using Convolutional Neural
Networks", the method the CycleGAN seed tried first: the picture is optimised so that
the Gram matrices (which features fire together, wherever they are) of a network's
layers match the reference's, while one deeper layer's features stay those of the
result. Pretrained features cannot be downloaded at run time, so by default the
features are those of the preset's own trained discriminator, which has learnt what
pictures of its data look like; a VGG-19 weights file the user already has
(torchvision's state-dict layout) gives the paper's features instead.

Gram matrices alone barely move a flat drawing's colours (with a photo of coffee as the
reference the colours hardly changed) and they tint the paper. So the reference's colours
are carried first, and the paper and the lines are kept out of it: the drawn part of the
result (every pixel but the white paper the page's border reaches and the near-black
lines) takes the reference's colour
statistics in CIELab, each channel's mean and spread (Reinhard et al., "Color Transfer
between Images", 2001), with its own lightness order and so its lines and shapes; then
the optimisation adds the reference's textures there, and the paper is held white at
every step.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from sketchapp.core.engine import CancelToken, to_uint8
from sketchapp.core.errors import CheckpointError, SettingsError
from sketchapp.core.fileio import check_regular
from sketchapp.core.prepare import fit_square

#: VGG-19's convolutions (torchvision's ``features`` indices): "M" is a 2x2 max pool
VGG19_LAYOUT = (64, 64, "M", 128, 128, "M", 256, 256, 256, 256, "M", 512, 512, 512, 512, "M", 512, 512, 512, 512, "M")
VGG_STYLE = (1, 6, 11, 20, 29)  # relu1_1 .. relu5_1, the paper's style layers
VGG_CONTENT = 22  # relu4_2, its content layer
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
VGG_FILE_LIMIT = 1 << 30  # torchvision's VGG-19 is 548 MB


@dataclass
class Features:
    """A fixed network that gives a picture's style layers and its content layer.

    ``__call__`` takes pictures (N, 3, S, S) in [-1, 1] and returns (style maps, content map).
    """

    extract: Callable[[torch.Tensor], tuple[list[torch.Tensor], torch.Tensor]]
    name: str

    def __call__(self, pictures: torch.Tensor) -> tuple[list[torch.Tensor], torch.Tensor]:
        return self.extract(pictures)


def gram(feature: torch.Tensor) -> torch.Tensor:
    """(N, C, H, W) -> (N, C, C): which channels fire together, averaged over the places, so size does not matter."""
    n, c, h, w = feature.shape
    flat = feature.reshape(n, c, h * w)
    return flat @ flat.transpose(1, 2) / (h * w)


def _tapped(layers: nn.Sequential, taps: set[int]) -> Callable[[torch.Tensor], list[torch.Tensor]]:
    def run(x: torch.Tensor) -> list[torch.Tensor]:
        outputs = []
        for index, layer in enumerate(layers):
            x = layer(x)
            if index in taps:
                outputs.append(x)
        return outputs

    return run


def discriminator_features(model: Any) -> Features:
    """Features of a preset's trained discriminator, any engine's: its leaky-ReLU outputs are the style
    layers, the second-to-last of them the content layer.

    pix2pix's D judges (sketch, picture) pairs and the contextual D joint sketch | image
    pictures; both are given blank paper as the sketch, the same for result and reference.
    """
    try:
        stack, joint, sketch_channel = model.style_stack()
    except (AttributeError, NotImplementedError) as exc:
        raise SettingsError(f"no discriminator features in a {getattr(model, 'kind', type(model).__name__)!r} model") from exc
    stack = stack.eval()
    taps = {i for i, layer in enumerate(stack) if isinstance(layer, nn.LeakyReLU)}
    run = _tapped(stack, taps)

    def extract(pictures: torch.Tensor) -> tuple[list[torch.Tensor], torch.Tensor]:
        x = pictures
        if sketch_channel:
            x = torch.cat([torch.ones_like(x[:, :1]), x], 1)
        if joint:
            x = torch.cat([torch.ones_like(x), x], 3)
        maps = run(x)
        if joint:
            maps = [m[..., m.shape[-1] // 2 :] for m in maps]  # the picture half
        # the pixels' own colours count as the first style layer: a discriminator's first
        # features see edges more than colours, and the reference's palette is half its style
        return [pictures, *maps], maps[-2] if len(maps) > 1 else maps[-1]

    for parameter in stack.parameters():
        parameter.requires_grad_(False)
    return Features(extract, "the preset's discriminator")


def _vgg(widths: list[int]) -> nn.Sequential:
    layers: list[nn.Module] = []
    previous = 3
    convs = iter(widths)
    for item in VGG19_LAYOUT:
        if item == "M":
            layers.append(nn.MaxPool2d(2, 2))
        else:
            width = next(convs)
            layers += [nn.Conv2d(previous, width, 3, padding=1), nn.ReLU(inplace=False)]
            previous = width
    return nn.Sequential(*layers)


def vgg19_features(path: str | os.PathLike[str], device: torch.device | str = "cpu") -> Features:
    """The paper's VGG-19 features from a weights file the user has (torchvision's ``vgg19`` state dict, or its
    ``features`` part), loaded with ``weights_only=True``; any widths in VGG-19's layout (a tiny one for tests)."""
    name = Path(path).name
    check_regular(path, CheckpointError, "VGG-19 weights", VGG_FILE_LIMIT)
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - pickles refused by weights_only, truncated files, zip errors
        raise CheckpointError(f"{name}: not a VGG-19 weights file that loads safely ({type(exc).__name__}: {str(exc)[:120]})") from exc
    if not isinstance(state, dict):
        raise CheckpointError(f"{name}: not a state dict")
    features = {k.removeprefix("features."): v for k, v in state.items() if isinstance(k, str) and not k.startswith("classifier.")}
    conv_indices = [i for i, item in enumerate(_index_layout()) if item == "conv"]
    widths = []
    for index in conv_indices:
        weight = features.get(f"{index}.weight")
        if not isinstance(weight, torch.Tensor) or weight.ndim != 4 or tuple(weight.shape[2:]) != (3, 3):
            raise CheckpointError(f"{name}: no 3x3 convolution weights at features.{index} (not VGG-19's layout)")
        widths.append(int(weight.shape[0]))
    if max(widths) > 4096:
        raise CheckpointError(f"{name}: convolutions of {max(widths)} channels are not VGG-19's")
    net = _vgg(widths)
    try:
        net.load_state_dict({k: v.float() for k, v in features.items()})
    except (RuntimeError, AttributeError) as exc:
        raise CheckpointError(f"{name}: its weights do not fit VGG-19 ({str(exc).splitlines()[0][:160]})") from exc
    if not all(bool(torch.isfinite(p).all()) for p in net.parameters()):
        raise CheckpointError(f"{name}: weights hold NaN or infinite values")
    net = net.to(device).eval().requires_grad_(False)
    run = _tapped(net, {*VGG_STYLE, VGG_CONTENT})
    mean = torch.tensor(IMAGENET_MEAN, device=device)[None, :, None, None]
    std = torch.tensor(IMAGENET_STD, device=device)[None, :, None, None]

    def extract(pictures: torch.Tensor) -> tuple[list[torch.Tensor], torch.Tensor]:
        maps = run(((pictures + 1) / 2 - mean) / std)
        return [maps[i] for i in (0, 1, 2, 3, 5)], maps[4]  # relu1_1..relu4_1, relu5_1; relu4_2

    return Features(extract, f"VGG-19 ({name})")


def _index_layout() -> list[str]:
    """torchvision's ``features`` indices: "conv", "relu" or "pool"."""
    out: list[str] = []
    for item in VGG19_LAYOUT:
        out += ["pool"] if item == "M" else ["conv", "relu"]
    return out


@dataclass(frozen=True)
class StyleSettings:
    steps: int = 150
    strength: float = 1.0  # style against content: higher takes more of the reference
    lr: float = 0.03
    smoothness: float = 5.0  # total variation weight: without it the optimised pixels turn to noise (the seed's finding)
    colours: float = 1.0  # share of the reference's colour statistics the drawn part takes first (0: Gram matrices alone)

    def __post_init__(self) -> None:
        if type(self.steps) is not int or not 1 <= self.steps <= 5000:
            raise SettingsError(f"style steps must be 1-5000, got {self.steps!r}")
        if type(self.smoothness) not in (int, float) or not 0 <= self.smoothness <= 1000:
            raise SettingsError(f"style smoothness must be 0-1000, got {self.smoothness!r}")
        if type(self.colours) not in (int, float) or not 0 <= self.colours <= 1:
            raise SettingsError(f"style colours must be 0-1, got {self.colours!r}")
        for name, low, high in (("strength", 0.0, 1000.0), ("lr", 1e-5, 1.0)):
            value = getattr(self, name)
            if type(value) not in (int, float) or not low < value <= high:
                raise SettingsError(f"style {name} must be in ({low}, {high}], got {value!r}")


def picture_tensor(picture: np.ndarray, size: int, device: torch.device | str = "cpu") -> torch.Tensor:
    """An RGB uint8 picture of any size -> (1, 3, size, size) in [-1, 1], centred on white."""
    fitted = fit_square(picture, size, (255, 255, 255))
    return torch.from_numpy(fitted).permute(2, 0, 1)[None].float().div(127.5).sub(1.0).to(device)


#: A pixel at least this light in every channel, reached from the page's border through such pixels, is paper.
PAPER_LEVEL = 232
#: A pixel darker than this in every channel is a line: it keeps its colour when the reference's colours come in.
LINE_LEVEL = 70


def paper_of(picture: np.ndarray) -> np.ndarray:
    """(S, S) bool: the white paper around the drawn part of an RGB picture (light pixels connected to the
    border; a white highlight inside a shape is part of the shape)."""
    import cv2

    light = (picture.min(axis=2) >= PAPER_LEVEL).astype(np.uint8)
    count, labels = cv2.connectedComponents(light, connectivity=4)
    border = np.unique(np.concatenate([labels[0], labels[-1], labels[:, 0], labels[:, -1]]))
    touching = np.zeros(count, bool)
    touching[border] = True
    touching[0] = False  # label 0: the pixels that are not light
    return touching[labels]


def carry_colours(result: np.ndarray, reference: np.ndarray, amount: float = 1.0) -> np.ndarray:
    """``result`` with its drawn part moved ``amount`` of the way to ``reference``'s colour statistics in
    CIELab (each channel's mean and spread, Reinhard et al. 2001); its paper and its lines (near-black
    pixels) stay as they are. The reference's own white paper, if it has some, does not count as one of
    its colours."""
    import cv2

    paper = paper_of(result)
    drawn = ~paper & (result.max(axis=2) >= LINE_LEVEL)  # the lines stay the lines they were
    if not drawn.any() or amount <= 0:
        return result
    lab = cv2.cvtColor(result, cv2.COLOR_RGB2LAB).astype(np.float32)
    source = cv2.cvtColor(reference, cv2.COLOR_RGB2LAB).astype(np.float32).reshape(-1, 3)
    own = ~paper_of(reference).reshape(-1)
    if own.mean() > 0.05:
        source = source[own]
    values = lab[drawn]
    mean, spread = values.mean(0), values.std(0) + 1e-3
    target_mean, target_spread = source.mean(0), source.std(0) + 1e-3
    moved = (values - mean) / spread * target_spread + target_mean
    lab[drawn] = values + amount * (moved - values)
    out = cv2.cvtColor(np.clip(lab, 0, 255).astype(np.uint8), cv2.COLOR_LAB2RGB)
    out[~drawn] = result[~drawn]
    return out


def palette_distance(picture: np.ndarray, reference: np.ndarray, colours: int = 8) -> float:
    """Mean CIELab distance from the pixels of the drawn shapes (not the paper, not the near-black lines)
    to the nearest of the reference's ``colours`` main colours (k-means): how far a picture's colours
    are from the reference's palette."""
    import cv2

    drawn = ~paper_of(picture) & (picture.max(axis=2) >= LINE_LEVEL)
    if not drawn.any():
        return 0.0
    small = cv2.resize(reference, (64, 64), interpolation=cv2.INTER_AREA)
    lab = cv2.cvtColor(small, cv2.COLOR_RGB2LAB).astype(np.float32).reshape(-1, 3)
    criteria = (cv2.TERM_CRITERIA_EPS + cv2.TERM_CRITERIA_MAX_ITER, 30, 0.5)
    cv2.setRNGSeed(0)
    _, _, centres = cv2.kmeans(lab, min(colours, len(lab)), None, criteria, 3, cv2.KMEANS_PP_CENTERS)
    pixels = cv2.cvtColor(picture, cv2.COLOR_RGB2LAB).astype(np.float32)[drawn]
    scale = np.array([100 / 255, 1.0, 1.0], np.float32)  # OpenCV's 8-bit L is 0-255
    nearest = np.linalg.norm((pixels[:, None] - centres[None]) * scale, axis=2).min(1)
    return float(nearest.mean())


def stylise(
    result: np.ndarray,
    reference: np.ndarray,
    features: Features,
    settings: StyleSettings | None = None,
    cancel: CancelToken | None = None,
    device: torch.device | str = "cpu",
) -> Iterator[tuple[int, np.ndarray, dict[str, float]]]:
    """Optimise ``result`` (S, S, 3 uint8) toward ``reference``'s style; yields (step, picture, losses) every step.

    Loss = content + strength x style + smoothness x roughness: the content term is the
    relative squared change of the content layer, the style term the relative squared
    distance of each style layer's Gram matrix to the reference's, averaged over layers,
    and roughness the total variation beyond the result's own. Adam on the pixels,
    starting from the result with the reference's colours carried into its drawn part
    (``carry_colours``, by ``settings.colours``); the paper is held as it was. The last
    picture yielded is the answer; a cancelled run stops where it is.
    """
    settings = settings or StyleSettings()
    cancel = cancel or CancelToken()
    size = result.shape[0]
    paper = torch.from_numpy(paper_of(result)).to(device)
    start = picture_tensor(carry_colours(result, reference, settings.colours), size, device)
    target = picture_tensor(reference, size, device)
    with torch.no_grad():
        style_maps, _ = features(target)
        grams = [gram(m) for m in style_maps]
        _, content = features(start)
        tv_start = (start[..., 1:, :] - start[..., :-1, :]).abs().mean() + (start[..., 1:] - start[..., :-1]).abs().mean()
    x = start.clone().requires_grad_(True)
    optimiser = torch.optim.Adam([x], lr=settings.lr)
    for step in range(1, settings.steps + 1):
        if cancel.cancelled:
            return
        maps, now = features(x)
        content_loss = (now - content).pow(2).mean() / content.pow(2).mean().clamp_min(1e-8)
        style_loss = torch.stack([
            (gram(m) - g).pow(2).mean() / g.pow(2).mean().clamp_min(1e-8) for m, g in zip(maps, grams)
        ]).mean()
        tv = (x[..., 1:, :] - x[..., :-1, :]).abs().mean() + (x[..., 1:] - x[..., :-1]).abs().mean()
        # only roughness beyond the result's own is penalised: its edges stay
        loss = content_loss + settings.strength * style_loss + settings.smoothness * F.relu(tv - tv_start)
        optimiser.zero_grad(set_to_none=True)
        loss.backward()
        optimiser.step()
        with torch.no_grad():
            x.clamp_(-1, 1)
            x[:, :, paper] = start[:, :, paper]  # the paper stays as it was: white
        yield step, to_uint8(x.detach())[0], {
            "content": content_loss.item(), "style": style_loss.item(), "roughness": tv.item(), "total": loss.item(),
        }


def style_distance(picture: np.ndarray, reference: np.ndarray, features: Features) -> float:
    """How far ``picture``'s Gram statistics are from ``reference``'s (the style term, at strength 1)."""
    size = picture.shape[0]
    with torch.no_grad():
        a, _ = features(picture_tensor(picture, size))
        b, _ = features(picture_tensor(reference, size))
        return float(torch.stack([(gram(x) - gram(y)).pow(2).mean() / gram(y).pow(2).mean().clamp_min(1e-8) for x, y in zip(a, b)]).mean())


def stylised_snapshot(snapshot: Any, reference: np.ndarray, features: Features, settings: StyleSettings | None = None,
                      cancel: CancelToken | None = None) -> Any:
    """``snapshot`` with every candidate's picture moved toward ``reference``'s style (its lines and losses kept);
    None when cancelled."""
    from dataclasses import replace

    device = snapshot.pictures.device
    styled = []
    for picture in snapshot.images("image"):
        last = None
        for _, last, _ in stylise(picture, reference, features, settings, cancel, device):
            pass
        if last is None or (cancel is not None and cancel.cancelled):
            return None
        styled.append(picture_tensor(last, picture.shape[0], device))
    return replace(snapshot, pictures=torch.cat(styled), info={**snapshot.info, "style": features.name})
