"""Can the window open on this Linux desktop? The system libraries Qt's X11 plugin needs.

When a library of the xcb platform plugin is missing, Qt aborts with a long message that
ends in "Reinstalling the application may fix this problem", which it will not. This
checks the same libraries first (found with ``ldd`` on PySide6's ``libqxcb.so``, the ones
a desktop may lack; glibc and the like are always there) and names the packages that
provide the missing ones, on Debian/Ubuntu and on Fedora. No Qt is imported here.
"""

from __future__ import annotations

import ctypes
import os
import sys
from collections.abc import Callable

#: soname -> (Debian/Ubuntu package, Fedora package)
XCB_LIBRARIES: dict[str, tuple[str, str]] = {
    "libxcb.so.1": ("libxcb1", "libxcb"),
    "libX11-xcb.so.1": ("libx11-xcb1", "libX11-xcb"),
    "libxcb-cursor.so.0": ("libxcb-cursor0", "xcb-util-cursor"),
    "libxcb-icccm.so.4": ("libxcb-icccm4", "xcb-util-wm"),
    "libxcb-keysyms.so.1": ("libxcb-keysyms1", "xcb-util-keysyms"),
    "libxcb-image.so.0": ("libxcb-image0", "xcb-util-image"),
    "libxcb-render-util.so.0": ("libxcb-render-util0", "xcb-util-renderutil"),
    "libxcb-util.so.1": ("libxcb-util1", "xcb-util"),
    "libxcb-randr.so.0": ("libxcb-randr0", "libxcb"),
    "libxcb-shape.so.0": ("libxcb-shape0", "libxcb"),
    "libxcb-xkb.so.1": ("libxcb-xkb1", "libxcb"),
    "libxkbcommon-x11.so.0": ("libxkbcommon-x11-0", "libxkbcommon-x11"),
    "libEGL.so.1": ("libegl1", "libglvnd-egl"),
    "libGL.so.1": ("libgl1", "libglvnd-glx"),
    "libfontconfig.so.1": ("libfontconfig1", "fontconfig"),
}


def _loads(soname: str) -> bool:
    try:
        ctypes.CDLL(soname)
    except OSError:
        return False
    return True


def uses_xcb(environ: dict[str, str] | None = None, platform: str | None = None) -> bool:
    """Whether Qt will use its X11 (xcb) plugin: Linux, no Wayland session, and no other plugin asked for."""
    env = os.environ if environ is None else environ
    if (platform or sys.platform) != "linux":
        return False
    asked = env.get("QT_QPA_PLATFORM", "")
    if asked:
        return asked.split(":")[0].split(";")[0] == "xcb"
    return not env.get("WAYLAND_DISPLAY")


def missing_libraries(loads: Callable[[str], bool] = _loads) -> list[str]:
    return [soname for soname in XCB_LIBRARIES if not loads(soname)]


def display_problem(environ: dict[str, str] | None = None, loads: Callable[[str], bool] = _loads) -> str | None:
    """One line saying which libraries the window lacks and how to install them, or None when it can open."""
    if not uses_xcb(environ):
        return None
    missing = missing_libraries(loads)
    if not missing:
        return None
    debian = " ".join(dict.fromkeys(XCB_LIBRARIES[m][0] for m in missing))
    fedora = " ".join(dict.fromkeys(XCB_LIBRARIES[m][1] for m in missing))
    return (
        f"the window cannot open: Qt's X11 plugin needs {', '.join(missing)}; install with "
        f"'sudo apt install {debian}' (Debian, Ubuntu) or 'sudo dnf install {fedora}' (Fedora). "
        "The command line (sketchapp complete, train, ...) needs no display."
    )
