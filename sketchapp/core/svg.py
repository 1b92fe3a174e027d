"""SVG pictures rasterised with resvg (a complete SVG renderer; no system libraries), safely.

An SVG is a program of sorts: a huge ``width`` or ``viewBox`` made the renderer allocate
40 GB and abort the process, 100k nested groups overflowed its stack, a huge filter
region never finished and a 1 MB ``.svgz`` unpacked to gigabytes. So before anything is
drawn the markup is unpacked with a cap and parsed by defusedxml (no entities, no
external references), its nesting depth and element count are checked and its size is
read from the markup, never by rendering it at its natural size. Then it is drawn in a
child process with a time and memory limit (about 45 ms more per drawing), so a renderer
crash or hang costs the drawing, never the app. Drawings from our own build-time data
packages are trusted and drawn in process (``isolated=False``). The child is Python running
``_RENDER``; in a frozen app (a PyInstaller bundle, where ``sys.executable`` is the app
itself) it is the app started with the hidden first argument ``SVG_CHILD``, which runs the
same code (``run_child``).
"""

from __future__ import annotations

import io
import math
import os
import re
import subprocess
import sys
import zlib

import numpy as np
import resvg_py
from defusedxml import ElementTree as SafeTree
from defusedxml.common import DefusedXmlException
from PIL import Image

from sketchapp.core.errors import ImageLoadError

#: Longest side an SVG sketch is drawn at when no size is asked for.
DEFAULT_SIDE = 1024
MAX_SIDE = 4096  # the most pixels a side an SVG is ever drawn at
MAX_BYTES = 16 << 20  # markup, after unpacking a .svgz
MAX_DEPTH = 200  # nested elements
MAX_ELEMENTS = 200_000
MAX_ASPECT = 32
RENDER_SECONDS = 6.0
RENDER_MEMORY = 2 << 30  # address space of the child process that draws
#: The first argument that makes a frozen app's executable the SVG child (``sketchapp.__main__`` dispatches it).
SVG_CHILD = "--svg-child"
DEFAULT_NATURAL = (100.0, 100.0)  # resvg's size for an SVG that gives none

_UNITS = {"": 1.0, "px": 1.0, "pt": 4 / 3, "pc": 16.0, "mm": 96 / 25.4, "cm": 96 / 2.54, "in": 96.0, "em": 16.0, "ex": 8.0}
_LENGTH = re.compile(r"^\s*([-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?)\s*([a-z%]*)\s*$")
_RENDER = (
    "import resource, sys\n"
    "resource.setrlimit(resource.RLIMIT_AS, (int(sys.argv[3]), int(sys.argv[3])))\n"
    # its own time limit, and death with the app: a killed app's child would otherwise draw on
    # for as long as a hostile drawing lasts, adopted by init
    "resource.setrlimit(resource.RLIMIT_CPU, (int(sys.argv[4]), int(sys.argv[4]) + 1))\n"
    "if sys.platform.startswith('linux'):\n"
    "    import ctypes, os, signal\n"
    "    ctypes.CDLL(None).prctl(1, signal.SIGKILL)\n"  # PR_SET_PDEATHSIG
    "    if os.getppid() != int(sys.argv[5]):\n"
    "        sys.exit(1)\n"  # the app died before the line above
    "import resvg_py\n"
    "markup = sys.stdin.buffer.read().decode('utf-8')\n"
    "sys.stdout.buffer.write(bytes(resvg_py.svg_to_bytes(svg_string=markup, width=int(sys.argv[1]), height=int(sys.argv[2]))))\n"
)


def looks_like_svg(data: bytes, name: str = "") -> bool:
    if name.lower().endswith((".svg", ".svgz")):
        return True
    if data[:2] == b"\x1f\x8b":
        return False
    head = data[:512].lstrip().lower()
    return head.startswith(b"<svg") or (head.startswith(b"<?xml") and b"<svg" in data[:2048].lower())


def render_svg(data: bytes | str, name: str = "drawing.svg", size: int | None = None, isolated: bool = True) -> np.ndarray:
    """SVG markup -> RGBA uint8, transparent where nothing is drawn.

    ``size`` is the longest side in pixels (the aspect ratio is kept); by default the
    drawing is scaled so its longest side is DEFAULT_SIDE. ImageLoadError with one line
    for markup that is not a drawing, too large, too deep, or that the renderer fails on.
    """
    text, (natural_w, natural_h) = inspect_svg(data, name)
    side = min(size or DEFAULT_SIDE, MAX_SIDE)
    scale = side / max(natural_w, natural_h)
    width, height = max(1, round(natural_w * scale)), max(1, round(natural_h * scale))
    png = _draw_isolated(text, width, height, name) if isolated else _draw(text, width, height, name)
    if not png:
        raise ImageLoadError(f"{name}: the SVG drawing has no size")
    try:
        picture = Image.open(io.BytesIO(png), formats=("PNG",))
        return np.array(picture.convert("RGBA"), dtype=np.uint8)
    except (OSError, SyntaxError, ValueError) as exc:
        raise ImageLoadError(f"{name}: the SVG renderer gave no picture ({exc})") from None


