"""Checkpoints round-trip, refuse foreign or broken files, and never run code."""

from __future__ import annotations

import errno
import json
import os
import pickle
from pathlib import Path

import pytest
import torch

from sketchapp import __version__
from sketchapp.core import fileio
from sketchapp.core.checkpoint import read_checkpoint, save_checkpoint
from sketchapp.core.engines.contextual.model import JointModel, load_model
from sketchapp.core.engines.contextual.networks import JointGANConfig
from sketchapp.core.errors import CheckpointError
from tests.conftest import TINY


def same_weights(a: JointModel, b: JointModel, atol: float = 0.0) -> bool:
    for (name, x), (_, y) in zip(a.generator.state_dict().items(), b.generator.state_dict().items()):
        if not torch.allclose(x.float(), y.float(), atol=atol):
            return False
    return True


def test_round_trip_keeps_weights_and_metadata(tmp_path, tiny_model):
    path = tmp_path / "m.safetensors"
    save_checkpoint(path, tiny_model, sketch_style="xdog", training={"steps": 12, "data": "unit test"})
    loaded = load_model(path)
    assert loaded.config == TINY
    assert same_weights(tiny_model, loaded)
    assert loaded.metadata["sketch_style"] == "xdog"
    assert loaded.metadata["training"] == {"steps": 12, "data": "unit test"}
    assert loaded.metadata["app_version"] == __version__
    assert loaded.metadata["architecture"]["half_size"] == 16
    assert not loaded.generator.training and loaded.encoder is None


def test_half_precision_is_compact_and_close(tmp_path, tiny_model_with_encoder):
    full, half = tmp_path / "full.safetensors", tmp_path / "half.safetensors"
    save_checkpoint(full, tiny_model_with_encoder)
    save_checkpoint(half, tiny_model_with_encoder, half_precision=True)
    assert half.stat().st_size < 0.6 * full.stat().st_size
    loaded = load_model(half)
    assert loaded.encoder is not None
    assert loaded.generator.project.weight.dtype == torch.float32
    assert same_weights(tiny_model_with_encoder, loaded, atol=1e-3)


