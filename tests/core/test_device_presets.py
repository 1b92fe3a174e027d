"""Device choice and preset files."""

from __future__ import annotations

import json

import pytest
import torch

from sketchapp.core.engines.contextual.engine import CompletionSettings
from sketchapp.core.device import available_cpus, configure_cpu_threads, select_device
from sketchapp.core.errors import DeviceError, PresetError
from sketchapp.core.presets import find_preset, list_presets, load_preset


def test_select_device():
    assert select_device("cpu") == torch.device("cpu")
    auto = select_device("auto")
    if not torch.cuda.is_available():
        assert auto.type in ("cpu", "mps")
        with pytest.raises(DeviceError, match="no CUDA GPU"):
            select_device("cuda")
    with pytest.raises(DeviceError, match="unknown device"):
        select_device("tpu")


def test_thread_count_follows_available_cpus():
    previous = torch.get_num_threads()
    try:
        assert configure_cpu_threads() == available_cpus() == torch.get_num_threads()
        assert configure_cpu_threads(1) == 1 == torch.get_num_threads()
    finally:
        torch.set_num_threads(previous)


def write(path, **data):
    path.write_text(json.dumps(data))
    return path


def test_preset_loads_and_validates(tmp_path):
    (tmp_path / "m.safetensors").write_bytes(b"x")
    path = write(
        tmp_path / "emoji.json",
        name="Emoji colour",
        model="m.safetensors",
        sketch_style="openmoji-line",
        settings={"candidates": 4, "contextual": "l1"},
    )
    preset = load_preset(path, source="bundled")
    assert preset.id == "emoji" and preset.model == tmp_path / "m.safetensors"
    assert preset.settings == CompletionSettings(candidates=4, contextual="l1")
    assert find_preset("EMOJI COLOUR", [preset]) is preset
    with pytest.raises(PresetError, match="unknown preset 'x' \\(available: emoji\\)"):
        find_preset("x", [preset])


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"name": "a", "model": "m", "sketch_style": "s", "colour": 1}, "unknown preset fields: colour"),
        ({"name": "a", "sketch_style": "s"}, "non-empty 'model'"),
        ({"name": "a", "model": "m", "sketch_style": "s", "engine": "vae"}, "engine 'vae'"),
        ({"name": "a", "model": "m", "sketch_style": "s", "settings": {"candidates": 0}}, "candidates"),
    ],
)
def test_bad_presets(tmp_path, data, message):
    with pytest.raises(PresetError, match=message):
        load_preset(write(tmp_path / "p.json", **data))


def test_listing_skips_broken_files(tmp_path):
    write(tmp_path / "good.json", name="Good", model="m", sketch_style="xdog")
    (tmp_path / "broken.json").write_text("{not json")
    presets, problems = list_presets([(tmp_path, "user"), (tmp_path / "absent", "bundled")])
    assert [p.id for p in presets] == ["good"]
    assert len(problems) == 1 and "broken.json" in problems[0]
