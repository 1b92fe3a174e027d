"""The engine registry: every engine kind and what it is made of.

An engine is a plug-in: its settings class (what a preset stores), how its networks
are built from a checkpoint's record, the engine that completes sketches with them,
and its training (settings class and a ``train`` generator), with what the training
wizard offers for it (sizes, batch, the losses it plots and their labels). The CLI, the
workers and ``evaluate`` open engines only through ``REGISTRY``; a new engine adds one
entry, and the wizard learns all it shows of an engine from the training worker's
description of these fields.
"""

from __future__ import annotations

import importlib
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from sketchapp.core.checkpoint import read_checkpoint
from sketchapp.core.engines.base import Training
from sketchapp.core.engines.kinds import LEGACY_KIND, recorded_kind
from sketchapp.core.engines.contextual.engine import CompletionSettings, ContextualEngine
from sketchapp.core.engines.contextual.model import CONTEXTUAL, build_joint_model
from sketchapp.core.engines.cyclegan.engine import CycleGANEngine, CycleGANSettings
from sketchapp.core.engines.cyclegan.model import CYCLEGAN, build_cyclegan_model
from sketchapp.core.engines.pix2pix.engine import Pix2PixEngine, Pix2PixSettings
from sketchapp.core.engines.pix2pix.model import PIX2PIX, build_pix2pix_model
from sketchapp.core.errors import CheckpointError, PresetError


@dataclass(frozen=True)
class EngineSpec:
    kind: str
    title: str  # what the app calls it
    summary: str  # one line: what it is good at
    settings: type  # completion settings: from_dict / to_dict / updated
    build: Callable[[str, dict[str, Any], dict[str, torch.Tensor]], Any]  # (file name, record, tensors) -> model
    engine: Callable[[Any, torch.device], Any]  # (model, device) -> Engine
    recipe: str  # the module whose ``TRAINING`` (base.Training) is its training side, imported when first asked for
    loss_labels: dict[str, str]  # the losses the wizard plots, in its order, with their labels (the rest, D's scores, are not)
    sizes: tuple[int, ...]  # picture sides the wizard offers for a new model
    default_size: int  # the one of them it proposes
    batch_size: int  # the batch the wizard proposes; 0 = the largest that fits in memory, measured (the recipe's fit_batch)
    preference: int  # the wizard offers the engines that take the data in this order, lowest first
    unpaired: bool = False  # it learns from two collections without pairs (it takes paired data too, its pairing unused)
    sample_columns: str = ""  # what the columns of its training's sample grids show, left to right

    @property
    def training(self) -> Training:
        return importlib.import_module(self.recipe).TRAINING  # type: ignore[no-any-return]

    @property
    def train_settings(self) -> type:
        return self.training.settings

    @property
    def train(self) -> Callable[..., Any]:
        return self.training.train

    @property
    def fine_tune_settings(self) -> Callable[..., Any]:
        return self.training.fine_tune_settings

    @property
    def estimate(self) -> Callable[..., Any]:
        return self.training.estimate

    @property
    def thumbnails(self) -> Callable[..., Any]:
        return self.training.thumbnails

    @property
    def loss_names(self) -> tuple[str, ...]:
        return self.training.loss_names

    @property
    def new_model(self) -> Callable[[int, int], dict[str, Any]]:
        return self.training.new_model


def check_data(spec: EngineSpec, data: Any) -> None:
    """Refuse unpaired collections for an engine that learns from pairs, naming the one that does not."""
    from sketchapp.core.data.datasets import UnpairedSet
    from sketchapp.core.trainer import TrainingError

    if isinstance(data, UnpairedSet) and not spec.unpaired:
        takers = ", ".join(s.title for s in REGISTRY.values() if s.unpaired)
        raise TrainingError(f"{spec.title} learns from sketch/picture pairs; unpaired folders train {takers}")


