#!/usr/bin/env python3
"""Render the app icon's PNG sizes from its SVG, into the hicolor theme under resources/icons.

The SVG (resources/icons/hicolor/scalable/apps/<app id>.svg) is the source; the PNGs are
committed beside it for launchers and window managers that do not read SVG, and for
Qt's window icon. Run this after editing the SVG:

    python3 packaging/linux/render-icons.py

It draws with PySide6's QSvgRenderer (in PySide6-Essentials), or with resvg (the
``resvg_py`` package SketchApp already depends on) where QtSvg is missing or
``--renderer resvg`` asks for it.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from sketchapp.identity import APP_ID, ICON_SIZES  # noqa: E402

ICONS = ROOT / "resources" / "icons" / "hicolor"


def render_qt(svg: Path, size: int) -> bytes:
    """PNG bytes of the SVG drawn at size x size by Qt's SVG renderer."""
    from PySide6.QtCore import QBuffer, QByteArray, QIODevice, Qt
    from PySide6.QtGui import QGuiApplication, QImage, QPainter
    from PySide6.QtSvg import QSvgRenderer

    if QGuiApplication.instance() is None:
        os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
        render_qt.app = QGuiApplication([])  # type: ignore[attr-defined]  # kept alive for later calls
    renderer = QSvgRenderer(str(svg))
    if not renderer.isValid():
        raise SystemExit(f"render-icons: Qt cannot read {svg}")
    image = QImage(size, size, QImage.Format.Format_ARGB32_Premultiplied)
    image.fill(Qt.GlobalColor.transparent)
    painter = QPainter(image)
    painter.setRenderHint(QPainter.RenderHint.Antialiasing)
    painter.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform)
    renderer.render(painter)
    painter.end()
    data = QByteArray()
    buffer = QBuffer(data)
    buffer.open(QIODevice.OpenModeFlag.WriteOnly)
    image.convertToFormat(QImage.Format.Format_ARGB32).save(buffer, "PNG")
    return bytes(data.data())


def render_resvg(svg: Path, size: int) -> bytes:
    """PNG bytes of the SVG drawn at size x size by resvg."""
    import resvg_py

    return bytes(resvg_py.svg_to_bytes(svg_path=str(svg), width=size, height=size))


def qt_svg_available() -> bool:
    try:
        from PySide6.QtSvg import QSvgRenderer  # noqa: F401
    except ImportError:
        return False
    return True


def write_atomic(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(handle, "wb") as out:
            out.write(data)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--renderer", choices=("auto", "qt", "resvg"), default="auto",
                        help="auto: Qt's QSvgRenderer where PySide6 has QtSvg, else resvg")
    args = parser.parse_args(argv)
    use_qt = args.renderer == "qt" or (args.renderer == "auto" and qt_svg_available())
    render = render_qt if use_qt else render_resvg
    svg = ICONS / "scalable" / "apps" / f"{APP_ID}.svg"
    for size in ICON_SIZES:
        target = ICONS / f"{size}x{size}" / "apps" / f"{APP_ID}.png"
        write_atomic(target, render(svg, size))
        print(f"wrote {target.relative_to(ROOT)} ({'Qt' if use_qt else 'resvg'})")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
