"""Help: the keyboard shortcuts (read from the window's own actions), the user guide, and About.

The user guide is ``resources/guide.md``, the same text the README points to; About names
the version, the licences, and the data sets' attributions as the shipped model cards
state them.
"""

from __future__ import annotations

import html
import re
from importlib import resources

from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QHeaderView,
    QTableWidget,
    QTableWidgetItem,
    QTextBrowser,
    QVBoxLayout,
    QWidget,
)

import sketchapp

#: what the canvas does with the mouse and wheel, which no action holds
GESTURES = (
    ("Zoom the canvas", "Ctrl+Wheel"),
    ("Pan the canvas", "Middle-drag, Shift+drag or Wheel"),
    ("Paint colour hints (in hint mode)", "Drag on the result"),
    ("Choose a candidate", "Click it in the strip"),
)
LICENCES = (
    ("SketchApp", "MIT"),
    ("Qt for Python (PySide6)", "LGPL-3.0"),
    ("PyTorch", "BSD-3-Clause"),
    ("NumPy", "BSD-3-Clause"),
    ("OpenCV", "Apache-2.0"),
    ("Pillow", "MIT-CMU"),
    ("QtAwesome and Font Awesome", "MIT; icons CC BY 4.0, fonts SIL OFL 1.1"),
    ("pyqtgraph", "MIT"),
    ("resvg", "Apache-2.0 / MIT"),
    ("safetensors", "Apache-2.0"),
    ("tqdm", "MPL-2.0 and MIT"),
    ("platformdirs", "MIT"),
    ("defusedxml", "PSF-2.0"),
)


def shortcut_rows(actions: list[QAction]) -> list[tuple[str, str]]:
    """(what, keys) for every action with a shortcut, in menu order, then the canvas gestures."""
    rows, seen = [], set()
    for action in actions:
        keys = ", ".join(s.toString(QKeySequence.SequenceFormat.NativeText) for s in action.shortcuts())
        what = action.text().replace("&", "").rstrip("…").strip()
        if keys and (what, keys) not in seen:
            seen.add((what, keys))
            rows.append((what, keys))
    return rows + list(GESTURES)


class ShortcutsDialog(QDialog):
    def __init__(self, actions: list[QAction], parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Keyboard shortcuts")
        rows = shortcut_rows(actions)
        table = QTableWidget(len(rows), 2)
        table.setHorizontalHeaderLabels(["Action", "Keys"])
        table.verticalHeader().setVisible(False)
        table.setEditTriggers(QTableWidget.EditTrigger.NoEditTriggers)
        table.horizontalHeader().setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
        table.horizontalHeader().setSectionResizeMode(1, QHeaderView.ResizeMode.ResizeToContents)
        for row, (what, keys) in enumerate(rows):
            table.setItem(row, 0, QTableWidgetItem(what))
            table.setItem(row, 1, QTableWidgetItem(keys))
        self.table = table
        layout = QVBoxLayout(self)
        layout.addWidget(table)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        buttons.rejected.connect(self.reject)
        layout.addWidget(buttons)
        self.resize(520, 640)


def guide_text() -> str:
    return resources.files("sketchapp.resources").joinpath("guide.md").read_text(encoding="utf-8")


class _TextDialog(QDialog):
    """A page of rich text (a guide, About) with a Close button."""

    def __init__(self, title: str, size: tuple[int, int], parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle(title)
        self.browser = QTextBrowser()
        self.browser.setOpenExternalLinks(True)
        layout = QVBoxLayout(self)
        layout.addWidget(self.browser)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        buttons.rejected.connect(self.reject)
        layout.addWidget(buttons)
        self.resize(*size)


class GuideDialog(_TextDialog):
    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__("SketchApp user guide", (720, 760), parent)
        self.browser.setMarkdown(guide_text())


def data_attributions() -> list[tuple[str, str]]:
    """(model, its data's licence and attribution) from each shipped model card."""
    found = []
    cards = sorted((f for f in resources.files("sketchapp.models").iterdir() if f.name.endswith(".md")), key=lambda f: f.name)
    for card in cards:
        text = card.read_text(encoding="utf-8")
        title = text.splitlines()[0].lstrip("# ").strip() if text else card.name
        licence = re.search(r"^- \*\*Licence\*\*:(.*?)(?=^- |^\n|^#)", text, re.MULTILINE | re.DOTALL)
        if licence:
            found.append((_plain(title), _plain(" ".join(licence.group(1).split()))))
    return found


def _plain(markdown: str) -> str:
    """A model card's line without its Markdown marks: `code`, *emphasis*, <links>."""
    return re.sub(r"<(https?://[^>]+)>", r"\1", markdown.replace("`", "").replace("*", "")).strip()


def about_html() -> str:
    rows = "".join(f"<li>{html.escape(name)}: {html.escape(licence)}</li>" for name, licence in LICENCES)
    data = "".join(
        f"<li><b>{html.escape(model)}</b>: {html.escape(text)}</li>" for model, text in data_attributions()
    )
    return (
        f"<h2>SketchApp {html.escape(sketchapp.__version__)}</h2>"
        "<p>Draw a sketch and watch GANs it trained itself turn it into a coloured picture, live.</p>"
        f"<h3>Licences</h3><ul>{rows}</ul>"
        f"<h3>Data the shipped models learnt from</h3><ul>{data}</ul>"
        "<p>Engines after Isola et al. (pix2pix), Lu et al. (Contextual GAN), Zhu et al. (CycleGAN), "
        "Zhang et al. (colour hints) and Gatys et al. (style reference).</p>"
    )


class AboutDialog(_TextDialog):
    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__("About SketchApp", (620, 600), parent)
        self.browser.setHtml(about_html())
