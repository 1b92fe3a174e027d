"""Sketch styles: deterministic filters that turn a picture into black lines on white.

Training pairs are (style(image), image), so the style a model is trained with is the
kind of drawing it understands. Every style takes a uint8 greyscale, RGB or RGBA
picture and returns a uint8 greyscale one of the same size (255 = paper).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass, field, fields
from typing import Any

import cv2
import numpy as np

from sketchapp.core.errors import SettingsError
from sketchapp.core.prepare import as_rgb


def to_grey(picture: np.ndarray) -> np.ndarray:
    """uint8 grey, RGB or RGBA (composited on white) -> uint8 grey."""
    if picture.ndim == 2 and picture.dtype == np.uint8:
        return picture
    return cv2.cvtColor(as_rgb(picture), cv2.COLOR_RGB2GRAY)


class _Params:
    """Validated, serialisable style parameters."""

    def __post_init__(self) -> None:
        for f in fields(self):  # type: ignore[arg-type]
            low, high = f.metadata.get("range", (None, None)) if f.metadata else (None, None)
            value = getattr(self, f.name)
            if low is not None and not (low <= value <= high):
                raise SettingsError(f"{type(self).__name__[:-6].lower()} {f.name} must be in [{low}, {high}], got {value}")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)  # type: ignore[call-overload]


def _field(default: float, low: float, high: float, help: str = "", practical: tuple[float, float] | None = None,
           label: str = "") -> Any:
    """A parameter valid in [low, high]; ``practical`` is the narrower span worth offering on a slider,
    ``label`` what a slider is called for someone who has never read the paper."""
    return field(default=default, metadata={"range": (low, high), "help": help, "practical": practical or (low, high), "label": label})


@dataclass(frozen=True)
class XDoGParams(_Params):
    """eXtended Difference of Gaussians (Winnemoeller et al. 2012), the Contextual GAN style.

    S = (1 + p) G_sigma - p G_(k sigma) sharpens edges; S above epsilon is paper, below
    it fades to ink along 1 + tanh(phi (S - epsilon)). Flat areas darker than epsilon
    fill with ink, which gives XDoG its inked-shadow look.
    """

    sigma: float = _field(0.8, 0.1, 10.0, "blur of the fine Gaussian, in pixels", label="Line softness")
    k: float = _field(1.6, 1.01, 10.0, "ratio of the coarse Gaussian to the fine one", label="Line spread")
    sharpen: float = _field(40.0, 0.0, 200.0, "weight p of the difference of Gaussians: more gives bolder lines", (0.0, 100.0), "Boldness")
    epsilon: float = _field(0.3, 0.0, 1.0, "grey level below which ink starts", label="Ink from (darkness)")
    phi: float = _field(50.0, 1.0, 1000.0, "steepness of the soft threshold", (1.0, 200.0), "Edge hardness")


def xdog(picture: np.ndarray, params: XDoGParams = XDoGParams()) -> np.ndarray:
    grey = to_grey(picture).astype(np.float32) / 255.0
    fine = cv2.GaussianBlur(grey, (0, 0), params.sigma)
    coarse = cv2.GaussianBlur(grey, (0, 0), params.sigma * params.k)
    sharpened = (1.0 + params.sharpen) * fine - params.sharpen * coarse
    lines = np.where(
        sharpened >= params.epsilon, 1.0, 1.0 + np.tanh(params.phi * (sharpened - params.epsilon))
    )
    return (np.clip(lines, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)


@dataclass(frozen=True)
class EdgeParams(_Params):
    """Canny edges, cleaned of specks and thickened to a drawn line."""

    blur: float = _field(1.0, 0.0, 10.0, "Gaussian blur before Canny, in pixels", label="Smoothing")
    low: float = _field(20.0, 1.0, 1000.0, "weaker edges are kept where they touch strong ones (gradient, 0-255 scale)", (1.0, 300.0), "Faint edges")
    high: float = _field(60.0, 1.0, 1000.0, "edges stronger than this always become lines (gradient, 0-255 scale)", (1.0, 300.0), "Strong edges")
    thickness: int = _field(1, 1, 9, "line width in pixels", label="Line width")
    min_length: int = _field(8, 0, 10_000, "drop edge fragments with fewer pixels", (0, 200), "Shortest line")


def edge(picture: np.ndarray, params: EdgeParams = EdgeParams()) -> np.ndarray:
    grey = to_grey(picture)
    if params.blur > 0:
        grey = cv2.GaussianBlur(grey, (0, 0), params.blur)
    edges = cv2.Canny(grey, min(params.low, params.high), params.high, L2gradient=True)
    edges = _drop_small(edges, params.min_length)
    if params.thickness > 1:
        kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (params.thickness, params.thickness))
        edges = cv2.dilate(edges, kernel)
    return 255 - edges


@dataclass(frozen=True)
class PencilParams(_Params):
    """Colour dodge of the picture with its blurred negative: a soft graphite drawing."""

    blur: float = _field(6.0, 0.5, 50.0, "width of the strokes, in pixels", label="Stroke width")
    darkness: float = _field(1.5, 0.5, 5.0, "gamma that deepens the strokes (burn)", label="Darkness")


def pencil(picture: np.ndarray, params: PencilParams = PencilParams()) -> np.ndarray:
    grey = to_grey(picture).astype(np.float32)
    blurred_negative = cv2.GaussianBlur(255.0 - grey, (0, 0), params.blur)
    dodged = np.clip(grey * 255.0 / np.maximum(255.0 - blurred_negative, 1.0), 0.0, 255.0) / 255.0
    return (dodged**params.darkness * 255.0 + 0.5).astype(np.uint8)


@dataclass(frozen=True)
class CleanupParams(_Params):
    """Line art from a photo or scan of a paper sketch: flat white paper, dark clean lines."""

    background: float = _field(0.05, 0.01, 0.5, "size of the lighting estimate, as a fraction of the picture", label="Uneven light")
    strength: float = _field(0.12, 0.01, 0.9, "how much darker than the paper a line must be", label="Faintest line")
    softness: float = _field(0.06, 0.0, 0.5, "width of the grey ramp at line edges (0 = hard)", label="Soft edges")
    min_area: int = _field(6, 0, 10_000, "drop specks with fewer pixels", (0, 200), "Smallest mark")


def cleanup(picture: np.ndarray, params: CleanupParams = CleanupParams()) -> np.ndarray:
    grey = to_grey(picture).astype(np.float32)
    grey = cv2.medianBlur(grey.astype(np.uint8), 3).astype(np.float32)  # sensor and paper-grain noise
    size = max(3, int(max(grey.shape) * params.background) | 1)
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (size, size))
    # closing removes the thin dark lines and leaves the paper with its uneven lighting
    paper = cv2.morphologyEx(grey, cv2.MORPH_CLOSE, kernel)
    paper = cv2.GaussianBlur(paper, (0, 0), size / 4)
    ratio = np.clip(grey / np.maximum(paper, 1.0), 0.0, 1.0)  # 1 = paper, lower = ink
    darkness = 1.0 - ratio
    if params.softness > 0:
        ink = np.clip((darkness - params.strength) / params.softness + 0.5, 0.0, 1.0)
    else:
        ink = (darkness >= params.strength).astype(np.float32)
    mask = _drop_small((ink > 0.5).astype(np.uint8) * 255, params.min_area) > 0
    ink = np.where(mask, ink, 0.0)
    return (255.0 * (1.0 - ink) + 0.5).astype(np.uint8)


def _drop_small(binary: np.ndarray, min_pixels: int) -> np.ndarray:
    """Remove connected components (8-connected) smaller than min_pixels from a 0/255 mask."""
    if min_pixels <= 1:
        return binary
    count, labels, stats, _ = cv2.connectedComponentsWithStats(binary, connectivity=8)
    keep = np.zeros(count, bool)
    keep[1:] = stats[1:, cv2.CC_STAT_AREA] >= min_pixels
    return np.where(keep[labels], 255, 0).astype(np.uint8)


@dataclass(frozen=True)
class OutlineParams(_Params):
    """Pen-like outlines of a picture on a plain background (renders, clip art, product shots).

    What a person draws of an object: its silhouette (everything that is not the white
    or transparent background) and the strongest boundaries inside it (eyes, mouth,
    the edge of a part), as even lines of one pen width; no shading edges.
    """

    width: float = _field(2.0, 0.5, 20.0, "pen width, as a fraction of a hundredth of the picture's side", (0.5, 6.0), "Pen width")
    detail: float = _field(0.5, 0.0, 1.0, "how many inner boundaries are drawn (0 = the silhouette alone)", label="Inner detail")
    background: float = _field(0.06, 0.0, 0.5, "how far from white a pixel must be to belong to the object", label="Background tolerance")
    min_length: float = _field(4.0, 0.0, 50.0, "inner lines shorter than this many hundredths of the side are left out", (0.0, 20.0), "Shortest inner line")


def outline(picture: np.ndarray, params: OutlineParams = OutlineParams()) -> np.ndarray:
    rgb = as_rgb(picture)
    side = max(rgb.shape[:2])
    pen = max(1, int(round(params.width * side / 100)))
    distance = 255 - rgb.min(axis=2).astype(np.int16)  # 0 on white paper
    body = (distance > params.background * 255).astype(np.uint8) * 255
    body = cv2.morphologyEx(body, cv2.MORPH_CLOSE, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (pen | 1, pen | 1)))
    body = _drop_small(body, int((side * 0.02) ** 2))
    contours, _ = cv2.findContours(body, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_NONE)
    ink = np.zeros(rgb.shape[:2], np.uint8)
    cv2.drawContours(ink, contours, -1, 255, pen, lineType=cv2.LINE_AA)
    if params.detail > 0 and contours:
        smooth = cv2.bilateralFilter(rgb, 9, 60, side / 50)
        smooth = cv2.GaussianBlur(smooth, (0, 0), side / 200)
        high = 220 - 160 * params.detail
        edges = cv2.Canny(cv2.cvtColor(smooth, cv2.COLOR_RGB2GRAY), high / 2, high)
        inside = cv2.erode(body, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (3 * pen | 1, 3 * pen | 1)))
        edges = cv2.bitwise_and(edges, inside)
        edges = _drop_small(cv2.dilate(edges, np.ones((3, 3), np.uint8)), int(params.min_length * side / 100 * 3))
        lines, _ = cv2.findContours(edges, cv2.RETR_LIST, cv2.CHAIN_APPROX_NONE)
        cv2.drawContours(ink, [c for c in lines if cv2.arcLength(c, False) >= params.min_length * side / 50],
                         -1, 255, max(1, pen // 2 + 1) , lineType=cv2.LINE_AA)
    return 255 - ink


StyleFunction = Callable[[np.ndarray, Any], np.ndarray]

STYLES: dict[str, tuple[type[_Params], StyleFunction]] = {
    "xdog": (XDoGParams, xdog),
    "edge": (EdgeParams, edge),
    "pencil": (PencilParams, pencil),
    "cleanup": (CleanupParams, cleanup),
    "outline": (OutlineParams, outline),
}


def make_params(style: str, **values: Any) -> _Params:
    """Validated parameters for ``style``; unknown names are an error."""
    if style not in STYLES:
        raise SettingsError(f"unknown sketch style {style!r} (choose from {', '.join(STYLES)})")
    cls = STYLES[style][0]
    known = {f.name for f in fields(cls)}  # type: ignore[arg-type]
    unknown = sorted(set(values) - known)
    if unknown:
        raise SettingsError(f"{style} has no parameter {', '.join(unknown)} (it has {', '.join(sorted(known))})")
    return cls(**values)


def apply_style(style: str, picture: np.ndarray, **values: Any) -> np.ndarray:
    """Draw ``picture`` as a sketch in ``style`` with the given parameters."""
    params = make_params(style, **values)
    return STYLES[style][1](picture, params)


def style_parameters(style: str) -> list[dict[str, Any]]:
    """The parameters of ``style`` for a settings form: name, default, practical range, whole number or not, help."""
    make_params(style)
    cls = STYLES[style][0]
    described = []
    for f in fields(cls):  # type: ignore[arg-type]
        low, high = f.metadata["practical"]
        described.append({
            "name": f.name, "default": f.default, "low": low, "high": high,
            "integer": f.type in ("int", int), "help": f.metadata.get("help", ""), "label": f.metadata.get("label", ""),
        })
    return described


#: Share of near-white pixels above which a picture is taken for a drawing on white paper.
PAPER_WHITE = 0.5
#: Share of a paper photo's pixels its clean-up may turn to ink; more is a picture, not a drawing.
MOST_INK = 0.2


def picture_kind(picture: np.ndarray) -> str:
    """What an imported picture is: "drawing" (lines on white: taken as it is), "paper" (a photo or
    scan of a drawing on paper: grey, uneven, colourless) or "picture" (a photo, render or clip art of
    a thing: it has colour or large dark areas, and becomes a line drawing of its outlines)."""
    rgb = as_rgb(picture)
    grey = to_grey(rgb)
    saturation = (rgb.max(axis=2).astype(np.int16) - rgb.min(axis=2)) / 255.0
    coloured = float((saturation > 0.25).mean())
    if float((grey >= 245).mean()) >= PAPER_WHITE:
        # lines are thin: an erosion by 4 % of the side leaves nothing of them (a bold marker is 3.5 %),
        # where filled areas stay; and they carry little colour
        width = max(3, int(max(grey.shape) * 0.04)) | 1
        filled = cv2.erode((grey < 245).astype(np.uint8), np.ones((width, width), np.uint8)).mean()
        return "drawing" if coloured < 0.05 and float(filled) < 0.02 else "picture"
    if coloured < 0.05 and float((cleanup(grey) < 128).mean()) <= MOST_INK:
        return "paper"
    return "picture"


def line_drawing(picture: np.ndarray) -> np.ndarray:
    """An imported picture as a grey line drawing: a drawing as it is, a photo of paper cleaned to its
    lines, a picture of a thing drawn as its outlines (on a plain background) or its edges (a photo)."""
    kind = picture_kind(picture)
    if kind == "drawing":
        return to_grey(picture)
    if kind == "paper":
        return cleanup(picture)
    rgb = as_rgb(picture)
    grey = to_grey(rgb)
    saturation = (rgb.max(axis=2).astype(np.int16) - rgb.min(axis=2)) / 255.0
    inked = ((grey < 90) & (saturation < 0.2)).astype(np.uint8)
    width = max(3, int(max(grey.shape) * 0.04)) | 1
    if inked.mean() > 0.02 and cv2.erode(inked, np.ones((width, width), np.uint8)).mean() < 0.005:
        return np.where(inked > 0, 0, 255).astype(np.uint8)  # clip art with its own black line art: those lines
    border = np.concatenate([rgb[0], rgb[-1], rgb[:, 0], rgb[:, -1]])
    plain_background = float((border.min(axis=1) >= 235).mean()) > 0.8
    if plain_background:
        return outline(rgb, OutlineParams(detail=0.8))
    # a photo: the edges of any of its colours (red on green has one grey), at a pen's width
    side = max(grey.shape)
    smooth = cv2.GaussianBlur(cv2.bilateralFilter(rgb, 9, 60, side / 50), (0, 0), side / 300)
    edges = np.zeros(grey.shape, np.uint8)
    for channel in cv2.split(smooth):
        edges |= cv2.Canny(channel, 40, 100, L2gradient=True)
    edges = _drop_small(edges, int(side * 0.05))
    pen = max(3, int(round(side / 100)) | 1)
    return 255 - cv2.dilate(edges, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (pen, pen)))
