"""Windows under test never stop on "Save the changes?": closing one discards unless a test asks otherwise."""

from __future__ import annotations

import pytest
from PySide6.QtWidgets import QMessageBox

from sketchapp.ui.main_window import MainWindow


@pytest.fixture(autouse=True)
def _discard_unsaved_drawings(monkeypatch):
    monkeypatch.setattr(MainWindow, "ask_save_changes", lambda self: QMessageBox.StandardButton.Discard)
