"""The one image loader and saver: any file a user may have in, uint8 numpy arrays out."""

from __future__ import annotations

import contextlib
import io
import logging
import os
import threading
import warnings
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, PngImagePlugin, UnidentifiedImageError
from PIL import BmpImagePlugin, GifImagePlugin, JpegImagePlugin, TiffImagePlugin, WebPImagePlugin  # noqa: F401 - registers READ_FORMATS

from sketchapp.core.errors import ImageLoadError, ImageSaveError
from sketchapp.core.fileio import read_user_file, write_all_or_nothing, write_bytes_atomic
from sketchapp.core.svg import looks_like_svg, render_svg

#: Largest image accepted, in pixels (about 8000 x 8000): beyond this a sketch is
#: almost surely a mistake, and decoding it would take gigabytes.
MAX_PIXELS = 64_000_000
MAX_SIDE = 16_384  # pixels on either side: a wider strip is fitted to a square of gigabytes
MAX_ASPECT = 32  # longer side over shorter: a ribbon, not a drawing
#: what Pillow may decode: the formats we read, never its PostScript, EPS or other plugins
READ_FORMATS = ("PNG", "JPEG", "WEBP", "BMP", "GIF", "TIFF")  # JPEG opens phones' multi-picture files too

# Pillow's decoders log what they find wrong in a file ("More samples per pixel than can be decoded")
# before they raise; with no handler of ours, Python printed that to the terminal above our own
# one-line message. What is wrong reaches the user in that line only.
logging.getLogger("PIL").addHandler(logging.NullHandler())
logging.getLogger("PIL").propagate = False

SAVE_FORMATS = {".png": "PNG", ".jpg": "JPEG", ".jpeg": "JPEG", ".webp": "WEBP", ".bmp": "BMP"}


def load_image(
    path: str | os.PathLike[str], mode: str = "RGB", max_pixels: int = MAX_PIXELS, max_side: int | None = None
) -> np.ndarray:
    """Read an image file as a uint8 array in ``mode`` ("RGB", "RGBA" or "L").

    EXIF rotation is applied; transparency is composited on white for "RGB" and "L";
    16-bit and palette images are converted; SVG drawings are rasterised. Raises ImageLoadError with a one-line
    message for a missing, empty, corrupt, non-image or oversized file. ``max_side`` reduces a larger
    picture to that longest side while it is decoded (a JPEG at a fraction of its resolution, 8x
    faster), for readers that need no more: filters then run on the reduced picture.
    """
    if mode not in ("RGB", "RGBA", "L"):
        raise ValueError(f"unsupported mode {mode!r}")
    data = read_user_file(path, ImageLoadError, "image")
    return decode_image(data, Path(path).name, mode=mode, max_pixels=max_pixels, max_side=max_side)


def decode_image(
    data: bytes, name: str, mode: str = "RGB", max_pixels: int = MAX_PIXELS, max_side: int | None = None
) -> np.ndarray:
    """Decode image bytes; see load_image. ``name`` is used in error messages."""
    if looks_like_svg(data, name):
        return _to_mode(Image.fromarray(render_svg(data, name, max_side), "RGBA"), mode)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # decoders' own warnings (corrupt EXIF, ...) never reach the terminal
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        try:
            img = Image.open(io.BytesIO(data), formats=READ_FORMATS)
            width, height = img.size
            if width * height > max_pixels:
                raise ImageLoadError(
                    f"{name}: image is {width}x{height} pixels, more than the "
                    f"{max_pixels // 1_000_000} megapixel limit"
                )
            if max(width, height) > MAX_SIDE or max(width, height) > MAX_ASPECT * max(1, min(width, height)):
                raise ImageLoadError(
                    f"{name}: image is {width}x{height} pixels; SketchApp takes up to {MAX_SIDE} pixels a side "
                    f"and a shape no narrower than 1:{MAX_ASPECT}"
                )
            if max_side is not None and max(width, height) > max_side:
                img.draft(None, (max_side, max_side))  # JPEG: decoded at 1/2, 1/4 or 1/8 scale, still >= max_side
            if img.format == "TIFF":
                with _quiet_stderr():  # libtiff prints its complaints straight to the terminal
                    img.load()
            else:
                img.load()
        except ImageLoadError:
            raise
        except UnidentifiedImageError as exc:
            raise ImageLoadError(f"{name}: not an image file or an unsupported format") from exc
        except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
            raise ImageLoadError(f"{name}: image is too large to open safely") from exc
        except (OSError, SyntaxError, ValueError) as exc:
            raise ImageLoadError(f"{name}: corrupt or truncated image ({exc})") from exc
        img = ImageOps.exif_transpose(img)
        if max_side is not None and max(img.size) > max_side:
            img.thumbnail((max_side, max_side), Image.Resampling.BOX)
        return _to_mode(img, mode)


_STDERR_LOCK = threading.Lock()


