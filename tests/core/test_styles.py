"""Sketch styles draw real lines where a picture has edges, deterministically."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from sketchapp.core.data.styles import STYLES, apply_style, make_params
from sketchapp.core.errors import SettingsError


def shapes(width: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """A coloured disc on white and the mask of its outline, ``width`` pixels wide."""
    picture = np.full((128, 128, 3), 255, np.uint8)
    cv2.circle(picture, (64, 64), 36, (200, 40, 40), -1)
    band = np.zeros((128, 128), np.uint8)
    cv2.circle(band, (64, 64), 36, 255, width)
    return picture, band > 0


@pytest.mark.parametrize("style", ["xdog", "edge", "pencil"])
def test_lines_follow_the_outline(style):
    picture, outline = shapes()
    _, near_outline = shapes(width=13)
    sketch = apply_style(style, picture)
    assert sketch.shape == (128, 128) and sketch.dtype == np.uint8
    ink = sketch < 160
    near_ink = cv2.dilate(ink.astype(np.uint8), np.ones((5, 5), np.uint8)) > 0
    assert near_ink[outline].mean() > 0.95  # the whole outline is drawn (within 2 px)
    assert near_outline[ink].mean() > 0.95  # and ink lies only along it
    assert sketch[:10, :10].min() == 255  # white paper stays white


@pytest.mark.parametrize("style", sorted(STYLES))
def test_deterministic_and_any_input_mode(style):
    picture, _ = shapes()
    rgba = np.dstack([picture, np.full((128, 128), 255, np.uint8)])
    grey = cv2.cvtColor(picture, cv2.COLOR_RGB2GRAY)
    first = apply_style(style, picture)
    assert np.array_equal(first, apply_style(style, picture))
    assert np.array_equal(first, apply_style(style, rgba))
    assert np.array_equal(first, apply_style(style, grey))


def test_parameters_change_the_drawing():
    picture, _ = shapes()
    thin = apply_style("edge", picture, thickness=1)
    thick = apply_style("edge", picture, thickness=5)
    assert (thick < 128).sum() > 2 * (thin < 128).sum()


def test_cleanup_turns_a_paper_photo_into_line_art():
    """Uneven lighting, grey paper and noise go; the drawn lines stay."""
    h = w = 200
    yy, xx = np.mgrid[0:h, 0:w]
    lighting = 0.5 + 0.45 * (xx / w) * (1 - 0.5 * yy / h)
    lines = np.zeros((h, w), np.uint8)
    cv2.circle(lines, (100, 100), 60, 255, 3)
    cv2.line(lines, (10, 190), (190, 10), 255, 2)
    noise = np.random.default_rng(0).normal(0, 6, (h, w))
    photo = np.clip(200.0 * lighting * (1 - 0.6 * lines / 255.0) + noise, 0, 255).astype(np.uint8)
    clean = apply_style("cleanup", photo)
    drawn = lines > 0
    assert (clean[drawn] < 128).mean() > 0.9  # lines kept
    assert (clean[~drawn] >= 250).mean() > 0.98  # paper flat white despite the lighting


def test_bad_parameters_and_styles():
    with pytest.raises(SettingsError, match="unknown sketch style 'charcoal'"):
        make_params("charcoal")
    with pytest.raises(SettingsError, match="xdog has no parameter radius"):
        make_params("xdog", radius=3)
    with pytest.raises(SettingsError, match="sigma must be in"):
        make_params("xdog", sigma=0)
    assert make_params("pencil", blur=3.0).to_dict() == {"blur": 3.0, "darkness": 1.5}
