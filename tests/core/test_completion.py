"""The contextual completion engine really completes sketches."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
import torch

from sketchapp.core.engines.contextual.engine import CompletionSettings, ContextualEngine
from sketchapp.core.engine import CancelToken
from sketchapp.core.errors import SettingsError
from sketchapp.core.engines.contextual.networks import sample_z
from tests.conftest import planted

H = 16
FAST = CompletionSettings(candidates=8, iterations=300, seed=0, patience=0)


def run(engine: ContextualEngine, sketch: np.ndarray, **kwargs):
    hints = kwargs.pop("hints", None)
    z = kwargs.pop("z", None)
    cancel = kwargs.pop("cancel", None)
    settings = FAST.updated(**kwargs)
    return list(engine.start(sketch, hints=hints, settings=settings, cancel=cancel, z=z))


def half_error(pictures: torch.Tensor, truth: torch.Tensor, part: str) -> torch.Tensor:
    """Mean absolute error per candidate on one half of the joint picture."""
    sl = slice(0, H) if part == "sketch" else slice(H, 2 * H)
    return (pictures[..., sl] - truth[..., sl]).abs().mean(dim=(1, 2, 3))


@pytest.mark.parametrize("contextual", ["kl", "l1"])
def test_planted_z_is_recovered(tiny_model, contextual):
    """Given only G(z*)'s sketch half, completion finds G(z*)'s image half too."""
    _, truth, sketch = planted(tiny_model)
    with torch.no_grad():
        random_pictures = tiny_model.generator(sample_z(64, 32, torch.Generator().manual_seed(5)))
    random_sketch = half_error(random_pictures, truth, "sketch").median()
    random_image = half_error(random_pictures, truth, "image").median()

    final = run(ContextualEngine(tiny_model), sketch, contextual=contextual)[-1]
    assert final.final
    best = torch.cat([final.sketches, final.pictures], dim=-1)[final.best : final.best + 1]  # the joint picture
    assert half_error(best, truth, "sketch").item() < 0.1 * random_sketch
    assert half_error(best, truth, "image").item() < 0.2 * random_image


def test_loss_decreases_and_snapshots_stream(tiny_model):
    _, _, sketch = planted(tiny_model)
    snapshots = run(ContextualEngine(tiny_model), sketch, iterations=100)
    phases = [s.phase for s in snapshots]
    assert phases[0] == "init" and phases[-1] == "done"
    optimise = [s for s in snapshots if s.phase == "optimise"]
    assert [s.iteration for s in optimise] == list(range(1, 101))
    first, last = optimise[0].losses["total"].min(), snapshots[-1].losses["total"].min()
    assert last < 0.5 * first
    assert all(not s.final for s in snapshots[:-1])


def test_random_start_is_best_of_n(tiny_model):
    """The starts handed to the optimiser are the K best of N random codes by the contextual term."""
    _, _, sketch = planted(tiny_model)
    snapshots = run(ContextualEngine(tiny_model), sketch, iterations=0, init_samples=30, candidates=4)
    inits = [s for s in snapshots if s.phase == "init"]
    assert [s.info["init_done"] for s in inits] == [4, 8, 12, 16, 20, 24, 28, 30]
    chosen = inits[-1].losses["contextual"]
    assert list(chosen) == sorted(chosen)
    # the kept losses only ever improve as more samples are scored
    assert all(b.losses["contextual"].max() <= a.losses["contextual"].max() + 1e-7 for a, b in zip(inits, inits[1:]))


def test_candidates_differ(tiny_model):
    _, _, sketch = planted(tiny_model)
    final = run(ContextualEngine(tiny_model), sketch, iterations=30)[-1]
    images = final.images("image").astype(np.int16)
    assert images.shape == (8, H, H, 3) and images.dtype == np.int16
    for i in range(8):
        for j in range(i + 1, 8):
            assert np.abs(images[i] - images[j]).mean() > 1.0


def test_hint_pixels_are_honoured(tiny_model):
    """Colour hints on the image half pull those pixels toward the hinted colours."""
    _, truth, _ = planted(tiny_model, seed=3)
    blank = np.full((H, H, 3), 255, np.uint8)  # no sketch constraint beyond white paper
    hint_colours = ((truth[0, :, :, H:].permute(1, 2, 0) + 1) * 127.5).round().byte().numpy()
    hints = np.zeros((H, H, 4), np.uint8)
    hints[:, : H // 2, :3] = hint_colours[:, : H // 2]
    hints[:, : H // 2, 3] = 255
    engine = ContextualEngine(tiny_model)

    def region_error(snapshot) -> float:
        best = snapshot.pictures[snapshot.best]  # the image half
        return (best[:, :, : H // 2] - truth[0, :, :, H : H + H // 2]).abs().mean().item()

    without = region_error(run(engine, blank, contextual="l1")[-1])
    with_hints = region_error(run(engine, blank, contextual="l1", hints=hints, hint_weight=4.0)[-1])
    assert with_hints < 0.5 * without


def test_hints_get_time_to_act_beyond_a_short_preset(tiny_model):
    """A preset's few iterations leave hints no time: a run with hints goes on to hint_iterations."""
    engine = ContextualEngine(tiny_model)
    blank = np.full((H, H, 3), 255, np.uint8)
    hints = np.zeros((H, H, 4), np.uint8)
    hints[:4, :4] = (255, 200, 0, 255)
    short = {"iterations": 5, "hint_iterations": 40}
    with_hints = run(engine, blank, hints=hints, **short)
    assert with_hints[-1].iteration == 40 and {s.iterations for s in with_hints} == {40}
    assert run(engine, blank, **short)[-1].iteration == 5
    assert run(engine, blank, hints=np.zeros((H, H, 4), np.uint8), **short)[-1].iteration == 5  # all transparent
    assert run(engine, blank, hints=hints, iterations=60, hint_iterations=40)[-1].iteration == 60


