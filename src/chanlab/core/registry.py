"""Experiment registry: named experiments with a config class, presets and paper claims.

Experiments live in :mod:`chanlab.experiments` and register themselves on import::

    register(Experiment(name="channels/demo", summary=..., config=DemoConfig,
                        presets={"smoke": {...}, "quick": {}, "paper": {...}},
                        run=run_demo, claims=(Claim(...),)))

``presets`` map a preset name to dotted overrides applied on the config's defaults; claims are
:class:`chanlab.core.claims.Claim` (re-exported here).
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from chanlab.core.claims import Claim
from chanlab.core.config import apply_overrides
from chanlab.core.errors import ConfigError

PRESETS = ("smoke", "quick", "paper")


@dataclass(frozen=True)
class Experiment:
    """A registered, runnable experiment.

    ``run(config, ctx)`` does the work with a :class:`chanlab.core.run.RunContext` and returns
    the results dict (every number the experiment reports; nested dicts/lists allowed).
    """

    name: str
    summary: str
    config: type
    run: Callable[[Any, Any], dict[str, Any]]
    presets: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    claims: tuple[Claim, ...] = ()
    paper: str | None = None

    def make_config(self, preset: str = "quick", overrides: Any = None) -> Any:
        """Defaults, then the preset's overrides, then the user's overrides."""
        if preset not in self.presets:
            raise ConfigError(f"experiment {self.name!r}: unknown preset {preset!r}; "
                              f"choose from {', '.join(self.presets) or '(none)'}")
        cfg = apply_overrides(self.config(), dict(self.presets[preset]))
        return apply_overrides(cfg, overrides)


_REGISTRY: dict[str, Experiment] = {}


def register(experiment: Experiment) -> Experiment:
    """Add ``experiment`` to the registry (names are unique)."""
    if experiment.name in _REGISTRY and _REGISTRY[experiment.name] is not experiment:
        raise ConfigError(f"experiment {experiment.name!r} is registered twice")
    missing = [p for p in PRESETS if p not in experiment.presets]
    if missing:
        raise ConfigError(f"experiment {experiment.name!r}: presets {missing} are missing")
    _REGISTRY[experiment.name] = experiment
    return experiment


def get_experiment(name: str) -> Experiment:
    """The experiment called ``name``; ConfigError listing the known ones otherwise."""
    if name in _REGISTRY:
        return _REGISTRY[name]
    close = difflib.get_close_matches(name, list(_REGISTRY), n=1)
    hint = f" (did you mean {close[0]!r}?)" if close else ""
    known = ", ".join(sorted(_REGISTRY)) or "(none registered)"
    raise ConfigError(f"unknown experiment {name!r}{hint}; known: {known}")


def list_experiments() -> list[Experiment]:
    """All registered experiments, sorted by name."""
    return [_REGISTRY[k] for k in sorted(_REGISTRY)]
