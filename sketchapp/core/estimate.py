"""Time estimates of a training, for every engine: each recipe times a few of its own real steps with ``timed``."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch

from sketchapp.core.data.datasets import split_names


@dataclass(frozen=True)
class TimeEstimate:
    batch_size: int
    train_pairs: int
    steps_per_epoch: int
    gan_steps: int
    encoder_steps: int
    seconds_per_step: float  # one discriminator and g_steps generator updates
    seconds_per_encoder_step: float
    device: str

    @property
    def seconds(self) -> float:
        return self.gan_steps * self.seconds_per_step + self.encoder_steps * self.seconds_per_encoder_step

    def to_dict(self) -> dict[str, Any]:
        return {
            "batch_size": self.batch_size, "train_pairs": self.train_pairs, "steps_per_epoch": self.steps_per_epoch,
            "gan_steps": self.gan_steps, "encoder_steps": self.encoder_steps,
            "seconds_per_step": self.seconds_per_step, "seconds_per_encoder_step": self.seconds_per_encoder_step,
            "seconds": self.seconds, "device": self.device,
        }


def train_share(pair_count: int, seed: int = 0) -> int:
    """How many of ``pair_count`` pairs the seeded split puts in the training part."""
    return len(split_names([str(i) for i in range(pair_count)], seed=seed)["train"])


def timed(step: Callable[[], None], count: int, device: torch.device) -> float:
    """Seconds one call of ``step`` takes on ``device``: the mean of ``count`` calls after one warm-up."""
    step()  # warm-up: allocator, kernels, thread pool
    _sync(device)
    began = time.perf_counter()
    for _ in range(max(1, count)):
        step()
    _sync(device)
    return (time.perf_counter() - began) / max(1, count)


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)
