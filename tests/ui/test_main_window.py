"""The main window: frames shown and stale ones dropped, import and export, and the whole app live."""

from __future__ import annotations

import json
import time
from dataclasses import replace
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
from PIL import Image
from PySide6.QtCore import QPoint, QSettings, Qt
from PySide6.QtGui import QColor
from PySide6.QtTest import QTest
from PySide6.QtWidgets import QMessageBox

from sketchapp.app import App, CoreServices
from sketchapp.contracts import Capabilities, LoadedModel
from sketchapp.ui.main_window import MainWindow
from tests.conftest import beside

#: what the completion worker reports for a Contextual GAN preset that inks its lines
EMOJI_COLOUR = LoadedModel("Emoji colour", "contextual", "cpu", 16, ink_lines=True, capabilities=Capabilities(ghost=True, refine=True))


@pytest.fixture()
def window(qtbot, tmp_path, monkeypatch):
    monkeypatch.setattr(QMessageBox, "warning", lambda *args, **kwargs: QMessageBox.StandardButton.Ok)
    settings = QSettings(str(tmp_path / "settings.ini"), QSettings.Format.IniFormat)
    win = MainWindow(CoreServices(), settings, tmp_path / "state")
    qtbot.addWidget(win)
    win.show()
    qtbot.waitExposed(win)
    return win


def frame(generation, value=100, count=3, final=False, best=1):
    images = np.full((count, 16, 16, 3), value, np.uint8)
    images[best] = 200
    return SimpleNamespace(
        generation=generation, iteration=7, iterations=50, phase="optimise", images=images, sketches=images,
        losses=np.arange(count, dtype=float)[::-1], best=best, latents=np.zeros((count, 8), np.float32),
        rate=12.5, final=final, settings={"seed": 42, "candidates": count, "iterations": 50},
    )


def draw(win):
    canvas = win.canvas
    QTest.mousePress(canvas, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier, QPoint(150, 150))
    for x in range(150, 300, 10):
        QTest.mouseMove(canvas, QPoint(x, 200))
    QTest.mouseRelease(canvas, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier, QPoint(300, 200))


def test_a_stroke_asks_for_a_completion_after_a_short_idle(qtbot, window):
    with qtbot.waitSignal(window.completion_requested, timeout=2000) as asked:
        draw(window)
    generation, sketch, hints, z, settings = asked.args
    assert generation == window.generation and z is None and hints is None and "seed" not in settings
    assert sketch.dtype == np.uint8 and sketch.min() < 128


def test_frames_show_and_stale_generations_are_dropped(window):
    window.generation = 3
    window.show_frame(frame(3))
    assert window.gallery.count() == 3 and window.chosen == 1
    assert "iteration 7/50" in window.progress_label.text()
    window.show_frame(frame(2, value=0, count=5))  # an older run's frame
    assert window.gallery.count() == 3 and window.frame.generation == 3
    window.gallery.setCurrentRow(2)
    assert window.chosen == 2


def test_the_ink_toggle_draws_the_sketch_over_the_shown_and_exported_result(qtbot, window, tmp_path):
    draw(window)  # a drawing on the sheet: a preset loaded over an empty one shows nothing
    window.idle.stop()
    window.pen_timer.stop()
    window.model_ready(EMOJI_COLOUR)
    assert window.ink_action.isChecked()
    window.generation = 1
    inked = frame(1, final=True)
    inked.lines = np.ones((64, 64), np.float32)
    inked.lines[30:34] = 0.0  # one horizontal stroke
    window.show_frame(inked)
    assert window.result.image.width() == 64 and window.result.image.pixelColor(5, 31).value() == 0
    with qtbot.assertNotEmitted(window.completion_requested):  # a view of the frame: no new run
        window.ink_action.trigger()
    assert not window.ink_action.isChecked() and window.result.image.width() == 16
    window.ink_action.trigger()
    for scale in (1, 4):
        assert window.export_result(str(tmp_path / f"x{scale}.png"), scale)
        pixels = np.asarray(Image.open(tmp_path / f"x{scale}.png").convert("RGB"))
        assert pixels.shape == (16 * scale, 16 * scale, 3)  # the same size with the toggle off
        assert pixels[2, 2].min() == 200  # the chosen picture where the sketch is paper
    assert pixels[31, 2].max() == 0  # x4: the line layer's own resolution, the stroke at full ink
    assert np.asarray(Image.open(tmp_path / "x1.png").convert("L"))[7:9, 2].max() <= 110  # x1: thinner, still drawn
    assert json.loads(Image.open(tmp_path / "x4.png").text["settings"])["ink_lines"] is True
    window.model_ready(EMOJI_COLOUR)
    assert window.ink_action.isChecked()
    window.ink_action.trigger()
    window.model_ready(EMOJI_COLOUR)  # a reload
    assert not window.ink_action.isChecked()  # keeps the user's choice
    window.ink_action.trigger()
    assert window.result.image.width() == 64
    window.model_ready(replace(EMOJI_COLOUR, name="3D render", ink_lines=False))
    assert not window.ink_action.isChecked()
    assert window.result.image.width() == 16  # the frame on show follows the new preset's default at once