def test_cancel_stops_within_one_iteration_without_result(tiny_model):
    _, _, sketch = planted(tiny_model)
    token = CancelToken()
    seen = []
    for snapshot in ContextualEngine(tiny_model).start(sketch, settings=FAST, cancel=token):
        seen.append(snapshot)
        if snapshot.iteration == 3:
            token.cancel()
    assert seen[-1].iteration <= 4
    assert not any(s.final for s in seen)


def test_cancel_while_choosing_starts(tiny_model):
    _, _, sketch = planted(tiny_model)
    token = CancelToken()
    seen = []
    for snapshot in ContextualEngine(tiny_model).start(sketch, settings=FAST, cancel=token):
        seen.append(snapshot)
        token.cancel()
    assert len(seen) == 1 and seen[0].phase == "init"


def test_seed_makes_runs_reproducible(tiny_model):
    _, _, sketch = planted(tiny_model)
    engine = ContextualEngine(tiny_model)
    a = run(engine, sketch, iterations=20, seed=7)[-1].images()
    b = run(engine, sketch, iterations=20, seed=7)[-1].images()
    c = run(engine, sketch, iterations=20, seed=8)[-1].images()
    assert np.array_equal(a, b)
    assert not np.array_equal(a, c)


def test_refine_from_given_z(tiny_model):
    """A caller's z (one chosen candidate) is where the run starts, with one candidate per row."""
    _, _, sketch = planted(tiny_model)
    engine = ContextualEngine(tiny_model)
    chosen = run(engine, sketch, iterations=10)[-1]
    z = chosen.z()[chosen.best]
    refined = run(engine, sketch, iterations=50, z=z)
    assert refined[0].phase == "init" and refined[0].info["start"] == "given"
    assert np.allclose(refined[0].z(), z[None])
    assert refined[-1].candidates == 1
    assert refined[-1].losses["total"][0] <= chosen.losses["total"][chosen.best]


def test_encoder_start(tiny_model_with_encoder):
    _, _, sketch = planted(tiny_model_with_encoder)
    engine = ContextualEngine(tiny_model_with_encoder)
    snapshots = run(engine, sketch, iterations=5, start="auto", candidates=4)
    first = snapshots[0]
    assert first.info["start"] == "encoder" and first.candidates == 4
    with torch.no_grad():
        from sketchapp.core.prepare import sketch_tensor

        expected = tiny_model_with_encoder.encoder(sketch_tensor(sketch, H))
    assert torch.allclose(first.latents[0], expected[0].clamp(-1, 1), atol=1e-6)
    assert len({tuple(np.round(z, 4)) for z in first.z()}) == 4


def test_encoder_start_needs_an_encoder(tiny_model):
    _, _, sketch = planted(tiny_model)
    with pytest.raises(SettingsError, match="no encoder"):
        run(ContextualEngine(tiny_model), sketch, start="encoder")


def test_convergence_stop(tiny_model):
    _, _, sketch = planted(tiny_model)
    snapshots = run(ContextualEngine(tiny_model), sketch, iterations=5000, patience=25, min_improvement=1e-3)
    final = snapshots[-1]
    assert final.final and final.info["converged"]
    assert final.iteration < 5000


def test_sgd_with_z_clipping(tiny_model):
    _, _, sketch = planted(tiny_model)
    snapshots = run(ContextualEngine(tiny_model), sketch, optimizer="sgd", lr=0.05, iterations=50)
    assert all(np.abs(s.z()).max() <= 1.0 for s in snapshots)
    first = next(s for s in snapshots if s.phase == "optimise")
    assert snapshots[-1].losses["total"].min() < first.losses["total"].min()


def test_any_sketch_size_and_mode(tiny_model):
    engine = ContextualEngine(tiny_model)
    for sketch in (np.full((300, 120), 255, np.uint8), np.full((7, 50, 4), 128, np.uint8)):
        assert run(engine, sketch, iterations=2)[-1].final


@pytest.mark.parametrize(
    "bad",
    [
        {"candidates": 0},
        {"iterations": -1},
        {"start": "magic"},
        {"contextual": "l2"},
        {"optimizer": "lbfgs"},
        {"lr": 0},
        {"momentum": 1.0},
        {"realism_weight": -1},
    ],
)
def test_settings_are_validated(bad):
    with pytest.raises(SettingsError):
        CompletionSettings(**bad)


