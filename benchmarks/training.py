"""Seconds per training step at the sizes the training wizard offers, as its estimate measures them.

Run by hand: ``python benchmarks/training.py``. Results go to docs/benchmarks.md.
"""

from __future__ import annotations

import datetime as dt
import platform

import torch

from sketchapp.core.device import configure_cpu_threads, select_device
from sketchapp.core.runs import estimate_training
from sketchapp.core.training import TrainSettings


def main() -> None:
    device = select_device("auto")
    threads = configure_cpu_threads()
    print(f"### {dt.date.today()}: {platform.processor() or platform.machine()}, {device.type}, "
          f"torch {torch.__version__}, {threads} threads\n")
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


if __name__ == "__main__":
    main()
