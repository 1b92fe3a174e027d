"""Checkpoints: safetensors weights plus a JSON metadata record, in one file.

safetensors holds raw tensors and a JSON header, so loading a file can never execute
code from it (unlike pickle). Every problem a user can cause - a truncated download,
a file from another program, weights that do not fit their metadata - becomes a
CheckpointError with a one-line message.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load as st_load
from safetensors.torch import save as st_save
from torch import nn

from sketchapp import __version__
from sketchapp.core.errors import CheckpointError
from sketchapp.core.fileio import read_user_file, write_bytes_atomic
from sketchapp.core.networks import JointDiscriminator, JointGANConfig, JointGenerator, SketchEncoder

FORMAT = "sketchapp.checkpoint"
FORMAT_VERSION = 1
METADATA_KEY = "sketchapp"
CONTEXTUAL = "contextual"


def recorded_line_width(metadata: dict[str, Any], size: int) -> float | None:
    """A record's ``sketch_line_width`` (stroke width of the training sketches, model pixels), None when missing or unusable."""
    value = metadata.get("sketch_line_width")
    valid = isinstance(value, (int, float)) and not isinstance(value, bool) and 0 < value < size
    return float(value) if valid else None


class ModelParts:
    """What every engine's loaded model shares: its networks by prefix (``modules()``), its
    record (``metadata``) and the side of its pictures (``size``)."""

    metadata: dict[str, Any]

    @property
    def size(self) -> int:
        raise NotImplementedError

    def modules(self) -> dict[str, nn.Module]:
        raise NotImplementedError

    @property
    def line_width(self) -> float | None:
        """The stroke width of the training sketches, in model pixels (None when not recorded or unusable)."""
        return recorded_line_width(self.metadata, self.size)

    @property
    def sketch_style(self) -> str:
        return str(self.metadata.get("sketch_style", "unknown"))

    def to(self, device: torch.device | str) -> Any:
        for module in self.modules().values():
            module.to(device)
        return self

    def eval(self) -> Any:
        for module in self.modules().values():
            module.eval()
        return self


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

    def modules(self) -> dict[str, nn.Module]:
        parts: dict[str, nn.Module] = {"G": self.generator, "D": self.discriminator}
        if self.encoder is not None:
            parts["E"] = self.encoder
        return parts


def save_checkpoint(
    path: str | os.PathLike[str], model: Any, half_precision: bool = False, **metadata: Any
) -> None:
    """Write ``model`` atomically. ``metadata`` adds to (and overrides) model.metadata.

    Any engine's model works: it names its engine (``kind``), describes its networks
    (``config.to_dict()``) and lists them by prefix (``modules()``).

    half_precision stores float weights as fp16 (half the size); they load back as fp32.
    """
    tensors: dict[str, torch.Tensor] = {}
    for prefix, module in model.modules().items():
        for name, tensor in module.state_dict().items():
            value = tensor.detach().cpu()
            if half_precision and value.is_floating_point():
                value = value.half()
            tensors[f"{prefix}.{name}"] = value.contiguous()
    record = {**model.metadata, **metadata}
    record.update(
        format=FORMAT,
        format_version=FORMAT_VERSION,
        engine=model.kind,
        architecture=model.config.to_dict(),
        app_version=record.get("app_version", __version__),
    )
    model.metadata = record
    payload = st_save(tensors, metadata={METADATA_KEY: json.dumps(record, sort_keys=True)})
    try:
        write_bytes_atomic(path, payload)
    except OSError as exc:
        raise CheckpointError(f"{Path(path).name}: cannot write checkpoint ({exc.strerror or exc})") from exc


def read_checkpoint(path: str | os.PathLike[str]) -> tuple[dict[str, Any], dict[str, torch.Tensor]]:
    """Metadata and tensors of a SketchApp checkpoint file, validated but not built."""
    name = Path(path).name
    data = read_user_file(path, CheckpointError, "checkpoint")
    header = _read_header(data, name)
    extra = header.get("__metadata__") or {}
    raw = extra.get(METADATA_KEY) if isinstance(extra, dict) else None
    if raw is None:
        raise CheckpointError(f"{name}: a safetensors file, but not a SketchApp checkpoint (no metadata)")
    try:
        metadata = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise CheckpointError(f"{name}: checkpoint metadata is not valid JSON") from exc
    if not isinstance(metadata, dict) or metadata.get("format") != FORMAT:
        raise CheckpointError(f"{name}: not a SketchApp checkpoint (unknown metadata format)")
    version = metadata.get("format_version")
    if type(version) is not int or version < 1:
        raise CheckpointError(f"{name}: not a SketchApp checkpoint (bad format version {version!r})")
    if version > FORMAT_VERSION:
        raise CheckpointError(
            f"{name}: checkpoint format version {version} is newer than this SketchApp supports "
            f"({FORMAT_VERSION}); update SketchApp"
        )
    try:
        tensors = st_load(data)
    except (SafetensorError, ValueError, RuntimeError) as exc:
        raise CheckpointError(f"{name}: checkpoint is truncated or corrupt ({exc})") from exc
    return metadata, tensors


