"""Gridization in the field (Section V-B, Figs. 9–10) and beam-pattern optimization (eq. 31).

``gridization/walking-test`` generates a walking test (:mod:`chanlab.channels.walking_test`:
ray-traced with Sionna RT where it runs, else the labelled stochastic fallback; results say
which in ``backend``), fits the ten methods of :data:`chanlab.gridization.field.FIELD_METHODS`
on round 1 (CSG-AE holds out 10 % for validation) and scores them on rounds 2…R:

* RSRP prediction (eq. 34, :func:`chanlab.metrics.grid_rsrp.grid_rsrp_errors`): Active MAE,
  Overall MAE, active ratio;
* clustering against K-means on the test round's locations (ARI, NMI, completeness,
  homogeneity, V-measure);
* cluster sizes (Fig. 10c);
* because the paths are known, the CAPS error of each grid's CAPS against the mean ground-truth
  CAPS of the samples assigned to it (the norm ratio of eq. 32), on the training round and
  on the test rounds.

``results["methods"][METHOD][METRIC]`` holds ``mean`` and ``runs`` (``[seed][test round]``),
computed in :func:`_evaluate`; ``cluster_sizes`` holds every grid's size per seed and round.

``gridization/beam-optimization`` fits CSG-AE (and, for comparison, chosen baselines) on round 1,
searches :func:`chanlab.channels.beam_patterns.pattern_family` for the pattern of best predicted
coverage (:mod:`chanlab.gridization.beam_optimization`), and measures every candidate by
re-simulating round 1's paths under it (:meth:`~chanlab.channels.walking_test.WalkingTest.simulate_rsrp`,
same fading seed for every candidate). ``results["methods"][METHOD]`` holds the predicted and
measured coverage of every candidate, the chosen pattern and both gains.

Seeds: every seed a run uses (``data.seed`` for the walking test, the ``seeds`` entries or
``seed`` for the fits and the location K-means, ``measure_seed`` for the re-simulation) is
``seed + 1000 · run seed`` (:func:`chanlab.experiments.gridization.run_seed`; the run seed is
``--seed``), so run seed 0 uses the configured seeds; results record the ones used.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field, fields, replace
from typing import Any

import torch

from chanlab.channels.walking_test import WalkingTestConfig
from chanlab.core.claims import NothingToCheck, Outcome, margin_outcome, require, worst_margin
from chanlab.core.errors import ConfigError
from chanlab.core.progress import progress
from chanlab.core.registry import Claim, Experiment, register
from chanlab.experiments.gridization import PAPER, Training, _gridizer, run_seed

CLUSTERING = ("ari", "nmi", "completeness", "homogeneity", "v_measure")
RSRP_METRICS = ("active_mae", "overall_mae", "active_ratio")
CAPS_METRICS = ("caps_nmse_train", "caps_nmse_test")
PIDA, NAIVE = "csg-pida", "csg-naive"


@dataclass(frozen=True)
class FieldData(WalkingTestConfig):
    """The walking test (:class:`~chanlab.channels.walking_test.WalkingTestConfig`; the paper's 10,000
    samples per round by default), its seed, and the grids: K = 100, L = 5 as in Section V-B."""

    points_per_round: int = 10000
    seed: int = 0
    n_grids: int = 100
    sparsity: int = 5

    def walking_test(self):
        from chanlab.channels.walking_test import generate_walking_test

        walk = {f.name: getattr(self, f.name) for f in fields(WalkingTestConfig)}
        return generate_walking_test(WalkingTestConfig(**walk), seed=self.seed)


@dataclass(frozen=True)
class WalkingTestExperimentConfig:
    data: FieldData = field(default_factory=FieldData)
    training: Training = field(default_factory=Training)
    methods: tuple[str, ...] = ("gsg-omp", "gsg-nomp", "gsg-wnomp", "bsg-omp", "bsg-nomp", "bsg-wnomp",
                                "csg-naive", "csg-detached", "csg-asynchronous", "csg-pida")
    seeds: tuple[int, ...] = (0, 1, 2, 3, 4)


@dataclass(frozen=True)
class Search:
    """The candidate family of :func:`chanlab.channels.beam_patterns.pattern_family`."""

    tilt_offsets_deg: tuple[float, ...] = (-4.0, -2.0, 0.0, 2.0, 4.0, 6.0)
    azimuth_offsets_deg: tuple[float, ...] = (-10.0, -5.0, 0.0, 5.0, 10.0)
    azimuth_spreads: tuple[float, ...] = (0.8, 1.0, 1.2)
    tilt_spreads: tuple[float, ...] = (0.75, 1.0, 1.25)


@dataclass(frozen=True)
class BeamOptimizationConfig:
    data: FieldData = field(default_factory=FieldData)
    training: Training = field(default_factory=Training)
    search: Search = field(default_factory=Search)
    methods: tuple[str, ...] = ("csg-pida", "gsg-wnomp", "bsg-wnomp")
    seed: int = 0
    measure_seed: int = 1234


# ----- shared pieces ----------------------------------------------------------------------------

def _check_methods(methods) -> None:
    from chanlab.gridization.field import FIELD_METHODS

    unknown = [m for m in methods if m not in FIELD_METHODS]
    if unknown or not methods:
        raise ConfigError(f"methods: unknown {unknown or '(none given)'}; choose from {', '.join(FIELD_METHODS)}")


def _fit(method: str, data: FieldData, training: Training, round1, beam_pattern, seed: int, ctx):
    """One method fitted on the training round → :class:`~chanlab.gridization.field.FieldGridding`."""
    from chanlab.gridization.field import csg_gridding, fit_space_gridization

    if method.startswith("csg-"):
        scheme = method[len("csg-"):]
        g = _gridizer(data, training, beam_pattern, scheme, seed, ctx.device)
        g.fit(round1.rsrp_dbm, checkpoint=lambda phase: ctx.checkpoint(f"{method}-seed{seed}-{phase}"),
              desc=f"{method} seed={seed}")
        return csg_gridding(method, g), g.history_
    return fit_space_gridization(method, torch.from_numpy(round1.position), torch.from_numpy(round1.rsrp_dbm),
                                 beam_pattern, n_grids=data.n_grids, sparsity=data.sparsity, seed=seed), None


def _true_grid_caps(wt, r: int, labels: torch.Tensor, n_grids: int, chunk: int = 2048) -> torch.Tensor:
    """Mean ground-truth CAPS of each grid's samples in round r, ``[K, N]`` (binned in chunks)."""
    from chanlab.channels.paths import bin_caps

    rd = wt.rounds[r]
    out = torch.zeros(n_grids, wt.config.n_elevation * wt.config.n_azimuth, dtype=torch.float64)
    for start in range(0, len(rd), chunk):
        sl = slice(start, start + chunk)
        caps = bin_caps(*(torch.from_numpy(a[sl]) for a in (rd.power, rd.zenith, rd.azimuth)),
                        n_elevation=wt.config.n_elevation, n_azimuth=wt.config.n_azimuth)
        out.index_add_(0, labels[sl], caps)
    return out / torch.bincount(labels, minlength=n_grids).clamp_min(1)[:, None]


