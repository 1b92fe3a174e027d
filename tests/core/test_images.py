"""The one image loader takes whatever a user has and refuses bad files clearly."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from sketchapp.core.errors import ImageLoadError, ImageSaveError
from sketchapp.core.images import contact_grid, load_image, save_image
from sketchapp.core.prepare import (
    fit_square,
    hints_tensor,
    match_stroke_width,
    sketch_tensor,
    stroke_width,
    typical_stroke_width,
)


def test_rgba_is_composited_on_white(tmp_path):
    pixels = np.zeros((4, 4, 4), np.uint8)
    pixels[0, 0] = (255, 0, 0, 255)  # opaque red, the rest fully transparent black
    Image.fromarray(pixels, "RGBA").save(tmp_path / "a.png")
    rgb = load_image(tmp_path / "a.png")
    assert tuple(rgb[0, 0]) == (255, 0, 0)
    assert tuple(rgb[2, 2]) == (255, 255, 255)
    assert load_image(tmp_path / "a.png", mode="RGBA").shape == (4, 4, 4)


def test_palette_16bit_and_grey(tmp_path):
    Image.new("P", (5, 3), 0).save(tmp_path / "p.png")
    assert load_image(tmp_path / "p.png").shape == (3, 5, 3)
    deep = Image.fromarray(np.full((3, 3), 65535, np.uint16))
    deep.save(tmp_path / "d.png")
    assert load_image(tmp_path / "d.png", mode="L").min() == 255
    Image.new("L", (2, 2), 10).save(tmp_path / "g.jpg")
    assert load_image(tmp_path / "g.jpg").shape == (2, 2, 3)


def test_exif_rotation_is_applied(tmp_path):
    img = Image.new("RGB", (6, 2), "white")
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise on display
    img.save(tmp_path / "r.jpg", exif=exif)
    assert load_image(tmp_path / "r.jpg").shape == (6, 2, 3)


@pytest.mark.parametrize(
    ("content", "message"),
    [(b"", "empty"), (b"hello, not an image", "not an image"), (b"\x89PNG\r\n\x1a\n" + b"\0" * 30, "corrupt|not an image")],
)
def test_bad_files(tmp_path, content, message):
    path = tmp_path / "bad.png"
    path.write_bytes(content)
    with pytest.raises(ImageLoadError, match=message):
        load_image(path)


def test_truncated_png(tmp_path):
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (64, 64, 3), np.uint8)).save(tmp_path / "t.png")
    data = (tmp_path / "t.png").read_bytes()
    (tmp_path / "t.png").write_bytes(data[: len(data) // 2])
    with pytest.raises(ImageLoadError, match="corrupt or truncated"):
        load_image(tmp_path / "t.png")


def test_enormous_image_is_refused_before_decoding(tmp_path):
    Image.new("1", (9000, 9000)).save(tmp_path / "huge.png")
    with pytest.raises(ImageLoadError, match="megapixel limit"):
        load_image(tmp_path / "huge.png")


def test_missing_and_folder(tmp_path):
    with pytest.raises(ImageLoadError, match="no such image file"):
        load_image(tmp_path / "nope.png")
    with pytest.raises(ImageLoadError, match="is a folder"):
        load_image(tmp_path)


def test_save_writes_png_text_and_other_formats(tmp_path):
    pixels = np.zeros((3, 3, 3), np.uint8)
    save_image(tmp_path / "o.png", pixels, {"seed": "5"})
    assert Image.open(tmp_path / "o.png").text == {"seed": "5"}
    for ext in (".jpg", ".webp", ".bmp"):
        save_image(tmp_path / f"o{ext}", pixels)
        assert load_image(tmp_path / f"o{ext}").shape == (3, 3, 3)
    with pytest.raises(ImageSaveError, match="unsupported output format"):
        save_image(tmp_path / "o.gif", pixels)


def test_failed_save_keeps_the_old_file(tmp_path, monkeypatch):
    import errno
    import os

    from sketchapp.core import fileio

    path = tmp_path / "keep.png"
    save_image(path, np.zeros((2, 2, 3), np.uint8))
    before = path.read_bytes()

    def disk_full(src, dst):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(fileio.os, "replace", disk_full)
    with pytest.raises(ImageSaveError, match="No space left"):
        save_image(path, np.full((2, 2, 3), 255, np.uint8))
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["keep.png"]


def test_fit_square_centres_on_white():
    tall = np.zeros((40, 20, 3), np.uint8)
    fitted = fit_square(tall, 16, (255, 255, 255))
    assert fitted.shape == (16, 16, 3)
    assert fitted[:, 0].min() == 255 and fitted[:, 8].max() == 0


def test_sketch_and_hint_tensors():
    sketch = np.full((10, 10), 255, np.uint8)
    sketch[5, :] = 0
    t = sketch_tensor(sketch, 16)
    assert t.shape == (1, 3, 16, 16) and t.max() == 1.0 and t.min() < 0
    hints = np.zeros((5, 5, 4), np.uint8)
    hints[0, 0] = (255, 0, 0, 255)
    colours, alpha = hints_tensor(hints, sketch.shape, 16)
    assert colours.shape == (1, 3, 16, 16) and alpha.shape == (1, 1, 16, 16)
    assert alpha[0, 0, 0, 0] == 1.0 and alpha[0, 0, -1, -1] == 0.0
    assert colours[0, 0, 0, 0] == 1.0 and colours[0, 1, 0, 0] == -1.0


def test_contact_grid():
    pictures = np.zeros((5, 4, 6, 3), np.uint8)
    sheet = contact_grid(pictures, columns=2, gap=1)
    assert sheet.shape == (3 * 4 + 2, 2 * 6 + 1, 3)


def lines_of(width: int, side: int = 256) -> np.ndarray:
    """A square outline and a circle, their lines ``width`` pixels wide."""
    sketch = np.full((side, side), 255, np.uint8)
    a, b = side // 8, side - side // 8
    sketch[a:b, a:b] = 0
    sketch[a + width : b - width, a + width : b - width] = 255
    yy, xx = np.mgrid[:side, :side]
    radius = np.hypot(yy - side / 2, xx - side / 2)
    sketch[(radius >= side / 4) & (radius < side / 4 + width)] = 0
    return sketch


@pytest.mark.parametrize("width", [1, 3, 6, 12])
def test_stroke_width_measures_the_drawn_lines(width):
    assert stroke_width(lines_of(width)) == pytest.approx(width, abs=0.6 + 0.05 * width)


def test_stroke_width_of_blank_paper_is_unknown():
    assert stroke_width(np.full((32, 32), 255, np.uint8)) is None
    assert typical_stroke_width(np.full((3, 32, 32), 255, np.uint8)) is None
    assert typical_stroke_width(np.stack([lines_of(w, 64) for w in (2, 3, 9)])) == pytest.approx(3, abs=0.6)


def test_thin_lines_are_thickened_and_bold_ones_kept():
    thin = lines_of(2)
    thickened = match_stroke_width(thin, 10.0)
    assert stroke_width(thickened) == pytest.approx(10, abs=1.5)
    assert (thickened <= thin).all()  # ink is only added
    bold = lines_of(12)
    assert np.array_equal(match_stroke_width(bold, 10.0), bold)
    blank = np.full((32, 32), 255, np.uint8)
    assert np.array_equal(match_stroke_width(blank, 4.0), blank)


def test_sketch_tensor_matches_the_line_width_at_the_models_size():
    drawing = lines_of(3, 512)  # 0.75 px at 128: a pen line on the canvas
    plain = sketch_tensor(drawing, 128)
    matched = sketch_tensor(drawing, 128, 3.5)
    as_grey = lambda t: ((t[0, 0].numpy() + 1) * 127.5).round().astype(np.uint8)  # noqa: E731
    assert stroke_width(as_grey(matched)) == pytest.approx(3.5, abs=0.7)
    assert matched.shape == plain.shape == (1, 3, 128, 128)
    assert (matched <= plain + 1e-6).all() and matched.min() == -1.0
