"""Preferences stored and applied, the Help menu's dialogs, and the seed lock through the real app."""

from __future__ import annotations

import numpy as np
import pytest
from PySide6.QtCore import QSettings
from PySide6.QtWidgets import QApplication, QDialog, QInputDialog

from sketchapp.app import App
from sketchapp.ui.help import AboutDialog, GuideDialog, ShortcutsDialog, data_attributions
from sketchapp.ui.preferences import Preferences, PreferencesDialog
from sketchapp.ui.theme import set_theme
from tests.ui.test_main_window import draw, pix2pix_preset, window  # noqa: F401 - fixtures


def test_preferences_round_trip_and_bad_values_read_as_defaults(tmp_path):
    settings = QSettings(str(tmp_path / "p.ini"), QSettings.Format.IniFormat)
    chosen = Preferences("cpu", 3, 0.2, False, 30, 4, "webp", "dark")
    chosen.save(settings)
    assert Preferences.load(QSettings(str(tmp_path / "p.ini"), QSettings.Format.IniFormat)) == chosen
    for key, value in (("device", "tpu"), ("threads", "-5"), ("smoothing", "nan"), ("simulate_pressure", "maybe"),
                       ("autosave_seconds", "0"), ("export_scale", "3"), ("export_format", "gif"), ("theme", "pink")):
        settings.setValue(f"preferences/{key}", value)
    assert Preferences.load(settings) == Preferences()


def test_the_dialog_edits_the_preferences_and_the_window_applies_them(qtbot, window, monkeypatch):
    dialog = PreferencesDialog(window.preferences, window)
    qtbot.addWidget(dialog)
    dialog.smoothing.setValue(0)
    dialog.pressure.setChecked(False)
    dialog.autosave.setValue(45)
    dialog.scale.setCurrentIndex(0)
    dialog.format.setCurrentIndex(1)
    dialog.threads.setValue(2)
    chosen = dialog.preferences()
    assert (chosen.smoothing, chosen.simulate_pressure, chosen.autosave_seconds, chosen.export_scale,
            chosen.export_format, chosen.threads) == (0.0, False, 45, 1, "jpg", 2)
    with qtbot.waitSignal(window.preferences_changed):
        window.set_preferences(chosen)
    assert window.canvas.smoothing == 0.0 and not window.canvas.simulate_pressure
    assert window.autosave.interval() == 45_000
    offered = {}

    def get_item(_parent, _title, _label, items, current, _editable):
        offered["default"] = items[current]
        return items[current], True

    monkeypatch.setattr(QInputDialog, "getItem", get_item)
    assert window._ask_scale() == 1 and offered["default"] == "x1"
    assert Preferences.load(window.settings) == chosen  # kept for the next start
    dialog.restore_defaults()
    assert dialog.preferences() == Preferences()


def test_the_theme_preference_overrides_the_system_scheme(qtbot):
    app = QApplication.instance()
    try:
        set_theme(app, "dark")
        assert app.palette().color(app.palette().ColorRole.Window).lightness() < 80
        set_theme(app, "light")
        assert app.palette().color(app.palette().ColorRole.Window).lightness() > 180
    finally:
        set_theme(app, "system")
        app.setPalette(app.style().standardPalette())


def test_help_lists_the_shortcuts_the_guide_and_the_data_attributions(qtbot, window):
    shortcuts = ShortcutsDialog(window.menu_actions(), window)
    qtbot.addWidget(shortcuts)
    rows = {shortcuts.table.item(r, 0).text(): shortcuts.table.item(r, 1).text() for r in range(shortcuts.table.rowCount())}
    assert rows["Save"] == "Ctrl+S" and rows["Lock seed"] == "Ctrl+L" and rows["Pen"] == "B" and "Zoom the canvas" in rows
    guide = GuideDialog(window)
    qtbot.addWidget(guide)
    assert "Seeds and history" in guide.browser.toPlainText()
    about = AboutDialog(window)
    qtbot.addWidget(about)
    text = about.browser.toPlainText()
    import sketchapp

    assert f"SketchApp {sketchapp.__version__}" in text and "OpenMoji" in text and "Fluent Emoji" in text
    assert len(data_attributions()) >= 5  # every shipped model card names its data's licence


@pytest.mark.usefixtures("pix2pix_preset")
def test_a_locked_seed_gives_the_same_result_again_and_preferences_move_the_model(qtbot, window, pix2pix_preset):  # noqa: F811
    window.settings.setValue("preset", pix2pix_preset)
    app = App(window)
    qtbot.waitUntil(lambda: window.preset_label.text() == "Preset: Live", timeout=15000)
    draw(window)
    qtbot.waitUntil(lambda: window.frame is not None and window.frame.final and window.canvas.stroke is None, timeout=20000)
    window.lock_seed(True)
    results = []
    for _ in range(2):
        window.request_completion()
        generation = window.generation
        qtbot.waitUntil(lambda g=generation: window.frame.generation == g and window.frame.final, timeout=20000)
        results.append((window.frame.settings["seed"], window.frame.images.copy()))
    assert results[0][0] == results[1][0] == window.seed
    assert np.array_equal(results[0][1], results[1][1])
    assert window.history.count() == 1  # settled results of one unchanged drawing share one history entry
    window.set_preferences(Preferences(device="cpu", threads=1))
    assert app.completion.worker.threads == 1 and app.completion.worker.device_preference == "cpu"
    qtbot.waitUntil(lambda: window.device_label.text() == "Device: cpu", timeout=15000)
    window.close()
    assert app.stop()
    assert QDialog  # the dialogs above were real ones
