"""Training: files a run leaves, exact resume, cancel, fine-tuning, batch size, augmentation."""

from __future__ import annotations

import csv
import itertools
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from sketchapp.core import trainer
from sketchapp.core.checkpoint import save_checkpoint
from sketchapp.core.data.datasets import PairSet
from sketchapp.core.engine import CancelToken
from sketchapp.core.engines.contextual import recipe as training
from sketchapp.core.engines.contextual.model import load_model
from sketchapp.core.engines.contextual.recipe import TrainSettings, augment, auto_batch_size, train
from sketchapp.core.errors import SettingsError
from sketchapp.core.images import load_image
from sketchapp.core.trainer import TrainingError

SIZE = 16
FAST = TrainSettings(half_size=SIZE, z_dim=16, gf=8, df=8, ef=8, epochs=2, batch_size=8, encoder_steps=3)


def tiny_pairs(count: int = 30, seed: int = 0) -> PairSet:
    rng = np.random.default_rng(seed)
    images = np.full((count, SIZE, SIZE, 3), 255, np.uint8)
    sketches = np.full((count, SIZE, SIZE), 255, np.uint8)
    for i in range(count):
        y, x, r = rng.integers(4, 12), rng.integers(4, 12), rng.integers(2, 5)
        images[i, y - r : y + r, x - r : x + r] = rng.integers(0, 255, 3)
        sketches[i, y - r, x - r : x + r] = 0
        sketches[i, y + r - 1, x - r : x + r] = 0
    names = [f"p{i:02d}" for i in range(count)]
    return PairSet(sketches, images, names, info={"kind": "test", "sketch_style": "test"})


def run_all(folder: Path, settings: TrainSettings = FAST, **kwargs) -> list:
    return list(train(folder, tiny_pairs(), settings, **kwargs))


def state_tensors(folder: Path) -> dict[str, torch.Tensor]:
    return load_file(str(folder / trainer.STATE_FILE))


