"""A walking-test dataset like the gridization paper's field data (Section V-B-1, Fig. 9).

A UE walks nearly the same closed route around a BS for ``n_rounds`` rounds; in round r the BS
runs beam pattern ``A^(r)`` (:data:`chanlab.channels.beam_patterns.WALKING_TEST_PATTERNS`). Every
sample has a location, its beam-level RSRP as a measurement report holds it, and its channel's
departure paths, from which the ground-truth CAPS follows (:func:`chanlab.channels.paths.bin_caps`).

How a sample is made:

1. **Route.** A closed loop around the BS (:func:`chanlab.channels.raytracing.route_loop` on the
   ray-traced scene, :func:`chanlab.channels.geometric_paths.loop_route` otherwise). The part in
   the panel's sector (bearing within ``±sector_half_width_deg`` of broadside; a 3-sector site's
   other cells serve the rest) is resampled to ``points_per_round`` points evenly spaced along the
   walk. Each round moves every point by ``N(0, jitter_m²)`` horizontally: nearly the same route.
2. **Paths.** Sionna RT on a built-in city scene (``backend="rt"``, the optional ``[rt]`` extra:
   line of sight, specular reflection, refraction and, with ``diffraction``, edge diffraction, up to
   ``max_depth`` interactions; :mod:`chanlab.channels.raytracing`) or
   the labelled stochastic fallback (``backend="stochastic"``); ``"auto"`` takes ray tracing when
   it can run here and says so in the log and the dataset's ``backend`` attribute otherwise.
3. **RSRP.** ``P |Bᴴ h|²`` of eq. (3) on the exact path angles with the LSCM phase errors, averaged
   over ``n_fading_draws`` fast-fading draws (:func:`chanlab.channels.paths.rsrp_from_paths`), then
   measurement noise, 1 dB report steps and the report range
   (:func:`chanlab.channels.lscm.measure_rsrp`). ``P = power_dbm`` is the CSI-RS power per
   resource element (11 dBm ≈ 46 dBm over 273 resource blocks). A UE whose best beam is below
   ``min_rsrp_dbm`` sends no report; its sample is dropped.

Datasets are cached by their parameters and seed (:func:`chanlab.channels.store.cached_dataset`);
the CAPS is not stored (``rounds × points × N`` floats) but binned from the stored paths on demand.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from chanlab.channels.beam_patterns import WALKING_TEST_PATTERNS, BeamPattern
from chanlab.channels.lscm import LscmPanel, measure_rsrp
from chanlab.channels.paths import bin_caps, rsrp_from_paths, wrap_angle
from chanlab.core.errors import ConfigError, DataError
from chanlab.core.progress import get_logger, progress
from chanlab.core.seeding import torch_generator

BACKENDS = ("auto", "rt", "stochastic")
_GENERATOR = "chanlab.data.walking-test"


@dataclass(frozen=True)
class WalkingTestConfig:
    """Parameters of a walking test (module docstring); every field is part of the cache key."""

    backend: str = "auto"
    n_rounds: int = 10
    points_per_round: int = 1000
    jitter_m: float = 1.0
    sector_half_width_deg: float = 60.0
    carrier_frequency: float = 3.5e9
    max_depth: int = 3
    diffraction: bool = True
    max_paths: int = 24
    n_elevation: int = 91
    n_azimuth: int = 72
    phase_error_std: float = 0.3
    power_dbm: float = 11.0
    n_fading_draws: int = 8
    noise_std_db: float = 2.0
    report_step_db: float = 1.0
    min_rsrp_dbm: float = -140.0

    def __post_init__(self):
        if self.backend not in BACKENDS:
            raise ConfigError(f"backend: expected one of {', '.join(BACKENDS)}, got {self.backend!r}")
        if not 1 <= self.n_rounds <= len(WALKING_TEST_PATTERNS):
            raise ConfigError(f"n_rounds: expected 1 … {len(WALKING_TEST_PATTERNS)} (one beam pattern each), "
                              f"got {self.n_rounds}")
        if self.points_per_round < 10:
            raise ConfigError(f"points_per_round: expected >= 10, got {self.points_per_round}")
        if not 0 < self.sector_half_width_deg <= 90:
            raise ConfigError(f"sector_half_width_deg: expected in (0, 90], got {self.sector_half_width_deg}")
        if self.jitter_m < 0 or self.n_fading_draws < 1:
            raise ConfigError("jitter_m must be >= 0 and n_fading_draws >= 1")

    def panel(self) -> LscmPanel:
        """The panel of round 1 (the default 32-beam LscmPanel on this angular grid)."""
        return LscmPanel(n_elevation=self.n_elevation, n_azimuth=self.n_azimuth,
                         phase_error_std=self.phase_error_std, power_dbm=self.power_dbm)


@dataclass
class WalkingRound:
    """One round: ``n`` samples.

    Attributes:
        pattern: the round's :class:`BeamPattern`.
        position: ``[n, 3]`` float64 global metres.
        rsrp_dbm: ``[n, M]`` float32, as reported.
        power, zenith, azimuth: ``[n, P]`` float64 paths in the panel's frame.
    """

    index: int
    pattern: BeamPattern
    position: np.ndarray
    rsrp_dbm: np.ndarray
    power: np.ndarray
    zenith: np.ndarray
    azimuth: np.ndarray

    def __len__(self) -> int:
        return len(self.position)

    def caps(self, n_elevation: int, n_azimuth: int) -> torch.Tensor:
        """Ground-truth CAPS ``[n, n_elevation * n_azimuth]`` float64 (binned path powers)."""
        return bin_caps(*map(torch.from_numpy, (self.power, self.zenith, self.azimuth)),
                        n_elevation=n_elevation, n_azimuth=n_azimuth)


@dataclass
class WalkingTest:
    """All rounds of a walking test, the config they were made with and where the paths came from."""

    config: WalkingTestConfig
    rounds: list[WalkingRound]
    backend: str
    site: dict[str, Any] = field(default_factory=dict)
    path: Path | None = None

    @property
    def panel(self) -> LscmPanel:
        return self.config.panel()

    def panel_for(self, pattern: BeamPattern) -> LscmPanel:
        return pattern.apply(self.panel)

    def beam_pattern(self, pattern: BeamPattern | int) -> torch.Tensor:
        """``A`` of a pattern (or of round index r, 0-based): ``[M, N]`` float64."""
        p = self.rounds[pattern].pattern if isinstance(pattern, int) else pattern
        return self.panel_for(p).beam_pattern()

    def caps(self, r: int) -> torch.Tensor:
        """Ground-truth CAPS of round r (0-based), ``[n, N]``."""
        return self.rounds[r].caps(self.config.n_elevation, self.config.n_azimuth)

    def simulate_rsrp(self, r: int, pattern: BeamPattern, seed: int,
                      beam_power_scale: torch.Tensor | None = None) -> torch.Tensor:
        """Re-measure round r's samples (the same ray-traced paths) under another pattern: ``[n, M]`` dBm.

        The paths do not depend on the BS beams, so this is what a new walking test with that
        pattern would report (fresh fading and noise from ``seed``). ``beam_power_scale`` ``[M]``
        scales each beam's power (e.g. :func:`~chanlab.channels.beam_patterns.power_limited`'s).
        """
        rd = self.rounds[r]
        return _measure(self.config, self.panel_for(pattern), rd.power, rd.zenith, rd.azimuth, seed,
                        beam_power_scale)


def _measure(cfg: WalkingTestConfig, panel: LscmPanel, power, zenith, azimuth, seed: int,
             beam_power_scale: torch.Tensor | None = None) -> torch.Tensor:
    gen = torch_generator(seed)
    beams = panel.beams()
    if beam_power_scale is not None:
        beams = beams * torch.as_tensor(beam_power_scale, dtype=torch.float64).sqrt()[None, :]
    mw = rsrp_from_paths(*map(torch.as_tensor, (power, zenith, azimuth)), beams, n_y=panel.n_y,
                         n_z=panel.n_z, spacing=panel.spacing, phase_error_std=panel.phase_error_std,
                         power_dbm=panel.power_dbm, n_draws=cfg.n_fading_draws, generator=gen)
    return measure_rsrp(mw, noise_std_db=cfg.noise_std_db, step_db=cfg.report_step_db, generator=gen)


def _sector_route(loop: np.ndarray, bs: np.ndarray, bs_azimuth: float, half_width_deg: float,
                  n_points: int) -> np.ndarray:
    """The loop's longest run inside the sector, resampled to ``n_points`` evenly along the walk."""
    bearing = np.degrees(np.angle(np.exp(1j * (np.arctan2(loop[:, 1] - bs[1], loop[:, 0] - bs[0]) - bs_azimuth))))
    inside = np.abs(bearing) <= half_width_deg
    if not inside.any():
        raise DataError("walking test: no route point lies in the panel's sector")
    # rotate the closed loop so that it starts outside the sector, then take the longest inside run
    start = int(np.argmin(inside)) if not inside.all() else 0
    loop, inside = np.roll(loop, -start, 0), np.roll(inside, -start)
    edges = np.flatnonzero(np.diff(np.concatenate([[0], inside.astype(int), [0]])))
    runs = edges.reshape(-1, 2)
    a, b = runs[np.argmax(runs[:, 1] - runs[:, 0])]
    seg = loop[a:b]
    arc = np.concatenate([[0], np.cumsum(np.linalg.norm(np.diff(seg[:, :2], axis=0), axis=1))])
    at = np.linspace(0, arc[-1], n_points)
    return np.stack([np.interp(at, arc, seg[:, k]) for k in range(3)], 1)


