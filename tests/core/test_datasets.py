"""Data sets: every kind of file a user may have, pairing rules, splits and the builders."""

from __future__ import annotations

import io
import json
import tarfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from sketchapp.core.data import builders
from sketchapp.core.data.datasets import (
    DataError,
    load_dataset,
    load_folder,
    load_paired,
    load_side_by_side,
    load_spec,
    load_unpaired,
    split_names,
    write_dataset,
)
from sketchapp.core.images import load_image

SIZE = 16


def disc(colour=(200, 40, 40), size=48, centre=None) -> np.ndarray:
    yy, xx = np.mgrid[:size, :size]
    cy, cx = centre or (size // 2, size // 2)
    picture = np.full((size, size, 3), 255, np.uint8)
    picture[(yy - cy) ** 2 + (xx - cx) ** 2 < (size // 3) ** 2] = colour
    return picture


def every_kind_of_file(folder: Path) -> None:
    """One of each picture format a user may have, plus files that cannot be read."""
    folder.mkdir(parents=True, exist_ok=True)
    Image.fromarray(disc()).save(folder / "rgb.png")
    rgba = np.zeros((40, 60, 4), np.uint8)
    rgba[10:30, 10:50] = (0, 0, 255, 255)
    Image.fromarray(rgba, "RGBA").save(folder / "transparent.png")
    Image.fromarray(disc()).convert("P", palette=Image.Palette.ADAPTIVE).save(folder / "palette.gif")
    Image.fromarray(disc()[:, :, 0]).save(folder / "grey.jpg")
    Image.fromarray((disc()[:, :, 0].astype(np.uint16) * 257)).save(folder / "deep.png")
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees on display
    Image.fromarray(np.full((20, 60, 3), 90, np.uint8)).save(folder / "rotated.jpg", exif=exif)
    Image.fromarray(disc(size=900)).save(folder / "large.webp")
    (folder / "line.svg").write_text(
        '<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 10 10">'
        '<path d="M1 1 L9 9" stroke="black" stroke-width="1"/></svg>'
    )
    sub = folder / "more"
    sub.mkdir()
    Image.fromarray(disc((20, 160, 20))).save(sub / "green.bmp")
    (folder / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"\0" * 40)
    (folder / "notes.jpg").write_text("not a picture")
    (folder / "empty.webp").write_bytes(b"")
    (folder / "readme.txt").write_text("ignored: not an image extension")
    (folder / ".hidden.png").write_bytes(b"ignored: hidden")


def test_folder_reads_every_kind_and_lists_what_it_skips(tmp_path):
    every_kind_of_file(tmp_path / "pics")
    pairs = load_folder(tmp_path / "pics", SIZE, "xdog")
    assert sorted(pairs.names) == sorted(
        ["rgb", "transparent", "palette", "grey", "deep", "rotated", "large", "line", "more/green"]
    )
    assert pairs.images.shape == (9, SIZE, SIZE, 3) and pairs.images.dtype == np.uint8
    assert pairs.sketches.shape == (9, SIZE, SIZE)
    skipped = {Path(s.path).name: s.reason for s in pairs.skipped}
    assert set(skipped) == {"broken.png", "notes.jpg", "empty.webp"}
    assert all(reason for reason in skipped.values())

    transparent = pairs.images[pairs.names.index("transparent")]
    assert (transparent[0, 0] == 255).all()  # transparency is white paper, not black
    assert transparent[SIZE // 2, SIZE // 2, 2] > 200 and transparent[SIZE // 2, SIZE // 2, 0] < 60
    rotated = pairs.images[pairs.names.index("rotated")]
    assert (rotated[:, SIZE // 2] < 120).all() and (rotated[SIZE // 2, 0] == 255).all()  # now tall
    rgb = pairs.sketches[pairs.names.index("rgb")]
    assert rgb.min() < 128 and rgb[0, 0] == 255  # lines drawn, paper stays white
    assert pairs.info["sketch_style"] == "xdog" and pairs.info["count"] == 9


def test_empty_and_unreadable_folders_are_clear_errors(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="no image files"):
        load_folder(tmp_path / "empty", SIZE)
    with pytest.raises(DataError, match="does not exist"):
        load_folder(tmp_path / "missing", SIZE)
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "a.png").write_bytes(b"junk")
    with pytest.raises(DataError, match="no usable image pairs.*a.png"):
        load_folder(bad, SIZE)
    with pytest.raises(DataError, match="unknown sketch style"):
        load_folder(bad, SIZE, style="crayon")


def test_paired_folders_match_by_name_and_list_the_unmatched(tmp_path):
    for name in ("a", "b", "only_sketch", "deep/c"):
        (tmp_path / "s" / name).parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(np.full((30, 30), 0, np.uint8)).save(tmp_path / "s" / f"{name}.png")
    for name in ("a", "b", "only_image", "deep/c"):
        (tmp_path / "i" / name).parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(disc()).save(tmp_path / "i" / f"{name}.jpg")
    pairs = load_paired(tmp_path / "s", tmp_path / "i", SIZE)
    assert pairs.names == ["a", "b", "deep/c"]
    reasons = {Path(s.path).name: s.reason for s in pairs.skipped}
    assert reasons == {"only_sketch.png": "no image with the same name", "only_image.jpg": "no sketch with the same name"}
    assert (pairs.sketches == 0).all()


def test_side_by_side_halves_follow_the_setting(tmp_path):
    picture = np.concatenate([np.zeros((20, 20, 3), np.uint8), np.full((20, 20, 3), (0, 200, 0), np.uint8)], axis=1)
    (tmp_path / "p").mkdir()
    Image.fromarray(picture).save(tmp_path / "p" / "pair.png")
    Image.fromarray(np.zeros((20, 21, 3), np.uint8)).save(tmp_path / "p" / "odd.png")
    left = load_side_by_side(tmp_path / "p", SIZE, "left")
    assert (left.sketches == 0).all() and left.images[0, 5, 5, 1] == 200
    assert [Path(s.path).name for s in left.skipped] == ["odd.png"]
    right = load_side_by_side(tmp_path / "p", SIZE, "right")
    assert right.sketches[0, 5, 5] > 100 and (right.images == 0).all()
    with pytest.raises(DataError, match="left' or 'right"):
        load_side_by_side(tmp_path / "p", SIZE, "top")


def test_unpaired_loads_both_domains(tmp_path):
    every_kind_of_file(tmp_path / "a")
    (tmp_path / "b").mkdir()
    for i in range(3):
        Image.fromarray(disc((i * 60, 0, 0))).save(tmp_path / "b" / f"{i}.png")
    data = load_unpaired(tmp_path / "a", tmp_path / "b", SIZE)
    assert data.a.shape == (9, SIZE, SIZE, 3) and data.b.shape == (3, SIZE, SIZE, 3)
    assert len(data.skipped) == 3
    (tmp_path / "c").mkdir()
    (tmp_path / "c" / "x.png").write_bytes(b"junk")
    with pytest.raises(DataError, match="none of its 1 image files"):
        load_unpaired(tmp_path / "a", tmp_path / "c", SIZE)


def test_splits_are_fixed_by_seed_disjoint_and_keep_groups_together():
    names = [f"n{i:03d}" for i in range(200)]
    a = split_names(names, seed=3)
    assert a == split_names(list(reversed(names)), seed=3)
    assert a != split_names(names, seed=4)
    assert sorted(a["train"] + a["val"] + a["test"]) == names
    assert len(a["test"]) == 10 and len(a["val"]) == 10
    grouped = split_names(names, seed=1, group=lambda n: n[:3])  # 20 groups of 10
    for part in grouped.values():
        assert all(len([n for n in part if n[:3] == g]) in (0, 10) for g in {n[:3] for n in names})
    tiny = split_names(["a", "b"], seed=0)
    assert tiny["train"] == ["a", "b"]
    with pytest.raises(DataError):
        split_names(names, val=0.6, test=0.5)


def test_built_dataset_round_trip_keeps_splits_and_skips_damaged_files(tmp_path):
    every_kind_of_file(tmp_path / "pics")
    pairs = load_folder(tmp_path / "pics", SIZE, "edge")
    splits = split_names(pairs.names, seed=0, val=0.2, test=0.2)
    write_dataset(tmp_path / "built", pairs, splits, {"kind": "folder", "sketch_style": "edge", "licence": "mine"})
    manifest = json.loads((tmp_path / "built" / "dataset.json").read_text())
    assert manifest["licence"] == "mine" and len(manifest["skipped"]) == 3
    joint = load_image(tmp_path / "built" / "pairs" / "more__green.png")
    assert joint.shape == (SIZE, 2 * SIZE, 3)

    again = load_dataset(tmp_path / "built")
    assert again.names == pairs.names and again.splits == splits
    assert np.array_equal(again.images, pairs.images) and np.array_equal(again.sketches, pairs.sketches)
    assert again.split("test").names == splits["test"]
    assert load_spec({"kind": "folder", "folder": str(tmp_path / "built")}, SIZE).names == pairs.names

    (tmp_path / "built" / "pairs" / "rgb.png").write_bytes(b"junk")
    damaged = load_dataset(tmp_path / "built")
    assert "rgb" not in damaged.names and len(damaged.skipped) == 1
    (tmp_path / "built" / "dataset.json").write_text("{")
    with pytest.raises(DataError, match="not valid JSON"):
        load_dataset(tmp_path / "built")


OPENMOJI_SVG = """<svg id="emoji" viewBox="0 0 72 72" xmlns="http://www.w3.org/2000/svg">
  <g id="color"><circle cx="36" cy="36" r="23" fill="#FCEA2B"/></g>
  <g id="hair"/>
  <g id="line">{line}</g>
</svg>"""
CIRCLE = '<circle cx="36" cy="36" r="23" fill="none" stroke="#000000" stroke-width="2"/>'


def test_openmoji_builder_pairs_line_art_with_colour_and_drops_empty_and_tones(tmp_path, monkeypatch):
    svgs = tmp_path / "svg"
    svgs.mkdir()
    (svgs / "1F600.svg").write_text(OPENMOJI_SVG.format(line=CIRCLE))
    (svgs / "1F44B-1F3FB.svg").write_text(OPENMOJI_SVG.format(line=CIRCLE))  # skin tone variant
    (svgs / "1F17F.svg").write_text(OPENMOJI_SVG.format(line=""))  # no line art
    (svgs / "2B50.svg").write_text("<svg><broken")
    for i in range(4):
        (svgs / f"E00{i}.svg").write_text(OPENMOJI_SVG.format(line=CIRCLE))
    monkeypatch.setattr(builders, "openmoji_svg_folder", lambda: (svgs, "test"))

    out = builders.build_openmoji(tmp_path / "om", size=32, seed=0)
    data = load_dataset(out)
    assert sorted(data.names) == ["1F600", "E000", "E001", "E002", "E003"]
    skipped = {s.path: s.reason for s in data.skipped} | {
        s["path"]: s["reason"] for s in json.loads((out / "dataset.json").read_text())["skipped"]
    }
    assert skipped["1F17F.svg"] == "line art is empty" and "2B50.svg" in skipped
    smile = data.names.index("1F600")
    sketch, image = data.sketches[smile], data.images[smile]
    assert sketch[16, 16] == 255 and sketch.min() < 100  # a ring of ink, blank inside
    assert image[16, 16, 0] > 200 and image[16, 16, 2] < 100  # the yellow fill
    manifest = json.loads((out / "dataset.json").read_text())
    assert manifest["licence"] == "CC BY-SA 4.0" and "OpenMoji" in manifest["attribution"]
    assert sum(len(v) for v in manifest["splits"].values()) == 5


def test_fluent_builder_reads_the_npm_tarball_and_skips_bad_images(tmp_path):
    tgz = tmp_path / "fluent.tgz"
    with tarfile.open(tgz, "w:gz") as archive:
        for name, payload in _fluent_members():
            info = tarfile.TarInfo(f"package/assets/{name}")
            info.size = len(payload)
            archive.addfile(info, io.BytesIO(payload))
    out = builders.build_fluent3d(tgz, tmp_path / "fl", size=32, seed=0)
    data = load_dataset(out)
    assert sorted(data.names) == ["1f600", "1f680", "2b50"]
    assert [s["path"] for s in json.loads((out / "dataset.json").read_text())["skipped"]] == ["2764"]
    image = data.images[data.names.index("1f600")]
    assert (image[0, 0] == 255).all()  # transparent background composited on white
    assert data.sketches.min() < 128
    with pytest.raises(DataError, match="cannot read the package archive"):
        builders.build_fluent3d(tmp_path / "missing.tgz", tmp_path / "x")


def _fluent_members() -> list[tuple[str, bytes]]:
    members = []
    for name in ("1f600", "1f680", "2b50", "1f44b-1f3fd"):
        rgba = np.zeros((64, 64, 4), np.uint8)
        rgba[..., :3] = disc((250, 180, 30), 64)
        rgba[..., 3] = np.where(disc(size=64)[..., 1] < 255, 255, 0)
        buffer = io.BytesIO()
        Image.fromarray(rgba, "RGBA").save(buffer, format="WEBP", lossless=True)
        members.append((f"{name}.webp", buffer.getvalue()))
    members.append(("2764.webp", b"RIFF\0\0\0\0WEBPjunk"))
    return members


def test_files_with_the_same_name_are_not_merged(tmp_path):
    (tmp_path / "p").mkdir()
    Image.fromarray(disc((200, 0, 0))).save(tmp_path / "p" / "cat.png")
    Image.fromarray(disc((0, 0, 200))).save(tmp_path / "p" / "cat.jpg")
    (tmp_path / "p" / "a").mkdir()
    Image.fromarray(disc()).save(tmp_path / "p" / "a" / "b.png")
    Image.fromarray(disc((0, 200, 0))).save(tmp_path / "p" / "a__b.png")
    pairs = load_folder(tmp_path / "p", SIZE)
    assert sorted(pairs.names) == ["a/b", "a__b", "cat"]
    assert [Path(s.path).name for s in pairs.skipped] == ["cat.png"] or [Path(s.path).name for s in pairs.skipped] == ["cat.jpg"]
    write_dataset(tmp_path / "built", pairs, split_names(pairs.names), {"kind": "test"})
    again = load_dataset(tmp_path / "built")
    assert sorted(again.names) == sorted(pairs.names)
    for name in pairs.names:
        assert np.array_equal(again.images[again.names.index(name)], pairs.images[pairs.names.index(name)])


def test_things_only_leaves_out_flags_keycaps_and_extras_and_keeps_everyone_elses_split(tmp_path, monkeypatch):
    from sketchapp.core.data.builders import is_colourless_kind

    assert is_colourless_kind("1F1E6-1F1E9") and is_colourless_kind("0023-FE0F-20E3") and is_colourless_kind("E05D")
    assert not is_colourless_kind("1F600") and not is_colourless_kind("2615")
    svgs = tmp_path / "svg"
    svgs.mkdir()
    names = [f"1F6{i:02X}" for i in range(12)] + ["1F1E6-1F1E9", "1F1EB-1F1F7", "0023-FE0F-20E3", "E000", "E001", "2615"]
    for name in names:
        (svgs / f"{name}.svg").write_text(OPENMOJI_SVG.format(line=CIRCLE))
    monkeypatch.setattr(builders, "openmoji_svg_folder", lambda: (svgs, "test"))
    whole = json.loads((builders.build_openmoji(tmp_path / "whole", 32) / "dataset.json").read_text())
    things = json.loads((builders.build_openmoji(tmp_path / "things", 32, things_only=True) / "dataset.json").read_text())
    assert set(things["files"]) == {name for name in names if not is_colourless_kind(name)} and len(things["files"]) == 13
    for part in ("train", "val", "test"):  # every picture kept stays in the part it has in the whole set
        assert things["splits"][part] == [name for name in whole["splits"][part] if not is_colourless_kind(name)]