def test_refine_sends_the_chosen_candidates_code(qtbot, window):
    draw(window)
    window.generation = 1
    window.show_frame(frame(1, final=True))
    with qtbot.waitSignal(window.completion_requested) as asked:
        window.refine()
    assert asked.args[3].shape == (1, 8)


def imported(qtbot, window, path) -> bool:  # noqa: ANN001
    with qtbot.waitSignal(window.import_finished, timeout=15000) as done:
        window.import_sketch(str(path))
    return done.args[0]


def test_a_corrupt_import_changes_nothing(qtbot, window, tmp_path):
    draw(window)
    before = window.document.to_array(64)
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"\x89PNG broken")
    assert not imported(qtbot, window, bad)
    assert np.array_equal(window.document.to_array(64), before)
    good = tmp_path / "good.svg"
    good.write_text('<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 10 10"><circle cx="5" cy="5" r="3" fill="none" stroke="black"/></svg>')
    assert imported(qtbot, window, good)
    assert window.document.base is not None and window.document.undo_stack.count() == 2
    assert window.recent_files() == [str(good.resolve())]  # only files that opened are remembered
    window._fill_recent()
    assert [a.text() for a in window.recent_menu.actions()] == ["good.svg"]


def test_a_photo_of_paper_is_cleaned_to_line_art(tmp_path):
    yy, xx = np.mgrid[:200, :200]
    paper = (150 + 60 * xx / 200).astype(np.uint8)
    paper[95:105, 30:170] = 40
    Image.fromarray(paper).save(tmp_path / "photo.jpg")
    cleaned = CoreServices().load_sketch(str(tmp_path / "photo.jpg"), 100)
    assert cleaned[10, 10] == 255 and cleaned[50, 50] < 128


def test_export_writes_result_candidates_and_sheet_with_metadata(window, tmp_path):
    draw(window)
    window.preset_name = "Tiny"
    window.generation = 2
    window.show_frame(frame(2, final=True))
    assert window.export_result(str(tmp_path / "result.png"), scale=4)
    saved = Image.open(tmp_path / "result.png")
    assert saved.size == (64, 64) and saved.text["preset"] == "Tiny" and saved.text["candidate"] == "2"
    assert saved.text["seed"] == "42" and json.loads(saved.text["settings"])["iterations"] == 50
    assert window.export_all(str(tmp_path / "all.webp"), scale=2)
    assert sorted(p.name for p in tmp_path.glob("all-*.webp")) == ["all-1.webp", "all-2.webp", "all-3.webp"]
    assert window.export_sheet(str(tmp_path / "sheet.jpg"))
    assert Image.open(tmp_path / "sheet.jpg").size == (64 * 2 + 8, 64)
    earlier = frame(2, final=True)
    earlier.preset = "Tiny"
    window.show_frame(earlier)
    window.preset_name = "Other"  # a preset switch whose first frame has not come yet
    assert window.export_result(str(tmp_path / "named.png"))
    assert Image.open(tmp_path / "named.png").text["preset"] == "Tiny"  # the frame names the preset that drew it
    (tmp_path / "taken.png").mkdir()  # a folder where the file should go: a message, no crash
    assert not window.export_result(str(tmp_path / "taken.png"))


@pytest.fixture()
def user_preset(tmp_path, monkeypatch, tiny_checkpoint):
    data = tmp_path / "data"
    (data / "presets").mkdir(parents=True)
    (data / "presets" / "tiny.json").write_text(
        json.dumps({"name": "Tiny", "model": beside(data / "presets", tiny_checkpoint), "sketch_style": "test",
                    "settings": {"candidates": 3, "iterations": 30, "init_samples": 6}})
    )
    monkeypatch.setenv("SKETCHAPP_DATA_DIR", str(data))
    return "tiny"


def test_the_app_completes_a_drawing_live_and_closes_with_its_threads_ended(qtbot, window, user_preset):
    window.settings.setValue("preset", user_preset)
    app = App(window)
    qtbot.waitUntil(lambda: window.preset_label.text() == "Preset: Tiny", timeout=15000)
    draw(window)
    qtbot.waitUntil(lambda: window.frame is not None and window.frame.final, timeout=20000)
    assert window.result.image is not None and window.gallery.count() == 3
    window.request_completion()
    window.close()
    assert app.stop()  # every thread ended within its own time limit, a run under way included


