"""Data-parallel training: 2 gloo processes follow the 1-process run with the same global batch."""

import os
import socket

import pytest
import torch
import torch.multiprocessing as mp

from chanlab.core.distributed import shard, world
from chanlab.core.engine import Trainer


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _train(out_path: str | None = None) -> dict:
    """A small MLP on a fixed regression set, batch 10 of 26 samples (uneven last batches), Adam."""
    torch.manual_seed(0)
    x, y = torch.randn(26, 5), torch.randn(26, 1)
    model = torch.nn.Sequential(torch.nn.Linear(5, 8), torch.nn.Tanh(), torch.nn.Linear(8, 1))
    opt = torch.optim.Adam(model.parameters(), lr=0.05)

    def step(idx):
        return ((model(x[idx]) - y[idx]) ** 2).mean()

    history = Trainer(model, opt, num_samples=26, batch_size=10, epochs=3, step=step, seed=1).fit()
    state = {k: v.detach().clone() for k, v in model.state_dict().items()}
    if out_path is not None:
        torch.save({"state": state, "loss": history["train_loss"]}, out_path)
    return {"state": state, "loss": history["train_loss"]}


def _worker(rank: int, size: int, port: int, out_dir: str) -> None:
    import torch.distributed as dist

    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    torch.set_num_threads(1)
    dist.init_process_group("gloo", rank=rank, world_size=size)
    try:
        _train(os.path.join(out_dir, f"rank{rank}.pt"))
    finally:
        dist.destroy_process_group()


def test_two_gloo_processes_follow_the_one_process_run(tmp_path):
    one = _train()
    port = _free_port()
    mp.spawn(_worker, args=(2, port, str(tmp_path)), nprocs=2, join=True)
    for rank in (0, 1):
        got = torch.load(tmp_path / f"rank{rank}.pt", weights_only=True)
        for k, v in one["state"].items():
            torch.testing.assert_close(got["state"][k], v, rtol=1e-5, atol=1e-6)
        assert got["loss"] == pytest.approx(one["loss"], rel=1e-5)


def test_outside_a_process_group_nothing_changes():
    idx = torch.arange(7)
    assert world() == (0, 1) and torch.equal(shard(idx), idx)


def test_chanlab_run_nproc_2_writes_one_folder_from_rank_0(tmp_path):
    """`chanlab run --nproc 2` starts two ranks through torchrun; rank 0 alone writes the run folder
    (config, results, checkpoints), and the run's folder can be checked like any other."""
    import json
    import subprocess
    import sys

    out = tmp_path / "run"
    env = dict(os.environ, OMP_NUM_THREADS="1", CHANLAB_PROGRESS="0")
    proc = subprocess.run([sys.executable, "-m", "chanlab", "run", "csi_feedback/table2", "--preset", "smoke",
                           "--set", "schemes=nq", "--out", str(out), "--nproc", "2"],
                          capture_output=True, text=True, env=env, timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    results = json.loads((out / "results.json").read_text())
    assert results["points"][0]["methods"]["nq"]["stream_bits"] > 0
    assert sorted(p.name for p in (out / "checkpoints").glob("*.pt")) == ["t-nq-16x2.best-0.pt", "t-nq-16x2.pt"]
    assert proc.stdout.count("run folder:") == 1                 # rank 1 prints nothing


def test_nproc_must_be_positive(capsys):
    from chanlab.cli import main

    assert main(["run", "channels/demo", "--preset", "smoke", "--nproc", "0"]) == 2
    assert "--nproc" in capsys.readouterr().err
