"""Running a registered experiment into a run folder.

A run folder holds::

    config.json    the full config, preset, overrides, seed, device, chanlab version
    results.json   every number the experiment reports (written when it finishes)
    log.txt        the log of the run
    figures/*.png  the figures
    checkpoints/   training state for --resume
"""

from __future__ import annotations

import datetime as _dt
import json
import logging
import math
import os
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from chanlab.core.atomic import atomic_path, atomic_write_json
from chanlab.core.checkpoint import Checkpointer
from chanlab.core.config import apply_overrides, to_dict
from chanlab.core.distributed import init_from_env, is_main, world
from chanlab.core.device import select_device
from chanlab.core.errors import ConfigError
from chanlab.core.progress import get_logger
from chanlab.core.claims import ClaimVerdict, check_claims  # noqa: F401  (re-exported)
from chanlab.core.registry import Experiment, get_experiment
from chanlab.core.seeding import seed as seed_all


def to_jsonable(obj: Any) -> Any:
    """Convert tensors, arrays, numpy scalars, tuples and paths into plain JSON values."""
    if isinstance(obj, Mapping):
        return {str(k): to_jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [to_jsonable(v) for v in obj]
    if isinstance(obj, torch.Tensor):
        obj = obj.detach().cpu().numpy()
    if isinstance(obj, np.ndarray):
        if np.iscomplexobj(obj):
            raise ConfigError("results: complex arrays cannot go into results.json; report magnitudes")
        return obj.tolist()
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, Path):
        return str(obj)
    if isinstance(obj, float) and not math.isfinite(obj):
        return None if math.isnan(obj) else ("inf" if obj > 0 else "-inf")
    return obj


class RunContext:
    """What an experiment's ``run(config, ctx)`` gets: where to write, which device, logging.

    Attributes: ``out`` (run folder), ``device`` (torch.device), ``seed``, ``resume`` (bool),
    ``log`` (a logger that writes to ``log.txt``), ``checkpointer``.
    """

    def __init__(self, out: Path, device: torch.device, seed: int, resume: bool, logger: logging.Logger,
                 writes: bool = True):
        self.out = out
        self.writes = writes            # False on the other ranks of a data-parallel run: rank 0 writes
        self.device = device
        self.seed = seed
        self.resume = resume
        self.log = logger
        self.checkpointer = Checkpointer(out / "checkpoints")
        self.figures: list[Path] = []

    def checkpoint(self, name: str) -> Checkpointer:
        """A checkpointer for one training stage (``checkpoints/NAME.pt``)."""
        return Checkpointer(self.out / "checkpoints", name=f"{name}.pt")

    def save_figure(self, fig: Any, name: str) -> Path:
        """Save a matplotlib figure as ``figures/NAME.png`` (atomically) and close it."""
        import matplotlib.pyplot as plt

        path = self.out / "figures" / f"{name}.png"
        if not self.writes:
            plt.close(fig)
            return path
        with atomic_path(path) as tmp:
            fig.savefig(tmp, format="png", dpi=120, bbox_inches="tight")
        plt.close(fig)
        self.figures.append(path)
        self.log.info("figure %s", path)
        return path


@dataclass
class RunResult:
    """What :func:`run_experiment` returns."""

    experiment: Experiment
    config: Any
    results: dict[str, Any]
    out: Path
    figures: list[Path]


def default_out(name: str) -> Path:
    """``runs/<name with / as _>/<timestamp>`` below the current folder."""
    stamp = _dt.datetime.now().strftime("%Y%m%d-%H%M%S-%f")
    return Path("runs") / name.replace("/", "_") / stamp


def _attach_log(out: Path) -> tuple[logging.Logger, logging.Handler]:
    logger = get_logger("run")
    logger.setLevel(logging.INFO)
    handler = logging.FileHandler(out / "log.txt", mode="a", encoding="utf-8")
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
    logger.addHandler(handler)
    return logger, handler


