"""Sketch documents (``.sketchapp``): a drawing kept as a drawing, to open again and go on.

A document is a zip archive: ``document.json`` (format, version, the strokes as vectors,
the preset, the seed and settings of its result), and the base layer and colour hints as
PNG. It is written atomically (a temporary file renamed over the target), so a full
disk or a crash leaves the previous file as it was. Reading trusts nothing: the archive's
members are limited in number and size before anything is unpacked, the JSON in depth,
the strokes in count and range, and the pictures go through the image loader's limits.
A result PNG carries its document too (``RESULT_KEY`` text chunk), so opening a result
brings back the drawing and what made it.
"""

from __future__ import annotations

import base64
import binascii
import io
import json
import math
import os
import zipfile
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from sketchapp.core.errors import DocumentError, ImageLoadError
from sketchapp.core.fileio import parse_json, printable, read_user_file, write_bytes_atomic
from sketchapp.strokes import MAX_POINTS, REACH, too_many_points
from sketchapp.strokes import kept as strokes_kept

FORMAT = "sketchapp.document"
VERSION = 2  # 2 adds the underlay; a document without one is written as version 1, which older readers open
SUFFIX = ".sketchapp"
MIME_TYPE = "application/x-sketchapp"
RESULT_KEY = "sketchapp-document"  # the PNG text chunk of a result that holds its document (base64)
RECORD, BASE, HINTS, THUMBNAIL, UNDERLAY = "document.json", "base.png", "hints.png", "thumbnail.png", "underlay.png"
MB = 1 << 20
#: what each member may unpack to; anything else in the archive is refused
MEMBER_LIMITS = {RECORD: 64 * MB, BASE: 64 * MB, HINTS: 64 * MB, THUMBNAIL: 8 * MB, UNDERLAY: 64 * MB}
MAX_SIDE = 8192  # sheet units and pixels of the layers
TOOLS = ("pen", "eraser")
MIN_SIZE = 1e-3  # sheet units: a brush this fine draws nothing, yet scaling a big sheet down can give it


@dataclass
class Stroke:
    tool: str
    size: float
    points: list[tuple[float, float, float]]  # x, y, pressure 0..1 in sheet units


@dataclass
class SketchFile:
    """What a document holds. ``base`` RGB and ``hints`` RGBA uint8 pictures, or None."""

    side: float
    strokes: list[Stroke]
    base: np.ndarray | None = None
    hints: np.ndarray | None = None
    preset: str = ""  # the preset id the drawing was completed with
    seed: int | None = None
    seed_locked: bool = False
    settings: dict[str, Any] = field(default_factory=dict)  # the engine settings of its result
    ink_lines: bool | None = None
    thumbnail: np.ndarray | None = None  # RGB: the sketch small, for file managers; written, never needed to read
    underlay: np.ndarray | None = None  # RGB: a picture shown under the drawing (a result to draw over), never the model's input
    underlay_opacity: float = 0.5


def _png(pixels: np.ndarray) -> bytes:
    from sketchapp.core.images import encode_image

    return encode_image("layer.png", pixels)


def _kept(document: SketchFile) -> list[dict[str, Any]]:
    """The strokes as the reader will take them (``sketchapp.strokes.kept``), so a file SketchApp writes always opens again."""
    kept = strokes_kept([(s.tool, s.size, s.points) for s in document.strokes], float(document.side), MIN_SIZE)
    return [{"tool": tool, "size": size, "points": points.tolist()} for tool, size, points in kept]


def encode_document(document: SketchFile) -> bytes:
    """The archive's bytes (deflated; PNG members stored as they are)."""
    record = {
        "format": FORMAT,
        "version": VERSION if document.underlay is not None else 1,
        "side": document.side,
        "strokes": _kept(document),
        "base": BASE if document.base is not None else None,
        "hints": HINTS if document.hints is not None else None,
        "preset": document.preset,
        "seed": document.seed,
        "seed_locked": document.seed_locked,
        "settings": document.settings,
        "ink_lines": document.ink_lines,
    }
    if document.underlay is not None:
        record.update(underlay=UNDERLAY, underlay_opacity=document.underlay_opacity)
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr(RECORD, json.dumps(record, allow_nan=False), compress_type=zipfile.ZIP_DEFLATED)
        for name, pixels in ((BASE, document.base), (HINTS, document.hints), (UNDERLAY, document.underlay), (THUMBNAIL, document.thumbnail)):
            if pixels is not None:
                archive.writestr(name, _png(pixels), compress_type=zipfile.ZIP_STORED)
    return buffer.getvalue()