def _caps_error(wt, r: int, gridding) -> float:
    """Eq. (32)'s norm ratio between each sample's grid CAPS and its grid's true mean CAPS, in round r."""
    from chanlab.metrics.centers import sample_mean_nmse

    labels = gridding.labels if r == 0 else gridding.assign(wt.rounds[r].position, wt.rounds[r].rsrp_dbm)
    truth = _true_grid_caps(wt, r, labels, gridding.n_grids)
    live = truth.norm(dim=1)[labels] > 0
    return sample_mean_nmse(truth, labels[live], gridding.grid_caps, labels[live])


# ----- gridization/walking-test ------------------------------------------------------------------

def _evaluate(wt, gridding, seed: int, surrogate: dict[int, torch.Tensor]) -> dict[str, Any]:
    """Every test round's metrics for one fitted method (module docstring)."""
    from chanlab.metrics.clustering import clustering_scores
    from chanlab.metrics.grid_rsrp import grid_rsrp_errors

    per_round: dict[str, list[float]] = {}
    sizes = []
    for r in range(1, len(wt.rounds)):
        rd = wt.rounds[r]
        labels = gridding.assign(rd.position, rd.rsrp_dbm)
        scores = grid_rsrp_errors(gridding.predict_dbm(wt.beam_pattern(r)), torch.from_numpy(rd.rsrp_dbm), labels)
        scores.update(clustering_scores(surrogate[r], labels))
        for k, v in scores.items():
            per_round.setdefault(k, []).append(v)
        sizes.append(torch.bincount(labels, minlength=gridding.n_grids).tolist())
    test_caps = [_caps_error(wt, r, gridding) for r in range(1, len(wt.rounds))]
    return {"per_round": per_round, "cluster_sizes": sizes, "caps_nmse_train": _caps_error(wt, 0, gridding),
            "caps_nmse_test": sum(test_caps) / len(test_caps)}


