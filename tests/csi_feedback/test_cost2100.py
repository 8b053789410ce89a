"""COST2100 as a data source of the feedback experiments: finding the files, slicing them,
one-line errors for bad files, and what the bit allocation does on them.

The tests read small slices of the shared set (``shared/data/cost2100`` beside the checkout);
without it they skip, saying so.
"""

from pathlib import Path

import numpy as np
import pytest
import scipy.io
import torch

import chanlab.experiments  # noqa: F401  (registers the experiments)
from chanlab.cli import main
from chanlab.core.errors import ConfigError, DataError
from chanlab.core.run import run_experiment
from chanlab.csi_feedback.data import COST2100_ENV_VAR, find_cost2100, load_cost2100_splits
from chanlab.csi_feedback.training import AllocationSchedule, FeedbackTraining, train_feedback
from chanlab.experiments.csi_feedback import _input_m

pytestmark = pytest.mark.usefixtures("one_thread")


_REPO = Path(__file__).resolve().parents[2]


def _shared() -> Path:
    """The shared indoor set. CI runs with ../shared beside the checkout, so there its absence is a
    failure; a checkout without any ../shared folder skips, saying so."""
    try:
        return find_cost2100()
    except DataError as exc:
        if (_REPO.parent / "shared").is_dir():
            pytest.fail(f"../shared is beside the checkout but its COST2100 set is not usable: {exc}")
        pytest.skip(f"no ../shared folder beside the checkout, so no COST2100 set ({exc})")


def _write(folder, tag="in", parts=("train", "val", "test"), n=6, value=None, shape=None):
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    for part in parts:
        ht = rng.uniform(0.49, 0.51, size=shape or (n, 2048)).astype(np.float32)
        if value is not None:
            ht[0, 0] = value
        scipy.io.savemat(folder / f"DATA_H{part}{tag}.mat", {"HT": ht})
    return folder


def test_the_shared_set_is_found_and_sliced():
    folder = _shared()
    assert folder.name == "indoor"
    sp = load_cost2100_splits(n_train=40, n_val=8, n_test=8)
    assert sp.train.shape == (40, 2, 32, 32) and sp.val.shape == (8, 2, 32, 32) and sp.test.shape == (8, 2, 32, 32)
    assert sp.train.dtype == torch.float32 and 0 <= float(sp.train.min()) and float(sp.train.max()) <= 1
    # sizes come from the files: asking for more than a file holds gives the whole file
    assert len(load_cost2100_splits(n_train=1, n_val=10**6, n_test=1).val) == 558


def test_a_folder_or_its_parent_and_the_environment_variable(tmp_path, monkeypatch):
    _write(tmp_path / "sets" / "indoor")
    _write(tmp_path / "sets" / "outdoor", tag="out")
    assert find_cost2100(tmp_path / "sets", "outdoor") == tmp_path / "sets" / "outdoor"
    assert find_cost2100(tmp_path / "sets" / "indoor") == tmp_path / "sets" / "indoor"
    monkeypatch.setenv(COST2100_ENV_VAR, str(tmp_path / "sets"))
    assert find_cost2100("", "indoor") == tmp_path / "sets" / "indoor"
    assert load_cost2100_splits(environment="outdoor").train.shape == (6, 2, 32, 32)


def _one_line(exc_info, *words):
    text = str(exc_info.value)
    assert "\n" not in text, text
    for w in words:
        assert w in text, text


def test_an_absent_outdoor_set_is_said_in_one_line(tmp_path):
    _write(tmp_path / "indoor")
    with pytest.raises(DataError) as e:
        find_cost2100(tmp_path, "outdoor")
    _one_line(e, "outdoor COST2100 set is absent", "only the indoor one is there")


@pytest.mark.parametrize("case, words", [
    ("missing split", ["missing DATA_Htestin.mat"]),
    ("wrong layout", ["2048 columns", "(6, 1024)"]),
    ("nan", ["NaN"]),
    ("outside [0, 1]", ["values in [0, 1]", "1.5"]),
    ("no folder", ["no such folder"]),
    ("unknown environment", ["expected indoor or outdoor"]),
])
def test_bad_files_give_one_line_errors(tmp_path, case, words):
    folder = tmp_path / "set"
    env = "indoor"
    if case == "missing split":
        _write(folder, parts=("train", "val"))
    elif case == "wrong layout":
        _write(folder, shape=(6, 1024))
    elif case == "nan":
        _write(folder, value=np.nan)
    elif case == "outside [0, 1]":
        _write(folder, value=1.5)
    elif case == "unknown environment":
        _write(folder)
        env = "rural"
    error = ConfigError if case == "unknown environment" else DataError
    with pytest.raises(error) as e:
        load_cost2100_splits(folder, env)
    _one_line(e, *words)


