"""Files a careless or hostile user hands us: each is refused with one line, at once, and nothing else breaks."""

from __future__ import annotations

import json
import os
import struct
import time
from pathlib import Path

import numpy as np
import pytest

from sketchapp.core.checkpoint import read_checkpoint
from sketchapp.core.engines import load_engine_model
from sketchapp.core.errors import CheckpointError, ImageLoadError, PresetError
from sketchapp.core.fileio import json_depth, read_json
from sketchapp.core.images import load_image, save_image
from sketchapp.core.presets import list_presets
from tests.conftest import beside


def one_line(exc: pytest.ExceptionInfo[BaseException]) -> str:
    message = str(exc.value)
    assert "\n" not in message and "Traceback" not in message and len(message) < 400
    return message


def specials(tmp_path: Path) -> dict[str, Path]:
    fifo = tmp_path / "pipe.png"
    os.mkfifo(fifo)
    zero = tmp_path / "zero.png"
    zero.symlink_to("/dev/zero")
    return {"a pipe": fifo, "/dev/zero": zero, "/dev/urandom": Path("/dev/urandom"), "a folder": tmp_path,
            "a path too long": tmp_path / ("x" * 300) / ("y" * 5000), "a missing file": tmp_path / "gone.png"}


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs FIFOs")
def test_pipes_devices_folders_and_long_paths_are_refused_at_once(tmp_path):
    for what, path in specials(tmp_path).items():
        began = time.monotonic()
        with pytest.raises(ImageLoadError) as exc:
            load_image(path)
        assert time.monotonic() - began < 2, what
        one_line(exc)
        with pytest.raises(CheckpointError) as exc:
            read_checkpoint(path)
        one_line(exc)


def test_json_nested_thousands_deep_or_with_a_key_twice_is_refused(tmp_path):
    assert json_depth(b'{"a": "[[[{{{", "b": [1, {"c": [2]}]}') == 4
    deep = tmp_path / "deep.json"
    deep.write_text("[" * 50_000 + "]" * 50_000)
    with pytest.raises(PresetError, match="nested more than"):
        read_json(deep, PresetError, "preset")
    twice = tmp_path / "twice.json"
    twice.write_text('{"name": "a", "name": "b"}')
    with pytest.raises(PresetError, match="given twice") as exc:
        read_json(twice, PresetError, "preset")
    one_line(exc)


def test_a_broken_user_preset_is_skipped_and_the_others_still_load(tmp_path, tiny_pix2pix_checkpoint):
    folder = tmp_path / "presets"
    folder.mkdir()
    good = {"name": "Good", "engine": "pix2pix", "model": beside(folder, tiny_pix2pix_checkpoint), "sketch_style": "outline"}
    (folder / "good.json").write_text(json.dumps(good))
    (folder / "deep.json").write_text('{"name": ' + "[" * 20_000 + "]" * 20_000 + "}")
    (folder / "huge.json").write_bytes(b'{"name": "' + b"x" * (2 << 20) + b'"}')
    presets, problems = list_presets([(folder, "user")])
    assert [p.id for p in presets] == ["good"]
    assert len(problems) == 2 and all("\n" not in p for p in problems)


def safetensors(entries: dict[str, tuple[str, list[int], bytes]], metadata: dict[str, str], raw_header: str | None = None) -> bytes:
    """A safetensors file written by hand, so that it can lie."""
    header: dict[str, object] = {"__metadata__": metadata}
    body = b""
    for key, (dtype, shape, data) in entries.items():
        header[key] = {"dtype": dtype, "shape": shape, "data_offsets": [len(body), len(body) + len(data)]}
        body += data
    text = raw_header if raw_header is not None else json.dumps(header)
    encoded = text.encode("utf-8")
    encoded += b" " * (-len(encoded) % 8)
    return struct.pack("<Q", len(encoded)) + encoded + body


def rewritten(checkpoint: Path, change) -> tuple[dict[str, tuple[str, list[int], bytes]], dict[str, str]]:  # noqa: ANN001
    from safetensors import safe_open

    entries = {}
    with safe_open(str(checkpoint), "np") as handle:
        metadata = handle.metadata()
        for key in handle.keys():
            array = handle.get_tensor(key)
            entries[key] = change(key, array)
    return entries, metadata


