"""Turn user pictures (any size, uint8) into the model's square inputs in [-1, 1]."""

from __future__ import annotations

import cv2
import numpy as np
import torch

from sketchapp.core.errors import SketchAppError


def as_rgb(sketch: np.ndarray) -> np.ndarray:
    """Greyscale, RGB or RGBA (composited on white) uint8 -> RGB uint8."""
    if sketch.dtype != np.uint8:
        raise SketchAppError(f"pictures must be uint8 pixels, got {sketch.dtype}")
    if sketch.ndim == 2:
        return np.repeat(sketch[:, :, None], 3, axis=2)
    if sketch.ndim == 3 and sketch.shape[2] == 3:
        return sketch
    if sketch.ndim == 3 and sketch.shape[2] == 4:
        alpha = sketch[:, :, 3:4].astype(np.float32) / 255.0
        return (sketch[:, :, :3] * alpha + 255.0 * (1.0 - alpha) + 0.5).astype(np.uint8)
    raise SketchAppError(f"expected a greyscale, RGB or RGBA picture, got shape {sketch.shape}")


def fit_square(picture: np.ndarray, size: int, fill: int | tuple[int, ...]) -> np.ndarray:
    """Pad to a centred square with ``fill``, then resize to size x size (area filter)."""
    if picture.shape[0] == 0 or picture.shape[1] == 0:
        raise SketchAppError("the sketch is empty (0 pixels)")
    h, w = picture.shape[:2]
    side = max(h, w)
    top, left = (side - h) // 2, (side - w) // 2
    padded = cv2.copyMakeBorder(
        picture, top, side - h - top, left, side - w - left, cv2.BORDER_CONSTANT, value=fill
    )
    if padded.ndim == 2 and picture.ndim == 3:
        padded = padded[:, :, None]
    if side == size:
        return padded.reshape(size, size, *picture.shape[2:])
    interp = cv2.INTER_AREA if side > size else cv2.INTER_CUBIC
    out = cv2.resize(padded, (size, size), interpolation=interp)
    return out.reshape(size, size, *picture.shape[2:])


def stroke_width(grey: np.ndarray) -> float | None:
    """The typical width in pixels of a drawing's lines (uint8 greyscale, dark lines on light paper).

    Twice the ink area over the length of its outline: a line of width w and length L has
    area wL and an outline of about 2L. None when there are no lines to measure.
    """
    ink = (grey < 128).astype(np.uint8)
    area = int(np.count_nonzero(ink))
    if area == 0:
        return None
    contours, _ = cv2.findContours(ink, cv2.RETR_LIST, cv2.CHAIN_APPROX_NONE)
    outline = sum(cv2.arcLength(contour, True) for contour in contours)
    return 2.0 * area / outline if outline > 0 else None


def typical_stroke_width(sketches: np.ndarray, sample: int = 256) -> float | None:
    """The median stroke width of up to ``sample`` sketches (N, S, S) uint8, spread over the set."""
    picks = np.unique(np.linspace(0, len(sketches) - 1, min(len(sketches), sample)).astype(int)) if len(sketches) else []
    widths = [w for w in (stroke_width(sketches[i]) for i in picks) if w is not None]
    return round(float(np.median(widths)), 2) if widths else None


LINE_WORK_FACTOR = 4  # lines are measured and thickened at up to this many times the model's size


def match_stroke_width(grey: np.ndarray, target: float) -> np.ndarray:
    """A square greyscale sketch with its lines thickened to ``target`` pixels wide, if they are thinner.

    Models learn the line weight of their training sketches (OpenMoji's bold outlines,
    XDoG's thin ones); a pen drawing's lines are often several times thinner, and a
    model then colours little or nothing. Lines are only ever thickened: thinning would
    break them.
    """
    width = stroke_width(grey)
    if width is None or width >= target - 0.5:
        return grey
    grow = int(round((target - width) / 2))  # pixels added on each side
    if grow < 1:
        return grey
    disk = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * grow + 1, 2 * grow + 1))
    return cv2.erode(grey, disk)  # the minimum over a disk: dark lines grow, grey edges stay soft


def sketch_tensor(sketch: np.ndarray, size: int, line_width: float | None = None) -> torch.Tensor:
    """Sketch -> (1, 3, size, size) float in [-1, 1], white paper = +1.

    ``line_width`` (in pixels at ``size``, e.g. a model's ``sketch_line_width``): lines
    thinner than that are thickened to it first (see match_stroke_width), at a finer
    resolution so they stay smooth.
    """
    # a greyscale drawing (the canvas's) is used as it is: made RGB and grey again it comes out the same
    grey = sketch if sketch.ndim == 2 and sketch.dtype == np.uint8 else cv2.cvtColor(as_rgb(sketch), cv2.COLOR_RGB2GRAY)
    side = min(max(grey.shape[:2]), LINE_WORK_FACTOR * size) if line_width else size
    grey = fit_square(grey, side, 255)
    if line_width:
        grey = fit_square(match_stroke_width(grey, line_width * side / size), size, 255)
    tensor = torch.from_numpy(grey.astype(np.float32) / 127.5 - 1.0)
    return tensor.expand(1, 3, size, size).contiguous()


