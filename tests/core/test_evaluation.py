"""Evaluation: the metrics mean what they say, and a run reports every start and checkpoint."""

from __future__ import annotations

import json

import cv2
import numpy as np
import pytest
import torch

from sketchapp.cli import main
from sketchapp.core.engines.contextual.engine import CompletionSettings
from sketchapp.core.data.datasets import PairSet, split_names, write_dataset
from sketchapp.core.losses import ssim as differentiable_ssim
from sketchapp.core.evaluation import (
    PSNR_LIMIT,
    EvalReport,
    NearestBaseline,
    ciede2000,
    colour_scores,
    evaluate,
    l1,
    psnr,
    sketch_fidelity,
    ssim,
)


def square(size=32, colour=(200, 30, 30), box=(8, 24)) -> np.ndarray:
    picture = np.full((size, size, 3), 255, np.uint8)
    picture[box[0] : box[1], box[0] : box[1]] = colour
    return picture


def outline(size=32, box=(8, 24)) -> np.ndarray:
    sketch = np.full((size, size), 255, np.uint8)
    a, b = box
    sketch[a, a:b] = sketch[b - 1, a:b] = sketch[a:b, a] = sketch[a:b, b - 1] = 0
    return sketch


def test_image_metrics_rank_closer_pictures_higher():
    truth = square()
    near = square(colour=(190, 40, 40))
    far = np.full_like(truth, 255)
    assert ssim(truth, truth) == pytest.approx(1.0) and psnr(truth, truth) == PSNR_LIMIT and l1(truth, truth) == 0
    assert ssim(truth, near) > ssim(truth, far)
    assert psnr(truth, near) > psnr(truth, far) and l1(truth, near) < l1(truth, far)
    assert l1(np.zeros((4, 4, 3), np.uint8), np.full((4, 4, 3), 255, np.uint8)) == pytest.approx(1.0)


def test_sketch_fidelity_rewards_results_that_follow_the_lines():
    sketch = outline()
    following = square()
    shifted = square(box=(2, 12))
    blank = np.full_like(following, 255)
    precision, recall = sketch_fidelity(following, sketch)
    assert precision > 0.9 and recall > 0.9
    p_shift, r_shift = sketch_fidelity(shifted, sketch)
    assert p_shift < 0.5 and r_shift < 0.5
    assert sketch_fidelity(blank, sketch) == (1.0, 0.0)


def test_nearest_baseline_finds_the_most_similar_sketch():
    boxes = [(2, 10), (8, 24), (20, 30)]
    train = PairSet(
        np.stack([outline(box=b) for b in boxes]),
        np.stack([square(box=b, colour=(i * 80, 0, 0)) for i, b in enumerate(boxes)]),
        ["a", "b", "c"],
    )
    guess = NearestBaseline(train)(outline(box=(9, 23)))
    assert np.array_equal(guess, train.images[1])


def _pairs(count: int = 6) -> PairSet:
    boxes = [(4 + i % 3, 10 + i % 4) for i in range(count)]
    sketches = np.stack([outline(16, b) for b in boxes])
    images = np.stack([square(16, (40 * i % 255, 90, 30), b) for i, b in enumerate(boxes)])
    return PairSet(sketches, images, [f"p{i}" for i in range(count)])


def test_evaluate_reports_every_start_and_checkpoint(tiny_model_with_encoder):
    settings = CompletionSettings(candidates=2, init_samples=4, seed=0)
    items = list(evaluate(tiny_model_with_encoder, _pairs(3), _pairs(6), settings, (2, 5), device="cpu"))
    progress, report = items[:-1], items[-1]
    assert [p.done for p in progress] == [1, 2, 3]
    assert isinstance(report, EvalReport) and report.cases == 3
    assert set(report.rows) == {"random", "encoder", "refine", "nearest"}
    assert set(report.rows["random"]) == {2, 5} and set(report.rows["encoder"]) == {0}
    for row in report.rows.values():
        for metrics in row.values():
            assert 0 <= metrics["l1"] <= 1 and -1 <= metrics["ssim"] <= 1 and metrics["seconds"] >= 0
    assert report.rows["nearest"][0]["ssim"] > 0.2
    assert report.sheet is not None and report.sheet.shape[1] > 16 * 6
    table = report.markdown()
    assert table.count("\n") == 2 + 2 + 1 + 2 + 1 - 1
    json.dumps(report.to_dict())


def test_a_model_without_encoder_is_evaluated_from_random_starts(tiny_model):
    items = list(evaluate(tiny_model, _pairs(2), None, CompletionSettings(candidates=2, init_samples=2), (3,)))
    assert set(items[-1].rows) == {"random"}


