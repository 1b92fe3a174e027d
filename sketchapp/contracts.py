"""The data that crosses the layers: frozen dataclasses with no torch and no Qt in them.

core makes them, the workers carry them across threads, and the window reads them; each
field has one meaning and one default for all three, where a dict with agreed keys let
each reader pick its own.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Capabilities:
    """What an engine offers, so the window shows only what works with the loaded model."""

    live: bool = False  # one pass, fast enough to complete while the pen moves
    ghost: bool = False  # draws its own sketch of the drawing, shown faintly as a guide
    refine: bool = False  # goes on from a result's latent code
    latents: bool = False  # searches latent codes over iterations rather than drawing in one pass
    variations: bool = False  # draws colour variations of one drawing
    hints: bool = False  # colour hints change the picture
    sketch_of: bool = False  # draws a sketch of a picture (imports become drawings)


@dataclass(frozen=True)
class LoadedModel:
    """A preset's model, loaded by the completion worker: what the window needs to know of it."""

    name: str  # the preset's (or the model file's) name
    engine: str  # the engine's kind
    device: str  # where it runs: "cpu", "cuda", "mps"
    size: int  # the side of the pictures it draws
    style: str = "unknown"  # the sketch style it was trained on
    encoder: bool = False  # it has a sketch encoder (the Contextual GAN's quick start)
    ink_lines: bool = False  # the preset inks the drawing's lines over its pictures
    candidates: int = 1  # pictures a completion draws
    capabilities: Capabilities = field(default_factory=Capabilities)
