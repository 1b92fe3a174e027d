"""Render a screenshot of each training wizard page from the real app:
python3 docs/wizard_screenshots.py FOLDER [--preset ID] [--pages N]

FOLDER is a folder of pictures (the docs used 700 renders from the npm package
@lobehub/fluent-emoji-3d). The wizard fine-tunes the preset (default 3d-pix2pix) on it
for two epochs on the CPU, in a throw-away data folder, and each page is saved to
docs/wizard-N-NAME.png as a user would see it; ``--pages 3`` stops after the model page.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from PySide6.QtCore import QSettings  # noqa: E402
from PySide6.QtWidgets import QApplication, QWizard  # noqa: E402
from screenshots import wait_until  # noqa: E402

from sketchapp.app import App, CoreServices  # noqa: E402
from sketchapp.ui.main_window import MainWindow  # noqa: E402

DOCS = Path(__file__).resolve().parent


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folder", type=Path)
    parser.add_argument("--preset", default="3d-pix2pix")
    parser.add_argument("--pages", type=int, default=5, help="stop after this page (default 5: all)")
    args = parser.parse_args(argv[1:])
    if not args.folder.is_dir():
        parser.error(f"{args.folder} is not a folder")
    folder = args.folder.resolve()
    scratch = Path(tempfile.mkdtemp())
    os.environ["SKETCHAPP_DATA_DIR"] = str(scratch / "data")
    app = QApplication(argv[:1])
    settings = QSettings(str(scratch / "s.ini"), QSettings.Format.IniFormat)
    settings.setValue("preset", args.preset)
    window = MainWindow(CoreServices(), settings, scratch / "state")
    window.show()
    runner = App(window)
    wait_until(lambda: "Preset" in window.preset_label.text())
    runner.open_training()
    wizard = runner.wizard

    def shoot(name: str) -> None:
        wait_until(lambda: True, 0.3)
        path = DOCS / f"wizard-{name}.png"
        wizard.grab().save(str(path))
        print(f"wrote {path}")

    data = wizard.data_page
    data.first.edit.setText(str(folder))
    data.first.changed.emit()
    wait_until(lambda: data.report is not None)
    shoot("1-data")
    wizard.next()
    style = wizard.style_page
    wait_until(lambda: style.shown >= 1)
    shoot("2-style")
    wizard.next()
    model = wizard.model_page
    model.epochs.setValue(2)
    wait_until(lambda: model.estimate is not None, 300)
    shoot("3-model")
    if args.pages <= 3:
        wizard.close()
        window.close()
        runner.stop()
        return 0
    wizard.next()
    train = wizard.train_page
    wait_until(lambda: bool(train.sample_path) and train.step > train.bar.maximum() * 0.6, 1800)
    shoot("4-training")
    wait_until(lambda: train.result is not None, 3600)
    wizard.next()
    wait_until(lambda: wizard.finish_page.thumbnails.count() > 0)
    shoot("5-finish")
    wizard.button(QWizard.WizardButton.FinishButton).click()
    wait_until(lambda: runner.wizard is None)
    wait_until(lambda: "emoji renders" in window.preset_label.text().lower(), 60)
    window.close()
    runner.stop()
    del app
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