def save_document(path: str | os.PathLike[str], document: SketchFile) -> None:
    """Write ``document`` to ``path`` atomically; DocumentError with a one-line reason if it cannot be."""
    file = Path(path)
    try:
        data = encode_document(document)
    except ValueError as exc:  # a NaN in the settings, or strokes past counting: never written as a file no reader takes
        raise DocumentError(f"{printable(file.name)}: cannot save this drawing ({exc})") from None
    try:
        write_bytes_atomic(file, data)
    except OSError as exc:
        raise DocumentError(f"{printable(str(file))}: cannot write the document ({exc.strerror or exc})") from None


def read_document(path: str | os.PathLike[str]) -> SketchFile:
    """The document at ``path``, or DocumentError naming what is wrong with it."""
    return decode_document(read_user_file(path, DocumentError, "document"), printable(Path(path).name))


def result_text(document: SketchFile) -> str:
    """The text chunk a result PNG carries its document in."""
    return base64.b64encode(encode_document(document)).decode("ascii")


def document_of_result(text: str, name: str) -> SketchFile:
    """The document a result PNG's ``RESULT_KEY`` chunk holds."""
    try:
        data = base64.b64decode(text.encode("ascii"), validate=True)
    except (binascii.Error, UnicodeEncodeError):
        raise DocumentError(f"{name}: its drawing record is damaged") from None
    return decode_document(data, name)


def decode_document(data: bytes, name: str) -> SketchFile:
    """Parse a document archive (see the module notes for what is checked)."""
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
        members = archive.infolist()
    except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, ValueError, EOFError, NotImplementedError, OverflowError):
        raise DocumentError(f"{name}: not a SketchApp document, or a damaged one (not a readable archive)") from None
    if len(members) > len(MEMBER_LIMITS):
        raise DocumentError(f"{name}: not a SketchApp document ({len(members)} files in the archive)")
    sizes = {}
    for member in members:
        limit = MEMBER_LIMITS.get(member.filename)
        if limit is None:
            raise DocumentError(f"{name}: not a SketchApp document (it holds {printable(member.filename)[:60]!r})")
        if member.file_size > limit:
            raise DocumentError(f"{name}: its {member.filename} would unpack to {member.file_size // MB} MB, more than {limit // MB} MB")
        sizes[member.filename] = limit
    if RECORD not in sizes:
        raise DocumentError(f"{name}: not a SketchApp document (no {RECORD})")

    def member_bytes(member: str) -> bytes:
        try:
            with archive.open(member) as handle:
                content = handle.read(sizes[member] + 1)  # the header's size may lie: never read past the limit
        except (zipfile.BadZipFile, zlib.error, OSError, ValueError, EOFError, NotImplementedError, RuntimeError) as exc:
            raise DocumentError(f"{name}: its {member} is damaged ({exc})"[:300]) from None
        if len(content) > sizes[member]:
            raise DocumentError(f"{name}: its {member} unpacks to more than {sizes[member] // MB} MB")
        return content

    raw = member_bytes(RECORD)
    if too_many_points(raw):
        raise DocumentError(f"{name}: more than {MAX_POINTS} points in its strokes")
    record = parse_json(raw, DocumentError, f"{name}: {RECORD}")
    if not isinstance(record, dict) or record.get("format") != FORMAT:
        raise DocumentError(f"{name}: not a SketchApp document (its record is of another format)")
    version = record.get("version")
    if type(version) is not int or version < 1:
        raise DocumentError(f"{name}: its format version {printable(repr(version))[:40]} is not one SketchApp wrote")
    if version > VERSION:
        raise DocumentError(
            f"{name}: made by a newer SketchApp (document version {version}; this one reads up to {VERSION}): update SketchApp to open it"
        )
    side = _number(record.get("side"), name, "side", 1, MAX_SIDE)
    strokes = _strokes(record.get("strokes"), name, side)

    def layer(key: str, member: str, mode: str) -> np.ndarray | None:
        if record.get(key) is None:
            return None
        if record.get(key) != member or member not in sizes:
            raise DocumentError(f"{name}: its {key} layer is missing from the archive")
        from sketchapp.core.images import decode_image

        try:
            pixels = decode_image(member_bytes(member), f"{name}: {member}", mode, max_pixels=MAX_SIDE * MAX_SIDE)
        except ImageLoadError as exc:
            raise DocumentError(str(exc)) from None
        if pixels.shape[0] > MAX_SIDE or pixels.shape[1] > MAX_SIDE or pixels.shape[0] != pixels.shape[1]:
            raise DocumentError(f"{name}: its {key} layer is {pixels.shape[1]}x{pixels.shape[0]}, not a square sheet")
        return pixels

    preset = record.get("preset", "")
    seed = record.get("seed")
    settings = record.get("settings", {})
    ink = record.get("ink_lines")
    locked = record.get("seed_locked", False)
    if not isinstance(preset, str) or len(preset) > 200:
        raise DocumentError(f"{name}: its preset is not a name")
    if seed is not None and not (type(seed) is int and 0 <= seed < 2**63):
        raise DocumentError(f"{name}: its seed is not a whole number 0..2**63-1")
    if not _plain_settings(settings):
        raise DocumentError(f"{name}: its settings are not a table of plain values (text, finite numbers, true or false)")
    if ink is not None and type(ink) is not bool or type(locked) is not bool:
        raise DocumentError(f"{name}: its ink_lines and seed_locked must be true or false")
    opacity = _number(record.get("underlay_opacity", 0.5), name, "underlay opacity", 0.0, 1.0)
    return SketchFile(
        side, strokes, layer("base", BASE, "RGB"), layer("hints", HINTS, "RGBA"),
        preset, seed, locked, settings, ink, underlay=layer("underlay", UNDERLAY, "RGB"), underlay_opacity=opacity,
    )