def inspect_svg(data: bytes | str, name: str) -> tuple[str, tuple[float, float]]:
    """(the markup as text, its natural width and height) after every check that comes before drawing."""
    raw = data.encode("utf-8") if isinstance(data, str) else data
    if raw[:2] == b"\x1f\x8b":
        raw = _gunzip(raw, name)
    if len(raw) > MAX_BYTES:
        raise ImageLoadError(f"{name}: the SVG markup is {len(raw) >> 20} MB, more than {MAX_BYTES >> 20} MB")
    depth = elements = 0
    root = None
    try:
        for event, element in SafeTree.iterparse(io.BytesIO(raw), events=("start", "end")):
            if event == "end":
                depth -= 1
                if element.tag.rsplit("}", 1)[-1] == "style" and _EXTERNAL_CSS.search(element.text or ""):
                    raise ImageLoadError(f"{name}: the SVG's <style> refers to something outside the drawing")
                continue
            root = element if root is None else root
            depth += 1
            elements += 1
            if depth > MAX_DEPTH:
                raise ImageLoadError(f"{name}: SVG elements nest more than {MAX_DEPTH} deep")
            if elements > MAX_ELEMENTS:
                raise ImageLoadError(f"{name}: the SVG drawing has more than {MAX_ELEMENTS} elements")
            _check_references(element, name)
    except DefusedXmlException as exc:
        raise ImageLoadError(f"{name}: the SVG uses XML entities or external references ({type(exc).__name__})") from None
    except SafeTree.ParseError as exc:
        raise ImageLoadError(f"{name}: not a valid SVG drawing ({exc})"[:300]) from None
    if root is None or root.tag.rsplit("}", 1)[-1] != "svg":
        raise ImageLoadError(f"{name}: not an SVG drawing (no <svg> element)")
    return raw.decode("utf-8", errors="replace"), _natural_size(root, name)


def _check_references(element: object, name: str) -> None:
    """Refuse an element that would make the renderer read something outside the SVG: an ``href`` to a
    file or address (``<image href="/home/.../photo.jpg">`` draws any local picture, by absolute path or
    from the working folder), a data URL other than a PNG, JPEG, GIF or WebP picture, or a CSS ``url()``
    or ``@import`` of anything but an element of the drawing itself (``<style>`` text is checked when its
    element ends). Links (``<a href>``) draw nothing and stay."""
    tag = element.tag.rsplit("}", 1)[-1]  # type: ignore[attr-defined]
    for key, value in element.attrib.items():  # type: ignore[attr-defined]
        attribute = key.rsplit("}", 1)[-1]
        if attribute == "href" and tag != "a" and not _inside(value):
            raise ImageLoadError(f"{name}: the SVG's <{tag}> refers to {value.strip()[:60]!r} outside the drawing; "
                                 "SketchApp draws only what is inside an SVG (embed the picture instead)")
        if attribute != "href" and _EXTERNAL_CSS.search(value):  # style="fill:url(...)", fill="url(...)"
            raise ImageLoadError(f"{name}: the SVG's <{tag}> {attribute} refers to something outside the drawing")


_EMBEDDED = re.compile(r"^\s*data:image/(png|jpeg|jpg|gif|webp)\s*[;,]", re.IGNORECASE)
_EXTERNAL_CSS = re.compile(r"url\(\s*(?!['\"]?\s*#)|@import", re.IGNORECASE)


def _inside(reference: str) -> bool:
    """An element of the drawing (``#id``) or a picture embedded in it (a data URL of a raster format)."""
    return reference.strip().startswith("#") or _EMBEDDED.match(reference) is not None


def _gunzip(raw: bytes, name: str) -> bytes:
    """A .svgz unpacked, stopping at MAX_BYTES (a gzip bomb is refused, not unpacked)."""
    unpacker = zlib.decompressobj(wbits=31)
    try:
        out = unpacker.decompress(raw, MAX_BYTES + 1)
    except zlib.error as exc:
        raise ImageLoadError(f"{name}: compressed SVG is corrupt ({exc})") from None
    if len(out) > MAX_BYTES:
        raise ImageLoadError(f"{name}: the compressed SVG unpacks to more than {MAX_BYTES >> 20} MB")
    return out


