"""Colour as classification: CIELab conversions, the cell grid, rebalancing, the annealed mean, and a
pix2pix model with a colour head that commits to a colour where L1 alone paints grey."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
import torch

from sketchapp.core.colour import (
    ab_grid, annealed_mean, bin_count, chroma, colour_loss, lab_to_rgb, lightness, rebalancing_weights, rgb_to_lab, soft_encode,
)
from sketchapp.core.data.datasets import PairSet
from sketchapp.core.engines import REGISTRY, load_engine_model
from sketchapp.core.engines.pix2pix.engine import Pix2PixSettings, plausible_colours
from sketchapp.core.engines.pix2pix.model import Pix2PixModel
from sketchapp.core.engines.pix2pix.networks import Pix2PixConfig
from sketchapp.core.engines.pix2pix.recipe import Pix2PixRecipe, Pix2PixTrainSettings
from sketchapp.core.errors import SettingsError
from sketchapp.core.trainer import train_recipe


def as_tensor(rgb: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(rgb).permute(2, 0, 1)[None].float()


def test_lab_matches_opencv_and_round_trips():
    rgb = np.random.default_rng(0).random((40, 40, 3)).astype(np.float32)
    lab = rgb_to_lab(as_tensor(rgb))
    assert np.abs(lab[0].permute(1, 2, 0).numpy() - cv2.cvtColor(rgb, cv2.COLOR_RGB2Lab)).max() < 0.5
    assert torch.allclose(lab_to_rgb(lab), as_tensor(rgb), atol=1e-4)
    assert torch.allclose(lightness(as_tensor(rgb)), lab[:, :1], atol=1e-4)
    white = rgb_to_lab(torch.ones(1, 3, 1, 1))[0, :, 0, 0]
    assert abs(float(white[0]) - 100) < 1e-3 and float(white[1:].abs().max()) < 1e-3


def test_the_grid_holds_the_gamut_and_soft_targets_sit_on_the_nearest_cells():
    centres = ab_grid(16)
    assert len(centres) == bin_count(16) > 80
    assert bin_count(10) > bin_count(16)  # a finer grid has more cells
    red = rgb_to_lab(torch.tensor([1.0, 0.0, 0.0]).reshape(1, 3, 1, 1))[:, 1:]
    target = soft_encode(red, 16)[0, 0, 0]
    assert abs(float(target.sum()) - 1) < 1e-5
    nearest = int(torch.cdist(red.reshape(1, 2), centres).argmin())
    assert int(target.argmax()) == nearest and float(target[nearest]) > 0.3


def test_rare_colours_weigh_more_and_the_expected_weight_is_one():
    ab = torch.zeros(1, 2, 10, 10)
    ab[0, 0, :1, :1], ab[0, 1, :1, :1] = 60.0, 60.0  # one pixel of orange, the rest grey
    weights = rebalancing_weights(ab, 16)
    grey = int(torch.cdist(torch.zeros(1, 2), ab_grid(16)).argmin())
    orange = int(torch.cdist(torch.tensor([[60.0, 60.0]]), ab_grid(16)).argmin())
    assert weights[orange] > 3 * weights[grey]
    loss_grey = colour_loss(torch.zeros(1, 1, 1, bin_count(16)), torch.zeros(1, 2, 1, 1), 16, weights)
    assert torch.isfinite(loss_grey)


def test_the_annealed_mean_commits_where_the_mean_hedges():
    centres = ab_grid(16)
    red = int(torch.cdist(torch.tensor([[64.0, 48.0]]), centres).argmin())
    green = int(torch.cdist(torch.tensor([[-64.0, 48.0]]), centres).argmin())
    blue = int(torch.cdist(torch.tensor([[16.0, -80.0]]), centres).argmin())
    p = torch.full((bin_count(16),), 1e-6)
    p[red], p[green], p[blue] = 0.45, 0.3, 0.25
    logits = p.log().reshape(1, 1, 1, -1)
    plain = annealed_mean(logits, 16, temperature=1.0)[0, :, 0, 0]
    sharp = annealed_mean(logits, 16)[0, :, 0, 0]
    assert float(sharp.norm()) > 1.8 * float(plain.norm())
    assert float(torch.dot(sharp, centres[red]) / (sharp.norm() * centres[red].norm())) > 0.9  # it leans to red


def test_colour_grids_are_validated():
    with pytest.raises(SettingsError):
        Pix2PixConfig(size=32, gf=8, df=8, colour_grid=3)
    plain, coloured = Pix2PixConfig(size=32, gf=8, df=8), Pix2PixConfig(size=32, gf=8, df=8, colour_grid=16)

    def weights(config: Pix2PixConfig) -> int:
        return sum(p.numel() for m in Pix2PixModel.create(config).modules().values() for p in m.parameters())

    assert weights(coloured) - weights(plain) == coloured.parameter_count() - plain.parameter_count() > 0


S = 32


def three_colour_discs() -> PairSet:
    """The same outlined disc forty times: red in eighteen pictures, green in twelve, blue in ten."""
    sketch = np.full((S, S), 255, np.uint8)
    cv2.circle(sketch, (16, 16), 10, 0, 1)
    colours = ([(220, 30, 30)] * 9 + [(30, 180, 40)] * 6 + [(40, 60, 220)] * 5) * 2
    images = []
    for colour in colours:
        image = np.full((S, S, 3), 255, np.uint8)
        cv2.circle(image, (16, 16), 10, colour, -1)
        cv2.circle(image, (16, 16), 10, (0, 0, 0), 1)
        images.append(image)
    names = [f"disc{i}" for i in range(len(colours))]
    pairs = PairSet(np.stack([sketch] * len(colours)), np.stack(images), names)
    pairs.splits = {"train": names, "val": [], "test": []}
    return pairs


def disc_chroma(tmp_path, grid: int) -> float:
    pairs = three_colour_discs()
    settings = Pix2PixTrainSettings(size=S, gf=8, df=8, epochs=15, batch_size=10, dropout=0.0, augment=False, hints=False,
                                    lr=1e-3, colour_grid=grid, colour_rebalance=1.0,
                                    checkpoint_minutes=60.0)
    events = list(train_recipe(tmp_path / f"grid{grid}", Pix2PixRecipe(settings), pairs))
    engine = REGISTRY["pix2pix"].engine(events[-1].model, torch.device("cpu"))
    picture = next(iter(engine.start(pairs.sketches[0], None, Pix2PixSettings(seed=0, bfloat16=False)))).images()[0]
    inside = torch.from_numpy(picture[10:22, 10:22].astype(np.float32) / 255).permute(2, 0, 1)[None]
    return float(chroma(inside).mean())


def test_a_colour_head_commits_to_a_colour_where_l1_alone_paints_grey(tmp_path):
    """45 % red, 30 % green and 25 % blue pictures of one outline: L1's per-channel median is a dark
    grey-green (40, 60, 40); the annealed mean of the classified colour commits to a saturated one
    (which one, after 60 steps of a GAN this small, varies)."""
    regressed = disc_chroma(tmp_path, 0)
    classified = disc_chroma(tmp_path, 16)
    assert classified > 2 * regressed and classified > 25


def test_sampled_palettes_of_a_colour_head_model_come_from_its_own_belief():
    centres = ab_grid(16)
    red = int(torch.cdist(torch.tensor([[64.0, 48.0]]), centres).argmin())
    green = int(torch.cdist(torch.tensor([[-64.0, 48.0]]), centres).argmin())
    logits = torch.full((1, 16, 16, bin_count(16)), -30.0)
    logits[0, :8, :, red] = 0.0  # the top half believes red, the bottom half green
    logits[0, 8:, :, green] = 0.0
    picture = torch.zeros(1, 3, 32, 32)  # lightness 50 throughout
    colour = plausible_colours(picture, logits, 16)
    top, bottom = np.zeros((32, 32), bool), np.zeros((32, 32), bool)
    top[4:12, 4:28], bottom[20:28, 4:28] = True, True
    rng = np.random.default_rng(0)
    for _ in range(5):
        r, g, b = colour(top, rng)
        assert r > g + 0.2 and r > b + 0.2
        r, g, b = colour(bottom, rng)
        assert g > r + 0.2 and g > b


def test_a_colour_head_model_completes_with_variations_through_its_hint_channels():
    model = Pix2PixModel.create(Pix2PixConfig(size=S, gf=8, df=8, colour_grid=16)).eval()
    engine = REGISTRY["pix2pix"].engine(model, torch.device("cpu"))
    sketch = np.full((S, S), 255, np.uint8)
    cv2.rectangle(sketch, (6, 6), (26, 26), 0, 1)
    snapshot = next(iter(engine.start(sketch, None, Pix2PixSettings(seed=3, candidates=4, bfloat16=False))))
    pictures = snapshot.images()
    assert pictures.shape == (4, S, S, 3)
    assert snapshot.info["spread"] > 0


def test_a_model_without_a_colour_head_fine_tunes_into_one_keeping_its_weights(tmp_path):
    pairs = three_colour_discs()
    base = Pix2PixTrainSettings(size=S, gf=8, df=8, epochs=1, batch_size=10, augment=False, checkpoint_minutes=60.0)
    list(train_recipe(tmp_path / "base", Pix2PixRecipe(base), pairs))
    recipe = Pix2PixRecipe(Pix2PixTrainSettings(**{**base.to_dict(), "colour_grid": 16}))
    recipe.fine_tune(tmp_path / "base" / "model.safetensors")
    before = load_engine_model(tmp_path / "base" / "model.safetensors", "cpu").generator.state_dict()
    after = recipe.model.generator.state_dict()
    assert set(after) - set(before) == {"colour.score.weight", "colour.score.bias"}
    assert all(torch.equal(before[name].float(), after[name].float()) for name in before)
    other = Pix2PixRecipe(Pix2PixTrainSettings(**{**base.to_dict(), "gf": 16, "colour_grid": 16}))
    with pytest.raises(Exception, match="fine-tuning keeps the architecture"):
        other.fine_tune(tmp_path / "base" / "model.safetensors")