def test_a_run_leaves_model_history_samples_and_state(tmp_path):
    events = run_all(tmp_path / "run")
    kinds = [e.kind for e in events]
    assert kinds[0] == "start" and kinds[-1] == "done"
    assert kinds.count("epoch") == 2 and kinds.count("encoder") == 3
    steps = [e.step for e in events if e.kind in ("step", "encoder")]
    assert steps == list(range(1, events[-1].steps + 1))
    assert all(e.eta is not None for e in events if e.kind == "step")

    run = tmp_path / "run"
    with open(run / "losses.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert [int(r["step"]) for r in rows] == steps
    assert {r["phase"] for r in rows} == {"gan", "encoder"}
    for epoch in (1, 2):
        grid = load_image(run / "samples" / f"epoch-{epoch:03d}.png")
        assert grid.shape[0] > SIZE * 4
    model = load_model(run / "model.safetensors")
    assert model.encoder is not None and model.sketch_style == "test"
    assert model.metadata["training"]["step"] == events[-1].steps
    assert model.metadata["sketch_line_width"] == pytest.approx(1.0, abs=0.2)  # tiny_pairs' one-pixel lines
    assert (run / "settings.json").is_file() and (run / "splits.json").is_file()


def _cancel_after(folder: Path, stop_at: int, settings: TrainSettings = FAST) -> list:
    cancel = CancelToken()
    events = []
    for event in train(folder, tiny_pairs(), settings, cancel=cancel):
        events.append(event)
        if event.step == stop_at and event.kind in ("step", "encoder"):
            cancel.cancel()
    return events


def test_a_killed_run_resumes_from_its_last_save_without_duplicate_history(tmp_path):
    run_all(tmp_path / "straight")
    stream = train(tmp_path / "killed", tiny_pairs(), FAST)
    for event in stream:
        if event.kind == "epoch":  # state saved at the end of epoch 1
            break
    for event in stream:
        if event.kind == "step":  # one more step, then the process "dies"
            break
    stream.close()
    trainer.RunFolder(tmp_path / "killed", 0, training.LOSS_COLUMNS).append_losses(
        [{"step": event.step, "phase": "gan", "epoch": 2, "seconds": "0"}]
    )
    list(train(tmp_path / "killed", tiny_pairs(), FAST, resume=True))
    a, b = state_tensors(tmp_path / "straight"), state_tensors(tmp_path / "killed")
    assert all(torch.equal(a[k], b[k]) for k in a)
    steps = [int(r["step"]) for r in csv.DictReader(open(tmp_path / "killed" / "losses.csv", newline=""))]
    assert steps == sorted(set(steps)) and steps[-1] == len(steps)


def test_resume_may_add_epochs_and_refuses_confusing_folders(tmp_path):
    run_all(tmp_path / "run")
    more = list(train(tmp_path / "run", tiny_pairs(), replace(FAST, epochs=3), resume=True))
    assert more[-1].epochs == 3 and (tmp_path / "run" / "samples" / "epoch-003.png").is_file()
    with pytest.raises(TrainingError, match="already holds a training run"):
        run_all(tmp_path / "run")
    with pytest.raises(TrainingError, match="nothing to resume"):
        list(train(tmp_path / "new", tiny_pairs(), FAST, resume=True))


def test_fine_tuning_starts_from_the_given_model(tmp_path):
    run_all(tmp_path / "base")
    base = load_model(tmp_path / "base" / "model.safetensors")
    stream = train(tmp_path / "tuned", tiny_pairs(seed=5), FAST, init_from=tmp_path / "base" / "model.safetensors")
    next(stream)  # started: the weights are the base model's, before any step
    stream.close()
    tensors = load_file(str(tmp_path / "tuned" / trainer.STATE_FILE)) if (tmp_path / "tuned" / trainer.STATE_FILE).exists() else None
    assert tensors is None  # nothing saved before the first step
    events = list(train(tmp_path / "tuned2", tiny_pairs(seed=5), replace(FAST, epochs=1, encoder_steps=0, lr=1e-12),
                        init_from=tmp_path / "base" / "model.safetensors"))
    tuned = load_model(tmp_path / "tuned2" / "model.safetensors")
    for key, value in base.generator.state_dict().items():
        if value.is_floating_point() and "running" not in key:
            assert torch.allclose(value, tuned.generator.state_dict()[key], atol=1e-3), key
    assert events[-1].kind == "done"

    other = replace(FAST, gf=4)
    with pytest.raises(TrainingError, match="fine-tuning keeps the architecture"):
        list(train(tmp_path / "bad", tiny_pairs(), other, init_from=tmp_path / "base" / "model.safetensors"))


def test_auto_batch_size_fits_the_memory_there_is(tmp_path, monkeypatch):
    from sketchapp.core.engines.contextual.model import JointModel

    model = JointModel.create(FAST.config)
    assert auto_batch_size(model, torch.device("cpu")) == 64
    monkeypatch.setattr(training, "_available_memory", lambda: 200_000)
    small = auto_batch_size(model, torch.device("cpu"))
    assert 1 <= small < 64 and small & (small - 1) == 0
    events = run_all(tmp_path / "auto", replace(FAST, batch_size=0, epochs=1, encoder_steps=0))
    assert "batch" in events[0].message


def test_augmentation_warps_both_halves_alike_and_pads_with_paper():
    torch.manual_seed(0)
    half = torch.ones(4, 3, SIZE, SIZE)
    half[:, :, 4:12, 2:6] = -1.0
    batch = torch.cat([half, half], dim=3)
    settings = replace(FAST, noise=0.0, rotate_degrees=20.0, shift=0.2)
    out = augment(batch, settings, torch.Generator().manual_seed(1))
    sketch, image = out[..., :SIZE], out[..., SIZE:]
    assert torch.allclose(sketch, image, atol=1e-5)
    assert not torch.allclose(out, batch)
    assert (out[:, :, 0, 0] > 0.9).all()  # corners uncovered by the warp are white
    noisy = augment(batch, replace(settings, noise=0.1), torch.Generator().manual_seed(1))
    assert torch.allclose(noisy[..., :SIZE], sketch) and not torch.allclose(noisy[..., SIZE:], image)


def test_line_jitter_thickens_and_darkens_sketch_lines_only():
    half = torch.ones(6, 3, SIZE, SIZE)
    half[:, :, 8, 2:14] = 0.4  # a thin, light grey line, as XDoG draws
    batch = torch.cat([half, half], dim=3)
    plain = replace(FAST, noise=0.0, flip=False, rotate_degrees=0.0, scale=0.0, shift=0.0)
    out = augment(batch, replace(plain, line_jitter=1.0), torch.Generator().manual_seed(3))
    sketch, image = out[..., :SIZE], out[..., SIZE:]
    ink_before = ((1 - half) / 2).sum(dim=(1, 2, 3))
    ink_after = ((1 - sketch) / 2).sum(dim=(1, 2, 3))
    assert (ink_after > ink_before).all()  # every sketch got bolder
    assert len({round(v, 3) for v in ink_after.tolist()}) == 6  # each by its own amount
    assert sketch.min() >= -1 and sketch.max() <= 1
    assert (sketch[:, :, 0:5] == 1).all()  # paper far from the line stays white
    assert torch.allclose(image, half, atol=1e-6)  # the picture half is untouched
    assert torch.allclose(augment(batch, plain, torch.Generator().manual_seed(3)), batch, atol=1e-6)


def test_the_r1_penalty_holds_the_discriminator_back():
    from sketchapp.core.engines.contextual.model import JointModel

    real = torch.rand(4, 3, SIZE, 2 * SIZE) * 2 - 1
    z = torch.rand(4, FAST.z_dim) * 2 - 1
    slopes = {}
    for gamma in (0.0, 50.0):
        torch.manual_seed(0)
        model = JointModel.create(FAST.config)
        opt_g = torch.optim.Adam(model.generator.parameters(), 1e-3)
        opt_d = torch.optim.Adam(model.discriminator.parameters(), 1e-3)
        for _ in range(15):
            losses = training._gan_step(model.generator, model.discriminator, opt_g, opt_d, real, z, 1, r1_gamma=gamma)
        probe = real.clone().requires_grad_(True)
        (grad,) = torch.autograd.grad(model.discriminator(probe).sum(), probe)
        slopes[gamma] = grad.pow(2).sum().item()
        assert {"d_loss", "g_loss", "d_real", "d_fake"} <= set(losses)
    assert slopes[50.0] < slopes[0.0] / 2


def test_diff_augment_moves_and_cuts_both_halves_alike_and_recolours_only_the_image():
    batch = torch.rand(6, 3, SIZE, 2 * SIZE) * 2 - 1
    batch[..., :SIZE] = torch.where(batch[..., :SIZE] > 0, 1.0, -1.0)  # black and white sketches
    out = training.diff_augment(batch, torch.Generator().manual_seed(1))
    assert out.shape == batch.shape
    assert torch.equal(out, training.diff_augment(batch, torch.Generator().manual_seed(1)))
    assert not torch.equal(out, training.diff_augment(batch, torch.Generator().manual_seed(2)))
    sketch = out[..., :SIZE]
    # the sketch half keeps its black and white, with white paper moved in and a grey (0) cutout
    assert set(torch.unique(sketch).tolist()) <= {-1.0, 0.0, 1.0}
    assert (sketch == 0).any() and not torch.allclose(out[..., SIZE:], batch[..., SIZE:])
    cut_sketch, cut_image = sketch == 0, (out[..., SIZE:] == 0).all(1, keepdim=True).expand_as(sketch)
    assert torch.equal(cut_sketch.all(1), cut_image.all(1))  # the same cutout on both halves
    picture = batch.clone().requires_grad_(True)
    training.diff_augment(picture, torch.Generator().manual_seed(1)).sum().backward()
    assert picture.grad is not None and picture.grad.abs().sum() > 0  # G learns through it


def test_processes_sharing_a_batch_augment_their_shares_as_one_process_would_the_whole():
    batch = torch.rand(6, 3, SIZE, 2 * SIZE) * 2 - 1
    whole = training.diff_augment(batch, torch.Generator().manual_seed(3))
    shares = [training.diff_augment(batch[r::2], torch.Generator().manual_seed(3), (r, 2)) for r in range(2)]
    assert torch.allclose(shares[0], whole[0::2]) and torch.allclose(shares[1], whole[1::2])

    data = training.to_joint_tensor(tiny_pairs())
    settings = replace(FAST, line_jitter=0.5)
    real, z = training._gan_batch(data, 5, 3, 8, settings, trainer._step_generator(0, 5), 0, 1, torch.device("cpu"))
    parts = [training._gan_batch(data, 5, 3, 8, settings, trainer._step_generator(0, 5), r, 2, torch.device("cpu"))
             for r in range(2)]
    for r, (real_share, z_share) in enumerate(parts):
        assert torch.equal(real_share, real[r::2]) and torch.equal(z_share, z[r::2])


def test_a_gan_step_judges_through_diff_augment_with_r1():
    from sketchapp.core.engines.contextual.model import JointModel

    torch.manual_seed(0)
    model = JointModel.create(FAST.config)
    real = torch.rand(4, 3, SIZE, 2 * SIZE) * 2 - 1
    z = torch.rand(4, FAST.z_dim) * 2 - 1
    opt_g = torch.optim.Adam(model.generator.parameters(), 1e-3)
    opt_d = torch.optim.Adam(model.discriminator.parameters(), 1e-3)
    seen = []
    model.discriminator.register_forward_pre_hook(lambda _m, args: seen.append(args[0].detach().clone()))
    before = [p.detach().clone() for p in model.generator.parameters()]
    losses = training._gan_step(model.generator, model.discriminator, opt_g, opt_d, real, z, 1, r1_gamma=1.0,
                                augment_rng=torch.Generator().manual_seed(0))
    assert (seen[0] == 0).any() and not torch.allclose(seen[0], real)  # D saw the real pairs augmented
    assert all(torch.isfinite(torch.tensor(v)) for v in losses.values())
    assert any(not torch.equal(a, b) for a, b in zip(before, model.generator.parameters()))


def test_a_finished_run_given_more_epochs_averages_its_encoder_again(tmp_path):
    settings = replace(FAST, recon_weight=5.0, ema=0.9)
    run_all(tmp_path / "run", settings)
    stream = train(tmp_path / "run", tiny_pairs(), replace(settings, epochs=3), resume=True)
    for event in stream:
        if event.kind == "epoch" and event.epoch == 3:
            break
    stream.close()
    state = state_tensors(tmp_path / "run")
    assert any(k.startswith("emaE.") for k in state)
    exported = load_file(str(tmp_path / "run" / "model.safetensors"))
    assert torch.equal(exported["E.features.0.weight"].float(), state["emaE.features.0.weight"].half().float())


def test_the_weight_average_follows_the_trained_weights_with_a_ramped_decay():
    trained = torch.nn.Sequential(torch.nn.Linear(3, 3), torch.nn.BatchNorm1d(3))
    average = trainer.WeightAverage(trained, 0.99)
    start = trained[0].weight.detach().clone()
    assert average.rate() == pytest.approx(0.9)  # the first update moves 90% of the way
    with torch.no_grad():
        trained[0].weight.add_(1.0)
    trained.train()(torch.randn(8, 3))  # moves the batch-norm statistics and its counter
    average.update(trained)
    assert torch.allclose(average.module[0].weight, start + 0.9)
    assert torch.equal(average.module[1].num_batches_tracked, trained[1].num_batches_tracked)
    assert not average.module.training and not any(p.requires_grad for p in average.module.parameters())
    for _ in range(2000):
        average.update(trained)
    assert average.rate() == pytest.approx(0.01)  # capped at 1 - decay
    assert torch.allclose(average.module[0].weight, trained[0].weight)
    assert torch.allclose(average.module[1].running_mean, trained[1].running_mean)


def test_with_ema_the_run_exports_the_averaged_networks_and_resumes_exactly(tmp_path):
    settings = replace(FAST, encoder_steps=0, recon_weight=5.0, ema=0.9)
    events = run_all(tmp_path / "straight", settings)
    state = state_tensors(tmp_path / "straight")
    exported = load_file(str(tmp_path / "straight" / "model.safetensors"))
    for part in ("G", "E"):
        keys = [k for k in state if k.startswith(f"ema{part}.") and state[k].is_floating_point()]
        assert keys
        for key in keys:
            name = key.partition(".")[2]
            assert torch.allclose(exported[f"{part}.{name}"].float(), state[key], atol=1e-3), key
        assert any(not torch.allclose(state[k], state[f"{part}.{k.partition('.')[2]}"]) for k in keys)
    assert torch.equal(exported["D.features.0.weight"].float(), state["D.features.0.weight"].half().float())
    done = events[-1].model  # the finished networks are the averaged ones, with the file's metadata
    assert torch.equal(done.generator.state_dict()["project.weight"], state["emaG.project.weight"])
    assert done.metadata["sketch_line_width"] == pytest.approx(1.0, abs=0.2)

    cancelled = _cancel_after(tmp_path / "split", 3, settings)
    assert cancelled[-1].kind == "cancelled"
    list(train(tmp_path / "split", tiny_pairs(), settings, resume=True))
    split = state_tensors(tmp_path / "split")
    assert split.keys() == state.keys()
    assert all(torch.equal(state[k], split[k]) for k in state)


def test_with_ema_the_encoder_only_phase_trains_e_for_the_averaged_generator(tmp_path, monkeypatch):
    settings = replace(FAST, recon_weight=5.0, ema=0.9)
    generators, starts = [], []
    encoder_step = training._encoder_step

    def watched(encoder, generator, *args):
        if not starts:
            starts.append({k: v.clone() for k, v in encoder.state_dict().items()})
        generators.append(generator)
        return encoder_step(encoder, generator, *args)

    monkeypatch.setattr(training, "_encoder_step", watched)
    stream = train(tmp_path / "run", tiny_pairs(), settings)
    for event in stream:
        if event.kind == "epoch" and event.epoch == settings.epochs:
            break
    before = state_tensors(tmp_path / "run")  # saved at the end of the GAN phase
    list(stream)
    state = state_tensors(tmp_path / "run")
    assert not any(k.startswith("emaE.") for k in state)  # E continued from its average
    assert all(torch.equal(starts[0][k], before[f"emaE.{k}"]) for k in starts[0])
    assert len(generators) == settings.encoder_steps and len({id(g) for g in generators}) == 1
    averaged = generators[0].state_dict()
    assert all(torch.equal(averaged[k], state[f"emaG.{k}"]) for k in averaged)
    assert not torch.equal(averaged["project.weight"], state["G.project.weight"])
    exported = load_file(str(tmp_path / "run" / "model.safetensors"))
    assert torch.equal(exported["E.features.0.weight"].float(), state["E.features.0.weight"].half().float())
    assert torch.equal(exported["G.project.weight"].float(), state["emaG.project.weight"].half().float())


def test_settings_are_validated():
    with pytest.raises(SettingsError, match="epochs"):
        TrainSettings(epochs=0)
    with pytest.raises(SettingsError, match="half_size"):
        TrainSettings(half_size=48)
    with pytest.raises(SettingsError, match="must be int"):
        TrainSettings(gf="64")
    with pytest.raises(SettingsError, match="R1 gamma"):
        TrainSettings(r1_gamma=-1.0)
    with pytest.raises(SettingsError, match="line jitter"):
        TrainSettings(line_jitter=1.5)
    with pytest.raises(SettingsError, match="EMA decay"):
        TrainSettings(ema=1.0)
    with pytest.raises(SettingsError, match="unknown training settings"):
        TrainSettings.from_dict({"epoch": 3})
    assert TrainSettings(beta1=0).beta1 == 0.0 and isinstance(TrainSettings(beta1=0).beta1, float)


def test_data_of_the_wrong_size_or_empty_split_is_refused(tmp_path):
    with pytest.raises(TrainingError, match="16 px but the model is 32 px"):
        list(train(tmp_path / "r", tiny_pairs(), replace(FAST, half_size=32)))
    pairs = tiny_pairs(3)
    pairs.splits = {"train": [], "val": pairs.names, "test": []}
    with pytest.raises(TrainingError, match="training split is empty"):
        list(train(tmp_path / "r2", pairs, FAST))


def test_a_checkpoint_from_training_completes_sketches(tmp_path):
    from sketchapp.core.engines.contextual.engine import CompletionSettings, ContextualEngine

    run_all(tmp_path / "run")
    model = load_model(tmp_path / "run" / "model.safetensors")
    sketch = np.full((40, 40), 255, np.uint8)
    sketch[10:30, 10] = 0
    engine = ContextualEngine(model, torch.device("cpu"))
    last = list(engine.start(sketch, None, CompletionSettings(candidates=2, iterations=5, start="encoder", seed=1)))[-1]
    assert last.final and last.images("image").shape == (2, SIZE, SIZE, 3)
    save_checkpoint(tmp_path / "copy.safetensors", model)


def test_the_largest_seeds_train(tmp_path):
    events = run_all(tmp_path / "run", replace(FAST, seed=2**63 - 1, epochs=1, encoder_steps=1))
    assert events[-1].kind == "done"


def test_timed_saves_happen_between_steps(tmp_path, monkeypatch):
    ticks = itertools.count(0, 400)  # each look at the clock is 400 s later: a save is always due
    monkeypatch.setattr(trainer.time, "monotonic", lambda: float(next(ticks)))  # the shared loop keeps the time
    events = run_all(tmp_path / "run", replace(FAST, checkpoint_minutes=1.0))
    saves = [e.step for e in events if e.kind == "saved"]
    assert len(saves) >= events[-1].steps - 1  # timed saves between steps, in both phases
    assert any(step > 6 for step in saves)  # ... including the encoder's
    resumed = list(train(tmp_path / "run", tiny_pairs(), FAST, resume=True))
    assert resumed[-1].kind == "done"


def test_keep_every_saves_usable_epoch_models(tmp_path):
    run_all(tmp_path / "run", replace(FAST, epochs=4, keep_every=2, encoder_steps=0))
    kept = sorted(p.name for p in (tmp_path / "run" / "epochs").iterdir())
    assert kept == ["epoch-002.safetensors", "epoch-004.safetensors"]
    assert load_model(tmp_path / "run" / "epochs" / kept[0]).metadata["training"]["step"] == 2 * 3


def _redraw_error(model, pairs: PairSet) -> float:
    joint = training.to_joint_tensor(pairs).float().div(127.5).sub(1.0)
    with torch.no_grad():
        redrawn = model.generator(model.encoder(joint[..., :SIZE]))
    return torch.nn.functional.l1_loss(redrawn, joint).item()


def test_reconstruction_training_teaches_the_encoder_and_generator_to_redraw_real_pairs(tmp_path):
    pairs = tiny_pairs()
    settings = replace(FAST, epochs=12, encoder_steps=0, recon_weight=10.0, augment=False, lr=1e-3)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(settings.seed)
        from sketchapp.core.engines.contextual.model import JointModel

        untrained = JointModel.create(settings.config).eval()
    events = list(train(tmp_path / "run", pairs, settings))
    assert events[-1].kind == "done"
    model = load_model(tmp_path / "run" / "model.safetensors")
    assert model.metadata["training"]["settings"]["recon_weight"] == 10.0
    # no encoder phase ran, so only the GAN phase can have trained E
    assert _redraw_error(model, pairs) < 0.6 * _redraw_error(untrained, pairs)
    with open(tmp_path / "run" / "losses.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    first, last = float(rows[0]["r_loss"]), float(rows[-1]["r_loss"])
    assert last < first

    from sketchapp.core.engines.contextual.recipe import fine_tune_settings

    inherited = fine_tune_settings(tmp_path / "run" / "model.safetensors")
    assert inherited.recon_weight == 10.0 and inherited.encoder_steps == 0  # E keeps learning in the GAN phase
    plain = fine_tune_settings(tmp_path / "run" / "model.safetensors", recon_weight=0.0)
    assert plain.recon_weight == 0.0 and plain.encoder_steps == training.FINE_TUNE_ENCODER_STEPS
    assert fine_tune_settings(tmp_path / "run" / "model.safetensors", encoder_steps=7).encoder_steps == 7


def test_the_encoder_only_phase_is_left_out_after_a_gan_with_a_reconstruction_term():
    assert TrainSettings.from_dict({}).encoder_steps == training.ENCODER_STEPS
    assert TrainSettings.from_dict({"recon_weight": 50}).encoder_steps == 0
    assert TrainSettings.from_dict({"recon_weight": 50, "encoder_steps": 20}).encoder_steps == 20
    assert TrainSettings.from_dict({"recon_weight": 0.0}).encoder_steps == training.ENCODER_STEPS



def test_a_run_with_a_reconstruction_term_ends_with_the_gan(tmp_path):
    recipe = {k: v for k, v in FAST.to_dict().items() if k != "encoder_steps"}
    settings = TrainSettings.from_dict({**recipe, "epochs": 1, "recon_weight": 5.0})
    events = list(train(tmp_path / "run", tiny_pairs(), settings))
    assert events[-1].kind == "done" and events[-1].steps == events[-1].step
    assert {event.phase for event in events} == {"gan"}


def test_a_reconstruction_weight_needs_an_encoder():
    with pytest.raises(SettingsError, match="needs an encoder"):
        replace(FAST, ef=0, recon_weight=5.0)
    with pytest.raises(SettingsError, match="reconstruction weight"):
        replace(FAST, recon_weight=-1.0)
    with pytest.raises(SettingsError, match="judging redrawn pairs needs a reconstruction weight"):
        replace(FAST, judge_redrawn=True)


@pytest.mark.parametrize("judge", [False, True])
def test_judge_redrawn_shows_the_discriminator_the_redrawn_pairs(judge):
    from sketchapp.core.engines.contextual.model import JointModel

    torch.manual_seed(0)
    model = JointModel.create(FAST.config)
    real = torch.rand(4, 3, SIZE, 2 * SIZE) * 2 - 1
    z = torch.rand(3, FAST.z_dim) * 2 - 1
    seen: list[int] = []
    model.discriminator.register_forward_hook(lambda _module, args, _out: seen.append(len(args[0])))
    opt = {name: torch.optim.Adam(net.parameters(), 1e-3)
           for name, net in (("G", model.generator), ("D", model.discriminator), ("E", model.encoder))}
    losses = training._gan_step(model.generator, model.discriminator, opt["G"], opt["D"], real, z, 2,
                                model.encoder, opt["E"], 10.0, judge)
    fakes = 3 + 4 if judge else 3
    assert seen == [4, fakes, fakes, fakes]  # real, fakes for D, then G's two rounds
    assert {"d_loss", "g_loss", "r_loss"} <= set(losses)


def test_fine_tuning_keeps_the_recipe_that_made_the_model(tmp_path):
    from sketchapp.core.engines.contextual.recipe import fine_tune_settings

    settings = replace(FAST, epochs=1, encoder_steps=0, recon_weight=5.0, judge_redrawn=True, r1_gamma=2.0,
                       line_jitter=0.5, ema=0.99, diff_augment=True)
    events = list(train(tmp_path / "run", tiny_pairs(), settings))
    assert events[-1].kind == "done"
    inherited = fine_tune_settings(tmp_path / "run" / "model.safetensors")
    assert inherited.judge_redrawn and inherited.recon_weight == 5.0
    assert inherited.r1_gamma == 2.0 and inherited.line_jitter == 0.5 and inherited.ema == 0.99
    assert inherited.diff_augment
    assert not fine_tune_settings(tmp_path / "run" / "model.safetensors", judge_redrawn=False).judge_redrawn


def test_a_resumed_run_cleans_up_interrupted_saves_keeps_its_thread_count_and_saves_often_in_every_phase(tmp_path, monkeypatch):
    settings = replace(FAST, encoder_steps=12)
    stream = train(tmp_path / "run", tiny_pairs(), settings)
    for event in stream:
        if event.kind == "epoch":
            break
    stream.close()
    (tmp_path / "run" / ".state.safetensors.abc123.tmp").write_bytes(b"half a save")  # a kill mid-save
    (tmp_path / "run" / "samples" / ".epoch-002.png.x.tmp").write_bytes(b"half a picture")
    meta = trainer.read_state(tmp_path / "run" / trainer.STATE_FILE)[0]
    assert meta["threads"] == torch.get_num_threads()
    threads = torch.get_num_threads()
    torch.set_num_threads(max(1, threads - 1) if threads > 1 else 2)  # resumed on another thread count
    try:
        events = list(train(tmp_path / "run", tiny_pairs(), settings, resume=True))
        assert torch.get_num_threads() == threads  # the recorded count is used again
    finally:
        torch.set_num_threads(threads)
    assert "removed 2 unfinished saves" in events[0].message and "threads as when it started" in events[0].message
    assert not list((tmp_path / "run").rglob("*.tmp"))
    per_epoch = int(meta["steps_per_epoch"])
    encoder_saves = [e.step for e in events if e.kind == "saved" and e.phase == "encoder"]
    gan_end = int(meta["epoch_steps"])
    assert encoder_saves == [gan_end + k for k in range(per_epoch, 12, per_epoch)]
