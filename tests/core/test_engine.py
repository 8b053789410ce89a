import math
import signal

import pytest
import torch

from chanlab.core.checkpoint import Checkpointer
from chanlab.core.engine import (SimulatedKill, Trainer, batch_indices, constant, exponential, kill_after_epochs,
                                 warmup_cosine)
from chanlab.core.errors import CheckpointError, ConfigError

X = torch.linspace(-1, 1, 37)[:, None]
Y = 3 * X - 0.5 + 0.1 * torch.sin(7 * X)


def _trainer(folder=None, *, epochs=6, mode="min", validate=True, every_epochs=2, interrupt_at=None,
             dropout=True, schedule=None):
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(1, 8), torch.nn.Dropout(0.2 if dropout else 0.0),
                                torch.nn.Tanh(), torch.nn.Linear(8, 1))
    opt = torch.optim.Adam(model.parameters(), lr=0.05)
    calls = [0]

    def step(idx):
        calls[0] += 1
        if interrupt_at is not None and calls[0] == interrupt_at:
            signal.raise_signal(signal.SIGINT)           # a real Ctrl-C in the middle of an epoch
        loss = (model(X[idx]) - Y[idx]).square().mean()
        with torch.no_grad():
            return loss, {"abs": float((model(X[idx]) - Y[idx]).abs().mean())}

    def val():
        model.eval()
        with torch.no_grad():
            err = float((model(X) - Y).square().mean())
        return {"val_loss": err, "val_neg": -err}

    ck = Checkpointer(folder, "stage.pt", every_epochs=every_epochs, every_seconds=None) if folder else None
    return Trainer(model, opt, num_samples=len(X), batch_size=8, epochs=epochs, step=step,
                   validate=val if validate else None, monitor="val_loss" if mode == "min" else "val_neg",
                   mode=mode, schedule=schedule or exponential(0.3, epochs), seed=5, checkpoint=ck, desc="t")


def _same(a: Trainer, b: Trainer):
    for (k, va), vb in zip(a.model.state_dict().items(), b.model.state_dict().values()):
        assert torch.equal(va, vb), k
    assert a.history.to_dict() == b.history.to_dict()


def test_batches_from_the_generator_and_a_minimum_batch():
    order = torch.arange(65)
    assert [len(b) for b in batch_indices(order, 64, 2)] == [65]
    assert [len(b) for b in batch_indices(order, 64, 1)] == [64, 1]
    assert [len(b) for b in batch_indices(order, None, 2)] == [65]
    assert [len(b) for b in batch_indices(order, 20, 2)] == [20, 20, 20, 5]


def test_batchnorm_models_never_get_a_batch_of_one():
    model = torch.nn.Sequential(torch.nn.Linear(1, 4), torch.nn.BatchNorm1d(4), torch.nn.Linear(4, 1))
    sizes = []

    def step(idx):
        sizes.append(len(idx))
        return model(X[idx]).square().mean()

    Trainer(model, torch.optim.SGD(model.parameters(), lr=0.01), num_samples=33, batch_size=32, epochs=2,
            step=step).fit()
    assert sizes == [33, 33]
    with pytest.raises(ConfigError, match="BatchNorm"):
        Trainer(model, torch.optim.SGD(model.parameters(), lr=0.01), num_samples=1, batch_size=32, epochs=1,
                step=step)


def test_schedules():
    assert constant()(3, 1, 10) == 1.0
    ex = exponential(0.1, 5)
    assert ex(0, 0, 3) == 1.0 and math.isclose(ex(4, 2, 3), 0.1)
    wc = warmup_cosine(1, 4, min_ratio=0.1)
    assert wc(0, 0, 10) == pytest.approx(0.1)           # first warm-up step: 1/10
    assert wc(0, 9, 10) == pytest.approx(1.0)
    assert wc(3, 9, 10) == pytest.approx(0.1 + 0.45 * (1 + math.cos(math.pi * 29 / 30)))
    with pytest.raises(ConfigError):
        exponential(0.0, 3)


def test_history_best_weights_and_lr_hook():
    t = _trainer()
    h = t.fit()
    assert len(h["train_loss"]) == 6 and len(h["train_abs"]) == 6 and len(h["val_loss"]) == 6
    assert h.best_epoch == min(range(6), key=lambda e: h["val_loss"][e])
    assert h["lr"][0] == pytest.approx(0.05) and h["lr"][-1] == pytest.approx(0.015)
    assert not t.model.training
    with torch.no_grad():
        assert float((t.model(X) - Y).square().mean()) == pytest.approx(h["val_loss"][h.best_epoch])