def test_a_remembered_preset_that_is_gone_gives_way_to_the_default(qtbot, window):
    window.settings.setValue("preset", "3d-render")  # shipped until 2026-12-08
    app = App(window)
    qtbot.waitUntil(lambda: window.preset_label.text() == "Preset: Emoji colour, pix2pix", timeout=20000)
    window.close()
    assert app.stop()


@pytest.fixture()
def pix2pix_preset(tmp_path, monkeypatch, tiny_pix2pix_checkpoint):
    data = tmp_path / "data"
    (data / "presets").mkdir(parents=True)
    (data / "presets" / "live.json").write_text(
        json.dumps({"name": "Live", "engine": "pix2pix", "model": beside(data / "presets", tiny_pix2pix_checkpoint), "sketch_style": "outline",
                    "settings": {"candidates": 1}})
    )
    monkeypatch.setenv("SKETCHAPP_DATA_DIR", str(data))
    return "live"


def test_a_pix2pix_preset_completes_while_the_pen_moves(qtbot, window, pix2pix_preset):
    window.settings.setValue("preset", pix2pix_preset)
    app = App(window)
    qtbot.waitUntil(lambda: window.preset_label.text() == "Preset: Live", timeout=15000)
    assert not window.ghost_action.isVisible() and not window.refine_action.isVisible()
    assert window.gallery.isHidden()  # one result: no candidate strip
    canvas = window.canvas
    QTest.mousePress(canvas, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier, QPoint(150, 150))
    for x in range(150, 300, 10):
        QTest.mouseMove(canvas, QPoint(x, 200))
        qtbot.wait(15)
    qtbot.waitUntil(lambda: window.frame is not None, timeout=10000)
    assert canvas.stroke is not None and window.document.is_empty()  # shown before the pen was lifted
    assert window.frame.images.shape[1:] == (32, 32, 3)
    QTest.mouseRelease(canvas, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier, QPoint(300, 200))
    qtbot.waitUntil(lambda: window.frame.generation == window.generation and window.frame.final, timeout=10000)
    window.close()
    assert app.stop()


def test_colour_variations_give_candidates_at_rest_and_one_picture_while_drawing(qtbot, window, pix2pix_preset):
    window.settings.setValue("preset", pix2pix_preset)
    app = App(window)
    qtbot.waitUntil(lambda: window.preset_label.text() == "Preset: Live", timeout=15000)
    assert window.variations_action.isVisible() and window.gallery.isHidden()
    sent = []
    window.completion_requested.connect(lambda generation, sketch, hints, z, settings: sent.append((window.canvas.stroke, settings)))
    window.variations_action.trigger()  # on: the gallery shows; the empty sheet asks for nothing
    assert window.gallery.isVisible() and not sent
    canvas = window.canvas
    QTest.mousePress(canvas, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier, QPoint(150, 150))
    for point in (QPoint(300, 150), QPoint(300, 300), QPoint(150, 300), QPoint(150, 152)):  # a closed square
        QTest.mouseMove(canvas, point)
        qtbot.wait(20)
    QTest.mouseRelease(canvas, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier, QPoint(150, 152))
    qtbot.waitUntil(lambda: window.frame is not None and len(window.frame.images) == 4, timeout=10000)
    assert any(stroke is not None for stroke, _ in sent)  # it completed while the pen moved,
    assert all(settings["candidates"] == 1 for stroke, settings in sent if stroke is not None)  # one picture at a time
    assert sent[-1][0] is None and sent[-1][1]["candidates"] == 4  # and the drawing at rest in four
    assert window.gallery.count() == 4 and window.frame.generation == window.generation
    window.variations_action.trigger()  # off: one picture again, at once
    qtbot.waitUntil(lambda: window.frame.generation == window.generation and window.frame.final, timeout=10000)
    assert len(window.frame.images) == 1 and window.gallery.isHidden()
    window.close()
    assert app.stop()


def test_autosave_is_offered_back_after_a_crash_and_removed_after_a_clean_exit(qtbot, window, tmp_path, monkeypatch):
    draw(window)
    window.document.set_base(window.document.render(64))
    draw(window)
    window.result.hint_mode = True
    QTest.mouseClick(window.result, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier, window.result.rect().center())
    window.save_session()
    window.flush_autosave()
    autosave = tmp_path / "state" / "sessions" / "0" / "autosave.json"
    assert autosave.is_file()
    expected = window.document.to_array(128)

    # the first window "crashed" (its process, and so its lock, is gone): a new one finds the autosave and offers it
    window.slot.release()
    monkeypatch.setattr(QMessageBox, "question", lambda *args, **kwargs: QMessageBox.StandardButton.Yes)
    second = MainWindow(CoreServices(), window.settings, tmp_path / "state")
    qtbot.addWidget(second)
    assert second.offer_recovery()
    assert len(second.document.strokes) == 1 and second.document.base is not None
    assert np.abs(second.document.to_array(128).astype(int) - expected).mean() < 2
    assert second.result.has_hints() and second.result.hints_array(64)[..., 3].max() == 255  # the hints came back too
    second.close()
    assert not autosave.exists()
    third = MainWindow(CoreServices(), window.settings, tmp_path / "state")
    qtbot.addWidget(third)
    assert not third.offer_recovery()


