"""Completion speed: iterations/s, achieved GFLOP/s against a matmul ceiling, first-snapshot latency.

Run by hand: ``python benchmarks/completion.py [--device cpu|cuda] [--compile] [--markdown]``.
Results go to docs/benchmarks.md with the machine and date.
"""

from __future__ import annotations

import argparse
import datetime as dt
import platform
import statistics
import subprocess
import sys
import time

import numpy as np
import torch
from torch.utils.flop_counter import FlopCounterMode

from sketchapp.core.engines.contextual.engine import CompletionSettings, ContextualEngine
from sketchapp.core.engines.contextual.model import JointModel
from sketchapp.core.device import configure_cpu_threads, select_device
from sketchapp.core.engines import REGISTRY
from sketchapp.core.engines.contextual.networks import JointGANConfig, sample_z


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def matmul_ceiling(device: torch.device, dtype: torch.dtype = torch.float32) -> float:
    """Best GFLOP/s of large square fp32 matrix products: what this device can do at most."""
    best = 0.0
    for n in (1024, 2048, 4096):
        a, b = torch.randn(n, n, device=device, dtype=dtype), torch.randn(n, n, device=device, dtype=dtype)
        out = torch.empty(n, n, device=device, dtype=dtype)
        for _ in range(2):
            torch.mm(a, b, out=out)
        sync(device)
        reps = 3 if device.type == "cpu" else 50
        for _ in range(3):
            start = time.perf_counter()
            for _ in range(reps):
                torch.mm(a, b, out=out)
            sync(device)
            best = max(best, 2 * n**3 * reps / (time.perf_counter() - start) / 1e9)
    return best


def flops_per_iteration(engine: ContextualEngine, k: int) -> float:
    """FLOPs of one optimisation step (G and D forward, gradient to z only), counted by torch."""
    z = sample_z(k, engine.z_dim).to(engine.device).requires_grad_(True)
    with FlopCounterMode(display=False) as counter:
        pictures = engine.model.generator(z)
        loss = torch.nn.functional.softplus(-engine.model.discriminator(pictures)).sum() + pictures.abs().sum()
        loss.backward()
    return float(counter.get_total_flops())


def iteration_rate(engine: ContextualEngine, sketch: np.ndarray, settings: CompletionSettings, iterations: int) -> float:
    """Median optimisation iterations per second after a warm-up, snapshot overhead included."""
    z = sample_z(settings.candidates, engine.z_dim, torch.Generator().manual_seed(0)).numpy()
    steps: list[float] = []
    last = time.perf_counter()
    for snapshot in engine.start(sketch, settings=settings.updated(iterations=iterations), z=z):
        sync(engine.device)
        now = time.perf_counter()
        if snapshot.phase == "optimise":
            steps.append(now - last)
        last = now
    return 1.0 / statistics.median(steps[max(3, len(steps) // 5) :])


def first_snapshot(
    engine: ContextualEngine, sketch: np.ndarray, settings: CompletionSettings, z: np.ndarray | None = None
) -> float:
    """Seconds from start() to the first Snapshot, with the model already loaded."""
    start = time.perf_counter()
    run = engine.start(sketch, settings=settings, z=z)
    snapshot = next(run)
    snapshot.images()  # what a viewer does with it
    sync(engine.device)
    elapsed = time.perf_counter() - start
    run.close()
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--half-size", type=int, default=64)
    parser.add_argument("--candidates", type=int, nargs="+", default=[1, 8, 32])
    parser.add_argument("--iterations", type=int, default=40)
    parser.add_argument("--compile", action="store_true", help="also measure torch.compile")
    parser.add_argument("--cold", choices=("plain", "warm_up"), help=argparse.SUPPRESS)
    args = parser.parse_args()

    device = select_device(args.device)
    threads = configure_cpu_threads()
    torch.manual_seed(0)
    model = JointModel.create(JointGANConfig(half_size=args.half_size))
    engine = REGISTRY["contextual"].engine(model, device)
    sketch = np.full((args.half_size, args.half_size), 255, np.uint8)
    sketch[args.half_size // 4 : -args.half_size // 4, args.half_size // 2] = 0

    random_start = CompletionSettings(candidates=8, seed=1, start="random")
    if args.cold is not None:  # a fresh process: nothing cached yet
        if args.cold == "warm_up":
            engine.warm_up(random_start)  # what the CLI and the app do while loading a model
        print(f"{first_snapshot(engine, sketch, random_start) * 1000:.0f}")
        return
    cold = {
        mode: subprocess.run(
            [sys.executable, __file__, "--device", args.device, "--half-size", str(args.half_size), "--cold", mode],
            capture_output=True, text=True, check=True,
        ).stdout.strip()
        for mode in ("plain", "warm_up")
    }
    ceiling = matmul_ceiling(device)
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else platform.processor() or platform.machine()
    print(f"# {dt.date.today()} | {name} | {device.type}, {threads} threads | torch {torch.__version__}")
    print(f"matmul ceiling: {ceiling:.1f} GFLOP/s (fp32)")
    print("| variant | K | it/s | GFLOP/iter | GFLOP/s | % of ceiling |")
    print("|---|---|---|---|---|---|")
    variants = [("eager, contiguous", {"channels_last": False}), ("eager, channels-last (default)", {})]
    if args.compile:
        variants.append(("torch.compile, channels-last", {"compile": True}))
    for label, options in variants:
        for k in args.candidates:
            settings = CompletionSettings(candidates=k, patience=0, seed=0, **options)
            rate = iteration_rate(engine, sketch, settings, args.iterations)
            gflop = flops_per_iteration(engine, k) / 1e9
            print(f"| {label} | {k} | {rate:.2f} | {gflop:.2f} | {rate * gflop:.1f} | {100 * rate * gflop / ceiling:.0f} % |")

    print("\nfirst snapshot (model loaded), K = 8:")
    print(
        f"- very first run in a fresh process, best-of-30 random start: {cold['plain']} ms without "
        f"warm_up(), {cold['warm_up']} ms with it"
    )
    given = sample_z(8, engine.z_dim, torch.Generator().manual_seed(2)).numpy()
    for label, z in (("best-of-30 random start", None), ("given z (refine)", given)):
        times = [first_snapshot(engine, sketch, random_start, z) for _ in range(9)]
        print(f"- {label}: median {statistics.median(times) * 1000:.0f} ms, worst {max(times) * 1000:.0f} ms")


if __name__ == "__main__":
    main()