def _resolve_backend(backend: str) -> tuple[str, str]:
    if backend == "stochastic":
        return backend, "asked for"
    from chanlab.channels.raytracing import rt_status

    ok, reason = rt_status()
    if backend == "rt" and not ok:
        raise ConfigError(f"walking test: backend 'rt' needs Sionna RT, which cannot run here: {reason}. "
                          "Use backend='stochastic' (or 'auto') for the stochastic fallback")
    if backend == "auto":
        backend = "rt" if ok else "stochastic"
        if not ok:
            get_logger("channels").warning("walking test: ray tracing unavailable (%s); using the stochastic "
                                           "fallback of chanlab.channels.geometric_paths, which is not ray tracing",
                                           reason)
    return backend, reason


def _site(backend: str, seed: int):
    if backend == "rt":
        from chanlab.channels.raytracing import RtSite

        return RtSite()
    from chanlab.channels.geometric_paths import StochasticSite

    return StochasticSite(scene_seed=seed)


def _site_and_routes(cfg: WalkingTestConfig, backend: str, seed: int):
    """``(BS position, BS azimuth in rad, trace function, per-round routes)``."""
    site = _site(backend, seed)
    if backend == "rt":
        from chanlab.channels import raytracing as rt

        loop = rt.route_loop(site, n_points=8 * cfg.points_per_round, seed=seed)
        jitter = lambda route, r: rt.jitter_route(route, cfg.jitter_m, site=site, seed=seed * 1000 + r)  # noqa: E731
        trace = lambda pos: rt.trace_paths(pos, site=site, carrier_frequency=cfg.carrier_frequency,  # noqa: E731
                                           max_depth=cfg.max_depth, diffraction=cfg.diffraction,
                                           max_paths=cfg.max_paths, seed=seed)
    else:
        from chanlab.channels import geometric_paths as gp

        loop = gp.loop_route(site.bs_position[:2], site.route_radius, 8 * cfg.points_per_round, seed=seed,
                             z=site.ue_height)

        def jitter(route, r):
            rng = np.random.default_rng([seed, r, 7])
            return route + np.concatenate([rng.normal(0, cfg.jitter_m, (len(route), 2)), np.zeros((len(route), 1))], 1)

        trace = lambda pos: gp.stochastic_paths(pos, site=site, carrier_frequency=cfg.carrier_frequency,  # noqa: E731
                                                max_paths=cfg.max_paths)
    bs = np.asarray(site.bs_position, dtype=np.float64)
    bs_az = np.radians(site.bs_azimuth_deg)
    route = _sector_route(loop, bs, bs_az, cfg.sector_half_width_deg, cfg.points_per_round)
    routes = [route if cfg.jitter_m == 0 else jitter(route, r) for r in range(cfg.n_rounds)]
    return bs, bs_az, trace, routes