DEFAULT_PRESET = "quick"
DEFAULT_SEED = 0


def resume_command(name: str, out: str | os.PathLike, device: str | None = None) -> str:
    """The shell command that continues the run of ``name`` in ``out`` (its settings come from
    the folder's ``config.json``)."""
    import shlex

    extra = f" --device {shlex.quote(str(device))}" if device not in (None, "auto") else ""
    return f"chanlab run {shlex.quote(name)} --out {shlex.quote(str(out))} --resume{extra}"


def _read_record(out: Path) -> dict[str, Any]:
    config_file = out / "config.json"
    if not config_file.is_file():
        raise ConfigError(f"--resume: {out} holds no run (no config.json)")
    try:
        record = json.loads(config_file.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"--resume: {config_file} is not valid JSON ({exc})") from exc
    if not isinstance(record, dict) or not isinstance(record.get("experiment"), str):
        raise ConfigError(f"--resume: {config_file} does not name an experiment; it was not written by chanlab run")
    return record


def _jsonable_config(config: Any) -> Any:
    """The config as ``config.json`` stores it (tuples as lists, after a JSON round trip)."""
    return json.loads(json.dumps(to_jsonable(to_dict(config))))


def _stored_overrides(record: Mapping[str, Any]) -> list[str] | dict[str, Any]:
    stored = record.get("overrides") or []
    return dict(stored) if isinstance(stored, Mapping) else [str(o) for o in stored]


def _resumed_config(experiment: Experiment, record: Mapping[str, Any], out: Path, preset: str | None,
                    overrides: Any, seed: int | None) -> Any:
    """The config of the run stored in ``record``, after checking that what the user passed
    (``preset``, ``overrides`` applied on the run's own, ``seed``; None: not passed) agrees with it.
    The error names every differing key with both values."""
    stored_preset = record.get("preset", DEFAULT_PRESET)
    stored_seed = record.get("seed", DEFAULT_SEED)
    differences = []
    if preset is not None and preset != stored_preset:
        differences.append(f"preset: {stored_preset!r} in the run, {preset!r} given")
    if seed is not None and seed != stored_seed:
        differences.append(f"seed: {stored_seed} in the run, {seed} given")
    config = experiment.make_config(stored_preset if preset is None else preset, _stored_overrides(record))
    config = apply_overrides(config, overrides)
    old = flatten_results(record.get("config") or {})
    new = flatten_results(_jsonable_config(config))
    absent = "(absent)"
    for key in sorted(set(old) | set(new)):
        if old.get(key, absent) != new.get(key, absent):
            differences.append(f"{key}: {_show(old.get(key, absent))} in the run, {_show(new.get(key, absent))} "
                               f"{'given' if overrides or preset is not None else 'now'}")
    if differences:
        passed = preset is not None or seed is not None or bool(overrides)
        hint = ("; leave out --preset, --set and --seed to continue the run with its own settings" if passed
                else "; the experiment's defaults changed since the run started: start a new run in another --out")
        raise ConfigError(f"--resume: {out} holds a run with other settings: {'; '.join(differences)}{hint}")
    return config


def _show(value: Any) -> str:
    return value if value == "(absent)" else json.dumps(value)


def _created_folders(out: Path) -> list[Path]:
    """The folders ``out.mkdir(parents=True)`` will create, deepest first."""
    missing = []
    for folder in (out, *out.parents):
        if folder.exists():
            break
        missing.append(folder)
    return missing


def _holds_no_output(out: Path) -> bool:
    """True when ``out`` holds nothing but what :func:`run_experiment` wrote before the
    experiment started (``config.json``, ``log.txt``) and empty folders."""
    return all(p.is_dir() or (p.parent == out and p.name in ("config.json", "log.txt")) for p in out.rglob("*"))


def _remove_run_folder(out: Path, created: list[Path]) -> None:
    import shutil

    shutil.rmtree(out, ignore_errors=True)
    for folder in created[1:]:
        try:
            folder.rmdir()          # only when empty
        except OSError:
            break


