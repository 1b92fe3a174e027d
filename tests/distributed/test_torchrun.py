"""Multi-process training with torchrun (PyTorch DDP, gloo backend on the CPU)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from sketchapp.core.engines.contextual.model import load_model

WORKER = Path(__file__).with_name("ddp_worker.py")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# the paper's GAN, with the encoder in the GAN phase, and with the R1 penalty's double backward through DDP
# through DiffAugment, and averaged weights (each process keeps its own average of the same weights)
@pytest.mark.parametrize(
    ("recon_weight", "r1_gamma", "ema", "diff_augment"), [(0.0, 0.0, 0.0, 0), (10.0, 0.0, 0.0, 0), (10.0, 1.0, 0.9, 1)]
)
def test_two_processes_train_one_model_with_gloo(tmp_path, recon_weight, r1_gamma, ema, diff_augment):
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(WORKER.parents[2])}
    command = [
        sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2",
        "--master_addr", "127.0.0.1", "--master_port", str(_free_port()), str(WORKER), str(tmp_path), str(recon_weight), str(r1_gamma),
        str(ema), str(diff_augment),
    ]
    result = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]

    rank0 = load_file(str(tmp_path / "rank0-of-2.safetensors"))
    rank1 = load_file(str(tmp_path / "rank1-of-2.safetensors"))
    learned = [k for k in rank0 if "running" not in k and "num_batches" not in k]
    assert learned and all(torch.equal(rank0[k], rank1[k]) for k in learned)  # gradients were averaged

    model = load_model(tmp_path / "run" / "model.safetensors")
    assert model.metadata["training"]["world_size"] == 2
    assert (tmp_path / "run" / "samples" / "epoch-002.png").is_file()
    assert not list((tmp_path / "run").glob("*.tmp*"))  # rank 0 alone wrote, atomically


@pytest.mark.parametrize("kind", ["cyclegan", "pix2pix"])
def test_two_processes_train_one_one_pass_model_with_gloo(tmp_path, kind):
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(WORKER.parents[2])}
    command = [
        sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_addr", "127.0.0.1",
        "--master_port", str(_free_port()), str(WORKER), str(tmp_path), kind,
    ]
    result = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    rank0 = load_file(str(tmp_path / "rank0-of-2.safetensors"))
    rank1 = load_file(str(tmp_path / "rank1-of-2.safetensors"))
    learned = [k for k in rank0 if "running" not in k and "num_batches" not in k]
    assert learned and all(torch.equal(rank0[k], rank1[k]) for k in learned)  # every generator and discriminator agrees
    from sketchapp.core.engines import load_engine_model

    model = load_engine_model(tmp_path / "run" / "model.safetensors")
    assert model.kind == kind and model.metadata["training"]["world_size"] == 2
    assert (tmp_path / "run" / "samples" / "epoch-002.png").is_file()