def run_walking_test(cfg: WalkingTestExperimentConfig, ctx) -> dict:
    from chanlab.gridization.baselines import kmeans

    _check_methods(cfg.methods)
    if not cfg.seeds:
        raise ConfigError("seeds: expected at least one seed")
    if cfg.data.n_rounds < 2:
        raise ConfigError("data.n_rounds: expected >= 2 (round 1 trains, the others test)")
    data_seed = run_seed(cfg.data.seed, ctx)
    wt = replace(cfg.data, seed=data_seed).walking_test()
    ctx.log.info("walking test: backend %s, %s samples per round", wt.backend, [len(r) for r in wt.rounds])
    a1 = wt.beam_pattern(0)
    raw: dict[str, dict[str, Any]] = {m: {"runs": {}, "cluster_sizes": [], "seconds": 0.0, "history": []}
                                      for m in cfg.methods}
    seeds = [run_seed(seed, ctx) for seed in cfg.seeds]
    for seed in progress(seeds, desc="seeds", unit="seed"):
        surrogate = {r: kmeans(torch.from_numpy(wt.rounds[r].position[:, :2]), cfg.data.n_grids, seed).labels
                     for r in range(1, len(wt.rounds))}
        for method in cfg.methods:
            t0 = time.perf_counter()
            gridding, history = _fit(method, cfg.data, cfg.training, wt.rounds[0], a1, seed, ctx)
            ev = _evaluate(wt, gridding, seed, surrogate)
            rec = raw[method]
            rec["seconds"] += time.perf_counter() - t0
            for k, v in ev["per_round"].items():
                rec["runs"].setdefault(k, []).append(v)
            for k in CAPS_METRICS:
                rec["runs"].setdefault(k, []).append([ev[k]])
            rec["cluster_sizes"].append(ev["cluster_sizes"])
            if history is not None:
                rec["history"].append({"final_active_ratio": history.active_ratio[-1],
                                       "min_active_ratio": min(history.active_ratio),
                                       "best_epoch": history.best_epoch})
            ctx.log.info("seed %d %s: Active MAE %.2f dB, Overall MAE %.2f dB, active ratio %.2f, homogeneity %.3f, "
                         "CAPS error (train) %.3f", seed, method, _mean(ev["per_round"]["active_mae"]),
                         _mean(ev["per_round"]["overall_mae"]), _mean(ev["per_round"]["active_ratio"]),
                         _mean(ev["per_round"]["homogeneity"]), ev["caps_nmse_train"])
    methods = {m: {**{k: {"mean": _mean([x for run in v for x in run]), "runs": v} for k, v in rec["runs"].items()},
                   "cluster_sizes": rec["cluster_sizes"], "seconds": rec["seconds"], "training": rec["history"]}
               for m, rec in raw.items()}
    results = {"backend": wt.backend, "site": wt.site, "samples_per_round": [len(r) for r in wt.rounds],
               "patterns": [r.pattern.to_dict() for r in wt.rounds], "seeds": list(cfg.seeds),
               "run_seed": ctx.seed, "effective_seeds": seeds, "data_seed": data_seed,
               "n_grids": cfg.data.n_grids, "n_angles": a1.shape[1], "n_beams": a1.shape[0], "methods": methods}
    _route_figure(wt, ctx)
    _walking_figures(results, ctx)
    return results


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _mean(values) -> float:
    values = [v for v in values if v == v]
    return sum(values) / len(values) if values else float("nan")