def _build(cfg: WalkingTestConfig, backend: str, seed: int) -> dict[str, np.ndarray]:
    bs, bs_az, trace, routes = _site_and_routes(cfg, backend, seed)
    positions = np.concatenate(routes)
    rounds = np.repeat(np.arange(cfg.n_rounds), [len(r) for r in routes])
    paths = trace(positions)
    azimuth = wrap_angle(torch.from_numpy(paths["azimuth"] - bs_az)).numpy()
    keep, rsrp = [], []
    for r in progress(range(cfg.n_rounds), desc="walking test: RSRP", unit="round"):
        idx = np.flatnonzero(rounds == r)
        panel = WALKING_TEST_PATTERNS[r].apply(cfg.panel())
        y = _measure(cfg, panel, paths["power"][idx], paths["zenith"][idx], azimuth[idx],
                     int(np.random.SeedSequence([seed, r, 3]).generate_state(1)[0])).numpy()
        ok = y.max(1) >= cfg.min_rsrp_dbm
        keep.append(idx[ok])
        rsrp.append(y[ok])
    keep = np.concatenate(keep)
    return {"round": rounds[keep].astype(np.int64), "position": positions[keep],
              "rsrp_dbm": np.concatenate(rsrp).astype(np.float32), "path_power": paths["power"][keep],
              "path_zenith": paths["zenith"][keep], "path_azimuth": azimuth[keep]}