def test_evaluate_command_writes_report_and_sheet(tmp_path, tiny_checkpoint, capsys):
    pairs = _pairs(8)
    write_dataset(tmp_path / "data", pairs, split_names(pairs.names, seed=0, test=0.25), {"kind": "test"})
    code = main(["evaluate", "--model", str(tiny_checkpoint), "--data", str(tmp_path / "data"),
                 "--iterations", "3,6", "--candidates", "2", "--output", str(tmp_path / "out"), "-q"])
    assert code == 0
    out = capsys.readouterr().out
    assert "best-of-30 random" in out and "nearest training image" in out
    assert (tmp_path / "out" / "contact-sheet.png").is_file()
    report = json.loads((tmp_path / "out" / "report.json").read_text())
    assert report["cases"] == 2 and report["checkpoints"] == [3, 6]
    with pytest.raises(SystemExit):
        main(["evaluate", "--model", str(tiny_checkpoint), "--data", str(tmp_path / "data"), "--iterations", "a,b"])
    assert main(["evaluate", "--model", str(tiny_checkpoint), "--data", str(tmp_path / "data"), "--split", "val",
                 "--iterations", "2", "--candidates", "2", "--output", str(tmp_path / "val"), "-q"]) == 0
    val = split_names(pairs.names, seed=0, test=0.25)["val"]
    names = {case["name"] for case in json.loads((tmp_path / "val" / "report.json").read_text())["per_case"]}
    assert val and names == set(val)
    assert f"({len(val)} val pairs)" in (tmp_path / "val" / "report.md").read_text()
    names = pairs.names
    write_dataset(tmp_path / "noval", pairs, {"train": names[:6], "val": [], "test": names[6:]}, {"kind": "test"})
    capsys.readouterr()
    assert main(["evaluate", "--model", str(tiny_checkpoint), "--data", str(tmp_path / "noval"), "--split", "val"]) == 1
    assert "the val split of this data set is empty" in capsys.readouterr().err
    with pytest.raises(SystemExit) as info:  # a plain folder has no splits to choose from
        main(["evaluate", "--model", str(tiny_checkpoint), "--data", str(tmp_path / "data" / "pairs"), "--split", "val"])
    assert info.value.code == 2


def test_an_empty_test_set_is_a_clear_error(tiny_model):
    empty = _pairs(2).subset([])
    with pytest.raises(ValueError, match="test set is empty"):
        list(evaluate(tiny_model, empty, None, CompletionSettings(candidates=2), (3,)))


@pytest.mark.parametrize("noise", [5.0, 30.0, 80.0])
def test_our_ssim_agrees_with_scikit_images(noise):
    from skimage.metrics import structural_similarity

    rng = np.random.default_rng(int(noise))
    for shape in ((64, 64, 3), (48, 80)):
        a = cv2.GaussianBlur(rng.integers(0, 256, shape, dtype=np.uint8), (5, 5), 1.0)  # some structure, not only noise
        b = np.clip(a + rng.normal(0, noise, a.shape), 0, 255).astype(np.uint8)
        reference = structural_similarity(a, b, channel_axis=2 if a.ndim == 3 else None, gaussian_weights=True,
                                          sigma=1.5, use_sample_covariance=False, data_range=255)
        # the same index (Wang et al.: 11-tap Gaussian, sigma 1.5); scikit-image leaves the 5-pixel
        # border out of the mean where we reflect it, which moves the score by a few thousandths
        assert abs(ssim(a, b) - reference) < 0.005


def test_the_training_ssim_is_the_evaluations_and_has_gradients():
    rng = np.random.default_rng(3)
    a = np.stack([cv2.GaussianBlur(rng.integers(0, 256, (40, 56, 3), dtype=np.uint8), (5, 5), 1.0) for _ in range(2)])
    b = np.clip(a + rng.normal(0, 25, a.shape), 0, 255).astype(np.uint8)
    x = torch.from_numpy(a).permute(0, 3, 1, 2).float().div(127.5).sub(1).requires_grad_(True)
    y = torch.from_numpy(b).permute(0, 3, 1, 2).float().div(127.5).sub(1)
    scores = differentiable_ssim(x, y)
    assert scores.shape == (2,)
    assert scores.detach().numpy() == pytest.approx([ssim(a[0], b[0]), ssim(a[1], b[1])], abs=1e-5)
    (1 - scores.mean()).backward()
    assert x.grad is not None and x.grad.abs().sum() > 0
    assert float(differentiable_ssim(y, y).min()) == pytest.approx(1.0, abs=1e-6)


def test_our_ciede2000_agrees_with_scikit_images():
    from skimage.color import deltaE_ciede2000

    rng = np.random.default_rng(0)
    a = np.stack([rng.uniform(0, 100, 500), rng.uniform(-100, 100, 500), rng.uniform(-100, 100, 500)], 1)
    b = a + rng.normal(0, 8, a.shape)
    assert np.allclose(ciede2000(a, b), deltaE_ciede2000(a, b), atol=1e-6)
    assert np.allclose(ciede2000(a, a), 0)


def test_colour_scores_tell_a_committed_colour_from_a_grey_wash_and_a_wrong_one():
    truth, sketch = square(colour=(220, 30, 30)), outline()
    right = colour_scores(square(colour=(210, 40, 35)), truth, sketch)
    grey = colour_scores(square(colour=(120, 110, 105)), truth, sketch)
    wrong = colour_scores(square(colour=(30, 60, 220)), truth, sketch)
    assert right["chroma"] / right["true_chroma"] > 0.85
    assert grey["chroma"] / grey["true_chroma"] < 0.2
    assert right["region_de"] < 5 < grey["region_de"] < wrong["region_de"]
    no_areas = colour_scores(truth, truth, np.full((32, 32), 255, np.uint8))
    assert np.isnan(no_areas["region_de"])
