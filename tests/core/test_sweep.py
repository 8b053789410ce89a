"""Sweeps: planning, the local backend (skip, resume, retry), verdicts over seeds, the Ray backend."""

import json
import shutil

import pytest

import chanlab.experiments  # noqa: F401  (registers the experiments)
from chanlab.cli import main
from chanlab.core.claims import ClaimVerdict
from chanlab.core.errors import ConfigError
from chanlab.core.sweep import _combine, parse_grid, parse_seeds, plan_sweep, run_state, run_sweep

pytestmark = pytest.mark.usefixtures("one_thread")
DEMO = "channels/demo"


def test_seeds_and_grid_parse_and_refuse():
    assert parse_seeds("0-4") == [0, 1, 2, 3, 4] and parse_seeds("0-2,7,1") == [0, 1, 2, 7]
    for bad in ("", "a", "3-1", "-2"):
        with pytest.raises(ConfigError, match="--seeds"):
            parse_seeds(bad)
    assert parse_grid([]) == [{}]
    assert parse_grid(["a=1,2", "b=x"]) == [{"a": "1", "b": "x"}, {"a": "2", "b": "x"}]
    for bad in (["a"], ["a="], ["a=1", "a=2"]):
        with pytest.raises(ConfigError, match="--grid"):
            parse_grid(bad)


def test_the_plan_checks_every_override_before_anything_runs(tmp_path):
    plan = plan_sweep(DEMO, seeds=[0, 1], grid=parse_grid(["rates.num=16,24"]), preset="smoke", out=tmp_path)
    assert [r.out for r in plan.runs] == [str(tmp_path / p / f"seed-{s}") for p in ("rates.num=16", "rates.num=24")
                                          for s in (0, 1)]
    with pytest.raises(ConfigError, match="rates.nmu"):
        plan_sweep(DEMO, seeds=[0], grid=parse_grid(["rates.nmu=16"]), preset="smoke", out=tmp_path)
    assert not any(tmp_path.iterdir())


def _verdict(status, margin):
    return ClaimVerdict(statement="s", kind="paper", status=status, measured="m", margin=margin)


def test_verdicts_over_seeds_follow_the_claim_rules():
    assert _combine([_verdict("PASS", 1.0), _verdict("PASS", 1.2)])["verdict"] == "PASS"
    tie = _combine([_verdict("PASS", 1.0), _verdict("FAIL", -0.8)])
    assert tie["verdict"] == "TIE" and tie["mean_margin"] == pytest.approx(0.1)
    assert _combine([_verdict("FAIL", -1.0), _verdict("FAIL", -1.1)])["verdict"] == "FAIL"
    assert _combine([_verdict("PASS", None), _verdict("FAIL", None)])["verdict"] == "TIE"
    nothing = ClaimVerdict(statement="s", kind="paper", status="FAIL", measured="nothing to check: no points")
    assert _combine([_verdict("PASS", 1.0), nothing])["verdict"] == "FAIL"


def test_local_sweep_skips_finished_runs_resumes_started_ones_and_writes_sweep_json(tmp_path, capsys):
    out = tmp_path / "sweep"
    args = ["sweep", DEMO, "--preset", "smoke", "--seeds", "0-1", "--grid", "rates.num=16,24", "--out", str(out)]
    assert main(args) == 0
    summary = json.loads((out / "sweep.json").read_text())
    assert [p["point"] for p in summary["points"]] == ["rates.num=16", "rates.num=24"]
    for p in summary["points"]:
        assert [r["status"] for r in p["runs"]] == ["ran", "ran"]
        assert all(c["verdict"] == "PASS" and c["seeds_checked"] == 2 for c in p["claims"])
    assert (out / "report.html").is_file()
    record = json.loads((out / "rates.num=24" / "seed-1" / "config.json").read_text())
    assert record["seed"] == 1 and "rates.num=24" in record["overrides"]
    # a sweep killed after some runs: one run lost its results (started, not finished), one is gone
    (out / "rates.num=16" / "seed-1" / "results.json").unlink()
    shutil.rmtree(out / "rates.num=24" / "seed-0")
    capsys.readouterr()
    assert main(args) == 0
    text = capsys.readouterr().out
    assert "2 already finished" in text
    summary = json.loads((out / "sweep.json").read_text())
    states = {p["point"]: [r["status"] for r in p["runs"]] for p in summary["points"]}
    assert states == {"rates.num=16": ["skipped (finished)", "resumed"], "rates.num=24": ["ran", "skipped (finished)"]}


