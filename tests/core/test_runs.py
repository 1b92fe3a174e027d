"""What the training wizard asks around a run: time estimates, run folders, model samples,
fine-tuning settings, user presets, preview pictures, style parameters and devices."""

from __future__ import annotations

import os
import shutil
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from sketchapp.core import trainer
from sketchapp.core.checkpoint import save_checkpoint
from sketchapp.core.data.datasets import DataError, sample_pictures
from sketchapp.core.data.styles import STYLES, make_params, style_parameters
from sketchapp.core.device import available_devices, select_device
from sketchapp.core.engine import CancelToken, to_uint8
from sketchapp.core.engines.contextual import recipe as training
from sketchapp.core.engines.contextual.engine import CompletionSettings
from sketchapp.core.engines.contextual.model import JointModel, load_model
from sketchapp.core.engines.contextual.networks import JointGANConfig
from sketchapp.core.engines.contextual.recipe import TrainSettings, estimate_training, fine_tune_settings, thumbnails, train
from sketchapp.core.errors import PresetError, SettingsError, SketchAppError
from sketchapp.core.images import load_image
from sketchapp.core.presets import load_preset, save_user_preset
from sketchapp.core.estimate import train_share
from sketchapp.core.runs import list_runs, read_losses, run_info
from sketchapp.core.trainer import TrainingError
from tests.core.test_training import FAST, SIZE, tiny_pairs

RECORD = {"kind": "folder", "sketch_style": "test", "spec": {"kind": "folder", "folder": "/pictures", "style": "xdog"}}
STOP_AT = 3  # the cancelled run stops after this GAN step (FAST has 6 GAN and 3 encoder steps)


@pytest.fixture(autouse=True)
def one_torch_thread():
    """Tiny steps run no faster on two threads, and on a busy two-core machine far slower."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> Path:
    """A folder holding a finished run ("done") and one cancelled part-way ("stopped")."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    root = tmp_path_factory.mktemp("runs")
    events = list(train(root / "done", tiny_pairs(), FAST, data_record=RECORD))
    assert events[-1].kind == "done"
    cancel = CancelToken()
    stopped = []
    for event in train(root / "stopped", tiny_pairs(), FAST, cancel=cancel):
        stopped.append(event)
        if event.kind == "step" and event.step == STOP_AT:
            cancel.cancel()
    assert stopped[-1].kind == "cancelled" and stopped[-1].step == STOP_AT
    torch.set_num_threads(previous)
    return root


def copy_run(runs: Path, name: str, target: Path) -> Path:
    return Path(shutil.copytree(runs / name, target))


# -- time estimates ----------------------------------------------------------------------


def test_estimate_counts_the_gan_steps_of_every_epoch_and_no_encoder_steps_without_an_encoder():
    settings = replace(FAST, ef=0)
    estimate = estimate_training(settings, 30, "cpu", steps=1)
    assert estimate.batch_size == 8 and estimate.train_pairs == train_share(30)
    assert estimate.steps_per_epoch == train_share(30) // 8
    assert estimate.gan_steps == estimate.steps_per_epoch * settings.epochs
    assert estimate.encoder_steps == 0 and estimate.seconds_per_encoder_step == 0.0
    assert estimate.seconds_per_step > 0 and estimate.device == "cpu"
    assert estimate.seconds == pytest.approx(estimate.gan_steps * estimate.seconds_per_step)
    assert estimate.to_dict()["seconds"] == estimate.seconds


def test_estimate_adds_the_encoder_steps_of_a_model_with_an_encoder():
    estimate = estimate_training(FAST, 30, "cpu", steps=1)
    assert estimate.encoder_steps == FAST.encoder_steps == 3
    assert estimate.seconds_per_encoder_step > 0
    assert estimate.seconds == pytest.approx(
        estimate.gan_steps * estimate.seconds_per_step + 3 * estimate.seconds_per_encoder_step
    )


def test_estimate_times_the_whole_recipe_penalty_augmentation_and_average(monkeypatch):
    calls = []
    real_step = training._gan_step
    monkeypatch.setattr(training, "_gan_step", lambda *args: calls.append(args) or real_step(*args))
    updates = []
    monkeypatch.setattr(trainer.WeightAverage, "update", lambda self, trained: updates.append(trained))
    settings = replace(FAST, ef=0, r1_gamma=5.0, diff_augment=True, ema=0.99)
    estimate_training(settings, 30, "cpu", steps=1)
    assert calls and all(args[11] == 5.0 and isinstance(args[12], torch.Generator) for args in calls)
    assert len(updates) == len(calls)


