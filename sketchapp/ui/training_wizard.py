"""The training wizard: from a folder of pictures to a new preset, without a terminal.

Five pages: the data (scanned in the background), the automatic sketch style with a
live preview, the model (fine-tune or from scratch, with a measured time estimate), the
training itself (progress, loss plot, samples, pause, stop and continue), and the new
preset's name and thumbnail. The wizard holds no training logic: every question goes
to a ``backend`` (the app gives it ``sketchapp.workers.training.TrainingWorker``) and
every answer comes back as a queued signal carrying plain data.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np
import pyqtgraph as pg
import qtawesome as qta
from PySide6.QtCore import QEvent, QSize, Qt, QTimer, Signal, Slot
from PySide6.QtGui import QCloseEvent, QIcon, QImage, QPalette, QPixmap
from PySide6.QtWidgets import (
    QButtonGroup,
    QCheckBox,
    QComboBox,
    QFileDialog,
    QFormLayout,
    QGridLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QListWidget,
    QListWidgetItem,
    QMessageBox,
    QProgressBar,
    QPushButton,
    QRadioButton,
    QSlider,
    QSpinBox,
    QVBoxLayout,
    QWidget,
    QWizard,
    QWizardPage,
)

from sketchapp.ui.sketch import array_to_qimage

DATA, STYLE, MODEL, TRAIN, FINISH = range(5)
STYLES = (
    ("xdog", "XDoG (inked lines, as in the Contextual GAN paper)"),
    ("edge", "Edges (thin clean outlines)"),
    ("pencil", "Pencil (soft graphite shading)"),
    ("outline", "Outline (pen-width outlines of objects on a plain background, as people draw them)"),
    ("cleanup", "Cleanup (the pictures are photos or scans of paper sketches)"),
)
PREVIEW_SIZE = 96
SLIDER_STEPS = 1000
TYPING_PAUSE_MS = 400  # a typed folder is scanned this long after the last key, if it exists
USABLE_KINDS = ("folder", "side-by-side", "paired", "dataset", "unpaired")
LOSS_COLOURS = ("#2e86c1", "#e67e22", "#27ae60", "#8e44ad", "#c0392b", "#16a085", "#d4ac0d", "#7f8c8d")


def duration(seconds: float) -> str:
    seconds = int(round(seconds))
    if seconds < 60:
        return f"{seconds} s"
    minutes, secs = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes} min {secs:02d} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min"


def _pixmap(pixels: np.ndarray) -> QPixmap:
    return QPixmap.fromImage(array_to_qimage(pixels))


class FolderRow(QWidget):
    """A label, a path field and a Browse button."""

    changed = Signal()

    def __init__(self, caption: str, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.caption = QLabel(caption)
        self.caption.setMinimumWidth(70)
        self.edit = QLineEdit()
        self.edit.setPlaceholderText("a folder on this computer")
        self._announced: str | None = None
        self.edit.editingFinished.connect(self._announce)
        # a typed path is scanned once typing pauses on a folder that exists, not only when the field loses focus
        self._typed = QTimer(self)
        self._typed.setSingleShot(True)
        self._typed.setInterval(TYPING_PAUSE_MS)
        self._typed.timeout.connect(lambda: self._announce() if Path(self.edit.text()).expanduser().is_dir() else None)
        self.edit.textEdited.connect(self._typed.start)
        browse = QPushButton(qta.icon("fa5s.folder-open"), "Browse…")
        browse.clicked.connect(self.browse)
        row = QHBoxLayout(self)
        row.setContentsMargins(0, 0, 0, 0)
        row.addWidget(self.caption)
        row.addWidget(self.edit, 1)
        row.addWidget(browse)

    def _announce(self) -> None:
        """``changed``, once for each new text (a pause in typing and leaving the field may both ask)."""
        if self.edit.text() != self._announced:
            self._announced = self.edit.text()
            self.changed.emit()

    def browse(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, f"Choose the {self.caption.text().rstrip(':').lower()} folder", self.edit.text())
        if folder:
            self.edit.setText(folder)
            self._announce()

    def path(self) -> str:
        return self.edit.text().strip()


# -- 1. data ---------------------------------------------------------------------------------


class DataPage(QWizardPage):
    def __init__(self, wizard: TrainingWizard) -> None:
        super().__init__()
        self.wiz = wizard
        self.report: dict[str, Any] | None = None
        self.setTitle("Your pictures")
        self.setSubTitle(
            "Pick a folder of pictures (sketches are drawn from them automatically), or a folder of sketches "
            "and a folder of the matching pictures."
        )
        self.one = QRadioButton("One folder of pictures")
        self.two = QRadioButton("Two folders: sketches, and pictures with the same file names")
        self.one.setChecked(True)
        group = QButtonGroup(self)
        group.addButton(self.one)
        group.addButton(self.two)
        self.first = FolderRow("Pictures:")
        self.second = FolderRow("Pictures:")
        self.second.setVisible(False)
        self.side = QComboBox()
        self.side.addItems(["left", "right"])
        self.side_row = QWidget()
        side_layout = QHBoxLayout(self.side_row)
        side_layout.setContentsMargins(0, 0, 0, 0)
        side_layout.addWidget(QLabel("The sketch is the"))
        side_layout.addWidget(self.side)
        side_layout.addWidget(QLabel("half of each picture"))
        side_layout.addStretch(1)
        self.side_row.setVisible(False)
        self.scan_bar = QProgressBar()
        self.scan_bar.setVisible(False)
        self.summary = QLabel("")
        self.summary.setWordWrap(True)
        self.summary.setTextFormat(Qt.TextFormat.RichText)
        self.skipped = QListWidget()
        self.skipped.setMaximumHeight(90)
        self.skipped.setVisible(False)

        self.runs = QListWidget()
        self.runs.setMaximumHeight(80)
        self.continue_button = QPushButton(qta.icon("fa5s.play"), "Continue this training")
        self.continue_button.setEnabled(False)
        self.runs.currentRowChanged.connect(lambda row: self.continue_button.setEnabled(row >= 0))
        self.continue_button.clicked.connect(self._continue)
        self.runs_box = QGroupBox("Or continue an unfinished training, or make its preset")
        runs_layout = QVBoxLayout(self.runs_box)
        runs_layout.addWidget(self.runs)
        runs_layout.addWidget(self.continue_button, 0, Qt.AlignmentFlag.AlignRight)

        layout = QVBoxLayout(self)
        for widget in (self.one, self.two, self.first, self.second, self.side_row, self.scan_bar, self.summary, self.skipped):
            layout.addWidget(widget)
        layout.addStretch(1)
        layout.addWidget(self.runs_box)

        self.debounce = QTimer(self)
        self.debounce.setSingleShot(True)
        self.debounce.setInterval(200)
        self.debounce.timeout.connect(self.rescan)
        self.two.toggled.connect(self._mode)
        self.first.changed.connect(self._folders_changed)
        self.second.changed.connect(self._folders_changed)
        backend = wizard.backend
        backend.scan_progress.connect(self._progress)
        backend.scanned.connect(self._scanned)
        backend.scan_failed.connect(self._failed)

    def initializePage(self) -> None:  # noqa: N802
        self.fill_runs()

    def fill_runs(self) -> None:
        self.runs.clear()
        unfinished = [run for run in self.wiz.backend.runs(str(self.wiz.runs_root)) if not run["preset"]]
        for run in unfinished:
            saved = time.strftime("%d %b %H:%M", time.localtime(run["saved_at"]))
            spec = run["data"].get("spec") or {}
            source = spec.get("folder") or spec.get("images") or run["data"].get("source") or ""
            where = ""
            if source:
                where = f" ({Path(source).name})" if Path(source).exists() else f" ({source} is missing)"
            state = "finished, no preset made yet" if run["finished"] else f"step {run['step']} of {run['steps']}"
            item = QListWidgetItem(f"{Path(run['folder']).name}: {state}, saved {saved}{where}")
            item.setData(Qt.ItemDataRole.UserRole, run["folder"])
            self.runs.addItem(item)
        self.runs_box.setVisible(bool(unfinished))

    def _continue(self) -> None:
        item = self.runs.currentItem()
        if item is not None:
            self.wiz.continue_run(item.data(Qt.ItemDataRole.UserRole))

    def _mode(self, two: bool) -> None:
        self.first.caption.setText("Sketches:" if two else "Pictures:")
        self.second.setVisible(two)
        self._folders_changed()

    def _folders_changed(self) -> None:
        """What was found no longer holds: forget it at once, look again when typing pauses."""
        self.report = None
        self.summary.setText("")
        self.wiz.forget_run_folder()
        self.completeChanged.emit()
        self.debounce.start()

    def folders(self) -> list[str]:
        folders = [self.first.path()]
        if self.two.isChecked():
            folders.append(self.second.path())
        return folders

    def rescan(self) -> None:
        folders = self.folders()
        self.report = None
        self.side_row.setVisible(False)
        self.skipped.setVisible(False)
        self.completeChanged.emit()
        if not all(folders):
            self.summary.setText("")
            self.scan_bar.setVisible(False)
            return
        self.summary.setText("Looking at the pictures…")
        self.scan_bar.setRange(0, 0)
        self.scan_bar.setVisible(True)
        self.wiz.backend.scan(folders)

    @Slot(int, int)
    def _progress(self, done: int, total: int) -> None:
        self.scan_bar.setRange(0, max(1, total))
        self.scan_bar.setValue(done)

    @Slot(dict)
    def _scanned(self, report: dict[str, Any]) -> None:
        if report["folders"] != [str(Path(f)) for f in self.folders()]:
            return  # an answer for folders the user has since changed
        self.scan_bar.setVisible(False)
        self.report = report
        lines = [f"<b>Found {report['summary']}.</b>"]
        if report["kind"] == "unpaired":
            lines.append(
                "The two folders do not match by file name, so they are unpaired: SketchApp trains CycleGAN on them, "
                "which learns to turn the first folder's sketches into pictures like the second's, and back. "
                "Give sketches and pictures the same file names instead for a pix2pix model, which follows lines more closely."
            )
        sizes = report.get("sizes") or {}
        if sizes:
            lines.append(
                f"Sizes: {sizes['min_width']}×{sizes['min_height']} to {sizes['max_width']}×{sizes['max_height']} "
                f"pixels (median {sizes['median_width']}×{sizes['median_height']})."
            )
        for warning in report["warnings"]:
            lines.append(f"<span style='color:#b9770e'>Warning: {warning}.</span>")
        if report["skipped"]:
            lines.append(f"{len(report['skipped'])} files will be left out:")
        self.summary.setText("<br>".join(lines))
        self.skipped.clear()
        for path, reason in report["skipped"]:
            self.skipped.addItem(f"{Path(path).name}: {reason}")
        self.skipped.setVisible(bool(report["skipped"]))
        self.side_row.setVisible(report["kind"] == "side-by-side")
        self.completeChanged.emit()

    @Slot(str)
    def _failed(self, message: str) -> None:
        self.scan_bar.setVisible(False)
        self.report = None
        self.summary.setText(f"<span style='color:#c0392b'><b>Cannot train on this:</b> {message}</span>")
        self.completeChanged.emit()

    def isComplete(self) -> bool:  # noqa: N802
        return self.report is not None and self.report["kind"] in USABLE_KINDS

    def nextId(self) -> int:  # noqa: N802
        return STYLE if self.report is not None and self.report["kind"] == "folder" else MODEL

    def spec(self) -> dict[str, Any]:
        """The data as ``sketchapp.core.data.datasets.load_spec`` takes it (style added by the style page)."""
        assert self.report is not None
        kind, folders = self.report["kind"], self.report["folders"]
        if kind == "paired":
            return {"kind": "paired", "sketches": folders[0], "images": folders[1]}
        if kind == "side-by-side":
            return {"kind": "side-by-side", "folder": folders[0], "sketch_side": self.side.currentText()}
        if kind == "unpaired":
            return {"kind": "unpaired", "sketches": folders[0], "pictures": folders[1]}
        return {"kind": "folder", "folder": folders[0]}


# -- 2. sketch style ------------------------------------------------------------------------


class ParameterSlider(QWidget):
    """A slider over a parameter's practical range, with its value beside it."""

    moved = Signal()

    def __init__(self, description: dict[str, Any]) -> None:
        super().__init__()
        self.description = description
        self.low, self.high = float(description["low"]), float(description["high"])
        self.integer = bool(description["integer"])
        self.slider = QSlider(Qt.Orientation.Horizontal)
        steps = int(self.high - self.low) if self.integer and self.high - self.low <= SLIDER_STEPS else SLIDER_STEPS
        self.slider.setRange(0, max(1, steps))
        self.slider.setToolTip(description.get("help", ""))
        self.value_label = QLabel()
        self.value_label.setMinimumWidth(48)
        row = QHBoxLayout(self)
        row.setContentsMargins(0, 0, 0, 0)
        row.addWidget(self.slider, 1)
        row.addWidget(self.value_label)
        self.set_value(description["default"])
        self.slider.valueChanged.connect(self._moved)

    def value(self) -> float | int:
        return self._value

    def set_value(self, value: float) -> None:
        """Show ``value`` exactly (the slider's position is only the nearest step to it)."""
        self._value = int(round(value)) if self.integer else float(value)
        position = (float(value) - self.low) / (self.high - self.low) if self.high > self.low else 0.0
        self.slider.blockSignals(True)
        self.slider.setValue(int(round(min(1.0, max(0.0, position)) * self.slider.maximum())))
        self.slider.blockSignals(False)
        self._show()

    def _show(self) -> None:
        self.value_label.setText(str(self._value) if self.integer else f"{self._value:.3g}")

    def _moved(self) -> None:
        raw = self.low + (self.high - self.low) * self.slider.value() / self.slider.maximum()
        self._value = int(round(raw)) if self.integer else float(f"{raw:.3g}")
        self._show()
        self.moved.emit()


