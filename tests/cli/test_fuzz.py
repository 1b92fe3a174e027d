"""A few hundred hostile files given to the command line as sketch, hints, model, preset and
training data: each must end with exit code 1 or 2, exactly one line on standard error, no
traceback, within a few seconds, and no new file anywhere.

The heavier sweep (thousands of mutations) is marked slow."""

from __future__ import annotations

import gzip
import io
import json
import os
import struct
import time
import zlib
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from sketchapp.cli import main
from tests.conftest import beside
from tests.core.test_hostile_files import encode, rewritten, safetensors

TIME_BOX = 8.0  # seconds per case (an SVG renderer that hangs is stopped at 6)


def png(width: int, height: int, mode: str = "RGB") -> bytes:
    buffer = io.BytesIO()
    Image.new(mode, (width, height), 255 if mode == "L" else (255, 255, 255)).save(buffer, "PNG")
    return buffer.getvalue()


def forged_png_size(width: int, height: int) -> bytes:
    """A tiny PNG whose header claims ``width`` x ``height`` (a decompression bomb's header)."""
    data = bytearray(png(8, 8))
    ihdr = struct.pack(">II", width, height) + bytes(data[24:29])
    data[16:29] = ihdr
    data[29:33] = struct.pack(">I", zlib.crc32(b"IHDR" + ihdr) & 0xFFFFFFFF)
    return bytes(data)


def sample_pictures() -> dict[str, bytes]:
    rng = np.random.default_rng(0)
    picture = Image.fromarray(rng.integers(0, 255, (48, 64, 3), dtype=np.uint8))
    out = {}
    for fmt, suffix in (("PNG", "png"), ("JPEG", "jpg"), ("WEBP", "webp"), ("BMP", "bmp"), ("TIFF", "tif"), ("GIF", "gif")):
        buffer = io.BytesIO()
        picture.save(buffer, fmt)
        out[suffix] = buffer.getvalue()
    return out


def _decoder_complaint_tiff() -> bytes:
    """A TIFF claiming 100 samples a pixel: Pillow logs a complaint before it refuses it."""
    buffer = io.BytesIO()
    Image.new("RGB", (4, 4)).save(buffer, "TIFF")
    data = bytearray(buffer.getvalue())
    tag = data.find(struct.pack("<HH", 277, 3))
    data[tag + 8 : tag + 10] = struct.pack("<H", 100)
    return bytes(data)


