"""Autosave of the sketch, so a crash never loses a drawing.

The document (strokes as vectors, the imported base layer and the colour hints as PNG)
is written every few seconds while it changes, atomically. Each running app has its own
folder (``sessions/N``), held with a lock file: a second instance takes the next one, so
neither is offered the other's live drawing nor deletes it on exit. A clean exit removes
its own autosave; one whose lock is free at start-up was left by an app that ended badly,
and is offered back.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
from PySide6.QtCore import QIODevice, QLockFile, QSaveFile
from PySide6.QtGui import QImage, QImageReader

from sketchapp.strokes import MAX_POINTS, REACH, kept, too_many_points
from sketchapp.ui.sketch import ERASER, PEN, SketchDocument, Stroke

AUTOSAVE = "autosave.json"
BASE = "autosave-base.png"
HINTS = "autosave-hints.png"
UNDERLAY = "autosave-underlay.png"
FORMAT = "sketchapp.sketch"
SESSIONS = "sessions"
LOCK = "lock"
MAX_SLOTS = 64
MAX_RECORD_BYTES = 256 << 20
MAX_SIDE = 8192  # sheet units, as documents allow
MIN_SIZE = 1e-3  # sheet units: the finest brush a document keeps


class Slot:
    """This app's own autosave folder under ``root``, locked while the app runs."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.folder: Path | None = None
        self.number = -1
        self._lock: QLockFile | None = None
        for number in range(MAX_SLOTS):
            folder = root / SESSIONS / str(number)
            try:
                folder.mkdir(parents=True, exist_ok=True)
            except OSError:
                break
            lock = QLockFile(str(folder / LOCK))
            lock.setStaleLockTime(0)  # a lock is stale only when the app that holds it is gone
            if lock.tryLock(0):
                self.folder, self._lock, self.number = folder, lock, number
                break
        self.shared = self.folder is not None and self.number > 0 and any(
            held(root / SESSIONS / str(n)) for n in range(self.number)
        )

    def release(self) -> None:
        if self._lock is not None:
            self._lock.unlock()
            self._lock = None


def held(folder: Path) -> bool:
    """Whether a running app holds ``folder``'s lock."""
    lock = QLockFile(str(folder / LOCK))
    lock.setStaleLockTime(0)
    if lock.tryLock(0):
        lock.unlock()
        return False
    return (folder / LOCK).exists()


def orphans(slot: Slot) -> list[Path]:
    """Autosaves left by apps that ended without a clean exit: this app's own folder first,
    then other folders whose lock no running app holds, then the single autosave of
    SketchApp versions before per-app folders."""
    found = [slot.folder] if slot.folder is not None and has_session(slot.folder) else []
    sessions = slot.root / SESSIONS
    if sessions.is_dir():
        for folder in sorted(sessions.iterdir()):
            if folder != slot.folder and has_session(folder) and not held(folder):
                found.append(folder)
    if has_session(slot.root):
        found.append(slot.root)
    return found


def _write_atomic(path: Path, data: bytes) -> None:
    """QSaveFile writes beside the target and renames only on commit: never a half file."""
    file = QSaveFile(str(path))
    if not file.open(QIODevice.OpenModeFlag.WriteOnly) or file.write(data) != len(data) or not file.commit():
        file.cancelWriting()
        raise OSError(f"cannot write {path}: {file.errorString()}")


def snapshot(
    document: SketchDocument, hints: QImage | None = None,
) -> tuple[dict, QImage | None, QImage | None, QImage | None]:
    """What to save (record, base, hints, underlay), copied on the GUI thread (cheap); ``write`` may then
    run on any thread."""
    underlay = document.underlay
    record = {
        "format": FORMAT,
        "version": 1,
        "side": document.side,
        "base": BASE if document.base is not None else None,
        "hints": HINTS if hints is not None else None,
        "underlay": UNDERLAY if underlay is not None else None,
        "underlay_opacity": document.underlay_opacity,
        "strokes": [(s.tool, s.size, list(s.points)) for s in document.strokes],  # made plain by ``write``
    }
    copies = (picture.copy() if picture is not None else None for picture in (document.base, hints, underlay))
    return (record, *copies)  # type: ignore[return-value]


def _write_image(path: Path, image: QImage) -> None:
    file = QSaveFile(str(path))
    if not file.open(QIODevice.OpenModeFlag.WriteOnly) or not image.save(file, "PNG") or not file.commit():
        file.cancelWriting()
        raise OSError(f"cannot write {path}: {file.errorString()}")