REGISTRY: dict[str, EngineSpec] = {
    CONTEXTUAL: EngineSpec(
        CONTEXTUAL, "Contextual GAN",
        "searches a joint sketch|image GAN for pictures that fit: varied candidates and a ghost guide, loose on details",
        CompletionSettings, build_joint_model, ContextualEngine, "sketchapp.core.engines.contextual.recipe",
        loss_labels={"d_loss": "discriminator", "g_loss": "generator", "e_loss": "encoder", "r_loss": "redraw (L1)"},
        sizes=(64, 128), default_size=128, batch_size=0, preference=1,
        sample_columns="sketch | picture, as the model draws them together from fixed codes, four to a row",
    ),
    PIX2PIX: EngineSpec(
        PIX2PIX, "pix2pix",
        "draws the picture straight from your lines in one pass: follows the drawing, live while you draw, instant colour hints",
        Pix2PixSettings, build_pix2pix_model, Pix2PixEngine, "sketchapp.core.engines.pix2pix.recipe",
        loss_labels={"d_loss": "discriminator", "g_gan": "generator (cGAN)", "g_l1": "L1 to the picture",
                     "g_ssim": "structure (1 - SSIM)", "g_colour": "colour cells (cross-entropy)"},
        sizes=(128, 256), default_size=128, batch_size=16, preference=0,
        sample_columns="sketch · hints · the model's picture · the true picture, two pairs to a row (the lower rows with hints)",
    ),
    CYCLEGAN: EngineSpec(
        CYCLEGAN, "CycleGAN",
        "learns from a folder of sketches and an unrelated folder of pictures: draws from your lines in one pass, "
        "and sketches a picture the other way",
        CycleGANSettings, build_cyclegan_model, CycleGANEngine, "sketchapp.core.engines.cyclegan.recipe",
        loss_labels={
            "d_a": "discriminator (sketches)", "d_b": "discriminator (pictures)", "g_a": "GAN sketch → picture",
            "g_b": "GAN picture → sketch", "cycle_a": "cycle sketch → picture → sketch",
            "cycle_b": "cycle picture → sketch → picture", "idt_a": "identity (pictures)", "idt_b": "identity (sketches)",
        },
        sizes=(128, 256), default_size=128, batch_size=1, preference=2, unpaired=True,
        sample_columns="a picture · drawn the other way · and back again: sketches first, then pictures",
    ),
}


def default_kind(unpaired: bool) -> str:
    """The engine a command-line training uses when none is named: for unpaired folders the first that takes them,
    else the command line's engine from before there were others."""
    if unpaired:
        return min((spec for spec in REGISTRY.values() if spec.unpaired), key=lambda spec: spec.preference).kind
    return LEGACY_KIND


def engine_spec(kind: Any, where: str = "") -> EngineSpec:
    """The registry entry for ``kind``; an unknown kind is a one-line CheckpointError naming it."""
    spec = REGISTRY.get(kind) if isinstance(kind, str) else None
    if spec is None:
        shown = repr(kind)[:60]
        prefix = f"{where}: " if where else ""
        raise CheckpointError(f"{prefix}made for an engine this SketchApp does not have ({shown}; it has {', '.join(REGISTRY)})")
    return spec


def load_engine_model(path: str | os.PathLike[str], device: torch.device | str = "cpu") -> Any:
    """Any engine's model from a checkpoint file, built from its validated record, in eval mode."""
    name = Path(path).name
    metadata, tensors = read_checkpoint(path)
    spec = engine_spec(metadata.get("engine"), name)
    return spec.build(name, metadata, tensors).to(torch.device(device)).eval()


def model_kind(path: str | os.PathLike[str]) -> str:
    """The engine a checkpoint file was made for, from its header alone (contextual for the oldest files)."""
    from sketchapp.core.checkpoint import read_metadata

    return engine_spec(recorded_kind(read_metadata(path)), Path(path).name).kind


def open_engine(path: str | os.PathLike[str], device: torch.device | str = "cpu") -> Any:
    """The engine for a checkpoint file, its model loaded onto ``device``."""
    device = torch.device(device)
    model = load_engine_model(path, device)
    return engine_spec(model.kind).engine(model, device)


def engine_settings(kind: str, settings: Any, where: str) -> Any:
    """A preset's ``settings`` for a loaded model of engine ``kind``, that engine's defaults when there are none;
    settings of another engine (a preset naming one kind, its model file made for another) are a one-line PresetError."""
    own = engine_spec(kind).settings
    if settings is None:
        return own()
    if not isinstance(settings, own):
        other = next((spec.kind for spec in REGISTRY.values() if isinstance(settings, spec.settings)), type(settings).__name__)
        raise PresetError(f"{where}: the preset is for the {other} engine, but its model file is for the {kind} engine")
    return settings


def training_settings(kind: str, overrides: dict[str, Any], base_model: str | os.PathLike[str] | None = None) -> Any:
    """``kind``'s training settings from ``overrides``; with ``base_model``, keeping that model's networks (fine-tuning)."""
    spec = engine_spec(kind)
    if base_model is not None:
        return spec.fine_tune_settings(base_model, **overrides)
    return spec.train_settings.from_dict(overrides)


def resumed_training(run: str | os.PathLike[str], epochs: int | None = None) -> tuple[EngineSpec, Any, dict[str, Any]]:
    """(engine, settings, settings.json record) of a saved run, ``epochs`` raised when given: what a resume continues."""
    from sketchapp.core.trainer import resume_record

    recorded = resume_record(run)
    spec = engine_spec(recorded_kind(recorded), str(run))
    settings = spec.train_settings.from_dict({**recorded["settings"], **({"epochs": epochs} if epochs else {})})
    return spec, settings, recorded
