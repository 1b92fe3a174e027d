"""Where SketchApp keeps things: bundled resources and models, and per-user folders."""

from __future__ import annotations

import os
from importlib import resources
from pathlib import Path

import platformdirs

APP_NAME = "SketchApp"


def _package_dir(package: str) -> Path:
    return Path(str(resources.files(package)))


def resources_dir() -> Path:
    """Bundled resources (the repository's ``resources/``, installed as sketchapp.resources)."""
    return _package_dir("sketchapp.resources")


def bundled_models_dir() -> Path:
    """Shipped model weights (the repository's ``models/``, installed as sketchapp.models)."""
    return _package_dir("sketchapp.models")


def bundled_presets_dir() -> Path:
    return resources_dir() / "presets"


def user_data_dir() -> Path:
    override = os.environ.get("SKETCHAPP_DATA_DIR")
    return Path(override) if override else Path(platformdirs.user_data_dir(APP_NAME, appauthor=False))


def user_presets_dir() -> Path:
    return user_data_dir() / "presets"


def user_models_dir() -> Path:
    return user_data_dir() / "models"


def user_cache_dir() -> Path:
    """What is kept only to save time (networks converted for a faster runtime): safe to delete."""
    if os.environ.get("SKETCHAPP_CACHE_DIR"):
        return Path(os.environ["SKETCHAPP_CACHE_DIR"])
    override = os.environ.get("SKETCHAPP_DATA_DIR")
    return Path(override) / "cache" if override else Path(platformdirs.user_cache_dir(APP_NAME, appauthor=False))


def user_state_dir() -> Path:
    """Autosave and other state that should survive a crash but is not the user's data."""
    override = os.environ.get("SKETCHAPP_DATA_DIR")
    return Path(override) / "state" if override else Path(platformdirs.user_state_dir(APP_NAME, appauthor=False))
