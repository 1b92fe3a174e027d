"""The CPU runtime of one-pass generators: ONNX Runtime where it measures faster than torch, torch otherwise.

Measured on a 2-core AMD EPYC in interleaved runs (``benchmarks/runtimes.py``, 2026-12-07),
a whole pix2pix completion in float32 on one thread is 1.96x faster at 128 px and 1.34x
at 256 px with the generator under ONNX Runtime than under torch's own CPU kernels (the
generator alone reaches 70 % of one core's ceiling instead of 33-51 %), with outputs
equal to 2e-6. OpenVINO, also measured, was slower than ONNX Runtime at both sizes and
is three times the download. The network is exported by torch's TorchScript-based ONNX
exporter (about a second for the shipped generator; the exporter needs the ``onnx``
package to finish the graph) and kept in the user's cache folder, keyed by its weights
and input shape, so the next start only loads it; a cached graph is data (protobuf),
never code. ONNX Runtime's telemetry (a device id and usage events kept under the home
folder for upload) is switched off before it is imported.

A compiled network is called like the torch module it came from, with tensors in and a
tuple of tensors out; it serves one input shape (the live single picture) and the
engine keeps torch for the rest.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import os
import tempfile
import time
import warnings
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from torch import nn


class CompiledNet:
    """A network under ONNX Runtime for one input shape."""

    def __init__(self, session: object, shape: tuple[int, ...]) -> None:
        self.shape = shape
        self._session = session

    def __call__(self, x: torch.Tensor) -> tuple[torch.Tensor, ...]:
        feed = {"x": np.ascontiguousarray(x.detach().float().cpu().numpy())}
        return tuple(torch.from_numpy(value) for value in self._session.run(None, feed))  # type: ignore[attr-defined]


class _Outputs(nn.Module):
    """``net(x)`` (with ``unmixed``: ``net(x, unmixed=True)``) as a tuple of tensors, Nones left out."""

    def __init__(self, net: nn.Module, unmixed: bool) -> None:
        super().__init__()
        self.net, self.unmixed = net, unmixed

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, ...]:
        out = self.net(x, unmixed=True) if self.unmixed else self.net(x)
        return tuple(t for t in (out if isinstance(out, tuple) else (out,)) if t is not None)


def seconds(net: Callable[[torch.Tensor], object], x: torch.Tensor, passes: int = 3) -> float:
    """The fastest of ``passes`` calls of ``net`` on ``x``, after one to build its kernels."""
    times = []
    with torch.inference_mode():
        for _ in range(passes + 1):
            began = time.perf_counter()
            net(x)
            times.append(time.perf_counter() - began)
    return min(times[1:])


def faster_runtime(
    net: nn.Module, example: torch.Tensor, baseline: float, cache: Path | None, unmixed: bool = False,
) -> CompiledNet | None:
    """``net`` under ONNX Runtime where a pass on ``example`` measures at least 10 % under ``baseline``
    seconds (what torch takes), else None. ``cache`` defaults to the user's cache folder."""
    if cache is None:
        from sketchapp import paths

        cache = paths.user_cache_dir() / "networks"
    compiled = compile_generator(net, example, torch.get_num_threads(), cache, unmixed)
    return compiled if compiled is not None and seconds(compiled, example) < 0.9 * baseline else None


def _key(net: nn.Module, shape: tuple[int, ...]) -> str:
    digest = hashlib.sha256(repr(shape).encode())
    for name, tensor in net.state_dict().items():
        digest.update(name.encode())
        digest.update(tensor.detach().float().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()[:32]


def compile_generator(
    net: nn.Module, example: torch.Tensor, threads: int, cache: Path | None, unmixed: bool = False,
) -> CompiledNet | None:
    """``net`` (eval mode; with ``unmixed``, a pix2pix generator's parts) under ONNX Runtime for ``example``'s
    shape, or None where ONNX Runtime or onnx is not installed or cannot take it. ``cache``: a folder for exported networks."""
    # ONNX Runtime's uploader of usage events, and the device id and event store it keeps in the user's
    # home, start at its import unless this is set: SketchApp reports nothing to anyone.
    os.environ["ORT_DISABLE_TELEMETRY"] = "1"
    try:
        import onnxruntime as ort
    except ImportError:
        return None
    ort.disable_telemetry_events()
    shape = tuple(example.shape)
    stored = cache / f"{_key(net, shape)}{'-parts' if unmixed else ''}.onnx" if cache is not None else None
    try:
        if stored is not None and stored.is_file():
            graph = stored.read_bytes()
        else:
            buffer = io.BytesIO()
            with torch.inference_mode(), warnings.catch_warnings():
                warnings.simplefilter("ignore")  # tracer and deprecation notes: the traced shapes are the ones it serves
                torch.onnx.export(_Outputs(net, unmixed).eval(), (example.float().contiguous(),), buffer, input_names=["x"],
                                  opset_version=17, dynamo=False)
            graph = buffer.getvalue()
            if stored is not None:
                _store(graph, stored)
        options = ort.SessionOptions()
        options.intra_op_num_threads, options.inter_op_num_threads = max(1, threads), 1
        session = ort.InferenceSession(graph, options, providers=["CPUExecutionProvider"])
        return CompiledNet(session, shape)
    except Exception:  # noqa: BLE001 - any failure of the optional runtime leaves torch in charge
        return None


def _store(graph: bytes, path: Path) -> None:
    """Write an exported network to ``path`` atomically (complete or absent)."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=path.parent, suffix=".tmp", delete=False) as handle:
            handle.write(graph)
        os.replace(handle.name, path)
    except OSError:  # a full disk or a read-only cache: the network is exported again next time
        with contextlib.suppress(OSError, UnboundLocalError):
            os.unlink(handle.name)
