"""pix2pix speed: the U-Net's forward pass under each inference lever, a whole completion with and
without colour hints, and a training step.

Run by hand: ``python benchmarks/pix2pix.py [--device cpu|cuda] [--threads N]``.
Results go to docs/benchmarks.md with the machine and date. The weights are random: a pass costs the
same whatever they are.
"""

from __future__ import annotations

import argparse
import copy
import datetime as dt
import platform
import statistics
import time
from collections.abc import Callable

import numpy as np
import torch

from sketchapp.core.device import configure_cpu_threads, select_device
from sketchapp.core.engines.pix2pix.engine import Pix2PixEngine, Pix2PixSettings, fold_batch_norm
from sketchapp.core.engines.pix2pix.model import Pix2PixModel
from sketchapp.core.engines.pix2pix.networks import Pix2PixConfig
from sketchapp.core.engines.pix2pix.recipe import Pix2PixRecipe, Pix2PixTrainSettings
from sketchapp.core.data.datasets import PairSet


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def timed(run: Callable[[], object], device: torch.device, repeats: int) -> tuple[float, float]:
    """(median, p90) milliseconds of ``run`` after three warm-up calls."""
    for _ in range(3):
        run()
    sync(device)
    samples = []
    for _ in range(repeats):
        began = time.perf_counter()
        run()
        sync(device)
        samples.append((time.perf_counter() - began) * 1000)
    samples.sort()
    return statistics.median(samples), samples[int(0.9 * (len(samples) - 1))]


def network_levers(size: int, gf: int, device: torch.device, repeats: int) -> list[tuple[str, float, float]]:
    """The generator alone, one 5-channel input, each lever added to the one before."""
    model = Pix2PixModel.create(Pix2PixConfig(size=size, gf=gf, df=gf)).to(device).eval()
    x = torch.rand(1, 5, size, size, device=device) * 2 - 1
    rows = []
    plain = model.generator
    with torch.no_grad():
        rows.append(("eager, no_grad, batch norm as trained", *timed(lambda: plain(x), device, repeats)))
    with torch.inference_mode():
        rows.append(("+ inference_mode", *timed(lambda: plain(x), device, repeats)))
        folded = fold_batch_norm(plain).to(device)
        rows.append(("+ batch norm folded into the convolutions", *timed(lambda: folded(x), device, repeats)))
        last = copy.deepcopy(folded).to(memory_format=torch.channels_last)
        xl = x.contiguous(memory_format=torch.channels_last)
        rows.append(("+ channels-last (the engine's default)", *timed(lambda: last(xl), device, repeats)))
        if device.type == "cpu":
            quick = copy.deepcopy(last).to(torch.bfloat16)
            xb = xl.to(torch.bfloat16)
            rows.append(("+ bfloat16 (kept by the engine where its warm-up finds it 10 % faster)", *timed(lambda: quick(xb), device, repeats)))
    compiled = torch.compile(last)
    with torch.inference_mode():
        began = time.perf_counter()
        compiled(xl)
        compile_s = time.perf_counter() - began
        rows.append((f"+ torch.compile (first call {compile_s:.0f} s)", *timed(lambda: compiled(xl), device, repeats)))
    return rows


def completions(size: int, gf: int, device: torch.device, repeats: int) -> list[tuple[str, float, float]]:
    """A whole engine run as the app asks for it: a 4x drawing (a cross in a square: four closed areas) in, uint8 pictures out."""
    engine = Pix2PixEngine(Pix2PixModel.create(Pix2PixConfig(size=size, gf=gf, df=gf)), device)
    side = 4 * size
    sketch = np.full((side, side), 255, np.uint8)
    sketch[side // 4 : 3 * side // 4, side // 2 - 3 : side // 2 + 3] = 0
    sketch[side // 2 - 3 : side // 2 + 3, side // 4 : 3 * side // 4] = 0
    sketch[side // 8 : 7 * side // 8, side // 8 : side // 8 + 6] = sketch[side // 8 : 7 * side // 8, 7 * side // 8 - 6 : 7 * side // 8] = 0
    sketch[side // 8 : side // 8 + 6, side // 8 : 7 * side // 8] = sketch[7 * side // 8 - 6 : 7 * side // 8, side // 8 : 7 * side // 8] = 0
    hints = np.zeros((side, side, 4), np.uint8)
    hints[side // 8 : side // 4, side // 8 : side // 4] = (200, 40, 40, 255)
    settings = Pix2PixSettings(seed=0)
    engine.warm_up(settings)  # as the app: kernels built, bfloat16 kept where faster
    rows = []
    runs = (("no hints", None, 1, "palette"), ("with hints", hints, 1, "palette"),
            ("4 candidates, sampled palettes (colour variations)", None, 4, "palette"),
            ("4 candidates, sampled dropout", None, 4, "dropout"))
    for label, hint, candidates, variety in runs:
        run_settings = settings.updated(candidates=candidates, variety=variety)

        def run() -> None:
            for snapshot in engine.start(sketch, hint, run_settings):
                snapshot.images()

        rows.append((label, *timed(run, device, repeats)))
    return rows


def training_step(size: int, gf: int, batch: int, device: torch.device) -> float:
    """Seconds per pix2pix training step (augmentation, hints, D and G updates)."""
    settings = Pix2PixTrainSettings(size=size, gf=gf, df=gf, batch_size=batch)
    rng = np.random.default_rng(0)
    pairs = PairSet(rng.integers(0, 256, (batch, size, size), dtype=np.uint8),
                    rng.integers(0, 256, (batch, size, size, 3), dtype=np.uint8), [str(i) for i in range(batch)])
    recipe = Pix2PixRecipe(settings)
    for module in recipe.networks().values():
        module.to(device).train()
    recipe.set_data(pairs, device)
    generator = torch.Generator().manual_seed(0)
    median, _ = timed(lambda: recipe.step("train", torch.arange(batch), generator, (0, 1), device), device, 5)
    return median / 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int)
    parser.add_argument("--repeats", type=int, default=30)
    parser.add_argument("--gf", type=int, default=32)
    parser.add_argument("--sizes", default="128,256")
    args = parser.parse_args()
    device = select_device(args.device)
    threads = configure_cpu_threads(args.threads)
    print(f"### {dt.date.today()}: {platform.processor() or platform.machine()}, {device.type}, "
          f"torch {torch.__version__}, {threads} threads, U-Net width {args.gf}\n")
    for size in (int(s) for s in args.sizes.split(",")):
        print(f"#### {size} px\n\n| generator forward | median ms | p90 ms |\n|---|---:|---:|")
        for label, median, p90 in network_levers(size, args.gf, device, args.repeats):
            print(f"| {label} | {median:.1f} | {p90:.1f} |")
        print("\n| whole completion (engine.start, 4x drawing in, uint8 out) | median ms | p90 ms |\n|---|---:|---:|")
        for label, median, p90 in completions(size, args.gf, device, args.repeats):
            print(f"| {label} | {median:.1f} | {p90:.1f} |")
        print(f"\ntraining step, batch 16: {training_step(size, args.gf, 16, device):.2f} s\n")


if __name__ == "__main__":
    main()