class _Exploit:
    """Unpickling this creates a file: proof that code ran."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (Path.touch, (self.marker,))


@pytest.mark.parametrize("suffix", [".safetensors", ".pt", ".ckpt"])
def test_crafted_pickle_does_not_run(tmp_path, suffix):
    marker = tmp_path / "pwned"
    evil = tmp_path / f"evil{suffix}"
    evil.write_bytes(pickle.dumps({"G.project.weight": _Exploit(marker)}))
    with pytest.raises(CheckpointError, match="not a SketchApp checkpoint"):
        load_model(evil)
    assert not marker.exists()


def test_torch_save_file_is_refused(tmp_path, tiny_model):
    path = tmp_path / "model.pt"
    torch.save(tiny_model.generator.state_dict(), path)
    with pytest.raises(CheckpointError, match="expected a .safetensors file"):
        load_model(path)


def test_truncated_file(tmp_path, tiny_checkpoint):
    data = tiny_checkpoint.read_bytes()
    for cut in (len(data) // 2, 40):
        broken = tmp_path / f"cut{cut}.safetensors"
        broken.write_bytes(data[:cut])
        with pytest.raises(CheckpointError, match="truncated") as info:
            load_model(broken)
        assert "\n" not in str(info.value)


def test_empty_and_missing(tmp_path):
    empty = tmp_path / "empty.safetensors"
    empty.write_bytes(b"")
    with pytest.raises(CheckpointError, match="empty"):
        load_model(empty)
    with pytest.raises(CheckpointError, match="no such checkpoint"):
        load_model(tmp_path / "nope.safetensors")


def test_foreign_safetensors(tmp_path):
    from safetensors.torch import save_file

    path = tmp_path / "other.safetensors"
    save_file({"weight": torch.zeros(3)}, path)
    with pytest.raises(CheckpointError, match="not a SketchApp checkpoint"):
        load_model(path)


def _rewrite_metadata(path: Path, change) -> None:
    from safetensors.torch import load, save

    data = path.read_bytes()
    header_len = int.from_bytes(data[:8], "little")
    header = json.loads(data[8 : 8 + header_len])
    record = json.loads(header["__metadata__"]["sketchapp"])
    change(record)
    path.write_bytes(save(load(data), metadata={"sketchapp": json.dumps(record)}))


def test_weights_that_do_not_match_metadata(tmp_path, tiny_checkpoint):
    _rewrite_metadata(tiny_checkpoint, lambda r: r["architecture"].update(gf=32))
    with pytest.raises(CheckpointError, match=r"shape .* but the metadata's architecture needs"):
        load_model(tiny_checkpoint)


def test_wrong_engine_and_newer_format(tmp_path, tiny_checkpoint):
    _rewrite_metadata(tiny_checkpoint, lambda r: r.update(engine="pix2pix"))
    with pytest.raises(CheckpointError, match="'pix2pix' engine"):
        load_model(tiny_checkpoint)
    _rewrite_metadata(tiny_checkpoint, lambda r: r.update(format_version=99))
    with pytest.raises(CheckpointError, match="newer than this SketchApp supports"):
        read_checkpoint(tiny_checkpoint)


def test_invalid_architecture(tmp_path, tiny_checkpoint):
    _rewrite_metadata(tiny_checkpoint, lambda r: r["architecture"].update(half_size=48))
    with pytest.raises(CheckpointError, match="invalid architecture"):
        load_model(tiny_checkpoint)


def test_failed_write_keeps_the_old_file(tmp_path, tiny_model, monkeypatch):
    path = tmp_path / "m.safetensors"
    save_checkpoint(path, tiny_model)
    before = path.read_bytes()

    def disk_full(src, dst):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(fileio.os, "replace", disk_full)
    other = JointModel.create(JointGANConfig(half_size=16, z_dim=32, gf=16, df=16))
    with pytest.raises(CheckpointError, match="No space left"):
        save_checkpoint(path, other)
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["m.safetensors"]


def test_extra_weights_are_refused(tmp_path, tiny_checkpoint):
    from safetensors.torch import load, save

    data = tiny_checkpoint.read_bytes()
    header = json.loads(data[8 : 8 + int.from_bytes(data[:8], "little")])
    tensors = load(data)
    tensors["G.extra.weight"] = torch.zeros(2)
    tiny_checkpoint.write_bytes(save(tensors, metadata=header["__metadata__"]))
    with pytest.raises(CheckpointError, match="G.extra.weight do not belong"):
        load_model(tiny_checkpoint)


def test_written_files_get_normal_permissions(tmp_path, tiny_model):
    old = os.umask(0o022)
    try:
        save_checkpoint(tmp_path / "m.safetensors", tiny_model)
    finally:
        os.umask(old)
    assert (tmp_path / "m.safetensors").stat().st_mode & 0o777 == 0o644


def test_a_model_is_built_from_its_file_without_loading_torchs_compiler(tmp_path):
    """Networks are made on the meta device and take the file's weights: no random draw (torch's meta
    normal_ loads its compiler, 2 s of a command-line completion) and nothing thrown away."""
    import subprocess
    import sys

    from sketchapp.core.engines.cyclegan.model import CycleGANModel
    from sketchapp.core.engines.cyclegan.networks import CycleGANConfig
    from sketchapp.core.engines.pix2pix.model import Pix2PixModel
    from sketchapp.core.engines.pix2pix.networks import Pix2PixConfig

    save_checkpoint(tmp_path / "p.safetensors", Pix2PixModel.create(Pix2PixConfig(size=32, gf=8, df=8)))
    save_checkpoint(tmp_path / "c.safetensors", CycleGANModel.create(CycleGANConfig(32, 8, 8, 2)))
    code = (
        "import sys; from sketchapp.core.engines import load_engine_model\n"
        f"for name in ('p', 'c'): load_engine_model(r'{tmp_path}/' + name + '.safetensors')\n"
        "print('torch._dynamo' in sys.modules)"
    )
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip() == "False"
