"""Drawings kept as drawings: save and open, result PNGs that bring back what made them, the seed lock,
the session's history, paste and export of the sketch alone."""

from __future__ import annotations

import zipfile
from types import SimpleNamespace

import numpy as np
import pytest
from PIL import Image
from PySide6.QtCore import QSettings, Qt
from PySide6.QtGui import QColor, QGuiApplication, QImage
from PySide6.QtWidgets import QMessageBox

from sketchapp.app import CoreServices
from sketchapp.contracts import Capabilities, LoadedModel
from sketchapp.ui.main_window import MainWindow, PresetEntry
from tests.ui.test_main_window import draw

PRESETS = [PresetEntry("emoji-pix2pix", "Emoji line art"), PresetEntry("3d-pix2pix", "3D render")]


@pytest.fixture()
def make_window(qtbot, tmp_path, monkeypatch):
    warnings: list[str] = []
    monkeypatch.setattr(QMessageBox, "warning", lambda _parent, _title, text, *a, **k: warnings.append(text))

    def make(name="a"):
        settings = QSettings(str(tmp_path / f"{name}.ini"), QSettings.Format.IniFormat)
        win = MainWindow(CoreServices(), settings, tmp_path / f"state-{name}")
        win.warnings = warnings
        qtbot.addWidget(win)
        win.set_presets(PRESETS, "emoji-pix2pix")
        win.model_ready(LoadedModel("Emoji line art", "pix2pix", "cpu", 16, capabilities=Capabilities(live=True)))
        win.show()
        return win

    return make


def result_frame(generation, seed=42, value=120):
    images = np.full((2, 16, 16, 3), value, np.uint8)
    return SimpleNamespace(
        generation=generation, iteration=1, iterations=1, phase="forward", images=images, sketches=None,
        losses=np.zeros(2), best=0, latents=None, rate=50.0, final=True,
        settings={"seed": seed, "candidates": 2, "dropout": 0.5, "iterations": 1}, preset="Emoji line art",
    )


def settle(win, seed=42, value=120):
    """A completion of the drawing at rest arrives (what the worker would send)."""
    win.request_completion()
    win.show_frame(result_frame(win.generation, seed, value))


def paint_hint(win):
    painter_target = win.result.hints
    painter_target.fill(QColor(0, 0, 0, 0))
    for x in range(200, 240):
        for y in range(200, 240):
            painter_target.setPixelColor(x, y, QColor(20, 120, 230))
    win.result._painted = True
    win.result.revision += 1


def test_a_drawing_saves_and_opens_again_with_its_hints_preset_seed_and_settings(qtbot, make_window, tmp_path):
    first = make_window("a")
    draw(first)
    paint_hint(first)
    first._select_preset("3d-pix2pix")
    settle(first, seed=777)
    first.lock_seed(True)
    path = tmp_path / "cup"
    assert first.save_document(str(path))
    saved = tmp_path / "cup.sketchapp"
    assert saved.is_file() and first.windowTitle().startswith("cup.sketchapp") and not first.is_modified()
    assert zipfile.ZipFile(saved).namelist()[0] == "document.json"

    second = make_window("b")
    with qtbot.waitSignal(second.document_opened, timeout=5000) as opened:
        second.open_path(str(saved))
    assert opened.args == [True]
    assert [s.points for s in second.document.strokes] == [s.points for s in first.document.strokes]
    assert second.result.has_hints() and second.result.hints.pixelColor(220, 220).blue() > 200
    assert second.current_preset_id() == "3d-pix2pix"
    assert second.seed == 777 and second.seed_locked and second.lock_seed_action.isChecked()
    assert "777" in second.seed_button.text()
    assert second.overrides == {"candidates": 2, "dropout": 0.5}
    assert not second.is_modified() and second.document_path == str(saved)
    assert str(saved) in second.recent_files()


