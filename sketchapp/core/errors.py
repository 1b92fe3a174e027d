"""Errors a user can act on. Each carries a one-line message fit to show as it is."""

from __future__ import annotations


class SketchAppError(Exception):
    """Base of every error that is the input's fault, not a bug."""


class ImageLoadError(SketchAppError):
    """An image file is missing, unreadable, corrupt, empty or too large."""


class ImageSaveError(SketchAppError):
    """An image could not be written (full disk, no permission, bad format)."""


class CheckpointError(SketchAppError):
    """A checkpoint is missing, truncated, foreign or does not match its metadata."""


class PresetError(SketchAppError):
    """A preset file is unknown or invalid."""


class DeviceError(SketchAppError):
    """The requested compute device does not exist on this machine."""


class SettingsError(SketchAppError):
    """An engine setting is out of range."""


class DocumentError(SketchAppError):
    """A sketch document is damaged, foreign, from a newer SketchApp, or cannot be written."""
