"""The pix2pix decoder at its true cost: nearest x2 + 3x3 convolution against the equal 4x4 stride-2
transposed convolution, for inference and for a training step, beside the machine's ceiling.

Run by hand: ``python benchmarks/decoder.py [--threads N] [--rounds R]``. Results go to
docs/benchmarks.md with the machine and date.

Both sides are timed in the same process in interleaved rounds (A B A B ...), so a busy or
drifting machine moves both; each row gives the median milliseconds of each side and the
ratio A/B per round (median, min, max). FLOPs are counted by torch's own counter on the
network that runs; the ceiling is one large convolution (256 -> 256 channels, 3x3, 64 x 64)
in the same dtype, and each row says what share of it the network reaches.
"""

from __future__ import annotations

import argparse
import copy
import platform
import statistics
import time
import types
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch.utils.flop_counter import FlopCounterMode

from sketchapp.core.device import configure_cpu_threads
from sketchapp.core.engines.pix2pix.engine import fold_batch_norm
from sketchapp.core.engines.pix2pix.model import Pix2PixModel
from sketchapp.core.engines.pix2pix.networks import Pix2PixConfig, _Up, fold_upsampling
from sketchapp.core.engines.pix2pix.recipe import Pix2PixRecipe, Pix2PixTrainSettings
from sketchapp.core.data.datasets import PairSet


def resize_convolution(self: _Up, x: torch.Tensor) -> torch.Tensor:
    """The decoder stage as it ran before: nearest x2 upsampling, then the 3x3 convolution."""
    x = self.conv(F.interpolate(torch.relu(x), scale_factor=2.0, mode="nearest"))
    x = self.dropout(self.norm(x))
    return torch.tanh(x) if self.last else x


def as_resize_convolution(network: torch.nn.Module) -> torch.nn.Module:
    """A copy of ``network`` whose decoder stages upsample and convolve."""
    copied = copy.deepcopy(network)
    for module in copied.modules():
        if isinstance(module, _Up):
            module.forward = types.MethodType(resize_convolution, module)  # type: ignore[method-assign]
    return copied


def flops(run: Callable[[], object]) -> int:
    with FlopCounterMode(display=False) as counter:
        run()
    return counter.get_total_flops()


def interleaved(a: Callable[[], object], b: Callable[[], object], rounds: int) -> tuple[float, float, list[float]]:
    """(median ms of a, median ms of b, ratios a/b per round), after two warm-up calls of each."""
    for _ in range(2):
        a()
        b()
    times_a, times_b = [], []
    for _ in range(rounds):
        for run, into in ((a, times_a), (b, times_b)):
            began = time.perf_counter()
            run()
            into.append((time.perf_counter() - began) * 1000)
    return statistics.median(times_a), statistics.median(times_b), [x / y for x, y in zip(times_a, times_b)]


def ceiling(dtype: torch.dtype, rounds: int) -> float:
    """GFLOP/s of one large 3x3 convolution in ``dtype``, channels-last: what a core can do."""
    conv = torch.nn.Conv2d(256, 256, 3, padding=1, bias=False).to(dtype).to(memory_format=torch.channels_last).eval()
    x = torch.randn(1, 256, 64, 64, dtype=dtype).contiguous(memory_format=torch.channels_last)
    with torch.inference_mode():
        work = flops(lambda: conv(x))
        for _ in range(2):
            conv(x)
        best = []
        for _ in range(rounds):
            began = time.perf_counter()
            conv(x)
            best.append(time.perf_counter() - began)
    return work / statistics.median(best) / 1e9


def ratio_text(ratios: list[float]) -> str:
    return f"{statistics.median(ratios):.2f} ({min(ratios):.2f}-{max(ratios):.2f})"


def inference_rows(size: int, rounds: int, peak: dict[torch.dtype, float]) -> list[str]:
    model = Pix2PixModel.create(Pix2PixConfig(size=size)).eval()
    new = fold_upsampling(fold_batch_norm(model.generator)).to(memory_format=torch.channels_last)
    old = as_resize_convolution(fold_batch_norm(model.generator)).to(memory_format=torch.channels_last)
    rows = []
    for dtype in (torch.float32, torch.bfloat16):
        x = (torch.rand(1, 5, size, size) * 2 - 1).to(dtype).contiguous(memory_format=torch.channels_last)
        a, b = copy.deepcopy(old).to(dtype), copy.deepcopy(new).to(dtype)
        with torch.inference_mode():
            assert torch.allclose(a(x).float(), b(x).float(), atol=0.05 if dtype == torch.bfloat16 else 1e-4)
            work_a, work_b = flops(lambda: a(x)), flops(lambda: b(x))
            ms_a, ms_b, ratios = interleaved(lambda: a(x), lambda: b(x), rounds)
        name = "bf16" if dtype == torch.bfloat16 else "fp32"
        share = lambda work, ms: work / (ms / 1000) / 1e9 / peak[dtype]  # noqa: E731
        rows.append(f"| {size} px, {name} | {work_a / 1e9:.2f} / {work_b / 1e9:.2f} | {ms_a:.1f} | {ms_b:.1f} | "
                    f"{ratio_text(ratios)} | {share(work_a, ms_a):.0%} / {share(work_b, ms_b):.0%} |")
    return rows


def training_row(size: int, rounds: int) -> str:
    """One recipe step (augmentation, hints, D and G updates) at batch 16, each side its own recipe."""
    import numpy as np

    rng = np.random.default_rng(0)
    pairs = PairSet(rng.integers(0, 256, (16, size, size), dtype=np.uint8),
                    rng.integers(0, 256, (16, size, size, 3), dtype=np.uint8), [str(i) for i in range(16)])
    recipes = []
    for old in (True, False):
        recipe = Pix2PixRecipe(Pix2PixTrainSettings(size=size))
        if old:
            for module in recipe.model.generator.modules():
                if isinstance(module, _Up):
                    module.forward = types.MethodType(resize_convolution, module)  # type: ignore[method-assign]
        recipe.set_data(pairs, torch.device("cpu"))
        for network in recipe.networks().values():
            network.train()
        generator = torch.Generator().manual_seed(0)
        recipes.append(lambda r=recipe, g=generator: r.step("train", torch.arange(16), g, (0, 1), torch.device("cpu")))
    ms_a, ms_b, ratios = interleaved(recipes[0], recipes[1], rounds)
    return f"| {size} px, fp32, batch 16 | {ms_a / 1000:.2f} s | {ms_b / 1000:.2f} s | {ratio_text(ratios)} |"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--train-rounds", type=int, default=4)
    args = parser.parse_args()
    threads = configure_cpu_threads(args.threads)
    peak = {dtype: ceiling(dtype, args.rounds) for dtype in (torch.float32, torch.bfloat16)}
    print(f"{platform.processor() or platform.machine()}, torch {torch.__version__}, {threads} thread(s)")
    print(f"ceiling (one 256->256 3x3 convolution at 64 x 64): fp32 {peak[torch.float32]:.0f} GFLOP/s, "
          f"bf16 {peak[torch.bfloat16]:.0f} GFLOP/s\n")
    print("| generator forward (folded, channels-last) | GFLOP A / B | A: upsample + 3x3 ms | B: transposed 4x4 ms "
          "| A / B per round | share of the ceiling A / B |")
    print("|---|---:|---:|---:|---:|---:|")
    for size in (128, 256):
        for row in inference_rows(size, args.rounds, peak):
            print(row, flush=True)
    print("\n| training step (the recipe's) | A: upsample + 3x3 | B: transposed 4x4 | A / B per round |")
    print("|---|---:|---:|---:|")
    print(training_row(128, args.train_rounds), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
