"""The layering contracts in pyproject.toml hold: core has no Qt, ui has no torch."""

from __future__ import annotations

import ast
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def test_import_contracts_hold():
    command = shutil.which("lint-imports") or f"{Path(sys.executable).parent}/lint-imports"
    result = subprocess.run([command, "--no-cache"], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "6 kept, 0 broken" in result.stdout


def test_workers_use_qtcore_only():
    """import-linter cannot forbid submodules of external packages, so check workers' imports here."""
    for file in (ROOT / "sketchapp" / "workers").rglob("*.py"):
        for node in ast.walk(ast.parse(file.read_text())):
            names = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module] + [f"{node.module}.{alias.name}" for alias in node.names]
            bad = [n for n in names if n.startswith(("PySide6.QtWidgets", "PySide6.QtGui"))]
            assert not bad, f"{file.name} imports {bad}"


def test_every_package_is_in_the_wheel():
    """setuptools installs only the packages pyproject.toml lists: a new one left out is missing
    from wheels and bundles (as the CycleGAN engine once was) while editable installs still work."""
    tomllib = pytest.importorskip("tomllib")  # Python 3.11+
    listed = set(tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"])
    found = {".".join(init.parent.relative_to(ROOT).parts) for init in (ROOT / "sketchapp").rglob("__init__.py")}
    assert found <= listed, f"not in pyproject.toml's packages: {sorted(found - listed)}"
