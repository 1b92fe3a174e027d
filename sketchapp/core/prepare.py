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
    interp = cv2.INTER_AREA if side > size else cv2.INTER_CUBIC
    out = cv2.resize(padded, (size, size), interpolation=interp)
    return out.reshape(size, size, *picture.shape[2:])


def sketch_tensor(sketch: np.ndarray, size: int) -> torch.Tensor:
    """Sketch -> (1, 3, size, size) float in [-1, 1], white paper = +1."""
    rgb = fit_square(as_rgb(sketch), size, (255, 255, 255))
    grey = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY).astype(np.float32)
    tensor = torch.from_numpy(grey / 127.5 - 1.0)
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
    rgb = fit_square(as_rgb(sketch), side, (255, 255, 255))
    return cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY).astype(np.float32) / 255.0


def ink_over(images: np.ndarray, lines: np.ndarray, side: int | None = None) -> np.ndarray:
    """(K, h, h, 3) uint8 pictures at ``side`` pixels (default: the line layer's), its lines multiplied over them."""
    side = int(side or lines.shape[0])
    if lines.shape[0] != side:
        interp = cv2.INTER_AREA if side < lines.shape[0] else cv2.INTER_CUBIC
        lines = cv2.resize(lines, (side, side), interpolation=interp)
    # uint8 arithmetic in OpenCV (rounded, saturated): a 256 px picture in a fraction of a
    # millisecond, since the window inks every frame it shows on the GUI thread
    ink = cv2.cvtColor(np.clip(np.rint(lines * 255.0), 0, 255).astype(np.uint8), cv2.COLOR_GRAY2RGB)
    inked = np.empty((len(images), side, side, 3), np.uint8)
    for index, image in enumerate(images):
        if image.shape[0] != side:
            interp = cv2.INTER_AREA if side < image.shape[0] else cv2.INTER_LANCZOS4
            image = cv2.resize(image, (side, side), interpolation=interp)
        inked[index] = cv2.multiply(np.ascontiguousarray(image), ink, scale=1.0 / 255.0)
    return inked