def test_a_damaged_or_newer_document_is_refused_and_changes_nothing(qtbot, make_window, tmp_path):
    win = make_window()
    draw(win)
    before = [s.points for s in win.document.strokes]
    assert win.save_document(str(tmp_path / "good.sketchapp"))
    good = (tmp_path / "good.sketchapp").read_bytes()
    (tmp_path / "cut.sketchapp").write_bytes(good[: len(good) // 2])
    newer = tmp_path / "newer.sketchapp"
    with zipfile.ZipFile(tmp_path / "good.sketchapp") as archive, zipfile.ZipFile(newer, "w") as out:
        record = archive.read("document.json").replace(b'"version": 1', b'"version": 7')
        out.writestr("document.json", record)
    for name, expected in (("cut.sketchapp", "damaged"), ("newer.sketchapp", "newer SketchApp")):
        with qtbot.waitSignal(win.document_opened, timeout=5000) as opened:
            win.open_path(str(tmp_path / name))
        assert opened.args == [False] and expected in win.warnings[-1]
        assert [s.points for s in win.document.strokes] == before and win.document_path == str(tmp_path / "good.sketchapp")


def test_opening_a_result_png_brings_back_its_drawing_preset_seed_and_settings(qtbot, make_window, tmp_path):
    first = make_window("a")
    draw(first)
    first._select_preset("3d-pix2pix")
    settle(first, seed=4242)
    assert first.export_result(str(tmp_path / "result.png"))
    text = Image.open(tmp_path / "result.png").text
    assert text["preset_id"] == "3d-pix2pix" and text["seed"] == "4242"

    second = make_window("b")
    asked = []
    second.completion_requested.connect(lambda *args: asked.append(args[4]))
    with qtbot.waitSignal(second.document_opened, timeout=5000):
        second.open_path(str(tmp_path / "result.png"))
    assert len(second.document.strokes) == 1 and second.current_preset_id() == "3d-pix2pix"
    assert second.seed == 4242 and second.overrides == {"candidates": 2, "dropout": 0.5}
    assert second.document_path is None  # a result is not the document: Save asks where
    second.model_ready(LoadedModel("3D render", "pix2pix", "cpu", 16, capabilities=Capabilities(live=True)))
    assert asked and asked[-1]["seed"] == 4242  # the first run gives the very result back


def test_a_plain_picture_opened_is_imported_as_a_sketch(qtbot, make_window, tmp_path):
    win = make_window()
    picture = np.full((64, 64, 3), 255, np.uint8)
    picture[20:44, 30:34] = 0
    Image.fromarray(picture).save(tmp_path / "lines.png")
    with qtbot.waitSignal(win.import_finished, timeout=5000) as done:
        win.open_path(str(tmp_path / "lines.png"))
    assert done.args == [True] and win.document.base is not None


def test_the_seed_lock_sends_one_seed_until_a_new_one_is_asked_for(qtbot, make_window):
    win = make_window()
    seeds = []
    win.completion_requested.connect(lambda *args: seeds.append(args[4].get("seed")))
    draw(win)
    settle(win, seed=99)
    assert win.seed == 99 and "99" in win.seed_button.text() and seeds[-1] is None
    win.lock_seed_action.trigger()
    assert win.seed_locked and "locked" in win.seed_button.text()
    for _ in range(3):
        win.request_completion()
    assert seeds[-3:] == [99, 99, 99]
    settle(win, seed=99)
    win.new_seed()
    assert win.seed != 99 and seeds[-1] == win.seed and win.seed_locked
    win.show_frame(result_frame(win.generation, win.seed))
    win.request_completion()
    assert seeds[-1] == win.seed
    win.lock_seed_action.trigger()
    win.request_completion()
    assert not win.seed_locked and seeds[-1] is None


def test_the_history_brings_back_an_earlier_result_with_its_drawing_and_seed(qtbot, make_window):
    win = make_window()
    draw(win)
    settle(win, seed=11, value=60)
    one_stroke = list(win.document.strokes)
    draw(win)
    settle(win, seed=22, value=200)
    assert len(win.history.entries) == 2 and win.history.count() == 2
    assert win.history.entries[0].seed == 22  # newest first
    win.canvas._stroke = win.document.strokes[0]  # a run while the pen moves is not a history entry
    win.request_completion()
    win.show_frame(result_frame(win.generation, 33))
    win.canvas._stroke = None
    assert len(win.history.entries) == 2

    with qtbot.assertNotEmitted(win.completion_requested):
        win.history.restore_requested.emit(1)
    assert list(win.document.strokes) == one_stroke
    assert win.seed == 11 and win.seed_locked
    assert win.frame.images[0, 0, 0, 0] == 60 and win.result.image.pixelColor(0, 0).red() == 60
    win.document.undo_stack.undo()  # the way back is one undo step
    assert len(win.document.strokes) == 2


def test_paste_makes_the_clipboard_picture_the_sketch(qtbot, make_window):
    win = make_window()
    image = QImage(80, 80, QImage.Format.Format_RGB32)
    image.fill(QColor("white"))
    for y in range(10, 70):
        image.setPixelColor(40, y, QColor("black"))
    QGuiApplication.clipboard().setImage(image)
    with qtbot.waitSignal(win.import_finished, timeout=5000) as done:
        win.paste_action.trigger()
    assert done.args == [True] and win.document.base is not None
    assert win.document.undo_stack.undoText() == "Paste"


def test_the_sketch_exports_alone_and_opens_as_the_drawing(qtbot, make_window, tmp_path):
    win = make_window()
    draw(win)
    assert win.export_sketch(str(tmp_path / "sketch.png"), 2)
    pixels = np.asarray(Image.open(tmp_path / "sketch.png"))
    assert pixels.shape == (1024, 1024, 3) and pixels.min() < 60 and np.median(pixels) == 255
    other = make_window("b")
    with qtbot.waitSignal(other.document_opened, timeout=5000):
        other.open_path(str(tmp_path / "sketch.png"))
    assert [s.points for s in other.document.strokes] == [s.points for s in win.document.strokes]


def test_closing_with_unsaved_changes_asks_and_cancel_keeps_the_window(qtbot, make_window, monkeypatch, tmp_path):
    win = make_window()
    draw(win)
    assert win.is_modified() and win.isWindowModified()
    monkeypatch.setattr(MainWindow, "ask_save_changes", lambda self: QMessageBox.StandardButton.Cancel)
    assert not win.close() and win.isVisible()
    monkeypatch.setattr(MainWindow, "ask_save_changes", lambda self: QMessageBox.StandardButton.Save)
    monkeypatch.setattr(MainWindow, "save_as", lambda self: self.save_document(str(tmp_path / "kept.sketchapp")))
    assert win.close()
    assert (tmp_path / "kept.sketchapp").is_file()


def test_a_stroke_far_past_the_sheet_saves_and_opens_again(qtbot, make_window, tmp_path):
    from PySide6.QtCore import QPoint, Qt
    from PySide6.QtTest import QTest

    win = make_window()
    win.canvas.set_zoom(0.1)
    canvas = win.canvas
    QTest.mousePress(canvas, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier, QPoint(2, 2))
    for x in range(2, canvas.width() - 2, 40):
        QTest.mouseMove(canvas, QPoint(x, x % canvas.height()))
    QTest.mouseRelease(canvas, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier, QPoint(canvas.width() - 2, 5))
    xs = [x for x, _, _ in win.document.strokes[0].points]
    assert min(xs) >= -512 and max(xs) <= 1024  # held within a sheet's width of the sheet
    assert win.save_document(str(tmp_path / "far.sketchapp"))
    other = make_window("b")
    with qtbot.waitSignal(other.document_opened, timeout=5000) as opened:
        other.open_path(str(tmp_path / "far.sketchapp"))
    assert opened.args == [True] and len(other.document.strokes) == 1


def test_a_result_png_without_a_drawing_leaves_the_unsaved_drawing_unsaved(qtbot, make_window, tmp_path):
    win = make_window()
    draw(win)
    assert win.save_document(str(tmp_path / "mine.sketchapp"))
    draw(win)
    assert win.is_modified()
    Image.new("RGB", (8, 8)).save(tmp_path / "old.png", pnginfo=_text({"software": "SketchApp", "preset_id": "3d-pix2pix",
                                                                        "settings": '{"seed": 8, "candidates": 3}'}))
    with qtbot.waitSignal(win.document_opened, timeout=5000):
        win.open_path(str(tmp_path / "old.png"))
    assert win.is_modified() and win.document_path == str(tmp_path / "mine.sketchapp")
    assert len(win.document.strokes) == 2 and win.seed == 8 and win.current_preset_id() == "3d-pix2pix"


def _text(chunks):
    from PIL import PngImagePlugin

    info = PngImagePlugin.PngInfo()
    for key, value in chunks.items():
        info.add_text(key, value)
    return info


def test_the_saved_seed_survives_a_model_still_loading(qtbot, make_window, tmp_path):
    first = make_window("a")
    draw(first)
    settle(first, seed=4242)
    assert first.save_document(str(tmp_path / "s.sketchapp"))
    second = make_window("b")  # the same preset: no switch, the request goes at once
    seeds = []
    second.completion_requested.connect(lambda *args: seeds.append(args[4].get("seed")))
    with qtbot.waitSignal(second.document_opened, timeout=5000):
        second.open_path(str(tmp_path / "s.sketchapp"))
    second.model_ready(LoadedModel("Emoji line art", "pix2pix", "cpu", 16, capabilities=Capabilities(live=True)))
    assert seeds == [4242, 4242]  # the first run's frames were dropped with the old model: the seed is not spent
    second.show_frame(result_frame(second.generation, 4242))
    second.request_completion()
    assert seeds[-1] is None  # given back once; unlocked, the next run draws a new one


def test_new_drops_recalled_settings_and_a_giant_paste_is_refused(qtbot, make_window, tmp_path):
    win = make_window()
    draw(win)
    settle(win, seed=5)
    assert win.save_document(str(tmp_path / "r.sketchapp"))
    with qtbot.waitSignal(win.document_opened, timeout=5000):
        win.open_path(str(tmp_path / "r.sketchapp"))
    assert win.overrides
    win.new_document()
    assert win.overrides == {} and win.document.is_empty() and win.document_path is None
    QGuiApplication.clipboard().setImage(QImage(9000, 8000, QImage.Format.Format_RGB32))
    win.paste()
    assert "megapixels" in win.warnings[-1] and win.document.is_empty()


def test_hostile_documents_opened_in_the_window_leave_it_alive_and_the_drawing_intact(qtbot, make_window, tmp_path):
    import io
    import os

    win = make_window()
    draw(win)
    assert win.save_document(str(tmp_path / "good.sketchapp"))
    good = (tmp_path / "good.sketchapp").read_bytes()
    rng = np.random.default_rng(1)
    hostile = {"cut.sketchapp": good[:100], "empty.sketchapp": b"", "text.sketchapp": b"hello"}
    for n in range(12):
        flipped = bytearray(good)
        for index in rng.integers(0, len(flipped), 4):
            flipped[index] ^= 0xFF
        hostile[f"flip{n}.sketchapp"] = bytes(flipped)
    bomb = io.BytesIO()
    with zipfile.ZipFile(bomb, "w", zipfile.ZIP_DEFLATED) as out:
        out.writestr("document.json", b"[" * 100_000 + b"]" * 100_000)
    hostile["deep.sketchapp"] = bomb.getvalue()
    for name, data in hostile.items():
        (tmp_path / name).write_bytes(data)
    os.mkfifo(tmp_path / "pipe.sketchapp")
    (tmp_path / "zero.sketchapp").symlink_to("/dev/zero")
    (tmp_path / "folder.sketchapp").mkdir()
    before = [s.points for s in win.document.strokes]
    refused = 0
    for name in [*hostile, "pipe.sketchapp", "zero.sketchapp", "folder.sketchapp", "missing.sketchapp"]:
        with qtbot.waitSignal(win.document_opened, timeout=5000) as opened:
            win.open_path(str(tmp_path / name))
        if opened.args == [False]:
            refused += 1
            assert "\n" not in win.warnings[-1] and len(win.warnings[-1]) < 400, win.warnings[-1]
            assert [s.points for s in win.document.strokes] == before, name
        else:  # a flip that hit nothing that matters opens; the good drawing comes back for the next file
            with qtbot.waitSignal(win.document_opened, timeout=5000):
                win.open_path(str(tmp_path / "good.sketchapp"))
    assert refused >= 8
    assert win.isVisible()


def test_results_of_an_unchanged_drawing_and_preset_share_one_history_entry(qtbot, make_window):
    win = make_window()
    draw(win)
    settle(win, seed=11, value=60)
    settle(win, seed=12, value=80)  # run again (the preset clicked again): the same drawing, a random seed
    assert len(win.history.entries) == 1 and win.history.count() == 1 and win.history.entries[0].seed == 12
    win.new_seed()  # a seed asked for anew (and locked): a picture worth keeping beside the other
    win.show_frame(result_frame(win.generation, win.seed, 70))
    assert len(win.history.entries) == 2
    draw(win)
    settle(win, seed=win.seed, value=90)  # a changed drawing: a new entry
    assert len(win.history.entries) == 3
    assert win.history.verticalScrollBarPolicy() == Qt.ScrollBarPolicy.ScrollBarAlwaysOff
