"""Palettes follow the colour scheme."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtGui import QPalette
from PySide6.QtWidgets import QApplication

from sketchapp.ui.theme import apply_scheme


def test_dark_and_light_schemes_switch_the_palette(qtbot):
    app = QApplication.instance()
    try:
        apply_scheme(app, Qt.ColorScheme.Dark)
        assert app.palette().color(QPalette.ColorRole.Window).lightness() < 80
        apply_scheme(app, Qt.ColorScheme.Light)
        assert app.palette().color(QPalette.ColorRole.Window).lightness() > 180
    finally:
        app.setPalette(app.style().standardPalette())
