"""A loaded Contextual GAN model: the joint sketch|image GAN, its optional sketch encoder and the record they came with."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from sketchapp.core.checkpoint import ModelParts, load_modules, read_checkpoint
from sketchapp.core.engines.contextual.networks import JointDiscriminator, JointGANConfig, JointGenerator, SketchEncoder
from sketchapp.core.errors import CheckpointError

CONTEXTUAL = "contextual"


@dataclass
class JointModel(ModelParts):
    """A loaded joint-image GAN: the networks the contextual engine needs, in eval mode."""

    kind = CONTEXTUAL

    config: JointGANConfig
    generator: JointGenerator
    discriminator: JointDiscriminator
    encoder: SketchEncoder | None = None
    metadata: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def create(cls, config: JointGANConfig, **metadata: Any) -> JointModel:
        """Freshly initialised networks (for training, and for tests)."""
        encoder = SketchEncoder(config) if config.has_encoder else None
        return cls(config, JointGenerator(config), JointDiscriminator(config), encoder, dict(metadata))

    @property
    def size(self) -> int:
        """The side of the pictures it draws (and of the sketches it takes)."""
        return self.config.half_size

    def style_stack(self) -> tuple[nn.Sequential, bool, bool]:
        return self.discriminator.features, True, False  # D judges joint sketch | picture pictures

    def modules(self) -> dict[str, nn.Module]:
        parts: dict[str, nn.Module] = {"G": self.generator, "D": self.discriminator}
        if self.encoder is not None:
            parts["E"] = self.encoder
        return parts


def load_model(path: str | os.PathLike[str], device: torch.device | str = "cpu") -> JointModel:
    """Build the joint GAN a contextual checkpoint describes and load its weights, in eval mode."""
    name = Path(path).name
    metadata, tensors = read_checkpoint(path)
    kind = metadata.get("engine")
    if kind != CONTEXTUAL:
        raise CheckpointError(f"{name}: checkpoint is for the {kind!r} engine, not {CONTEXTUAL!r}")
    return build_joint_model(name, metadata, tensors).to(torch.device(device)).eval()


def build_joint_model(name: str, metadata: dict[str, Any], tensors: dict[str, torch.Tensor]) -> JointModel:
    """The contextual engine's networks from a checkpoint's record (validated before anything is built), with its weights."""
    try:
        config = JointGANConfig.from_dict(dict(metadata.get("architecture") or {}))
    except (TypeError, ValueError, AttributeError) as exc:
        raise CheckpointError(f"{name}: invalid architecture in metadata ({exc})") from exc
    with torch.device("meta"):  # built without memory or random weights: the file's are assigned
        model = JointModel.create(config)
    model.metadata = metadata
    load_modules(name, model.modules(), tensors)
    return model