def hostile_images(seed: int = 0, mutations: int = 12) -> Iterator[tuple[str, bytes]]:
    """(file name, bytes): every bad image of issue 18's list, then random, truncated and mutated ones."""
    svg = '<svg xmlns="http://www.w3.org/2000/svg" {}>{}</svg>'
    yield "empty.png", b""
    yield "random.png", os.urandom(2048)
    yield "postscript.png", b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 10 10\n/l { l } def l\n"
    yield "eps-binary.png", b"\xc5\xd0\xd3\xc6" + bytes(28) + b"%!PS-Adobe-3.0\n"
    yield "strip-100000x1.png", png(100_000, 1, "L")
    yield "strip-60000x10.png", png(60_000, 10, "L")
    yield "strip-1x200000.png", forged_png_size(1, 200_000)
    yield "bomb-header.png", forged_png_size(100_000, 100_000)
    yield "deep.svg", svg.format("", "<g>" * 100_000 + "</g>" * 100_000).encode()
    yield "entities.svg", (b'<?xml version="1.0"?><!DOCTYPE svg [<!ENTITY a "aaaa"><!ENTITY b "&a;&a;&a;">]>'
                           b'<svg xmlns="http://www.w3.org/2000/svg">&b;</svg>')
    yield "bomb.svgz", gzip.compress(b'<svg xmlns="http://www.w3.org/2000/svg">' + b" " * (48 << 20) + b"</svg>")
    yield "ribbon.svg", svg.format('width="100000" height="1"', "").encode()
    yield "nan.svg", svg.format('width="NaN" height="NaN"', "").encode()
    yield "broken.svg", b"<svg xmlns='http://www.w3.org/2000/svg'><g></svg>"
    yield "not-svg.svg", b"<html></html>"
    # SVGs that would read files outside themselves (the second sweep's seventh problem)
    yield "image-href.svg", svg.format('width="9" height="9"', '<image href="/etc/hostname" width="9" height="9"/>').encode()
    yield "xlink-file.svg", svg.format('xmlns:xlink="http://www.w3.org/1999/xlink" width="9" height="9"',
                                       '<image xlink:href="file:///etc/passwd" width="9" height="9"/>').encode()
    yield "use-other.svg", svg.format('width="9" height="9"', '<use href="other.svg#a"/>').encode()
    yield "css-url.svg", svg.format('width="9" height="9"', '<rect style="fill:url(/tmp/x.svg#p)" width="5" height="5"/>').encode()
    yield "css-import.svg", svg.format('width="9" height="9"', '<style>@import "/tmp/a.css";</style>').encode()
    yield "svg-data-url.svg", svg.format('width="9" height="9"', '<image href="data:image/svg+xml;base64,PHN2Zy8+" width="9" height="9"/>').encode()
    yield "decoder-log.tif", _decoder_complaint_tiff()
    rng = np.random.default_rng(seed)
    for suffix, data in sample_pictures().items():
        for cut in (8, 33, len(data) // 2):
            yield f"truncated-{cut}.{suffix}", data[:cut]
        for m in range(mutations):
            mutated = bytearray(data)
            for index in rng.integers(0, len(data), int(rng.integers(1, 40))):
                mutated[int(index)] = int(rng.integers(0, 256))
            yield f"mutated-{m}.{suffix}", bytes(mutated)


def special_paths(folder: Path) -> Iterator[tuple[str, Path]]:
    if hasattr(os, "mkfifo"):
        os.mkfifo(folder / "fifo.png")
        yield "fifo", folder / "fifo.png"
    (folder / "zero.png").symlink_to("/dev/zero")
    yield "/dev/zero link", folder / "zero.png"
    yield "/dev/urandom", Path("/dev/urandom")
    (folder / "a-folder.png").mkdir()
    yield "folder", folder / "a-folder.png"
    yield "too long", folder / ("x" * 255) / ("y" * 4200)
    yield "missing", folder / "missing.png"


def hostile_models(checkpoint: Path) -> Iterator[tuple[str, bytes]]:
    """Model files that lie: weights, types, sizes, headers and architecture records."""
    def forged(change) -> bytes:  # noqa: ANN001
        entries, metadata = rewritten(checkpoint, change)
        return safetensors(entries, metadata)

    def weights(key: str, array: np.ndarray, how: str):  # noqa: ANN202
        if how == "nan" and array.dtype.kind == "f" and key.endswith("weight"):
            array = array.copy()
            array.flat[0] = np.inf
        if how == "variance" and key.endswith("running_var"):
            array = -np.abs(array) - 1
        dtype, shape, data = encode(array)
        if how == "i32" and dtype == "F32":
            dtype = "I32"
        if how == "size" and key.endswith("bias"):
            shape = [shape[0] * 2]
        return dtype, shape, data

    for how in ("nan", "variance", "i32", "size"):
        yield f"weights-{how}.safetensors", forged(lambda k, a, how=how: weights(k, a, how))
    entries, metadata = rewritten(checkpoint, lambda k, a: encode(a))
    record = json.loads(metadata["sketchapp"])
    for field, value in (("gf", 100_000), ("gf", 4096), ("gf", "wide"), ("gf", float("nan")), ("size", 10**9),
                         ("df", -1), ("dropout", float("inf")), ("hints", "yes"), ("gf", 1e300)):
        bad = json.loads(json.dumps(record))
        bad["architecture"][field] = value
        yield f"arch-{field}-{value}.safetensors", safetensors(entries, {"sketchapp": json.dumps(bad)})
    yield "engine-unknown.safetensors", safetensors(entries, {"sketchapp": json.dumps({**record, "engine": "diffusion"})})
    yield "record-deep.safetensors", safetensors(entries, {"sketchapp": "[" * 5000 + "]" * 5000})
    yield "record-not-json.safetensors", safetensors(entries, {"sketchapp": "{nope"})
    yield "header-deep.safetensors", struct.pack("<Q", 20_008) + (b"[" * 10_000 + b"]" * 10_000 + b"        ")[:20_008]
    yield "header-huge-size.safetensors", struct.pack("<Q", 2**62) + b"{}"
    yield "pickle.safetensors", b"\x80\x04\x95" + os.urandom(200)
    yield "truncated.safetensors", checkpoint.read_bytes()[: len(checkpoint.read_bytes()) // 2]


def hostile_presets(model_name: str) -> Iterator[tuple[str, str]]:
    base = {"name": "Fuzz", "engine": "pix2pix", "model": model_name, "sketch_style": "outline"}
    yield "deep", '{"name": ' + "[" * 20_000 + "]" * 20_000 + "}"
    yield "twice", '{"name": "a", "name": "b", "model": "m", "sketch_style": "s"}'
    yield "not-json", "{nope"
    yield "not-object", "[1, 2]"
    yield "infinity", json.dumps({**base, "settings": {"candidates": 1e400}}).replace("1e400", "Infinity")
    yield "nan-setting", json.dumps({**base, "settings": {"candidates": "NaN"}})
    yield "outside", json.dumps({**base, "model": "../../etc/passwd"})
    yield "absolute", json.dumps({**base, "model": "/dev/zero"})
    yield "unknown-engine", json.dumps({**base, "engine": "diffusion"})
    yield "unknown-field", json.dumps({**base, "colour": "red"})
    yield "missing-model", json.dumps({**base, "model": "nothing-here.safetensors"})
    yield "binary", "\x00\x01\x02"


def files_under(folder: Path) -> set[Path]:
    return {p for p in folder.rglob("*") if not p.is_fifo()} if folder.exists() else set()


def check(args: list[str], capsys, watch: list[Path], what: str) -> None:  # noqa: ANN001
    """The run fails with one printable line, in time, leaving nothing new; a mutated picture that
    still decodes may instead complete (then it wrote its results, and that is all)."""
    before = {folder: files_under(folder) for folder in watch}
    began = time.monotonic()
    try:
        code = main(args)
    except SystemExit as exc:  # a usage error: argparse's usage line, then its one error line
        code = exc.code
    elapsed = time.monotonic() - began
    err = capsys.readouterr().err
    lines = err.strip().splitlines()
    if code == 2 and lines and lines[0].startswith("usage:"):
        lines = [line for line in lines if "error:" in line]
    if code == 0 and "mutated" in what:
        assert "Traceback" not in err and elapsed < TIME_BOX, f"{what}: {err!r}"
        for path in files_under(watch[0]) - before[watch[0]]:
            path.unlink()
        return
    assert code in (1, 2), f"{what}: exit {code}, {err!r}"
    assert len(lines) == 1 and "Traceback" not in err, f"{what}: {err!r}"
    assert lines[0].startswith("sketchapp: error:") or "usage" in lines[0] or "error:" in lines[0], f"{what}: {err!r}"
    assert lines[0].isprintable(), f"{what}: {err!r}"
    assert elapsed < TIME_BOX, f"{what}: took {elapsed:.1f} s"
    for folder, files in before.items():
        assert files_under(folder) == files, f"{what}: left {sorted(files_under(folder) - files)}"


@pytest.fixture()
def arena(tmp_path, monkeypatch, tiny_pix2pix_checkpoint):
    data = tmp_path / "data"
    (data / "presets").mkdir(parents=True)
    monkeypatch.setenv("SKETCHAPP_DATA_DIR", str(data))
    out = tmp_path / "out"
    out.mkdir()
    hostile = tmp_path / "hostile"
    hostile.mkdir()
    sketch = tmp_path / "sketch.png"
    Image.fromarray(np.full((32, 32), 255, np.uint8)).save(sketch)
    return {"data": data, "out": out, "hostile": hostile, "sketch": sketch, "model": tiny_pix2pix_checkpoint}


def test_hostile_sketches_and_hints_get_one_line_each(arena, capsys):
    a = arena
    cases = [(name, a["hostile"] / f"{i:03d}-{name}") for i, (name, _) in enumerate(hostile_images())]
    for (name, data), (_, path) in zip(hostile_images(), cases):
        path.write_bytes(data)
    cases += list(special_paths(a["hostile"]))
    watch = [a["out"], a["data"]]
    count = 0
    for what, path in cases:
        base = ["complete", "-o", str(a["out"] / "r.png"), "--model", str(a["model"]), "-q"]
        check([*base[:1], str(path), *base[1:]], capsys, watch, f"sketch {what}")
        check([*base[:1], str(a["sketch"]), *base[1:], "--hints", str(path)], capsys, watch, f"hints {what}")
        count += 2
    assert count >= 200


def test_hostile_model_files_and_presets_get_one_line_each(arena, capsys):
    a = arena
    watch = [a["out"], a["data"]]
    count = 0
    for name, data in hostile_models(a["model"]):
        path = a["hostile"] / name
        path.write_bytes(data)
        check(["complete", str(a["sketch"]), "-o", str(a["out"] / "r.png"), "--model", str(path), "-q"], capsys, watch, name)
        check(["train", str(a["out"] / "run"), "--engine", "pix2pix", "--data", str(a["hostile"]), "--init-from", str(path),
               "-q"], capsys, watch, f"init-from {name}")
        count += 2
    for what, path in _specials(a):
        check(["complete", str(a["sketch"]), "-o", str(a["out"] / "r.png"), "--model", str(path), "-q"], capsys, watch, f"model {what}")
        count += 1
    presets = a["data"] / "presets"
    model_name = beside(presets, a["model"])
    for what, text in hostile_presets(model_name):
        file = presets / f"fuzz-{what}.json"
        file.write_text(text, encoding="utf-8", errors="surrogateescape")
        check(["complete", str(a["sketch"]), "-o", str(a["out"] / "r.png"), "--preset", f"fuzz-{what}", "-q"], capsys, watch,
              f"preset {what}")
        file.unlink()
        count += 1
    assert count >= 50


def _specials(arena: dict) -> Iterator[tuple[str, Path]]:
    folder = arena["hostile"] / "specials"
    folder.mkdir()
    yield from special_paths(folder)


def test_a_bad_preset_file_never_affects_the_others(arena, capsys):
    a = arena
    presets = a["data"] / "presets"
    model_name = beside(presets, a["model"])
    (presets / "good.json").write_text(json.dumps({"name": "Good", "engine": "pix2pix", "model": model_name, "sketch_style": "outline"}))
    for what, text in hostile_presets(model_name):
        (presets / f"bad-{what}.json").write_text(text, encoding="utf-8", errors="surrogateescape")
    (presets / "emoji-pix2pix.json").write_text(  # named like a bundled preset: skipped, never shadows it
        json.dumps({"name": "Shadow", "engine": "pix2pix", "model": model_name, "sketch_style": "outline"}))
    assert main(["presets"]) == 0
    captured = capsys.readouterr()
    assert "good" in captured.out and "Shadow" not in captured.out
    assert "Traceback" not in captured.err and all(line.isprintable() for line in captured.err.splitlines())
    assert main(["complete", str(a["sketch"]), "-o", str(a["out"] / "g.png"), "--preset", "good", "-q"]) == 0
    assert main(["complete", str(a["sketch"]), "-o", str(a["out"] / "d.png"), "-q"]) == 0  # the bundled default still works


def test_bad_training_folders_and_output_targets_get_one_line_each(arena, capsys):
    a = arena
    watch = [a["out"], a["data"]]
    empty = a["hostile"] / "empty"
    empty.mkdir()
    junk = a["hostile"] / "junk"
    junk.mkdir()
    for i, (name, data) in enumerate(hostile_images(seed=1, mutations=0)):  # none of them a picture
        (junk / f"{i:03d}-{name}").write_bytes(data)
    deep = a["hostile"] / "deep"
    path = deep
    for _ in range(60):
        path = path / ("d" * 60)
    try:
        path.mkdir(parents=True)
    except OSError:
        pass
    manifest = a["hostile"] / "manifest"
    manifest.mkdir()
    (manifest / "dataset.json").write_text("[" * 10_000 + "]" * 10_000)
    for what, folder in (("empty", empty), ("all junk", junk), ("nested too deep", deep), ("manifest nested deep", manifest),
                         ("missing", a["hostile"] / "nothing")):
        check(["train", str(a["out"] / "run"), "--engine", "pix2pix", "--data", str(folder), "--size", "32", "-q"],
              capsys, watch, f"train {what}")
    for what, target in (("a folder", a["out"]), ("a file where its folder would be", a["sketch"] / "r.png"),
                         ("a long name", a["out"] / ("n" * 300 + ".png")), ("no image extension", a["out"] / "r.txt")):
        check(["complete", str(a["sketch"]), "-o", str(target), "--model", str(a["model"]), "-q"], capsys, watch, f"output {what}")
    (a["out"] / "r-1.png").mkdir()  # a candidate's name taken by a folder: nothing written at all
    check(["complete", str(a["sketch"]), "-o", str(a["out"] / "r.png"), "--model", str(a["model"]), "--candidates", "2", "-q"],
          capsys, watch, "output r-1.png is a folder")


@pytest.mark.slow
def test_the_heavy_sweep(arena, capsys):
    """Thousands of mutated pictures as sketches (run with ``pytest -m slow``)."""
    a = arena
    for i, (name, data) in enumerate(hostile_images(seed=7, mutations=400)):
        path = a["hostile"] / f"{i:05d}-{name}"
        path.write_bytes(data)
        before = files_under(a["out"])
        code = main(["complete", str(path), "-o", str(a["out"] / "r.png"), "--model", str(a["model"]), "-q"])
        err = capsys.readouterr().err
        assert "Traceback" not in err and len(err.strip().splitlines()) <= 1, name
        if code != 0:
            assert files_under(a["out"]) == before, name
        path.unlink()
