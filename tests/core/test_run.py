import json
from dataclasses import dataclass

import pytest
import torch

from chanlab.core.errors import ConfigError
from chanlab.core.registry import Claim, Experiment, get_experiment, register
from chanlab.core.run import check_claims, format_results_table, run_experiment


@dataclass(frozen=True)
class ToyConfig:
    steps: int = 4
    lr: float = 0.1


def _run_toy(cfg: ToyConfig, ctx):
    """Fits w to 3 by gradient steps, checkpointing each step; crashes once if asked."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ck = ctx.checkpoint("train")
    state = ck.load_latest()
    w = torch.zeros(1) if state is None else state["w"]
    start = 0 if state is None else state["step"]
    for step in range(start, cfg.steps):
        w = w - cfg.lr * 2 * (w - 3)
        ck.save({"w": w, "step": step + 1})
        if _CRASH_AT.get("step") == step + 1:
            _CRASH_AT.clear()
            raise KeyboardInterrupt
    fig = plt.figure()
    ctx.save_figure(fig, "toy")
    return {"w": float(w), "start": start, "nested": {"values": [1.0, 2.0]}}


_CRASH_AT: dict = {}

TOY = register(Experiment(
    name="test/toy", summary="toy", config=ToyConfig, run=_run_toy,
    presets={"smoke": {"steps": 2}, "quick": {}, "paper": {"steps": 100}},
    claims=(Claim("w moves towards 3", lambda r: (r["w"] > 0, f"w = {r['w']:.3f}")),
            Claim("broken claim", lambda r: (r["missing"] > 0, "")))))


def test_run_writes_folder(tmp_path):
    out = tmp_path / "run"
    res = run_experiment("test/toy", preset="smoke", overrides=["lr=0.5"], out=out, device="cpu", seed=3)
    assert res.results["w"] == pytest.approx(3.0)
    record = json.loads((out / "config.json").read_text())
    assert record["config"] == {"steps": 2, "lr": 0.5} and record["seed"] == 3 and record["preset"] == "smoke"
    assert json.loads((out / "results.json").read_text())["nested"]["values"] == [1.0, 2.0]
    assert (out / "figures" / "toy.png").stat().st_size > 0
    assert "run test/toy" in (out / "log.txt").read_text()
    with pytest.raises(ConfigError, match="already holds a run"):
        run_experiment("test/toy", preset="smoke", out=out, device="cpu")


def test_killed_run_resumes_from_checkpoint(tmp_path):
    out = tmp_path / "run"
    _CRASH_AT["step"] = 2
    with pytest.raises(KeyboardInterrupt):
        run_experiment("test/toy", preset="quick", out=out, device="cpu")
    res = run_experiment("test/toy", preset="quick", out=out, device="cpu", resume=True)
    assert res.results["start"] == 2
    fresh = run_experiment("test/toy", preset="quick", out=tmp_path / "fresh", device="cpu")
    assert res.results["w"] == pytest.approx(fresh.results["w"])


def test_resume_checks_config(tmp_path):
    out = tmp_path / "run"
    run_experiment("test/toy", preset="smoke", out=out, device="cpu")
    with pytest.raises(ConfigError, match="holds a run with other settings: preset: 'smoke' in the run, 'quick' "
                                          "given; steps: 2 in the run, 4 given"):
        run_experiment("test/toy", preset="quick", out=out, device="cpu", resume=True)
    with pytest.raises(ConfigError, match="holds no run"):
        run_experiment("test/toy", preset="smoke", out=tmp_path / "empty", device="cpu", resume=True)
    with pytest.raises(ConfigError, match="holds a run of 'test/toy', not 'test/other'"):
        run_experiment("test/other", out=out, device="cpu", resume=True)
    with pytest.raises(ConfigError, match="--resume: name the run folder"):
        run_experiment("test/toy", device="cpu", resume=True)


def test_resume_by_folder_alone_keeps_preset_overrides_and_seed(tmp_path):
    out = tmp_path / "run"
    _CRASH_AT["step"] = 2
    with pytest.raises(KeyboardInterrupt):
        run_experiment("test/toy", preset="paper", overrides=["lr=0.25", "steps=5"], out=out, device="cpu", seed=3)
    log = (out / "log.txt").read_text()
    assert "interrupted" in log and f"chanlab run test/toy --out {out} --resume" in log
    res = run_experiment(out=out, device="cpu", resume=True)          # no name, preset, overrides or seed
    assert res.results["start"] == 2 and res.experiment.name == "test/toy"
    record = json.loads((out / "config.json").read_text())
    assert record["preset"] == "paper" and record["overrides"] == ["lr=0.25", "steps=5"] and record["seed"] == 3
    fresh = run_experiment("test/toy", preset="paper", overrides=["lr=0.25", "steps=5"], out=tmp_path / "fresh",
                           device="cpu", seed=3)
    assert res.results == dict(fresh.results, start=2)


def test_resume_accepts_the_same_settings_and_names_each_difference(tmp_path):
    out = tmp_path / "run"
    _CRASH_AT["step"] = 1
    with pytest.raises(KeyboardInterrupt):
        run_experiment("test/toy", preset="smoke", overrides=["lr=0.25"], out=out, device="cpu", seed=3)
    with pytest.raises(ConfigError) as exc:
        run_experiment("test/toy", preset="smoke", overrides=["lr=0.5", "steps=3"], out=out, device="cpu", seed=4,
                       resume=True)
    message = str(exc.value)
    assert "seed: 3 in the run, 4 given" in message and "lr: 0.25 in the run, 0.5 given" in message
    assert "steps: 2 in the run, 3 given" in message and "preset:" not in message
    assert "leave out --preset, --set and --seed" in message
    # retyping the run's own settings (or a part of them) is fine
    res = run_experiment("test/toy", preset="smoke", overrides=["lr=0.25"], out=out, device="cpu", seed=3,
                         resume=True)
    assert res.results["start"] == 1


class _Failing:
    error: BaseException | None = None
    write_first = False


@dataclass(frozen=True)
class FailConfig:
    n: int = 1


def _run_failing(cfg, ctx):
    if _Failing.write_first:
        (ctx.out / "partial.txt").write_text("something")
    raise _Failing.error


register(Experiment(name="test/failing", summary="fails", config=FailConfig, run=_run_failing,
                    presets={"smoke": {}, "quick": {}, "paper": {}}))


def test_config_error_before_any_output_leaves_no_folder(tmp_path):
    _Failing.error, _Failing.write_first = ConfigError("n: the experiment rejects it"), False
    out = tmp_path / "runs" / "deep" / "run"
    with pytest.raises(ConfigError, match="rejects it"):
        run_experiment("test/failing", out=out, device="cpu")
    assert not (tmp_path / "runs").exists()          # the folders this run made are gone again
    (tmp_path / "mine").mkdir()
    with pytest.raises(ConfigError):
        run_experiment("test/failing", out=tmp_path / "mine", device="cpu")
    assert (tmp_path / "mine").is_dir()               # a folder that was there stays
    with pytest.raises(ConfigError, match="unknown config key 'nn'"):
        run_experiment("test/failing", overrides=["nn=2"], out=tmp_path / "bad", device="cpu")
    assert not (tmp_path / "bad").exists()            # overrides are checked before any folder is made


def test_errors_after_output_are_logged_with_traceback(tmp_path):
    _Failing.error, _Failing.write_first = ConfigError("late config error"), True
    with pytest.raises(ConfigError):
        run_experiment("test/failing", out=tmp_path / "a", device="cpu")
    log = (tmp_path / "a" / "log.txt").read_text()
    assert "run failed: ConfigError: late config error" in log and "Traceback" in log
    _Failing.error, _Failing.write_first = RuntimeError("boom"), False
    with pytest.raises(RuntimeError):
        run_experiment("test/failing", out=tmp_path / "b", device="cpu")
    log = (tmp_path / "b" / "log.txt").read_text()
    assert "run failed: RuntimeError: boom" in log and "Traceback" in log and "_run_failing" in log


def test_registry_errors():
    with pytest.raises(ConfigError, match=r"unknown experiment 'test/toyy' \(did you mean 'test/toy'\?\)"):
        get_experiment("test/toyy")
    with pytest.raises(ConfigError, match="unknown preset 'huge'"):
        TOY.make_config("huge")
    with pytest.raises(ConfigError, match="presets .* missing"):
        register(Experiment(name="test/nopresets", summary="", config=ToyConfig, run=_run_toy, presets={"quick": {}}))


def test_claims_and_table():
    verdicts = check_claims(TOY.claims, {"w": 1.0})
    assert [v.passed for v in verdicts] == [True, False]
    assert "nothing to check" in verdicts[1].measured   # a missing key is a FAIL with the reason
    table = format_results_table({"a": 1.23456, "b": {"c": [1, 2]}})
    assert "a" in table and "b.c" in table and "1.235" in table
