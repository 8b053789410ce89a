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
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from chanlab.core.atomic import atomic_path, atomic_write_json
from chanlab.core.checkpoint import Checkpointer
from chanlab.core.config import to_dict
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

    def __init__(self, out: Path, device: torch.device, seed: int, resume: bool, logger: logging.Logger):
        self.out = out
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


def run_experiment(name: str, *, preset: str = "quick", overrides: Iterable[str] | Mapping[str, Any] | None = None,
                   out: str | os.PathLike | None = None, device: str | None = "auto", seed: int = 0,
                   resume: bool = False) -> RunResult:
    """Run experiment ``name`` with a preset and overrides; write the run folder.

    With ``resume=True`` the folder ``out`` must hold a run of the same experiment and config;
    its checkpoints are picked up by the experiment's training loops.
    """
    experiment = get_experiment(name)
    config = experiment.make_config(preset, overrides)
    torch_device = select_device(device)
    out_path = Path(out) if out is not None else default_out(name)
    record = {
        "experiment": name,
        "preset": preset,
        "overrides": list(overrides) if overrides and not isinstance(overrides, Mapping) else dict(overrides or {}),
        "seed": seed,
        "device": str(torch_device),
        "chanlab_version": _version(),
        "config": to_jsonable(to_dict(config)),
    }
    config_file = out_path / "config.json"
    if resume:
        if not config_file.is_file():
            raise ConfigError(f"--resume: {out_path} holds no run (no config.json)")
        previous = json.loads(config_file.read_text())
        if previous.get("experiment") != name or previous.get("config") != record["config"] \
                or previous.get("seed") != seed:
            raise ConfigError(f"--resume: {out_path} holds a run with another experiment, config or seed")
    elif config_file.exists():
        raise ConfigError(f"{out_path} already holds a run; pass --resume to continue it or choose another --out")
    out_path.mkdir(parents=True, exist_ok=True)
    atomic_write_json(config_file, record)

    logger, handler = _attach_log(out_path)
    try:
        logger.info("run %s preset=%s seed=%d device=%s resume=%s", name, preset, seed, torch_device, resume)
        seed_all(seed)
        ctx = RunContext(out_path, torch_device, seed, resume, logger)
        results = experiment.run(config, ctx)
        if not isinstance(results, dict):
            raise ConfigError(f"experiment {name!r} returned {type(results).__name__}, expected a dict")
        results = to_jsonable(results)
        atomic_write_json(out_path / "results.json", results)
        logger.info("results written to %s", out_path / "results.json")
    finally:
        logger.removeHandler(handler)
        handler.close()
    return RunResult(experiment, config, results, out_path, list(ctx.figures))


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
        raise ConfigError(f"run folder {out}: no results.json; the run did not finish "
                          f"(continue it with 'chanlab run NAME --out {out} --resume')")
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
