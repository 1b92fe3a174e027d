"""`sketchapp data` and `sketchapp train`: a user's folder in, a model out; Ctrl-C, kill and resume."""

from __future__ import annotations

import csv
import json
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from sketchapp.cli import main
from sketchapp.core.checkpoint import read_metadata
from sketchapp.core.engines.contextual.model import load_model

TINY = ["--size", "16", "--gf", "8", "--df", "8", "--ef", "8", "--batch-size", "8", "--encoder-steps", "2", "--threads", "1"]


@pytest.fixture()
def photos(tmp_path: Path) -> Path:
    folder = tmp_path / "photos"
    folder.mkdir()
    rng = np.random.default_rng(0)
    for i in range(24):
        picture = np.full((40, 40, 3), 255, np.uint8)
        y, x = rng.integers(8, 32, 2)
        picture[y - 6 : y + 6, x - 6 : x + 6] = rng.integers(0, 200, 3)
        Image.fromarray(picture).save(folder / f"photo{i:02d}.jpg")
    (folder / "broken.jpg").write_bytes(b"not really a jpeg")
    return folder


def run_cli(*args: object, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "sketchapp", *map(str, args)], capture_output=True, text=True, timeout=timeout
    )


def test_data_folder_builds_a_data_set_and_lists_skipped_files(tmp_path, photos, capsys):
    assert main(["data", "folder", str(photos), str(tmp_path / "built"), "--size", "16", "--style", "pencil"]) == 0
    out, err = capsys.readouterr()
    assert "wrote 24 pairs" in out and "broken.jpg" in err
    manifest = json.loads((tmp_path / "built" / "dataset.json").read_text())
    assert manifest["sketch_style"] == "pencil" and len(manifest["splits"]["test"]) >= 1
    with pytest.raises(SystemExit) as refused:  # never writes over a data set
        main(["data", "folder", str(photos), str(tmp_path / "built")])
    assert refused.value.code == 2


def test_train_on_a_folder_then_complete_with_the_result(tmp_path, photos, capsys):
    run = tmp_path / "run"
    assert main(["train", str(run), "--data", str(photos), "--epochs", "2", *TINY]) == 0
    err = capsys.readouterr().err
    assert "broken.jpg" in err and "done:" in err
    model = load_model(run / "model.safetensors")
    assert model.config.half_size == 16 and model.encoder is not None and model.sketch_style == "xdog"
    settings = json.loads((run / "settings.json").read_text())
    assert settings["data"]["spec"]["folder"] == str(photos.resolve())
    result = tmp_path / "out.png"
    assert main(["complete", str(photos / "photo00.jpg"), "-o", str(result), "--model", str(run / "model.safetensors"),
                 "--iterations", "3", "--candidates", "2", "-q"]) == 0
    assert Image.open(result).size == (16, 16)


def test_paired_and_side_by_side_training(tmp_path, photos):
    sketches = tmp_path / "sketches"
    sketches.mkdir()
    for path in sorted(photos.glob("photo*.jpg"))[:12]:
        Image.open(path).convert("L").save(sketches / f"{path.stem}.png")
    assert main(["train", str(tmp_path / "a"), "--sketches", str(sketches), "--images", str(photos), "--epochs", "1", "-q", *TINY]) == 0
    assert load_model(tmp_path / "a" / "model.safetensors").sketch_style == "paired"
    side = tmp_path / "side"
    side.mkdir()
    for i in range(10):
        Image.fromarray(np.concatenate([np.zeros((16, 16, 3), np.uint8), np.full((16, 16, 3), i * 20, np.uint8)], 1)).save(side / f"{i}.png")
    assert main(["train", str(tmp_path / "b"), "--side-by-side", str(side), "--sketch-side", "right", "--epochs", "1", "-q", *TINY]) == 0


def _wait_for(path: Path, process: subprocess.Popen, seconds: float = 90) -> None:
    deadline = time.monotonic() + seconds
    while not path.exists():
        assert process.poll() is None, process.communicate()[1][-2000:]
        assert time.monotonic() < deadline, f"{path} never appeared"
        time.sleep(0.05)


def _start(run: Path, photos: Path, epochs: int) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "sketchapp", "train", str(run), "--data", str(photos), "--epochs", str(epochs), *TINY],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )


