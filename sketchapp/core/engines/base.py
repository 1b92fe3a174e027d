"""What an engine's training side hands the registry, kept apart from its inference side.

Completing a sketch needs an engine's settings, networks and engine; training needs its
recipe, data sets, augmentation and the training loop, which import much more (OpenCV
data loading, the trainer). Each engine's ``recipe`` module ends with a ``TRAINING``
record of this shape, and the registry imports that module only when something asks
for its training side, so ``sketchapp complete`` and the window's completion never load
training code.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Training:
    settings: type  # training settings: from_dict / to_dict / size / epochs
    train: Callable[..., Iterator[Any]]  # (run_dir, pairs, settings, device, cancel, resume, init_from, data_record, splits) -> TrainEvents
    fine_tune_settings: Callable[..., Any]  # (base model file, **overrides) -> training settings that keep its networks
    estimate: Callable[..., Any]  # (training settings, pair count, device) -> core.estimate.TimeEstimate, timed on real steps
    thumbnails: Callable[..., Any]  # (model, count, sketches) -> (count, S, S, 3) uint8 pictures of those sketches
    loss_names: tuple[str, ...]  # what its training reports per step (losses.csv, the wizard's plot)
    new_model: Callable[[int, int], dict[str, Any]]  # (size, width) -> training settings of new networks of that size and width
    #: beside ``new_model``'s: the shortest run that still goes through every phase and part of the
    #: training (a few steps an epoch, every phase entered): what the engine contract checks train
    quick: dict[str, Any]
    #: its own command-line options: the option's name as argparse stores it -> the settings field it sets,
    #: or (field, value) for a switch that sets that value
    options: dict[str, str | tuple[str, Any]]


def sized(size: int, width: int) -> dict[str, Any]:
    """Training settings of a new pix2pix or CycleGAN model: ``size`` px, generator and discriminator ``width`` wide."""
    return {"size": size, "gf": width, "df": width}