def test_estimate_resolves_an_auto_batch_size_and_caps_it_at_the_training_share(monkeypatch):
    monkeypatch.setattr(training, "_available_memory", lambda: None)  # auto is then the largest, 64
    auto = replace(FAST, ef=0, batch_size=0)
    many = estimate_training(auto, 1000, "cpu", steps=1)
    assert many.batch_size == 64 and many.steps_per_epoch == train_share(1000) // 64
    few = estimate_training(auto, 12, "cpu", steps=1)
    assert few.batch_size == few.train_pairs == train_share(12) == 10 and few.steps_per_epoch == 1
    given = estimate_training(replace(FAST, ef=0), 5, "cpu", steps=1)
    assert given.batch_size == train_share(5) < FAST.batch_size


def test_estimate_refuses_a_data_set_without_pairs():
    with pytest.raises(TrainingError, match="no pairs"):
        estimate_training(FAST, 0)


# -- run folders ---------------------------------------------------------------------------


def test_run_info_of_a_finished_run(runs):
    info = run_info(runs / "done")
    assert info.finished and info.step == info.steps == 9 and info.epochs == 2
    assert info.data == RECORD and info.settings == FAST.to_dict()
    assert info.has_model and info.elapsed > 0 and info.folder == runs / "done"
    assert info.to_dict()["finished"] is True and info.to_dict()["folder"] == str(runs / "done")


def test_run_info_of_a_cancelled_run_says_where_it_stopped(runs):
    info = run_info(runs / "stopped")
    assert not info.finished and info.step == STOP_AT and info.steps == 9
    assert info.data == {"kind": "test", "sketch_style": "test"}  # without a data record: the pairs' own info
    assert info.to_dict()["finished"] is False


def test_list_runs_lists_readable_runs_newest_first_and_skips_the_rest(runs, tmp_path):
    root = tmp_path / "root"
    done = copy_run(runs, "done", root / "done")
    stopped = copy_run(runs, "stopped", root / "stopped")
    garbage = copy_run(runs, "done", root / "garbage")
    (garbage / trainer.STATE_FILE).write_bytes(b"this is not a safetensors file at all")
    cut = copy_run(runs, "done", root / "cut")
    (cut / trainer.STATE_FILE).write_bytes((runs / "done" / trainer.STATE_FILE).read_bytes()[:100])
    (root / "empty").mkdir()
    (root / "notes.txt").write_text("not a run")
    os.utime(done / trainer.STATE_FILE, (1_000_000, 1_000_000))
    os.utime(stopped / trainer.STATE_FILE, (2_000_000, 2_000_000))
    assert [info.folder.name for info in list_runs(root)] == ["stopped", "done"]
    os.utime(done / trainer.STATE_FILE, (3_000_000, 3_000_000))
    found = list_runs(root)
    assert [info.folder.name for info in found] == ["done", "stopped"]
    assert [info.saved_at for info in found] == [3_000_000, 2_000_000]


def test_list_runs_of_a_missing_root_or_a_file_is_empty(tmp_path):
    assert list_runs(tmp_path / "missing") == []
    (tmp_path / "file").write_text("x")
    assert list_runs(tmp_path / "file") == []
    assert list_runs(tmp_path) == []


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        (lambda data: b"garbage bytes, not a training state", "damaged"),
        (lambda data: data[:100], "damaged"),
        (lambda data: data[:4], "damaged"),
        (lambda data: b"", "damaged"),
    ],
    ids=["garbage", "header-cut", "size-cut", "empty"],
)
def test_run_info_refuses_a_damaged_state(runs, tmp_path, damage, message):
    run = copy_run(runs, "done", tmp_path / "run")
    state = run / trainer.STATE_FILE
    state.write_bytes(damage(state.read_bytes()))
    with pytest.raises(TrainingError, match=message):
        run_info(run)


def test_run_info_refuses_a_folder_without_a_saved_state(runs, tmp_path):
    run = copy_run(runs, "done", tmp_path / "run")
    (run / trainer.STATE_FILE).unlink()
    with pytest.raises(TrainingError, match="no training was saved"):
        run_info(run)
    assert list_runs(tmp_path) == []


