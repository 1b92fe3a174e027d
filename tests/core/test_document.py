"""The .sketchapp document format: a round trip, and every damaged or hostile file refused in one line."""

from __future__ import annotations

import io
import json
import os
import zipfile

import numpy as np
import pytest

from sketchapp.core import document as doc
from sketchapp.core.errors import DocumentError
from sketchapp.core.images import save_image


def sample() -> doc.SketchFile:
    hints = np.zeros((64, 64, 4), np.uint8)
    hints[10:20, 10:20] = (200, 30, 30, 255)
    return doc.SketchFile(
        512.0, [doc.Stroke("pen", 6.0, [(10.0, 10.0, 0.5), (200.0, 40.5, 0.9)]), doc.Stroke("eraser", 20.0, [(5.0, 5.0, 0.6)])],
        base=np.full((32, 32, 3), 250, np.uint8), hints=hints, preset="emoji-pix2pix", seed=123, seed_locked=True,
        settings={"candidates": 4, "dropout": 0.5}, ink_lines=True,
    )


def archive(record: dict | bytes, extra: dict[str, bytes] | None = None) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as out:
        out.writestr(doc.RECORD, record if isinstance(record, bytes) else json.dumps(record))
        for name, data in (extra or {}).items():
            out.writestr(name, data)
    return buffer.getvalue()


def record(**changes) -> dict:
    base = {"format": doc.FORMAT, "version": 1, "side": 512, "strokes": [{"tool": "pen", "size": 4, "points": [[1, 2, 0.5]]}]}
    return {**base, **changes}


def test_a_document_round_trips_exactly(tmp_path):
    original = sample()
    doc.save_document(tmp_path / "a.sketchapp", original)
    back = doc.read_document(tmp_path / "a.sketchapp")
    assert back.strokes == original.strokes and back.side == 512.0
    assert np.array_equal(back.base, original.base) and np.array_equal(back.hints, original.hints)
    assert (back.preset, back.seed, back.seed_locked, back.settings, back.ink_lines) == (
        "emoji-pix2pix", 123, True, {"candidates": 4, "dropout": 0.5}, True)


def test_a_result_png_carries_its_document_and_its_settings(tmp_path):
    save_image(tmp_path / "r.png", np.zeros((8, 8, 3), np.uint8),
               {"software": "SketchApp", "preset_id": "x", "settings": '{"seed": 5}', doc.RESULT_KEY: doc.result_text(sample())})
    assert doc.read_result(tmp_path / "r.png").strokes == sample().strokes
    save_image(tmp_path / "old.png", np.zeros((8, 8, 3), np.uint8),
               {"software": "SketchApp", "preset_id": "emoji-colour", "settings": '{"seed": 5, "candidates": 8}'})
    old = doc.read_result(tmp_path / "old.png")
    assert old.side == 0 and old.preset == "emoji-colour" and old.seed == 5 and old.settings["candidates"] == 8
    save_image(tmp_path / "plain.png", np.zeros((8, 8, 3), np.uint8))
    assert doc.read_result(tmp_path / "plain.png") is None


