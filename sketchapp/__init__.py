"""SketchApp: draw a sketch, watch a GAN turn it into a coloured image."""

from __future__ import annotations

__version__ = "0.1.0"