class StylePage(QWizardPage):
    def __init__(self, wizard: TrainingWizard) -> None:
        super().__init__()
        self.wiz = wizard
        self.request = 0
        self.shown = 0
        self.sliders: dict[str, ParameterSlider] = {}
        self.setTitle("Sketch style")
        self.setSubTitle(
            "Your pictures are turned into sketches to learn from. Choose the kind of drawing you will make "
            "in SketchApp; the previews follow the sliders."
        )
        self.style = QComboBox()
        for key, label in STYLES:
            self.style.addItem(label, key)
        self.style.currentIndexChanged.connect(self._style_changed)
        reset = QPushButton(qta.icon("fa5s.undo"), "Defaults")
        reset.clicked.connect(self._style_changed)
        top = QHBoxLayout()
        top.addWidget(QLabel("Style:"))
        top.addWidget(self.style, 1)
        top.addWidget(reset)
        self.form = QFormLayout()
        self.cells: list[QLabel] = []
        grid = QGridLayout()
        grid.setSpacing(6)
        for index in range(8):
            cell = QLabel()
            cell.setFixedSize(2 * PREVIEW_SIZE + 2, PREVIEW_SIZE)
            cell.setAlignment(Qt.AlignmentFlag.AlignCenter)
            cell.setStyleSheet("background: white; border: 1px solid #bbb")
            grid.addWidget(cell, index // 4, index % 4)
            self.cells.append(cell)
        self.status = QLabel("")
        layout = QVBoxLayout(self)
        layout.addLayout(top)
        layout.addLayout(self.form)
        layout.addLayout(grid)
        layout.addWidget(self.status)
        layout.addStretch(1)
        wizard.backend.preview_ready.connect(self._preview)
        wizard.backend.preview_failed.connect(self._preview_failed)

    def initializePage(self) -> None:  # noqa: N802
        if not self.sliders:
            self._style_changed()
        else:
            self.refresh()

    def _style_changed(self) -> None:
        while self.form.rowCount():
            self.form.removeRow(0)
        self.sliders = {}
        for description in self.wiz.backend.style_parameters(self.style_key()):
            slider = ParameterSlider(description)
            slider.moved.connect(self.refresh)
            label = QLabel(description.get("label") or description["name"].replace("_", " ").capitalize())
            label.setToolTip(description.get("help", ""))
            self.form.addRow(label, slider)
            self.sliders[description["name"]] = slider
        self.refresh()

    def style_key(self) -> str:
        return str(self.style.currentData())

    def params(self) -> dict[str, Any]:
        return {name: slider.value() for name, slider in self.sliders.items()}

    def refresh(self) -> None:
        report = self.wiz.data_page.report
        if report is None:
            return
        self.request += 1
        self.wiz.backend.preview(self.request, report["folders"][0], self.style_key(), self.params(), PREVIEW_SIZE)

    @Slot(int, object)
    def _preview(self, request: int, pairs: list[tuple[np.ndarray, np.ndarray]]) -> None:
        if request < self.shown:
            return
        self.shown = request
        for cell, (sketch, image) in zip(self.cells, pairs):
            joint = np.concatenate([np.repeat(sketch[..., None], 3, axis=2), np.full((sketch.shape[0], 2, 3), 200, np.uint8), image], axis=1)
            cell.setPixmap(_pixmap(joint))
        for cell in self.cells[len(pairs):]:
            cell.clear()
        self.status.setText("")

    @Slot(int, str)
    def _preview_failed(self, request: int, message: str) -> None:
        if request >= self.shown:
            self.status.setText(f"Preview failed: {message}")


# -- 3. model ---------------------------------------------------------------------------------


class ModelPage(QWizardPage):
    def __init__(self, wizard: TrainingWizard) -> None:
        super().__init__()
        self.wiz = wizard
        self.request = 0
        self.estimate: dict[str, Any] | None = None
        self.setTitle("Model")
        self.setSubTitle("Fine-tuning a preset's model learns fastest and copes with few pictures.")
        self.setCommitPage(True)
        self.setButtonText(QWizard.WizardButton.CommitButton, "Train")
        self.engine = QComboBox()
        self._unpaired = False  # what the engine list was made for
        self.engine_help = QLabel("")
        self.engine_help.setWordWrap(True)
        self.presets: list[dict[str, Any]] = []
        self.fine_tune = QRadioButton("Fine-tune the model of a preset (recommended)")
        self.scratch = QRadioButton("Train a new model from scratch")
        group = QButtonGroup(self)
        group.addButton(self.fine_tune)
        group.addButton(self.scratch)
        self.base = QComboBox()
        self.resolution = QComboBox()
        self.width_box = QComboBox()
        self.width_box.addItem("Compact (width 32): trains about 3× faster", 32)
        self.width_box.addItem("Full (width 64, as in the paper)", 64)
        self.epochs = QSpinBox()
        self.epochs.setRange(1, 1000)
        self.epochs.setValue(10)
        self.auto_batch = QCheckBox("Choose to fit memory")
        self.auto_batch.setChecked(True)
        self.batch = QSpinBox()
        self.batch.setRange(1, 512)
        self.batch.setValue(64)
        self.batch.setEnabled(False)
        self.auto_batch.toggled.connect(lambda on: self.batch.setEnabled(not on))
        self.device = QComboBox()
        self.estimate_label = QLabel("")
        self.estimate_label.setWordWrap(True)
        self.folder_label = QLabel("")
        self.folder_label.setWordWrap(True)
        self.folder_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)

        batch_row = QHBoxLayout()
        batch_row.addWidget(self.auto_batch)
        batch_row.addWidget(self.batch)
        batch_row.addStretch(1)
        form = QFormLayout()
        form.addRow("Engine:", self.engine)
        form.addRow("", self.engine_help)
        form.addRow(self.fine_tune)
        form.addRow("Preset:", self.base)
        form.addRow(self.scratch)
        form.addRow("Resolution:", self.resolution)
        form.addRow("Network size:", self.width_box)
        form.addRow("Epochs:", self.epochs)
        form.addRow("Batch size:", batch_row)
        form.addRow("Device:", self.device)
        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addWidget(self.estimate_label)
        layout.addStretch(1)
        layout.addWidget(self.folder_label)

        self.debounce = QTimer(self)
        self.debounce.setSingleShot(True)
        self.debounce.setInterval(400)
        self.debounce.timeout.connect(self.measure)
        self.fine_tune.toggled.connect(self._mode)
        self.engine.currentIndexChanged.connect(self._engine_changed)
        for box in (self.base, self.resolution, self.width_box, self.device):
            box.currentIndexChanged.connect(self.debounce.start)
        for spin in (self.epochs, self.batch):
            spin.valueChanged.connect(self.debounce.start)
        self.auto_batch.toggled.connect(self.debounce.start)
        wizard.backend.estimated.connect(self._estimated)
        wizard.backend.estimate_failed.connect(self._estimate_failed)

    def initializePage(self) -> None:  # noqa: N802
        report = self.wiz.data_page.report
        unpaired = report is not None and report["kind"] == "unpaired"
        if self.device.count() == 0:
            self.presets = self.wiz.backend.base_presets()
            for name, label in self.wiz.backend.devices():
                self.device.addItem(label, name)
        if self.engine.count() == 0 or self._unpaired != unpaired:
            self._unpaired = unpaired
            # unpaired folders: only the engines that learn without pairs; paired data: in the engines'
            # order of preference, engines that ignore the pairing last
            engines = [e for e in self.wiz.backend.engines() if e.get("unpaired") or not unpaired]
            engines.sort(key=lambda e: (bool(e.get("unpaired")) and not unpaired, e["preference"]))
            self.engine.blockSignals(True)
            self.engine.clear()
            for engine in engines:
                self.engine.addItem(engine["title"], engine)
            self.engine.blockSignals(False)
            current = next((p for p in self.presets if p["id"] == self.wiz.current_preset), None)
            kinds = [e["kind"] for e in engines]
            # the window's preset's engine is offered first only where it suits the data: never one that
            # would ignore the pairs of a folder of pictures (CycleGAN, "needs an unrelated folder")
            suits = current is not None and current["engine"] in kinds and (
                unpaired or not engines[kinds.index(current["engine"])].get("unpaired"))
            if suits and current["engine"] != kinds[0]:
                self.engine.setCurrentIndex(kinds.index(current["engine"]))
            self._engine_changed()
        self.folder_label.setText(f"The training is saved as it goes in {self.wiz.run_folder()}")
        self.debounce.start()

    @property
    def kind(self) -> str:
        engine = self.engine.currentData()
        return str(engine["kind"]) if engine else ""

    def _engine_changed(self) -> None:
        """Presets to fine-tune, sizes and batch choices of the chosen engine, as the worker describes it."""
        engine = self.engine.currentData() or {}
        summary = str(engine.get("summary", ""))
        self.engine_help.setText(summary[:1].upper() + summary[1:] + ".")
        self.base.blockSignals(True)
        self.base.clear()
        for preset in self.presets:
            if preset["engine"] == self.kind:
                self.base.addItem(f"{preset['name']} ({preset['size']} px)", preset)
                if preset["id"] == self.wiz.current_preset:
                    self.base.setCurrentIndex(self.base.count() - 1)
        self.base.blockSignals(False)
        self.resolution.blockSignals(True)
        self.resolution.clear()
        for size in engine.get("sizes", ()):
            self.resolution.addItem(f"{size} × {size} pixels", size)
        self.resolution.setCurrentIndex(max(0, self.resolution.findData(engine.get("default_size"))))
        self.resolution.blockSignals(False)
        fits = engine.get("batch_size") == 0  # the engine measures the batch that fits memory
        self.auto_batch.setChecked(fits)
        self.auto_batch.setEnabled(fits)
        if not fits:
            self.batch.setValue(int(engine.get("batch_size", 16)))
        self.fine_tune.setEnabled(self.base.count() > 0)
        (self.fine_tune if self.base.count() else self.scratch).setChecked(True)
        self._mode()

    def _mode(self) -> None:
        fine = self.fine_tune.isChecked()
        self.base.setEnabled(fine)
        self.resolution.setEnabled(not fine)
        self.width_box.setEnabled(not fine)
        if self.epochs.value() in (0, 10, 25):  # a default, not the user's choice: follow the mode
            self.epochs.setValue(10 if fine else 25)
        self.debounce.start()

    def job(self) -> dict[str, Any]:
        """What to train: settings overrides, the base model, the device."""
        settings: dict[str, Any] = {"epochs": self.epochs.value(), "batch_size": 0 if self.auto_batch.isChecked() else self.batch.value()}
        job: dict[str, Any] = {"device": self.device.currentData() or "auto", "settings": settings, "engine": self.kind}
        if self.fine_tune.isChecked() and self.base.currentData():
            preset = self.base.currentData()
            job["base_model"], job["base_preset"] = preset["model"], preset["id"]
        else:  # new networks of this size and width, as the engine makes them
            job["network"] = {"size": int(self.resolution.currentData()), "width": int(self.width_box.currentData())}
        return job

    def measure(self) -> None:
        report = self.wiz.data_page.report
        if report is None or self.wiz.currentId() != MODEL:
            return
        self.request += 1
        self.estimate = None
        self.estimate_label.setText("Measuring the training speed on a few real steps…")
        self.wiz.backend.estimate(self.request, {**self.job(), "count": report["count"]})

    @Slot(int, dict)
    def _estimated(self, request: int, estimate: dict[str, Any]) -> None:
        if request != self.request:
            return
        self.estimate = estimate
        text = (
            f"<b>About {duration(estimate['seconds'])}</b> on this {estimate['device'].upper()}: "
            f"{estimate['gan_steps']:,} steps of {estimate['seconds_per_step']:.2f} s "
            f"(batch {estimate['batch_size']}, {estimate['train_pairs']:,} training pairs, "
            f"{estimate['half_size']} px)"
        )
        if estimate["encoder_steps"]:
            text += f", then {estimate['encoder_steps']:,} encoder steps of {estimate['seconds_per_encoder_step']:.2f} s"
        self.estimate_label.setText(text + ". Measured just now; drawing while it trains slows it down.")

    @Slot(int, str)
    def _estimate_failed(self, request: int, message: str) -> None:
        if request == self.request:
            self.estimate_label.setText(f"<span style='color:#c0392b'>Cannot train with these settings: {message}</span>")