def test_the_cli_says_a_bad_set_in_one_line(tmp_path, capsys):
    _write(tmp_path / "set", value=np.nan)
    code = main(["run", "csi_feedback/table2", "--preset", "smoke", "--set", f"data.path={tmp_path / 'set'}",
                 "--out", str(tmp_path / "run")])
    err = capsys.readouterr().err.strip()
    assert code == 2 and err.startswith("chanlab: error:") and "\n" not in err and "NaN" in err, err


def test_m_at_the_papers_size_keeps_the_compression_ratio():
    assert _input_m(512, [2, 16, 16], True) == 128
    assert _input_m(512, [2, 32, 32], True) == 512
    assert _input_m(100, [2, 16, 16], False) == 100
    with pytest.raises(ConfigError, match="does not scale"):
        _input_m(3, [2, 16, 16], True)


def test_experiments_run_on_cost2100_with_sizes_from_the_files(tmp_path):
    _shared()
    sets = {"data.source": "cost2100", "data.n_train": 64, "data.n_val": 16, "data.n_test": 16}
    t2 = run_experiment("csi_feedback/table2", preset="smoke", out=tmp_path / "t2",
                        overrides=dict(sets, schemes=("nq", "proposed"))).results
    assert t2["shape"] == [2, 32, 32] and t2["data_source"].startswith("COST2100 indoor")
    dyn = run_experiment("csi_feedback/dynamic", preset="smoke", out=tmp_path / "dyn", overrides=sets).results
    # the files hold one subcarrier count: only the indoor/outdoor rows, and the result says why
    assert dyn["subcarriers"] == {} and "1024 subcarriers" in dyn["skipped"]
    assert set(dyn["environments"]) == {"indoor", "outdoor"}


def test_allocation_moves_bits_on_a_cost2100_slice_after_one_epoch(record_property):
    """On COST2100 the encoder outputs' ranges differ enough for Sec. III-A to move bits (on the
    generated InH CSI it moves none: tests/csi_feedback/test_ranges.py has the threshold)."""
    from chanlab.csi_feedback.model import FeedbackAutoencoder
    from chanlab.nn.csinet import make_autoencoder

    _shared()
    sp = load_cost2100_splits(n_train=512, n_val=64, n_test=1)
    torch.manual_seed(0)
    model = FeedbackAutoencoder(*make_autoencoder("csinet", 128, n_ant=32, n_delay=32, output="linear"))
    model.calibrate(sp.train)
    history = train_feedback(model, "proposed", 2, sp.train, sp.val,
                             FeedbackTraining(epochs=1, batch_size=64, alloc_samples=512))
    moves = history.allocation_moves[0]
    record_property("cost2100_allocation_moves_after_one_epoch", moves)
    print(f"COST2100 slice (512 CSI, M = 128, B = 2): {moves} bits moved after one epoch; "
          f"B_m in [{int(model.quantizer.bits.min())}, {int(model.quantizer.bits.max())}]")
    assert moves > 0
    assert int(model.quantizer.bits.sum()) == 128 * 2


def test_allocation_schedule_every_k_epochs_and_on_drift():
    every = AllocationSchedule(every=3)
    assert [e for e in range(9) if every.due(e)] == [2, 5, 8]
    drift = AllocationSchedule(drift=0.1)
    z = torch.randn(1000, 4, generator=torch.Generator().manual_seed(0))
    assert drift.drifted(z)                        # the first allocation always runs
    drift.ran(z)
    assert not drift.drifted(z * 1.05)             # every σ_m moved by 5 %
    assert drift.drifted(z * torch.tensor([1.0, 1.0, 1.2, 1.0]))   # one σ_m moved by 20 %
    restored = AllocationSchedule(drift=0.1)
    restored.load_state_dict(drift.state_dict())
    torch.testing.assert_close(restored.sigma_ref, drift.sigma_ref)
    fresh = AllocationSchedule(drift=0.1)
    fresh.load_state_dict(AllocationSchedule().state_dict())
    assert fresh.sigma_ref is None
    for bad in ({"every": 0}, {"every": 1.5}, {"drift": -0.1}, {"drift": float("nan")}):
        with pytest.raises(ConfigError):
            AllocationSchedule(**bad)
