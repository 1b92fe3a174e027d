"""The desktop bundle (packaging/bundle): the frozen app's own code paths, and a real build.

The build (``bash packaging/bundle/build.sh``, about ten minutes on two cores) is marked
slow. Its bundle is moved away from where it was built and run from a folder outside the
source tree, with no PYTHONPATH and a home of its own: it must open the window and
complete a drawing (``--self-test``) from its own copy of the package, and complete a PNG
and an SVG sketch from the command line (the SVG drawn by the bundle's own executable
as its child process).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageDraw

from sketchapp.core import svg
from tests.test_selftest import assert_self_test_pictures, self_test_env

ROOT = Path(__file__).resolve().parents[1]
BUILD_SECONDS = 3600
SKETCH_SVG = (
    '<svg xmlns="http://www.w3.org/2000/svg" width="256" height="256" viewBox="0 0 256 256">'
    '<rect width="256" height="256" fill="white"/>'
    '<circle cx="128" cy="128" r="90" fill="none" stroke="black" stroke-width="5"/>'
    '<circle cx="98" cy="105" r="10" fill="none" stroke="black" stroke-width="5"/>'
    '<circle cx="158" cy="105" r="10" fill="none" stroke="black" stroke-width="5"/>'
    '<path d="M 83 150 Q 128 195 173 150" fill="none" stroke="black" stroke-width="5"/>'
    "</svg>"
)


def test_a_frozen_app_draws_svg_with_its_own_executable(tmp_path, monkeypatch):
    """Frozen, sys.executable is the app: the child is the app with --svg-child (here a stand-in that runs sketchapp)."""
    app = tmp_path / "sketchapp"
    app.write_text(f'#!/bin/sh\nexec "{sys.executable}" -m sketchapp "$@"\n')
    app.chmod(0o755)
    monkeypatch.setattr(sys, "frozen", True, raising=False)
    monkeypatch.setattr(sys, "executable", str(app))
    monkeypatch.chdir(ROOT)
    pixels = svg.render_svg(SKETCH_SVG, "face.svg", 128)
    assert pixels.shape == (128, 128, 4)
    assert (pixels[..., :3] < 100).any() and (pixels[..., :3] > 200).any()  # black lines on white paper


def sketch_png(path: Path) -> Path:
    picture = Image.new("RGB", (256, 256), "white")
    pen = ImageDraw.Draw(picture)
    pen.ellipse((38, 38, 218, 218), outline="black", width=5)
    pen.arc((83, 105, 173, 195), 20, 160, fill="black", width=5)
    picture.save(path)
    return path


@pytest.fixture(scope="module")
def bundle(tmp_path_factory) -> Path:
    """The bundle built by build.sh, then moved to another folder (it must not depend on where it was made)."""
    work = tmp_path_factory.mktemp("bundle-build")
    env = {**os.environ, "BUNDLE_WORKDIR": str(work / "work"), "PYTHON": sys.executable}
    began = time.perf_counter()
    done = subprocess.run(["bash", str(ROOT / "packaging" / "bundle" / "build.sh"), str(work / "dist")],
                          env=env, capture_output=True, text=True, timeout=BUILD_SECONDS, check=False)
    assert done.returncode == 0, (done.stdout + done.stderr)[-4000:]
    print(f"built in {time.perf_counter() - began:.0f} s: {done.stdout.strip().splitlines()[-2]}")
    moved = tmp_path_factory.mktemp("bundle-elsewhere") / "SketchApp"
    shutil.move(str(work / "dist" / "SketchApp"), moved)
    return moved


def bundle_env(home: Path) -> dict[str, str]:
    """No PYTHONPATH, PYTHONHOME or virtual environment: the bundle must carry all it imports."""
    env = self_test_env(home)
    for key in ("PYTHONPATH", "PYTHONHOME", "PYTHONSTARTUP", "PYTHONSAFEPATH", "VIRTUAL_ENV"):
        env.pop(key, None)
    return env


@pytest.mark.slow
def test_the_bundle_opens_the_window_and_completes_a_drawing_without_the_source_tree(bundle, tmp_path):
    home, out = tmp_path / "home", tmp_path / "out"
    home.mkdir()
    done = subprocess.run([str(bundle / "sketchapp"), "--self-test", str(out)], cwd=tmp_path, env=bundle_env(home),
                          capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, (done.stdout + done.stderr)[-3000:]
    print(done.stdout)
    package = next(line for line in done.stdout.splitlines() if line.startswith("self-test: sketchapp "))
    models = next(line for line in done.stdout.splitlines() if line.startswith("self-test: bundled models in "))
    assert "(frozen: yes)" in package
    found = Path(package.split(" from ", 1)[1].rsplit(" (frozen", 1)[0])
    assert found.is_relative_to(bundle) and not found.is_relative_to(ROOT)
    assert Path(models.rsplit(" in ", 1)[1]).is_relative_to(bundle)
    assert_self_test_pictures(out)
    assert not any(home.rglob("*SketchApp*")), "the self-test wrote settings or state into the home folder"


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["png", "svg"])
def test_the_bundle_completes_a_sketch_from_the_command_line(bundle, tmp_path, kind):
    home = tmp_path / "home"
    home.mkdir()
    if kind == "png":
        sketch = sketch_png(tmp_path / "sketch.png")
    else:  # drawn by the bundle's executable itself, started as its --svg-child
        sketch = tmp_path / "sketch.svg"
        sketch.write_text(SKETCH_SVG)
    done = subprocess.run([str(bundle / "sketchapp"), "complete", str(sketch), "-o", str(tmp_path / "out.png"), "-q"],
                          cwd=tmp_path, env=bundle_env(home), capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, (done.stdout + done.stderr)[-3000:]
    result = np.asarray(Image.open(tmp_path / "out.png").convert("RGB"))
    assert result.shape[0] >= 128 and result.std() > 10
    assert Image.open(tmp_path / "out.png").text.get("model")  # the PNG names the model that made it


@pytest.mark.slow
def test_the_bundle_lists_its_presets_and_refuses_a_hostile_svg(bundle, tmp_path):
    home = tmp_path / "home"
    home.mkdir()
    run = [str(bundle / "sketchapp")]
    listed = subprocess.run([*run, "presets"], cwd=tmp_path, env=bundle_env(home), capture_output=True, text=True,
                            timeout=120, check=False)
    assert listed.returncode == 0 and "emoji-pix2pix" in listed.stdout, listed.stderr[-2000:]
    bomb = tmp_path / "deep.svg"
    bomb.write_text('<svg xmlns="http://www.w3.org/2000/svg">' + "<g>" * 500 + "</g>" * 500 + "</svg>")
    refused = subprocess.run([*run, "complete", str(bomb), "-o", str(tmp_path / "never.png")], cwd=tmp_path,
                             env=bundle_env(home), capture_output=True, text=True, timeout=120, check=False)
    assert refused.returncode == 1 and "nest more than" in refused.stderr
    assert not (tmp_path / "never.png").exists()
