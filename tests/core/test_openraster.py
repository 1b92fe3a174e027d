"""OpenRaster export: the archive laid out as the specification asks, the layers read back as written."""

from __future__ import annotations

import io
import zipfile

import numpy as np
import pytest
from defusedxml import ElementTree
from PIL import Image

from sketchapp.core.errors import ImageSaveError
from sketchapp.core.openraster import Layer, flattened, line_layer_rgba, read_openraster_stack, save_openraster


def test_an_openraster_file_follows_the_specification_and_reads_back(tmp_path):
    sketch = np.full((64, 64), 255, np.uint8)
    sketch[30:34, 8:56] = 0
    result = np.zeros((32, 32, 3), np.uint8)
    result[:] = (200, 60, 40)
    lines = line_layer_rgba(sketch, 32)
    layers = [Layer("Lines", lines), Layer("Hints", np.zeros((32, 32, 4), np.uint8), visible=False), Layer("Result", result, opacity=0.5)]
    path = tmp_path / "drawing.ora"
    save_openraster(path, layers)
    with zipfile.ZipFile(path) as archive:
        first = archive.infolist()[0]
        assert first.filename == "mimetype" and first.compress_type == zipfile.ZIP_STORED
        assert archive.read("mimetype") == b"image/openraster"
        stack = ElementTree.fromstring(archive.read("stack.xml"))
        assert stack.tag == "image" and stack.get("w") == "32" and stack.get("h") == "32"
        names = [(layer.get("name"), layer.get("visibility"), layer.get("opacity")) for layer in stack.iter("layer")]
        assert names == [("Lines", "visible", "1.000"), ("Hints", "hidden", "1.000"), ("Result", "visible", "0.500")]
        merged = np.asarray(Image.open(io.BytesIO(archive.read("mergedimage.png"))).convert("RGB"))
        assert merged.shape == (32, 32, 3)
        assert Image.open(io.BytesIO(archive.read("Thumbnails/thumbnail.png"))).size == (32, 32)
    assert tuple(merged[0, 0]) == (228, 158, 148)  # half the result over white paper
    assert merged[16, 16].max() == 0  # the line is on top
    read = read_openraster_stack(path)
    assert [name for name, _ in read] == ["Lines", "Hints", "Result"]
    assert np.array_equal(read[0][1], lines) and np.array_equal(read[2][1][..., :3], result)
    assert np.array_equal(flattened(layers), merged)


def test_layers_of_different_sizes_are_refused():
    with pytest.raises(ImageSaveError, match="one size"):
        save_openraster("x.ora", [Layer("a", np.zeros((4, 4, 3), np.uint8)), Layer("b", np.zeros((5, 5, 3), np.uint8))])
