"""pix2pix: networks from validated records, training that learns and resumes exactly, hints that act in one pass."""

from __future__ import annotations

import copy
from dataclasses import replace
import csv
import json
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
import torch.nn.functional as F

from sketchapp.core.checkpoint import read_checkpoint, save_checkpoint
from sketchapp.core.data.datasets import PairSet
from sketchapp.core.engines import REGISTRY, engine_spec, load_engine_model, open_engine
from sketchapp.core.engines.pix2pix.engine import Pix2PixSettings, palette_hints
from sketchapp.core.engines.pix2pix.model import Pix2PixModel
from sketchapp.core.engines.pix2pix.networks import Pix2PixConfig
from sketchapp.core.engines.pix2pix.model import SPREAD, SPREAD_GRID, spread_hints
from sketchapp.core.engines.pix2pix.recipe import Pix2PixRecipe, Pix2PixTrainSettings, rotate_hue
from sketchapp.core.errors import CheckpointError, SettingsError
from sketchapp.core.evaluation import ssim
from sketchapp.core.runs import read_losses
from sketchapp.core.trainer import learning_rate, train_recipe
from sketchapp.core.trainer import LOSSES_FILE

S = 32


def discs(count: int = 12, seed: int = 0, side: int = S) -> PairSet:
    """Coloured discs on white and their outlines: a paired set a tiny pix2pix can learn."""
    rng = np.random.default_rng(seed)
    sketches, images, names = [], [], []
    for i in range(count):
        image = np.full((side, side, 3), 255, np.uint8)
        sketch = np.full((side, side), 255, np.uint8)
        centre = (int(rng.integers(12, 20)) * side // S, int(rng.integers(12, 20)) * side // S)
        radius = int(rng.integers(7, 11)) * side // S
        cv2.circle(image, centre, radius, tuple(int(v) for v in rng.integers(0, 220, 3)), -1)
        cv2.circle(sketch, centre, radius, 0, 1)
        sketches.append(sketch)
        images.append(image)
        names.append(f"disc{i:02d}")
    pairs = PairSet(np.stack(sketches), np.stack(images), names)
    pairs.splits = {"train": names, "val": [], "test": []}
    return pairs


def tiny_settings(**changes) -> Pix2PixTrainSettings:
    base = dict(size=S, gf=16, df=8, epochs=1, batch_size=6, dropout=0.0, augment=False, checkpoint_minutes=60.0)
    return Pix2PixTrainSettings(**{**base, **changes})


def train(folder: Path, pairs: PairSet, settings: Pix2PixTrainSettings, **kwargs):
    events = list(train_recipe(folder, Pix2PixRecipe(settings), pairs, **kwargs))
    return events


def results(model: Pix2PixModel, pairs: PairSet, hints: list[np.ndarray | None] | None = None) -> np.ndarray:
    engine = REGISTRY["pix2pix"].engine(model, torch.device("cpu"))
    pictures = []
    for i, sketch in enumerate(pairs.sketches):
        hint = hints[i] if hints is not None else None
        pictures.append(next(iter(engine.start(sketch, hint, Pix2PixSettings(seed=0)))).images()[0])
    return np.stack(pictures)


def test_architecture_records_are_validated_before_anything_is_built():
    assert Pix2PixConfig.from_dict(Pix2PixConfig(size=64, gf=8, df=8).to_dict()) == Pix2PixConfig(size=64, gf=8, df=8)
    hostile = [
        {"size": 100}, {"size": "128"}, {"gf": 4096}, {"gf": 1e9}, {"gf": float("nan")}, {"dropout": float("inf")},
        {"hints": 1}, {"layers": 3}, [1, 2], {"gf": True},
    ]
    for record in hostile:
        with pytest.raises(SettingsError):
            Pix2PixConfig.from_dict(record if not isinstance(record, dict) else {**Pix2PixConfig().to_dict(), **record})


def test_a_global_size_is_at_most_half_the_size_and_counted_in_the_weights():
    assert Pix2PixConfig(size=256, global_size=128).core == Pix2PixConfig(size=128)
    for size, global_size in ((64, 64), (64, 48), (64, 128)):
        with pytest.raises(SettingsError, match="global size"):
            Pix2PixConfig(size=size, gf=8, df=8, global_size=global_size)
    config = Pix2PixConfig(size=64, gf=8, df=8, global_size=32, colour_grid=16)
    enhancer = sum(p.numel() for p in Pix2PixModel.create(config).generator.enhance.parameters())
    assert config.parameter_count() - config.core.parameter_count() == enhancer


def test_a_model_grows_to_twice_its_size_coarse_to_fine_and_the_enhancer_learns_the_detail(tmp_path):
    """A fine-tune at a larger size keeps the trained model as its U-Net: it starts as that model's picture
    enlarged, saves, loads and completes at the new size, and training at that size improves on the enlargement."""
    from sketchapp.core.engines.pix2pix.recipe import fine_tune_settings
    from sketchapp.core.trainer import TrainingError

    small, large = discs(), discs(side=2 * S)
    events = train(tmp_path / "base", small, tiny_settings(epochs=25, hints=False))
    base = tmp_path / "base" / "model.safetensors"
    settings = fine_tune_settings(base, size=2 * S, epochs=25, batch_size=6, checkpoint_minutes=60.0)
    assert settings.global_size == S and settings.config.core == events[-1].model.config
    recipe = Pix2PixRecipe(settings)
    recipe.fine_tune(base)
    grown = recipe.model.eval()
    enlarged = [cv2.resize(p, (2 * S, 2 * S), interpolation=cv2.INTER_LINEAR) for p in results(events[-1].model, large)]
    start = results(grown, large)
    assert start.shape == (12, 2 * S, 2 * S, 3)
    assert np.abs(start.astype(int) - np.stack(enlarged)).mean() < 4  # the same picture, enlarged (lines drawn anew)
    path = tmp_path / "grown.safetensors"
    save_checkpoint(path, grown)
    loaded = load_engine_model(path)
    assert loaded.config == settings.config and np.array_equal(results(loaded, large), start)

    finished = list(train_recipe(tmp_path / "grown", Pix2PixRecipe(settings), large, init_from=base))[-1].model
    before = np.abs(start.astype(float) - large.images).mean()
    after = np.abs(results(finished, large).astype(float) - large.images).mean()
    assert after < 0.5 * before, (before, after)
    with pytest.raises(TrainingError, match="grows it to a larger size"):
        Pix2PixRecipe(replace(settings, gf=8)).fine_tune(base)


def test_checkpoints_round_trip_through_the_registry_and_unknown_engines_are_refused(tmp_path):
    model = Pix2PixModel.create(Pix2PixConfig(size=S, gf=8, df=8), sketch_style="outline")
    path = tmp_path / "p2p.safetensors"
    save_checkpoint(path, model, half_precision=True)
    loaded = load_engine_model(path)
    assert isinstance(loaded, Pix2PixModel) and loaded.config == model.config and loaded.sketch_style == "outline"
    x = torch.rand(1, 5, S, S) * 2 - 1
    with torch.no_grad():
        assert torch.allclose(loaded.generator(x), model.eval().generator(x), atol=2e-2)
    assert open_engine(path).kind == "pix2pix"

    metadata, tensors = read_checkpoint(path)
    from safetensors.torch import save as st_save

    for engine, message in (("cyclegan-9000", "cyclegan-9000"), (["x"], "['x']")):
        record = {**metadata, "engine": engine}
        bad = tmp_path / "bad.safetensors"
        bad.write_bytes(st_save(tensors, metadata={"sketchapp": json.dumps(record)}))
        with pytest.raises(CheckpointError, match="engine this SketchApp does not have") as caught:
            load_engine_model(bad)
        assert message in str(caught.value) and "\n" not in str(caught.value)
    huge = {**metadata, "architecture": {**metadata["architecture"], "gf": 100000}}
    bad.write_bytes(st_save(tensors, metadata={"sketchapp": json.dumps(huge)}))
    with pytest.raises(CheckpointError, match="invalid pix2pix architecture"):
        load_engine_model(bad)
    with pytest.raises(CheckpointError):
        engine_spec("nope")


def test_shipped_contextual_models_still_load_through_the_registry():
    from sketchapp import paths

    for name in ("emoji-colour-128.safetensors",):
        model = load_engine_model(paths.bundled_models_dir() / name)
        assert model.kind == "contextual" and model.size == 128


def test_pix2pix_memorises_a_tiny_paired_set(tmp_path):
    pairs = discs()
    settings = tiny_settings(epochs=60, hints=False)
    untrained = Pix2PixRecipe(settings).model.eval()
    before = np.abs(results(untrained, pairs).astype(float) - pairs.images).mean()
    events = train(tmp_path / "run", pairs, settings)
    after = np.abs(results(events[-1].model, pairs).astype(float) - pairs.images).mean()
    assert events[-1].kind == "done"
    assert after < 0.25 * before
    header = (tmp_path / "run" / LOSSES_FILE).read_text().splitlines()[0]
    assert header == "step,phase,epoch,d_loss,g_gan,g_l1,g_ssim,g_colour,d_real,d_fake,seconds"
    assert (tmp_path / "run" / "samples" / "epoch-060.png").exists()


def test_a_hinted_region_takes_the_hints_colour(tmp_path):
    """Every disc is recoloured in training, so only a hint can say its colour; one forward pass must follow it."""
    pairs = discs(count=6)
    settings = tiny_settings(gf=8, epochs=150, batch_size=3, lr=1e-3, no_hints=0.0, recolour=1.0, max_hints=10)
    model = train(tmp_path / "run", pairs, settings)[-1].model
    wanted = [np.array([40, 190, 60]), np.array([210, 40, 190]), np.array([30, 60, 200])]
    hinted, plain = [], []
    for i, sketch in enumerate(pairs.sketches[:3]):
        inside = cv2.floodFill(sketch.copy(), None, (16, 16), 128)[1] == 128
        ys, xs = np.nonzero(inside)
        y, x = int(ys.mean()), int(xs.mean())
        hints = np.zeros((S, S, 4), np.uint8)
        hints[y - 2 : y + 2, x - 2 : x + 2] = [*wanted[i], 255]  # a dab in the middle: the whole disc takes it
        one = PairSet(sketch[None], pairs.images[i : i + 1], ["x"])
        with_hint, without = results(model, one, [hints])[0], results(model, one)[0]
        hinted.append(np.abs(with_hint[inside].mean(0) - wanted[i]).mean())
        plain.append(np.abs(without[inside].mean(0) - wanted[i]).mean())
    assert max(hinted) < 45, hinted  # of 255: the hint's colour, not the disc's own
    assert np.mean(hinted) < 0.6 * np.mean(plain), (hinted, plain)


def test_the_ssim_term_alone_teaches_the_pictures_structure(tmp_path):
    """With no L1 at all, 1 - SSIM is the only pull toward the truth: SSIM must climb far above the untrained net's."""
    pairs = discs()
    settings = tiny_settings(epochs=40, hints=False, l1_weight=0.0, ssim_weight=100.0)
    untrained = Pix2PixRecipe(settings).model.eval()
    before = np.mean([ssim(r, t) for r, t in zip(results(untrained, pairs), pairs.images)])
    events = train(tmp_path / "run", pairs, settings)
    after = np.mean([ssim(r, t) for r, t in zip(results(events[-1].model, pairs), pairs.images)])
    assert after > before + 0.2, (before, after)
    history = read_losses(tmp_path / "run")
    assert history[-1]["g_ssim"] < 0.5 * history[0]["g_ssim"]


def test_a_run_of_an_older_version_resumes_with_the_new_loss_column(tmp_path):
    """losses.csv written before g_ssim existed: resuming rewrites it with one header for every row."""
    pairs = discs()
    train(tmp_path / "run", pairs, tiny_settings(epochs=2))
    path = tmp_path / "run" / LOSSES_FILE
    with open(path, newline="") as handle:
        rows = list(csv.DictReader(handle))
    old = [c for c in rows[0] if c != "g_ssim"]
    with open(path, "w", newline="") as handle:
        writer = csv.DictWriter(handle, old, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)
    train(tmp_path / "run", pairs, tiny_settings(epochs=3), resume=True)
    lines = path.read_text().splitlines()
    assert lines[0].split(",")[:7] == ["step", "phase", "epoch", "d_loss", "g_gan", "g_l1", "g_ssim"]
    assert {line.count(",") for line in lines} == {lines[0].count(",")}
    assert len(lines) == 1 + 3 * 2 and [row.get("g_ssim") is None for row in read_losses(tmp_path / "run")] == [True] * 4 + [False] * 2


def test_hints_spread_over_their_area_and_stop_at_the_lines():
    sketch = torch.ones(1, 1, S, S)
    sketch[..., 10, :] = -1  # a one-pixel line across the page
    for i in range(S):  # and a one-pixel diagonal, 8-connected
        sketch[..., min(S - 1, 20 + i // 3), i] = -1 if i < 12 else sketch[..., min(S - 1, 20 + i // 3), i]
    hints = torch.zeros(1, 4, S, S)
    hints[:, :3, 2:4, 2:4] = torch.tensor([0.5, -0.5, 0.0]).view(1, 3, 1, 1)
    hints[:, 3, 2:4, 2:4] = 1
    spread = spread_hints(hints, sketch)
    assert torch.allclose(spread[0, :3, 5, 12], torch.tensor([0.5, -0.5, 0.0]), atol=1e-4)  # same area: same colour
    assert spread[0, 3, 5, 12] == SPREAD and spread[0, 3, 2, 2] == 1  # spread pixels are told from painted ones
    assert spread[0, :, 15:, :].abs().max() == 0  # nothing crossed the line


def test_large_pictures_spread_hints_on_a_coarser_grid_that_lines_still_block():
    side = 2 * SPREAD_GRID
    sketch = torch.ones(2, 1, side, side)
    sketch[:, :, 101, :] = -1  # a one-pixel line on an odd row: it falls inside grid cells, not between them
    hints = torch.zeros(2, 4, side, side)
    hints[0, :3, 90:96, 40:46] = torch.tensor([0.5, -0.5, 0.0]).view(3, 1, 1)
    hints[0, :3, 90, 40] = torch.tensor([-1.0, 1.0, 1.0])  # one painted pixel of another colour
    hints[0, 3, 90:96, 40:46] = 1
    spread = spread_hints(hints, sketch)
    assert torch.allclose(spread[0, :3, 80, 60], torch.tensor([0.5, -0.5, 0.0]), atol=0.1)
    assert spread[0, 3, 80, 60] == SPREAD and spread[0, 3, 101, 45] == 0  # ink is not coloured
    assert torch.equal(spread[0, :3, 90, 40], torch.tensor([-1.0, 1.0, 1.0]))  # painted pixels keep their own colour
    assert spread[0, :, 102:, :].abs().max() == 0 and spread[1].abs().max() == 0  # nothing crossed the line or the batch


def test_the_learning_rate_decays_linearly_to_zero_over_the_last_epochs(tmp_path):
    settings = tiny_settings(epochs=4, decay_epochs=2, lr=1e-3)
    rates = [learning_rate(settings, step, 10) for step in range(40)]
    assert rates[:20] == [1e-3] * 20
    assert rates[20] == pytest.approx(1e-3) and rates[30] == pytest.approx(5e-4) and rates[39] == pytest.approx(5e-5)
    recipe = Pix2PixRecipe(settings)
    list(train_recipe(tmp_path / "run", recipe, discs()))  # 2 steps per epoch: the last step runs at a quarter
    assert all(group["lr"] == pytest.approx(2.5e-4) for opt in recipe.optimizers().values() for group in opt.param_groups)


def test_the_decoder_runs_as_a_transposed_convolution_equal_to_upsampling_and_3x3():
    """Each decoder stage's 4x4 stride-2 taps give exactly nearest x2 + the stored 3x3 convolution, in
    training (gradients reach the 3x3 weights) and folded for inference, so old files draw the same pictures."""
    torch.manual_seed(0)
    model = Pix2PixModel.create(Pix2PixConfig(size=S, gf=8, df=8, dropout=0.0))
    for up in model.generator.ups:
        x = torch.randn(2, up.conv.in_channels, 5, 7, requires_grad=True)
        reference = up.conv(F.interpolate(torch.relu(x), scale_factor=2.0, mode="nearest"))
        reference = torch.tanh(reference) if up.last else up.norm(reference)
        ours = up(x)
        assert ours.shape == reference.shape
        assert torch.allclose(ours, reference, atol=2e-5)
        ours.square().sum().backward()
        assert up.conv.weight.grad is not None and up.conv.weight.grad.abs().sum() > 0
    engine = REGISTRY["pix2pix"].engine(model, torch.device("cpu"))
    x = torch.randn(1, 5, S, S)
    with torch.no_grad():
        trained = model.generator.eval()(x)
        assert torch.allclose(engine.folded(x), trained, atol=1e-5)
        assert all(up.taps is not None for up in engine.folded.ups)
        assert all(up.taps is None for up in model.generator.ups)  # the stored networks keep training their 3x3 weights


def test_bfloat16_is_kept_only_where_faster_and_draws_the_float32_picture():
    model = Pix2PixModel.create(Pix2PixConfig(size=S, gf=8, df=8)).eval()
    engine = REGISTRY["pix2pix"].engine(model, torch.device("cpu"))
    engine.warm_up(Pix2PixSettings(bfloat16=False))
    assert engine.fast is None
    engine.fast = copy.deepcopy(engine.folded).to(torch.bfloat16)  # as the warm-up keeps it on a CPU with BF16 units
    sketch = discs(1).sketches[0]
    quick = next(iter(engine.start(sketch, None, Pix2PixSettings(seed=0)))).images()[0].astype(int)
    plain = next(iter(engine.start(sketch, None, Pix2PixSettings(seed=0, bfloat16=False)))).images()[0].astype(int)
    assert np.abs(quick - plain).max() <= 8 and np.abs(quick - plain).mean() < 1.5


def test_sampled_dropout_gives_measured_variety_and_one_candidate_none():
    model = Pix2PixModel.create(Pix2PixConfig(size=S, gf=8, df=8, dropout=0.5)).eval()
    engine = REGISTRY["pix2pix"].engine(model, torch.device("cpu"))
    sketch = discs(1).sketches[0]
    one = next(iter(engine.start(sketch, None, Pix2PixSettings(seed=1))))
    four = next(iter(engine.start(sketch, None, Pix2PixSettings(seed=1, candidates=4))))
    again = next(iter(engine.start(sketch, None, Pix2PixSettings(seed=1, candidates=4))))
    assert one.final and one.candidates == 1 and one.info["spread"] == 0.0
    assert four.candidates == 4 and four.info["spread"] > 0
    assert np.array_equal(four.images(), again.images())  # the seed decides the candidates
    assert np.array_equal(four.images()[0], one.images()[0])  # candidate 0 is the deterministic picture
    with pytest.raises(ValueError):
        one.images("sketch")  # no ghost guide: pix2pix draws no sketch of its own


def test_palettes_colour_each_closed_area_and_leave_the_paper_and_the_users_hints_alone():
    grey = torch.ones(1, 1, S, S)
    grey[..., 4, 4:14] = grey[..., 13, 4:14] = grey[..., 4:14, 4] = grey[..., 4:14, 13] = -1  # a closed square
    grey[..., 18, 18:30] = grey[..., 29, 18:30] = grey[..., 18:30, 18] = grey[..., 18:30, 29] = -1  # and another
    grey[..., 2:30, 16] = -1  # an open line: no area
    user = torch.zeros(1, 4, S, S)
    user[0, :3, 22:24, 22:24] = torch.tensor([0.2, 0.4, -0.6]).view(3, 1, 1)
    user[0, 3, 22:24, 22:24] = 1
    palettes = palette_hints(grey, user, 3, seed=5)
    assert palettes.shape == (3, 4, S, S)
    marked = palettes[:, 3] > 0
    assert marked[:, 5:13, 5:13].flatten(1).any(1).all()  # the first square gets a dab in every candidate
    assert torch.equal(palettes[:, :, 19:29, 19:29], user[:, :, 19:29, 19:29].expand(3, -1, -1, -1))  # the user's area is theirs
    outside = torch.ones(S, S, dtype=torch.bool)
    outside[4:14, 4:14] = outside[18:30, 18:30] = False
    assert not marked[:, outside].any()  # nothing on the paper around the drawing
    colours = palettes[:, :3, 5:13, 5:13].flatten(2).amax(2)
    assert not torch.allclose(colours[0], colours[1]) and torch.equal(palettes, palette_hints(grey, user, 3, seed=5))
    assert palette_hints(torch.ones(1, 1, S, S), None, 3, seed=5) is None  # no closed area: no palette


def test_palette_candidates_differ_far_more_than_dropout_and_fall_back_to_it_without_areas():
    model = Pix2PixModel.create(Pix2PixConfig(size=S, gf=8, df=8, dropout=0.5)).eval()
    engine = REGISTRY["pix2pix"].engine(model, torch.device("cpu"))
    assert engine.capabilities.variations and engine.capabilities.hints
    sketch = discs(1).sketches[0]
    run = lambda picture, **kw: next(iter(engine.start(picture, None, Pix2PixSettings(seed=2, candidates=4, **kw))))
    palettes, dropout = run(sketch), run(sketch, variety="dropout")
    assert np.array_equal(palettes.images()[0], dropout.images()[0])  # candidate 0 is the model's own picture either way
    assert palettes.info["spread"] > 2 * dropout.info["spread"] > 0
    line = np.full((S, S), 255, np.uint8)
    line[16, 4:28] = 0
    assert np.array_equal(run(line).images(), run(line, variety="dropout").images())
    with pytest.raises(SettingsError):
        Pix2PixSettings(variety="rainbow")
    plain = REGISTRY["pix2pix"].engine(Pix2PixModel.create(Pix2PixConfig(size=S, gf=8, df=8, hints=False)).eval(), torch.device("cpu"))
    assert not plain.capabilities.variations and not plain.capabilities.hints


def test_hue_rotation_keeps_white_and_turns_colours():
    pictures = torch.tensor([[1.0, 1.0, 1.0], [1.0, -1.0, -1.0]]).T.reshape(1, 3, 1, 2).repeat(2, 1, 1, 1)
    turned = rotate_hue(pictures, torch.tensor([0.0, 2.0]))
    assert torch.allclose(turned[0], pictures[0], atol=1e-5)
    assert torch.allclose(turned[1, :, 0, 0], pictures[1, :, 0, 0], atol=1e-5)  # white stays white
    assert not torch.allclose(turned[1, :, 0, 1], pictures[1, :, 0, 1], atol=0.2)  # red is another colour now


def test_training_settings_refuse_bad_values():
    for bad in ({"l1_weight": float("nan")}, {"ssim_weight": -1.0}, {"epochs": 0}, {"recolour": 2.0}, {"size": 100}, {"bogus": 1}, {"decay_epochs": 2}):
        with pytest.raises(SettingsError):
            Pix2PixTrainSettings.from_dict({**tiny_settings().to_dict(), **bad})


def test_hostile_contextual_architectures_are_refused_before_any_network_is_built(tmp_path, tiny_checkpoint):
    from safetensors.torch import save as st_save

    from sketchapp.core.engines.contextual.recipe import fine_tune_settings
    from sketchapp.core.trainer import TrainingError

    metadata, tensors = read_checkpoint(tiny_checkpoint)
    for change in ({"gf": 100000}, {"z_dim": 1e9}, {"gf": "16"}, {"half_size": True}, {"gf": 512, "df": 512, "half_size": 512}):
        bad = tmp_path / "bad.safetensors"
        record = {**metadata, "architecture": {**metadata["architecture"], **change}}
        bad.write_bytes(st_save(tensors, metadata={"sketchapp": json.dumps(record)}))
        with pytest.raises(CheckpointError, match="invalid architecture"):
            load_engine_model(bad)
        with pytest.raises(TrainingError, match="invalid architecture"):
            fine_tune_settings(bad)


def test_onnx_runtime_is_kept_only_where_faster_draws_the_torch_picture_and_its_export_is_cached(tmp_path, monkeypatch):
    pytest.importorskip("onnxruntime")
    from sketchapp.core import runtime

    model = Pix2PixModel.create(Pix2PixConfig(size=S, gf=8, df=8, colour_grid=16)).eval()
    engine = REGISTRY["pix2pix"].engine(model, torch.device("cpu"))
    sketch = discs(1).sketches[0]
    plain = next(iter(engine.start(sketch, None, Pix2PixSettings(seed=0, bfloat16=False)))).images()[0].astype(int)
    engine.compiled = runtime.compile_generator(engine.folded, torch.zeros(1, 5, S, S), 1, tmp_path, unmixed=True)
    assert engine.compiled is not None and len(list(tmp_path.glob("*.onnx"))) == 1
    quick = next(iter(engine.start(sketch, None, Pix2PixSettings(seed=0, bfloat16=False)))).images()[0].astype(int)
    assert np.abs(quick - plain).max() <= 1
    four = next(iter(engine.start(sketch, None, Pix2PixSettings(seed=0, candidates=4, bfloat16=False)))).images()
    assert four.shape == (4, S, S, 3)  # the batch of variations runs in torch
    converted = []
    monkeypatch.setattr(torch.onnx, "export", lambda *a, **k: converted.append(1))
    assert runtime.compile_generator(engine.folded, torch.zeros(1, 5, S, S), 1, tmp_path, unmixed=True) is not None
    assert not converted  # read back from the cache
    engine.warm_up(Pix2PixSettings(bfloat16=False, runtime=False), cache=tmp_path)
    assert engine.compiled is None