def test_ctrl_c_saves_and_resume_continues(tmp_path, photos):
    run = tmp_path / "run"
    process = _start(run, photos, 400)
    _wait_for(run / "samples" / "epoch-001.png", process)
    process.send_signal(signal.SIGINT)
    _, err = process.communicate(timeout=120)
    assert process.returncode == 130, err[-2000:]
    assert "--resume" in err and "Traceback" not in err
    stopped_at = json.loads(_state_meta(run))["step"]
    assert stopped_at >= 2

    resumed = subprocess.Popen(
        [sys.executable, "-m", "sketchapp", "train", str(run), "--resume", "-q"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    deadline = time.monotonic() + 120
    while json.loads(_state_meta(run))["step"] <= stopped_at:  # it trains on from where it stopped
        assert resumed.poll() is None and time.monotonic() < deadline
        time.sleep(0.05)
    resumed.send_signal(signal.SIGINT)
    resumed.communicate(timeout=120)
    assert resumed.returncode == 130
    with open(run / "losses.csv", newline="") as handle:
        steps = [int(row["step"]) for row in csv.DictReader(handle)]
    assert steps == list(range(1, len(steps) + 1)) and steps[-1] > stopped_at


def test_a_killed_run_resumes(tmp_path, photos):
    run = tmp_path / "run"
    process = _start(run, photos, 8)
    _wait_for(run / "samples" / "epoch-002.png", process)
    process.kill()
    process.communicate(timeout=30)
    finished = run_cli("train", run, "--resume", "-q", timeout=240)
    assert finished.returncode == 0, finished.stderr[-2000:]
    with open(run / "losses.csv", newline="") as handle:
        steps = [int(row["step"]) for row in csv.DictReader(handle)]
    assert steps == list(range(1, len(steps) + 1)) and steps[-1] == 8 * 2 + 2


def _state_meta(run: Path) -> str:
    data = (run / "state.safetensors").read_bytes()
    size = int.from_bytes(data[:8], "little")
    return json.loads(data[8 : 8 + size])["__metadata__"]["sketchapp"]


def test_bad_training_input_is_one_line_and_nothing_is_lost(tmp_path, photos, capsys):
    (tmp_path / "empty").mkdir()
    assert main(["train", str(tmp_path / "r"), "--data", str(tmp_path / "empty"), *TINY]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "no image files" in err
    assert main(["train", str(tmp_path / "nothing"), "--resume"]) == 1
    assert "not a training run folder" in capsys.readouterr().err
    with pytest.raises(SystemExit) as usage:
        main(["train", str(tmp_path / "r"), "--resume", "--data", str(photos)])
    assert usage.value.code == 2
    with pytest.raises(SystemExit):
        main(["train", str(tmp_path / "r")])
    assert main(["train", str(tmp_path / "r"), "--data", str(photos), "--init-from", str(photos / "photo00.jpg"), *TINY]) == 1
    assert "not a SketchApp checkpoint" in capsys.readouterr().err


def test_a_second_run_into_the_same_folder_is_refused(tmp_path, photos, capsys):
    assert main(["train", str(tmp_path / "r"), "--data", str(photos), "--epochs", "1", "-q", *TINY]) == 0
    assert main(["train", str(tmp_path / "r"), "--data", str(photos), "--epochs", "1", "-q", *TINY]) == 1
    assert "already holds a training run" in capsys.readouterr().err


def test_fine_tuning_takes_the_base_models_networks(tmp_path, photos, capsys):
    base = tmp_path / "base"
    assert main(["train", str(base), "--data", str(photos), "--epochs", "1", "-q", *TINY]) == 0
    tuned = tmp_path / "tuned"
    assert main(["train", str(tuned), "--data", str(photos), "--epochs", "1", "--encoder-steps", "1", "--batch-size", "8",
                 "--init-from", str(base / "model.safetensors"), "-q"]) == 0  # no sizes given: the base's are used
    assert load_model(tuned / "model.safetensors").config == load_model(base / "model.safetensors").config


def test_training_recipe_options_reach_the_run_settings(tmp_path, photos, capsys):
    assert main(["train", str(tmp_path / "alone"), "--data", str(photos), "--judge-redrawn", *TINY]) == 1
    assert "judging redrawn pairs needs a reconstruction weight" in capsys.readouterr().err
    assert not (tmp_path / "alone").exists()
    run = tmp_path / "run"
    assert main(["train", str(tmp_path / "bold"), "--data", str(photos), "--line-jitter", "2", *TINY]) == 1
    assert "line jitter must be 0-1" in capsys.readouterr().err
    assert main(["train", str(run), "--data", str(photos), "--epochs", "1", "--recon", "20", "--judge-redrawn",
                 "--r1", "1", "--line-jitter", "0.5", "--ema", "0.99", "--diff-augment", "-q", *TINY]) == 0
    settings = json.loads((run / "settings.json").read_text())["settings"]
    assert settings["recon_weight"] == 20.0 and settings["judge_redrawn"] is True
    assert settings["r1_gamma"] == 1.0 and settings["line_jitter"] == 0.5 and settings["ema"] == 0.99
    assert settings["diff_augment"] is True
    with open(run / "losses.csv", newline="") as handle:
        assert all(row["r_loss"] for row in csv.DictReader(handle) if row["phase"] == "gan")


P2P = ["--engine", "pix2pix", "--size", "32", "--gf", "8", "--df", "8", "--batch-size", "4", "--threads", "1", "-q"]


def test_pix2pix_trains_from_paired_and_side_by_side_folders_and_a_fine_tune_keeps_its_recipe(tmp_path, photos, capsys):
    sketches = tmp_path / "sketches"
    sketches.mkdir()
    for path in sorted(photos.glob("photo*.jpg"))[:12]:
        Image.open(path).convert("L").save(sketches / f"{path.stem}.png")
    paired = tmp_path / "paired"
    assert main(["train", str(paired), "--sketches", str(sketches), "--images", str(photos), "--epochs", "1",
                 "--l1", "80", "--ssim", "50", *P2P]) == 0
    record = read_metadata(paired / "model.safetensors")
    assert record["engine"] == "pix2pix" and record["architecture"]["size"] == 32 and record["sketch_style"] == "paired"
    assert record["training"]["settings"]["ssim_weight"] == 50.0 and record["training"]["settings"]["l1_weight"] == 80.0
    with open(paired / "losses.csv", newline="") as handle:
        assert all(0 < float(row["g_ssim"]) <= 2 for row in csv.DictReader(handle))
    side = tmp_path / "side"
    side.mkdir()
    for i in range(10):
        Image.fromarray(np.concatenate([np.zeros((32, 32, 3), np.uint8), np.full((32, 32, 3), i * 20, np.uint8)], 1)).save(side / f"{i}.png")
    assert main(["train", str(tmp_path / "sbs"), "--side-by-side", str(side), "--sketch-side", "right", "--epochs", "1", *P2P]) == 0
    assert read_metadata(tmp_path / "sbs" / "model.safetensors")["engine"] == "pix2pix"
    tuned = tmp_path / "tuned"
    assert main(["train", str(tuned), "--sketches", str(sketches), "--images", str(photos), "--epochs", "1",
                 "--init-from", str(paired / "model.safetensors"), "--engine", "pix2pix", "--batch-size", "4", "-q"]) == 0
    tuned_record = read_metadata(tuned / "model.safetensors")
    assert tuned_record["architecture"] == record["architecture"]  # no sizes given: the base's networks
    assert tuned_record["training"]["settings"]["ssim_weight"] == 50.0  # and its recipe
    with pytest.raises(SystemExit) as refused:
        main(["train", str(tmp_path / "wrong"), "--data", str(photos), "--ssim", "10", *TINY])
    assert refused.value.code == 2 and "--ssim: not options of the contextual engine" in capsys.readouterr().err
    with pytest.raises(SystemExit) as refused:
        main(["train", str(tmp_path / "wrong"), "--data", str(photos), "--engine", "diffusion", *TINY])
    assert refused.value.code == 2 and "no engine 'diffusion' (choose from contextual, pix2pix, cyclegan)" in capsys.readouterr().err
    assert not (tmp_path / "wrong").exists()


def test_unpaired_folders_train_cyclegan_resume_and_complete_both_ways(tmp_path, photos, capsys):
    sketches = tmp_path / "drawings"
    sketches.mkdir()
    for i in range(5):
        picture = np.full((40, 40, 3), 255, np.uint8)
        picture[10 + i : 30, 12, :] = 0
        Image.fromarray(picture).save(sketches / f"line{i}.png")
    run = tmp_path / "cycle"
    small = ["--size", "32", "--gf", "8", "--df", "8", "--blocks", "2", "--batch-size", "4", "--threads", "1"]
    assert main(["train", str(run), "--unpaired", str(sketches), str(photos), "--epochs", "1", *small]) == 0
    err = capsys.readouterr().err
    assert "broken.jpg" in err and "domain A has only 5 pictures" in err and "done:" in err
    assert re.search(r"training on cpu, 1 threads: [45] sketches and 2\d pictures without pairs", err)  # less val and test
    settings = json.loads((run / "settings.json").read_text())
    assert settings["engine"] == "cyclegan" and settings["data"]["spec"]["kind"] == "unpaired"
    assert settings["settings"]["decay_epochs"] == 0  # the last half of one epoch
    assert main(["train", str(run), "--resume", "--epochs", "2", "-q"]) == 0
    with open(run / "losses.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert rows[-1]["epoch"] == "2" and float(rows[-1]["cycle_a"]) > 0
    result = tmp_path / "out.png"
    assert main(["complete", str(sketches / "line0.png"), "-o", str(result), "--model", str(run / "model.safetensors"), "-q"]) == 0
    assert Image.open(result).size == (32, 32)
    for wrong in (["--engine", "pix2pix"], ["--l1", "50"]):
        with pytest.raises(SystemExit) as refused:
            main(["train", str(tmp_path / "other"), "--unpaired", str(sketches), str(photos), *wrong])
        assert refused.value.code == 2
    assert "not options of the cyclegan engine" in capsys.readouterr().err


def _with_state_meta(run: Path, change) -> None:  # noqa: ANN001
    """Rewrite the run's state with its record changed by ``change(record)``, tensors kept."""
    from safetensors.torch import load_file, save_file

    tensors = load_file(str(run / "state.safetensors"))
    record = json.loads(_state_meta(run))
    change(record)
    save_file(tensors, str(run / "state.safetensors"), metadata={"sketchapp": json.dumps(record)})


def _with_tensor(run: Path, name_part: str) -> None:
    from safetensors.torch import load_file, save_file
    import torch

    tensors = load_file(str(run / "state.safetensors"))
    key = next(k for k in tensors if name_part in k)
    tensors[key] = torch.zeros(3, 1)
    save_file(tensors, str(run / "state.safetensors"), metadata={"sketchapp": _state_meta(run)})


EDITS = {
    "settings.json without settings": ("settings.json", lambda r: json.dumps({k: v for k, v in json.loads(r.read_text()).items() if k != "settings"}), "settings is missing"),
    "settings a list": ("settings.json", lambda r: json.dumps({**json.loads(r.read_text()), "settings": [1, 2]}), "settings is not a JSON object"),
    "settings.json without data": ("settings.json", lambda r: json.dumps({k: v for k, v in json.loads(r.read_text()).items() if k != "data"}), "data is missing"),
    "splits without train": ("splits.json", lambda r: json.dumps({"val": [], "test": []}), "splits.json: damaged"),
    "garbage losses.csv": ("losses.csv", lambda r: "step,phase\nseven,train\n", "losses.csv: damaged"),
    "no steps_per_epoch": (None, lambda m: m.pop("steps_per_epoch"), "no 'steps_per_epoch'"),
    "no optimizer_groups": (None, lambda m: m.pop("optimizer_groups"), "no 'optimizer_groups'"),
    "text step": (None, lambda m: m.update(step="many"), "training state is damaged"),
    "text elapsed": (None, lambda m: m.update(elapsed="long"), "training state is damaged"),
    "ema_updates a list": (None, lambda m: m.update(ema_updates=[1]), "training state is damaged"),
    "a tensor of the wrong shape": ("tensor", None, "training state is damaged"),
}


@pytest.mark.parametrize("edit", list(EDITS))
def test_resume_on_an_edited_run_folder_is_one_line_naming_the_file(tmp_path, photos, capsys, edit):
    import shutil

    base = tmp_path.parent / "edited-run-base"
    if not (base / "state.safetensors").exists():  # one small pix2pix run, copied for each edit
        assert main(["train", str(base), "--engine", "pix2pix", "--data", str(photos), "--size", "32", "--gf", "8",
                     "--df", "8", "--batch-size", "8", "--epochs", "1", "--threads", "1", "-q"]) == 0
    run = tmp_path / "run"
    shutil.copytree(base, run)
    file, change, expected = EDITS[edit]
    if file == "tensor":
        _with_tensor(run, "G.")
    elif file is None:
        _with_state_meta(run, change)
    else:
        (run / file).write_text(change(run / file))
    capsys.readouterr()
    assert main(["train", str(run), "--resume", "--epochs", "2", "-q"]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and expected in err and "Traceback" not in err, err


def test_a_folder_a_thousand_levels_deep_is_walked_and_built(tmp_path, capsys):
    import os

    source = folder = tmp_path / "deep"
    folder.mkdir()
    folders = []
    try:
        rng = np.random.default_rng(0)
        for level in range(1100):
            folder = folder / "d"
            folder.mkdir()
            folders.append(folder)
            if level % 300 == 0:
                for index in range(3):
                    picture = np.full((40, 40, 3), 255, np.uint8)
                    picture[10:30, 10:30] = rng.integers(0, 200, 3)
                    Image.fromarray(picture).save(folder / f"p{index}.png")
        os.symlink(source, source / "loop")  # a link back up is not followed round
        assert main(["data", "folder", str(source), str(tmp_path / "built"), "--size", "32"]) == 0
        assert "wrote 12 pairs" in capsys.readouterr().out
        assert main(["train", str(tmp_path / "run"), "--engine", "pix2pix", "--data", str(source), "--size", "32",
                     "--gf", "8", "--df", "8", "--epochs", "1", "--threads", "1", "-q"]) == 0
    finally:
        for folder in reversed(folders):  # removed bottom up here: pytest's own clean-up recurses
            for file in folder.glob("*.png"):
                file.unlink()
            folder.rmdir()


def test_an_interrupted_data_build_leaves_nothing_that_looks_like_data(tmp_path, photos):
    from sketchapp.core.data.datasets import DataError, load_folder, split_names, write_dataset

    pairs = load_folder(photos, 32, "xdog")

    def interrupt(done: int, total: int) -> None:
        if done == total // 2:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        write_dataset(tmp_path / "out", pairs, split_names(pairs.names), {"kind": "folder"}, progress=interrupt)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["photos"]  # no half-built set, no hidden leftovers
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "mine.txt").write_text("not a data set")
    with pytest.raises(DataError, match="not an empty folder"):
        write_dataset(tmp_path / "full", pairs, split_names(pairs.names), {"kind": "folder"})
    (tmp_path / "empty").mkdir()
    write_dataset(tmp_path / "empty", pairs, split_names(pairs.names), {"kind": "folder"})
    assert (tmp_path / "empty" / "dataset.json").is_file()


def test_sigterm_ends_a_command_as_ctrl_c_does_and_signals_after_it_are_ignored(tmp_path, sketch_png, tiny_checkpoint):
    out = tmp_path / "out.png"
    started = subprocess.Popen([sys.executable, "-m", "sketchapp", "complete", str(sketch_png), "-o", str(out), "--model",
                                str(tiny_checkpoint), "--iterations", "1000000", "-q"], stderr=subprocess.PIPE, text=True)
    time.sleep(1.0)  # the handler is in place at once; a million iterations take minutes
    started.send_signal(signal.SIGTERM)
    _, err = started.communicate(timeout=60)
    assert started.returncode == 130 and err.strip().splitlines() == ["sketchapp: cancelled"], err
    assert not out.exists()
    late = ("import os, signal, sys\nfrom sketchapp.__main__ import main\ncode = main(['presets'])\n"
            "os.kill(os.getpid(), signal.SIGTERM)\nos.kill(os.getpid(), signal.SIGINT)\nsys.exit(code)\n")
    done = subprocess.run([sys.executable, "-c", late], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0 and "Traceback" not in done.stderr
