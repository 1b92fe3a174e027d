"""Checkpoints: safetensors weights plus a JSON metadata record, in one file.

safetensors holds raw tensors and a JSON header, so loading a file can never execute
code from it (unlike pickle). Every problem a user can cause - a truncated download,
a file from another program, weights that do not fit their metadata - becomes a
CheckpointError with a one-line message.

This module knows no engine: a file holds a generic record (format, version, engine
kind, architecture, metadata) and named groups of tensors; each engine builds its own
networks from the record (``core.engines``).
"""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load as st_load
from safetensors.torch import save as st_save
from torch import nn

from sketchapp import __version__
from sketchapp.core.errors import CheckpointError
from sketchapp.core.fileio import parse_json, read_user_file, write_bytes_atomic

FORMAT = "sketchapp.checkpoint"
FORMAT_VERSION = 1
METADATA_KEY = "sketchapp"
MAX_HEADER_BYTES = 100_000_000  # the safetensors library's own limit


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

    def style_stack(self) -> tuple[nn.Sequential, bool, bool]:
        """The discriminator layers a style reference compares pictures with (``core.style``), whether
        they see joint sketch | picture pictures and whether a sketch channel comes first."""
        raise NotImplementedError(f"no discriminator features in a {type(self).__name__}")

    def to(self, device: torch.device | str) -> Any:
        for module in self.modules().values():
            module.to(device)
        return self

    def eval(self) -> Any:
        for module in self.modules().values():
            module.eval()
        return self


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
    if not isinstance(raw, str):
        raise CheckpointError(f"{name}: checkpoint metadata is not text")
    metadata = parse_json(raw, CheckpointError, f"{name}: checkpoint metadata")
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
    info = os.stat(file)
    if not stat.S_ISREG(info.st_mode):
        raise ValueError("not a regular file")
    with open(file, "rb") as handle:
        size = int.from_bytes(handle.read(8), "little")
        if not 2 <= size <= MAX_HEADER_BYTES:
            raise ValueError("not a safetensors file (bad header size)")
        try:
            header = parse_json(handle.read(size), CheckpointError, "header")
            record = parse_json(header["__metadata__"][METADATA_KEY], CheckpointError, "record")
        except CheckpointError as exc:
            raise ValueError(str(exc)) from None
        except (KeyError, TypeError) as exc:
            raise ValueError(f"no SketchApp record in its header ({exc!r})") from exc
    try:
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
    if size < 2 or size > MAX_HEADER_BYTES or data[8:9] != b"{":
        raise CheckpointError(not_ours)
    if 8 + size > len(data):
        raise CheckpointError(f"{name}: checkpoint is truncated (header cut short)")
    header = parse_json(data[8 : 8 + size], CheckpointError, f"{name}: checkpoint header")
    if not isinstance(header, dict):
        raise CheckpointError(not_ours)
    end = 0
    spans = []
    for key, entry in header.items():
        if key == "__metadata__":
            continue
        spans.append(_tensor_span(name, key, entry))
        end = max(end, spans[-1][1])
    for (begin, stop, key), (next_begin, _, next_key) in zip(sorted(spans), sorted(spans)[1:]):
        if next_begin < stop:
            raise CheckpointError(f"{name}: tensors {key!r} and {next_key!r} share bytes (a forged header)")
    if 8 + size + end > len(data):
        raise CheckpointError(
            f"{name}: checkpoint is truncated ({len(data)} bytes, {8 + size + end} expected)"
        )
    return header


#: the tensor types a SketchApp file may hold, with their bytes per element
DTYPE_BYTES = {"F16": 2, "BF16": 2, "F32": 4, "F64": 8, "I64": 8, "I32": 4, "U8": 1, "BOOL": 1}


def _tensor_span(name: str, key: str, entry: Any) -> tuple[int, int, str]:
    """(first byte, end, key) of one tensor of a safetensors header, after checking that its type is
    one we write and that its shape fills exactly its bytes."""
    shown = key[:60]
    try:
        dtype, shape, (begin, stop) = entry["dtype"], entry["shape"], entry["data_offsets"]
    except (KeyError, TypeError, ValueError) as exc:
        raise CheckpointError(f"{name}: the header entry of tensor {shown!r} is damaged ({exc!r})"[:300]) from None
    if dtype not in DTYPE_BYTES:
        raise CheckpointError(f"{name}: tensor {shown!r} has the type {str(dtype)[:20]!r}, which SketchApp never writes")
    numbers = [*shape, begin, stop] if isinstance(shape, list) else None
    if numbers is None or not all(type(v) is int and 0 <= v < 2**48 for v in numbers):
        raise CheckpointError(f"{name}: tensor {shown!r} has a bad shape or offsets")
    count = 1
    for dim in shape:
        count *= dim
    if stop < begin or (stop - begin) != count * DTYPE_BYTES[dtype]:
        raise CheckpointError(
            f"{name}: tensor {shown!r} is {dtype} {shape} ({count * DTYPE_BYTES[dtype]} bytes) but holds {stop - begin} bytes"
        )
    return begin, stop, key


def load_modules(name: str, parts: dict[str, nn.Module], tensors: dict[str, torch.Tensor]) -> None:
    """Load ``tensors`` (keys "PREFIX.param") into the networks ``parts``, checking that they fit exactly.

    The tensors are assigned, not copied, so ``parts`` may be built on the meta device
    (``torch.device("meta")``): no memory, no random initialisation to throw away.
    """
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
            _check_values(name, f"{prefix}.{key}", tensor, expected[key])
            given[key] = tensor.to(expected[key].dtype)
        module.load_state_dict(given, assign=True)


def _check_values(name: str, key: str, tensor: torch.Tensor, expected: torch.Tensor) -> None:
    """Refuse weights that would load but draw nothing: the wrong kind of number, NaN or infinity,
    or a batch norm variance below zero (each runs to a black picture and ``loss nan``)."""
    if expected.is_floating_point() != tensor.is_floating_point():
        kind = "floating-point" if expected.is_floating_point() else "integer"
        raise CheckpointError(f"{name}: weights {key} are stored as {tensor.dtype} where {kind} numbers belong")
    if tensor.is_floating_point() and not bool(torch.isfinite(tensor).all()):
        raise CheckpointError(f"{name}: weights {key} hold NaN or infinite values")
    if key.endswith("running_var") and bool((tensor < 0).any()):
        raise CheckpointError(f"{name}: batch norm statistics {key} hold a negative variance")
    if key.endswith("num_batches_tracked") and bool((tensor < 0).any()):
        raise CheckpointError(f"{name}: batch norm counter {key} is negative")
