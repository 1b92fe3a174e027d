"""The hint palette: swatches of the colours hinted lately and of the colours the model gave each area.

A click on a swatch makes it the hint colour. Recent colours come first (the newest on
the left, the same colour never twice); the model's own colours of the areas of the
drawing follow, so a user can keep one area's colour exactly while recolouring another.
"""

from __future__ import annotations

from collections.abc import Sequence

from PySide6.QtCore import QSize, Signal
from PySide6.QtGui import QColor, QIcon, QPixmap
from PySide6.QtWidgets import QHBoxLayout, QLabel, QToolButton, QWidget

RECENT = 8
SUGGESTED = 8
SWATCH = 18


class PaletteBar(QWidget):
    chosen = Signal(QColor)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.recent: list[QColor] = []
        self.suggested: list[QColor] = []
        self._row = QHBoxLayout(self)
        self._row.setContentsMargins(0, 0, 0, 0)
        self._row.setSpacing(2)
        self._rebuild()

    def remember(self, colour: QColor) -> None:
        """``colour`` was hinted with: first among the recent ones."""
        colour = QColor(colour)
        self.recent = [colour] + [c for c in self.recent if c.rgb() != colour.rgb()][: RECENT - 1]
        self._rebuild()

    def suggest(self, colours: Sequence[tuple[int, int, int]]) -> None:
        """The model's colours of the drawing's areas (RGB), largest area first."""
        self.suggested = [QColor(*rgb) for rgb in colours[:SUGGESTED]]
        self._rebuild()

    def swatches(self) -> list[QToolButton]:
        return [self._row.itemAt(i).widget() for i in range(self._row.count()) if isinstance(self._row.itemAt(i).widget(), QToolButton)]

    def _rebuild(self) -> None:
        while self._row.count():
            item = self._row.takeAt(0)
            if item.widget() is not None:
                item.widget().deleteLater()
        self._row.addWidget(QLabel("Hint colours:" if self.recent or self.suggested else "Hint colours: none yet"))
        for colours, what in ((self.recent, "used lately"), (self.suggested, "the model's colour of an area")):
            for colour in colours:
                self._row.addWidget(self._swatch(colour, what))
            if colours is self.recent and self.recent and self.suggested:
                self._row.addWidget(QLabel("|"))
        self._row.addStretch(1)

    def _swatch(self, colour: QColor, what: str) -> QToolButton:
        pixmap = QPixmap(SWATCH, SWATCH)
        pixmap.fill(colour)
        button = QToolButton()
        button.setIcon(QIcon(pixmap))
        button.setIconSize(QSize(SWATCH, SWATCH))
        button.setAutoRaise(True)
        button.setToolTip(f"{colour.name()} ({what})")
        button.clicked.connect(lambda _checked=False, c=QColor(colour): self.chosen.emit(c))
        return button
