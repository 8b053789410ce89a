import os

import numpy as np
import pytest
import torch

from chanlab.core.atomic import atomic_path, atomic_write_json
from chanlab.core.checkpoint import Checkpointer, load_checkpoint, save_checkpoint
from chanlab.core.errors import CheckpointError


def test_save_load_round_trip(tmp_path):
    model = torch.nn.Linear(3, 2)
    path = save_checkpoint(tmp_path / "ck.pt", {"model": model.state_dict(), "step": 7})
    state = load_checkpoint(path)
    assert state["step"] == 7
    assert torch.equal(state["model"]["weight"], model.weight.detach())


def test_load_refuses_pickled_code(tmp_path):
    class Evil:
        def __reduce__(self):
            return (os.system, ("echo owned",))

    path = tmp_path / "evil.pt"
    torch.save({"x": Evil()}, path)
    with pytest.raises(CheckpointError, match="cannot be read safely"):
        load_checkpoint(path)


def test_missing_and_corrupt(tmp_path):
    with pytest.raises(CheckpointError, match="no such file"):
        load_checkpoint(tmp_path / "nope.pt")
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"not a checkpoint")
    with pytest.raises(CheckpointError):
        load_checkpoint(bad)


def test_atomic_write_leaves_no_partial_file(tmp_path):
    target = tmp_path / "out.json"
    atomic_write_json(target, {"a": 1})
    with pytest.raises(RuntimeError):
        with atomic_path(target) as tmp:
            tmp.write_text("half")
            raise RuntimeError("killed")
    assert target.read_text().strip().startswith("{")
    assert [p.name for p in tmp_path.iterdir()] == ["out.json"]


def test_checkpointer_resumes_rng(tmp_path):
    ck = Checkpointer(tmp_path)
    assert ck.load_latest() is None
    torch.manual_seed(1)
    np.random.seed(1)
    ck.save({"step": 3})
    expected = (torch.rand(3), np.random.rand(3))
    torch.manual_seed(99)
    np.random.seed(99)
    state = ck.load_latest()
    assert state == {"step": 3}
    assert torch.equal(torch.rand(3), expected[0])
    assert np.array_equal(np.random.rand(3), expected[1])
