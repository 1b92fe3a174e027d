"""The style reference (Gatys et al.): Gram statistics move toward the reference's, with either features."""

from __future__ import annotations

import os

import numpy as np
import pytest
import torch

from sketchapp.core.engines.cyclegan.model import CycleGANModel
from sketchapp.core.engines.cyclegan.networks import CycleGANConfig
from sketchapp.core.engines.pix2pix.model import Pix2PixModel
from sketchapp.core.engines.pix2pix.networks import Pix2PixConfig
from sketchapp.core.errors import CheckpointError, SettingsError
from sketchapp.core.style import (
    VGG19_LAYOUT,
    StyleSettings,
    discriminator_features,
    gram,
    style_distance,
    stylise,
    vgg19_features,
)

S = 32


def pictures() -> tuple[np.ndarray, np.ndarray]:
    """A flat grey-blue result and a reference of red and yellow stripes."""
    result = np.full((S, S, 3), (120, 140, 200), np.uint8)
    result[8:24, 8:24] = (60, 70, 150)
    reference = np.zeros((S, S, 3), np.uint8)
    reference[:, ::4] = (230, 40, 30)
    reference[:, 1::4] = (240, 220, 40)
    reference[:, 2::4] = (230, 40, 30)
    reference[:, 3::4] = (250, 250, 250)
    return result, reference


def tiny_vgg_file(path, widths=(4, 4, 8, 8, 8, 8, 8, 8, 8, 8, 8, 8, 8, 8, 8, 8)) -> None:
    """A VGG-19 in torchvision's state-dict layout (``features.N.weight``), narrow enough for a test."""
    torch.manual_seed(0)
    state, index, previous, convs = {}, 0, 3, iter(widths)
    for item in VGG19_LAYOUT:
        if item == "M":
            index += 1
            continue
        width = next(convs)
        state[f"features.{index}.weight"] = torch.randn(width, previous, 3, 3) * (2 / (9 * previous)) ** 0.5
        state[f"features.{index}.bias"] = torch.zeros(width)
        previous, index = width, index + 2
    state["classifier.0.weight"] = torch.zeros(2, 2)  # the classifier is ignored
    torch.save(state, path)


def test_gram_matrices_are_size_free_channel_statistics():
    feature = torch.randn(1, 3, 8, 8)
    assert gram(feature).shape == (1, 3, 3)
    assert torch.allclose(gram(feature.repeat(1, 1, 2, 2)), gram(feature), atol=1e-5)


@pytest.mark.parametrize("make", [
    lambda: Pix2PixModel.create(Pix2PixConfig(size=S, gf=8, df=8)),
    lambda: CycleGANModel.create(CycleGANConfig(S, 8, 8, 2)),
], ids=["pix2pix", "cyclegan"])
def test_a_style_reference_moves_the_results_gram_statistics_toward_its_own(make):
    torch.manual_seed(0)
    model = make()
    result, reference = pictures()
    features = discriminator_features(model.eval())
    before = style_distance(result, reference, features)
    steps = list(stylise(result, reference, features, StyleSettings(steps=100, lr=0.02, smoothness=0.0)))
    final = steps[-1][1]
    assert final.shape == result.shape and final.dtype == np.uint8
    assert style_distance(final, reference, features) < 0.7 * before
    assert steps[-1][2]["style"] < steps[0][2]["style"]
    # with the default smoothness the pixels may grow little rougher than the result: no noise
    smooth = list(stylise(result, reference, features, StyleSettings(steps=100, lr=0.02)))[-1][1]

    def roughness(picture: np.ndarray) -> float:
        return float(np.abs(np.diff(picture.astype(float), axis=0)).mean() + np.abs(np.diff(picture.astype(float), axis=1)).mean())

    assert roughness(smooth) < 0.5 * roughness(final)


def test_vgg19_weights_the_user_has_are_loaded_safely_and_give_the_papers_layers(tmp_path):
    path = tmp_path / "vgg19.pth"
    tiny_vgg_file(path)
    features = vgg19_features(path)
    style, content = features(torch.zeros(1, 3, S, S))
    assert [m.shape[1] for m in style] == [4, 8, 8, 8, 8] and content.shape[1] == 8  # relu1_1..relu5_1, relu4_2
    result, reference = pictures()
    before = style_distance(result, reference, features)
    final = list(stylise(result, reference, features, StyleSettings(steps=100, lr=0.1, smoothness=0.0)))[-1][1]
    assert style_distance(final, reference, features) < 0.8 * before  # random narrow features: a weaker pull


class _Boom:
    def __reduce__(self):
        return (os.system, ("echo pwned > /dev/null",))


def test_bad_vgg_files_are_refused_in_one_line(tmp_path):
    pickle = tmp_path / "evil.pth"
    torch.save({"features.0.weight": _Boom()}, pickle)
    with pytest.raises(CheckpointError, match="loads safely"):
        vgg19_features(pickle)
    wrong = tmp_path / "wrong.pth"
    torch.save({"features.0.weight": torch.zeros(4, 3, 5, 5)}, wrong)
    with pytest.raises(CheckpointError, match="VGG-19's layout"):
        vgg19_features(wrong)
    with pytest.raises(CheckpointError):
        vgg19_features(tmp_path / "missing.pth")


def test_style_settings_refuse_bad_values():
    for bad in ({"steps": 0}, {"strength": float("nan")}, {"lr": 2.0}, {"smoothness": -1.0}, {"steps": 1.5}):
        with pytest.raises(SettingsError):
            StyleSettings(**bad)


def drawn_on_paper() -> tuple[np.ndarray, np.ndarray]:
    """A grey-blue disc with a black outline on white paper, and a brown, cream and textured coffee-like reference."""
    import cv2

    result = np.full((S, S, 3), 255, np.uint8)
    cv2.circle(result, (16, 16), 11, (120, 140, 200), -1)
    cv2.circle(result, (16, 16), 11, (0, 0, 0), 1)
    rng = np.random.default_rng(0)
    reference = np.clip(rng.normal((110, 70, 40), 20, (S, S, 3)), 0, 255).astype(np.uint8)
    reference[::5] = (215, 180, 130)
    return result, reference


def test_the_reference_palette_is_carried_into_the_drawn_part_and_the_paper_stays_white():
    from sketchapp.core.style import carry_colours, paper_of, palette_distance

    result, reference = drawn_on_paper()
    paper = paper_of(result)
    assert paper[0, 0] and not paper[16, 16] and paper.mean() > 0.4
    carried = carry_colours(result, reference)
    assert np.array_equal(carried[paper], result[paper])
    assert palette_distance(carried, reference) < 0.5 * palette_distance(result, reference)
    torch.manual_seed(0)
    features = discriminator_features(Pix2PixModel.create(Pix2PixConfig(size=S, gf=8, df=8)).eval())
    final = list(stylise(result, reference, features, StyleSettings(steps=30)))[-1][1]
    assert final[paper].min() >= 250  # the paper held white at every step
    assert palette_distance(final, reference) < 0.5 * palette_distance(result, reference)
    untouched = list(stylise(result, reference, features, StyleSettings(steps=1, colours=0.0)))[-1][1]
    assert palette_distance(untouched, reference) > 0.8 * palette_distance(result, reference)  # colours 0: Gram matrices alone
    with pytest.raises(SettingsError, match="colours"):
        StyleSettings(colours=1.5)
