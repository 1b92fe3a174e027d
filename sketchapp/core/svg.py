"""SVG pictures rasterised with resvg (a complete, sandboxed SVG renderer; no system libraries)."""

from __future__ import annotations

import gzip
import io
import struct
import zlib

import numpy as np
import resvg_py
from PIL import Image

from sketchapp.core.errors import ImageLoadError

#: Longest side an SVG sketch is drawn at when no size is asked for.
DEFAULT_SIDE = 1024


def looks_like_svg(data: bytes, name: str = "") -> bool:
    if name.lower().endswith((".svg", ".svgz")):
        return True
    if data[:2] == b"\x1f\x8b":
        return False
    head = data[:512].lstrip().lower()
    return head.startswith(b"<svg") or (head.startswith(b"<?xml") and b"<svg" in data[:2048].lower())


def render_svg(data: bytes | str, name: str = "drawing.svg", size: int | None = None) -> np.ndarray:
    """SVG markup -> RGBA uint8, transparent where nothing is drawn.

    ``size`` is the longest side in pixels (the aspect ratio is kept); by default the
    drawing is scaled so its longest side is DEFAULT_SIDE.
    """
    if isinstance(data, bytes) and data[:2] == b"\x1f\x8b":
        try:
            data = gzip.decompress(data)
        except (OSError, EOFError, zlib.error) as exc:
            raise ImageLoadError(f"{name}: compressed SVG is corrupt ({exc})") from exc
    text = data.decode("utf-8", errors="replace") if isinstance(data, bytes) else data
    try:
        natural = _png_size(resvg_py.svg_to_bytes(svg_string=text))
        side = size or DEFAULT_SIDE
        scale = side / max(natural)
        width, height = max(1, round(natural[0] * scale)), max(1, round(natural[1] * scale))
        png = resvg_py.svg_to_bytes(svg_string=text, width=width, height=height)
    except (ValueError, RuntimeError, OSError) as exc:
        raise ImageLoadError(f"{name}: not a valid SVG drawing ({exc})") from exc
    if not png:
        raise ImageLoadError(f"{name}: the SVG drawing has no size")
    return np.array(Image.open(io.BytesIO(png)).convert("RGBA"), dtype=np.uint8)


def _png_size(png: bytes) -> tuple[int, int]:
    if len(png) < 24:
        raise ValueError("the drawing has no size")
    width, height = struct.unpack(">II", png[16:24])
    if width == 0 or height == 0:
        raise ValueError("the drawing has no size")
    return width, height
