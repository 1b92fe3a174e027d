"""The CPU runtime of the one-pass generator: torch against ONNX Runtime (and OpenVINO where installed).

Run by hand: ``python benchmarks/runtimes.py [--threads N] [--rounds R]``. Results go to
docs/benchmarks.md with the machine and date.

Each comparison runs in interleaved rounds in one process (A B A B ...), so a busy or
drifting machine moves both sides; a row gives each side's median milliseconds and the
ratio per round (median, min-max):

* the folded generator alone on one input, float32 (bfloat16 where the CPU has BF16 units
  is the engine's other lever, measured in benchmarks/pix2pix.py);
* a whole completion as the window asks for it while the pen moves (``engine.start`` on a
  drawing of 4x the model's side, line-width matching, hint spreading, uint8 out), with
  the engine's runtime setting off (torch) and on (ONNX Runtime).

The generator is the shipped emoji-pix2pix architecture at each size, random weights (a
pass costs the same whatever they are); the ceiling is one 256 -> 256 3x3 convolution.
"""

from __future__ import annotations

import argparse
import platform
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from torch.utils.flop_counter import FlopCounterMode

from sketchapp.core import runtime
from sketchapp.core.device import configure_cpu_threads
from sketchapp.core.engines.pix2pix.engine import Pix2PixEngine, Pix2PixSettings
from sketchapp.core.engines.pix2pix.model import Pix2PixModel
from sketchapp.core.engines.pix2pix.networks import Pix2PixConfig

sys.path.insert(0, str(Path(__file__).parent))
from decoder import ceiling, interleaved, ratio_text  # noqa: E402


def drawing(side: int) -> np.ndarray:
    """A cross in a square: four closed areas."""
    sketch = np.full((side, side), 255, np.uint8)
    a, b, w = side // 8, 7 * side // 8, max(2, side // 80)
    sketch[a:b, a : a + w] = sketch[a:b, b - w : b] = sketch[a : a + w, a:b] = sketch[b - w : b, a:b] = 0
    sketch[a:b, side // 2 - w : side // 2 + w] = sketch[side // 2 - w : side // 2 + w, a:b] = 0
    return sketch


def openvino(net: torch.nn.Module, x: torch.Tensor, threads: int) -> Callable[[], object] | None:
    """The same network under OpenVINO, the other runtime measured (not a dependency)."""
    try:
        import openvino as ov
    except ImportError:
        return None
    model = ov.convert_model(runtime._Outputs(net).eval(), example_input=x)  # noqa: SLF001
    compiled = ov.Core().compile_model(model, "CPU", {"INFERENCE_NUM_THREADS": threads, "PERFORMANCE_HINT": "LATENCY"})
    request, feed = compiled.create_infer_request(), {0: x.numpy()}
    return lambda: request.infer(feed)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--rounds", type=int, default=20)
    args = parser.parse_args()
    threads = configure_cpu_threads(args.threads)
    peak = ceiling(torch.float32, args.rounds)
    print(f"{platform.processor() or platform.machine()}, torch {torch.__version__}, {threads} thread(s); "
          f"ceiling fp32 {peak:.0f} GFLOP/s\n")
    print("| size | what | A: torch ms | B ms | A / B per round | share of the ceiling A / B |")
    print("|---|---|---:|---:|---:|---:|")
    for size in (128, 256):
        engine = Pix2PixEngine(Pix2PixModel.create(Pix2PixConfig(size=size)), torch.device("cpu"))
        settings = Pix2PixSettings(seed=0, bfloat16=False)
        engine.warm_up(settings, cache=Path(tempfile.mkdtemp()))
        x = torch.rand(1, 5, size, size) * 2 - 1
        compiled = engine.compiled or runtime.compile_generator(engine.folded, x, threads, None)
        assert compiled is not None, "ONNX Runtime is not installed or could not take the network"
        engine.compiled = compiled
        folded = engine.folded
        with FlopCounterMode(display=False) as counter, torch.inference_mode():
            folded(x)
        work = counter.get_total_flops() / 1e9
        with torch.inference_mode():
            plain_ms, quick_ms, ratios = interleaved(lambda: folded(x), lambda: compiled(x), args.rounds)
        print(f"| {size} | generator alone ({work:.2f} GFLOP), B: ONNX Runtime | {plain_ms:.1f} | {quick_ms:.1f} | "
              f"{ratio_text(ratios)} | {work / plain_ms * 1000 / peak:.0%} / {work / quick_ms * 1000 / peak:.0%} |")
        sketch = drawing(4 * size)
        torch_run = lambda: [s.images() for s in engine.start(sketch, None, settings.updated(runtime=False))]  # noqa: E731
        fast_run = lambda: [s.images() for s in engine.start(sketch, None, settings)]  # noqa: E731
        plain_ms, quick_ms, ratios = interleaved(torch_run, fast_run, args.rounds)
        print(f"| {size} | whole completion (4x drawing in, uint8 out), B: ONNX Runtime | {plain_ms:.1f} | {quick_ms:.1f} | "
              f"{ratio_text(ratios)} | |", flush=True)
        other = openvino(folded, x, threads)
        if other is not None:
            with torch.inference_mode():
                plain_ms, other_ms, ratios = interleaved(lambda: folded(x), other, args.rounds)
            print(f"| {size} | generator alone, B: OpenVINO | {plain_ms:.1f} | {other_ms:.1f} | {ratio_text(ratios)} | "
                  f"{work / plain_ms * 1000 / peak:.0%} / {work / other_ms * 1000 / peak:.0%} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