def encode(array: np.ndarray) -> tuple[str, list[int], bytes]:
    dtype = {np.dtype(np.float16): "F16", np.dtype(np.float32): "F32", np.dtype(np.int64): "I64"}[array.dtype]
    return dtype, list(array.shape), array.tobytes()


@pytest.mark.parametrize("forgery, expected", [
    ("nan", "NaN or infinite"),
    ("negative variance", "negative variance"),
    ("floats labelled I32", "where floating-point"),
    ("size mismatch", "holds"),
    ("unknown dtype", "never writes"),
])
def test_forged_weights_are_refused_naming_the_tensor(tmp_path, tiny_pix2pix_checkpoint, forgery, expected):
    target = {"nan": "G.", "negative variance": "running_var"}

    def change(key: str, array: np.ndarray):  # noqa: ANN202
        if forgery == "nan" and key.startswith("G.") and key.endswith("weight") and array.dtype.kind == "f":
            array = array.copy()
            array.flat[0] = np.nan
        if forgery == "negative variance" and key.endswith("running_var"):
            array = -np.abs(array) - 1
        dtype, shape, data = encode(array)
        if forgery == "floats labelled I32" and key.endswith("weight") and dtype == "F32":
            dtype = "I32"
        if forgery == "size mismatch" and key.endswith("bias"):
            shape = [shape[0] + 1]
        if forgery == "unknown dtype" and key.endswith("bias"):
            dtype = "C64"
        return dtype, shape, data

    entries, metadata = rewritten(tiny_pix2pix_checkpoint, change)
    path = tmp_path / "forged.safetensors"
    path.write_bytes(safetensors(entries, metadata))
    with pytest.raises(CheckpointError, match=expected) as exc:
        load_engine_model(path, "cpu")
    message = one_line(exc)
    if forgery in target:
        assert target[forgery] in message


def test_duplicate_overlapping_and_deeply_nested_headers_are_refused(tmp_path, tiny_pix2pix_checkpoint):
    entries, metadata = rewritten(tiny_pix2pix_checkpoint, lambda key, array: encode(array))
    first, second = list(entries)[:2]
    text = json.dumps({"__metadata__": metadata, **{
        k: {"dtype": d, "shape": s, "data_offsets": [0, len(b)]} for k, (d, s, b) in [(first, entries[first])]}})
    twice = text[:-1] + ", " + json.dumps(first) + ": " + json.dumps(
        {"dtype": entries[first][0], "shape": entries[first][1], "data_offsets": [0, len(entries[first][2])]}) + "}"
    cases = {
        "given twice": twice,
        "nested more than": json.dumps({"__metadata__": metadata, "x": "y"})[:-1] + ', "deep": ' + "[" * 5000 + "]" * 5000 + "}",
    }
    for expected, header in cases.items():
        path = tmp_path / "forged.safetensors"
        path.write_bytes(safetensors({first: entries[first]}, metadata, raw_header=header) + entries[first][2])
        with pytest.raises(CheckpointError, match=expected) as exc:
            load_engine_model(path, "cpu")
        one_line(exc)
    # two tensors of the same size that claim the same bytes
    by_size: dict[int, str] = {}
    for key, (_, _, data) in entries.items():
        if len(data) in by_size:
            pair = (by_size[len(data)], key)
            break
        by_size[len(data)] = key
    header: dict[str, object] = {"__metadata__": metadata}
    body = b""
    for key, (dtype, shape, data) in entries.items():
        if key == pair[1]:
            continue
        header[key] = {"dtype": dtype, "shape": shape, "data_offsets": [len(body), len(body) + len(data)]}
        body += data
    header[pair[1]] = dict(header[pair[0]], dtype=entries[pair[1]][0], shape=entries[pair[1]][1])  # type: ignore[arg-type]
    encoded = json.dumps(header).encode()
    encoded += b" " * (-len(encoded) % 8)
    path = tmp_path / "overlap.safetensors"
    path.write_bytes(struct.pack("<Q", len(encoded)) + encoded + body)
    with pytest.raises(CheckpointError, match="share bytes") as exc:
        load_engine_model(path, "cpu")
    one_line(exc)