def hints_tensor(hints: np.ndarray, sketch_shape: tuple[int, ...], size: int) -> tuple[torch.Tensor, torch.Tensor]:
    """RGBA colour hints drawn over the sketch -> colours (1, 3, s, s) in [-1, 1] and alpha (1, 1, s, s).

    Hints are in the sketch's pixel frame; a hint picture of another size is stretched to it.
    """
    if hints.dtype != np.uint8 or hints.ndim != 3 or hints.shape[2] != 4:
        raise SketchAppError(f"colour hints must be an RGBA picture, got shape {hints.shape}")
    h, w = sketch_shape[:2]
    if hints.shape[:2] != (h, w):
        hints = cv2.resize(hints, (w, h), interpolation=cv2.INTER_NEAREST)
    fitted = fit_square(hints, size, (0, 0, 0, 0)).astype(np.float32)
    colours = torch.from_numpy(fitted[:, :, :3] / 127.5 - 1.0).permute(2, 0, 1).unsqueeze(0)
    alpha = torch.from_numpy(fitted[:, :, 3] / 255.0)[None, None]
    return colours.contiguous(), alpha.contiguous()


INK_SIDE_LIMIT = 1024  # the finest resolution a sketch's lines are inked at


def line_layer(sketch: np.ndarray, minimum: int) -> np.ndarray:
    """The sketch as an ink multiplier (S, S) float32: 1 on paper, down to 0 on black lines.

    S is the sketch's own resolution (its longer side, squared as the model sees it),
    at least ``minimum`` and at most INK_SIDE_LIMIT, so lines stay as crisp as drawn.
    """
    side = min(max(max(sketch.shape[:2]), minimum), INK_SIDE_LIMIT)
    plain_grey = sketch.ndim == 2 and sketch.dtype == np.uint8
    grey = sketch if plain_grey else cv2.cvtColor(as_rgb(sketch), cv2.COLOR_RGB2GRAY)
    return fit_square(grey, side, 255).astype(np.float32) / 255.0


def ink_over(images: np.ndarray, lines: np.ndarray, side: int | None = None) -> np.ndarray:
    """(K, h, h, 3) uint8 pictures at ``side`` pixels (default: the line layer's), its lines multiplied over them."""
    side = int(side or lines.shape[0])
    if lines.shape[0] != side:
        interp = cv2.INTER_AREA if side < lines.shape[0] else cv2.INTER_CUBIC
        lines = cv2.resize(lines, (side, side), interpolation=interp)
    # uint8 arithmetic in OpenCV (rounded, saturated) and a bicubic enlargement: a 128 px
    # picture inked at 512 px in under a millisecond, since the window inks every frame it
    # shows on the GUI thread (Lanczos took 3 ms of it, for no difference under the lines)
    ink = cv2.cvtColor(cv2.convertScaleAbs(lines, alpha=255.0), cv2.COLOR_GRAY2RGB)
    inked = np.empty((len(images), side, side, 3), np.uint8)
    for index, image in enumerate(images):
        if image.shape[0] != side:
            interp = cv2.INTER_AREA if side < image.shape[0] else cv2.INTER_CUBIC
            image = cv2.resize(image, (side, side), interpolation=interp)
        inked[index] = cv2.multiply(np.ascontiguousarray(image), ink, scale=1.0 / 255.0)
    return inked


def area_at(sketch: np.ndarray, x: int, y: int) -> np.ndarray | None:
    """(H, W) bool: the area of a grey ``sketch`` the point (x, y) lies in, bounded by the drawn lines
    (4-connected paper, grown a pixel under its lines so a fill meets them), or None on a line or off the sheet."""
    height, width = sketch.shape[:2]
    if not (0 <= x < width and 0 <= y < height) or sketch[y, x] <= 127:
        return None
    paper = (sketch > 127).astype(np.uint8)
    _, labels = cv2.connectedComponents(paper, connectivity=4)
    area = (labels == labels[y, x]).astype(np.uint8)
    return cv2.dilate(area, np.ones((3, 3), np.uint8)).astype(bool)


def area_colours(sketch: np.ndarray, picture: np.ndarray, most: int = 8) -> list[tuple[int, int, int]]:
    """The picture's median colour in each closed area of the grey ``sketch`` (the picture is resized to the
    sketch, which keeps thin lines closed), largest area first, at most ``most``, colours within 12 levels
    of one already listed left out."""
    picture = cv2.resize(picture, sketch.shape[:2][::-1], interpolation=cv2.INTER_NEAREST)
    lines = sketch > 127
    count, labels, stats, _ = cv2.connectedComponentsWithStats(lines.astype(np.uint8), connectivity=4)
    border = set(np.unique(np.concatenate([labels[0], labels[-1], labels[:, 0], labels[:, -1]])).tolist())
    order = sorted((i for i in range(1, count) if i not in border and stats[i, cv2.CC_STAT_AREA] >= lines.size / 400),
                   key=lambda i: -stats[i, cv2.CC_STAT_AREA])
    found: list[tuple[int, int, int]] = []
    for i in order:
        colour = tuple(int(v) for v in np.median(picture[labels == i], axis=0))
        if all(max(abs(a - b) for a, b in zip(colour, seen)) > 12 for seen in found):
            found.append(colour)  # type: ignore[arg-type]
        if len(found) == most:
            break
    return found
