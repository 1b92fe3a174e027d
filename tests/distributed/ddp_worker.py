"""Run by torchrun from test_torchrun.py: train on tiny data, then save this rank's weights.

argv: folder, reconstruction weight, R1 gamma, EMA decay, DiffAugment (0 or 1);
or: folder, "cyclegan" (the CycleGAN recipe on two tiny unpaired collections);
or: folder, "pix2pix" (the pix2pix recipe with hints, the SSIM term and a weight average on tiny pairs).
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import save_file

from sketchapp.core.data.datasets import PairSet
from sketchapp.core.trainer import distributed_world, init_distributed
from sketchapp.core.engines.contextual.recipe import TrainSettings, train


def cyclegan(folder: str) -> None:
    from sketchapp.core.data.datasets import UnpairedSet
    from sketchapp.core.engines.cyclegan.recipe import CycleGANRecipe, CycleGANTrainSettings
    from sketchapp.core.trainer import train_recipe

    init_distributed(torch.device("cpu"))
    rank, world = distributed_world()
    rng = np.random.default_rng(0)
    a = rng.integers(0, 255, (12, 32, 32, 3), dtype=np.uint8)
    b = rng.integers(0, 255, (9, 32, 32, 3), dtype=np.uint8)
    data = UnpairedSet(a, b, [f"a{i}" for i in range(12)], [f"b{i}" for i in range(9)], info={"sketch_style": "test"})
    settings = CycleGANTrainSettings(size=32, gf=8, df=8, blocks=2, epochs=2, batch_size=4, pool=3, checkpoint_minutes=60.0)
    events = list(train_recipe(Path(folder) / "run", CycleGANRecipe(settings), data))
    save(folder, events, rank, world)


def pix2pix(folder: str) -> None:
    from sketchapp.core.engines.pix2pix.recipe import Pix2PixRecipe, Pix2PixTrainSettings
    from sketchapp.core.trainer import train_recipe

    init_distributed(torch.device("cpu"))
    rank, world = distributed_world()
    rng = np.random.default_rng(0)
    images = rng.integers(0, 255, (20, 32, 32, 3), dtype=np.uint8)
    sketches = rng.integers(0, 255, (20, 32, 32), dtype=np.uint8)
    pairs = PairSet(sketches, images, [f"p{i:02d}" for i in range(20)], info={"sketch_style": "test"})
    settings = Pix2PixTrainSettings(size=32, gf=8, df=8, epochs=2, batch_size=8, ssim_weight=10.0, ema=0.9,
                                    checkpoint_minutes=60.0)
    save(folder, list(train_recipe(Path(folder) / "run", Pix2PixRecipe(settings), pairs)), rank, world)


def save(folder: str, events: list, rank: int, world: int) -> None:
    done = events[-1]
    assert done.kind == "done" and done.model is not None, done
    weights = {
        f"{prefix}.{key}": value.detach().contiguous()
        for prefix, module in done.model.modules().items()
        for key, value in module.state_dict().items()
    }
    save_file(weights, str(Path(folder) / f"rank{rank}-of-{world}.safetensors"))


def main(folder: str, recon_weight: float, r1_gamma: float, ema: float, diff_augment: float) -> None:
    init_distributed(torch.device("cpu"))
    rank, world = distributed_world()
    rng = np.random.default_rng(0)
    images = rng.integers(0, 255, (24, 16, 16, 3), dtype=np.uint8)
    sketches = rng.integers(0, 255, (24, 16, 16), dtype=np.uint8)
    pairs = PairSet(sketches, images, [f"p{i:02d}" for i in range(24)], info={"sketch_style": "test"})
    settings = TrainSettings(half_size=16, z_dim=16, gf=8, df=8, ef=8, epochs=2, batch_size=8, encoder_steps=2,
                             recon_weight=recon_weight, r1_gamma=r1_gamma, ema=ema,
                             diff_augment=bool(diff_augment))
    save(folder, list(train(Path(folder) / "run", pairs, settings)), rank, world)


if __name__ == "__main__":
    if sys.argv[2] == "cyclegan":
        cyclegan(sys.argv[1])
    elif sys.argv[2] == "pix2pix":
        pix2pix(sys.argv[1])
    else:
        main(sys.argv[1], *map(float, sys.argv[2:6]))
