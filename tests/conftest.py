"""Shared fixtures: tiny models and generated pictures so the suite runs in minutes on 2 cores."""

from __future__ import annotations

import math
import os
import shutil
import tempfile
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from sketchapp.core.checkpoint import save_checkpoint
from sketchapp.core.engine import to_uint8
from sketchapp.core.engines.contextual.model import JointModel
from sketchapp.core.engines.contextual.networks import JointGANConfig, sample_z

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")  # Qt tests never need a display
# networks converted for a faster runtime go to a folder of the test run's, not the user's cache
os.environ.setdefault("SKETCHAPP_CACHE_DIR", tempfile.mkdtemp(prefix="sketchapp-test-cache-"))

TINY = JointGANConfig(half_size=16, z_dim=32, gf=16, df=16)


def lively(model: JointModel, gain: float = 2.0, seed: int = 0) -> JointModel:
    """Re-draw the generator's weights with a large gain.

    A freshly initialised DCGAN (weights N(0, 0.02)) draws almost the same grey picture
    for every z, which would make completion tests meaningless; with variance-preserving
    weights G(z) depends strongly on z, as a trained generator's does.
    """
    torch.manual_seed(seed)
    for module in model.generator.modules():
        if isinstance(module, (nn.Linear, nn.Conv2d)):
            fan_in = module.weight[0].numel()
        elif isinstance(module, nn.ConvTranspose2d):
            fan_in = module.weight.shape[0] * module.weight[0, 0].numel() / 4  # stride 2: a quarter of taps hit
        else:
            continue
        nn.init.normal_(module.weight, 0.0, gain / math.sqrt(fan_in))
    return model.eval()


@pytest.fixture()
def tiny_model() -> JointModel:
    return lively(JointModel.create(TINY, sketch_style="test"))


@pytest.fixture()
def tiny_model_with_encoder() -> JointModel:
    config = JointGANConfig(half_size=16, z_dim=32, gf=16, df=16, ef=8)
    return lively(JointModel.create(config, sketch_style="test"))


@pytest.fixture()
def tiny_checkpoint(tmp_path: Path, tiny_model: JointModel) -> Path:
    path = tmp_path / "tiny.safetensors"
    save_checkpoint(path, tiny_model, sketch_style="test")
    return path


def planted(model: JointModel, seed: int = 1) -> tuple[torch.Tensor, torch.Tensor, np.ndarray]:
    """A z*, its joint picture G(z*) and the uint8 sketch half a user would have drawn."""
    z = sample_z(1, model.config.z_dim, torch.Generator().manual_seed(seed))
    with torch.no_grad():
        picture = model.generator(z)
    h = model.config.half_size
    sketch = to_uint8(picture)[0, :, :h]
    return z, picture, sketch


@pytest.fixture()
def sketch_png(tmp_path: Path) -> Path:
    from sketchapp.core.images import save_image

    pixels = np.full((120, 90, 3), 255, np.uint8)
    pixels[20:100, 40:46] = 0
    pixels[55:60, 10:80] = 0
    path = tmp_path / "sketch.png"
    save_image(path, pixels)
    return path


def beside(folder: Path, model: Path) -> str:
    """Copy ``model`` into the presets ``folder`` and give the name a preset there refers to it by
    (a preset's model must lie beside it or in a models folder)."""
    folder.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(model, folder / model.name)
    return model.name


def make_pictures(folder: Path, count: int = 12, seed: int = 0) -> Path:
    """``count`` small PNG pictures of a coloured block on white, for data scans and training."""
    from PIL import Image

    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    for i in range(count):
        picture = np.full((48, 40, 3), 255, np.uint8)
        y, x = rng.integers(8, 30, 2)
        picture[y : y + 14, x : x + 10] = rng.integers(0, 200, 3)
        Image.fromarray(picture).save(folder / f"shape{i:02d}.png")
    return folder


@pytest.fixture()
def tiny_pix2pix_checkpoint(tmp_path: Path) -> Path:
    """A 32 px pix2pix model with hint inputs (untrained: its pictures follow the input's layout)."""
    from sketchapp.core.engines.pix2pix.model import Pix2PixModel
    from sketchapp.core.engines.pix2pix.networks import Pix2PixConfig

    torch.manual_seed(0)
    path = tmp_path / "tiny-p2p.safetensors"
    save_checkpoint(path, Pix2PixModel.create(Pix2PixConfig(size=32, gf=8, df=8), sketch_style="outline"))
    return path
