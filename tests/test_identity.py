"""The app's identity: one application id in every desktop file, the icons, the window icon,
and ``sketchapp desktop install`` / ``uninstall``."""

from __future__ import annotations

import configparser
import os
import shutil
import stat
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from PIL import Image

from sketchapp import identity
from sketchapp.cli import main

MIME_NS = "{http://www.freedesktop.org/standards/shared-mime-info}"
DESKTOP_FILE_VALIDATE = shutil.which("desktop-file-validate")  # before a test narrows PATH


def desktop_entry(path: Path) -> configparser.SectionProxy:
    parser = configparser.ConfigParser(interpolation=None, strict=True)
    parser.optionxform = str  # keys are case-sensitive
    parser.read_string(path.read_text(encoding="utf-8"))
    return parser["Desktop Entry"]


def packaged(name: str) -> Path:
    return identity.linux_dir() / name


def test_one_application_id_everywhere():
    app_id = identity.APP_ID
    assert app_id == "io.github.sketchapp.SketchApp"
    desktop_path = packaged(f"{app_id}.desktop")
    entry = desktop_entry(desktop_path)
    assert entry["Icon"] == app_id
    assert entry["MimeType"] == f"{identity.MIME_TYPE};"
    assert entry["Exec"] == "sketchapp %f"
    assert entry["StartupWMClass"] == identity.WM_CLASS

    component = ET.parse(packaged(f"{app_id}.metainfo.xml")).getroot()
    assert component.findtext("id") == app_id
    assert component.findtext("launchable") == desktop_path.name
    assert component.find("launchable").get("type") == "desktop-id"
    assert component.findtext("icon") == app_id
    assert component.findtext("provides/binary") == "sketchapp"

    mime_type = ET.parse(packaged(identity.MIME_DEFINITION)).getroot().find(f"{MIME_NS}mime-type")
    assert mime_type.get("type") == identity.MIME_TYPE == "application/x-sketchapp"
    assert mime_type.find(f"{MIME_NS}glob").get("pattern") == f"*{identity.DOCUMENT_SUFFIX}"
    assert mime_type.find(f"{MIME_NS}sub-class-of").get("type") == "application/zip"
    assert mime_type.find(f"{MIME_NS}icon").get("name") == app_id

    assert identity.icon_svg().name == f"{app_id}.svg"
    assert all(identity.icon_png(size).name == f"{app_id}.png" for size in identity.ICON_SIZES)