def test_max_mode_keeps_the_largest_value():
    h = _trainer(mode="max").fit()
    assert h.best_epoch == max(range(6), key=lambda e: h["val_neg"][e])


def test_without_validation_the_last_weights_stay():
    h = _trainer(validate=False).fit()
    assert h.best_epoch == 5 and "val_loss" not in h.metrics


@pytest.mark.parametrize("killed_after", [1, 2, 3, 5])
def test_a_run_killed_after_any_epoch_resumes_to_the_uninterrupted_run(tmp_path, killed_after):
    full = _trainer(tmp_path / "full")
    full.fit()
    with pytest.raises(SimulatedKill), kill_after_epochs(killed_after):
        _trainer(tmp_path / "killed").fit()
    resumed = _trainer(tmp_path / "killed")
    assert resumed.start_epoch == killed_after // 2 * 2         # the last cadence save
    resumed.fit()
    _same(full, resumed)


def test_ctrl_c_saves_inside_the_epoch_and_resumes_exactly(tmp_path):
    full = _trainer(tmp_path / "full", every_epochs=None)
    full.fit()
    with pytest.raises(KeyboardInterrupt):
        _trainer(tmp_path / "stopped", every_epochs=None, interrupt_at=13).fit()   # 5 batches/epoch: epoch 3
    resumed = _trainer(tmp_path / "stopped", every_epochs=None)
    assert resumed.resumed and resumed.start_epoch == 2
    resumed.fit()
    _same(full, resumed)
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


def test_only_the_latest_state_and_the_best_weights_are_kept(tmp_path):
    t = _trainer(tmp_path, every_epochs=1)
    h = t.fit()
    best = "stage.best-%d.pt" % h.best_epoch
    assert sorted(p.name for p in tmp_path.iterdir()) == [best, best + ".sha256", "stage.pt", "stage.pt.sha256"]
    again = _trainer(tmp_path)
    assert again.start_epoch == 6
    again.fit()                                           # nothing left to run: loads the best weights
    _same(t, again)


def test_missing_best_weights_name_the_file_to_delete(tmp_path):
    h = _trainer(tmp_path).fit()
    (tmp_path / f"stage.best-{h.best_epoch}.pt").unlink()
    with pytest.raises(CheckpointError, match="delete .*stage.pt"):
        _trainer(tmp_path)


def _damage(path):
    data = bytearray(path.read_bytes())
    mid = len(data) // 2
    data[mid:mid + 16] = bytes(b ^ 0xFF for b in data[mid:mid + 16])
    path.write_bytes(bytes(data))


def test_damaged_checkpoints_name_the_file_and_say_deleting_restarts_the_stage(tmp_path):
    h = _trainer(tmp_path).fit()
    best = tmp_path / f"stage.best-{h.best_epoch}.pt"
    _damage(best)
    with pytest.raises(CheckpointError, match=r"stage\.best-\d+\.pt: damaged.*delete it and .*stage\.pt "
                                              r"to restart this training stage"):
        _trainer(tmp_path)
    _damage(tmp_path / "stage.pt")
    with pytest.raises(CheckpointError, match=r"stage\.pt: damaged.*delete it to restart this training stage"):
        _trainer(tmp_path)
    (tmp_path / "stage.pt").unlink()                      # what the message says: the stage starts again
    again = _trainer(tmp_path)
    assert not again.resumed and again.start_epoch == 0
    again.fit()


def test_bad_arguments_are_config_errors():
    model = torch.nn.Linear(1, 1)
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    with pytest.raises(ConfigError, match="mode"):
        Trainer(model, opt, num_samples=4, batch_size=2, epochs=1, step=lambda i: None, mode="best")
    with pytest.raises(ConfigError, match="batch_size"):
        Trainer(model, opt, num_samples=4, batch_size=0, epochs=1, step=lambda i: None)
    with pytest.raises(ConfigError, match="scalar loss"):
        Trainer(model, opt, num_samples=4, batch_size=2, epochs=1, step=lambda i: 1.0).fit()
