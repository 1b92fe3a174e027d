"""What every engine in the registry must do, checked the same way for each: a new engine is
tested here by adding it to the registry, with no test file of its own needed for these.

Each engine trains its ``quick`` settings (``core.engines.base.Training``) on a few
generated pairs; the checks are that a cancelled run resumes to exactly the weights of an
uninterrupted one (stopped early and stopped late, which for an engine of two phases is
in its second), that its model file round-trips and a hostile record is refused in one
line, that it draws thumbnails and completes a sketch from the command line.
"""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from safetensors.torch import load_file
from safetensors.torch import save as st_save

from sketchapp.core.checkpoint import read_checkpoint
from sketchapp.core.data.datasets import PairSet
from sketchapp.core.engine import CancelToken
from sketchapp.core.engines import REGISTRY, load_engine_model, open_engine
from sketchapp.core.errors import CheckpointError
from sketchapp.core.trainer import STATE_FILE

SIZE = 32
KINDS = sorted(REGISTRY)


def discs(count: int = 12, seed: int = 0) -> PairSet:
    """Coloured discs on white and their outlines."""
    rng = np.random.default_rng(seed)
    sketches = np.full((count, SIZE, SIZE), 255, np.uint8)
    images = np.full((count, SIZE, SIZE, 3), 255, np.uint8)
    for i in range(count):
        centre, radius = (int(rng.integers(12, 20)), int(rng.integers(12, 20))), int(rng.integers(7, 11))
        cv2.circle(images[i], centre, radius, tuple(int(v) for v in rng.integers(0, 220, 3)), -1)
        cv2.circle(sketches[i], centre, radius, 0, 1)
    return PairSet(sketches, images, [f"disc{i:02d}" for i in range(count)], info={"kind": "test", "sketch_style": "outline"})


def quick_settings(kind: str, **changes):
    spec = REGISTRY[kind]
    record = {**spec.new_model(SIZE, 8), "epochs": 2, "checkpoint_minutes": 60.0, "seed": 3, **spec.training.quick, **changes}
    return spec.train_settings.from_dict(record)


def run(kind: str, folder: Path, cancel_at: int | None = None, resume: bool = False) -> list:
    """The events of a quick training of ``kind`` into ``folder``, cancelled after step ``cancel_at``."""
    cancel = CancelToken()
    events = []
    for event in REGISTRY[kind].train(folder, discs(), quick_settings(kind), cancel=cancel, resume=resume):
        events.append(event)
        if event.step == cancel_at and event.kind not in ("start", "saved"):
            cancel.cancel()
    return events


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> dict[str, tuple[Path, list]]:
    """Each engine's uninterrupted quick run: its folder and events."""
    runs = {}
    for kind in KINDS:
        folder = tmp_path_factory.mktemp(kind) / "run"
        runs[kind] = (folder, run(kind, folder))
    return runs


@pytest.mark.parametrize("kind", KINDS)
def test_a_quick_run_goes_through_every_phase_and_leaves_a_model(trained, kind):
    folder, events = trained[kind]
    assert events[0].kind == "start" and events[-1].kind == "done"
    steps = [e.step for e in events if e.kind not in ("start", "epoch", "saved", "done")]
    assert steps == list(range(1, events[-1].steps + 1))
    assert (folder / "model.safetensors").is_file() and (folder / "settings.json").is_file()
    assert load_engine_model(folder / "model.safetensors").kind == kind


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("where", ["early", "late"])
def test_a_cancelled_run_resumes_to_exactly_the_uninterrupted_weights(trained, tmp_path, kind, where):
    straight, events = trained[kind]
    total = events[-1].steps
    stop = 2 if where == "early" else total - 1
    stopped = run(kind, tmp_path / "split", cancel_at=stop)
    assert stopped[-1].kind == "cancelled" and stopped[-1].step == stop
    resumed = run(kind, tmp_path / "split", resume=True)
    assert resumed[0].step == stop and resumed[-1].kind == "done" and resumed[-1].steps == total
    a, b = load_file(str(straight / STATE_FILE)), load_file(str(tmp_path / "split" / STATE_FILE))
    assert a.keys() == b.keys()
    for key in a:
        assert torch.equal(a[key], b[key]), key
    rows = (tmp_path / "split" / "losses.csv").read_text().splitlines()
    assert [int(line.split(",")[0]) for line in rows[1:]] == list(range(1, total + 1))


@pytest.mark.parametrize("kind", KINDS)
def test_a_hostile_record_is_refused_in_one_line_before_anything_is_built(trained, tmp_path, kind):
    metadata, tensors = read_checkpoint(trained[kind][0] / "model.safetensors")
    for architecture in ([1, 2], {**metadata["architecture"], "layers": 3}, {**metadata["architecture"], "gf": 10**7}):
        bad = tmp_path / "bad.safetensors"
        bad.write_bytes(st_save(tensors, metadata={"sketchapp": json.dumps({**metadata, "architecture": architecture})}))
        with pytest.raises(CheckpointError) as caught:
            load_engine_model(bad)
        assert "\n" not in str(caught.value)


@pytest.mark.parametrize("kind", KINDS)
def test_thumbnails_are_the_models_pictures_of_given_sketches(trained, kind):
    model = load_engine_model(trained[kind][0] / "model.safetensors")
    pictures = REGISTRY[kind].thumbnails(model, 3, discs(6).sketches)
    assert pictures.shape == (3, SIZE, SIZE, 3) and pictures.dtype == np.uint8
    assert np.array_equal(REGISTRY[kind].thumbnails(model, 3, discs(6).sketches), pictures)  # a preset's thumbnails stay put


@pytest.mark.parametrize("kind", KINDS)
def test_the_engine_completes_a_sketch_and_the_command_line_writes_it(trained, tmp_path, kind):
    from sketchapp.cli import main

    path = trained[kind][0] / "model.safetensors"
    engine = open_engine(path)
    snapshot = None
    for snapshot in engine.start(discs(1).sketches[0], None, REGISTRY[kind].settings()):
        pass
    assert snapshot is not None and snapshot.final and snapshot.images().shape[1:] == (SIZE, SIZE, 3)
    sketch = tmp_path / "sketch.png"
    cv2.imwrite(str(sketch), discs(1, seed=7).sketches[0])
    out = tmp_path / "out.png"
    assert main(["complete", str(sketch), "--model", str(path), "-o", str(out), "-q"]) == 0
    written = cv2.imread(str(out))
    assert written is not None and written.shape == (SIZE, SIZE, 3)


def test_a_record_that_names_no_engine_is_the_legacy_engines_and_that_engine_is_registered():
    from sketchapp.core.engines.kinds import LEGACY_KIND, recorded_kind

    assert LEGACY_KIND in REGISTRY
    assert recorded_kind({}) == LEGACY_KIND and recorded_kind({"engine": "pix2pix"}) == "pix2pix" and recorded_kind(None) == LEGACY_KIND