def run_experiment(name: str | None = None, *, preset: str | None = None,
                   overrides: Iterable[str] | Mapping[str, Any] | None = None,
                   out: str | os.PathLike | None = None, device: str | None = "auto", seed: int | None = None,
                   resume: bool = False) -> RunResult:
    """Run experiment ``name`` with a preset (default quick), overrides and a seed (default 0);
    write the run folder.

    With ``resume=True`` the folder ``out`` must hold a run; its experiment (``name`` may be
    None), preset, overrides and seed are read from its ``config.json``, and the experiment's
    training loops pick up its checkpoints. A preset, overrides or seed passed as well must agree
    with the stored run (ConfigError naming each differing key otherwise).

    Every override is checked before the folder is made; a folder this call made is removed again
    when the experiment rejects its config (ConfigError) before writing anything. An error or an
    interruption is recorded, with its traceback, in ``log.txt``.
    """
    out_path = Path(out) if out is not None else None
    if resume:
        if out_path is None:
            raise ConfigError("--resume: name the run folder to continue with --out DIR")
        record = _read_record(out_path)
        if name is not None and record["experiment"] != name:
            raise ConfigError(f"--resume: {out_path} holds a run of {record['experiment']!r}, not {name!r}")
        name = record["experiment"]
        experiment = get_experiment(name)
        config = _resumed_config(experiment, record, out_path, preset, overrides, seed)
        preset, seed = record.get("preset", DEFAULT_PRESET), record.get("seed", DEFAULT_SEED)
        overrides = _stored_overrides(record)
    else:
        if name is None:
            raise ConfigError("name an experiment to run ('chanlab list' shows them), or resume a run folder "
                              "with --out DIR --resume")
        preset = DEFAULT_PRESET if preset is None else preset
        seed = DEFAULT_SEED if seed is None else seed
        experiment = get_experiment(name)
        config = experiment.make_config(preset, overrides)
        if out_path is None:
            out_path = default_out(name)
        if (out_path / "config.json").exists() and is_main():
            raise ConfigError(f"{out_path} already holds a run; pass --resume to continue it or choose another --out")
    torch_device = init_from_env(select_device(device))
    if not is_main():
        return _run_as_helper_rank(experiment, config, out_path, torch_device, seed, resume)
    record = {
        "experiment": name,
        "preset": preset,
        "overrides": list(overrides) if overrides and not isinstance(overrides, Mapping) else dict(overrides or {}),
        "seed": seed,
        "device": str(torch_device),
        "threads": torch.get_num_threads(),
        "chanlab_version": _version(),
        "config": to_jsonable(to_dict(config)),
    }
    created = [] if resume else _created_folders(out_path)
    out_path.mkdir(parents=True, exist_ok=True)
    atomic_write_json(out_path / "config.json", record)

    logger, handler = _attach_log(out_path)
    ctx = None
    try:
        t0 = time.perf_counter()
        logger.info("run %s preset=%s seed=%d device=%s threads=%d resume=%s", name, preset, seed, torch_device,
                    torch.get_num_threads(), resume)
        seed_all(seed)
        ctx = RunContext(out_path, torch_device, seed, resume, logger)
        results = experiment.run(config, ctx)
        if not isinstance(results, dict):
            raise ConfigError(f"experiment {name!r} returned {type(results).__name__}, expected a dict")
        results = to_jsonable(results)
        atomic_write_json(out_path / "results.json", results)
        logger.info("results written to %s (run took %.0f s)", out_path / "results.json", time.perf_counter() - t0)
    except KeyboardInterrupt as exc:
        detail = f" ({exc})" if str(exc) else ""
        logger.warning("interrupted%s; continue with: %s", detail, resume_command(name, out_path, device))
        raise
    except Exception as exc:
        remove = isinstance(exc, ConfigError) and created and _holds_no_output(out_path)
        logger.error("run failed: %s: %s%s", type(exc).__name__, exc,
                     "; the run folder is removed (it held no output)" if remove else "", exc_info=True)
        if remove:
            logger.removeHandler(handler)
            handler.close()
            _remove_run_folder(out_path, created)
        raise
    finally:
        logger.removeHandler(handler)
        handler.close()
    return RunResult(experiment, config, results, out_path, list(ctx.figures))


