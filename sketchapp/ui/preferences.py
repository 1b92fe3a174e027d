"""Preferences: where models run, how the canvas feels, autosave, export defaults and the theme.

Stored with QSettings under ``preferences/``; a value that is missing or out of range
(an edited settings file) reads as its default, so a bad file never stops the app.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any

from PySide6.QtCore import QSettings, Qt
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QFormLayout,
    QLabel,
    QSlider,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from sketchapp.ui.sketch import MAX_STREAMLINE, STREAMLINE
from sketchapp.ui.theme import THEMES

DEVICES = ("auto", "cpu", "cuda", "mps")
EXPORT_SCALES = (1, 2, 4, 8)  # x8 gives 1024 px from a 128 px model
EXPORT_FORMATS = ("png", "jpg", "webp")
MAX_THREADS = 256
GROUP = "preferences"


@dataclass(frozen=True)
class Preferences:
    device: str = "auto"  # where completions run: auto picks CUDA, then Apple Metal, then the CPU
    threads: int = 0  # CPU threads for the model; 0 = automatic
    smoothing: float = STREAMLINE  # 0 (raw input) .. MAX_STREAMLINE
    simulate_pressure: bool = True  # mouse strokes take their width from the pen's speed
    autosave_seconds: int = 3
    export_scale: int = 2
    export_format: str = "png"
    theme: str = "system"

    def valid(self) -> Preferences:
        """The same with every out-of-range value back at its default."""
        default = Preferences()
        checks = {
            "device": self.device in DEVICES,
            "threads": type(self.threads) is int and 0 <= self.threads <= MAX_THREADS,
            "smoothing": isinstance(self.smoothing, float) and 0 <= self.smoothing <= MAX_STREAMLINE,
            "simulate_pressure": type(self.simulate_pressure) is bool,
            "autosave_seconds": type(self.autosave_seconds) is int and 1 <= self.autosave_seconds <= 600,
            "export_scale": self.export_scale in EXPORT_SCALES,
            "export_format": self.export_format in EXPORT_FORMATS,
            "theme": self.theme in THEMES,
        }
        return Preferences(**{f.name: getattr(self if checks[f.name] else default, f.name) for f in fields(self)})

    @classmethod
    def load(cls, settings: QSettings) -> Preferences:
        values: dict[str, Any] = {}
        for f in fields(cls):
            raw = settings.value(f"{GROUP}/{f.name}")
            if raw is None:
                continue
            kind = type(getattr(cls(), f.name))
            try:
                if kind is bool:  # an INI file gives "true"/"false" back as text
                    values[f.name] = raw if isinstance(raw, bool) else {"true": True, "false": False}[str(raw).lower()]
                else:
                    values[f.name] = kind(raw)
            except (KeyError, ValueError, TypeError):
                continue
        return cls(**values).valid()

    def save(self, settings: QSettings) -> None:
        for f in fields(self):
            settings.setValue(f"{GROUP}/{f.name}", getattr(self, f.name))
        settings.sync()


class PreferencesDialog(QDialog):
    """Edit a copy of the preferences; ``preferences()`` reads the form once it is accepted."""

    def __init__(self, preferences: Preferences, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Preferences")
        form = QFormLayout()
        self.device = QComboBox()
        self.device.addItems(["Automatic (GPU if there is one)", "CPU", "NVIDIA GPU (CUDA)", "Apple GPU (Metal)"])
        form.addRow("Run models on", self.device)
        self.threads = QSpinBox()
        self.threads.setRange(0, MAX_THREADS)
        self.threads.setSpecialValueText("Automatic")
        self.threads.setToolTip("CPU threads for the model; automatic leaves one core to the pen with a live preset")
        form.addRow("CPU threads", self.threads)
        self.smoothing = QSlider(Qt.Orientation.Horizontal)
        self.smoothing.setRange(0, round(MAX_STREAMLINE * 100))
        self.smoothing_label = QLabel()
        self.smoothing.valueChanged.connect(self._show_smoothing)
        row = QWidget()
        line = QVBoxLayout(row)
        line.setContentsMargins(0, 0, 0, 0)
        line.addWidget(self.smoothing)
        line.addWidget(self.smoothing_label)
        form.addRow("Stroke smoothing", row)
        self.pressure = QCheckBox("Simulate pen pressure from mouse speed (fast strokes are thinner)")
        form.addRow("Mouse", self.pressure)
        self.autosave = QSpinBox()
        self.autosave.setRange(1, 600)
        self.autosave.setSuffix(" s")
        form.addRow("Autosave every", self.autosave)
        self.scale = QComboBox()
        self.scale.addItems([f"x{scale}" for scale in EXPORT_SCALES])
        form.addRow("Export size", self.scale)
        self.format = QComboBox()
        self.format.addItems(["PNG (keeps the drawing and settings)", "JPEG", "WebP"])
        form.addRow("Export format", self.format)
        self.theme = QComboBox()
        self.theme.addItems(["Follow the system", "Light", "Dark"])
        form.addRow("Theme", self.theme)
        buttons = QDialogButtonBox(
            QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel
            | QDialogButtonBox.StandardButton.RestoreDefaults
        )
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        buttons.button(QDialogButtonBox.StandardButton.RestoreDefaults).clicked.connect(self.restore_defaults)
        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addWidget(buttons)
        self._fill(preferences)
        self._show_smoothing(self.smoothing.value())

    def _show_smoothing(self, value: int) -> None:
        words = "off" if value == 0 else "light" if value < 35 else "medium" if value < 65 else "strong"
        self.smoothing_label.setText(f"{words} ({value} %)")

    def restore_defaults(self) -> None:
        self._fill(Preferences())

    def _fill(self, preferences: Preferences) -> None:
        self.device.setCurrentIndex(DEVICES.index(preferences.device))
        self.threads.setValue(preferences.threads)
        self.smoothing.setValue(round(preferences.smoothing * 100))
        self.pressure.setChecked(preferences.simulate_pressure)
        self.autosave.setValue(preferences.autosave_seconds)
        self.scale.setCurrentIndex(EXPORT_SCALES.index(preferences.export_scale))
        self.format.setCurrentIndex(EXPORT_FORMATS.index(preferences.export_format))
        self.theme.setCurrentIndex(THEMES.index(preferences.theme))

    def preferences(self) -> Preferences:
        return Preferences(
            DEVICES[self.device.currentIndex()], self.threads.value(), self.smoothing.value() / 100,
            self.pressure.isChecked(), self.autosave.value(), EXPORT_SCALES[self.scale.currentIndex()],
            EXPORT_FORMATS[self.format.currentIndex()], THEMES[self.theme.currentIndex()],
        ).valid()