@contextlib.contextmanager
def _quiet_stderr() -> Iterator[None]:
    """Standard error (file descriptor 2) sent to the null device meanwhile: C libraries write there
    directly, past Python's warnings. Brief, and under a lock, since it is the whole process's."""
    with _STDERR_LOCK:
        try:
            saved = os.dup(2)
        except OSError:
            yield
            return
        try:
            with open(os.devnull, "wb") as null:
                os.dup2(null.fileno(), 2)
                yield
        finally:
            os.dup2(saved, 2)
            os.close(saved)


def _to_mode(img: Image.Image, mode: str) -> np.ndarray:
    if img.mode in ("I;16", "I;16B", "I;16L", "I", "F"):
        arr = np.asarray(img, dtype=np.float64)
        top = 65535.0 if arr.max(initial=0) > 255 else 255.0
        img = Image.fromarray(np.clip(arr / top * 255.0 + 0.5, 0, 255).astype(np.uint8), "L")
    if img.mode == "P" or img.mode == "PA":
        img = img.convert("RGBA")
    if img.mode in ("LA", "RGBa", "La"):
        img = img.convert("RGBA")
    if img.mode == "CMYK" or img.mode == "YCbCr":
        img = img.convert("RGB")
    if mode == "RGBA":
        return np.array(img.convert("RGBA"), dtype=np.uint8)
    if img.mode == "RGBA":
        white = Image.new("RGBA", img.size, (255, 255, 255, 255))
        img = Image.alpha_composite(white, img)
    return np.array(img.convert(mode), dtype=np.uint8)


def read_text(path: str | os.PathLike[str]) -> dict[str, str]:
    """The text chunks of a PNG (a result's preset, seed, settings and drawing), read without decoding
    its pixels; an empty table for other pictures. ImageLoadError for a file that cannot be read."""
    name = Path(path).name
    data = read_user_file(path, ImageLoadError, "image")
    if not data.startswith(b"\x89PNG"):
        return {}
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            img = Image.open(io.BytesIO(data), formats=("PNG",))
            text = {**img.info}
    except ValueError:  # a compressed text chunk over Pillow's limit: not one of ours, still a picture
        return {}
    except (UnidentifiedImageError, OSError, SyntaxError) as exc:
        raise ImageLoadError(f"{name}: corrupt PNG ({exc})"[:300]) from None
    return {str(k): str(v) for k, v in text.items() if isinstance(v, str)}


def save_image(
    path: str | os.PathLike[str],
    pixels: np.ndarray,
    text: Mapping[str, str] | None = None,
    quality: int = 95,
) -> None:
    """Write a uint8 image atomically; the format follows the extension.

    ``text`` becomes PNG text chunks (ignored by other formats).
    """
    file = Path(path)
    try:
        write_bytes_atomic(file, encode_image(file, pixels, text, quality))
    except OSError as exc:
        raise ImageSaveError(f"{file}: cannot write image ({exc.strerror or exc})") from exc


def save_images(items: Sequence[tuple[str | os.PathLike[str], np.ndarray, Mapping[str, str] | None]]) -> None:
    """Write every (path, pixels, text) or none of them (see ``write_all_or_nothing``)."""
    encoded = [(Path(path), encode_image(path, pixels, text)) for path, pixels, text in items]
    write_all_or_nothing(encoded, ImageSaveError)


def encode_image(
    path: str | os.PathLike[str], pixels: np.ndarray, text: Mapping[str, str] | None = None, quality: int = 95
) -> bytes:
    """The file bytes of ``pixels`` in the format of ``path``'s extension (PNG text chunks from ``text``)."""
    file = Path(path)
    fmt = SAVE_FORMATS.get(file.suffix.lower())
    if fmt is None:
        raise ImageSaveError(
            f"{file.name}: unsupported output format (use {', '.join(sorted(SAVE_FORMATS))})"
        )
    img = Image.fromarray(np.ascontiguousarray(pixels))
    options: dict[str, object] = {}
    if fmt == "PNG" and text:
        info = PngImagePlugin.PngInfo()
        for key, value in text.items():
            info.add_itxt(key, value, zip=len(value) > 1024)  # a result's document is compressed
        options["pnginfo"] = info
    if fmt in ("JPEG", "WEBP"):
        options["quality"] = quality
        if img.mode == "RGBA" and fmt == "JPEG":
            img = img.convert("RGB")
    buffer = io.BytesIO()
    img.save(buffer, format=fmt, **options)
    return buffer.getvalue()


def contact_grid(pictures: np.ndarray, columns: int, gap: int = 2, fill: int = 255) -> np.ndarray:
    """Tile (N, H, W, C) uint8 pictures into one sheet, ``columns`` per row."""
    count, height, width, channels = pictures.shape
    columns = max(1, min(columns, count))
    rows = -(-count // columns)
    sheet = np.full(
        (rows * height + (rows - 1) * gap, columns * width + (columns - 1) * gap, channels), fill, np.uint8
    )
    for index, picture in enumerate(pictures):
        r, c = divmod(index, columns)
        y, x = r * (height + gap), c * (width + gap)
        sheet[y : y + height, x : x + width] = picture
    return sheet