def _run_as_helper_rank(experiment: Experiment, config: Any, out: Path, device: torch.device, seed: int,
                        resume: bool) -> RunResult:
    """A rank other than 0 of a data-parallel run: the same run, writing nothing (rank 0 writes the
    folder; every rank reads its checkpoints on resume)."""
    logger = logging.getLogger(f"chanlab.run.rank{world()[0]}")
    seed_all(seed)
    ctx = RunContext(out, device, seed, resume, logger, writes=False)
    results = experiment.run(config, ctx)
    return RunResult(experiment, config, to_jsonable(results), out, [])


@dataclass
class FinishedRun:
    """A run folder read back: its ``config.json`` record, ``results.json`` and figures."""

    out: Path
    record: dict[str, Any]
    results: dict[str, Any]
    figures: list[Path]

    @property
    def experiment(self) -> str:
        return str(self.record.get("experiment", ""))


def load_run(folder: str | os.PathLike, expect: str | None = None) -> FinishedRun:
    """Read a finished run folder (ConfigError when it is not one, or holds another experiment)."""
    out = Path(folder)
    if not out.exists():
        raise ConfigError(f"run folder {out}: no such folder")
    if not out.is_dir():
        raise ConfigError(f"run folder {out}: expected a folder written by 'chanlab run', got a file")
    config_file, results_file = out / "config.json", out / "results.json"
    if not config_file.is_file():
        raise ConfigError(f"run folder {out}: no config.json, so it is not a chanlab run folder")
    if not results_file.is_file():
        try:
            name = str(json.loads(config_file.read_text()).get("experiment") or "NAME")
        except (json.JSONDecodeError, UnicodeDecodeError, AttributeError):
            name = "NAME"
        raise ConfigError(f"run folder {out}: no results.json; the run did not finish "
                          f"(continue it with '{resume_command(name, out)}')")
    try:
        record = json.loads(config_file.read_text())
        results = json.loads(results_file.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"run folder {out}: config.json or results.json is not valid JSON ({exc})") from exc
    if not isinstance(results, dict) or not isinstance(record, dict):
        raise ConfigError(f"run folder {out}: results.json and config.json must each hold a JSON object")
    if expect is not None and record.get("experiment") != expect:
        raise ConfigError(f"run folder {out} holds a run of {record.get('experiment')!r}, not {expect!r}")
    return FinishedRun(out, record, results, sorted((out / "figures").glob("*.png")))


def _version() -> str:
    from chanlab import __version__

    return __version__


def flatten_results(results: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """``{"a.b": scalar}`` for every scalar leaf of a results dict (lists of scalars kept whole)."""
    flat: dict[str, Any] = {}
    for key, value in results.items():
        full = f"{prefix}{key}"
        if isinstance(value, Mapping):
            flat.update(flatten_results(value, full + "."))
        else:
            flat[full] = value
    return flat


def _fmt(value: Any) -> str:
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, list):
        if len(value) > 6 or any(isinstance(v, (list, dict)) for v in value):
            return f"[{len(value)} values]"
        return "[" + ", ".join(_fmt(v) for v in value) + "]"
    return str(value)


def format_results_table(results: Mapping[str, Any]) -> str:
    """A two-column text table of the scalar results."""
    flat = flatten_results(results)
    if not flat:
        return "(no results)"
    width = max(len(k) for k in flat)
    lines = [f"{'result'.ljust(width)}  value", f"{'-' * width}  -----"]
    lines += [f"{k.ljust(width)}  {_fmt(v)}" for k, v in flat.items()]
    return "\n".join(lines)
