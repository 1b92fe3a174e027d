"""A loaded pix2pix model: its generator and discriminator and the record they came with."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from sketchapp.core.checkpoint import ModelParts, load_modules
from sketchapp.core.engines.pix2pix.networks import PatchDiscriminator, Pix2PixConfig, UNetGenerator
from sketchapp.core.errors import CheckpointError, SettingsError

PIX2PIX = "pix2pix"


@dataclass
class Pix2PixModel(ModelParts):
    kind = PIX2PIX

    config: Pix2PixConfig
    generator: UNetGenerator
    discriminator: PatchDiscriminator
    metadata: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def create(cls, config: Pix2PixConfig, **metadata: Any) -> Pix2PixModel:
        return cls(config, UNetGenerator(config), PatchDiscriminator(config.df), dict(metadata))

    @property
    def size(self) -> int:
        return self.config.size

    def modules(self) -> dict[str, nn.Module]:
        return {"G": self.generator, "D": self.discriminator}


def build_pix2pix_model(name: str, metadata: dict[str, Any], tensors: dict[str, torch.Tensor]) -> Pix2PixModel:
    """The networks a pix2pix checkpoint's record describes (validated before anything is built), with its weights."""
    try:
        config = Pix2PixConfig.from_dict(metadata.get("architecture"))
    except (SettingsError, TypeError) as exc:
        raise CheckpointError(f"{name}: invalid pix2pix architecture in metadata ({exc})") from exc
    with torch.device("meta"):  # built without memory or random weights: the file's are assigned
        model = Pix2PixModel.create(config)
    model.metadata = metadata
    load_modules(name, model.modules(), tensors)
    return model