def _natural_size(root: object, name: str) -> tuple[float, float]:
    """The drawing's width and height in pixels, from its attributes (resvg's rules: width and
    height, else the viewBox's, else 100 x 100); refused when not finite, not positive or a ribbon."""
    get = root.get  # type: ignore[attr-defined]
    box = None
    if get("viewBox") is not None:
        numbers = re.split(r"[\s,]+", get("viewBox").strip())
        try:
            values = [float(v) for v in numbers]
        except ValueError:
            values = []
        if len(values) != 4 or not all(math.isfinite(v) for v in values) or values[2] <= 0 or values[3] <= 0:
            raise ImageLoadError(f"{name}: the SVG's viewBox {get('viewBox')[:60]!r} is not a drawing area")
        box = (values[2], values[3])
    sizes = []
    for index, attribute in enumerate(("width", "height")):
        length = _length(get(attribute), name, attribute)
        if length is None or length[1] == "%":
            base = box[index] if box else DEFAULT_NATURAL[index]
            sizes.append(base * (length[0] / 100 if length else 1.0))
        else:
            sizes.append(length[0] * _UNITS[length[1]])
    if box and get("width") is None and get("height") is not None:
        sizes[0] = sizes[1] * box[0] / box[1]
    if box and get("height") is None and get("width") is not None:
        sizes[1] = sizes[0] * box[1] / box[0]
    width, height = sizes
    if not (math.isfinite(width) and math.isfinite(height)) or width <= 0 or height <= 0:
        raise ImageLoadError(f"{name}: the SVG drawing has no size")
    if max(width, height) > MAX_ASPECT * min(width, height):
        raise ImageLoadError(f"{name}: the SVG drawing is {width:.0f}x{height:.0f}, narrower than 1:{MAX_ASPECT}")
    return width, height


def _length(value: str | None, name: str, attribute: str) -> tuple[float, str] | None:
    if value is None:
        return None
    match = _LENGTH.match(value)
    if not match or (match.group(2) not in _UNITS and match.group(2) != "%"):
        raise ImageLoadError(f"{name}: the SVG's {attribute} {value[:40]!r} is not a length")
    number = float(match.group(1))
    if not math.isfinite(number) or number <= 0:
        raise ImageLoadError(f"{name}: the SVG's {attribute} {value[:40]!r} is not a positive length")
    return number, match.group(2)


def _draw(text: str, width: int, height: int, name: str) -> bytes:
    try:
        return bytes(resvg_py.svg_to_bytes(svg_string=text, width=width, height=height))
    except (ValueError, RuntimeError, OSError) as exc:
        raise ImageLoadError(f"{name}: not a valid SVG drawing ({exc})"[:300]) from None


def _draw_isolated(text: str, width: int, height: int, name: str) -> bytes:
    """The drawing rendered by resvg in a child process with RENDER_SECONDS and RENDER_MEMORY."""
    sizes = [str(width), str(height), str(RENDER_MEMORY), str(math.ceil(RENDER_SECONDS)), str(os.getpid())]
    if getattr(sys, "frozen", False):  # sys.executable is the app, not Python: it runs _child_code() itself
        command = [sys.executable, SVG_CHILD, *sizes]
    else:
        flags = ["-P"] if sys.version_info >= (3, 11) else []
        command = [sys.executable, *flags, "-c", _child_code(), *sizes]
    try:
        done = subprocess.run(command, input=text.encode("utf-8"), capture_output=True, timeout=RENDER_SECONDS, check=False)
    except subprocess.TimeoutExpired:
        raise ImageLoadError(f"{name}: drawing the SVG took more than {RENDER_SECONDS:.0f} s; gave up") from None
    except OSError as exc:
        raise ImageLoadError(f"{name}: could not start the SVG renderer ({exc.strerror or exc})") from None
    if done.returncode != 0:
        last = done.stderr.decode("utf-8", "replace").strip().splitlines()[-1:] or [f"exit status {done.returncode}"]
        reason = "out of memory" if "MemoryError" in last[0] or done.returncode in (-6, -9) else last[0][:160]
        raise ImageLoadError(f"{name}: the SVG renderer failed on this drawing ({reason})")
    return done.stdout


def _child_code() -> str:
    """``_RENDER`` for this platform."""
    if sys.platform == "win32":  # no address-space limit there; the time limit still holds
        lines = [line for line in _RENDER.splitlines(keepends=True) if "resource" not in line]
        return "import sys\n" + "".join(lines)
    return _RENDER


def run_child(argv: list[str]) -> int:
    """The SVG child in a frozen app: ``argv`` is width, height, memory limit, CPU seconds and the app's
    process id; markup on stdin, PNG on stdout."""
    sys.argv = [SVG_CHILD, *argv]
    exec(compile(_child_code(), "<svg child>", "exec"), {"__name__": "__svg_child__"})  # noqa: S102 - our own code
    return 0
