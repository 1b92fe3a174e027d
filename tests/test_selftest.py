"""``sketchapp --self-test``: the real app, unfrozen, completes a drawing with the shipped default preset and opens the training wizard."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
from PIL import Image

import sketchapp


def self_test_env(home: Path) -> dict[str, str]:
    """An offscreen display and a home of its own, so nothing of the user's is read even by mistake."""
    env = {key: value for key, value in os.environ.items() if not key.startswith(("SKETCHAPP_", "XDG_"))}
    env.update(QT_QPA_PLATFORM="offscreen", HOME=str(home), XDG_CONFIG_HOME=str(home / ".config"),
               XDG_DATA_HOME=str(home / ".local" / "share"), XDG_STATE_HOME=str(home / ".local" / "state"))
    return env


def assert_self_test_pictures(out: Path) -> None:
    for name in ("window.png", "wizard.png"):  # the main window, the training wizard opened after it
        window = Image.open(out / name)
        assert window.width > 400 and window.height > 300 and np.asarray(window.convert("L")).std() > 5
    result = np.asarray(Image.open(out / "result.png").convert("RGB"))
    assert result.shape[0] >= 128 and result.std() > 10  # a picture, not a blank
    # the face is coloured (the emoji preset fills it), not only the sketch's black lines on white
    assert (np.ptp(result.astype(int), axis=2) > 60).mean() > 0.05


def test_self_test_completes_a_drawing_and_saves_the_window_and_the_result(tmp_path):
    out, home = tmp_path / "out", tmp_path / "home"
    home.mkdir()
    done = subprocess.run(
        [sys.executable, "-m", "sketchapp", "--self-test", str(out)],
        cwd=tmp_path, env=self_test_env(home), capture_output=True, text=True, timeout=180, check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert f"from {sketchapp.__file__}" in done.stdout
    for name in ("window shown", "window painted", "model loaded", "first completion", "training wizard shown"):
        assert f"self-test: {name} after " in done.stdout
    assert_self_test_pictures(out)
    assert not any(home.rglob("*")), "the self-test wrote into the home folder"  # temporary settings and state only


def test_self_test_fails_with_one_line_when_it_cannot_finish_in_time(tmp_path):
    home = tmp_path / "home"
    home.mkdir()
    done = subprocess.run(
        [sys.executable, "-m", "sketchapp", "--self-test", str(tmp_path / "out"), "--timeout", "0"],
        cwd=tmp_path, env=self_test_env(home), capture_output=True, text=True, timeout=120, check=False,
    )
    assert done.returncode == 1
    reason = [line for line in done.stderr.splitlines() if line.startswith("sketchapp: self-test failed:")]
    assert reason and "no final completion within 0 s" in reason[0]
    assert not (tmp_path / "out" / "result.png").exists()