def test_presets_cannot_shadow_bundled_ones_reach_outside_or_print_control_characters(tmp_path, tiny_pix2pix_checkpoint):
    bundled, user = tmp_path / "bundled", tmp_path / "user"
    record = {"engine": "pix2pix", "sketch_style": "outline"}
    (bundled / "style.json").parent.mkdir()
    (bundled / "style.json").write_text(json.dumps({**record, "name": "Style", "model": beside(bundled, tiny_pix2pix_checkpoint)}))
    user.mkdir()
    (user / "style.json").write_text(json.dumps({**record, "name": "Mine", "model": beside(user, tiny_pix2pix_checkpoint)}))
    (user / "other.json").write_text(json.dumps({**record, "name": "STYLE", "model": beside(user, tiny_pix2pix_checkpoint)}))
    (user / "abs.json").write_text(json.dumps({**record, "name": "Abs", "model": str(tiny_pix2pix_checkpoint)}))
    (user / "up.json").write_text(json.dumps({**record, "name": "Up", "model": "../bundled/" + tiny_pix2pix_checkpoint.name}))
    (user / "evil.json").write_text(json.dumps({**record, "name": "Evil\u202eexe.\x1b[31m", "model": beside(user, tiny_pix2pix_checkpoint)}))
    presets, problems = list_presets([(bundled, "bundled"), (user, "user")])
    assert {p.id: p.source for p in presets} == {"style": "bundled", "evil": "user"}
    assert sum("has that name already" in p for p in problems) == 2
    assert sum("outside the preset's folder" in p for p in problems) == 2
    evil = next(p for p in presets if p.id == "evil")
    assert evil.name.isprintable() and "\\u202e" in evil.name and "\\x1b" in evil.name


SVG = '<svg xmlns="http://www.w3.org/2000/svg" {}>{}</svg>'


@pytest.mark.parametrize("what, markup, expected", [
    ("a huge width", SVG.format('width="10000000" height="10000000"', '<circle cx="5" cy="5" r="3"/>'), None),
    ("a huge viewBox", SVG.format('viewBox="0 0 1e30 1e30"', '<circle cx="5" cy="5" r="3"/>'), None),
    ("groups 100k deep", SVG.format("", "<g>" * 100_000 + "</g>" * 100_000), "nest more than"),
    ("entities", '<?xml version="1.0"?><!DOCTYPE svg [<!ENTITY a "aaaa"><!ENTITY b "&a;&a;">]>'
     '<svg xmlns="http://www.w3.org/2000/svg">&b;</svg>', "entities"),
    ("a ribbon", SVG.format('width="100000" height="1"', ""), "narrower than"),
    ("a size that is not a number", SVG.format('width="NaN" height="10"', ""), "not a length"),
    ("no svg element", "<html><body/></html>", "no <svg>"),
])
def test_hostile_svg_is_refused_or_drawn_at_our_size_within_seconds(tmp_path, what, markup, expected):
    path = tmp_path / "drawing.svg"
    path.write_text(markup)
    began = time.monotonic()
    if expected is None:  # drawn at the app's size, never at the size the file claims
        assert max(load_image(path).shape[:2]) <= 1024, what
    else:
        with pytest.raises(ImageLoadError, match=expected) as exc:
            load_image(path)
        one_line(exc)
    assert time.monotonic() - began < 5, what


def test_an_svgz_bomb_is_refused_before_it_is_unpacked(tmp_path):
    import gzip

    path = tmp_path / "bomb.svgz"
    path.write_bytes(gzip.compress(b'<svg xmlns="http://www.w3.org/2000/svg">' + b" " * (100 << 20) + b"</svg>"))
    began = time.monotonic()
    with pytest.raises(ImageLoadError, match="unpacks to more than"):
        load_image(path)
    assert time.monotonic() - began < 2


def test_a_renderer_that_hangs_costs_the_drawing_not_the_app(tmp_path, monkeypatch):
    from sketchapp.core import svg

    monkeypatch.setattr(svg, "RENDER_SECONDS", 0.3)
    monkeypatch.setattr(svg, "_RENDER", "import time\ntime.sleep(30)\n")  # a renderer stuck in a filter
    path = tmp_path / "slow.svg"
    path.write_text(SVG.format('viewBox="0 0 10 10"', '<circle cx="5" cy="5" r="3"/>'))
    with pytest.raises(ImageLoadError, match="took more than") as exc:
        load_image(path)
    one_line(exc)
    monkeypatch.setattr(svg, "RENDER_SECONDS", 5.0)
    monkeypatch.setattr(svg, "_RENDER", "import os\nos.abort()\n")  # a renderer that crashes
    with pytest.raises(ImageLoadError, match="renderer failed") as exc:
        load_image(path)
    one_line(exc)