def generate_walking_test(config: WalkingTestConfig | None = None, *, seed: int = 0,
                          cache: str | Path | None = None) -> WalkingTest:
    """Generate (or read from the cache) a walking test (module docstring).

    Args:
        config: the parameters (default :class:`WalkingTestConfig`).
        seed: route, jitter, fading, noise and (stochastic backend) scene.
        cache: the cache folder (default :func:`chanlab.channels.store.cache_dir`).

    Returns:
        A :class:`WalkingTest`; ``backend`` says which path model made it.
    """
    from chanlab.channels.store import cached_dataset

    cfg = config or WalkingTestConfig()
    backend, reason = _resolve_backend(cfg.backend)
    params = dict(asdict(cfg), backend=backend, patterns=[p.to_dict() for p in WALKING_TEST_PATTERNS[:cfg.n_rounds]])
    path, _ = cached_dataset(_GENERATOR, params, seed, lambda: _build(cfg, backend, seed), cache=cache,
                             attrs={"site": asdict(_site(backend, seed)), "backend_note": "ray tracing (Sionna RT)" if backend == "rt"
                                    else f"stochastic fallback, not ray tracing ({reason})"})
    return load_walking_test(path, config=cfg)


def load_walking_test(path: str | Path, *, config: WalkingTestConfig | None = None) -> WalkingTest:
    """Read a walking test written by :func:`generate_walking_test`."""
    from chanlab.channels.store import read_dataset

    ds = read_dataset(path)
    if ds.provenance.get("generator") != _GENERATOR:
        raise DataError(f"{path}: expected a walking test ({_GENERATOR}), got {ds.provenance.get('generator')!r}")
    params = dict(ds.provenance["params"])
    backend = params.pop("backend")
    params.pop("patterns", None)
    cfg = config or WalkingTestConfig(**params, backend=backend)
    a = ds.arrays
    rounds = []
    for r in range(cfg.n_rounds):
        m = a["round"] == r
        rounds.append(WalkingRound(r, WALKING_TEST_PATTERNS[r], a["position"][m], a["rsrp_dbm"][m],
                                   a["path_power"][m], a["path_zenith"][m], a["path_azimuth"][m]))
    return WalkingTest(cfg, rounds, backend, site=ds.provenance.get("site", {}), path=Path(path))