def _route_figure(wt, ctx) -> None:
    plt = _pyplot()
    import numpy as np

    fig, axes = plt.subplots(1, 2, figsize=(10, 4.4))
    bs = wt.site.get("bs_position", (0.0, 0.0, 0.0))
    for r, rd in enumerate(wt.rounds[:3]):
        axes[0].plot(rd.position[:, 0], rd.position[:, 1], lw=0.8, label=f"round {r + 1}: {rd.pattern.label()}")
    rd = wt.rounds[0]
    sc = axes[1].scatter(rd.position[:, 0], rd.position[:, 1], c=np.max(rd.rsrp_dbm, 1), s=3, cmap="viridis")
    fig.colorbar(sc, ax=axes[1], label="best-beam RSRP (dBm), round 1")
    for ax in axes:
        ax.plot(bs[0], bs[1], "o", color="red", ms=7)
        ax.set(xlabel="x (m)", ylabel="y (m)", aspect="equal")
    axes[0].legend(fontsize=7)
    fig.suptitle(f"Walking test ({'ray-traced' if wt.backend == 'rt' else 'stochastic fallback'}; Fig. 9)")
    ctx.save_figure(fig, "fig9_route")


def _walking_figures(results: dict, ctx) -> None:
    plt = _pyplot()

    methods = list(results["methods"])
    colors = {m: plt.cm.tab10(i % 10) for i, m in enumerate(methods)}

    fig, ax = plt.subplots(figsize=(6.4, 4.8))
    for i, m in enumerate(methods, start=1):
        rec = results["methods"][m]
        xs = [x for run in rec["active_mae"]["runs"] for x in run]
        ys = [y for run in rec["overall_mae"]["runs"] for y in run]
        ax.scatter(xs, ys, s=10, alpha=0.4, color=colors[m])
        ax.scatter([rec["active_mae"]["mean"]], [rec["overall_mae"]["mean"]], marker="D", s=60, color=colors[m],
                   edgecolor="k", label=f"{i}: {m}")
    ax.set(xlabel="Active MAE (dB)", ylabel="Overall MAE (dB)", title="RSRP prediction on test rounds (Fig. 10a)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    ctx.save_figure(fig, "fig10a_mae")

    metrics = (*CLUSTERING, "active_ratio")
    fig, axes = plt.subplots(1, len(metrics), figsize=(2.6 * len(metrics), 3.6), sharey=False)
    for ax, metric in zip(axes, metrics):
        for i, m in enumerate(methods):
            vals = [v for run in results["methods"][m][metric]["runs"] for v in run]
            ax.scatter([i] * len(vals), vals, s=8, alpha=0.4, color=colors[m])
            ax.scatter([i], [results["methods"][m][metric]["mean"]], marker="D", s=40, color=colors[m], edgecolor="k")
        ax.set_xticks(range(len(methods)), [str(i + 1) for i in range(len(methods))])
        ax.set_title(metric.replace("_", " "), fontsize=9)
        ax.grid(alpha=0.3)
    fig.suptitle("Clustering against K-means on locations, and active ratio (Fig. 10b; numbers as in Fig. 10a)",
                 y=1.03)
    ctx.save_figure(fig, "fig10b_clustering")

    fig, ax = plt.subplots(figsize=(7.5, 3.8))
    for i, m in enumerate(methods):
        sizes = [s for run in results["methods"][m]["cluster_sizes"] for rnd in run for s in rnd if s > 0]
        jitter = torch.rand(len(sizes)).mul(0.6).sub(0.3).tolist()
        ax.scatter([i + j for j in jitter], sizes, s=3, alpha=0.3, color=colors[m])
    ax.set_xticks(range(len(methods)), methods, rotation=30, ha="right", fontsize=8)
    ax.set(yscale="log", ylabel="samples in grid (test rounds)", title="Cluster sizes (Fig. 10c)")
    ax.grid(alpha=0.3)
    ctx.save_figure(fig, "fig10c_cluster_sizes")


def _bsg(results) -> list[str]:
    return [m for m in results["methods"] if m.startswith("bsg-")]


def _needs(results, *methods) -> str | None:
    missing = [m for m in methods if m not in results["methods"]]
    return f"needs the methods {missing}, ran {list(results['methods'])}" if missing else None


def _require(results, *methods) -> None:
    if why := _needs(results, *methods):
        raise NothingToCheck(why)


def _require_bsg(results) -> list[str]:
    return require(_bsg(results), f"BSG method (ran {list(results['methods'])})")


def _mean_of(results, method, metric) -> float:
    return results["methods"][method][metric]["mean"]


def _seed_means(results, method, metric) -> list[float]:
    """``method``'s ``metric`` per seed, the mean over that seed's test rounds."""
    runs = require(results["methods"][method][metric]["runs"], f"seeds of {method} {metric}")
    return [_mean(require(run, f"test rounds of {method} {metric}")) for run in runs]


def _per_seed_vs_bsg(results, metric, lower_is_better: bool) -> list[float]:
    """Per seed: how far PIDA beats the best BSG variant of that seed (positive: PIDA is better)."""
    mine = _seed_means(results, PIDA, metric)
    rivals = [_seed_means(results, m, metric) for m in _require_bsg(results)]
    if lower_is_better:
        return [min(r) - a for a, *r in zip(mine, *rivals, strict=True)]
    return [a - max(r) for a, *r in zip(mine, *rivals, strict=True)]


def _pida_vs_bsg_mae(results) -> Outcome:
    """Margins in dB per seed (best BSG minus PIDA, Active and Overall MAE); ``ours`` is the relative
    change of PIDA's Active MAE against the best BSG variant (by mean), in % (negative: lower)."""
    _require(results, PIDA)
    comparisons, parts, change = [], [], {}
    for metric in ("active_mae", "overall_mae"):
        comparisons.append(margin_outcome(_per_seed_vs_bsg(results, metric, lower_is_better=True), metric))
        mine = _mean_of(results, PIDA, metric)
        best = min(_bsg(results), key=lambda m: _mean_of(results, m, metric))
        theirs = _mean_of(results, best, metric)
        change[metric] = 100.0 * (mine - theirs) / theirs
        parts.append(f"{metric}: PIDA {mine:.2f} dB vs best BSG {best} {theirs:.2f} dB ({change[metric]:+.0f} %, "
                     f"margin {comparisons[-1].margin:+.2f} dB)")
    return worst_margin(comparisons, "; ".join(parts) + f" (backend {results['backend']}; paper: 4.6 vs 6.5 dB "
                                                       f"= -30 %, 12.3 vs 35.2 dB = -65 %)",
                        ours=change["active_mae"])


def _pida_active_ratio(results) -> Outcome:
    """Per seed: PIDA's mean test-round active ratio minus 0.85."""
    _require(results, PIDA)
    per_seed = _seed_means(results, PIDA, "active_ratio")
    value = _mean_of(results, PIDA, "active_ratio")
    runs = [v for run in results["methods"][PIDA]["active_ratio"]["runs"] for v in run]
    return margin_outcome([v - 0.85 for v in per_seed],
                          f"PIDA mean active ratio {value:.3f} (min {min(runs):.3f}; paper about 0.90)", ours=value)


def _pida_homogeneity(results) -> Outcome:
    """Per seed: PIDA's homogeneity minus the best BSG variant's of that seed; ``ours`` the same
    difference on the means (the paper's "+0.15")."""
    _require(results, PIDA)
    margins = _per_seed_vs_bsg(results, "homogeneity", lower_is_better=False)
    mine = _mean_of(results, PIDA, "homogeneity")
    best = max(_bsg(results), key=lambda m: _mean_of(results, m, "homogeneity"))
    theirs = _mean_of(results, best, "homogeneity")
    return margin_outcome(margins, f"homogeneity: PIDA {mine:.3f} vs best BSG {best} {theirs:.3f} "
                                   f"(difference {mine - theirs:+.3f}; paper: about +0.15)", ours=mine - theirs)


def _pida_vs_naive(results) -> Outcome:
    """Per seed, in dB: naive minus PIDA, for Active and for Overall MAE; the smaller decides."""
    _require(results, PIDA, NAIVE)
    comparisons = []
    for metric in ("active_mae", "overall_mae"):
        naive, pida = _seed_means(results, NAIVE, metric), _seed_means(results, PIDA, metric)
        comparisons.append(margin_outcome([n - p for n, p in zip(naive, pida, strict=True)], metric))
    a = {m: (_mean_of(results, m, "active_mae"), _mean_of(results, m, "overall_mae")) for m in (PIDA, NAIVE)}
    return worst_margin(comparisons, (f"Active / Overall MAE: PIDA {a[PIDA][0]:.2f} / {a[PIDA][1]:.2f} dB, naive "
                                      f"{a[NAIVE][0]:.2f} / {a[NAIVE][1]:.2f} dB"))


# Quick: 3000 samples per round on a 4°×5° angular grid (N = 1656), 2 seeds, mini-batch epochs;
# the paper's 10,000 samples per round at N = 6552 with 2000 + 2000 full-batch epochs need a GPU.
# At 1000 samples per round CSG-AE's test-round active ratio was 0.77-0.84 (3000: 0.88): with
# 100 grids along a 200 m walk, a sparser walk leaves more codewords without a test sample.
_QUICK = {"data.points_per_round": 3000, "data.n_elevation": 46, "data.n_azimuth": 36,
          "training.pretrain_epochs": 200, "training.epochs": 40, "training.batch_size": 250, "seeds": (0, 1)}
_SMOKE = {"data.backend": "stochastic", "data.n_rounds": 3, "data.points_per_round": 60, "data.n_elevation": 7,
          "data.n_azimuth": 8, "data.n_grids": 6, "data.sparsity": 2, "data.n_fading_draws": 2,
          "training.pretrain_epochs": 2, "training.epochs": 2, "training.batch_size": 32, "training.hidden": 16,
          "methods": ("gsg-nomp", "bsg-wnomp", "csg-naive", "csg-pida"), "seeds": (0,)}

register(Experiment(
    name="gridization/walking-test",
    summary="GSG, BSG and CSG-AE (naive, detached, asynchronous, PIDA) fitted on round 1 of a ray-traced walking "
            "test and scored on the other rounds' beam patterns (Figs. 9-10)",
    config=WalkingTestExperimentConfig, run=run_walking_test,
    presets={"smoke": _SMOKE, "quick": _QUICK, "paper": {}},
    claims=(Claim("CSG-AE with PIDA has a lower Active MAE and a lower Overall MAE than every BSG variant (Fig. 10a)",
                  _pida_vs_bsg_mae, kind="paper", paper_value=-30.0,
                  paper_text="Section V-B-4a, Fig. 10a: PIDA Active MAE about 4.6 dB vs best BSG about 6.5 dB, "
                             "'a 2 dB (30%) reduction' (Overall MAE 12.3 vs 35.2 dB, -65 %); relative change of "
                             "Active MAE vs the best BSG variant, %",
                  diagnosis="CSG-AE wins or ties every round that changes the azimuth and loses the tilt-only "
                            "rounds: our ray-traced RSRP is a smooth function of position, so BSG's K-means on RSRP "
                            "gives RSRP-tight, location-contiguous grids whose nearest-centroid assignment survives "
                            "small tilt changes, and eq. (34) rewards RSRP-tight grids; CSG-AE keeps a 1.7-2 dB "
                            "floor. In the paper BSG's active ratio collapsed on real data; ours stays 0.92-0.94."),
            Claim("CSG-AE with PIDA keeps an active ratio of at least 0.85 on the test rounds (Fig. 10b)",
                  _pida_active_ratio, kind="paper", paper_value=0.90,
                  paper_text="Section V-B-4b, Fig. 10b: 'an average active ratio of about 90%'"),
            Claim("CSG-AE with PIDA has a higher homogeneity than every BSG variant (Fig. 10b)", _pida_homogeneity,
                  kind="paper", paper_value=0.15,
                  paper_text="Section V-B-4b, Fig. 10b: 'improves Homogeneity by approximately 0.15 over BSG' "
                             "(PIDA minus best BSG)",
                  diagnosis="Same cause as the MAE claim: on our smooth ray-traced RSRP, K-means on RSRP (BSG) "
                            "already gives location-contiguous grids (homogeneity about 0.68 against location "
                            "K-means), which CSG-AE's CAPS grids (about 0.48) do not match."),
            Claim("PIDA beats naive training on Active and Overall MAE (Fig. 10a)", _pida_vs_naive, kind="paper",
                  paper_text="Section IV-C-3 and Fig. 10a; the figure prints no number")),
    paper=PAPER,
))


# ----- gridization/beam-optimization --------------------------------------------------------------

def run_beam_optimization(cfg: BeamOptimizationConfig, ctx) -> dict:
    from chanlab.channels.beam_patterns import BeamPattern, pattern_family
    from chanlab.gridization.beam_optimization import measured_coverage, search_beam_patterns

    _check_methods(cfg.methods)
    data_seed, fit_seed, measure_seed = (run_seed(k, ctx) for k in (cfg.data.seed, cfg.seed, cfg.measure_seed))
    wt = replace(cfg.data, seed=data_seed).walking_test()
    a1 = wt.beam_pattern(0)
    p_max = float(a1.sum(1).max())
    candidates = pattern_family(**asdict(cfg.search))
    if BeamPattern() not in candidates:
        candidates.insert(0, BeamPattern())
    current = candidates.index(BeamPattern())
    round1 = wt.rounds[0]
    methods: dict[str, Any] = {}
    measured: dict[int, float] = {}
    for method in cfg.methods:
        gridding, _ = _fit(method, cfg.data, cfg.training, round1, a1, fit_seed, ctx)
        search = search_beam_patterns(gridding.grid_caps, candidates, wt.beam_pattern, p_max=p_max)
        # measuring every candidate shows how well the prediction ranks them, not only the chosen one
        meas = []
        for i, pattern in enumerate(progress(candidates, desc=f"{method}: re-simulate", unit="pattern")):
            y = wt.simulate_rsrp(0, pattern, measure_seed, beam_power_scale=search.power_scale[i])
            meas.append(measured_coverage(y, gridding.labels, gridding.n_grids))
        measured_t = torch.tensor(meas, dtype=torch.float64)
        measured.update({i: v for i, v in enumerate(meas)})
        pred = search.predicted
        methods[method] = {
            "best_pattern": search.best_pattern.to_dict(), "best_index": search.best,
            "predicted": pred.tolist(), "measured": meas,
            "predicted_gain_db": float(pred[search.best] - pred[current]),
            "measured_gain_db": float(measured_t[search.best] - measured_t[current]),
            "best_measured_gain_db": float(measured_t.max() - measured_t[current]),
            "rank_correlation": _spearman(pred, measured_t),
            "power_limited_beams": int((search.power_scale[search.best] < 1).sum()),
        }
        ctx.log.info("%s: best %s, predicted gain %+.2f dB, measured %+.2f dB (best possible %+.2f), rank corr %.3f",
                     method, search.best_pattern.label(), methods[method]["predicted_gain_db"],
                     methods[method]["measured_gain_db"], methods[method]["best_measured_gain_db"],
                     methods[method]["rank_correlation"])
    results = {"backend": wt.backend, "p_max_mw": p_max, "current_index": current, "run_seed": ctx.seed,
               "data_seed": data_seed, "seed": fit_seed, "measure_seed": measure_seed,
               "patterns": [p.to_dict() for p in candidates], "methods": methods}
    _search_figure(results, ctx)
    return results


def _spearman(a: torch.Tensor, b: torch.Tensor) -> float:
    from scipy.stats import spearmanr

    return float(spearmanr(a.numpy(), b.numpy()).statistic)


def _search_figure(results: dict, ctx) -> None:
    plt = _pyplot()

    names = list(results["methods"])
    fig, axes = plt.subplots(1, len(names), figsize=(4.2 * len(names), 4), squeeze=False)
    cur = results["current_index"]
    for ax, m in zip(axes[0], names):
        rec = results["methods"][m]
        ax.scatter(rec["predicted"], rec["measured"], s=8, alpha=0.5)
        ax.scatter([rec["predicted"][cur]], [rec["measured"][cur]], marker="s", color="k", label="current pattern")
        b = rec["best_index"]
        ax.scatter([rec["predicted"][b]], [rec["measured"][b]], marker="*", s=120, color="red", label="chosen (eq. 31)")
        ax.set(xlabel="predicted coverage (dBm)", ylabel="measured coverage (dBm)",
               title=f"{m}: gain {rec['predicted_gain_db']:+.2f} predicted, {rec['measured_gain_db']:+.2f} measured")
        ax.title.set_fontsize(8)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    fig.suptitle("Beam-pattern search: predicted vs re-simulated mean best-beam RSRP over grids", y=1.02)
    ctx.save_figure(fig, "beam_optimization")


def _gain_sign(results) -> Outcome:
    """One run: the margin is the smaller of the predicted and the measured gain, in dB."""
    _require(results, PIDA)
    rec = results["methods"][PIDA]
    pred, meas = float(rec["predicted_gain_db"]), float(rec["measured_gain_db"])
    return Outcome(pred > 0 and meas > 0, (
        f"PIDA: predicted gain {pred:+.2f} dB, measured {meas:+.2f} dB (best candidate measured "
        f"{rec['best_measured_gain_db']:+.2f} dB; rank correlation {rec['rank_correlation']:.3f}; "
        f"backend {results['backend']})"), margin=min(pred, meas))


_OPT_QUICK = {k: v for k, v in _QUICK.items() if k != "seeds"}
_OPT_SMOKE = {**{k: v for k, v in _SMOKE.items() if k not in ("seeds", "methods")},
              "methods": ("csg-pida", "gsg-nomp"),
              "search.tilt_offsets_deg": (0.0, 4.0), "search.azimuth_offsets_deg": (0.0, 5.0),
              "search.azimuth_spreads": (1.0,), "search.tilt_spreads": (1.0,)}

register(Experiment(
    name="gridization/beam-optimization",
    summary="Eq. (31): search tilt / azimuth / spread for the best predicted coverage on CSG-AE's grid CAPS, "
            "then measure every candidate by re-simulating the walking test",
    config=BeamOptimizationConfig, run=run_beam_optimization,
    presets={"smoke": _OPT_SMOKE, "quick": _OPT_QUICK, "paper": {}},
    claims=(Claim("The beam pattern chosen on CSG-AE's grid CAPS raises the measured coverage, with the sign of the "
                  "predicted gain (Section IV-D)", _gain_sign, kind="paper",
                  paper_text="Section IV-D, eq. (31): the paper proposes the search and reports no experiment "
                             "or number for it"),),
    paper=PAPER,
))
