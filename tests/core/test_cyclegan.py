"""CycleGAN: unpaired data, its recipe in the one training loop, and its engine both ways (tiny networks)."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from safetensors.torch import load_file, save_file

from sketchapp.core.checkpoint import FORMAT, FORMAT_VERSION, METADATA_KEY, save_checkpoint
from sketchapp.core.data.builders import build_unpaired
from sketchapp.core.data.datasets import DataError, PairSet, UnpairedSet, as_unpaired, load_unpaired, write_dataset
from sketchapp.core.engines import REGISTRY, load_engine_model, open_engine
from sketchapp.core.engines.cyclegan.engine import CycleGANSettings
from sketchapp.core.engines.cyclegan.model import CycleGANModel
from sketchapp.core.engines.cyclegan.networks import CycleGANConfig
from sketchapp.core.engines.cyclegan.recipe import CycleGANRecipe, CycleGANTrainSettings, ImagePool
from sketchapp.core.errors import CheckpointError, SettingsError
from sketchapp.core.images import save_image
from sketchapp.core.trainer import LOSSES_FILE, train_recipe

S = 32


def domains(sketches: int = 10, pictures: int = 7, seed: int = 0) -> UnpairedSet:
    """Disc outlines (A) and filled coloured discs elsewhere (B): two collections without pairs."""
    rng = np.random.default_rng(seed)

    def disc(filled: bool) -> np.ndarray:
        picture = np.full((S, S, 3), 255, np.uint8)
        centre = (int(rng.integers(12, 20)), int(rng.integers(12, 20)))
        colour = tuple(int(v) for v in rng.integers(0, 200, 3)) if filled else (0, 0, 0)
        cv2.circle(picture, centre, int(rng.integers(7, 11)), colour, -1 if filled else 1)
        return picture

    a = np.stack([disc(False) for _ in range(sketches)])
    b = np.stack([disc(True) for _ in range(pictures)])
    data = UnpairedSet(a, b, [f"outline{i}" for i in range(sketches)], [f"disc{i}" for i in range(pictures)])
    data.splits = {"train": data.names, "val": [], "test": []}
    return data


def tiny(**changes) -> CycleGANTrainSettings:
    base = dict(size=S, gf=8, df=8, blocks=2, epochs=1, decay_epochs=0, batch_size=2, augment=False, checkpoint_minutes=60.0)
    return CycleGANTrainSettings(**{**base, **changes})


def train(folder: Path, data, settings: CycleGANTrainSettings, **kwargs):
    return list(train_recipe(folder, CycleGANRecipe(settings), data, **kwargs))


def column(folder: Path, name: str) -> np.ndarray:
    import csv

    with open(folder / LOSSES_FILE, newline="") as handle:
        return np.array([float(row[name]) for row in csv.DictReader(handle)])


def test_the_cycle_loss_falls_on_a_tiny_unpaired_set(tmp_path):
    events = train(tmp_path / "run", domains(), tiny(epochs=12))
    assert events[-1].kind == "done"
    for name in ("cycle_a", "cycle_b"):
        values = column(tmp_path / "run", name)
        assert values[-5:].mean() < 0.6 * values[:5].mean(), name
    assert {"d_a", "d_b", "g_a", "g_b", "idt_a", "idt_b"} <= set(events[-2].losses)
    grid = cv2.imread(str(tmp_path / "run" / "samples" / "epoch-012.png"))
    assert grid is not None and grid.shape[0] > 2 * S  # rows of A -> B -> A and B -> A -> B


def test_identity_keeps_a_picture_of_the_target_domain_close_to_itself(tmp_path):
    data = domains()
    pictures = torch.from_numpy(data.b).permute(0, 3, 1, 2).float() / 127.5 - 1

    def drift(model: CycleGANModel) -> float:
        with torch.no_grad():
            return float((model.g_ab.eval()(pictures) - pictures).abs().mean())

    before = drift(CycleGANRecipe(tiny()).model)
    with_identity = train(tmp_path / "idt", data, tiny(epochs=12))[-1].model
    without = train(tmp_path / "none", data, tiny(epochs=12, identity_weight=0.0))[-1].model
    assert drift(with_identity) < 0.5 * before
    assert drift(with_identity) < drift(without)


def test_the_image_pool_returns_stored_pictures_once_full():
    pool = ImagePool(3, 4)
    rng = torch.Generator().manual_seed(0)
    first = torch.stack([torch.full((3, 4, 4), float(i)) for i in range(3)])
    assert torch.equal(pool.query(first, rng), first)  # filling: the new pictures themselves
    assert int(pool.count) == 3
    returned = pool.query(torch.full((20, 3, 4, 4), 9.0), rng)
    old = [float(p[0, 0, 0]) for p in returned if float(p[0, 0, 0]) != 9.0]
    assert old and set(old) <= {0.0, 1.0, 2.0}  # some answers are pictures stored earlier
    assert (pool.pictures == 9.0).flatten(1).all(1).any()  # and the new ones took their places
    assert torch.equal(ImagePool(0, 4).query(first, rng), first)


def test_the_model_file_round_trips_and_draws_both_ways(tmp_path):
    model = train(tmp_path / "run", domains(), tiny(epochs=2))[-1].model
    path = tmp_path / "cycle.safetensors"
    save_checkpoint(path, model, half_precision=True)
    loaded = load_engine_model(path)
    assert isinstance(loaded, CycleGANModel) and loaded.config == model.config
    engine = open_engine(path)
    assert engine.capabilities.sketch_of and not engine.capabilities.hints
    sketch = np.full((100, 80), 255, np.uint8)
    cv2.circle(sketch, (40, 50), 25, 0, 2)
    snap = list(engine.start(sketch, None, CycleGANSettings(seed=1)))
    assert len(snap) == 1 and snap[0].final and snap[0].images().shape == (1, S, S, 3)
    photo = np.full((60, 90, 3), 255, np.uint8)
    cv2.circle(photo, (45, 30), 20, (200, 40, 40), -1)
    drawn = engine.sketch_of(photo)
    assert drawn.shape == (S, S) and drawn.dtype == np.uint8
    with pytest.raises(SettingsError):
        next(iter(engine.start(sketch, None, None, None, np.zeros(3))))
    with pytest.raises(SettingsError):
        engine.sketch_of(np.zeros((4, 4), np.uint8))


def test_hostile_cyclegan_records_are_refused_before_any_network_is_built(tmp_path):
    for bad in ({"size": 33}, {"gf": 100000}, {"blocks": 1e9}, {"blocks": "six"}, {"df": True}, {"extra": 1}):
        with pytest.raises(SettingsError):
            CycleGANConfig.from_dict({**CycleGANConfig().to_dict(), **bad})
    model = CycleGANModel.create(CycleGANConfig(S, 8, 8, 2))
    path = tmp_path / "bad.safetensors"
    save_checkpoint(path, model)
    tensors = load_file(path)
    record = {"format": FORMAT, "format_version": FORMAT_VERSION, "engine": "cyclegan",
              "architecture": {"size": S, "gf": 4096, "df": 8, "blocks": 32}}
    save_file(tensors, path, metadata={METADATA_KEY: json.dumps(record)})
    with pytest.raises(CheckpointError, match="CycleGAN"):
        load_engine_model(path)


def test_training_settings_refuse_bad_values():
    for bad in ({"pool": -1}, {"cycle_weight": float("nan")}, {"decay_epochs": 5, "epochs": 2}, {"identity_weight": 11.0}):
        with pytest.raises(SettingsError):
            tiny(**bad)
    assert tiny(size=256, blocks=0).config.blocks == 9 and tiny(size=128, blocks=0).config.blocks == 6


def test_paired_data_trains_without_its_pairing():
    pairs = PairSet(np.full((3, S, S), 255, np.uint8), np.zeros((3, S, S, 3), np.uint8), ["x", "y", "z"])
    unpaired = as_unpaired(pairs)
    assert unpaired.a.shape == (3, S, S, 3) and len(unpaired) == 3
    assert unpaired.names == ["A/x", "A/y", "A/z", "B/x", "B/y", "B/z"]
    assert unpaired.subset(["A/x", "B/y", "B/z"]).names_b == ["y", "z"]


def test_unpaired_folders_load_with_bad_files_skipped_and_few_pictures_warned(tmp_path):
    data = domains(5, 3)
    for folder, pictures in (("a", data.a), ("b", data.b)):
        (tmp_path / folder).mkdir()
        for i, picture in enumerate(pictures):
            save_image(tmp_path / folder / f"{folder}{i}.png", picture)
    (tmp_path / "b" / "broken.png").write_bytes(b"\x89PNG not really")
    loaded = load_unpaired(tmp_path / "a", tmp_path / "b", S)
    assert (len(loaded.names_a), len(loaded.names_b)) == (5, 3) and len(loaded) == 5
    assert [Path(s.path).name for s in loaded.skipped] == ["broken.png"]
    assert len(loaded.warnings()) == 2 and "only 5 pictures" in loaded.warnings()[0]
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="no image files"):
        load_unpaired(tmp_path / "a", tmp_path / "empty", S)


def test_unpaired_halves_of_a_built_data_set_share_no_pair_and_leave_its_test_split_out(tmp_path):
    rng = np.random.default_rng(0)
    names = [f"e{i:02d}" for i in range(20)]
    pairs = PairSet(rng.integers(0, 255, (20, S, S), dtype=np.uint8), rng.integers(0, 255, (20, S, S, 3), dtype=np.uint8), names)
    splits = {"train": names[:16], "val": names[16:18], "test": names[18:]}
    write_dataset(tmp_path / "set", pairs, splits, {"name": "test set", "licence": "CC0"})
    assert build_unpaired(tmp_path / "set", tmp_path / "out") == (8, 8)
    a = {p.stem for p in (tmp_path / "out" / "sketches").iterdir()}
    b = {p.stem for p in (tmp_path / "out" / "pictures").iterdir()}
    assert not a & b and a | b == set(names[:16])
    with pytest.raises(DataError, match="already holds"):
        build_unpaired(tmp_path / "set", tmp_path / "out")
    loaded = load_unpaired(tmp_path / "out" / "sketches", tmp_path / "out" / "pictures", S)
    assert loaded.info["licence"] == "CC0" and loaded.info["name"] == "test set"  # the record travels to the model


def test_the_registry_names_cyclegan_with_its_loss_curves():
    spec = REGISTRY["cyclegan"]
    assert spec.loss_names == ("d_a", "d_b", "g_a", "g_b", "cycle_a", "cycle_b", "idt_a", "idt_b")
    assert spec.train_settings is CycleGANTrainSettings and spec.settings is CycleGANSettings


def test_the_shipped_cyclegan_model_sketches_a_picture_along_its_edges():
    from sketchapp.core.evaluation import sketch_fidelity
    from sketchapp.paths import bundled_models_dir

    engine = open_engine(bundled_models_dir() / "fluent-3d-cyclegan-128.safetensors")
    assert engine.model.sketch_style == "outline" and engine.model.metadata["data"]["licence"] == "MIT"
    picture = np.full((256, 256, 3), 255, np.uint8)
    cv2.circle(picture, (128, 128), 80, (230, 120, 30), -1)
    drawn = engine.sketch_of(picture)
    outline = np.full((128, 128), 255, np.uint8)
    cv2.circle(outline, (64, 64), 40, 0, 2)
    precision, recall = sketch_fidelity(np.repeat(drawn[..., None], 3, 2), outline)
    assert recall > 0.8 and precision > 0.5  # it draws the disc's outline
    assert (drawn > 200).mean() > 0.7  # on white paper


def test_onnx_runtime_draws_the_torch_picture_and_is_dropped_when_switched_off(tmp_path):
    pytest.importorskip("onnxruntime")
    from sketchapp.core import runtime

    model = CycleGANModel.create(CycleGANConfig(32, 8, 8, 2)).eval()
    engine = REGISTRY["cyclegan"].engine(model, torch.device("cpu"))
    sketch = np.full((32, 32), 255, np.uint8)
    cv2.circle(sketch, (16, 16), 9, 0, 1)
    plain = next(iter(engine.start(sketch, None, CycleGANSettings(runtime=False)))).images()[0].astype(int)
    engine.compiled = runtime.compile_generator(model.g_ab, torch.zeros(1, 3, 32, 32), 1, tmp_path)
    assert engine.compiled is not None
    quick = next(iter(engine.start(sketch, None, CycleGANSettings()))).images()[0].astype(int)
    assert np.abs(quick - plain).max() <= 1
    engine.warm_up(CycleGANSettings(runtime=False), cache=tmp_path)
    assert engine.compiled is None
