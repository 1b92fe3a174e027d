"""The contract every engine honours, so the GUI worker and the CLI drive them alike.

An engine turns a sketch (and optional colour hints) into an iterator of Snapshots.
Iterative engines (contextual completion) stream many; one-pass engines (pix2pix,
CycleGAN) yield one final Snapshot. A cancelled run simply ends without a final one.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np
import torch

from sketchapp.contracts import Capabilities
from sketchapp.core.prepare import ink_over


class CancelToken:
    """A thread-safe flag an engine checks once per iteration."""

    def __init__(self) -> None:
        self._event = threading.Event()

    def cancel(self) -> None:
        self._event.set()

    @property
    def cancelled(self) -> bool:
        return self._event.is_set()


def to_uint8(pictures: torch.Tensor) -> np.ndarray:
    """(N, C, H, W) in [-1, 1] -> (N, H, W, C) uint8, a fresh numpy copy."""
    scaled = ((pictures.detach().float() + 1.0) * 127.5).round_().clamp_(0, 255)
    return scaled.to(torch.uint8).permute(0, 2, 3, 1).contiguous().cpu().numpy()


@dataclass(frozen=True, eq=False)
class Snapshot:
    """One moment of a run: every candidate's picture and losses, and which is best.

    Pictures stay as the engine's tensor until asked for, so emitting a Snapshot per
    iteration costs nothing; ``images()`` makes uint8 copies on demand. ``sketches``
    (the model's own drawing of the sketch, the contextual ghost guide) and ``latents``
    are there only for engines that have them.
    """

    iteration: int
    iterations: int
    phase: str  # "init" (choosing starts), "optimise", or "done"
    losses: dict[str, np.ndarray]  # name -> one value per candidate; "total" always present
    best: int
    pictures: torch.Tensor = field(repr=False)  # (K, C, H, H) the results, [-1, 1]
    latents: torch.Tensor | None = field(default=None, repr=False)  # (K, z_dim)
    final: bool = False
    info: dict[str, Any] = field(default_factory=dict)
    lines: np.ndarray | None = field(default=None, repr=False)  # the sketch as an ink layer (S, S), when inked
    sketches: torch.Tensor | None = field(default=None, repr=False)  # (K, C, H, H) the model's sketches, [-1, 1]

    @property
    def candidates(self) -> int:
        return int(self.pictures.shape[0])

    @property
    def half_size(self) -> int:
        """The model's resolution (the side of one result)."""
        return int(self.pictures.shape[-2])

    def images(self, part: str = "image") -> np.ndarray:
        """(K, H, W, 3) uint8 copies: part is "image" (the results), "sketch" (the model's sketches) or "joint" (both side by side)."""
        if part == "image":
            return to_uint8(self.pictures)
        if part not in ("sketch", "joint"):
            raise ValueError(f"part must be 'image', 'sketch' or 'joint', not {part!r}")
        if self.sketches is None:
            raise ValueError("this engine draws no sketches of its own")
        return to_uint8(self.sketches if part == "sketch" else torch.cat([self.sketches, self.pictures], dim=-1))

    def results(self, side: int | None = None, upscaler: Any = None) -> np.ndarray:
        """(K, side, side, 3) uint8: the pictures as the user gets them.

        ``side`` (default: the model's) larger than the model's size is reached with
        ``upscaler`` (a ``core.upscale.UpscalerModel``; a plain enlargement without one).
        With a line layer (the ``ink_lines`` setting) the sketch's own lines are drawn over
        them at that size.
        """
        images = self.images("image")
        side = int(side or images.shape[1])
        if side != images.shape[1]:
            from sketchapp.core.upscale import enlarge

            images = np.stack([enlarge(image, side, upscaler) for image in images])
        return images if self.lines is None else ink_over(images, self.lines, side)

    def best_image(self, part: str = "image") -> np.ndarray:
        return self.images(part)[self.best]

    def z(self) -> np.ndarray | None:
        """The latent code of every candidate (a copy), to refine one later."""
        return None if self.latents is None else self.latents.detach().cpu().numpy().copy()


class Engine(Protocol):
    """What the worker and CLI need of an engine (``core.engines.REGISTRY`` makes them)."""

    kind: str
    half_size: int  # the model's resolution
    capabilities: Capabilities  # what the window offers with it
    model: Any

    def warm_up(self, settings: Any = None) -> None: ...

    def start(
        self,
        sketch: np.ndarray,
        hints: np.ndarray | None = None,
        settings: Any = None,
        cancel: CancelToken | None = None,
        z: np.ndarray | None = None,
    ) -> Iterator[Snapshot]: ...


def sketch_thumbnails(engine: Engine, count: int, sketches: np.ndarray | None, settings: Any) -> np.ndarray:
    """(count, S, S, 3) uint8: ``engine``'s final pictures of ``count`` sketches spread over ``sketches``
    (one blank sheet without): what a new preset's thumbnails are chosen from."""
    side = engine.half_size
    if sketches is None or not len(sketches):
        sketches = np.full((1, side, side), 255, np.uint8)
    chosen = sketches[np.linspace(0, len(sketches) - 1, min(count, len(sketches))).astype(int)]
    return np.stack([list(engine.start(sketch, None, settings))[-1].images()[0] for sketch in chosen])
