"""Seed and parameter sweeps: many runs of one experiment, their claims decided over seeds.

    chanlab sweep gridization/synthetic --seeds 0-4 --grid training.epochs=10,20 --out sweeps/syn
    chanlab sweep NAME --seeds 0-4 --backend ray --address auto --gpus-per-run 1

A sweep is a plan (:func:`plan_sweep`): one run per (grid point, seed), each laid out as
``chanlab run`` lays one out, in ``OUT/POINT/seed-S`` (``POINT`` is ``default`` without a grid,
else ``key=value,key=value``). :func:`run_sweep` carries it out on a backend:

* ``local``: the runs one after another in this process (no Ray needed);
* ``ray``: one Ray task per run with ``cpus_per_run`` CPUs and ``gpus_per_run`` GPUs, on a local
  ``ray.init()`` or on the cluster at ``address``; Ray is the optional ``[dist]`` extra.

A run whose folder holds ``results.json`` is skipped; one with a ``config.json`` only is resumed
from its checkpoints (so a killed sweep, started again, picks up where it stopped); a run that
fails is tried once more, and a second failure is reported without failing the sweep. At the end
:func:`summarize` re-checks every finished run's claims and writes ``sweep.json``: per grid point
and claim, the verdict on each seed and the verdict over the seeds (the mean margin and its
spread: a mean inside its spread is a TIE, as :mod:`chanlab.core.claims` rules; a claim without
margins passes only where every seed passes).
"""

from __future__ import annotations

import itertools
import math
import os
import statistics
import traceback
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from chanlab.core.errors import ConfigError

BACKENDS = ("local", "ray")
MAX_SEEDS = 10_000


def parse_seeds(text: str) -> list[int]:
    """``"0-4"`` → ``[0, 1, 2, 3, 4]``; ``"0,3,7"`` and mixes such as ``"0-2,9"`` work too."""
    seeds: list[int] = []
    for part in str(text).split(","):
        part = part.strip()
        try:
            if "-" in part[1:]:
                lo, hi = (int(v) for v in part.split("-", 1))
                if hi < lo:
                    raise ValueError
                seeds.extend(range(lo, hi + 1))
            else:
                seeds.append(int(part))
        except ValueError:
            raise ConfigError(f"--seeds: expected seeds such as '0-4' or '0,2,5', got {text!r}") from None
    if not seeds or len(seeds) > MAX_SEEDS or min(seeds) < 0:
        raise ConfigError(f"--seeds: expected 1 to {MAX_SEEDS} seeds >= 0, got {text!r}")
    return list(dict.fromkeys(seeds))


def parse_grid(items: Iterable[str]) -> list[dict[str, str]]:
    """``["a=1,2", "b=x,y"]`` → the cross product ``[{"a": "1", "b": "x"}, ...]`` (``[{}]`` for none).

    Commas separate a key's values, so a grid cannot sweep tuple-valued keys; set those with
    ``--set`` instead.
    """
    keys, values = [], []
    for item in items:
        key, sep, text = str(item).partition("=")
        vals = [v.strip() for v in text.split(",") if v.strip()]
        if not sep or not key.strip() or not vals:
            raise ConfigError(f"--grid: expected KEY=V1,V2,... such as 'training.epochs=10,20', got {item!r}")
        if key.strip() in keys:
            raise ConfigError(f"--grid: {key.strip()!r} appears twice; give all its values in one --grid")
        keys.append(key.strip())
        values.append(list(dict.fromkeys(vals)))
    return [dict(zip(keys, combo)) for combo in itertools.product(*values)] if keys else [{}]


def point_label(point: Mapping[str, str]) -> str:
    """The folder name of a grid point: ``default`` or ``key=value,key=value``."""
    if not point:
        return "default"
    label = ",".join(f"{k}={v}" for k, v in point.items())
    if "/" in label or label in (".", ".."):
        raise ConfigError(f"--grid: values may not contain '/', got {label!r}")
    return label


@dataclass(frozen=True)
class SweepRun:
    """One run of a sweep: the experiment, its preset, its overrides (``--set`` then the grid
    point), its seed and its folder."""

    experiment: str
    preset: str | None
    overrides: tuple[str, ...]
    seed: int
    out: str
    point: str
    device: str = "auto"
    threads: int | None = None


@dataclass
class SweepPlan:
    experiment: str
    preset: str | None
    seeds: list[int]
    grid: list[dict[str, str]]
    overrides: list[str]
    out: Path
    runs: list[SweepRun] = field(default_factory=list)