def test_settings_round_trip():
    settings = CompletionSettings(candidates=3, contextual="l1", seed=4)
    assert CompletionSettings.from_dict(settings.to_dict()) == settings
    with pytest.raises(SettingsError, match="unknown"):
        CompletionSettings.from_dict({"candidats": 3})


def test_warm_up_changes_nothing(tiny_model):
    _, _, sketch = planted(tiny_model)
    engine = ContextualEngine(tiny_model)
    before = run(engine, sketch, iterations=5)[-1].images()
    engine.warm_up(FAST)
    assert all(p.grad is None for p in tiny_model.generator.parameters())
    assert np.array_equal(run(engine, sketch, iterations=5)[-1].images(), before)


def test_cancel_during_the_final_pass_gives_no_result(tiny_model):
    _, _, sketch = planted(tiny_model)
    token = CancelToken()
    calls = []

    def cancel_on_final_pass(module, inputs, output):
        calls.append(1)
        if len(calls) == 4:  # start, two optimisation steps, then the final pass
            token.cancel()

    handle = tiny_model.generator.register_forward_hook(cancel_on_final_pass)
    try:
        z = np.zeros((2, 32), np.float32)
        seen = list(ContextualEngine(tiny_model).start(sketch, settings=FAST.updated(iterations=2), cancel=token, z=z))
    finally:
        handle.remove()
    assert len(calls) == 4
    assert [s.phase for s in seen] == ["init", "optimise", "optimise"]


@pytest.mark.parametrize(
    "bad",
    [{"candidates": 2.5}, {"patience": 2.5}, {"clip_z": "no"}, {"seed": "abc"}, {"seed": 2**64}, {"lr": "fast"}],
)
def test_settings_types_are_checked(bad):
    with pytest.raises(SettingsError):
        CompletionSettings(**bad)


def test_ink_lines_draws_the_sketch_over_the_results_at_the_asked_size(tiny_model):
    sketch = np.full((80, 64), 255, np.uint8)  # not square: fitted as the model sees it
    sketch[30:34, 8:56] = 0
    plain = run(ContextualEngine(tiny_model), sketch, iterations=3)
    inked = run(ContextualEngine(tiny_model), sketch, iterations=3, ink_lines=True)
    assert all(s.lines is None for s in plain) and all(s.lines is not None for s in inked)
    assert np.array_equal(plain[-1].results(), plain[-1].images("image"))
    assert inked[-1].results().shape[1:3] == plain[-1].images("image").shape[1:3]  # by default the model's size
    results = inked[-1].results(80)
    assert results.shape == (8, 80, 80, 3)  # the sketch's longer side, squared
    assert np.array_equal(inked[-1].images("image"), plain[-1].images("image"))  # the model's own output is unchanged
    # the square pads the columns by 8: the stroke (rows 30:34, columns 8:56) lies at columns 16:64
    assert results[:, 30:34, 16:64].max() == 0 and results[:, 30:34, 8:12].max() > 0
    from sketchapp.core.upscale import lanczos

    enlarged = lanczos(inked[-1].images("image")[0], 80)  # without an upscaler given, the plain enlargement
    assert np.abs(results[0, 60:].astype(int) - enlarged[60:]).max() <= 1  # paper keeps the colours


def test_line_layer_keeps_the_sketch_resolution_within_limits():
    from sketchapp.core.prepare import INK_SIDE_LIMIT, line_layer

    assert line_layer(np.zeros((10, 12), np.uint8), 16).shape == (16, 16)
    assert line_layer(np.zeros((300, 200, 3), np.uint8), 16).shape == (300, 300)
    huge = line_layer(np.full((3000, 2000), 255, np.uint8), 16)
    assert huge.shape == (INK_SIDE_LIMIT, INK_SIDE_LIMIT) and huge.dtype == np.float32 and huge.min() == 1.0


def test_thin_lines_are_thickened_to_the_models_training_line_width(tiny_model_with_encoder):
    from sketchapp.core.prepare import sketch_tensor

    sketch = np.full((64, 64), 255, np.uint8)
    cv2.circle(sketch, (32, 32), 20, 0, 1)  # a hairline: 0.25 px at the model's 16
    model = tiny_model_with_encoder
    model.metadata["sketch_line_width"] = 2.0
    engine = ContextualEngine(model)
    with torch.no_grad():
        bold = model.encoder(sketch_tensor(sketch, H, 2.0))[0].clamp(-1, 1)
        thin = model.encoder(sketch_tensor(sketch, H))[0].clamp(-1, 1)
    assert not torch.allclose(bold, thin, atol=1e-3)
    matched = run(engine, sketch, iterations=1, start="encoder", candidates=2)[0]
    assert torch.allclose(matched.latents[0], bold, atol=1e-6)
    kept = run(engine, sketch, iterations=1, start="encoder", candidates=2, match_line_width=False)[0]
    assert torch.allclose(kept.latents[0], thin, atol=1e-6)
    for unusable in (None, "2", -1.0, 99.0, True):  # not recorded, or not a width: lines are left alone
        model.metadata["sketch_line_width"] = unusable
        assert engine.line_width is None