def test_a_set_of_results_is_written_all_or_nothing(tmp_path, monkeypatch):
    from sketchapp.core import fileio
    from sketchapp.core.errors import ImageSaveError
    from sketchapp.core.images import save_images

    picture = np.full((8, 8, 3), 200, np.uint8)
    items = [(tmp_path / f"r-{i}.png", picture, {"candidate": str(i)}) for i in range(1, 5)]
    (tmp_path / "r-3.png").mkdir()  # a folder where a result should go
    with pytest.raises(ImageSaveError, match="is a folder") as exc:
        save_images(items)
    one_line(exc)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["r-3.png"]
    (tmp_path / "r-3.png").rmdir()
    (tmp_path / "r-1.png").write_bytes(b"the user's own file")
    calls = []
    real = fileio.os.replace

    def failing(src, dst):  # noqa: ANN001 - the disk fills up at the third rename
        calls.append(dst)
        if len(calls) == 3:
            raise OSError(28, "No space left on device")
        real(src, dst)

    monkeypatch.setattr(fileio.os, "replace", failing)
    with pytest.raises(ImageSaveError, match="No space left") as exc:
        save_images(items)
    one_line(exc)
    # nothing new is left: r-2 (placed before the failure) is gone again, no temp files stay
    assert sorted(p.name for p in tmp_path.iterdir()) == ["r-1.png"]
    monkeypatch.setattr(fileio.os, "replace", real)
    save_images(items)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["r-1.png", "r-2.png", "r-3.png", "r-4.png"]


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs FIFOs")
def test_a_preset_whose_thumbnail_is_a_pipe_keeps_working_without_it(tmp_path, tiny_pix2pix_checkpoint):
    folder = tmp_path / "presets"
    folder.mkdir()
    os.mkfifo(folder / "pipe.png")
    (folder / "p.json").write_text(json.dumps({"name": "P", "engine": "pix2pix", "sketch_style": "outline",
                                               "model": beside(folder, tiny_pix2pix_checkpoint), "thumbnail": "pipe.png"}))
    presets, problems = list_presets([(folder, "user")])
    assert [p.thumbnail for p in presets] == [None] and problems == []


def test_json_with_an_integer_of_thousands_of_digits_is_one_line_error():
    from sketchapp.core.errors import PresetError
    from sketchapp.core.fileio import parse_json

    with pytest.raises(PresetError, match="not valid JSON"):
        parse_json(b'{"name": "x", "n": ' + b"9" * 5000 + b"}", PresetError, "evil.json")


@pytest.mark.parametrize("what, body", [
    ("an image by absolute path", '<image href="{secret}" width="20" height="20"/>'),
    ("an image by file URL (xlink)", '<image xmlns:xlink="http://www.w3.org/1999/xlink" xlink:href="file://{secret}" width="20" height="20"/>'),
    ("an image relative to the working folder", '<image href="secret.png" width="20" height="20"/>'),
    ("another SVG's element", '<use href="other.svg#shape"/>'),
    ("an SVG inside a data URL", '<image href="data:image/svg+xml;base64,PHN2Zy8+" width="20" height="20"/>'),
    ("a CSS url() in a style", '<rect style="fill:url({secret}#p)" width="5" height="5"/>'),
    ("a paint url() attribute", '<rect fill="url(other.svg#p)" width="5" height="5"/>'),
    ("a CSS import", '<style>@import "{secret}";</style>'),
])
def test_an_svg_never_reads_a_file_outside_itself(tmp_path, monkeypatch, what, body):
    secret = tmp_path / "secret.png"
    save_image(secret, np.zeros((20, 20, 3), np.uint8))
    monkeypatch.chdir(tmp_path)
    path = tmp_path / "drawing.svg"
    path.write_text(SVG.format('width="20" height="20"', body.format(secret=secret)))
    with pytest.raises(ImageLoadError, match="outside the drawing") as exc:
        load_image(path)
    one_line(exc)


