"""`sketchapp complete` and `sketchapp presets`: results, exit codes, messages, no tracebacks."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from sketchapp.cli import main
from tests.conftest import beside

FAST = ["--iterations", "15", "--candidates", "3", "--seed", "1", "-q"]


def complete(*args: str) -> int:
    return main(["complete", *map(str, args)])


def test_complete_writes_best_and_every_candidate(tmp_path, sketch_png, tiny_checkpoint, capsys):
    out = tmp_path / "result.png"
    assert complete(sketch_png, "-o", out, "--model", tiny_checkpoint, *FAST) == 0
    assert Image.open(out).size == (16, 16)
    for i in (1, 2, 3):
        assert (tmp_path / f"result-{i}.png").is_file()
    assert not (tmp_path / "result-4.png").exists()
    text = Image.open(out).text
    assert text["seed"] == "1" and json.loads(text["settings"])["candidates"] == 3
    assert capsys.readouterr().err == ""


def test_ink_lines_draws_the_sketch_over_every_result_at_the_asked_size(tmp_path, sketch_png, tiny_checkpoint):
    out = tmp_path / "inked.png"
    assert complete(sketch_png, "-o", out, "--model", tiny_checkpoint, "--ink-lines", "--size", "120", *FAST) == 0
    for path in (out, tmp_path / "inked-2.png"):
        pixels = np.asarray(Image.open(path).convert("RGB"))
        assert pixels.shape == (120, 120, 3)
        assert pixels[25:95, 57:60].max() == 0  # the vertical stroke (columns 40:46, padded by 15)
    assert json.loads(Image.open(out).text["settings"])["ink_lines"] is True
    assert complete(sketch_png, "-o", out, "--model", tiny_checkpoint, "--ink-lines", *FAST) == 0
    assert Image.open(out).size == (16, 16)  # by default the model's own size, inked or not


def test_size_gives_the_same_side_for_every_model_through_the_upscaler(tmp_path, sketch_png, tiny_pix2pix_checkpoint, tiny_checkpoint, monkeypatch):
    from sketchapp.core import upscale
    from sketchapp.core.upscale import UpscalerConfig, UpscalerModel

    used = []
    monkeypatch.setattr(upscale, "bundled_upscaler", lambda: used.append(1) or UpscalerModel.create(UpscalerConfig(width=8, blocks=1)))
    for model in (tiny_pix2pix_checkpoint, tiny_checkpoint):
        out = tmp_path / f"{model.stem}.png"
        assert complete(sketch_png, "-o", out, "--model", model, "--size", "256", "--iterations", "15", "--candidates", "1", "--seed", "1", "-q") == 0
        assert Image.open(out).size == (256, 256)
    assert len(used) == 2
    assert complete(sketch_png, "-o", tmp_path / "small.png", "--model", tiny_pix2pix_checkpoint, "--size", "20", "-q") == 0
    assert Image.open(tmp_path / "small.png").size == (20, 20) and len(used) == 2  # smaller: no upscaler needed
    with pytest.raises(SystemExit):
        complete(sketch_png, "-o", tmp_path / "huge.png", "--model", tiny_checkpoint, "--size", "5000")


def test_same_seed_same_result(tmp_path, sketch_png, tiny_checkpoint):
    for name in ("a.png", "b.png"):
        assert complete(sketch_png, "-o", tmp_path / name, "--model", tiny_checkpoint, *FAST) == 0
    assert (tmp_path / "a.png").read_bytes() == (tmp_path / "b.png").read_bytes()


def test_progress_and_frames(tmp_path, sketch_png, tiny_checkpoint, capsys):
    frames = tmp_path / "frames"
    out = tmp_path / "r.webp"
    args = ["--iterations", "20", "--candidates", "2", "--seed", "3", "--frames", frames, "--frame-every", "5"]
    assert complete(sketch_png, "-o", out, "--model", tiny_checkpoint, *args) == 0
    names = sorted(p.name for p in frames.iterdir())
    assert {"optimise-00005.png", "optimise-00020.png", "final.png"} <= set(names)
    assert any(n.startswith("init-") for n in names)
    err = capsys.readouterr().err
    assert "seed 3" in err and "20/20" in err and "wrote" in err
    assert out.is_file()


def test_hints_file(tmp_path, sketch_png, tiny_checkpoint):
    hints = tmp_path / "hints.png"
    Image.new("RGBA", (30, 40), (255, 0, 0, 255)).save(hints)
    assert complete(sketch_png, "-o", tmp_path / "r.png", "--model", tiny_checkpoint, "--hints", hints, *FAST) == 0
    settings = json.loads(Image.open(tmp_path / "r.png").text["settings"])
    assert settings["iterations"] == settings["hint_iterations"] == 15  # --iterations is the count, hints or not


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda p: None, "no such image file"),
        (lambda p: p.write_bytes(b""), "empty"),
        (lambda p: p.write_bytes(b"\x89PNG\r\n\x1a\n garbage"), "corrupt|not an image"),
        (lambda p: p.write_text("just some notes"), "not an image"),
        (lambda p: Image.new("1", (9000, 9000)).save(p, format="PNG"), "megapixel"),
    ],
    ids=["missing", "zero-byte", "corrupt", "not-image", "enormous"],
)
def test_bad_sketch_exits_1_with_one_line(tmp_path, tiny_checkpoint, capsys, make, message):
    sketch = tmp_path / "sketch.png"
    make(sketch)
    assert complete(sketch, "-o", tmp_path / "r.png", "--model", tiny_checkpoint, *FAST) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("sketchapp: error: ") and "\n" not in err
    import re

    assert re.search(message, err)
    assert not (tmp_path / "r.png").exists()


def test_wrong_checkpoint_exits_1(tmp_path, sketch_png, capsys):
    assert complete(sketch_png, "-o", tmp_path / "r.png", "--model", sketch_png, *FAST) == 1
    assert "not a SketchApp checkpoint" in capsys.readouterr().err
    assert complete(sketch_png, "-o", tmp_path / "r.png", "--model", tmp_path / "none.safetensors", *FAST) == 1


def test_unknown_preset_and_device_exit_1(tmp_path, sketch_png, tiny_checkpoint, capsys):
    assert complete(sketch_png, "-o", tmp_path / "r.png", "--preset", "nonesuch", *FAST) == 1
    assert "unknown preset 'nonesuch'" in capsys.readouterr().err
    assert complete(sketch_png, "-o", tmp_path / "r.png", "--model", tiny_checkpoint, "--device", "tpu", *FAST) == 1
    assert "unknown device" in capsys.readouterr().err


@pytest.mark.parametrize(
    "args",
    [
        ["complete"],
        ["complete", "s.png"],
        ["complete", "s.png", "-o", "r.txt", "--model", "m"],
        ["complete", "s.png", "-o", "r.png", "--model", "m", "--candidates", "0"],
        ["complete", "s.png", "-o", "r.png", "--model", "m", "--preset", "p"],
        ["complete", "s.png", "-o", "r.png", "--model", "m", "--iterations", "many"],
        ["frobnicate"],
    ],
)
def test_usage_errors_exit_2(args, capsys):
    with pytest.raises(SystemExit) as info:
        main(args)
    assert info.value.code == 2
    assert "usage:" in capsys.readouterr().err


def test_without_a_model_or_preset_the_default_preset_completes(tmp_path, sketch_png, capsys):
    from sketchapp.core.presets import DEFAULT_PRESET

    out = tmp_path / "default.png"
    assert complete(sketch_png, "-o", out, "--seed", "2") == 0
    assert Image.open(out).text["model"] == DEFAULT_PRESET


def test_user_preset_is_listed_and_used(tmp_path, sketch_png, tiny_checkpoint, monkeypatch, capsys):
    monkeypatch.setenv("SKETCHAPP_DATA_DIR", str(tmp_path / "data"))
    presets = tmp_path / "data" / "presets"
    presets.mkdir(parents=True)
    (presets / "mine.json").write_text(
        json.dumps({"name": "My style", "model": beside(presets, tiny_checkpoint), "sketch_style": "xdog", "settings": {"candidates": 2}})
    )
    assert main(["presets"]) == 0
    listed = capsys.readouterr().out
    assert "mine" in listed and "My style" in listed and "[user]" in listed
    out = tmp_path / "r.png"
    assert complete(sketch_png, "-o", out, "--preset", "My style", "--iterations", "5", "-q") == 0
    assert (tmp_path / "r-2.png").is_file() and not (tmp_path / "r-3.png").exists()
    assert Image.open(out).text["model"] == "mine"


def test_hints_let_a_short_preset_run_on_and_the_png_records_the_count(tmp_path, sketch_png, tiny_checkpoint, monkeypatch, capsys):
    monkeypatch.setenv("SKETCHAPP_DATA_DIR", str(tmp_path / "data"))
    presets = tmp_path / "data" / "presets"
    presets.mkdir(parents=True)
    settings = {"candidates": 2, "iterations": 5, "hint_iterations": 12, "patience": 0}
    (presets / "short.json").write_text(
        json.dumps({"name": "Short", "model": beside(presets, tiny_checkpoint), "sketch_style": "xdog", "settings": settings})
    )
    hints = tmp_path / "hints.png"
    Image.new("RGBA", (30, 40), (255, 200, 0, 255)).save(hints)
    assert complete(sketch_png, "-o", tmp_path / "h.png", "--preset", "short", "--hints", hints, "--seed", "3") == 0
    assert "12/12" in capsys.readouterr().err  # the bar counts to the run's real total
    recorded = json.loads(Image.open(tmp_path / "h.png").text["settings"])
    assert recorded["iterations"] == 12  # the count in effect, so the PNG's settings reproduce the run
    again = ["--iterations", str(recorded["iterations"]), "--seed", "3", "-q"]
    assert complete(sketch_png, "-o", tmp_path / "again.png", "--preset", "short", "--hints", hints, *again) == 0
    assert np.array_equal(np.asarray(Image.open(tmp_path / "again.png")), np.asarray(Image.open(tmp_path / "h.png")))
    assert complete(sketch_png, "-o", tmp_path / "plain.png", "--preset", "short", "--seed", "3", "-q") == 0
    assert json.loads(Image.open(tmp_path / "plain.png").text["settings"])["iterations"] == 5


def test_real_entry_point_never_prints_a_traceback(tmp_path, tiny_checkpoint):
    """The installed command as a user runs it, in a fresh process."""
    bad = tmp_path / "bad.jpg"
    bad.write_bytes(b"\xff\xd8\xff broken jpeg")
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    run = subprocess.run(
        [sys.executable, "-m", "sketchapp", "complete", str(bad), "-o", str(tmp_path / "r.png"), "--model", str(tiny_checkpoint)],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert run.returncode == 1
    assert "Traceback" not in run.stderr
    assert run.stderr.startswith("sketchapp: error: bad.jpg:")


def test_unwritable_output_exits_1(tmp_path, sketch_png, tiny_checkpoint, capsys, monkeypatch):
    import errno

    from sketchapp.core import fileio

    def disk_full(src, dst):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(fileio.os, "replace", disk_full)
    assert complete(sketch_png, "-o", tmp_path / "r.png", "--model", tiny_checkpoint, *FAST) == 1
    err = capsys.readouterr().err
    assert "cannot write (No space left on device); nothing was written" in err
    assert list(tmp_path.glob("r*.png")) == [] and list(tmp_path.glob(".r*")) == []


def test_output_that_is_a_folder_fails_before_the_run(tmp_path, sketch_png, tiny_checkpoint, capsys):
    folder = tmp_path / "out.png"
    folder.mkdir()
    assert complete(sketch_png, "-o", folder, "--model", tiny_checkpoint, *FAST) == 1
    assert "is a folder" in capsys.readouterr().err
    assert complete(sketch_png, "-o", sketch_png / "r.png", "--model", tiny_checkpoint, *FAST) == 1
    assert "cannot make the output folder" in capsys.readouterr().err  # a file stands where the folder would be
    assert complete(sketch_png, "-o", tmp_path / "new" / "deeper" / "r.png", "--model", tiny_checkpoint, *FAST) == 0
    assert (tmp_path / "new" / "deeper" / "r.png").is_file()


def test_out_of_range_seed_and_threads_are_usage_errors(tmp_path, sketch_png):
    for extra in (["--seed", str(2**70)], ["--threads", "100000"]):
        with pytest.raises(SystemExit) as info:
            complete(sketch_png, "-o", tmp_path / "r.png", "--model", "m", *extra)
        assert info.value.code == 2


@pytest.mark.parametrize("preset", ["emoji-pix2pix", "3d-pix2pix", "3d-cyclegan", "emoji-colour"])
def test_shipped_presets_complete_a_sketch(tmp_path, sketch_png, preset, capsys):
    out = tmp_path / "shipped.png"
    assert complete(sketch_png, "-o", out, "--preset", preset, "--iterations", "5", "--candidates", "2", "--seed", "0", "-q") == 0
    pixels = np.asarray(Image.open(out).convert("RGB")).astype(int)
    assert pixels.shape == (128, 128, 3)  # inked: the sketch's own size (120) but at least the model's; else the model's
    assert pixels.std() > 5  # a picture, not a blank
    main(["presets"])
    listed = capsys.readouterr().out
    assert preset in listed and "[bundled]" in listed


def test_a_preset_whose_model_is_of_another_engine_is_one_line_naming_both(tmp_path, sketch_png, tiny_checkpoint, monkeypatch, capsys):
    monkeypatch.setenv("SKETCHAPP_DATA_DIR", str(tmp_path / "data"))
    presets = tmp_path / "data" / "presets"
    presets.mkdir(parents=True)
    (presets / "mixed.json").write_text(json.dumps({
        "name": "Mixed", "engine": "pix2pix", "model": beside(presets, tiny_checkpoint), "sketch_style": "outline",
    }))
    out = tmp_path / "mixed.png"
    assert complete(sketch_png, "-o", out, "--preset", "mixed", *FAST) == 1
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "pix2pix" in err and "contextual" in err and "Traceback" not in err
    assert not out.exists()


def test_a_pix2pix_preset_completes_in_one_pass_with_hints(tmp_path, sketch_png, tiny_pix2pix_checkpoint, monkeypatch, capsys):
    monkeypatch.setenv("SKETCHAPP_DATA_DIR", str(tmp_path / "data"))
    presets = tmp_path / "data" / "presets"
    presets.mkdir(parents=True)
    (presets / "live.json").write_text(json.dumps({
        "name": "Live", "engine": "pix2pix", "model": beside(presets, tiny_pix2pix_checkpoint), "sketch_style": "outline",
        "settings": {"candidates": 3},
    }))
    hints = np.zeros((120, 90, 4), np.uint8)
    hints[30:50, 20:40] = (200, 30, 30, 255)
    Image.fromarray(hints, "RGBA").save(tmp_path / "hints.png")
    out = tmp_path / "p2p.png"
    assert complete(sketch_png, "-o", out, "--preset", "live", "--hints", tmp_path / "hints.png", "--seed", "3") == 0
    assert Image.open(out).size == (32, 32)
    assert [(tmp_path / f"p2p-{i}.png").is_file() for i in (1, 2, 3, 4)] == [True, True, True, False]
    text = Image.open(out).text
    assert text["model"] == "live" and json.loads(text["settings"]) == {
        "candidates": 3, "variety": "palette", "ink_lines": False, "match_line_width": True, "seed": 3, "channels_last": True,
        "bfloat16": True, "runtime": True}
    err = capsys.readouterr().err
    assert "one pass" in err and "candidates differ by" in err
    (presets / "bad.json").write_text(json.dumps({
        "name": "Bad", "engine": "pix2pix", "model": beside(presets, tiny_pix2pix_checkpoint), "sketch_style": "outline",
        "settings": {"iterations": 5},
    }))
    assert main(["presets"]) == 0
    assert "unknown pix2pix settings: iterations" in capsys.readouterr().err


def test_the_shipped_cyclegan_preset_takes_a_style_reference(tmp_path, sketch_png):
    reference = np.zeros((64, 64, 3), np.uint8)
    reference[:, :32] = (250, 200, 30)
    reference[:, 32:] = (30, 90, 230)
    Image.fromarray(reference).save(tmp_path / "reference.png")
    plain, styled = tmp_path / "plain.png", tmp_path / "styled.png"
    assert complete(sketch_png, "-o", plain, "--preset", "3d-cyclegan", "--seed", "0", "-q") == 0
    assert complete(sketch_png, "-o", styled, "--preset", "3d-cyclegan", "--seed", "0", "-q",
                    "--style-reference", tmp_path / "reference.png", "--style-steps", "30") == 0
    recorded = Image.open(styled).text
    assert recorded["style_reference"] == "reference.png" and "discriminator" in recorded["style"]
    a, b = (np.asarray(Image.open(p).convert("RGB")).astype(int) for p in (plain, styled))
    assert np.abs(a - b).mean() > 1  # restyled, not the same picture
    with pytest.raises(SystemExit):  # style options without a reference are a usage error
        complete(sketch_png, "-o", styled, "--preset", "3d-cyclegan", "--style-steps", "3")


def test_a_file_given_alone_opens_in_the_window_and_a_typo_is_still_a_usage_error(tmp_path, monkeypatch, capsys):
    import sketchapp.app
    import sketchapp.display
    from sketchapp.cli import main

    opened = []
    monkeypatch.setattr(sketchapp.display, "display_problem", lambda: None)
    monkeypatch.setattr(sketchapp.app, "run", lambda argv, path=None: opened.append(path) or 0)
    drawing = tmp_path / "cup.sketchapp"
    drawing.write_bytes(b"PK")
    assert main([str(drawing)]) == 0 and opened == [str(drawing)]
    assert main([str(tmp_path / "not-yet.sketchapp")]) == 0  # the window says it is missing
    assert main([]) == 0 and opened[-1] is None
    with pytest.raises(SystemExit) as usage:
        main(["complet"])
    assert usage.value.code == 2


def test_one_candidate_is_one_file(tmp_path, sketch_png, tiny_pix2pix_checkpoint):
    assert complete(sketch_png, "-o", tmp_path / "one.png", "--model", tiny_pix2pix_checkpoint, "--seed", "1", "-q") == 0
    assert sorted(p.name for p in tmp_path.glob("one*.png")) == ["one.png"]


def test_a_result_is_never_written_over_its_own_sketch_and_goes_through_a_link(tmp_path, sketch_png, tiny_checkpoint, capsys):
    before = sketch_png.read_bytes()
    assert complete(sketch_png, "-o", sketch_png, "--model", tiny_checkpoint, *FAST) == 1
    assert "is one of the inputs" in capsys.readouterr().err and sketch_png.read_bytes() == before
    kept = tmp_path / "kept.png"
    kept.write_bytes(b"old")
    link = tmp_path / "link.png"
    link.symlink_to(kept)
    assert complete(sketch_png, "-o", link, "--model", tiny_checkpoint, *FAST) == 0
    assert link.is_symlink() and kept.read_bytes()[:4] == b"\x89PNG"  # the file it points to has the result


def test_thousands_of_broken_user_presets_give_a_few_lines_and_a_count(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("SKETCHAPP_DATA_DIR", str(tmp_path / "data"))
    presets = tmp_path / "data" / "presets"
    presets.mkdir(parents=True)
    for index in range(2000):
        (presets / f"broken{index:04d}.json").write_text("{not json")
    assert main(["presets"]) == 0
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 1 and err[0].startswith("sketchapp: warning: 2000 presets could not be read; the first: ")


def test_a_decoder_complaint_never_reaches_the_terminal_beside_the_one_line(tmp_path, capsys):
    import io
    import struct

    buffer = io.BytesIO()
    Image.fromarray(np.zeros((4, 4, 3), np.uint8)).save(buffer, format="TIFF")
    data = bytearray(buffer.getvalue())
    tag = data.find(struct.pack("<HH", 277, 3))  # SamplesPerPixel
    data[tag + 8 : tag + 10] = struct.pack("<H", 100)
    (tmp_path / "bad.tif").write_bytes(bytes(data))
    assert complete(tmp_path / "bad.tif", "-o", tmp_path / "out.png") == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "More samples" not in err


def test_a_batch_completes_many_sketches_with_one_model_load_and_a_bad_file_does_not_stop_it(tmp_path, sketch_png, tiny_pix2pix_checkpoint, monkeypatch, capsys):
    from sketchapp.core import engines

    loads = []
    real = engines.open_engine
    monkeypatch.setattr(engines, "open_engine", lambda *a, **k: loads.append(1) or real(*a, **k))
    folder = tmp_path / "sketches"
    folder.mkdir()
    for name in ("a.png", "b.png"):
        (folder / name).write_bytes(sketch_png.read_bytes())
    (folder / "broken.png").write_bytes(b"not a picture")
    (folder / "notes.txt").write_text("not a sketch")
    out = tmp_path / "results"
    assert complete(folder, sketch_png, "-o", out, "--model", tiny_pix2pix_checkpoint, "--seed", "3") == 1
    err = capsys.readouterr().err
    assert "broken.png" in err and "completed 3 of 4 sketches" in err and "Traceback" not in err
    assert sorted(p.name for p in out.iterdir()) == ["a.png", "b.png", sketch_png.name]
    assert loads == [1]
    single = tmp_path / "single.png"
    assert complete(folder / "a.png", "-o", single, "--model", tiny_pix2pix_checkpoint, "--seed", "3", "-q") == 0
    assert np.array_equal(np.asarray(Image.open(single)), np.asarray(Image.open(out / "a.png")))  # the same seed, the same picture
    (tmp_path / "file.png").write_bytes(b"x")
    assert complete(folder / "a.png", folder / "b.png", "-o", tmp_path / "file.png", "--model", tiny_pix2pix_checkpoint) == 1
    assert "a batch is written into a folder" in capsys.readouterr().err


def test_complete_writes_openraster_layers_for_other_painting_programs(tmp_path, sketch_png, tiny_pix2pix_checkpoint):
    from sketchapp.core.openraster import read_openraster_stack

    hints = np.zeros((120, 120, 4), np.uint8)
    hints[50:60, 50:60] = (255, 0, 0, 255)
    Image.fromarray(hints).save(tmp_path / "hints.png")
    out = tmp_path / "layers.ora"
    assert complete(sketch_png, "-o", out, "--model", tiny_pix2pix_checkpoint, "--hints", tmp_path / "hints.png",
                    "--candidates", "2", "--size", "64", "--seed", "1", "-q") == 0
    layers = read_openraster_stack(out)
    names = [name for name, _ in layers]
    assert names[:3] == ["Lines", "Colour hints", "Result"] and names[3] in ("Candidate 1", "Candidate 2")
    assert all(pixels.shape == (64, 64, 4) for _, pixels in layers)
    assert layers[0][1][..., 3].max() > 200 and layers[0][1][0, 0, 3] == 0  # the lines, nothing where the paper was