def test_writing_is_atomic_and_a_failed_save_keeps_the_old_file(tmp_path, monkeypatch):
    target = tmp_path / "a.sketchapp"
    doc.save_document(target, sample())
    before = target.read_bytes()
    import sketchapp.core.fileio as fileio

    def full_disk(*_args, **_kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(fileio.os, "fsync", full_disk)
    with pytest.raises(DocumentError, match="No space left"):
        doc.save_document(target, sample())
    assert target.read_bytes() == before and [p.name for p in tmp_path.iterdir()] == ["a.sketchapp"]


@pytest.mark.parametrize(
    "data, message",
    [
        (b"PK\x03\x04 not really", "not a SketchApp document"),
        (b"plain text", "not a SketchApp document"),
        (archive({"format": "other"}), "another format"),
        (archive(record(version=3)), "newer SketchApp"),
        (archive(record(version="1")), "format version"),
        (archive(b"[" * 5000 + b"]" * 5000), "nested"),
        (archive(b"\xff\xfe"), "UTF-8"),
        (archive(record(), {"evil.py": b"print(1)"}), "evil.py"),
        (archive(record(side=float("inf")) | {}), "side"),
        (archive(record(strokes=[{"tool": "knife", "size": 4, "points": [[1, 2, 0.5]]}])), "pen or eraser"),
        (archive(record(strokes=[{"tool": "pen", "size": 4, "points": [["1", "2", "0.5"]]}])), "numbers"),
        (archive(record(strokes=[{"tool": "pen", "size": 4, "points": [[1e300, 2, 0.5]]}])), "off the sheet"),
        (archive(record(strokes=[{"tool": "pen", "size": 4, "points": [[1, 2, 7]]}])), "pressure"),
        (archive(record(strokes=[{"tool": "pen", "size": 4, "points": []}])), "no points"),
        (archive(record(strokes=[{"tool": "pen", "size": -1, "points": [[1, 2, 0.5]]}])), "size"),
        (archive(record(base="base.png")), "missing"),
        (archive(record(base="base.png"), {"base.png": b"\x89PNG broken"}), "not an image"),
        (archive(record(seed=-4)), "seed"),
        (archive(record(settings={"a": {"b": 1}})), "plain values"),
    ],
    ids=lambda value: value if isinstance(value, str) else "",
)
def test_damaged_and_hostile_documents_are_refused_in_one_line(tmp_path, data, message):
    path = tmp_path / "bad.sketchapp"
    path.write_bytes(data)
    with pytest.raises(DocumentError, match=message) as refused:
        doc.read_document(path)
    assert "\n" not in str(refused.value) and len(str(refused.value)) < 300


def test_a_zip_bomb_is_refused_before_it_is_unpacked(tmp_path):
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as out:
        out.writestr(doc.RECORD, json.dumps(record()))
        out.writestr(doc.BASE, b"\0" * (100 << 20))  # 100 MB of zeros in 100 kB
    path = tmp_path / "bomb.sketchapp"
    path.write_bytes(buffer.getvalue())
    with pytest.raises(DocumentError, match="would unpack to 100 MB"):
        doc.read_document(path)


def test_a_pipe_or_a_device_is_never_read(tmp_path):
    fifo = tmp_path / "pipe.sketchapp"
    os.mkfifo(fifo)
    with pytest.raises(DocumentError, match="not a regular file"):
        doc.read_document(fifo)
    link = tmp_path / "zero.sketchapp"
    link.symlink_to("/dev/zero")
    with pytest.raises(DocumentError, match="not a regular file"):
        doc.read_document(link)


def test_the_record_comes_first_so_file_managers_recognise_a_document():
    data = doc.encode_document(sample())
    assert data[:4] == b"PK\x03\x04" and data[30:43] == b"document.json"  # the MIME magic (resources/linux)


@pytest.mark.parametrize(
    "data, message",
    [
        (archive(record(side=int("9" * 400))), "side"),
        (archive(b'{"format": "sketchapp.document", "version": ' + b"9" * 5000 + b"}"), "not valid JSON"),
        (archive(record(strokes=[{"tool": "pen", "size": 4, "points": [[int("9" * 400), 2, 0.5]]}])), "points"),
        (archive(record(settings={"weight": float("nan")})), "finite"),
        (archive(record(settings={"weight": int("9" * 400)})), "finite"),
    ],
    ids=["huge-side", "5000-digits", "huge-point", "nan-setting", "huge-setting"],
)
def test_numbers_too_big_to_hold_are_refused_in_one_line(tmp_path, data, message):
    path = tmp_path / "bad.sketchapp"
    path.write_bytes(data)
    with pytest.raises(DocumentError, match=message):
        doc.read_document(path)


def test_every_flipped_byte_is_a_document_error_never_another_exception(tmp_path):
    good = doc.encode_document(sample())
    rng = np.random.default_rng(0)
    for trial in range(150):
        data = bytearray(good)
        for index in rng.integers(0, len(data), 3):
            data[index] ^= int(rng.integers(1, 256))
        try:
            doc.decode_document(bytes(data), f"flip-{trial}")
        except DocumentError as refused:
            assert "\n" not in str(refused)


def test_what_is_saved_always_opens_again(tmp_path):
    """Strokes run far past the sheet (zoomed out), a brush finer than the reader's least, a NaN point:
    the writer keeps what the reader takes, so a saved drawing never fails to open."""
    wild = doc.SketchFile(512.0, [
        doc.Stroke("pen", 1e-9, [(-90000.0, 5.0, 0.5), (float("nan"), 1.0, 0.5), (40.0, 1e12, 1.5)]),
        doc.Stroke("pen", 6.0, [(float("inf"), 0.0, 0.5)]),
    ], settings={"candidates": 2})
    doc.save_document(tmp_path / "w.sketchapp", wild)
    back = doc.read_document(tmp_path / "w.sketchapp")
    assert len(back.strokes) == 1 and back.strokes[0].points == [(-2048.0, 5.0, 0.5), (40.0, 2048.0, 1.0)]
    assert back.strokes[0].size == doc.MIN_SIZE


def test_saving_through_a_link_updates_the_file_it_points_to_and_keeps_the_link(tmp_path):
    from sketchapp.core.fileio import write_bytes_atomic

    real = tmp_path / "real.sketchapp"
    real.write_bytes(b"old")
    link = tmp_path / "link.sketchapp"
    link.symlink_to(real)
    write_bytes_atomic(link, b"new")
    assert link.is_symlink() and real.read_bytes() == b"new"


def test_a_drawing_longer_than_the_reader_takes_is_thinned_on_saving_and_opens_again(tmp_path):
    # 1,800 wavy drags of 300 px with 152 points each: 273,600 points, past the reader's 250,000
    rng = np.random.default_rng(0)
    xs = np.linspace(10, 310, 152)
    strokes = [doc.Stroke("pen", 6.0, [(float(x), y + float(np.sin(x / 30) * 3), 0.5) for x in xs])
               for y in rng.uniform(0, 512, 1800).tolist()]
    path = tmp_path / "long.sketchapp"
    doc.save_document(path, doc.SketchFile(512.0, strokes))
    back = doc.read_document(path)
    assert len(back.strokes) == 1800 and sum(len(s.points) for s in back.strokes) <= doc.MAX_POINTS
    for before, after in zip(strokes[:50], back.strokes):
        before_xy, after_xy = np.asarray(before.points)[:, :2], np.asarray(after.points)[:, :2]
        assert np.array_equal(before_xy[[0, -1]], after_xy[[0, -1]])
        # every point drawn lies within a tenth of a sheet pixel of the thinned line
        gaps = [np.min(np.abs(np.interp(x, after_xy[:, 0], after_xy[:, 1]) - y)) for x, y in before_xy]
        assert max(gaps) < 0.1
    # a drawing under the limit is written point for point
    short = doc.SketchFile(512.0, strokes[:100])
    assert doc.decode_document(doc.encode_document(short), "s").strokes[0].points == [tuple(p) for p in strokes[0].points]


def test_a_record_of_millions_of_points_is_refused_before_it_is_parsed(monkeypatch):
    points = b"[" + b",".join([b"[1,1,1]"] * 3_000_000) + b"]"
    record = b'{"format": "sketchapp.document", "version": 1, "side": 512, "strokes": [{"tool": "pen", "size": 2, "points": ' + points + b"}]}"
    parsed = []
    monkeypatch.setattr(doc, "parse_json", lambda *args: parsed.append(1))  # parsing took 10 s and 1.4 GB
    with pytest.raises(DocumentError, match="more than 250000 points"):
        doc.decode_document(archive(record), "big.sketchapp")
    assert parsed == []


def test_a_base_layer_of_svg_markup_cannot_bring_in_someone_elses_file(tmp_path):
    secret = tmp_path / "secret.png"
    save_image(secret, np.zeros((8, 8, 3), np.uint8))
    markup = f'<svg xmlns="http://www.w3.org/2000/svg" width="8" height="8"><image href="{secret}" width="8" height="8"/></svg>'
    data = archive(record(base=doc.BASE), {doc.BASE: markup.encode()})
    with pytest.raises(DocumentError, match="outside the drawing"):
        doc.decode_document(data, "forged.sketchapp")


def test_a_save_removes_what_a_killed_save_left_beside_the_document(tmp_path):
    path = tmp_path / "cat.sketchapp"
    leftover = tmp_path / ".cat.sketchapp.k3j_9xq2.tmp"  # as a save killed before its rename leaves it
    leftover.write_bytes(b"half a document")
    fresh = tmp_path / ".cat.sketchapp.a1b2c3d4.tmp"  # another save under way right now
    fresh.write_bytes(b"being written")
    others = [tmp_path / ".dog.sketchapp.k3j_9xq2.tmp", tmp_path / "notes.tmp"]
    for other in others:
        other.write_bytes(b"not ours to remove")
    old = os.stat(leftover).st_mtime - 3600
    for stale in (leftover, *others):
        os.utime(stale, (old, old))
    doc.save_document(path, sample())
    assert not leftover.exists() and fresh.exists() and all(other.exists() for other in others)
    assert doc.read_document(path).seed == 123