# -- 4. training ------------------------------------------------------------------------------


class TrainPage(QWizardPage):
    def __init__(self, wizard: TrainingWizard) -> None:
        super().__init__()
        self.wiz = wizard
        self.result: dict[str, Any] | None = None
        self.running = False
        self.step = 0  # optimiser steps done, as last reported
        self.job = 0  # the backend's number for the training this page started; others are ignored
        self.setTitle("Training")
        self.setSubTitle("The samples below are drawn by the model after every epoch. You can keep drawing meanwhile.")
        self.status = QLabel("Starting…")
        self.status.setWordWrap(True)
        self.bar = QProgressBar()
        self.eta = QLabel("")
        self.plot = pg.PlotWidget()
        self.legend = self.plot.addLegend(offset=(-10, 10))
        self._theme_plot()
        self.plot.setMinimumHeight(180)
        self.plot.setLabel("bottom", "step")
        self.plot.setLabel("left", "loss")
        self.plot.showGrid(x=True, y=True, alpha=0.2)
        # a long run has tens of thousands of steps: draw what the plot's width can show
        self.plot.setDownsampling(auto=True, mode="peak")
        self.plot.setClipToView(True)
        self.curves: dict[str, Any] = {}  # one per loss the engine plots, made when its training starts
        self.series: dict[str, tuple[list[float], list[float]]] = {}
        self.sample = QLabel("No samples yet: the first come after one epoch.")
        self.sample.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.sample.setMinimumSize(320, 180)
        self.sample_path = ""
        self.sample_image: QImage | None = None
        self.sample_columns = QLabel("")  # what the grid's columns show, from the engine
        self.sample_columns.setWordWrap(True)
        self.sample_columns.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.pause_button = QPushButton(qta.icon("fa5s.pause"), "Pause")
        self.pause_button.setCheckable(True)
        self.pause_button.toggled.connect(self._pause)
        self.stop_button = QPushButton(qta.icon("fa5s.stop"), "Stop and save")
        self.stop_button.clicked.connect(self.stop)
        self.continue_button = QPushButton(qta.icon("fa5s.play"), "Continue training")
        self.continue_button.clicked.connect(lambda: self.wiz.start_training(resume=True))
        self.continue_button.setVisible(False)
        self.settings_button = QPushButton(qta.icon("fa5s.arrow-left"), "Change the settings")
        self.settings_button.clicked.connect(self.wiz.start_over)
        self.settings_button.setVisible(False)
        buttons = QHBoxLayout()
        buttons.addWidget(self.pause_button)
        buttons.addWidget(self.stop_button)
        buttons.addWidget(self.continue_button)
        buttons.addWidget(self.settings_button)
        buttons.addStretch(1)
        buttons.addWidget(self.eta)
        middle = QHBoxLayout()
        middle.addWidget(self.plot, 3)
        sample_column = QVBoxLayout()
        sample_column.addWidget(self.sample, 1)
        sample_column.addWidget(self.sample_columns)
        middle.addLayout(sample_column, 2)
        layout = QVBoxLayout(self)
        layout.addWidget(self.status)
        layout.addWidget(self.bar)
        layout.addLayout(middle, 1)
        layout.addLayout(buttons)
        backend = wizard.backend
        backend.loading.connect(self._loading)
        backend.started.connect(self._started)
        backend.progress.connect(self._progress)
        backend.sample.connect(self._sample)
        backend.ended.connect(self._ended)

    def _set_curves(self, labels: dict[str, str]) -> None:
        """One curve per loss the engine plots, by name, with its label (its scores, D's probabilities, are left out)."""
        for curve in self.curves.values():
            self.plot.removeItem(curve)
        self.curves = {
            name: self.plot.plot([], [], pen=pg.mkPen(LOSS_COLOURS[i % len(LOSS_COLOURS)], width=1.5), name=label)
            for i, (name, label) in enumerate(labels.items())
        }
        self.series = {name: ([], []) for name in self.curves}

    def _theme_plot(self) -> None:
        """The plot in the window's colours (pyqtgraph draws white on black by default)."""
        palette = self.palette()
        self.plot.setBackground(palette.color(QPalette.ColorRole.Base))
        text = palette.color(QPalette.ColorRole.Text)
        for name in ("bottom", "left"):
            axis = self.plot.getAxis(name)
            axis.setPen(pg.mkPen(text))
            axis.setTextPen(pg.mkPen(text))
        self.legend.setLabelTextColor(text)

    def changeEvent(self, event: QEvent) -> None:  # noqa: N802
        super().changeEvent(event)
        if event.type() == QEvent.Type.PaletteChange:
            self._theme_plot()

    def initializePage(self) -> None:  # noqa: N802
        if not self.running and self.result is None:
            self.wiz.start_training(resume=self.wiz.resuming)

    def begin(self) -> None:
        self.running = True
        self.result = None
        self.step = 0
        self.pause_button.setChecked(False)
        self.pause_button.setEnabled(True)
        self.stop_button.setEnabled(True)
        self.continue_button.setVisible(False)
        self.settings_button.setVisible(False)
        self.status.setText("Reading the pictures…")
        self.completeChanged.emit()

    @Slot(int, int, int)
    def _loading(self, job: int, done: int, total: int) -> None:
        if job != self.job:
            return
        self.status.setText(f"Reading the pictures: {done} of {total}")
        self.bar.setRange(0, max(1, total))
        self.bar.setValue(done)

    @Slot(dict)
    def _started(self, info: dict[str, Any]) -> None:
        if info["job"] != self.job:
            return
        self.status.setText(f"Training: {info['message']}.")
        self.step = info["step"]
        self.bar.setRange(0, max(1, info["steps"]))
        self.bar.setValue(info["step"])
        self._set_curves(info.get("loss_labels") or {})
        columns = info.get("sample_columns") or ""
        self.sample_columns.setText(f"Samples, left to right: {columns}" if columns else "")
        self._add_rows(info.get("history") or [])
        self._redraw()

    def _add_rows(self, rows: list[dict[str, float]]) -> None:
        for row in rows:
            for key, (xs, ys) in self.series.items():
                if key in row:
                    xs.append(row["step"])
                    ys.append(row[key])

    def _redraw(self) -> None:
        for key, curve in self.curves.items():
            curve.setData(*self.series[key])

    @Slot(dict)
    def _progress(self, info: dict[str, Any]) -> None:
        if info["job"] != self.job:
            return
        self._add_rows(info["rows"])
        self._redraw()
        self.step = info["step"]
        self.bar.setRange(0, max(1, info["steps"]))
        self.bar.setValue(info["step"])
        if info["phase"] == "encoder":  # the Contextual GAN's second phase: no epochs, steps
            stage = f"Teaching the encoder to read sketches: step {info['step']:,} of {info['steps']:,}"
        else:  # every engine's first phase ("gan", "train") counts epochs
            stage = f"Epoch {info['epoch']} of {info['epochs']}, step {info['step']:,} of {info['steps']:,}"
        held = {"paused": " (paused)", "yielding": " (waiting while your drawing is completed)"}.get(info["held"], "")
        self.status.setText(stage + held)
        eta = f"about {duration(info['eta'])} left" if info.get("eta") is not None else ""
        self.eta.setText(f"{duration(info['elapsed'])} so far" + (f", {eta}" if eta else ""))

    @Slot(int, str, object)
    def _sample(self, job: int, path: str, pixels: Any) -> None:
        if job != self.job:
            return
        self.sample_path, self.sample_image = path, array_to_qimage(pixels)
        self._show_sample()

    def _show_sample(self) -> None:
        if self.sample_image is not None and not self.sample_image.isNull():
            self.sample.setPixmap(QPixmap.fromImage(self.sample_image).scaled(
                self.sample.size(), Qt.AspectRatioMode.KeepAspectRatio, Qt.TransformationMode.SmoothTransformation))
            self.sample.setToolTip(self.sample_path)

    def resizeEvent(self, event: Any) -> None:  # noqa: N802
        super().resizeEvent(event)
        if self.sample_path:
            self._show_sample()

    def _pause(self, paused: bool) -> None:
        if paused:
            self.wiz.backend.pause()
        else:
            self.wiz.backend.resume()
        self.pause_button.setText("Resume" if paused else "Pause")
        self.pause_button.setIcon(qta.icon("fa5s.play" if paused else "fa5s.pause"))

    def stop(self) -> None:
        if self.running:
            self.status.setText("Saving and stopping…")
            self.stop_button.setEnabled(False)
            self.wiz.backend.cancel()

    @Slot(dict)
    def _ended(self, result: dict[str, Any]) -> None:
        if result["job"] != self.job:
            return
        self.running = False
        self.pause_button.setEnabled(False)
        self.stop_button.setEnabled(False)
        if result["status"] == "done":
            self.result = result
            self.bar.setValue(self.bar.maximum())
            self.status.setText(f"<b>Done.</b> {result['message']} Next: name your preset.")
            self.eta.setText("")
        else:
            colour = "#c0392b" if result["status"] == "failed" else "#b9770e"
            self.status.setText(f"<span style='color:{colour}'>{result['message']}</span>")
            self.continue_button.setVisible(Path(result.get("run", ""), "state.safetensors").exists())
            self.settings_button.setVisible(True)  # e.g. the pictures moved: choose them, or other settings
        self.completeChanged.emit()
        self.wiz.training_ended(result)

    def isComplete(self) -> bool:  # noqa: N802
        return self.result is not None


