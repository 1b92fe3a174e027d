"""Who the app is to the desktop: its application id, icon, document type and launcher files.

One reverse-DNS id names everything the desktop matches up: the desktop entry's file
name, Qt's desktop file name (the Wayland app id, and the X11 hints GNOME and KDE read),
the AppStream component and the icon. The files themselves ship in the package
(``resources/linux`` and ``resources/icons/hicolor``); ``sketchapp desktop install``
copies them into the user's ``$XDG_DATA_HOME`` so a pip install gets a launcher entry.

No torch here, and Qt only inside the function that gives a running app its identity:
the command line imports this module without a display.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Callable

from sketchapp.paths import APP_NAME, resources_dir

if TYPE_CHECKING:
    from PySide6.QtGui import QGuiApplication, QIcon

APP_ID = "io.github.sketchapp.SketchApp"
#: Qt's application name; on X11 it is the class part of WM_CLASS ("sketchapp", "SketchApp"),
#: which the desktop entry's StartupWMClass names.
WM_CLASS = APP_NAME
ORGANISATION = APP_NAME
MIME_TYPE = "application/x-sketchapp"
DOCUMENT_SUFFIX = ".sketchapp"
#: the hicolor PNG sizes shipped beside the scalable SVG
ICON_SIZES = (16, 22, 24, 32, 48, 64, 128, 256, 512)
#: the sizes handed to the window manager with each window (512 px is for launchers only)
WINDOW_ICON_SIZES = tuple(size for size in ICON_SIZES if size <= 256)

DESKTOP_ENTRY = f"{APP_ID}.desktop"
METAINFO = f"{APP_ID}.metainfo.xml"
MIME_DEFINITION = f"{MIME_TYPE.replace('/', '-')}.xml"


def linux_dir() -> Path:
    """The packaged desktop entry, AppStream metainfo and MIME definition."""
    return resources_dir() / "linux"


def icon_theme_dir() -> Path:
    """The packaged hicolor icon theme folder (``NxN/apps/<id>.png``, ``scalable/apps/<id>.svg``)."""
    return resources_dir() / "icons" / "hicolor"


def icon_png(size: int) -> Path:
    return icon_theme_dir() / f"{size}x{size}" / "apps" / f"{APP_ID}.png"


def icon_svg() -> Path:
    return icon_theme_dir() / "scalable" / "apps" / f"{APP_ID}.svg"


def window_icon() -> QIcon:
    """The app's icon in each shipped size up to 256 px, as a QIcon."""
    from PySide6.QtCore import QSize
    from PySide6.QtGui import QIcon

    icon = QIcon()
    for size in WINDOW_ICON_SIZES:
        path = icon_png(size)
        if path.is_file():
            icon.addFile(str(path), QSize(size, size))
    if icon.isNull() and icon_svg().is_file():  # PNGs not rendered (a bare checkout): the SVG scales
        icon.addFile(str(icon_svg()))
    return icon


def apply_identity(app: QGuiApplication) -> None:
    """Give a running app its name, desktop file name and window icon.

    Every window, the training wizard and dialogs included, takes the app's icon unless
    it sets its own; the desktop file name lets the shell match windows to the launcher.
    """
    app.setApplicationName(APP_NAME)
    app.setOrganizationName(ORGANISATION)
    app.setDesktopFileName(APP_ID)
    app.setWindowIcon(window_icon())


# --- sketchapp desktop install / uninstall ---------------------------------------------


@dataclass(frozen=True)
class InstalledFile:
    """One file the desktop integration puts under ``$XDG_DATA_HOME``."""

    source: Path
    target: Path  # relative to the data home


def data_home() -> Path:
    """``$XDG_DATA_HOME``, or ``~/.local/share`` where it is unset or not absolute (as the spec says)."""
    value = os.environ.get("XDG_DATA_HOME", "")
    return Path(value) if os.path.isabs(value) else Path.home() / ".local" / "share"


