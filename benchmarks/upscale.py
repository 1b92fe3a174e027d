"""The x4 upscaler's cost: a whole enlargement (``core.upscale.enlarge``, conversions included) against
Lanczos, at the sizes the app asks for, beside the machine's ceiling.

Run by hand: ``python benchmarks/upscale.py [--model FILE] [--threads N] [--rounds R]``. Results go to
docs/benchmarks.md with the machine and date. The issue's target: a 1024 px picture in at most
0.5 s on the 2-core CPU.

Both sides are timed in the same process in interleaved rounds; each row gives the median
milliseconds of each and the ratio per round (median, min, max). FLOPs are counted by torch's
own counter on the network passes; the ceiling is one large fp32 convolution.
"""

from __future__ import annotations

import argparse
import platform
import sys
from pathlib import Path

import numpy as np
import torch
from torch.utils.flop_counter import FlopCounterMode

from sketchapp.core.device import configure_cpu_threads
from sketchapp.core.upscale import UpscalerConfig, UpscalerModel, bundled_upscaler, enlarge, lanczos, load_upscaler

sys.path.insert(0, str(Path(__file__).parent))
from decoder import ceiling, interleaved, ratio_text  # noqa: E402

CASES = ((128, 512), (256, 1024), (128, 1024))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--model", help="upscaler file (default: the shipped one)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=9)
    args = parser.parse_args()
    threads = configure_cpu_threads(args.threads)
    model = load_upscaler(args.model) if args.model else bundled_upscaler() or UpscalerModel.create(UpscalerConfig()).eval()
    peak = ceiling(torch.float32, args.rounds)
    print(f"{platform.processor() or platform.machine()}, torch {torch.__version__}, {threads} thread(s), "
          f"upscaler {model.config.to_dict()}")
    print(f"ceiling (one 256->256 3x3 convolution at 64 x 64, fp32): {peak:.0f} GFLOP/s\n")
    print("| enlargement | GFLOP | A: upscaler ms | B: Lanczos ms | A / B per round | share of the ceiling |")
    print("|---|---:|---:|---:|---:|---:|")
    rng = np.random.default_rng(0)
    for small, large in CASES:
        image = rng.integers(0, 256, (small, small, 3), dtype=np.uint8)
        with FlopCounterMode(display=False) as counter:
            enlarge(image, large, model)
        work = counter.get_total_flops()
        ms_a, ms_b, ratios = interleaved(lambda: enlarge(image, large, model), lambda: lanczos(image, large), args.rounds)
        share = work / (ms_a / 1000) / 1e9 / peak
        print(f"| {small} -> {large} px | {work / 1e9:.1f} | {ms_a:.0f} | {ms_b:.1f} | {ratio_text(ratios)} | {share:.0%} |", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