# -- 5. finish --------------------------------------------------------------------------------


class FinishPage(QWizardPage):
    def __init__(self, wizard: TrainingWizard) -> None:
        super().__init__()
        self.wiz = wizard
        self.saved: dict[str, Any] | None = None
        self.saving = False
        self.setTitle("Your new preset")
        self.setSubTitle("Name it and pick its picture; it appears in the main window's presets at once.")
        self.name = QLineEdit()
        self.name.setMaxLength(80)
        self.name.textChanged.connect(self.completeChanged)
        self.thumbnails = QListWidget()
        self.thumbnails.setViewMode(QListWidget.ViewMode.IconMode)
        self.thumbnails.setIconSize(QSize(72, 72))
        self.thumbnails.setFlow(QListWidget.Flow.LeftToRight)
        self.thumbnails.setFixedHeight(110)
        self.status = QLabel("")
        self.status.setWordWrap(True)
        form = QFormLayout()
        form.addRow("Name:", self.name)
        form.addRow("Picture:", self.thumbnails)
        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addWidget(self.status)
        layout.addStretch(1)
        wizard.backend.preset_saved.connect(self._saved)
        wizard.backend.preset_failed.connect(self._failed)

    def initializePage(self) -> None:  # noqa: N802
        result = self.wiz.train_page.result or {}
        if not self.name.text():
            self.name.setText(self.wiz.suggested_name())
        self.thumbnails.clear()
        pictures = result.get("thumbnails")
        for index, picture in enumerate(pictures if pictures is not None else []):
            item = QListWidgetItem(QIcon(_pixmap(picture)), "")
            item.setData(Qt.ItemDataRole.UserRole, index)
            self.thumbnails.addItem(item)
        if self.thumbnails.count():
            self.thumbnails.setCurrentRow(0)
        if result:
            self.status.setText(f"{result.get('message', '')} The model is {result.get('model', '')}; the preset keeps its own copy.")

    def isComplete(self) -> bool:  # noqa: N802
        return bool(self.name.text().strip()) and not self.saving

    def validatePage(self) -> bool:  # noqa: N802
        if self.saved is not None:
            return True
        if self.saving:
            return False
        self.saving = True
        self.completeChanged.emit()
        result = self.wiz.train_page.result or {}
        pictures = result.get("thumbnails")
        row = self.thumbnails.currentRow()
        thumbnail = pictures[row] if pictures is not None and 0 <= row < len(pictures) else None
        self.status.setText("Saving…")
        self.wiz.backend.save_preset({
            "name": self.name.text(), "model": result["model"], "style": result.get("style", "unknown"),
            "base_preset": result.get("base_preset"), "thumbnail": thumbnail, "run": result.get("run"),
            "description": f"Trained on {self.wiz.data_description()}.",
        })
        return False  # the wizard closes when the preset is saved

    @Slot(dict)
    def _saved(self, preset: dict[str, Any]) -> None:
        if not self.saving:
            return  # another wizard's preset
        self.saving = False
        self.saved = preset
        self.status.setText(f"Saved “{preset['name']}”.")
        self.wiz.preset_created.emit(preset["id"])
        self.wiz.accept()

    @Slot(str)
    def _failed(self, message: str) -> None:
        if not self.saving:
            return
        self.saving = False
        self.status.setText(f"<span style='color:#c0392b'>{message}</span>")
        self.completeChanged.emit()