def plan_sweep(experiment: str, *, seeds: Sequence[int], grid: Sequence[Mapping[str, str]] = ({},),
               preset: str | None = None, overrides: Sequence[str] = (), out: str | os.PathLike,
               device: str = "auto", threads: int | None = None) -> SweepPlan:
    """Every (grid point, seed) of a sweep as a :class:`SweepRun`, each override checked up front
    against the experiment's config (a typo fails here, not in the twentieth run)."""
    from chanlab.core.registry import get_experiment

    exp = get_experiment(experiment)
    out = Path(out)
    plan = SweepPlan(experiment, preset, list(seeds), [dict(p) for p in grid], list(overrides), out)
    for point in plan.grid:
        sets = tuple(overrides) + tuple(f"{k}={v}" for k, v in point.items())
        exp.make_config(preset or "quick", list(sets))          # raises a ConfigError now if any is wrong
        label = point_label(point)
        for seed in plan.seeds:
            plan.runs.append(SweepRun(experiment, preset, sets, int(seed), str(out / label / f"seed-{seed}"), label,
                                      device, threads))
    return plan


def run_state(run: SweepRun) -> str:
    """``finished`` (results.json), ``started`` (config.json only) or ``new``."""
    folder = Path(run.out)
    if (folder / "results.json").is_file():
        return "finished"
    if (folder / "config.json").is_file():
        return "started"
    return "new"


def execute_run(run: SweepRun) -> dict[str, Any]:
    """Carry out one run (resuming it when it was started); the outcome as a dict. Importable by
    Ray workers: it registers the experiments and sets the thread count itself."""
    import chanlab.experiments  # noqa: F401  (registers the experiments)
    from chanlab.core.device import set_threads
    from chanlab.core.run import run_experiment

    state = run_state(run)
    if state == "finished":
        return {"out": run.out, "status": "skipped (finished)"}
    set_threads(run.threads)
    if state == "started":
        run_experiment(None, out=run.out, device=run.device, resume=True)
        return {"out": run.out, "status": "resumed"}
    run_experiment(run.experiment, preset=run.preset, overrides=list(run.overrides), out=run.out,
                   device=run.device, seed=run.seed)
    return {"out": run.out, "status": "ran"}


def _local(runs: Sequence[SweepRun], on_done: Callable[[SweepRun, dict], None]) -> None:
    from chanlab.core.progress import progress

    for run in progress(runs, desc="sweep", unit="run"):
        on_done(run, _with_retry(run))


def _with_retry(run: SweepRun) -> dict[str, Any]:
    """``execute_run``, tried a second time when the first try raised (not on Ctrl-C)."""
    errors = []
    for _ in range(2):
        try:
            return execute_run(run)
        except Exception as exc:                               # noqa: BLE001 - reported, the sweep goes on
            errors.append(f"{type(exc).__name__}: {exc}")
            last = traceback.format_exc(limit=4)
    return {"out": run.out, "status": "failed", "errors": errors, "traceback": last}


def _ray(runs: Sequence[SweepRun], on_done, *, address: str | None, cpus_per_run: float,
         gpus_per_run: float) -> None:
    try:
        import ray
    except ImportError:
        raise ConfigError("--backend ray: Ray is not installed; install the extra with "
                          "pip install -e \".[dist]\" (or pip install 'ray>=2.9')") from None
    if not ray.is_initialized():
        ray.init(address=address or None, include_dashboard=False, log_to_driver=False,
                 **({} if address else {"num_cpus": max(1, os.cpu_count() or 1)}))
    task = ray.remote(num_cpus=cpus_per_run, num_gpus=gpus_per_run, max_retries=0)(_with_retry)
    pending = {task.remote(run): run for run in runs}
    while pending:
        done, _ = ray.wait(list(pending), num_returns=1)
        run = pending.pop(done[0])
        try:
            outcome = ray.get(done[0])
        except Exception as exc:                               # noqa: BLE001 - a worker died: reported
            outcome = {"out": run.out, "status": "failed", "errors": [f"{type(exc).__name__}: {exc}"]}
        on_done(run, outcome)


def run_sweep(plan: SweepPlan, *, backend: str = "local", address: str | None = None, cpus_per_run: float = 1,
              gpus_per_run: float = 0, log: Callable[[str], None] = print) -> dict[str, Any]:
    """Carry out ``plan`` on ``backend`` (module docstring), then write ``OUT/sweep.json``
    (:func:`summarize`) and return it."""
    if backend not in BACKENDS:
        raise ConfigError(f"--backend: expected one of {', '.join(BACKENDS)}, got {backend!r}")
    for name, value in (("--cpus-per-run", cpus_per_run), ("--gpus-per-run", gpus_per_run)):
        if not isinstance(value, (int, float)) or not math.isfinite(value) or value < 0:
            raise ConfigError(f"{name}: expected a number >= 0, got {value!r}")
    plan.out.mkdir(parents=True, exist_ok=True)
    outcomes: dict[str, dict[str, Any]] = {}

    def on_done(run: SweepRun, outcome: dict) -> None:
        outcomes[run.out] = outcome
        detail = "; ".join(outcome.get("errors", []))
        log(f"sweep: {run.point} seed {run.seed}: {outcome['status']}" + (f" ({detail})" if detail else ""))

    todo = [r for r in plan.runs if run_state(r) != "finished"]
    for r in plan.runs:
        if r not in todo:
            outcomes[r.out] = {"out": r.out, "status": "skipped (finished)"}
    log(f"sweep: {len(plan.runs)} runs, {len(plan.runs) - len(todo)} already finished, backend {backend}")
    if backend == "local":
        _local(todo, on_done)
    else:
        _ray(todo, on_done, address=address, cpus_per_run=cpus_per_run, gpus_per_run=gpus_per_run)
    return summarize(plan, outcomes, backend)