def test_a_second_instance_keeps_its_own_autosave_and_never_costs_the_first_its_drawing(qtbot, window, tmp_path, monkeypatch):
    asked = []
    monkeypatch.setattr(QMessageBox, "question", lambda *args, **kwargs: asked.append(1) or QMessageBox.StandardButton.Yes)
    draw(window)
    window.save_session()
    window.flush_autosave()
    second = MainWindow(CoreServices(), window.settings, tmp_path / "state")
    qtbot.addWidget(second)
    assert not second.offer_recovery() and not asked  # the first one's live sketch is not offered
    assert second.slot.folder != window.slot.folder and second.slot.shared
    assert "Another SketchApp window is open" in second.statusBar().currentMessage()
    draw(second)
    second.save_session()
    second.flush_autosave()
    second.close()  # its clean exit removes its own autosave only
    assert (window.slot.folder / "autosave.json").is_file() and not (second.slot.folder / "autosave.json").exists()
    window.slot.release()  # now the first one crashes: its strokes are still there to recover
    third = MainWindow(CoreServices(), window.settings, tmp_path / "state")
    qtbot.addWidget(third)
    assert third.offer_recovery() and len(third.document.strokes) == 1


def test_a_damaged_autosave_is_ignored(qtbot, tmp_path, monkeypatch):
    (tmp_path / "state").mkdir()
    (tmp_path / "state" / "autosave.json").write_text("{broken")
    monkeypatch.setattr(QMessageBox, "question", lambda *args, **kwargs: QMessageBox.StandardButton.Yes)
    win = MainWindow(CoreServices(), QSettings(str(tmp_path / "s.ini"), QSettings.Format.IniFormat), tmp_path / "state")
    qtbot.addWidget(win)
    assert not win.offer_recovery() and win.document.is_empty()