def test_a_failing_run_is_retried_once_and_reported_without_failing_the_sweep(tmp_path, monkeypatch):
    import chanlab.core.sweep as sweep

    calls = []
    real = sweep.execute_run

    def flaky(run):
        calls.append(run.seed)
        if run.seed == 1:
            raise RuntimeError("out of memory")
        return real(run)

    monkeypatch.setattr(sweep, "execute_run", flaky)
    plan = plan_sweep(DEMO, seeds=[0, 1], preset="smoke", out=tmp_path)
    summary = run_sweep(plan, log=lambda _: None)
    assert calls == [0, 1, 1]
    runs = summary["points"][0]["runs"]
    assert runs[0]["status"] == "ran" and runs[1]["status"] == "failed"
    assert runs[1]["errors"] == ["RuntimeError: out of memory"] * 2
    assert summary["failed_runs"] == [str(tmp_path / "default" / "seed-1")]
    assert all(c["seeds_checked"] == 1 for c in summary["points"][0]["claims"])
    assert run_state(plan.runs[1]) == "new" or run_state(plan.runs[1]) == "started"


def test_ray_backend_matches_the_local_one_and_resumes(tmp_path):
    """2 seeds × 2 points on a local Ray instance: the same sweep.json verdicts as the local backend;
    then a run "killed" (its results lost) is resumed on Ray and the finished ones are skipped."""
    ray = pytest.importorskip("ray", reason="Ray is the optional [dist] extra (pip install -e '.[dist]')")
    grid = parse_grid(["rates.num=16,24"])
    local = run_sweep(plan_sweep(DEMO, seeds=[0, 1], grid=grid, preset="smoke", out=tmp_path / "local"),
                      log=lambda _: None)
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        plan = plan_sweep(DEMO, seeds=[0, 1], grid=grid, preset="smoke", out=tmp_path / "ray")
        remote = run_sweep(plan, backend="ray", log=lambda _: None)
        (tmp_path / "ray" / "rates.num=24" / "seed-0" / "results.json").unlink()
        again = run_sweep(plan, backend="ray", log=lambda _: None)
    finally:
        ray.shutdown()

    def verdicts(summary):
        return [[(c["verdict"], c["statuses"], c.get("mean_margin")) for c in p["claims"]] for p in summary["points"]]

    assert verdicts(remote) == verdicts(local) == verdicts(again)
    assert [r["status"] for p in remote["points"] for r in p["runs"]] == ["ran"] * 4
    assert [r["status"] for p in again["points"] for r in p["runs"]] == ["skipped (finished)"] * 2 + [
        "resumed", "skipped (finished)"]


def test_without_ray_the_ray_backend_is_a_one_line_error(tmp_path, monkeypatch, capsys):
    import builtins

    real_import = builtins.__import__

    def no_ray(name, *a, **kw):
        if name == "ray":
            raise ImportError("No module named 'ray'")
        return real_import(name, *a, **kw)

    monkeypatch.setattr(builtins, "__import__", no_ray)
    code = main(["sweep", DEMO, "--preset", "smoke", "--backend", "ray", "--out", str(tmp_path / "s")])
    err = capsys.readouterr().err.strip()
    assert code == 2 and "\n" not in err and "[dist]" in err, err