def test_embedded_pictures_and_the_drawings_own_references_are_drawn(tmp_path):
    import base64

    from sketchapp.core.images import encode_image

    png = base64.b64encode(encode_image("red.png", np.full((20, 20, 3), (255, 0, 0), np.uint8))).decode()
    path = tmp_path / "drawing.svg"
    path.write_text(SVG.format(
        'width="20" height="20"',
        f'<defs><linearGradient id="g"><stop offset="0" stop-color="blue"/></linearGradient></defs>'
        f'<image href="data:image/png;base64,{png}" width="20" height="10"/><rect fill="url(#g)" y="10" width="20" height="10"/>'
        '<a href="https://example.org"><use href="#g"/></a>',
    ))
    pixels = load_image(path, mode="RGB", max_side=20)
    assert tuple(pixels[5, 5]) == (255, 0, 0) and pixels[15, 5, 2] > 200


@pytest.mark.parametrize("name, content", [
    ("fan-out.svg", SVG.format('width="10" height="10"', '<g id="a"><rect width="1" height="1"/></g>'
                               + "".join(f'<g id="a{i}"><use href="#a{i - 1 if i else ""}"/><use href="#a{i - 1 if i else ""}"/></g>' for i in range(40)))),
    ("bomb.png", b"\x1f\x8b" + b"\x00" * 100),
    ("huge.png", None),
])
def test_a_preset_thumbnail_is_read_through_the_safe_door_or_not_at_all(tmp_path, tiny_pix2pix_checkpoint, name, content):
    from sketchapp.core.presets import thumbnail_pixels

    folder = tmp_path / "presets"
    folder.mkdir()
    if content is None:  # a PNG claiming 100k x 100k pixels: refused from its header
        save_image(folder / name, np.zeros((4, 4, 3), np.uint8))
        data = bytearray((folder / name).read_bytes())
        data[16:24] = struct.pack(">II", 100_000, 100_000)
        (folder / name).write_bytes(bytes(data))
    else:
        (folder / name).write_bytes(content.encode() if isinstance(content, str) else content)
    (folder / "p.json").write_text(json.dumps({"name": "P", "engine": "pix2pix", "sketch_style": "outline",
                                               "model": beside(folder, tiny_pix2pix_checkpoint), "thumbnail": name}))
    presets, problems = list_presets([(folder, "user")])
    assert problems == [] and thumbnail_pixels(presets[0].thumbnail) is None  # an SVG is never drawn for a thumbnail
    save_image(folder / "fine.png", np.full((300, 200, 3), 90, np.uint8))
    pixels = thumbnail_pixels(folder / "fine.png")
    assert pixels is not None and max(pixels.shape[:2]) <= 128


def test_the_svg_render_child_dies_with_the_app_and_limits_its_own_cpu_time(tmp_path):
    import signal
    import subprocess
    import sys

    from sketchapp.core import svg

    # the app: renders an SVG whose child records its pid, then spins (a renderer stuck in a filter)
    app = tmp_path / "app.py"
    app.write_text(
        "import sys\n"
        "from sketchapp.core import svg\n"
        "stuck = 'import os\\nopen(' + repr(sys.argv[1]) + ', \"w\").write(str(os.getpid()))\\nwhile True: pass\\n'\n"
        "svg._RENDER = svg._RENDER.replace('import resvg_py\\n', stuck)\n"
        "svg.RENDER_SECONDS = 60\n"
        "svg.render_svg('<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"9\" height=\"9\"/>')\n"
    )
    parent = subprocess.Popen([sys.executable, str(app), str(tmp_path / "pid")])
    pid_file = tmp_path / "pid"
    for _ in range(600):
        if pid_file.exists() and pid_file.read_text():
            break
        time.sleep(0.05)
    child = int(pid_file.read_text())
    parent.send_signal(signal.SIGKILL)
    parent.wait()
    for _ in range(100):
        try:
            os.kill(child, 0)
        except ProcessLookupError:
            break
        time.sleep(0.05)
    else:
        os.kill(child, signal.SIGKILL)
        pytest.fail("the render child outlived the app")
    assert f"RLIMIT_CPU, (int(sys.argv[4])" in svg._RENDER  # and would stop itself after RENDER_SECONDS of CPU