def test_run_info_refuses_a_state_cut_after_its_header(runs, tmp_path):
    run = copy_run(runs, "done", tmp_path / "run")
    state = run / trainer.STATE_FILE
    data = state.read_bytes()
    state.write_bytes(data[: len(data) // 2])
    with pytest.raises(TrainingError):
        trainer.read_state(state)  # resuming this run would fail ...
    assert list_runs(tmp_path) == []  # ... so it must not be offered for resuming


def test_read_losses_gives_numbers_per_step_with_an_encoder_flag(runs, tmp_path):
    rows = read_losses(runs / "done")
    assert [row["step"] for row in rows] == [float(step) for step in range(1, 10)]
    assert [row["encoder"] for row in rows] == [0.0] * 6 + [1.0] * 3
    assert all(isinstance(value, float) for row in rows for value in row.values())
    assert all("phase" not in row for row in rows)
    assert {"d_loss", "g_loss", "d_real", "d_fake", "epoch", "seconds"} <= set(rows[0])
    assert "e_loss" not in rows[0] and "d_loss" not in rows[-1] and "e_loss" in rows[-1]
    assert [row["step"] for row in read_losses(runs / "stopped")] == [1.0, 2.0, 3.0]
    assert read_losses(tmp_path) == []


# -- model samples, fine-tuning settings ------------------------------------------------------


def test_thumbnails_are_image_halves_and_follow_the_seed(tiny_model, tiny_checkpoint):
    pictures = thumbnails(tiny_checkpoint, 5, seed=3)
    assert pictures.shape == (5, 16, 16, 3) and pictures.dtype == np.uint8
    assert np.array_equal(pictures, thumbnails(tiny_checkpoint, 5, seed=3))
    assert not np.array_equal(pictures, thumbnails(tiny_checkpoint, 5, seed=4))
    loaded = load_model(tiny_checkpoint)
    assert np.array_equal(thumbnails(loaded, 5, seed=3), pictures)


def test_thumbnails_of_sketches_are_the_encoders_completions(tiny_model_with_encoder):
    model = tiny_model_with_encoder
    sketches = np.random.default_rng(0).integers(0, 256, (5, 16, 16), dtype=np.uint8)
    model.encoder.train()
    pictures = thumbnails(model, 3, sketches=sketches)
    assert model.encoder.training  # left in its mode
    chosen = sketches[[0, 2, 4]]  # spread over the five
    with torch.no_grad():
        model.encoder.eval()
        grey = torch.from_numpy(chosen.astype(np.float32) / 127.5 - 1.0)[:, None].expand(-1, 3, -1, -1)
        expected = to_uint8(model.generator(model.encoder(grey)))[:, :, 16:]
    assert np.array_equal(pictures, expected)
    assert not np.array_equal(pictures, thumbnails(model, 3))  # not the random codes' pictures
    with pytest.raises(ValueError, match="16 x 16"):
        thumbnails(model, 3, sketches=sketches[:, :8, :8])


def test_thumbnails_leave_the_generator_in_its_mode(tiny_model):
    tiny_model.generator.train()
    thumbnails(tiny_model, 2)
    assert tiny_model.generator.training
    tiny_model.generator.eval()
    thumbnails(tiny_model, 2)
    assert not tiny_model.generator.training


def test_thumbnails_of_a_trained_run(runs):
    pictures = thumbnails(runs / "done" / trainer.MODEL_FILE, 8)
    assert pictures.shape == (8, SIZE, SIZE, 3) and pictures.dtype == np.uint8


def test_fine_tune_settings_inherit_the_model_s_networks_and_overrides_win(tmp_path):
    config = JointGANConfig(half_size=16, z_dim=24, gf=12, df=10, ef=6)
    save_checkpoint(tmp_path / "base.safetensors", JointModel.create(config))
    inherited = fine_tune_settings(tmp_path / "base.safetensors")
    assert (inherited.half_size, inherited.z_dim, inherited.gf, inherited.df, inherited.ef) == (16, 24, 12, 10, 6)
    assert inherited.epochs == TrainSettings().epochs and inherited.lr == TrainSettings().lr
    tuned = fine_tune_settings(tmp_path / "base.safetensors", gf=20, epochs=3, lr=1e-4)
    assert (tuned.half_size, tuned.z_dim, tuned.gf, tuned.df, tuned.ef) == (16, 24, 20, 10, 6)
    assert tuned.epochs == 3 and tuned.lr == 1e-4


def test_fine_tune_settings_refuse_a_file_that_is_not_a_model(tmp_path):
    (tmp_path / "junk.safetensors").write_bytes(b"junk")
    with pytest.raises(SketchAppError):
        fine_tune_settings(tmp_path / "junk.safetensors")


# -- user presets ------------------------------------------------------------------------------


@pytest.fixture()
def folders(tmp_path) -> tuple[Path, Path]:
    return tmp_path / "user" / "presets", tmp_path / "user" / "models"


def thumbnail() -> np.ndarray:
    pixels = np.full((16, 16, 3), 255, np.uint8)
    pixels[4:12, 4:12] = (200, 30, 30)
    return pixels


def test_save_user_preset_copies_the_model_and_writes_preset_and_thumbnail(tiny_checkpoint, folders):
    presets_dir, models_dir = folders
    settings = CompletionSettings(candidates=3)
    preset = save_user_preset("  My   Cats! ", tiny_checkpoint, "xdog", settings, thumbnail(), "Cats I drew",
                              presets_dir=presets_dir, models_dir=models_dir)
    assert preset.id == "my-cats" and preset.name == "My Cats!" and preset.source == "user"
    assert preset.model == models_dir / "my-cats.safetensors"
    assert preset.model.read_bytes() == tiny_checkpoint.read_bytes()
    assert (presets_dir / "my-cats.json").is_file() and preset.thumbnail == presets_dir / "my-cats.png"
    assert np.array_equal(load_image(preset.thumbnail, "RGB"), thumbnail())
    assert preset.sketch_style == "xdog" and preset.settings == settings and preset.description == "Cats I drew"
    assert load_preset(presets_dir / "my-cats.json", (models_dir,)) == preset
    load_model(preset.model)


def test_a_preset_with_a_taken_name_gets_a_number(tiny_checkpoint, folders):
    presets_dir, models_dir = folders
    ids = [save_user_preset("Shapes", tiny_checkpoint, "xdog", presets_dir=presets_dir, models_dir=models_dir).id
           for _ in range(3)]
    assert ids == ["shapes", "shapes-2", "shapes-3"]
    assert sorted(p.name for p in presets_dir.iterdir()) == ["shapes-2.json", "shapes-3.json", "shapes.json"]
    models = sorted(p.name for p in models_dir.iterdir())
    assert models == ["shapes-2.safetensors", "shapes-3.safetensors", "shapes.safetensors"]
    second = load_preset(presets_dir / "shapes-2.json", (models_dir,))
    assert second.name == "Shapes" and second.model == models_dir / "shapes-2.safetensors" and second.thumbnail is None


@pytest.mark.parametrize("name", ["", "   ", "x" * 81])
def test_a_preset_needs_a_name_of_at_most_80_characters(tiny_checkpoint, folders, name):
    presets_dir, models_dir = folders
    with pytest.raises(PresetError, match="name"):
        save_user_preset(name, tiny_checkpoint, "xdog", presets_dir=presets_dir, models_dir=models_dir)
    assert not presets_dir.exists() and not models_dir.exists()


def test_a_preset_name_of_80_characters_is_taken(tiny_checkpoint, folders):
    presets_dir, models_dir = folders
    preset = save_user_preset("x" * 80, tiny_checkpoint, "xdog", presets_dir=presets_dir, models_dir=models_dir)
    assert preset.name == "x" * 80 and len(preset.id) <= 40


def test_a_corrupt_model_is_refused_before_anything_is_written(tmp_path, tiny_checkpoint, folders):
    presets_dir, models_dir = folders
    corrupt = tmp_path / "corrupt.safetensors"
    corrupt.write_bytes(tiny_checkpoint.read_bytes()[:-100])
    with pytest.raises(SketchAppError, match="corrupt.safetensors"):
        save_user_preset("Broken", corrupt, "xdog", None, thumbnail(), presets_dir=presets_dir, models_dir=models_dir)
    with pytest.raises(SketchAppError):
        save_user_preset("Missing", tmp_path / "missing.safetensors", "xdog",
                         presets_dir=presets_dir, models_dir=models_dir)
    assert not presets_dir.exists() and not models_dir.exists()


def test_a_failed_write_leaves_no_model_copy_behind(tmp_path, tiny_checkpoint):
    presets_dir, models_dir = tmp_path / "presets", tmp_path / "models"
    presets_dir.write_text("a file where the presets folder should be")
    with pytest.raises(PresetError, match="cannot save the preset"):
        save_user_preset("Shapes", tiny_checkpoint, "xdog", presets_dir=presets_dir, models_dir=models_dir)
    assert list(models_dir.iterdir()) == []  # the model copy, and any temp file, removed
    assert presets_dir.read_text() == "a file where the presets folder should be"


def test_a_failed_thumbnail_write_raises_preset_error(tmp_path, tiny_checkpoint):
    presets_dir, models_dir = tmp_path / "presets", tmp_path / "models"
    presets_dir.write_text("a file where the presets folder should be")
    with pytest.raises(PresetError, match="cannot save the preset"):
        save_user_preset("Shapes", tiny_checkpoint, "xdog", None, thumbnail(),
                         presets_dir=presets_dir, models_dir=models_dir)
    assert list(models_dir.iterdir()) == []


def test_a_thumbnail_that_cannot_be_encoded_leaves_no_model_copy(tmp_path, tiny_checkpoint, folders):
    presets_dir, models_dir = folders
    with pytest.raises(PresetError):
        save_user_preset("Shapes", tiny_checkpoint, "xdog", None, np.zeros((16, 16, 3), np.float64),
                         presets_dir=presets_dir, models_dir=models_dir)
    assert not models_dir.exists() or list(models_dir.iterdir()) == []


# -- preview pictures, style parameters, devices -------------------------------------------------


def write_pictures(folder: Path, count: int) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    for i in range(count):
        picture = np.full((30 + 4 * i, 40, 3), 255, np.uint8)
        picture[5:20, 10:25] = rng.integers(0, 200, 3)
        Image.fromarray(picture).save(folder / f"pic{i}.png")
    return folder


def test_sample_pictures_gives_square_rgb_pictures_and_skips_unreadable_files(tmp_path):
    folder = write_pictures(tmp_path / "pics", 6)
    (folder / "broken.png").write_bytes(b"not a png")
    (folder / "empty.jpg").write_bytes(b"")
    some = sample_pictures(folder, 4, 32)
    assert len(some) == 4
    assert all(p.shape == (32, 32, 3) and p.dtype == np.uint8 for p in some)
    every = sample_pictures(folder, 20, 24)
    assert len(every) == 6 and all(p.shape == (24, 24, 3) for p in every)
    assert all((p[0, 0] == 255).all() for p in every)  # fitted on white paper


def test_sample_pictures_refuses_a_folder_with_nothing_readable(tmp_path):
    folder = tmp_path / "broken"
    folder.mkdir()
    (folder / "a.png").write_bytes(b"not a png")
    (folder / "b.jpg").write_bytes(b"\xff\xd8 cut")
    with pytest.raises(DataError, match="none of its image files could be read"):
        sample_pictures(folder, 4, 32)
    with pytest.raises(DataError):
        sample_pictures(tmp_path / "missing", 4, 32)


@pytest.mark.parametrize("style", sorted(STYLES))
def test_style_parameters_describe_valid_slider_ranges(style):
    described = style_parameters(style)
    assert [p["name"] for p in described] == list(make_params(style).to_dict())
    for parameter in described:
        assert set(parameter) == {"name", "default", "low", "high", "integer", "help", "label"}
        assert parameter["low"] <= parameter["default"] <= parameter["high"], parameter
        assert parameter["help"] and parameter["label"] and isinstance(parameter["integer"], bool)
        assert parameter["integer"] == isinstance(parameter["default"], int)
        for end in ("low", "high"):
            made = make_params(style, **{parameter["name"]: parameter[end]})
            assert getattr(made, parameter["name"]) == parameter[end]


def test_style_parameters_of_an_unknown_style_are_refused():
    with pytest.raises(SettingsError, match="unknown sketch style"):
        style_parameters("crayon")


def test_available_devices_end_with_the_cpu_and_all_can_be_selected():
    devices = available_devices()
    assert devices[-1][0] == "cpu" and "CPU" in devices[-1][1]
    for name, label in devices:
        assert label and select_device(name).type == name.split(":")[0]


def test_a_user_preset_never_takes_the_id_of_a_bundled_preset_or_model(tmp_path, tiny_checkpoint, folders):
    presets_dir, models_dir = folders
    preset = save_user_preset("Emoji colour", tiny_checkpoint, "xdog", presets_dir=presets_dir, models_dir=models_dir)
    assert preset.id == "emoji-colour-2"
    model = save_user_preset("Emoji colour 128", tiny_checkpoint, "xdog", presets_dir=presets_dir, models_dir=models_dir)
    assert model.id == "emoji-colour-128-2" and model.model == models_dir / "emoji-colour-128-2.safetensors"


def test_checkpoint_metadata_is_read_from_the_header_alone(tmp_path, tiny_checkpoint):
    from sketchapp.core.checkpoint import read_metadata
    from sketchapp.core.errors import CheckpointError

    assert read_metadata(tiny_checkpoint)["architecture"]["half_size"] == 16
    foreign = tmp_path / "foreign.safetensors"
    foreign.write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00{\"a\": 1}      ")
    with pytest.raises(CheckpointError, match="not a SketchApp checkpoint"):
        read_metadata(foreign)