def write(folder: Path, record: dict, base: QImage | None, hints: QImage | None = None, underlay: QImage | None = None) -> None:
    """Write a snapshot to ``folder`` (strokes JSON; base, hints and underlay PNG), atomically. Raises OSError.
    The strokes are written as ``load_session`` takes them back (``sketchapp.strokes.kept``, as documents are)."""
    try:
        strokes = kept(record["strokes"], record["side"], MIN_SIZE)
    except ValueError as exc:
        raise OSError(f"cannot autosave this drawing ({exc})") from None
    record = {**record, "strokes": [{"tool": tool, "size": size, "points": points.tolist()} for tool, size, points in strokes]}
    folder.mkdir(parents=True, exist_ok=True)
    if base is not None:
        _write_image(folder / BASE, base)
    if hints is not None:
        _write_image(folder / HINTS, hints)
    if underlay is not None:
        _write_image(folder / UNDERLAY, underlay)
    _write_atomic(folder / AUTOSAVE, json.dumps(record).encode("utf-8"))


def save_session(folder: Path, document: SketchDocument, hints: QImage | None = None) -> None:
    """Snapshot and write at once (on the calling thread)."""
    write(folder, *snapshot(document, hints))


def has_session(folder: Path) -> bool:
    return (folder / AUTOSAVE).is_file()


def load_session(folder: Path, document: SketchDocument) -> QImage | bool:
    """Restore a saved session into ``document``: its hints (a QImage) or True when it had none;
    False (and nothing changed) if it is unreadable."""
    try:
        file = folder / AUTOSAVE
        if not file.is_file() or file.stat().st_size > MAX_RECORD_BYTES:
            return False
        raw = file.read_bytes()
        if too_many_points(raw):  # counted before parsing: 5 million points froze the window for a minute
            return False
        record = json.loads(raw.decode("utf-8"))
        if not isinstance(record, dict) or record.get("format") != FORMAT:
            return False
        side = float(record["side"])
        if not (math.isfinite(side) and 0 < side <= MAX_SIDE):  # a side of 0, below 0 or NaN scales nothing
            return False
        scale = document.side / side
        strokes, total = [], 0
        for item in record["strokes"]:
            points = np.asarray(item["points"], dtype=np.float64)
            total += len(points)
            if total > MAX_POINTS:
                return False
            size = float(item["size"])
            if item["tool"] not in (PEN, ERASER) or points.ndim != 2 or points.shape[1] != 3 or not len(points):
                return False
            if not np.isfinite(points).all() or not math.isfinite(size) or not MIN_SIZE <= size <= side:
                return False
            if np.abs(points[:, :2]).max() > REACH * side or points[:, 2].min() < 0 or points[:, 2].max() > 1:
                return False
            points[:, :2] *= scale
            strokes.append(Stroke(item["tool"], size * scale, [tuple(p) for p in points.tolist()]))
        base = None
        if record.get("base"):
            image = _read_image(folder / BASE)
            base = None if image.isNull() else image.scaled(document.side, document.side)
        hints = _read_image(folder / HINTS) if record.get("hints") else QImage()
        underlay = _read_image(folder / UNDERLAY) if record.get("underlay") else QImage()
        opacity = float(record.get("underlay_opacity", 0.5))
        if not 0 <= opacity <= 1:  # NaN fails this too
            opacity = 0.5
    except (OSError, ValueError, KeyError, TypeError, RecursionError, UnicodeDecodeError, OverflowError):
        return False
    document.restore(strokes, base)
    if not underlay.isNull():
        document.restore_underlay(underlay, opacity)
    return True if hints.isNull() else hints


#: The largest autosaved picture read back: a 4096 px sheet's PNG is far below it.
MAX_IMAGE_BYTES = 64 << 20
#: The largest side of an autosaved picture read back (the sheet is 512 px; hints 512 px).
MAX_IMAGE_SIDE = 8192


def _read_image(path: Path) -> QImage:
    """An autosaved picture, or a null QImage for anything but a regular file of a sane size and PNG
    dimensions (a FIFO, a folder or a link to a device put there would otherwise block or exhaust Qt)."""
    if path.is_symlink() or not path.is_file() or path.stat().st_size > MAX_IMAGE_BYTES:
        return QImage()
    reader = QImageReader(str(path), b"png")
    size = reader.size()
    if not size.isValid() or max(size.width(), size.height()) > MAX_IMAGE_SIDE:
        return QImage()
    return reader.read()


def discard_session(folder: Path) -> None:
    """Remove the autosave's files; whatever else stands under their names (a folder, say) is left alone."""
    for name in (AUTOSAVE, BASE, HINTS, UNDERLAY):
        path = folder / name
        if path.is_symlink() or not path.is_dir():
            path.unlink(missing_ok=True)
