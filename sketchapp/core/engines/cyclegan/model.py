"""A loaded CycleGAN model: both generators, both discriminators and the record they came with.

Domain A is sketches, domain B pictures: ``g_ab`` completes a drawing, ``g_ba`` draws a
sketch of a picture. The discriminators travel along for fine-tuning and for the style
reference, which uses their features.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from sketchapp.core.checkpoint import ModelParts, load_modules
from sketchapp.core.engines.cyclegan.networks import CycleGANConfig, ResnetGenerator, discriminator
from sketchapp.core.layers import PatchDiscriminator
from sketchapp.core.errors import CheckpointError, SettingsError

CYCLEGAN = "cyclegan"


@dataclass
class CycleGANModel(ModelParts):
    kind = CYCLEGAN

    config: CycleGANConfig
    g_ab: ResnetGenerator
    g_ba: ResnetGenerator
    d_a: PatchDiscriminator
    d_b: PatchDiscriminator
    metadata: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def create(cls, config: CycleGANConfig, **metadata: Any) -> CycleGANModel:
        return cls(config, ResnetGenerator(config), ResnetGenerator(config), discriminator(config), discriminator(config), dict(metadata))

    @property
    def size(self) -> int:
        return self.config.size

    def style_stack(self) -> tuple[nn.Sequential, bool, bool]:
        return self.d_b.layers, False, False  # the pictures' discriminator

    def modules(self) -> dict[str, nn.Module]:
        return {"GA": self.g_ab, "GB": self.g_ba, "DA": self.d_a, "DB": self.d_b}


def build_cyclegan_model(name: str, metadata: dict[str, Any], tensors: dict[str, torch.Tensor]) -> CycleGANModel:
    """The networks a CycleGAN checkpoint's record describes (validated before anything is built), with its weights."""
    try:
        config = CycleGANConfig.from_dict(metadata.get("architecture"))
    except (SettingsError, TypeError) as exc:
        raise CheckpointError(f"{name}: invalid CycleGAN architecture in metadata ({exc})") from exc
    with torch.device("meta"):  # built without memory or random weights: the file's are assigned
        model = CycleGANModel.create(config)
    model.metadata = metadata
    load_modules(name, model.modules(), tensors)
    return model
