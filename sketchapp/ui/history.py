"""The session's results, newest first, each with what made it: bring an earlier one back.

An entry keeps the frame (every candidate, the settings and seed of its run), the
drawing it was made from (strokes, base layer, hints) and the preset, so choosing it
restores all of them; the strip shows its chosen candidate small.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from PySide6.QtCore import QSize, Qt, Signal
from PySide6.QtGui import QIcon, QImage, QPixmap
from PySide6.QtWidgets import QListWidget, QListWidgetItem, QWidget

from sketchapp.ui.sketch import Stroke

LIMIT = 40  # entries kept; the oldest goes first


@dataclass
class HistoryEntry:
    frame: Any  # a Frame of the worker (images, settings with the seed, lines)
    chosen: int
    strokes: list[Stroke]
    base: QImage | None
    hints: QImage | None
    preset_id: str
    preset_name: str
    ink: bool
    made_at: float = field(default_factory=time.time)

    @property
    def seed(self) -> int | None:
        seed = (self.frame.settings or {}).get("seed")
        return seed if isinstance(seed, int) else None

    def same_drawing(self, other: HistoryEntry) -> bool:
        """Whether ``other`` was made from the same strokes, base layer, hints and preset: a re-run of it."""
        same_hints = (self.hints is None) == (other.hints is None) and (self.hints is None or self.hints == other.hints)
        return (self.preset_id == other.preset_id and self.strokes == other.strokes and self.base is other.base
                and same_hints)

    def describe(self) -> str:
        when = time.strftime("%H:%M:%S", time.localtime(self.made_at))
        return f"{when}  {self.preset_name}  seed {self.seed if self.seed is not None else '?'}"


class HistoryStrip(QListWidget):
    """Thumbnails of the session's results, newest on the left; ``restore_requested`` on a click."""

    restore_requested = Signal(int)  # index into ``entries``

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.entries: list[HistoryEntry] = []
        self.setViewMode(QListWidget.ViewMode.IconMode)
        self.setIconSize(QSize(64, 64))
        self.setFlow(QListWidget.Flow.LeftToRight)
        self.setWrapping(False)
        self.setMovement(QListWidget.Movement.Static)
        self.setFixedHeight(92)
        self.setVerticalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)  # one row: only the horizontal bar
        self.setToolTip("Results of this session: click one to bring it back with its drawing and settings")
        self.itemClicked.connect(lambda item: self.restore_requested.emit(self.row(item)))
        self.itemActivated.connect(lambda item: self.restore_requested.emit(self.row(item)))

    def add(self, entry: HistoryEntry, picture: QImage, replace: bool = False) -> None:
        """``entry`` first; with ``replace`` it takes the newest entry's place instead."""
        icon = QIcon(QPixmap.fromImage(picture.scaled(
            64, 64, Qt.AspectRatioMode.KeepAspectRatio, Qt.TransformationMode.SmoothTransformation)))
        if replace and self.entries:
            self.entries[0] = entry
            self.item(0).setIcon(icon)
            self.item(0).setToolTip(entry.describe())
            return
        self.entries.insert(0, entry)
        item = QListWidgetItem(icon, "")
        item.setToolTip(entry.describe())
        self.insertItem(0, item)
        while len(self.entries) > LIMIT:
            self.entries.pop()
            self.takeItem(self.count() - 1)