def test_colour_hints_painted_on_the_result_join_the_request(qtbot, window):
    draw(window)
    window.hint_action.trigger()
    view = window.result
    centre = view.sheet().center().toPoint()
    with qtbot.waitSignal(window.completion_requested, timeout=2000) as asked:
        QTest.mousePress(view, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier, centre)
        QTest.mouseMove(view, centre + QPoint(20, 0))
        QTest.mouseRelease(view, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier, centre + QPoint(20, 0))
    hints = asked.args[2]
    side = hints.shape[0]
    assert hints.shape == (side, side, 4) and hints[side // 2, side // 2, 3] > 200
    assert hints[side // 2, side // 2, 0] > 200 and hints[5, 5, 3] == 0
    window.result.clear_hints()
    assert not window.result.has_hints()


def hostile_files(folder: Path) -> list[Path]:
    """One of each kind of file that once crashed, hung or froze the window on import."""
    import gzip
    import io
    import os

    from PIL import Image

    folder.mkdir()
    files = []
    if hasattr(os, "mkfifo"):
        os.mkfifo(folder / "pipe.png")
        files.append(folder / "pipe.png")
    (folder / "zero.png").symlink_to("/dev/zero")
    strip = io.BytesIO()
    Image.new("L", (60000, 10), 255).save(strip, "PNG")
    (folder / "strip.png").write_bytes(strip.getvalue())
    (folder / "postscript.png").write_bytes(b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 10 10\n/l { l } def l\n")
    (folder / "deep.svg").write_text('<svg xmlns="http://www.w3.org/2000/svg">' + "<g>" * 100_000 + "</g>" * 100_000 + "</svg>")
    (folder / "bomb.svgz").write_bytes(gzip.compress(b'<svg xmlns="http://www.w3.org/2000/svg">' + b" " * (64 << 20) + b"</svg>"))
    (folder / "empty.jpg").write_bytes(b"")
    return [*files, *(folder / name for name in ("zero.png", "strip.png", "postscript.png", "deep.svg", "bomb.svgz", "empty.jpg"))]


def test_the_window_survives_importing_hostile_files_with_the_drawing_intact(qtbot, window, tmp_path):
    draw(window)
    before = window.document.to_array(64)
    for path in hostile_files(tmp_path / "hostile"):
        began = time.perf_counter()
        assert not imported(qtbot, window, path), path.name
        assert time.perf_counter() - began < 8, path.name
        assert np.array_equal(window.document.to_array(64), before), path.name
    draw(window)  # still drawing
    assert window.document.undo_stack.count() == 2


def test_clearing_undoing_to_nothing_or_a_new_drawing_takes_the_old_result_off_the_screen(qtbot, window):
    for empty_it in (window.clear_action.trigger, lambda: window.document.undo_stack.undo(), window.new_document):
        window.document.undo_stack.clear()
        draw(window)
        window.generation += 1
        window.show_frame(frame(window.generation, final=True))
        assert window.result.image is not None and window.gallery.count() == 3
        late = window.generation
        window.is_modified = lambda: False  # type: ignore[method-assign]  # new_document would ask to save
        empty_it()
        assert window.document.is_empty()
        assert window.result.image is None and window.frame is None and window.gallery.count() == 0
        window.show_frame(frame(late, final=True))  # a run asked for before the sheet was emptied
        assert window.result.image is None


def test_redo_has_each_key_sequence_once_so_none_is_ambiguous(window):
    keys = [key.toString() for key in window.redo_action.shortcuts()]
    assert len(keys) == len(set(keys)) and "Ctrl+Shift+Z" in keys and "Ctrl+Y" in keys


def test_an_imported_sketch_does_not_take_the_previous_drawings_hints(qtbot, window, tmp_path):
    draw(window)
    window.hint_action.trigger()
    view = window.result
    centre = view.sheet().center().toPoint()
    QTest.mousePress(view, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier, centre)
    QTest.mouseRelease(view, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier, centre)
    assert view.has_hints()
    sketch = np.full((64, 64), 255, np.uint8)
    sketch[10:50, 30] = 0
    Image.fromarray(sketch).save(tmp_path / "other.png")
    assert imported(qtbot, window, tmp_path / "other.png")
    assert not view.has_hints()


@pytest.mark.parametrize("side", [0, -512, float("nan"), float("inf")])
def test_an_autosave_with_a_side_that_scales_nothing_is_ignored(qtbot, tmp_path, monkeypatch, side):
    from sketchapp.ui import session

    state = tmp_path / "state"
    state.mkdir()
    (state / "autosave.json").write_text(json.dumps({"format": session.FORMAT, "side": side, "strokes": [
        {"tool": "pen", "size": 4.0, "points": [[10, 10, 1.0], [50, 50, 1.0]]}]}))
    monkeypatch.setattr(QMessageBox, "question", lambda *args, **kwargs: QMessageBox.StandardButton.Yes)
    win = MainWindow(CoreServices(), QSettings(str(tmp_path / "s.ini"), QSettings.Format.IniFormat), state)
    qtbot.addWidget(win)
    assert not win.offer_recovery() and win.document.is_empty()


def test_export_is_offered_beside_the_document_under_its_name(window, tmp_path):
    assert window.export_suggestion() == Path.home() / f"drawing.{window.preferences.export_format}"
    window.settings.setValue("last_export", str(tmp_path / "exports" / "old.png"))
    assert window.export_suggestion().parent == tmp_path / "exports"
    draw(window)
    assert window.save_document(str(tmp_path / "cat.sketchapp"))
    assert window.export_suggestion() == tmp_path / f"cat.{window.preferences.export_format}"


def test_a_pipe_or_a_folder_where_the_autosaved_picture_was_does_not_hang_the_recovery(qtbot, tmp_path, monkeypatch):
    import os

    from sketchapp.ui import session

    for kind in ("fifo", "folder"):
        state = tmp_path / kind
        state.mkdir()
        (state / "autosave.json").write_text(json.dumps({"format": session.FORMAT, "side": 512, "base": session.BASE,
                                                         "hints": session.HINTS, "strokes": [
            {"tool": "pen", "size": 4.0, "points": [[10, 10, 1.0], [50, 50, 1.0]]}]}))
        if kind == "fifo":
            os.mkfifo(state / session.BASE)
            os.mkfifo(state / session.HINTS)
        else:
            (state / session.BASE).mkdir()
            (state / session.HINTS).mkdir()
        monkeypatch.setattr(QMessageBox, "question", lambda *args, **kwargs: QMessageBox.StandardButton.Yes)
        win = MainWindow(CoreServices(), QSettings(str(tmp_path / f"{kind}.ini"), QSettings.Format.IniFormat), state)
        qtbot.addWidget(win)
        win.offer_recovery()
        assert len(win.document.strokes) == 1 and win.document.base is None  # the drawing back, no picture read


def test_the_result_pane_is_drawn_sharp_once_results_stop_and_a_newer_result_wins(qtbot, window, monkeypatch):
    asked = []

    def enlarge(pixels, side):
        asked.append(side)
        return np.zeros((side, side, 3), np.uint8)

    monkeypatch.setattr(window.services, "enlarge", enlarge)
    window.generation = 1
    window.show_frame(frame(1, final=True))
    assert window.result.image.width() == 16  # the model's picture at once, enlarged plainly by the pane
    qtbot.waitUntil(lambda: window.result.image.width() == 64, timeout=3000)
    assert asked == [64]  # one x4 step: the pane is larger than 1.2 x 16 px
    # a sharp picture still on its way when a newer result arrives is dropped
    stale = window._sharpen_ticket
    window.show_frame(frame(1, value=50, final=True))
    window._show_sharpened(stale, np.zeros((64, 64, 3), np.uint8))
    assert window.result.image.width() == 16


def test_exports_enlarge_with_the_upscaler_and_ink_at_the_export_size(window, tmp_path, monkeypatch):
    sides = []
    real = window.services.enlarge
    monkeypatch.setattr(window.services, "enlarge", lambda pixels, side: sides.append(side) or real(pixels, side))
    window.generation = 1
    frame_with_lines = frame(1, final=True)
    frame_with_lines.lines = np.ones((64, 64), np.float32)
    frame_with_lines.lines[30:34] = 0  # a black band across the sheet
    window.show_frame(frame_with_lines)
    window.ink_action.setChecked(True)
    assert window.export_result(str(tmp_path / "x4.png"), 4)
    pixels = np.asarray(Image.open(tmp_path / "x4.png").convert("RGB"))
    assert pixels.shape == (64, 64, 3) and sides == [64]
    assert pixels[31, :].max() == 0 and pixels[5, 5].min() == 200  # the lines drawn at 64 px over the enlarged picture


def test_preset_pictures_come_as_pixels_the_core_decoded(window):
    from sketchapp.ui.main_window import PresetEntry

    window.set_presets([PresetEntry("a", "A", thumbnail=np.full((40, 40, 3), 200, np.uint8)), PresetEntry("b", "B")], "a")
    assert not window.presets.item(0).icon().isNull() and window.presets.item(1).icon().isNull()


@pytest.mark.parametrize("strokes", [
    [{"tool": "pen", "size": 4.0, "points": [[10, 10, 1.0]] * 300_000}],  # 5 million points froze the window for a minute
    [{"tool": "pen", "size": 4.0, "points": [[float("nan"), 10, 1.0]]}],
    [{"tool": "pen", "size": 4.0, "points": [[1e9, 10, 1.0]]}],
    [{"tool": "pen", "size": 4.0, "points": [[10, 10, 7.0]]}],
    [{"tool": "pen", "size": -4.0, "points": [[10, 10, 1.0]]}],
    [{"tool": "brush", "size": 4.0, "points": [[10, 10, 1.0]]}],
    [{"tool": "pen", "size": 4.0, "points": [[10, 10]]}],
])
def test_an_autosave_is_checked_like_a_document(qtbot, tmp_path, monkeypatch, strokes):
    from sketchapp.ui import session

    state = tmp_path / "state"
    state.mkdir()
    (state / "autosave.json").write_text(json.dumps({"format": session.FORMAT, "side": 512, "strokes": strokes}))
    monkeypatch.setattr(QMessageBox, "question", lambda *args, **kwargs: QMessageBox.StandardButton.Yes)
    win = MainWindow(CoreServices(), QSettings(str(tmp_path / "s.ini"), QSettings.Format.IniFormat), state)
    qtbot.addWidget(win)
    assert not win.offer_recovery() and win.document.is_empty()


def test_a_drawing_past_the_point_limit_autosaves_and_saves_and_both_open_again(qtbot, window, tmp_path, monkeypatch):
    from sketchapp.strokes import MAX_POINTS
    from sketchapp.ui.sketch import Stroke

    strokes = [Stroke("pen", 6.0, [(10.0 + x, 20.0 + i % 400 + (x % 7) * 0.3, 0.5) for x in range(0, 300, 2)]) for i in range(1800)]
    window.document.restore(strokes, None)  # 1,800 drags of 300 px: 270,000 points
    window.save_session()
    window.flush_autosave()
    assert window.save_document(str(tmp_path / "long.sketchapp"))
    window.slot.release()
    monkeypatch.setattr(QMessageBox, "question", lambda *args, **kwargs: QMessageBox.StandardButton.Yes)
    second = MainWindow(CoreServices(), window.settings, tmp_path / "state")
    qtbot.addWidget(second)
    assert second.offer_recovery() and len(second.document.strokes) == 1800
    assert sum(len(s.points) for s in second.document.strokes) <= MAX_POINTS
    with qtbot.waitSignal(second.document_opened, timeout=20000) as opened:
        second.open_path(str(tmp_path / "long.sketchapp"))
    assert opened.args == [True] and len(second.document.strokes) == 1800


@pytest.mark.parametrize("kind", ["clip art", "render", "photo"])
def test_an_imported_picture_of_a_thing_becomes_a_line_drawing_not_black_blotches(qtbot, window, tmp_path, kind):
    import cv2

    if kind == "photo":  # a red ball on grass, edge to edge
        picture = np.zeros((300, 300, 3), np.uint8)
        picture[:] = (70, 130, 60)
        cv2.circle(picture, (150, 150), 90, (200, 40, 40), -1)
    else:
        picture = np.full((300, 300, 3), 255, np.uint8)
        cv2.circle(picture, (150, 150), 90, (40, 40, 90) if kind == "render" else (250, 220, 30), -1)
        if kind == "clip art":
            cv2.circle(picture, (150, 150), 90, (0, 0, 0), 6)
    Image.fromarray(picture).save(tmp_path / "thing.png")
    assert imported(qtbot, window, tmp_path / "thing.png")
    sketch = window.document.to_array(128)
    ink = sketch < 128
    assert 0.005 < ink.mean() < 0.15, ink.mean()  # the outline of the ball, not the ball filled black
    assert not ink[54:74, 54:74].any()  # inside the ball is paper


def _square(window) -> None:  # noqa: ANN001
    """A closed square drawn on the canvas, about the middle third of the sheet."""
    from sketchapp.ui.sketch import Stroke

    corners = [(170.0, 170.0), (340.0, 170.0), (340.0, 340.0), (170.0, 340.0), (170.0, 170.0)]
    points = [(x0 + (x1 - x0) * t / 20, y0 + (y1 - y0) * t / 20, 0.8)
              for (x0, y0), (x1, y1) in zip(corners, corners[1:]) for t in range(20)] + [(170.0, 170.0, 0.8)]
    window.document.replace([Stroke("pen", 6.0, points)], None, "Square")


def _click_result(window, x: float, y: float) -> None:  # noqa: ANN001
    """A click on the result pane at (x, y) of the 512 px hint layer."""
    sheet = window.result.sheet()
    at = QPoint(int(sheet.left() + x * sheet.width() / 512), int(sheet.top() + y * sheet.width() / 512))
    QTest.mouseClick(window.result, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier, at)


def test_a_fill_hint_colours_the_whole_closed_area_in_one_click_and_is_undone_like_a_stroke(qtbot, window):
    _square(window)
    window.fill_action.trigger()
    assert window.hint_action.isChecked() and window.result.hint_tool == "fill"
    window.result.hint_colour = QColor(20, 160, 60)
    steps = window.document.undo_stack.count()
    _click_result(window, 256, 256)
    layer = window.result.hints_array(512)
    assert tuple(layer[256, 256]) == (20, 160, 60, 255) and tuple(layer[180, 180]) == (20, 160, 60, 255)
    assert layer[100, 100, 3] == 0 and layer[400, 256, 3] == 0  # outside the square: nothing
    assert window.document.undo_stack.count() == steps + 1
    window.document.undo_stack.undo()
    assert not window.result.has_hints() and window.result.hints_array(512)[256, 256, 3] == 0
    window.document.undo_stack.redo()
    assert window.result.has_hints() and tuple(window.result.hints_array(512)[256, 256]) == (20, 160, 60, 255)
    _click_result(window, 170, 256)  # on the line: nothing filled, a word in the status bar
    assert "line" in window.statusBar().currentMessage()
    assert window.palette_bar.recent[0].rgb() == QColor(20, 160, 60).rgb()


def test_a_hint_stroke_and_clearing_the_hints_are_undoable_steps(qtbot, window):
    window.hint_action.trigger()
    steps = window.document.undo_stack.count()
    sheet = window.result.sheet()
    QTest.mousePress(window.result, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier, sheet.center().toPoint())
    QTest.mouseRelease(window.result, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier, sheet.center().toPoint())
    assert window.result.has_hints() and window.document.undo_stack.count() == steps + 1
    window.clear_hints_action.trigger()
    assert not window.result.has_hints()
    window.document.undo_stack.undo()
    assert window.result.has_hints()
    window.document.undo_stack.undo()
    assert not window.result.has_hints()


def test_the_eyedropper_and_the_palette_set_the_hint_colour(qtbot, window):
    _square(window)
    window.generation = 1
    shown = frame(1, final=True)
    shown.images[:, 5:11, 5:11] = (200, 30, 90)  # inside the square (16 px picture of the 512 px sheet)
    window.show_frame(shown)
    assert any(c.rgb() == QColor(200, 30, 90).rgb() for c in window.palette_bar.suggested)  # the model's colour of the area
    window.pick_action.trigger()
    _click_result(window, 256, 256)
    assert window.result.hint_colour.rgb() == QColor(200, 30, 90).rgb()
    assert window.palette_bar.recent[0].rgb() == QColor(200, 30, 90).rgb()
    window.palette_bar.remember(QColor(1, 2, 3))
    window.palette_bar.swatches()[0].click()
    assert window.result.hint_colour.rgb() == QColor(1, 2, 3).rgb()


def test_export_as_openraster_gives_the_drawings_layers(window, tmp_path):
    from sketchapp.core.openraster import read_openraster_stack

    _square(window)
    window.document.set_base(window.document.render(64), "Import")  # the square, now an imported picture
    window.generation = 1
    window.show_frame(frame(1, final=True))
    window.result.fill_hint(np.ones((512, 512), bool))
    assert window.export_result(str(tmp_path / "drawing.ora"), 2)
    layers = read_openraster_stack(tmp_path / "drawing.ora")
    assert [name.split(" (")[0] for name, _ in layers] == ["Lines", "Colour hints", "Result", "Imported picture"]
    assert all(pixels.shape == (32, 32, 4) for _, pixels in layers)


def test_the_result_as_an_underlay_to_keep_drawing_over_is_shown_saved_and_undone_but_never_the_models_input(qtbot, window, tmp_path, monkeypatch):
    _square(window)
    window.generation = 1
    shown = frame(1, final=True)
    shown.images[:] = (40, 120, 220)
    window.show_frame(shown)
    sketch_before = window.document.to_array(128)
    window.idle.stop()  # the square's own completion is not what this test waits for
    window.pen_timer.stop()
    with qtbot.assertNotEmitted(window.completion_requested, wait=100):
        window.underlay_action.trigger()
    assert window.document.underlay is not None and np.array_equal(window.document.to_array(128), sketch_before)
    canvas = window.canvas.grab().toImage()
    centre = canvas.pixelColor(canvas.width() // 2, canvas.height() // 2)
    assert centre.blue() > centre.red() + 40  # the paper shows the blue result under the lines
    window.fade_underlay_action.trigger()
    assert window.document.underlay_opacity == 0.75
    assert window.save_document(str(tmp_path / "over.sketchapp"))
    window.document.undo_stack.undo()
    assert window.document.underlay is None
    with qtbot.waitSignal(window.document_opened, timeout=20000):
        window.open_path(str(tmp_path / "over.sketchapp"))
    assert window.document.underlay is not None and window.document.underlay_opacity == 0.75
    assert window.export_result(str(tmp_path / "over.ora"), 1)
    from sketchapp.core.openraster import read_openraster_stack

    assert "Underlay" in [name for name, _ in read_openraster_stack(tmp_path / "over.ora")]
    window.save_session()  # and the autosave keeps it too
    window.flush_autosave()
    window.clear_underlay_action.trigger()
    assert window.document.underlay is None
    window.slot.release()
    monkeypatch.setattr(QMessageBox, "question", lambda *args, **kwargs: QMessageBox.StandardButton.Yes)
    second = MainWindow(CoreServices(), window.settings, tmp_path / "state")
    qtbot.addWidget(second)
    assert second.offer_recovery() and second.document.underlay is not None and second.document.underlay_opacity == 0.75


def test_preset_names_are_shown_whole_and_name_their_command_line_id(window):
    from sketchapp.ui.main_window import PresetEntry

    window.set_presets([PresetEntry("emoji-pix2pix", "Emoji colour, pix2pix, a rather long preset name", "Colours a line drawing.")])
    item = window.presets.item(0)
    assert item.text() == "Emoji colour, pix2pix, a rather long preset name"
    assert window.presets.wordWrap() and window.presets.horizontalScrollBarPolicy() == Qt.ScrollBarPolicy.ScrollBarAlwaysOff
    assert "--preset emoji-pix2pix" in item.toolTip() and "Colours a line drawing." in item.toolTip()


def test_the_result_pane_keeps_its_size_whether_candidates_are_shown_or_not(qtbot, window):
    window.preset_candidates = 3  # an engine with candidates: the strip under the result
    window._show_gallery()
    qtbot.wait(50)
    with_strip = window.result.size()
    window.preset_candidates = 1  # pix2pix without variations: no strip
    window._show_gallery()
    qtbot.wait(50)
    assert not window.gallery.isVisible() and window.result.size() == with_strip


def test_new_drops_the_hints_without_leaving_an_undo_step_to_bring_them_back(qtbot, window, monkeypatch):
    draw(window)
    window.result.fill_hint(np.ones((512, 512), bool))
    monkeypatch.setattr(window, "maybe_save", lambda: True)
    window.new_document()
    assert not window.result.has_hints() and window.document.undo_stack.count() == 0
