"""The training wizard end to end on tiny generated folders, with the real worker thread and app.

From a folder of pictures to a preset the main window completes with; empty, corrupt,
mixed and unpaired folders; pause; stop and continue, from the training page and from
a new wizard.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from PySide6.QtCore import QSettings
from PySide6.QtTest import QTest
from PySide6.QtWidgets import QFileDialog, QFormLayout, QMessageBox, QWizard

from sketchapp.app import App, CoreServices
from sketchapp.core.checkpoint import save_checkpoint
from sketchapp.core.engines.contextual.model import JointModel
from sketchapp.core.engines.contextual.networks import JointGANConfig
from sketchapp.core.engines.cyclegan.model import CycleGANModel
from sketchapp.core.engines.cyclegan.networks import CycleGANConfig
from sketchapp.core.engines.pix2pix.model import Pix2PixModel
from sketchapp.core.engines.pix2pix.networks import Pix2PixConfig
from sketchapp.ui.main_window import MainWindow
from sketchapp.ui.training_wizard import DATA, FINISH, MODEL, STYLE, TRAIN
from tests.conftest import lively, make_pictures
from tests.ui.test_main_window import draw


@pytest.fixture()
def app(qtbot, tmp_path, monkeypatch):
    monkeypatch.setattr(QMessageBox, "warning", lambda *args, **kwargs: QMessageBox.StandardButton.Ok)
    monkeypatch.setattr(QMessageBox, "question", lambda *args, **kwargs: QMessageBox.StandardButton.Yes)
    data = tmp_path / "data"
    (data / "presets").mkdir(parents=True)
    (data / "models").mkdir()
    model = lively(JointModel.create(JointGANConfig(half_size=16, z_dim=16, gf=8, df=8)))
    save_checkpoint(data / "models" / "tiny.safetensors", model, sketch_style="xdog")
    (data / "presets" / "tiny.json").write_text(json.dumps({
        "name": "Tiny", "model": "tiny.safetensors", "sketch_style": "xdog",
        "settings": {"candidates": 2, "iterations": 20, "init_samples": 4},
    }))
    torch.manual_seed(0)
    save_checkpoint(data / "models" / "tiny-p2p.safetensors", Pix2PixModel.create(Pix2PixConfig(size=32, gf=8, df=8)),
                    sketch_style="xdog")
    (data / "presets" / "tiny-p2p.json").write_text(json.dumps({
        "name": "Tiny pix2pix", "engine": "pix2pix", "model": "tiny-p2p.safetensors", "sketch_style": "xdog",
        "settings": {"candidates": 1},
    }))
    save_checkpoint(data / "models" / "tiny-cycle.safetensors", CycleGANModel.create(CycleGANConfig(32, 8, 8, 2)),
                    sketch_style="unpaired")
    (data / "presets" / "tiny-cycle.json").write_text(json.dumps({
        "name": "Tiny CycleGAN", "engine": "cyclegan", "model": "tiny-cycle.safetensors", "sketch_style": "unpaired",
        "settings": {},
    }))
    monkeypatch.setenv("SKETCHAPP_DATA_DIR", str(data))
    settings = QSettings(str(tmp_path / "settings.ini"), QSettings.Format.IniFormat)
    settings.setValue("preset", "tiny")
    window = MainWindow(CoreServices(), settings, tmp_path / "state")
    qtbot.addWidget(window)
    window.show()
    application = App(window)
    qtbot.waitUntil(lambda: window.preset_label.text() == "Preset: Tiny", timeout=15000)
    yield application
    for dialog in (application.wizard,):
        if dialog is not None:
            dialog.close()
    application.stop()


def open_wizard(qtbot, app):
    app.window.train_action.trigger()
    wizard = app.wizard
    assert wizard is not None and wizard.isVisible()
    return wizard


def choose_folders(qtbot, wizard, *folders: Path) -> dict:
    page = wizard.data_page
    page.two.setChecked(len(folders) == 2)
    page.first.edit.setText(str(folders[0]))
    if len(folders) == 2:
        page.second.edit.setText(str(folders[1]))
    page.first.changed.emit()
    assert page.report is None and not page.isComplete()
    qtbot.waitUntil(lambda: page.report is not None or "Cannot train" in page.summary.text(), timeout=10000)
    return page.report


def test_the_wizard_trains_a_preset_the_main_window_then_completes_with(qtbot, app, tmp_path):
    folder = make_pictures(tmp_path / "my shapes", 12)
    (folder / "broken.png").write_bytes(b"not a png")
    wizard = open_wizard(qtbot, app)
    report = choose_folders(qtbot, wizard, folder)
    assert report["kind"] == "folder" and report["count"] == 12
    assert [Path(p).name for p, _ in report["skipped"]] == ["broken.png"]
    assert "fewer than 500" in " ".join(report["warnings"])
    assert wizard.data_page.isComplete()

    wizard.next()
    assert wizard.currentId() == STYLE
    style = wizard.style_page
    qtbot.waitUntil(lambda: style.shown >= 1 and not style.cells[7].pixmap().isNull(), timeout=10000)
    before = style.cells[0].pixmap().toImage()
    style.style.setCurrentIndex(style.style.findData("edge"))
    slider = style.sliders["thickness"]
    slider.set_value(5)
    slider.moved.emit()
    qtbot.waitUntil(lambda: style.shown == style.request, timeout=10000)
    assert style.cells[0].pixmap().toImage() != before  # the preview follows style and slider
    assert style.params()["thickness"] == 5

    wizard.next()
    assert wizard.currentId() == MODEL
    model = wizard.model_page
    assert model.fine_tune.isChecked() and "Tiny" in model.base.currentText()
    qtbot.waitUntil(lambda: model.estimate is not None, timeout=20000)
    assert model.estimate["seconds_per_step"] > 0 and model.estimate["half_size"] == 16
    assert "About" in model.estimate_label.text()
    model.epochs.setValue(3)

    wizard.next()
    assert wizard.currentId() == TRAIN
    train = wizard.train_page
    qtbot.waitUntil(lambda: train.result is not None, timeout=60000)
    assert train.result["status"] == "done"
    assert Path(train.sample_path).exists() and not train.sample.pixmap().isNull()
    assert len(train.series["d_loss"][0]) == train.result["steps"] > 0
    assert train.bar.value() == train.bar.maximum()

    wizard.next()
    assert wizard.currentId() == FINISH
    finish = wizard.finish_page
    assert finish.name.text() == "My shapes" and finish.thumbnails.count() == 8
    finish.thumbnails.setCurrentRow(3)
    wizard.button(QWizard.WizardButton.FinishButton).click()
    qtbot.waitUntil(lambda: app.wizard is None, timeout=10000)

    data = tmp_path / "data"
    record = json.loads((data / "presets" / "my-shapes.json").read_text())
    assert record["sketch_style"] == "edge" and record["settings"]["candidates"] == 2
    assert (data / "models" / "my-shapes.safetensors").exists() and (data / "presets" / "my-shapes.png").exists()
    window = app.window
    assert any(window.presets.item(i).text() == "My shapes  (yours)" for i in range(window.presets.count()))
    qtbot.waitUntil(lambda: window.preset_label.text() == "Preset: My shapes", timeout=15000)
    draw(window)
    qtbot.waitUntil(lambda: window.frame is not None and window.frame.final, timeout=20000)
    assert window.gallery.count() == 2


def test_the_wizard_fine_tunes_a_pix2pix_preset_that_then_completes_while_drawing(qtbot, app, tmp_path):
    folder = make_pictures(tmp_path / "blocks", 12)
    wizard = open_wizard(qtbot, app)
    choose_folders(qtbot, wizard, folder)
    wizard.next()
    wizard.next()
    assert wizard.currentId() == MODEL
    model = wizard.model_page
    kinds = [model.engine.itemData(i)["kind"] for i in range(model.engine.count())]
    assert kinds == ["pix2pix", "contextual", "cyclegan"]  # all offered, pix2pix first, the one ignoring pairs last
    assert "follows the drawing" in model.engine.itemData(0)["summary"]
    model.engine.setCurrentIndex(0)
    bases = [model.base.itemText(i) for i in range(model.base.count())]
    assert model.fine_tune.isChecked() and "Tiny pix2pix (32 px)" in bases
    assert not any("Tiny (" in text for text in bases)  # only the presets of the chosen engine
    model.base.setCurrentIndex(bases.index("Tiny pix2pix (32 px)"))
    assert not model.auto_batch.isChecked()
    qtbot.waitUntil(lambda: model.estimate is not None, timeout=20000)
    assert model.estimate["half_size"] == 32 and model.estimate["encoder_steps"] == 0
    model.epochs.setValue(2)

    wizard.next()
    train = wizard.train_page
    qtbot.waitUntil(lambda: train.result is not None, timeout=60000)
    assert train.result["status"] == "done" and train.result["engine"] == "pix2pix"
    assert set(train.curves) == {"d_loss", "g_gan", "g_l1", "g_ssim"}  # its own losses: not D's scores, nor colour cells without a head
    assert "1 - SSIM" in train.legend.getLabel(train.curves["g_ssim"]).text
    assert "sketch · hints · the model's picture · the true picture" in train.sample_columns.text()
    assert len(train.series["g_l1"][0]) == train.result["steps"] > 0

    wizard.next()
    assert wizard.currentId() == FINISH and wizard.finish_page.thumbnails.count() == 8
    wizard.button(QWizard.WizardButton.FinishButton).click()
    qtbot.waitUntil(lambda: app.wizard is None, timeout=10000)
    record = json.loads((tmp_path / "data" / "presets" / "blocks.json").read_text())
    assert record["engine"] == "pix2pix" and record["settings"]["candidates"] == 1
    window = app.window
    qtbot.waitUntil(lambda: window.preset_label.text() == "Preset: Blocks", timeout=15000)
    assert window.engine_live and not window.ghost_action.isVisible()
    draw(window)
    qtbot.waitUntil(lambda: window.frame is not None and window.frame.final, timeout=20000)
    assert window.frame.images.shape[1:] == (32, 32, 3)


def test_empty_and_corrupt_folders_are_refused_and_unpaired_ones_go_to_cyclegan(qtbot, app, tmp_path):
    wizard = open_wizard(qtbot, app)
    page = wizard.data_page
    empty = tmp_path / "empty"
    empty.mkdir()
    assert choose_folders(qtbot, wizard, empty) is None
    assert "no image files found" in page.summary.text() and not page.isComplete()

    corrupt = tmp_path / "corrupt"
    corrupt.mkdir()
    for name in ("a.png", "b.jpg"):
        (corrupt / name).write_bytes(b"\x00garbage")
    assert choose_folders(qtbot, wizard, corrupt) is None
    assert "could be read" in page.summary.text() and not page.isComplete()

    sketches = make_pictures(tmp_path / "sketches", 4)
    paintings = tmp_path / "paintings"
    paintings.mkdir()
    for i in range(4):
        Image.new("RGB", (30, 30), (200, 10 * i, 0)).save(paintings / f"other{i}.png")
    report = choose_folders(qtbot, wizard, sketches, paintings)
    assert report["kind"] == "unpaired" and "CycleGAN" in page.summary.text() and page.isComplete()
    assert "only 4 usable pictures" in " ".join(report["warnings"])

    images = make_pictures(tmp_path / "images", 4, seed=1)
    report = choose_folders(qtbot, wizard, sketches, images)
    assert report["kind"] == "paired" and report["count"] == 4 and page.isComplete()
    assert page.nextId() == MODEL  # drawn sketches: no automatic style to choose


def test_pause_stop_and_continue_from_the_page_and_from_a_new_wizard(qtbot, app, tmp_path):
    folder = make_pictures(tmp_path / "shapes", 12)
    wizard = open_wizard(qtbot, app)
    choose_folders(qtbot, wizard, folder)
    wizard.next()
    wizard.next()
    model = wizard.model_page
    model.epochs.setValue(1000)
    wizard.next()
    train = wizard.train_page
    qtbot.waitUntil(lambda: train.step >= 5, timeout=30000)

    train.pause_button.click()
    qtbot.waitUntil(lambda: "(paused)" in train.status.text(), timeout=10000)
    held_at = train.step
    qtbot.wait(300)
    assert train.step == held_at
    train.pause_button.click()
    qtbot.waitUntil(lambda: train.step > held_at, timeout=10000)

    train.stop_button.click()
    qtbot.waitUntil(lambda: not train.running, timeout=20000)
    assert "can be resumed" in train.status.text() and train.continue_button.isVisible()
    run = Path(wizard.run_folder())
    stopped_at = app.training.worker.runs(str(run.parent))[0]["step"]
    assert stopped_at > held_at

    train.continue_button.click()
    qtbot.waitUntil(lambda: train.running and train.step > stopped_at, timeout=20000)
    window = app.window  # the app stays usable: a drawing is completed while the training runs
    draw(window)
    qtbot.waitUntil(lambda: window.frame is not None and window.frame.final, timeout=20000)
    during = train.step
    qtbot.waitUntil(lambda: train.step > during, timeout=20000)
    assert train.running
    wizard.close()  # asks (answered yes), saves and stops
    qtbot.waitUntil(lambda: app.wizard is None and not app.training.worker.training, timeout=20000)

    wizard = open_wizard(qtbot, app)
    runs = wizard.data_page.runs
    assert wizard.data_page.runs_box.isVisibleTo(wizard) and runs.count() == 1
    saved = app.training.worker.runs(str(run.parent))[0]["step"]
    assert saved > stopped_at
    runs.setCurrentRow(0)
    wizard.data_page.continue_button.click()
    assert wizard.currentId() == TRAIN
    qtbot.waitUntil(lambda: wizard.train_page.step > saved, timeout=20000)
    assert len(wizard.train_page.series["d_loss"][0]) >= saved  # the history of the earlier sessions is plotted
    wizard.close()
    qtbot.waitUntil(lambda: app.wizard is None and not app.training.worker.training, timeout=20000)


def test_a_training_that_cannot_begin_says_why_and_leads_back_to_the_settings(qtbot, app, tmp_path):
    folder = make_pictures(tmp_path / "vanishing", 12)
    wizard = open_wizard(qtbot, app)
    choose_folders(qtbot, wizard, folder)
    wizard.next()
    wizard.next()
    for picture in folder.iterdir():  # gone between the scan and the training
        picture.unlink()
    wizard.next()
    train = wizard.train_page
    qtbot.waitUntil(lambda: not train.running, timeout=20000)
    assert "no image files found" in train.status.text() and train.result is None
    assert train.settings_button.isVisibleTo(wizard) and not train.continue_button.isVisibleTo(wizard)
    train.settings_button.click()
    assert wizard.currentId() == DATA and wizard.data_page.first.path() == str(folder)


def test_unpaired_folders_train_a_cyclegan_preset_that_completes_and_sketches_pictures(qtbot, app, tmp_path, monkeypatch):
    sketches = tmp_path / "my sketches"
    sketches.mkdir()
    for i in range(6):
        Image.new("RGB", (40, 40), "white").save(sketches / f"drawing{i}.png")
    pictures = make_pictures(tmp_path / "paintings", 9, seed=3)
    wizard = open_wizard(qtbot, app)
    report = choose_folders(qtbot, wizard, sketches, pictures)
    assert report["kind"] == "unpaired" and report["counts"] == [6, 9] and wizard.data_page.isComplete()
    assert wizard.data_page.nextId() == MODEL
    wizard.next()
    model = wizard.model_page
    kinds = [model.engine.itemData(i)["kind"] for i in range(model.engine.count())]
    assert kinds == ["cyclegan"]  # only the engine that learns without pairs
    bases = [model.base.itemText(i) for i in range(model.base.count())]
    assert model.fine_tune.isChecked() and "Tiny CycleGAN (32 px)" in bases
    model.base.setCurrentIndex(bases.index("Tiny CycleGAN (32 px)"))
    assert model.batch.value() == 1  # the paper's batch
    qtbot.waitUntil(lambda: model.estimate is not None, timeout=20000)
    model.epochs.setValue(2)

    wizard.next()
    train = wizard.train_page
    qtbot.waitUntil(lambda: train.result is not None, timeout=60000)
    assert train.result["status"] == "done" and train.result["engine"] == "cyclegan"
    assert {"d_a", "d_b", "cycle_a", "cycle_b", "idt_a", "idt_b"} <= set(train.curves)
    assert len(train.series["cycle_a"][0]) == train.result["steps"] > 0

    wizard.next()
    assert wizard.currentId() == FINISH and wizard.finish_page.thumbnails.count() == 6  # one per sketch
    wizard.button(QWizard.WizardButton.FinishButton).click()
    qtbot.waitUntil(lambda: app.wizard is None, timeout=10000)
    record = json.loads((tmp_path / "data" / "presets" / "paintings.json").read_text())
    assert record["engine"] == "cyclegan"
    window = app.window
    qtbot.waitUntil(lambda: window.preset_label.text() == "Preset: Paintings", timeout=15000)
    assert window.engine_live and window.sketch_of_action.isVisible() and not window.refine_action.isVisible()
    draw(window)
    qtbot.waitUntil(lambda: window.frame is not None and window.frame.final, timeout=20000)
    assert window.frame.images.shape[1:] == (32, 32, 3)

    photo = tmp_path / "photo.jpg"
    Image.new("RGB", (300, 200), (30, 120, 200)).save(photo)
    monkeypatch.setattr(QFileDialog, "getOpenFileName", lambda *args, **kwargs: (str(photo), ""))
    asked = []
    monkeypatch.setattr(window, "ask_import_use", lambda name: asked.append(name) or "picture")
    before = window.document.undo_stack.count()
    sides = []
    enlarge = window.services.enlarge
    monkeypatch.setattr(window.services, "enlarge", lambda pixels, side: sides.append(side) or enlarge(pixels, side))
    with qtbot.waitSignal(window.import_finished, timeout=20000) as finished:
        window.import_action.trigger()  # the import offers "Make a sketch from this picture"
    assert asked == ["photo.jpg"] and finished.args == [True]
    assert sides == [window.document.side]  # the model's 32 px sketch enlarged sharply to the sheet
    assert window.document.undo_stack.count() == before + 1
    assert window.document.undo_stack.undoText() == "Sketch of photo.jpg"
    monkeypatch.setattr(window, "ask_import_use", lambda name: None)  # cancelled: nothing happens
    window.import_action.trigger()
    assert window.document.undo_stack.count() == before + 1

    def settled() -> bool:
        return (window.frame is not None and window.frame.final and window.frame.generation == window.generation
                and not window.idle.isActive() and not window.pen_timer.isActive())  # a live preset asks by pen_timer

    qtbot.waitUntil(settled, timeout=20000)
    plain = window.frame.images[window.chosen].copy()
    reference = tmp_path / "sunset.png"
    Image.new("RGB", (64, 64), (250, 120, 20)).save(reference)
    with qtbot.waitSignal(window.style_finished, timeout=60000) as styled:
        window.apply_style(str(reference))
    assert styled.args == [True], window.statusBar().currentMessage()
    assert not np.array_equal(window.frame.images[window.chosen], plain)
    assert window.frame.settings["style_reference"] == "sunset.png"  # recorded with an export

    window._styling = (99, window.frame.generation - 1, 0, "sunset.png")  # a restyle of a drawing since changed
    window.importing.setVisible(True)
    with qtbot.waitSignal(window.style_finished, timeout=1000) as stopped:
        window.picture_styled(99, plain, 150, 150)
    assert stopped.args == [False] and not window.importing.isVisible() and window.frame.images[window.chosen] is not plain


def test_a_typed_folder_is_scanned_when_typing_pauses_and_sliders_have_plain_names(qtbot, app, tmp_path):
    folder = make_pictures(tmp_path / "typed", 12)
    wizard = open_wizard(qtbot, app)
    page = wizard.data_page
    page.first.edit.setFocus()
    QTest.keyClicks(page.first.edit, str(folder))
    qtbot.waitUntil(lambda: page.report is not None, timeout=10000)  # no Tab, no Enter: the pause was enough
    assert page.first.edit.hasFocus() or not wizard.isActiveWindow()
    wizard.next()
    names = [wizard.style_page.form.itemAt(row, QFormLayout.ItemRole.LabelRole).widget().text()
             for row in range(wizard.style_page.form.rowCount())]
    assert names and not {"Sigma", "K", "Phi", "Epsilon"} & set(names)


def test_training_progress_counts_epochs_for_every_engine_and_steps_for_the_encoder(qtbot, app):
    wizard = open_wizard(qtbot, app)
    page = wizard.train_page
    base = {"job": page.job, "rows": [], "step": 30, "steps": 100, "epoch": 3, "epochs": 10, "held": "", "elapsed": 5.0, "eta": 9.0}
    page._progress({**base, "phase": "train"})  # pix2pix and CycleGAN
    assert page.status.text().startswith("Epoch 3 of 10")
    page._progress({**base, "phase": "encoder"})
    assert page.status.text().startswith("Teaching the encoder")


def test_a_folder_of_pictures_is_never_offered_first_to_an_engine_that_ignores_its_pairs(qtbot, app, tmp_path):
    folder = make_pictures(tmp_path / "one", 12)
    wizard = open_wizard(qtbot, app)
    wizard.current_preset = "3d-cyclegan"  # the window's preset is a CycleGAN one
    choose_folders(qtbot, wizard, folder)
    wizard.next()
    wizard.next()
    assert wizard.currentId() == MODEL
    assert wizard.model_page.engine.currentData()["kind"] != "cyclegan"