def _plain_settings(settings: Any) -> bool:
    return isinstance(settings, dict) and all(
        isinstance(v, (str, bool, type(None))) or (type(v) in (int, float) and _finite(v)) for v in settings.values()
    )


def _finite(value: Any) -> bool:
    try:
        return math.isfinite(value)
    except OverflowError:  # an integer of hundreds of digits
        return False


def _number(value: Any, name: str, what: str, low: float, high: float) -> float:
    if type(value) not in (int, float) or not _finite(value) or not low <= value <= high:
        raise DocumentError(f"{name}: its {what} must be a number {low:g}..{high:g}, got {printable(repr(value))[:40]}")
    return float(value)


def _strokes(items: Any, name: str, side: float) -> list[Stroke]:
    if not isinstance(items, list):
        raise DocumentError(f"{name}: its strokes are not a list")
    strokes, total = [], 0
    reach = REACH * side
    for index, item in enumerate(items):
        where = f"stroke {index + 1}"
        if not isinstance(item, dict) or item.get("tool") not in TOOLS:
            raise DocumentError(f"{name}: {where} is not a pen or eraser stroke")
        size = _number(item.get("size"), name, f"{where}'s size", MIN_SIZE, side)
        points = item.get("points")
        if not isinstance(points, list) or not points:
            raise DocumentError(f"{name}: {where} has no points")
        total += len(points)
        if total > MAX_POINTS:
            raise DocumentError(f"{name}: more than {MAX_POINTS} points in its strokes")
        try:
            array = np.asarray(points, dtype=np.float64)
        except (ValueError, TypeError, OverflowError):
            raise DocumentError(f"{name}: {where}'s points are not x, y, pressure numbers") from None
        if array.ndim != 2 or array.shape[1] != 3 or array.dtype.kind != "f" or any(
            type(v) not in (int, float) for p in points for v in p
        ):
            raise DocumentError(f"{name}: {where}'s points are not x, y, pressure numbers")
        if not np.isfinite(array).all() or np.abs(array[:, :2]).max() > reach or (array[:, 2] < 0).any() or (array[:, 2] > 1).any():
            raise DocumentError(f"{name}: {where} has a point off the sheet or a pressure outside 0..1")
        strokes.append(Stroke(item["tool"], size, [tuple(p) for p in array.tolist()]))
    return strokes


def read_result(path: str | os.PathLike[str]) -> SketchFile | None:
    """What made a result PNG SketchApp wrote: its document when it carries one (the drawing, preset,
    seed and settings), else a SketchFile of no strokes with the preset, seed and settings of its text
    chunks. None for a picture SketchApp did not write. ImageLoadError or DocumentError if unreadable."""
    from sketchapp.core.images import read_text

    name = printable(Path(path).name)
    text = read_text(path)
    if text.get("software") != "SketchApp":
        return None
    if RESULT_KEY in text:
        return document_of_result(text[RESULT_KEY], name)
    settings = parse_json(text.get("settings", "{}"), DocumentError, f"{name}: settings")
    if not isinstance(settings, dict):
        raise DocumentError(f"{name}: its settings are not a table")
    settings = {k: v for k, v in settings.items() if _plain_settings({k: v})}
    seed = settings.get("seed")
    ink = settings.get("ink_lines")
    return SketchFile(
        0.0, [], preset=text.get("preset_id", "")[:200],
        seed=seed if type(seed) is int and 0 <= seed < 2**63 else None,
        settings=settings,
        ink_lines=ink if type(ink) is bool else None,
    )
