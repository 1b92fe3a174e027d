"""Layers out to other painting programs: OpenRaster (``.ora``), the open format Krita, GIMP and MyPaint read.

An OpenRaster file is a zip archive (OpenRaster 0.0.6): ``mimetype`` first and stored,
holding ``image/openraster``; ``stack.xml`` listing the layers, the first on top; a PNG per
layer under ``data/``; the flattened picture as ``mergedimage.png`` and a thumbnail of at
most 256 px as ``Thumbnails/thumbnail.png``. SketchApp writes the drawing's lines (black
with their darkness as alpha, so they sit over anything), the colour hints, the result and
the imported picture, each a named layer the user can hide or fade there.
"""

from __future__ import annotations

import io
import os
import zipfile
from dataclasses import dataclass
from pathlib import Path
from xml.sax.saxutils import quoteattr

import cv2
import numpy as np

from sketchapp.core.errors import ImageSaveError
from sketchapp.core.fileio import write_bytes_atomic
from sketchapp.core.images import encode_image

MIMETYPE = b"image/openraster"
THUMBNAIL_SIDE = 256


@dataclass
class Layer:
    name: str
    pixels: np.ndarray  # (H, W, 4) RGBA or (H, W, 3) RGB uint8, at the image's size
    visible: bool = True
    opacity: float = 1.0


def line_layer_rgba(sketch: np.ndarray, side: int) -> np.ndarray:
    """A grey drawing as black lines on nothing: alpha is its darkness, at ``side`` px."""
    grey = cv2.resize(sketch, (side, side), interpolation=cv2.INTER_AREA if sketch.shape[0] > side else cv2.INTER_CUBIC)
    rgba = np.zeros((side, side, 4), np.uint8)
    rgba[..., 3] = 255 - grey
    return rgba


def _rgba(pixels: np.ndarray) -> np.ndarray:
    if pixels.ndim == 3 and pixels.shape[2] == 4:
        return pixels
    rgb = pixels if pixels.ndim == 3 else np.repeat(pixels[..., None], 3, axis=2)
    return np.concatenate([rgb, np.full(rgb.shape[:2] + (1,), 255, np.uint8)], axis=2)


def flattened(layers: list[Layer]) -> np.ndarray:
    """The visible layers composited on white (source-over, each at its opacity), the bottom one first."""
    height, width = layers[0].pixels.shape[:2]
    out = np.full((height, width, 3), 255.0)
    for layer in reversed(layers):
        if not layer.visible:
            continue
        rgba = _rgba(layer.pixels).astype(np.float64)
        alpha = rgba[..., 3:] / 255.0 * layer.opacity
        out = rgba[..., :3] * alpha + out * (1 - alpha)
    return np.clip(out + 0.5, 0, 255).astype(np.uint8)


def encode_openraster(layers: list[Layer]) -> bytes:
    """The bytes of an OpenRaster file of ``layers`` (the first on top), all of one size."""
    if not layers:
        raise ImageSaveError("an OpenRaster file needs at least one layer")
    height, width = layers[0].pixels.shape[:2]
    if any(layer.pixels.shape[:2] != (height, width) for layer in layers):
        raise ImageSaveError("the layers of an OpenRaster file must all be one size")
    entries = []
    files: list[tuple[str, bytes]] = []
    for index, layer in enumerate(layers):
        source = f"data/layer{index}.png"
        files.append((source, encode_image(source, _rgba(layer.pixels))))
        entries.append(
            f'  <layer name={quoteattr(layer.name)} src="{source}" x="0" y="0" opacity="{layer.opacity:.3f}" '
            f'visibility="{"visible" if layer.visible else "hidden"}" composite-op="svg:src-over"/>'
        )
    stack = (
        "<?xml version='1.0' encoding='UTF-8'?>\n"
        f'<image version="0.0.6" w="{width}" h="{height}" xres="72" yres="72">\n <stack>\n'
        + "\n".join(entries) + "\n </stack>\n</image>\n"
    )
    merged = flattened(layers)
    scale = min(1.0, THUMBNAIL_SIDE / max(width, height))
    thumbnail = cv2.resize(merged, (max(1, round(width * scale)), max(1, round(height * scale))), interpolation=cv2.INTER_AREA)
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr(zipfile.ZipInfo("mimetype"), MIMETYPE, compress_type=zipfile.ZIP_STORED)
        archive.writestr("stack.xml", stack.encode("utf-8"), compress_type=zipfile.ZIP_DEFLATED)
        for name, data in files:
            archive.writestr(name, data, compress_type=zipfile.ZIP_STORED)
        archive.writestr("mergedimage.png", encode_image("mergedimage.png", merged), compress_type=zipfile.ZIP_STORED)
        archive.writestr("Thumbnails/thumbnail.png", encode_image("thumbnail.png", thumbnail), compress_type=zipfile.ZIP_STORED)
    return buffer.getvalue()


def save_openraster(path: str | os.PathLike[str], layers: list[Layer]) -> None:
    """Write ``layers`` to ``path`` as OpenRaster, atomically."""
    data = encode_openraster(layers)
    try:
        write_bytes_atomic(path, data)
    except OSError as exc:
        raise ImageSaveError(f"{Path(path).name}: cannot write ({exc.strerror or exc}); nothing was written") from None


def read_openraster_stack(path: str | os.PathLike[str]) -> list[tuple[str, np.ndarray]]:
    """(name, RGBA pixels) of each layer of an OpenRaster file, top first: what a reader takes from it."""
    from defusedxml import ElementTree

    from sketchapp.core.images import decode_image

    with zipfile.ZipFile(path) as archive:
        if archive.infolist()[0].filename != "mimetype" or archive.read("mimetype") != MIMETYPE:
            raise ImageSaveError(f"{Path(path).name}: not an OpenRaster file")
        root = ElementTree.fromstring(archive.read("stack.xml"))
        return [(layer.get("name", ""), decode_image(archive.read(layer.get("src")), layer.get("src"), "RGBA"))
                for layer in root.iter("layer")]