@pytest.mark.skipif(shutil.which("appstreamcli") is None, reason="appstreamcli not installed")
def test_metainfo_passes_appstream_validation():
    result = subprocess.run(
        ["appstreamcli", "validate", "--no-net", "--no-color", str(packaged(identity.METAINFO))],
        capture_output=True, text=True, timeout=60,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    problems = [line for line in result.stdout.splitlines() if line.startswith(("E:", "W:", "I:"))]
    assert problems == [], result.stdout  # pedantic notes (P:) may remain


@pytest.mark.skipif(DESKTOP_FILE_VALIDATE is None, reason="desktop-file-validate not installed")
def test_desktop_entry_passes_validation():
    result = subprocess.run([DESKTOP_FILE_VALIDATE, str(packaged(identity.DESKTOP_ENTRY))],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0 and result.stdout.strip() == "", result.stdout + result.stderr


def test_every_png_size_is_shipped_at_its_size():
    assert identity.icon_svg().is_file()
    ET.parse(identity.icon_svg())  # well-formed
    for size in identity.ICON_SIZES:
        with Image.open(identity.icon_png(size)) as picture:
            assert picture.size == (size, size)
            assert picture.mode == "RGBA"
            assert picture.getpixel((0, 0))[3] == 0  # the rounded corner is transparent
            assert picture.getpixel((size // 2, size // 2))[3] == 255


def test_the_app_and_so_every_window_takes_the_icon_and_desktop_name(qapp):
    from PySide6.QtGui import QGuiApplication
    from PySide6.QtWidgets import QDialog

    before = (qapp.applicationName(), qapp.organizationName(), qapp.desktopFileName(), qapp.windowIcon())
    try:
        identity.apply_identity(qapp)
        icon = QGuiApplication.windowIcon()
        assert not icon.isNull()
        sizes = {(s.width(), s.height()) for s in icon.availableSizes()}
        assert sizes == {(n, n) for n in identity.WINDOW_ICON_SIZES}
        assert QGuiApplication.desktopFileName() == identity.APP_ID
        # on X11 the application name is WM_CLASS's class, which StartupWMClass names
        assert qapp.applicationName() == desktop_entry(packaged(identity.DESKTOP_ENTRY))["StartupWMClass"]
        dialog = QDialog()  # a dialog (the training wizard is one) inherits the app's icon
        assert dialog.windowIcon().cacheKey() == icon.cacheKey()
        dialog.deleteLater()
    finally:
        qapp.setApplicationName(before[0])
        qapp.setOrganizationName(before[1])
        qapp.setDesktopFileName(before[2])
        qapp.setWindowIcon(before[3])


def expected_files(home: Path) -> set[Path]:
    app_id = identity.APP_ID
    files = {
        home / "applications" / f"{app_id}.desktop",
        home / "metainfo" / f"{app_id}.metainfo.xml",
        home / "mime" / "packages" / "application-x-sketchapp.xml",
        home / "icons" / "hicolor" / "scalable" / "apps" / f"{app_id}.svg",
    }
    files |= {home / "icons" / "hicolor" / f"{n}x{n}" / "apps" / f"{app_id}.png" for n in identity.ICON_SIZES}
    return files


def all_files(root: Path) -> set[Path]:
    return {p for p in root.rglob("*") if p.is_file()}


@pytest.fixture
def bare_desktop(tmp_path, monkeypatch):
    """A data home, and a PATH with only a ``sketchapp`` script on it (no cache tools)."""
    home = tmp_path / "data"
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    script = bin_dir / "sketchapp"
    script.write_text("#!/bin/sh\n")
    script.chmod(script.stat().st_mode | stat.S_IXUSR)
    monkeypatch.setenv("XDG_DATA_HOME", str(home))
    monkeypatch.setenv("PATH", str(bin_dir))
    monkeypatch.setattr(sys, "argv", ["pytest"])
    return home, script


def test_desktop_install_then_uninstall_writes_then_removes_exactly_its_files(bare_desktop, capsys):
    home, script = bare_desktop
    assert main(["desktop", "install"]) == 0
    expected = expected_files(home)
    assert all_files(home) == expected
    printed = capsys.readouterr().out.splitlines()
    assert sorted(printed) == sorted(f"installed {path}" for path in expected)  # one line each
    entry = desktop_entry(home / "applications" / identity.DESKTOP_ENTRY)
    program, _, arguments = entry["Exec"].partition(" ")
    assert os.path.isabs(program) and program == str(script.resolve()) and arguments == "%f"
    assert entry["Icon"] == identity.APP_ID
    for size in identity.ICON_SIZES:
        installed = home / "icons" / "hicolor" / f"{size}x{size}" / "apps" / f"{identity.APP_ID}.png"
        assert installed.read_bytes() == identity.icon_png(size).read_bytes()
    assert not [p for p in home.rglob("*.tmp")]

    assert main(["desktop", "uninstall"]) == 0
    assert all_files(home) == set()
    assert sorted(capsys.readouterr().out.splitlines()) == sorted(f"removed {path}" for path in expected)
    assert main(["desktop", "uninstall"]) == 0  # a second time: nothing there, still fine
    assert "nothing to remove" in capsys.readouterr().out


@pytest.mark.skipif(DESKTOP_FILE_VALIDATE is None, reason="desktop-file-validate not installed")
def test_installed_entry_quotes_a_program_path_with_spaces(bare_desktop, tmp_path, monkeypatch):
    home, _ = bare_desktop
    odd = tmp_path / "my apps" / "100% $HOME" / "sketchapp"
    odd.parent.mkdir(parents=True)
    odd.write_text("#!/bin/sh\n")
    monkeypatch.setattr(sys, "argv", [str(odd), "desktop", "install"])  # the running script
    assert main(["desktop", "install"]) == 0
    installed = home / "applications" / identity.DESKTOP_ENTRY
    exec_line = desktop_entry(installed)["Exec"]
    assert exec_line == f'"{tmp_path}/my apps/100%% \\\\$HOME/sketchapp" %f'
    result = subprocess.run([DESKTOP_FILE_VALIDATE, str(installed)], capture_output=True, text=True)
    assert result.returncode == 0 and result.stdout.strip() == "", result.stdout


@pytest.mark.skipif(shutil.which("update-mime-database") is None, reason="shared-mime-info not installed")
def test_install_registers_the_document_type_and_uninstall_forgets_it(tmp_path, monkeypatch, capsys):
    home = tmp_path / "data"
    monkeypatch.setenv("XDG_DATA_HOME", str(home))
    assert main(["desktop", "install"]) == 0
    assert "ran update-mime-database" in capsys.readouterr().out
    assert "*.sketchapp" in (home / "mime" / "globs2").read_text()
    assert (home / "mime" / "application" / "x-sketchapp.xml").is_file()
    assert main(["desktop", "uninstall"]) == 0
    assert expected_files(home).isdisjoint(all_files(home))
    assert "*.sketchapp" not in (home / "mime" / "globs2").read_text()


def test_desktop_command_needs_neither_torch_nor_qt(tmp_path):
    code = (
        "import sys\n"
        "from sketchapp.cli import main\n"
        "assert main(['desktop', 'install']) == 0 and main(['desktop', 'uninstall']) == 0\n"
        "loaded = [m for m in ('torch', 'PySide6') if m in sys.modules]\n"
        "assert not loaded, loaded\n"
    )
    environment = {**os.environ, "XDG_DATA_HOME": str(tmp_path), "QT_QPA_PLATFORM": ""}
    environment.pop("DISPLAY", None)
    environment.pop("WAYLAND_DISPLAY", None)
    result = subprocess.run([sys.executable, "-c", code], env=environment, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
