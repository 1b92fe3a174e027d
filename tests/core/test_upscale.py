"""The x4 upscaler: a network that starts as bilinear, model files that round-trip, training that learns and
resumes, the sizes ``enlarge`` reaches, and the scores it is judged by."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
import torch
import torch.nn.functional as F

from sketchapp.core.checkpoint import save_checkpoint
from sketchapp.core.data.datasets import PairSet
from sketchapp.core.errors import CheckpointError, SettingsError
from sketchapp.core.trainer import MODEL_FILE, STATE_FILE
from sketchapp.core.upscale import (
    UpscalerConfig,
    UpscalerModel,
    edge_sharpness,
    enlarge,
    lanczos,
    load_upscaler,
    psnr,
    upscaler_scores,
)
from sketchapp.core.upscale_recipe import UpscalerRecipe, UpscalerTrainSettings, train

S = 64


def shapes(count: int = 8, seed: int = 0) -> PairSet:
    """Flat-coloured discs and squares with black outlines on white, at S px: emoji-like pictures."""
    rng = np.random.default_rng(seed)
    images = []
    for _ in range(count):
        image = np.full((S, S, 3), 255, np.uint8)
        colour = tuple(int(v) for v in rng.integers(0, 220, 3))
        centre = (int(rng.integers(20, 44)), int(rng.integers(20, 44)))
        if rng.random() < 0.5:
            cv2.circle(image, centre, int(rng.integers(10, 18)), colour, -1)
            cv2.circle(image, centre, int(rng.integers(10, 18)), (0, 0, 0), 2)
        else:
            cv2.rectangle(image, (centre[0] - 12, centre[1] - 12), (centre[0] + 12, centre[1] + 12), colour, -1)
            cv2.rectangle(image, (centre[0] - 12, centre[1] - 12), (centre[0] + 12, centre[1] + 12), (0, 0, 0), 2)
        images.append(image)
    sketches = np.full((count, S, S), 255, np.uint8)
    names = [f"p{i}" for i in range(count)]
    return PairSet(sketches, np.stack(images), names, [], {"size": S}, {"train": names[:-2], "val": names[-2:-1], "test": names[-1:]})


def test_a_new_network_is_the_bilinear_enlargement_and_enlarge_reaches_every_side():
    model = UpscalerModel.create(UpscalerConfig(width=8, blocks=1)).eval()
    x = torch.rand(1, 3, 16, 16) * 2 - 1
    with torch.no_grad():
        assert torch.allclose(model.net(x), F.interpolate(x, scale_factor=4, mode="bilinear", align_corners=False), atol=1e-6)
    image = shapes(1).images[0]
    calls = []
    original = model.net.forward
    model.net.forward = lambda x: calls.append(x.shape[-1]) or original(x)
    assert enlarge(image, 256, model).shape == (256, 256, 3) and calls == [64]  # one x4 step
    assert enlarge(image, 1024, model).shape == (1024, 1024, 3) and calls[1:] == [64, 256]  # two whole steps
    assert enlarge(image, 512, model).shape == (512, 512, 3) and calls[3:] == [64]  # one step, then Lanczos x2
    assert enlarge(image, 100, model).shape == (100, 100, 3) and calls[4:] == [64]  # x1.6: a step shrunk
    assert enlarge(image, 32, model).shape == (32, 32, 3)  # smaller: an area shrink, no network
    assert np.array_equal(enlarge(image, 256, None), lanczos(image, 256))  # no model: the plain way
    assert enlarge(image, S, model) is image


def test_model_files_round_trip_in_half_precision_and_other_files_are_refused(tmp_path):
    model = UpscalerModel.create(UpscalerConfig(width=8, blocks=2), {"size": 64})
    with torch.no_grad():
        for parameter in model.net.parameters():
            parameter.normal_(0, 0.05)
    path = tmp_path / "up.safetensors"
    save_checkpoint(path, model, half_precision=True)
    loaded = load_upscaler(path)
    assert loaded.config == model.config and loaded.size == 64 and not loaded.net.training
    x = torch.rand(1, 3, 8, 8)
    with torch.no_grad():
        assert torch.allclose(loaded.net(x), model.eval().net(x), atol=2e-2)
    from sketchapp.core.engines.pix2pix.model import Pix2PixModel
    from sketchapp.core.engines.pix2pix.networks import Pix2PixConfig

    other = tmp_path / "p2p.safetensors"
    save_checkpoint(other, Pix2PixModel.create(Pix2PixConfig(size=32, gf=8, df=8)))
    with pytest.raises(CheckpointError, match="not an upscaler"):
        load_upscaler(other)
    (tmp_path / "junk.safetensors").write_bytes(b"not a model")
    with pytest.raises(CheckpointError):
        load_upscaler(tmp_path / "junk.safetensors")


def test_settings_are_checked():
    with pytest.raises(SettingsError, match="patch"):
        UpscalerTrainSettings(size=64, patch=30)
    with pytest.raises(SettingsError, match="architecture"):
        UpscalerTrainSettings(size=64, patch=32, factor=5)
    assert UpscalerTrainSettings.from_dict(UpscalerTrainSettings(size=64, patch=32).to_dict()).patch == 32


def test_training_beats_the_bilinear_start_and_resumes_exactly(tmp_path):
    torch.set_num_threads(1)
    data = shapes(10)
    settings = UpscalerTrainSettings(size=S, patch=32, width=8, blocks=1, epochs=6, decay_epochs=0, batch_size=4, lr=3e-3)
    events = list(train(tmp_path / "run", data, settings))
    assert events[-1].kind == "done" and (tmp_path / "run" / MODEL_FILE).is_file()
    losses = [e.losses for e in events if e.kind == "step"]
    late = losses[-6:]
    assert np.mean([x["l1"] for x in late]) < np.mean([x["l1_bilinear"] for x in late])
    model = load_upscaler(tmp_path / "run" / MODEL_FILE)
    scores = upscaler_scores(model, data.images[-2:])
    assert set(scores) == {"lanczos", "bicubic", "upscaler"} and scores["upscaler"]["psnr"] > 10

    # stopped after 3 epochs and resumed: the same weights as the run that never stopped
    short = UpscalerTrainSettings(**{**settings.to_dict(), "epochs": 3})
    list(train(tmp_path / "halves", data, short))
    assert (tmp_path / "halves" / STATE_FILE).is_file()
    list(train(tmp_path / "halves", data, settings, resume=True))
    resumed = load_upscaler(tmp_path / "halves" / MODEL_FILE)
    for a, b in zip(resumed.net.state_dict().values(), model.net.state_dict().values()):
        assert torch.equal(a, b)


def test_training_crops_fall_on_the_drawn_part_and_small_crops_are_area_averages():
    data = shapes(4)
    recipe = UpscalerRecipe(UpscalerTrainSettings(size=S, patch=16, width=8, blocks=1, blur=0, noise=0))
    recipe.set_data(data, torch.device("cpu"))
    crops = recipe._crops(torch.arange(4).repeat(8), torch.Generator().manual_seed(0))
    assert crops.shape == (32, 3, 16, 16)
    assert all(bool((crop < 0.96).any()) for crop in crops)  # never paper alone
    small = recipe.degraded(crops, torch.Generator().manual_seed(1))
    assert torch.allclose(small, F.avg_pool2d(crops, 4))


def test_scores_tell_a_sharp_picture_from_a_soft_one():
    truth = shapes(1).images[0]
    soft = cv2.GaussianBlur(truth, (0, 0), 2)
    assert edge_sharpness(truth, truth) == pytest.approx(1.0)
    assert edge_sharpness(soft, truth) < 0.7
    assert psnr(truth, truth) == 99.0 and psnr(soft, truth) < 40