def read_file_record(path: str | os.PathLike[str]) -> tuple[Any, bool]:
    """(the SketchApp JSON record, whether all the tensors the header promises are there) of a
    safetensors file, from its header alone; OSError or ValueError when there is none to read.

    Checkpoints and training states both carry their record this way.
    """
    file = Path(path)
    with open(file, "rb") as handle:
        size = int.from_bytes(handle.read(8), "little")
        if not 2 <= size <= 100_000_000:
            raise ValueError("not a safetensors file (bad header size)")
        header = json.loads(handle.read(size))
    try:
        record = json.loads(header["__metadata__"][METADATA_KEY])
        end = max((int(v["data_offsets"][1]) for k, v in header.items() if k != "__metadata__"), default=0)
    except (KeyError, TypeError, IndexError, AttributeError) as exc:
        raise ValueError(f"no SketchApp record in its header ({exc!r})") from exc
    return record, file.stat().st_size >= 8 + size + end


def read_metadata(path: str | os.PathLike[str]) -> dict[str, Any]:
    """The JSON record of a checkpoint from its header alone: cheap enough to list many models.

    The tensors are neither read nor checked (``read_checkpoint`` does that when the model loads).
    """
    file = Path(path)
    try:
        metadata, _complete = read_file_record(file)
    except OSError as exc:
        raise CheckpointError(f"{file}: cannot read checkpoint ({exc.strerror or exc})") from exc
    except ValueError as exc:
        raise CheckpointError(f"{file.name}: not a SketchApp checkpoint ({exc})") from exc
    if not isinstance(metadata, dict) or metadata.get("format") != FORMAT:
        raise CheckpointError(f"{file.name}: not a SketchApp checkpoint (unknown metadata format)")
    return metadata


def _read_header(data: bytes, name: str) -> dict[str, Any]:
    """Check the safetensors framing before handing the bytes to the parser."""
    not_ours = f"{name}: not a SketchApp checkpoint (expected a .safetensors file)"
    if len(data) < 8:
        raise CheckpointError(not_ours)
    size = int.from_bytes(data[:8], "little")
    if size < 2 or size > 100_000_000 or data[8:9] != b"{":
        raise CheckpointError(not_ours)
    if 8 + size > len(data):
        raise CheckpointError(f"{name}: checkpoint is truncated (header cut short)")
    try:
        header = json.loads(data[8 : 8 + size])
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise CheckpointError(not_ours) from exc
    if not isinstance(header, dict):
        raise CheckpointError(not_ours)
    try:
        end = max((int(v["data_offsets"][1]) for k, v in header.items() if k != "__metadata__"), default=0)
    except (KeyError, TypeError, ValueError, IndexError) as exc:
        raise CheckpointError(f"{name}: checkpoint header is damaged ({exc!r})") from exc
    if 8 + size + end > len(data):
        raise CheckpointError(
            f"{name}: checkpoint is truncated ({len(data)} bytes, {8 + size + end} expected)"
        )
    return header


def load_model(
    path: str | os.PathLike[str], device: torch.device | str = "cpu", engine: str = CONTEXTUAL
) -> JointModel:
    """Build the joint GAN a contextual checkpoint describes and load its weights, in eval mode."""
    name = Path(path).name
    metadata, tensors = read_checkpoint(path)
    kind = metadata.get("engine")
    if kind != engine:
        raise CheckpointError(f"{name}: checkpoint is for the {kind!r} engine, not {engine!r}")
    return build_joint_model(name, metadata, tensors).to(torch.device(device)).eval()


def build_joint_model(name: str, metadata: dict[str, Any], tensors: dict[str, torch.Tensor]) -> JointModel:
    """The contextual engine's networks from a checkpoint's record, with its weights."""
    try:
        config = JointGANConfig.from_dict(dict(metadata.get("architecture") or {}))
    except (TypeError, ValueError, AttributeError) as exc:
        raise CheckpointError(f"{name}: invalid architecture in metadata ({exc})") from exc
    model = JointModel.create(config)
    model.metadata = metadata
    load_modules(name, model.modules(), tensors)
    return model


def load_modules(name: str, parts: dict[str, nn.Module], tensors: dict[str, torch.Tensor]) -> None:
    """Load ``tensors`` (keys "PREFIX.param") into the networks ``parts``, checking that they fit exactly."""
    grouped: dict[str, dict[str, torch.Tensor]] = {prefix: {} for prefix in parts}
    for key, tensor in tensors.items():
        prefix, _, rest = key.partition(".")
        if prefix not in grouped:
            raise CheckpointError(f"{name}: weights {key!r} do not belong to the architecture in its metadata")
        grouped[prefix][rest] = tensor
    for prefix, module in parts.items():
        expected = module.state_dict()
        given = grouped[prefix]
        unexpected = sorted(set(given) - set(expected))
        if unexpected:
            raise CheckpointError(
                f"{name}: weights {prefix}.{unexpected[0]} do not belong to the architecture in its metadata"
            )
        missing = sorted(set(expected) - set(given))
        if missing:
            more = f" and {len(missing) - 1} more" if len(missing) > 1 else ""
            raise CheckpointError(f"{name}: weights missing for {prefix}.{missing[0]}{more}")
        for key, tensor in given.items():
            if tuple(tensor.shape) != tuple(expected[key].shape):
                raise CheckpointError(
                    f"{name}: weights {prefix}.{key} have shape {tuple(tensor.shape)} but the metadata's "
                    f"architecture needs {tuple(expected[key].shape)}"
                )
            given[key] = tensor.to(expected[key].dtype)
        module.load_state_dict(given)