# -- the wizard -------------------------------------------------------------------------------


class TrainingWizard(QWizard):
    preset_created = Signal(str)  # the new preset's id

    def __init__(self, backend: Any, runs_root: Path, current_preset: str = "", parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.backend = backend
        self.current_preset = current_preset  # offered first for fine-tuning
        self.runs_root = Path(runs_root)
        self.resuming = False
        self._leaving = False  # the user agreed to stop a running training
        self._run_folder = ""
        self.setWindowTitle("Train a preset")
        self.setWizardStyle(QWizard.WizardStyle.ModernStyle)
        self.setOption(QWizard.WizardOption.NoBackButtonOnLastPage, True)
        self.setOption(QWizard.WizardOption.NoCancelButtonOnLastPage, False)
        self.setWindowModality(Qt.WindowModality.NonModal)  # the app stays usable while it trains
        self.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        self.data_page = DataPage(self)
        self.style_page = StylePage(self)
        self.model_page = ModelPage(self)
        self.train_page = TrainPage(self)
        self.finish_page = FinishPage(self)
        for page_id, page in enumerate((self.data_page, self.style_page, self.model_page, self.train_page, self.finish_page)):
            self.setPage(page_id, page)
        self.setStartId(DATA)
        self.resize(900, 680)

    def run_folder(self) -> str:
        if not self._run_folder:
            source = self.data_page.report["folders"][-1] if self.data_page.report else "run"
            stem = "".join(ch if ch.isalnum() else "-" for ch in Path(source).name.lower()).strip("-")[:30] or "run"
            self._run_folder = str(self.runs_root / f"{stem}-{time.strftime('%Y%m%d-%H%M%S')}")
        return self._run_folder

    def suggested_name(self) -> str:
        """After the pictures the model was trained on (a continued run's own, not the page's)."""
        source = (self.train_page.result or {}).get("source") or self.run_folder()
        return Path(source).name.replace("_", " ").replace("-", " ").strip().capitalize() or "My preset"

    def data_description(self) -> str:
        result = self.train_page.result or {}
        return f"{result.get('count', 'the')} pictures from {Path(result.get('source') or self.run_folder()).name}"

    def forget_run_folder(self) -> None:
        """The data changed: a new run folder will be named after it."""
        if not self.resuming:
            self._run_folder = ""

    def start_over(self) -> None:
        """Back to the first page with every choice kept (a training that never began)."""
        self.resuming = False
        self._run_folder = ""
        self.setStartId(DATA)
        self.restart()

    def continue_run(self, folder: str) -> None:
        """Jump to the training page and continue the run saved in ``folder``."""
        self.resuming = True
        self._run_folder = folder
        self.setStartId(TRAIN)
        self.restart()

    def start_training(self, resume: bool) -> None:
        self.train_page.begin()
        if resume:
            self.resuming = True
            self.train_page.job = self.backend.start(
                {"run": self.run_folder(), "resume": True, "device": self.model_page.device.currentData() or "auto"})
            return
        spec = self.data_page.spec()
        if spec["kind"] == "folder":
            spec.update(style=self.style_page.style_key(), style_params=self.style_page.params())
        self.train_page.job = self.backend.start({**self.model_page.job(), "run": self.run_folder(), "spec": spec})

    def training_ended(self, result: dict[str, Any]) -> None:
        if result["status"] == "done":
            self.resuming = False

    def _may_leave(self) -> bool:
        """True when nothing would be lost, or the user agreed to what would be."""
        if self._leaving:
            return True
        if self.finish_page.saving:
            return False  # a moment: the preset is being written
        if self.train_page.running:
            title, text = "Stop training?", "The training is saved and stops. You can continue it later from this wizard."
        elif self.train_page.result is not None and self.finish_page.saved is None:
            title = "Leave without a preset?"
            text = ("The trained model is kept in the training folder, and this wizard lists it "
                    "on its first page, to make the preset later.")
        else:
            return True
        answer = QMessageBox.question(self, title, text, QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.No)
        if answer != QMessageBox.StandardButton.Yes:
            return False
        self._leaving = True
        if self.train_page.running:
            self.backend.cancel()
        return True

    def reject(self) -> None:
        if self._may_leave():
            super().reject()

    def closeEvent(self, event: QCloseEvent) -> None:  # noqa: N802
        if not self._may_leave():
            event.ignore()
            return
        super().closeEvent(event)
