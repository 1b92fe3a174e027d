"""The CycleGAN engine: one pass of the A -> B generator from sketch to picture, and back.

Like pix2pix it draws the picture directly from the drawing, fast enough to run while
the pen moves; it has no latent code, no hints and no variety (its generators have no
noise). Its second generator goes the other way: ``sketch_of`` draws a sketch of a
picture, the bidirectional generation the Contextual GAN seed speaks of.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, fields
from pathlib import Path

import cv2
import numpy as np
import torch

from sketchapp.contracts import Capabilities
from sketchapp.core.engine import CancelToken, Snapshot, to_uint8
from sketchapp.core.engines.cyclegan.model import CYCLEGAN, CycleGANModel
from sketchapp.core.errors import SettingsError
from sketchapp.core.prepare import fit_square, line_layer, sketch_tensor
from sketchapp.core.records import Record
from sketchapp.core.runtime import CompiledNet, faster_runtime, seconds


@dataclass(frozen=True)
class CycleGANSettings(Record):
    """What shapes one CycleGAN completion (presets store these)."""

    WHAT = "CycleGAN settings"

    ink_lines: bool = False
    match_line_width: bool = True
    seed: int | None = None  # recorded with a result; the generators draw no noise
    channels_last: bool = True
    runtime: bool = True  # on the CPU, run under ONNX Runtime (core.runtime) where the warm-up measures it faster

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            ok = (value is None or (type(value) is int and 0 <= value < 2**63)) if f.name == "seed" else type(value) is bool
            if not ok:
                raise SettingsError(f"CycleGAN setting {f.name} has a bad value {value!r}")


class CycleGANEngine:
    """One-pass completion (A -> B) and sketches of pictures (B -> A) for a loaded CycleGAN model."""

    kind = CYCLEGAN
    capabilities = Capabilities(live=True, sketch_of=True)

    def __init__(self, model: CycleGANModel, device: torch.device | str = "cpu") -> None:
        self.device = torch.device(device)
        self.model = model.to(self.device).eval()
        for net in (model.g_ab, model.g_ba):
            net.requires_grad_(False)
        self._layout = torch.contiguous_format
        self.compiled: CompiledNet | None = None  # g_ab under ONNX Runtime for one picture, where the warm-up found it faster

    @property
    def half_size(self) -> int:
        return self.model.config.size

    @property
    def line_width(self) -> float | None:
        return self.model.line_width

    def _set_layout(self, channels_last: bool) -> None:
        layout = torch.channels_last if channels_last else torch.contiguous_format
        if layout is not self._layout:
            for net in (self.model.g_ab, self.model.g_ba):
                net.to(memory_format=layout)
            self._layout = layout

    def warm_up(self, settings: CycleGANSettings | None = None, cache: Path | None = None) -> None:
        """A throw-away pass so the first real result comes at full speed, and on the CPU ONNX Runtime for the
        picture where it measures at least 10 % faster than torch (``core.runtime``; exports kept in ``cache``)."""
        settings = settings or CycleGANSettings()
        blank = np.full((self.half_size, self.half_size), 255, np.uint8)
        for _ in self.start(blank, None, settings.updated(seed=0)):
            pass
        self.compiled = None
        if self.device.type == "cpu" and settings.runtime:
            x = sketch_tensor(blank, self.half_size, None).to(self.device).contiguous(memory_format=self._layout)
            self.compiled = faster_runtime(self.model.g_ab, x, seconds(self.model.g_ab, x), cache)

    def start(
        self,
        sketch: np.ndarray,
        hints: np.ndarray | None = None,
        settings: CycleGANSettings | None = None,
        cancel: CancelToken | None = None,
        z: np.ndarray | None = None,
    ) -> Iterator[Snapshot]:
        """Complete ``sketch`` in one pass; yields one final Snapshot (none when cancelled).

        CycleGAN takes no hints (they are ignored) and has no latent code (``z`` is refused).
        """
        if z is not None:
            raise SettingsError("CycleGAN has no latent code to refine")
        settings = settings or CycleGANSettings()
        cancel = cancel or CancelToken()
        if cancel.cancelled:
            return
        size = self.half_size
        line_width = self.line_width if settings.match_line_width else None
        x = sketch_tensor(sketch, size, line_width).to(self.device)
        self._set_layout(settings.channels_last and self.device.type == "cpu")
        with torch.inference_mode():
            if self.compiled is not None and settings.runtime and tuple(x.shape) == self.compiled.shape:
                pictures = self.compiled(x)[0]
            else:
                pictures = self.model.g_ab(x.contiguous(memory_format=self._layout)).float().contiguous()
        if cancel.cancelled:
            return
        lines = line_layer(sketch, size) if settings.ink_lines else None
        yield Snapshot(
            iteration=1, iterations=1, phase="done", losses={"total": np.zeros(1, np.float32)}, best=0,
            pictures=pictures, final=True, info={"spread": 0.0}, lines=lines,
        )

    def sketch_of(self, picture: np.ndarray) -> np.ndarray:
        """A sketch (S, S) grey uint8 of an RGB picture of any size (fitted on white), by the B -> A generator."""
        if picture.dtype != np.uint8 or picture.ndim != 3 or picture.shape[2] != 3:
            raise SettingsError(f"a picture to sketch must be RGB, got shape {picture.shape}")
        size = self.half_size
        fitted = fit_square(picture, size, (255, 255, 255))
        x = torch.from_numpy(fitted).permute(2, 0, 1)[None].float().div(127.5).sub(1.0).to(self.device)
        with torch.inference_mode():
            drawn = to_uint8(self.model.g_ba(x))[0]
        return cv2.cvtColor(drawn, cv2.COLOR_RGB2GRAY)
