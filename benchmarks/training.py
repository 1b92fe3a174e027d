"""Seconds per training step at the sizes the training wizard offers, as its estimate measures them.

Run by hand: ``python benchmarks/training.py [sizes|recipes]`` (both tables by default).
Results go to docs/benchmarks.md.
"""

from __future__ import annotations

import datetime as dt
import platform
import sys

import torch

from sketchapp.core.device import configure_cpu_threads, select_device
from sketchapp.core.engines.contextual.recipe import TrainSettings, estimate_training


RECIPES = (  # what each training option adds to the shipped models' recipe (width 32, --recon 50)
    ("--recon 50", {}),
    ("+ --r1 10", {"r1_gamma": 10.0}),
    ("+ --judge-redrawn", {"r1_gamma": 10.0, "judge_redrawn": True}),
    ("+ --diff-augment", {"r1_gamma": 10.0, "judge_redrawn": True, "diff_augment": True}),
    ("+ --ema 0.999", {"r1_gamma": 10.0, "judge_redrawn": True, "diff_augment": True, "ema": 0.999}),
)


def main(tables: list[str]) -> None:
    device = select_device("auto")
    threads = configure_cpu_threads()
    print(f"### {dt.date.today()}: {platform.processor() or platform.machine()}, {device.type}, "
          f"torch {torch.__version__}, {threads} threads\n")
    if "sizes" in tables:
        sizes(device)
    if "recipes" in tables:
        recipes(device)


def recipes(device: torch.device) -> None:
    print("| recipe (width 32, batch 64) | GAN step at 64 px | GAN step at 128 px |")
    print("|---|---:|---:|")
    for name, options in RECIPES:
        seconds = []
        for size in (64, 128):
            settings = TrainSettings.from_dict(dict(half_size=size, gf=32, df=32, ef=32, batch_size=64, epochs=1,
                                                    recon_weight=50.0, encoder_steps=0, **options))
            seconds.append(estimate_training(settings, 1000, device, steps=3).seconds_per_step)
        print(f"| {name} | {seconds[0]:.2f} s | {seconds[1]:.2f} s |")
    print()


def sizes(device: torch.device) -> None:
    print("| width | size | batch | --recon | GAN step (1 D + 2 G updates) | encoder step |")
    print("|---:|---:|---:|---:|---:|---:|")
    for width in (32, 64):
        for size in (64, 128):
            for recon in (0.0, 50.0):  # the paper's GAN; the shipped models' and the wizard's recipe
                settings = TrainSettings.from_dict(dict(half_size=size, gf=width, df=width, ef=width, batch_size=64,
                                                        epochs=1, recon_weight=recon))
                estimate = estimate_training(settings, 1000, device, steps=3)
                print(f"| {width} | {size} | {estimate.batch_size} | {recon:g} | {estimate.seconds_per_step:.2f} s "
                      f"| {estimate.seconds_per_encoder_step:.2f} s |")
    print()


if __name__ == "__main__":
    main(sys.argv[1:] or ["sizes", "recipes"])