def integration_files() -> list[InstalledFile]:
    """What ``sketchapp desktop install`` writes, and ``uninstall`` removes, relative to the data home."""
    files = [
        InstalledFile(linux_dir() / DESKTOP_ENTRY, Path("applications") / DESKTOP_ENTRY),
        InstalledFile(linux_dir() / METAINFO, Path("metainfo") / METAINFO),
        InstalledFile(linux_dir() / MIME_DEFINITION, Path("mime") / "packages" / MIME_DEFINITION),
        InstalledFile(icon_svg(), Path("icons") / "hicolor" / "scalable" / "apps" / f"{APP_ID}.svg"),
    ]
    for size in ICON_SIZES:
        files.append(InstalledFile(icon_png(size), Path("icons") / "hicolor" / f"{size}x{size}" / "apps" / f"{APP_ID}.png"))
    return files


def launcher_command() -> str:
    """The absolute command that starts this installation of SketchApp.

    The running ``sketchapp`` script where that is what runs, else the one on PATH,
    else this interpreter with ``-m sketchapp``: a launcher's PATH is often not the
    shell's (``~/.local/bin``, a virtual environment), so the entry never relies on it.
    """
    running = Path(sys.argv[0]) if sys.argv and sys.argv[0] else None
    if running is not None and running.name == "sketchapp" and running.is_file():
        return _exec_quote(str(running.resolve()))
    found = shutil.which("sketchapp")
    if found:
        return _exec_quote(str(Path(found).resolve()))
    return f"{_exec_quote(str(Path(sys.executable).resolve()))} -m sketchapp"


def _exec_quote(argument: str) -> str:
    """One Exec= argument, quoted as the Desktop Entry spec asks, and escaped for the file."""
    reserved = set(" \t\n\"'\\><~|&;$*?#()`")
    quoted = argument
    if reserved & set(argument):
        quoted = '"' + "".join("\\" + c if c in '"`$\\' else c for c in argument) + '"'
    return quoted.replace("\\", "\\\\").replace("%", "%%")  # the file's string escapes, then field codes


def desktop_entry_text(command: str) -> str:
    """The packaged desktop entry with its Exec= program replaced by ``command``."""
    lines = []
    for line in (linux_dir() / DESKTOP_ENTRY).read_text(encoding="utf-8").splitlines():
        if line.startswith("Exec="):
            _, _, arguments = line.partition("=")[2].partition(" ")
            line = f"Exec={command} {arguments}".rstrip()
        lines.append(line)
    return "\n".join(lines) + "\n"


def _write_atomic(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(handle, "wb") as out:
            out.write(data)
        os.chmod(temporary, 0o644)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def _refresh_caches(home: Path, say: Callable[[str], None]) -> None:
    """Run the desktop's cache tools where they are installed; a desktop without them reads the files."""
    tools = [
        ["update-desktop-database", "-q", str(home / "applications")],
        ["update-mime-database", str(home / "mime")],
        ["gtk-update-icon-cache", "-q", "-t", "-f", str(home / "icons" / "hicolor")],
    ]
    for command in tools:
        if shutil.which(command[0]) is None or not Path(command[-1]).is_dir():
            continue
        try:
            result = subprocess.run(command, capture_output=True, text=True, timeout=60, check=False)
        except (OSError, subprocess.TimeoutExpired) as exc:
            say(f"{command[0]} failed: {exc}")
            continue
        say(f"ran {command[0]}" if result.returncode == 0 else f"{command[0]} exited {result.returncode}")


def install_desktop(say: Callable[[str], None] = print) -> list[Path]:
    """Copy the launcher entry, icons, metainfo and MIME type into the data home; return what was written."""
    home = data_home()
    written = []
    for item in integration_files():
        target = home / item.target
        if item.target.suffix == ".desktop":
            data = desktop_entry_text(launcher_command()).encode("utf-8")
        else:
            data = item.source.read_bytes()
        _write_atomic(target, data)
        say(f"installed {target}")
        written.append(target)
    _refresh_caches(home, say)
    return written


def uninstall_desktop(say: Callable[[str], None] = print) -> list[Path]:
    """Remove exactly the files ``install_desktop`` writes; return those that were there."""
    home = data_home()
    removed = []
    for item in integration_files():
        target = home / item.target
        try:
            target.unlink()
        except FileNotFoundError:
            continue
        say(f"removed {target}")
        removed.append(target)
    if not removed:
        say(f"nothing to remove under {home}")
    _refresh_caches(home, say)
    return removed


def desktop_command(action: str) -> int:
    """``sketchapp desktop install|uninstall``: exit code 0."""
    if action == "install":
        install_desktop()
    else:
        uninstall_desktop()
    return 0