def _combine(verdicts: Sequence[Any]) -> dict[str, Any]:
    """The verdict of one claim over seeds (module docstring)."""
    statuses = [v.status for v in verdicts]
    margins = [v.margin for v in verdicts]
    out: dict[str, Any] = {"statuses": statuses, "margins": margins, "measured": [v.measured for v in verdicts]}
    if any(v.measured.startswith("nothing to check") for v in verdicts):
        out["verdict"] = "FAIL"
        out["reason"] = "a seed had nothing to check"
    elif all(m is not None for m in margins):
        mean = statistics.fmean(margins)
        spread = statistics.stdev(margins) if len(margins) > 1 else None
        out.update(mean_margin=mean, spread=spread)
        if spread is not None and spread > 0 and abs(mean) < spread:
            out["verdict"] = "TIE"
        else:
            out["verdict"] = "PASS" if mean > 0 or (mean == 0 and all(s == "PASS" for s in statuses)) else "FAIL"
    else:
        out["verdict"] = "PASS" if all(s == "PASS" for s in statuses) else (
            "FAIL" if all(s == "FAIL" for s in statuses) else "TIE")
    return out


def summarize(plan: SweepPlan, outcomes: Mapping[str, Mapping[str, Any]] | None = None,
              backend: str = "local") -> dict[str, Any]:
    """Re-check the claims of every finished run of ``plan`` and write ``OUT/sweep.json``."""
    from chanlab.core.atomic import atomic_write_json
    from chanlab.core.claims import check_claims
    from chanlab.core.registry import get_experiment
    from chanlab.core.run import load_run

    exp = get_experiment(plan.experiment)
    outcomes = dict(outcomes or {})
    points = []
    for point in plan.grid:
        label = point_label(point)
        runs = [r for r in plan.runs if r.point == label]
        verdicts, rows = [], []
        for r in runs:
            row = {"seed": r.seed, "folder": r.out, "status": outcomes.get(r.out, {}).get("status", run_state(r))}
            if "errors" in outcomes.get(r.out, {}):
                row["errors"] = outcomes[r.out]["errors"]
            if run_state(r) == "finished":
                verdicts.append(check_claims(exp.claims, load_run(r.out, expect=plan.experiment).results))
            rows.append(row)
        claims = []
        for i, claim in enumerate(exp.claims):
            entry = {"statement": claim.statement, "kind": claim.kind}
            if verdicts:
                entry.update(_combine([v[i] for v in verdicts]))
                entry["seeds_checked"] = len(verdicts)
            else:
                entry.update(verdict="FAIL", reason="no finished run")
            claims.append(entry)
        points.append({"point": label, "overrides": point, "runs": rows, "claims": claims})
    summary = {"experiment": plan.experiment, "preset": plan.preset or "quick", "seeds": plan.seeds,
               "overrides": plan.overrides, "grid": plan.grid, "backend": backend, "out": str(plan.out),
               "points": points,
               "failed_runs": [o["out"] for o in outcomes.values() if o.get("status") == "failed"]}
    atomic_write_json(plan.out / "sweep.json", summary)
    return summary


def format_summary(summary: Mapping[str, Any]) -> str:
    """One line per (point, claim): the verdict over seeds and the per-seed statuses."""
    lines = []
    for p in summary["points"]:
        lines.append(f"[{p['point']}]  runs: " + ", ".join(f"seed {r['seed']} {r['status']}" for r in p["runs"]))
        for c in p["claims"]:
            extra = ""
            if c.get("mean_margin") is not None:
                extra = f"  mean margin {c['mean_margin']:+.3g}" + (
                    f" ± {c['spread']:.3g}" if c.get("spread") is not None else "")
            lines.append(f"  {c['verdict']:<4} ({c['kind']}) {c['statement']}"
                         f"  [{', '.join(c.get('statuses', [])) or c.get('reason', '')}]{extra}")
    if summary.get("failed_runs"):
        lines.append("failed runs: " + ", ".join(summary["failed_runs"]))
    return "\n".join(lines)


__all__ = ["BACKENDS", "SweepPlan", "SweepRun", "execute_run", "format_summary", "parse_grid", "parse_seeds",
           "plan_sweep", "point_label", "run_state", "run_sweep", "summarize"]
