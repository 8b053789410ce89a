"""The chanlab command: happy paths and one-line errors with a non-zero exit."""

import json
import subprocess
import sys

import h5py
import numpy as np
import pytest
import scipy.io

from chanlab.channels.store import write_dataset
from chanlab.cli import main


def _one_line_error(capsys, argv, *words):
    code = main(argv)
    err = capsys.readouterr().err.strip()
    assert code == 2
    assert err.startswith("chanlab: error:") and "\n" not in err, err
    for w in words:
        assert w in err, err
    return err


def test_list(capsys):
    assert main(["list"]) == 0
    assert "channels/demo" in capsys.readouterr().out


def test_unknown_experiment(capsys):
    _one_line_error(capsys, ["run", "channels/demoo"], "unknown experiment", "did you mean 'channels/demo'")


def test_unknown_set_key(capsys):
    _one_line_error(capsys, ["run", "channels/demo", "--preset", "smoke", "--set", "data.nmu=3"],
                    "unknown config key 'data.nmu'", "valid keys:", "data.num")


def test_wrong_type_set(capsys):
    _one_line_error(capsys, ["run", "channels/demo", "--set", "data.num=many"], "data.num", "expected an integer")


def test_mat_wrong_key_and_shape(tmp_path, capsys):
    bad_key = tmp_path / "wrong_key.mat"
    scipy.io.savemat(bad_key, {"H": np.zeros((4, 2048))})
    _one_line_error(capsys, ["data", "info", str(bad_key)], "'HT'", "keys present: ['H']")
    bad_shape = tmp_path / "wrong_shape.mat"
    scipy.io.savemat(bad_shape, {"HT": np.zeros((4, 1024))})
    _one_line_error(capsys, ["data", "info", str(bad_shape)], "2048 columns", "(4, 1024)")
    good = tmp_path / "DATA_Htestin.mat"
    scipy.io.savemat(good, {"HT": np.full((3, 2048), 0.5)})
    assert main(["data", "info", str(good)]) == 0
    assert "cost2100" in capsys.readouterr().out


def test_nan_channels(tmp_path, capsys):
    path = tmp_path / "nan.h5"
    write_dataset(path, {"H": np.ones((4, 8, 64), np.complex64)}, generator="test", params={}, seed=0)
    with h5py.File(path, "r+") as f:
        f["H"][0, 0, 0] = np.nan
        del f["H"].attrs["chanlab_checksum"]  # else the edit reads as damage (the checksum check comes first)
    _one_line_error(capsys, ["run", "channels/demo", "--preset", "smoke", "--set", f"data.path={path}",
                             "--out", str(tmp_path / "run")], "NaN")
    nan_mat = tmp_path / "mu.mat"
    h = np.ones((2, 3, 4), np.complex64)
    h[1, 1, 1] = np.nan
    scipy.io.savemat(nan_mat, {"H_mu_test": h})
    _one_line_error(capsys, ["data", "info", str(nan_mat)], "NaN")


def test_missing_file(capsys, tmp_path):
    _one_line_error(capsys, ["data", "info", str(tmp_path / "none.h5")])


def test_data_generate_then_cache(tmp_path, capsys):
    out = tmp_path / "x.h5"
    argv = ["data", "generate", "cdl", "--model", "C", "--n-ant", "8", "--n-sc", "64", "--n-delay", "16",
            "--num", "10", "--out", str(out)]
    assert main(argv) == 0
    assert capsys.readouterr().out.startswith("generated:")
    assert main(["data", "info", str(out)]) == 0
    info = capsys.readouterr().out
    assert "H_ad: shape (10, 8, 16), dtype complex64" in info
    assert "generator: chanlab.data.cdl" in info and '"n_delay": 16' in info and "seed: 0" in info
    assert main(argv) == 0
    assert capsys.readouterr().out.startswith("served from cache:")
    _one_line_error(capsys, argv[:3] + ["--n-ant", "0", "--num", "2"], "n_ant")


def test_data_generate_cellfree(tmp_path, capsys):
    out = tmp_path / "cf.h5"
    assert main(["data", "generate", "cellfree", "--num", "3", "--n-aps", "4", "--n-ant", "2", "--n-users", "3",
                 "--out", str(out)]) == 0
    with h5py.File(out) as f:
        assert f["h_hat"].shape == (3, 3, 4, 2) and f["eps"].shape == (3, 3, 4)


def test_run_and_verify_smoke(tmp_path, capsys):
    assert main(["run", "channels/demo", "--preset", "smoke", "--out", str(tmp_path / "r"), "--device", "cpu"]) == 0
    out = capsys.readouterr().out
    assert "channels.CDL-A.energy_kept" in out and "sum_rate.zf" in out
    assert json.loads((tmp_path / "r" / "results.json").read_text())["setup"]["n_ant"] == 8
    code = main(["verify", "channels/demo", "--preset", "smoke", "--out", str(tmp_path / "v")])
    out = capsys.readouterr().out
    assert "[PASS] (invariant) The angular-delay transform is unitary" in out
    assert code == (0 if "[FAIL]" not in out and "[TIE]" not in out else 1)


def test_console_script_prints_no_traceback(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "chanlab.cli", "run", "no/such"], capture_output=True, text=True)
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr and proc.stderr.strip().count("\n") == 0


@pytest.mark.parametrize("argv", [["run"], ["bogus"], ["data", "generate", "cdl", "--model", "Z"]])
def test_usage_errors_are_one_line(capsys, argv):
    with pytest.raises(SystemExit) as exc:
        main(argv)
    err = capsys.readouterr().err.strip()
    assert exc.value.code == 2 and err.startswith("chanlab: error:") and "\n" not in err


def test_demo_runs_the_gridization_experiment(tmp_path, capsys):
    from chanlab.cli import DEMO_EXPERIMENT, main

    assert DEMO_EXPERIMENT == "gridization/synthetic"
    assert main(["demo", "--preset", "smoke", "--out", str(tmp_path / "demo"), "--device", "cpu"]) == 0
    assert "gridization/synthetic" in capsys.readouterr().out
    assert (tmp_path / "demo" / "results.json").is_file()
