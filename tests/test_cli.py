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
    out = capsys.readouterr().out
    assert "gridization/synthetic" in out and "against the paper" in out and "--preset quick" in out
    assert "(paper) CSG-AE has a lower sample-mean NMSE" in out
    assert (tmp_path / "demo" / "results.json").is_file()


# ----- resume by folder, interruptions -------------------------------------------------------------

def _without_timings(value):
    """results.json without wall-clock timings (the only numbers two identical runs differ in)."""
    if isinstance(value, dict):
        return {k: _without_timings(v) for k, v in value.items() if k != "seconds"}
    if isinstance(value, list):
        return [_without_timings(v) for v in value]
    return value


@pytest.fixture(scope="module")
def uninterrupted_demo(tmp_path_factory):
    out = tmp_path_factory.mktemp("demo") / "full"
    assert main(["run", "gridization/synthetic", "--preset", "smoke", "--seed", "1", "--out", str(out),
                 "--device", "cpu"]) == 0
    return _without_timings(json.loads((out / "results.json").read_text()))


def _ctrl_c_at_step(monkeypatch, n):
    """The n-th training step (across every Trainer) gets a Ctrl-C: the engine finishes the batch,
    saves and raises KeyboardInterrupt, as on a real first Ctrl-C."""
    import signal

    from chanlab.core import engine

    calls = {"n": 0}
    step = engine.Trainer._run_step

    def run_step(self, idx):
        calls["n"] += 1
        if calls["n"] == n:
            signal.raise_signal(signal.SIGINT)
        return step(self, idx)

    monkeypatch.setattr(engine.Trainer, "_run_step", run_step)


@pytest.mark.parametrize("how", ["ctrl-c", "kill"])
def test_interrupted_demo_resumes_by_folder_alone(tmp_path, capsys, monkeypatch, uninterrupted_demo, how):
    from chanlab.core.engine import SimulatedKill, kill_after_epochs

    out = tmp_path / "demo"
    argv = ["demo", "--preset", "smoke", "--seed", "1", "--out", str(out), "--device", "cpu"]
    if how == "ctrl-c":
        _ctrl_c_at_step(monkeypatch, 4)
        assert main(argv) == 130
        err = capsys.readouterr().err.strip()
        assert err == (f"chanlab: interrupted; continue with: chanlab run gridization/synthetic --out {out} --resume "
                       f"--device cpu")
        assert "interrupted (training stopped" in (out / "log.txt").read_text()
        assert any((out / "checkpoints").glob("*.pt"))     # the engine saved on the Ctrl-C
        monkeypatch.undo()
    else:
        # a process killed after the first epoch of the first training stage: the smoke stages run
        # 2 epochs, under the checkpointer's 10-epoch cadence, so nothing was saved yet
        with pytest.raises(SimulatedKill), kill_after_epochs(1):
            main(argv)
    assert not (out / "results.json").exists()
    # flags that disagree with the stored run are refused, naming each key with both values
    _one_line_error(capsys, ["run", "--out", str(out), "--resume", "--seed", "2", "--set", "training.hidden=8"],
                    "seed: 1 in the run, 2 given", "training.hidden: 16 in the run, 8 given")
    assert main(["run", "--out", str(out), "--resume", "--device", "cpu"]) == 0
    capsys.readouterr()
    assert _without_timings(json.loads((out / "results.json").read_text())) == uninterrupted_demo
    assert "resume=True" in (out / "log.txt").read_text()


def test_run_without_name_needs_resume(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["run", "--out", "somewhere"])
    assert exc.value.code == 2 and "required: name" in capsys.readouterr().err
    _one_line_error(capsys, ["run", "--resume"], "--resume: name the run folder")


# ----- overrides checked before anything runs -------------------------------------------------------

def test_bad_override_values_are_refused_before_a_folder_is_made(tmp_path, capsys):
    out = tmp_path / "runs" / "x"
    _one_line_error(capsys, ["run", "channels/demo", "--preset", "smoke", "--set", "data.models=A,Z", "--out",
                             str(out)], "data.models: 'Z' not allowed; choose from A, B, C, D, E")
    _one_line_error(capsys, ["run", "channels/demo", "--preset", "smoke", "--set", "rates.snr_db=0,loud", "--out",
                             str(out)], "rates.snr_db[1]: expected a number")
    _one_line_error(capsys, ["run", "gridization/synthetic", "--preset", "smoke", "--set", "baselines=kmeans-z",
                             "--out", str(out)], "baselines: 'kmeans-z' not allowed", "kmeans-x")
    assert not (tmp_path / "runs").exists()


def test_comma_list_override_runs(tmp_path, capsys):
    out = tmp_path / "r"
    assert main(["run", "channels/demo", "--preset", "smoke", "--set", "data.models=B,E", "--set", "data.num=4",
                 "--out", str(out), "--device", "cpu"]) == 0
    results = json.loads((out / "results.json").read_text())
    assert sorted(results["channels"]) == ["CDL-B", "CDL-E"]
    assert json.loads((out / "config.json").read_text())["config"]["data"]["models"] == ["B", "E"]


# ----- piping, start-up -----------------------------------------------------------------------------

def _pipe_into_head(args, tmp_path):
    import shlex

    err = tmp_path / "stderr.txt"
    cmd = f"{shlex.quote(sys.executable)} -m chanlab.cli {' '.join(map(shlex.quote, args))} 2>{err} | head -n1"
    proc = subprocess.run(["bash", "-c", cmd], capture_output=True, text=True, timeout=300)
    return proc.stdout, err.read_text()


def test_piping_into_head_ends_quietly(tmp_path):
    out, err = _pipe_into_head(["list"], tmp_path)
    assert out.startswith("EXPERIMENT") and err == ""
    # far more output than a pipe holds, so the writer surely meets the closed pipe
    path = tmp_path / "big.h5"
    write_dataset(path, {"H": np.ones((2, 2), np.complex64)}, generator="test",
                  params={f"p{i}": "x" * 1000 for i in range(2000)}, seed=0)
    out, err = _pipe_into_head(["data", "info", str(path)], tmp_path)
    assert out.startswith("file:") and err == "", err


def test_help_and_list_import_no_torch():
    code = ("import sys\n"
            "import chanlab.cli as cli\n"
            "cli.build_parser()\n"
            "assert cli.main(['list']) == 0\n"
            "for argv in (['--help'], ['run', '--help'], ['data', 'generate', 'cdl', '--help']):\n"
            "    try:\n"
            "        cli.main(argv)\n"
            "    except SystemExit:\n"
            "        pass\n"
            "heavy = sorted(m for m in sys.modules if m.split('.')[0] in ('torch', 'numpy', 'scipy', 'h5py', 'sionna'))\n"
            "assert not heavy, heavy\n")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert "channels/demo" in proc.stdout and "--n-delay" in proc.stdout
