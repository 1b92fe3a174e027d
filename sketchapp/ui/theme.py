"""Light and dark palettes that follow the system's colour scheme, live."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtGui import QColor, QGuiApplication, QPalette
from PySide6.QtWidgets import QApplication

DARK = {
    QPalette.ColorRole.Window: "#2b2b2b",
    QPalette.ColorRole.WindowText: "#e6e6e6",
    QPalette.ColorRole.Base: "#1f1f1f",
    QPalette.ColorRole.AlternateBase: "#2b2b2b",
    QPalette.ColorRole.Text: "#e6e6e6",
    QPalette.ColorRole.Button: "#353535",
    QPalette.ColorRole.ButtonText: "#e6e6e6",
    QPalette.ColorRole.ToolTipBase: "#353535",
    QPalette.ColorRole.ToolTipText: "#e6e6e6",
    QPalette.ColorRole.Highlight: "#3d7dd8",
    QPalette.ColorRole.HighlightedText: "#ffffff",
    QPalette.ColorRole.PlaceholderText: "#8a8a8a",
}


def dark_palette() -> QPalette:
    palette = QPalette()
    for role, colour in DARK.items():
        palette.setColor(role, QColor(colour))
    return palette


def apply_scheme(app: QApplication, scheme: Qt.ColorScheme | None = None) -> None:
    """Use the dark palette when the scheme (default: the system's) is dark, else the light one."""
    scheme = QGuiApplication.styleHints().colorScheme() if scheme is None else scheme
    app.setPalette(dark_palette() if scheme == Qt.ColorScheme.Dark else app.style().standardPalette())


THEMES = ("system", "light", "dark")
_theme = {"chosen": "system"}  # the preference: "system" follows the desktop's scheme as it changes


def set_theme(app: QApplication, theme: str) -> None:
    """Light, dark, or the system's scheme (the preferences' theme)."""
    theme = theme if theme in THEMES else "system"
    _theme["chosen"] = theme
    apply_scheme(app, None if theme == "system" else Qt.ColorScheme.Dark if theme == "dark" else Qt.ColorScheme.Light)


def follow_system(app: QApplication, theme: str = "system") -> None:
    app.setStyle("Fusion")
    set_theme(app, theme)
    QGuiApplication.styleHints().colorSchemeChanged.connect(
        lambda scheme: apply_scheme(app, scheme) if _theme["chosen"] == "system" else None
    )
