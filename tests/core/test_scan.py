"""Scanning the folders a user picks: the kind of data set, counts, skipped files, sizes, warnings."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from sketchapp.core.data.datasets import DataError, load_folder, split_names, write_dataset
from sketchapp.core.data.scan import scan
from sketchapp.core.engine import CancelToken


def picture(path, width=40, height=30, value=120):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.full((height, width, 3), value, np.uint8)).save(path)


def test_a_folder_of_photos_with_broken_files(tmp_path):
    for i in range(5):
        picture(tmp_path / "photos" / f"p{i}.jpg", 100 + i, 80)
    (tmp_path / "photos" / "broken.png").write_bytes(b"junk")
    (tmp_path / "photos" / "empty.jpg").write_bytes(b"")
    seen = []
    report = scan([tmp_path / "photos"], progress=lambda done, total: seen.append((done, total)))
    assert report.kind == "folder" and report.count == 5
    assert sorted(s.path.rsplit("/", 1)[-1] for s in report.skipped) == ["broken.png", "empty.jpg"]
    assert report.sizes["min_width"] == 100 and report.sizes["max_width"] == 104 and report.sizes["median_height"] == 80
    assert any("fewer than 500" in w for w in report.warnings)
    assert seen[-1] == (7, 7)
    assert "5 pictures" in report.summary()


def test_side_by_side_pictures_are_recognised(tmp_path):
    for i in range(4):
        picture(tmp_path / "pairs" / f"{i}.png", 128, 64)
    report = scan([tmp_path / "pairs"])
    assert report.kind == "side-by-side" and report.count == 4


def test_two_folders_matched_by_name_or_not(tmp_path):
    for name in ("a", "b", "c"):
        picture(tmp_path / "s" / f"{name}.png")
        picture(tmp_path / "i" / f"{name}.jpg")
    picture(tmp_path / "i" / "extra.jpg")
    paired = scan([tmp_path / "s", tmp_path / "i"])
    assert paired.kind == "paired" and paired.count == 3 and paired.counts == (3, 4)
    assert [s.reason for s in paired.skipped] == ["no partner with the same name in the other folder"]
    for name in ("x", "y"):
        picture(tmp_path / "other" / f"{name}.png")
    unpaired = scan([tmp_path / "s", tmp_path / "other"])
    assert unpaired.kind == "unpaired" and unpaired.count == 3 and unpaired.counts == (3, 2)
    assert "3 sketches, 2 pictures" in unpaired.summary()
    assert [w.split(" has only")[0] for w in unpaired.warnings if " has only" in w] == ["s", "other"]  # each under 100


def test_empty_and_unreadable_folders_are_refused(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="no image files"):
        scan([tmp_path / "empty"])
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "x.png").write_bytes(b"junk")
    with pytest.raises(DataError, match="none of its 1 image files"):
        scan([tmp_path / "bad"])
    with pytest.raises(DataError, match="one folder, or two"):
        scan([])


def test_a_built_data_set_and_a_cancelled_scan(tmp_path):
    for i in range(3):
        picture(tmp_path / "p" / f"{i}.png", 30, 30, 40 * i)
    pairs = load_folder(tmp_path / "p", 16)
    write_dataset(tmp_path / "built", pairs, split_names(pairs.names), {"kind": "folder"})
    assert scan([tmp_path / "built"]).kind == "dataset"
    cancel = CancelToken()
    cancel.cancel()
    with pytest.raises(DataError, match="cancelled"):
        scan([tmp_path / "p"], cancel=cancel)
