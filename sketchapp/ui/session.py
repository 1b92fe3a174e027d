"""Autosave of the sketch, so a crash never loses a drawing.

The document (strokes as vectors, the imported base layer as PNG) is written every few
seconds while it changes, atomically, to the state folder. A clean exit removes it; if
it is there at start-up, the last session ended badly and the app offers it back.
"""

from __future__ import annotations

import json
from pathlib import Path

from PySide6.QtCore import QIODevice, QSaveFile
from PySide6.QtGui import QImage

from sketchapp.ui.sketch import ERASER, PEN, SketchDocument, Stroke

AUTOSAVE = "autosave.json"
BASE = "autosave-base.png"
FORMAT = "sketchapp.sketch"


def _write_atomic(path: Path, data: bytes) -> None:
    """QSaveFile writes beside the target and renames only on commit: never a half file."""
    file = QSaveFile(str(path))
    if not file.open(QIODevice.OpenModeFlag.WriteOnly) or file.write(data) != len(data) or not file.commit():
        file.cancelWriting()
        raise OSError(f"cannot write {path}: {file.errorString()}")


def snapshot(document: SketchDocument) -> tuple[dict, QImage | None]:
    """What to save, copied on the GUI thread (cheap); ``write`` may then run on any thread."""
    record = {
        "format": FORMAT,
        "version": 1,
        "side": document.side,
        "base": BASE if document.base is not None else None,
        "strokes": [{"tool": s.tool, "size": s.size, "points": [list(p) for p in s.points]} for s in document.strokes],
    }
    return record, (document.base.copy() if document.base is not None else None)


def write(folder: Path, record: dict, base: QImage | None) -> None:
    """Write a snapshot to ``folder`` (strokes JSON, base PNG), atomically. Raises OSError."""
    folder.mkdir(parents=True, exist_ok=True)
    if base is not None:
        file = QSaveFile(str(folder / BASE))
        if not file.open(QIODevice.OpenModeFlag.WriteOnly) or not base.save(file, "PNG") or not file.commit():
            file.cancelWriting()
            raise OSError(f"cannot write {folder / BASE}: {file.errorString()}")
    _write_atomic(folder / AUTOSAVE, json.dumps(record).encode("utf-8"))


def save_session(folder: Path, document: SketchDocument) -> None:
    """Snapshot and write at once (on the calling thread)."""
    write(folder, *snapshot(document))


def has_session(folder: Path) -> bool:
    return (folder / AUTOSAVE).is_file()


def load_session(folder: Path, document: SketchDocument) -> bool:
    """Restore a saved session into ``document``; False (and nothing changed) if it is unreadable."""
    try:
        record = json.loads((folder / AUTOSAVE).read_text(encoding="utf-8"))
        if record.get("format") != FORMAT:
            return False
        scale = document.side / float(record["side"])
        strokes = []
        for item in record["strokes"]:
            tool = item["tool"] if item["tool"] in (PEN, ERASER) else PEN
            points = [(float(x) * scale, float(y) * scale, float(p)) for x, y, p in item["points"]]
            strokes.append(Stroke(tool, float(item["size"]) * scale, points))
        base = None
        if record.get("base"):
            image = QImage(str(folder / BASE))
            base = None if image.isNull() else image.scaled(document.side, document.side)
    except (OSError, ValueError, KeyError, TypeError):
        return False
    document.restore(strokes, base)
    return True


def discard_session(folder: Path) -> None:
    for name in (AUTOSAVE, BASE):
        (folder / name).unlink(missing_ok=True)
