"""Fine-tuning experiments of the compression paper (Sec. IV, Figs. 8–10, Table IV).

``adaptive_compression/finetune`` (Fig. 8)
    On both shifted environments, the backbones (trained on the source, cached) are adapted
    on ``H_T`` (100 CSI on the walk, 127 in the dynamic street) and evaluated on the next
    300 CSI ``H_E``: No-FT, encoder-only and the translation module at every λ; full-model
    fine-tuning under both update priors, its quantization-unaware ablation and the genie at
    the lowest λ (the paper's "low-bit-rate" backbone).
``adaptive_compression/update-period`` (Fig. 9)
    Along a walk, full-model fine-tuning on the 100 CSI before an update point, evaluated on
    the next ``d`` metres, for ``d`` from 1 to 64 m: the update bits are amortized over
    ``27.15 d`` CSI while the channel drifts from what the model was tuned on. The walk is
    a chain of ``segment_m``-metre UMa drops (see :func:`walk_csi`).
``adaptive_compression/quantization-aware`` (Fig. 10)
    Full-model fine-tuning with and without the quantizer in the loop, at every λ.
``adaptive_compression/complexity`` (Table IV)
    Trainable parameters and inference FLOPs of every scheme.

Every number in ``results.json`` comes from :func:`chanlab.adaptive_compression.finetune.fine_tune`
and :func:`~chanlab.adaptive_compression.finetune.evaluate_adapted` (real range-coded bits).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch

from chanlab.adaptive_compression.backbones import SizeSetup, TrainSetup, backbone, source_splits
from chanlab.adaptive_compression.environments import SAMPLES_PER_METRE, environment_csi
from chanlab.adaptive_compression.finetune import (
    SCHEMES, FineTuning, Translation, evaluate_adapted, fine_tune, quantize_update,
)
from chanlab.core.claims import Outcome, require, worst_margin
from chanlab.core.errors import ConfigError
from chanlab.core.progress import progress
from chanlab.core.registry import Claim, Experiment, register
from chanlab.experiments.adaptive_compression_backbone import (
    _LAMS_LARGE, _LAMS_SMALL, PAPER, PRESETS as BACKBONE_PRESETS, _sizes,
)

#: Fine-tuning set sizes of the paper: 100 CSI on the QuaDRiGa walk, 127 in DeepMIMO 'O2 dynamic'.
N_FINETUNE = {"street-mobile": 100, "dynamic-scatterers": 127}
LABELS = {"no-ft": "No-FT", "encoder-only": "EO", "translation": "TM", "full-uniform": "FM-UP",
          "full-gaussian": "FM-TGP", "full-unaware": "FM-UP (quantization-unaware)", "genie": "GA"}
#: Schemes run at every λ; the others (full model) only at ``full_lam_index``.
_PER_LAMBDA = ("no-ft", "encoder-only", "translation")


def _small_ft() -> FineTuning:
    return FineTuning(epochs=800, step=5e-4)


def _large_ft() -> FineTuning:
    return FineTuning(epochs=300, step=1e-3)


@dataclass(frozen=True)
class FineTuneConfig:
    small: SizeSetup = field(default_factory=lambda: SizeSetup(64, 64, 28965, _LAMS_SMALL, 200))
    large: SizeSetup = field(default_factory=lambda: SizeSetup(512, 256, 11200, _LAMS_LARGE, 200))
    train: TrainSetup = field(default_factory=TrainSetup)
    ft_small: FineTuning = field(default_factory=_small_ft)
    ft_large: FineTuning = field(default_factory=_large_ft)
    shifts: tuple[str, ...] = ("street-mobile", "dynamic-scatterers")
    n_eval: int = 300
    schemes: tuple[str, ...] = SCHEMES
    #: Which backbone (index into the size's λ grid) the full-model schemes fine-tune.
    full_lam_index: int = 0
    #: The translation module's brute-force-free variant is run at 64×64 only (as the paper).
    translation_large: bool = False


def _ft(cfg, size: SizeSetup) -> FineTuning:
    return cfg.ft_small if size is cfg.small else cfg.ft_large


def _check(cfg: FineTuneConfig) -> None:
    unknown = sorted(set(cfg.schemes) - set(SCHEMES))
    if unknown:
        raise ConfigError(f"schemes: unknown {unknown}; known: {', '.join(SCHEMES)}")
    if cfg.n_eval < 1:
        raise ConfigError(f"n_eval: expected a positive number of CSI, got {cfg.n_eval}")
    for size in _sizes(cfg):
        if not -len(size.lams) <= cfg.full_lam_index < len(size.lams):
            raise ConfigError(f"full_lam_index {cfg.full_lam_index} is outside {size.label}'s λ grid {size.lams}")


def shifted_window(env: str, n_finetune: int, n_eval: int, size: SizeSetup, seed: int, device):
    """``(H_T, H_E)``: ``n_finetune`` CSI and the ``n_eval`` that follow them in time.

    Both windows come from one drop: on the walk, one user walking ``(n_finetune + n_eval) /
    27.15`` metres; in the dynamic street, one link observed over consecutive 100-ms scenes
    (the paper's ``H_E`` is "30 seconds of channel realizations" of 'O2 dynamic').
    """
    n = n_finetune + n_eval
    h = environment_csi(env, n, size.n_ant, size.n_sc, seed=seed, device=device, snapshots_per_drop=n)
    return h[:n_finetune], h[n_finetune:]


def _row_series(rows: list[dict]) -> dict[str, list]:
    return {k: [r[k] for r in rows] for k in rows[0]}


def run_finetune(cfg: FineTuneConfig, ctx) -> dict:
    _check(cfg)
    results: dict = {"sizes": {}}
    for size in _sizes(cfg):
        ft = _ft(cfg, size)
        data = source_splits(size, cfg.train, ctx.seed, ctx.device)
        codecs = [backbone(size, lam, cfg.train, data, ctx) for lam in size.lams]
        full_codec = codecs[cfg.full_lam_index]
        per_size = {}
        for env in cfg.shifts:
            h_t, h_e = shifted_window(env, N_FINETUNE.get(env, 100), cfg.n_eval, size, ctx.seed + 1, ctx.device)
            curves: dict[str, dict] = {}
            jobs = [(s, i) for s in cfg.schemes if s in _PER_LAMBDA for i in range(len(size.lams))
                    if not (s == "translation" and size is cfg.large and not cfg.translation_large)]
            full = [s for s in cfg.schemes if s not in _PER_LAMBDA]
            bar = progress(total=len(jobs) + len(full), desc=f"fine-tuning {size.label} {env}", unit="scheme")
            rows: dict[str, list] = {}
            for scheme, i in jobs:
                adapted = fine_tune(codecs[i], h_t, scheme, ft, seed=ctx.seed, desc=f"{scheme} λ={size.lams[i]:g}")
                rows.setdefault(scheme, []).append(dict(evaluate_adapted(adapted, h_e), lam=size.lams[i]))
                bar.update()
            genie = None
            for scheme in ("genie", "full-uniform", "full-gaussian", "full-unaware"):
                if scheme not in full:
                    continue
                if scheme == "full-unaware":  # the genie's training, then quantized (no second run)
                    genie = genie or fine_tune(full_codec, h_t, "genie", ft, seed=ctx.seed, desc="genie")
                    adapted = quantize_update(genie, full_codec, ft, "uniform")
                else:
                    adapted = fine_tune(full_codec, h_t, scheme, ft, seed=ctx.seed, desc=scheme)
                    genie = adapted if scheme == "genie" else genie
                rows[scheme] = [dict(evaluate_adapted(adapted, h_e), lam=size.lams[cfg.full_lam_index])]
                bar.update()
            bar.close()
            for scheme, r in rows.items():
                curves[scheme] = _row_series(r)
            curves["n_finetune"] = int(h_t.shape[0])
            curves["n_eval"] = int(h_e.shape[0])
            per_size[env] = curves
            ctx.log.info("%s %s: %s", size.label, env, {s: (c["total_bits"], c["nmse_db"]) for s, c in curves.items()
                                                        if isinstance(c, dict)})
        results["sizes"][size.label] = per_size
    _figure(ctx, results, "finetune_rd")
    return results


def _figure(ctx, results: dict, name: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panels = [(label, env, curves) for label, by_env in results["sizes"].items() for env, curves in by_env.items()]
    fig, axes = plt.subplots(1, len(panels), figsize=(4.8 * len(panels), 3.8), squeeze=False)
    from chanlab.experiments._plotting import plot_curves

    for ax, (label, env, curves) in zip(axes[0], panels):
        shown = {LABELS.get(s, s): c for s, c in curves.items() if isinstance(c, dict)}
        plot_curves(ax, {k: c["total_bits"] for k, c in shown.items()}, {k: c["nmse_db"] for k, c in shown.items()})
        ax.set_title(f"{env}, CSI {label}")
        ax.set_xlabel("bits per CSI (latents + amortized update)")
        ax.set_ylabel("NMSE (dB)")
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize=7)
    ctx.save_figure(fig, name)


# ----- claims of the finetune experiment ------------------------------------------------------------

def _panels(res):
    panels = [(f"{label} {env}", curves) for label, by_env in require(res["sizes"], "CSI sizes").items()
              for env, curves in require(by_env, f"{label} environments").items()]
    return require(panels, "panels")


def _first(c: dict, key: str, what: str) -> float:
    return float(require(c[key], what)[0])


def _full_beats_baselines(res) -> Outcome:
    outcomes, parts = [], []
    for name, c in _panels(res):
        for fm in ("full-uniform", "full-gaussian"):
            rate, nmse = _first(c[fm], "total_bits", f"{name} {fm} points"), _first(c[fm], "nmse_db", f"{name} {fm}")
            for base in ("no-ft", "encoder-only"):
                b = c[base]
                costlier = [n for bits, n in zip(require(b["total_bits"], f"{name} {base} points"), b["nmse_db"])
                            if bits >= rate]
                # margin: how much lower (dB) FM's NMSE is than the best baseline point spending ≥ its bits
                margin = min(costlier) - nmse if costlier else None
                outcomes.append(Outcome(bool(costlier) and margin > 0, "", margin=margin))
                parts.append(f"{name} {LABELS[fm]} {nmse:.2f} dB @ {rate:.0f} b vs {LABELS[base]} "
                             + (f"best {min(costlier):.2f} dB among points ≥ {rate:.0f} b" if costlier else
                                f"(no point at ≥ {rate:.0f} b; max {max(b['total_bits']):.0f} b)"))
    return worst_margin(outcomes, "; ".join(parts))


def _genie_bounds(res) -> Outcome:
    # Single RD points are compared on the objective both schemes minimize, eq. (9):
    # bits + λ·D, where the genie's update costs nothing and the full model's counts.
    margins, parts = [], []
    for name, c in _panels(res):
        g = c["genie"]
        g_cost = _first(g, "rd_cost", f"{name} genie points")
        for fm in ("full-uniform", "full-gaussian"):
            f = c[fm]
            f_cost = _first(f, "rd_cost", f"{name} {fm} points")
            margins.append(f_cost - g_cost)
            parts.append(f"{name}: GA cost {g_cost:.0f} ({g['nmse_db'][0]:.2f} dB @ {g['total_bits'][0]:.0f} b) "
                         f"vs {LABELS[fm]} {f_cost:.0f} ({f['nmse_db'][0]:.2f} dB @ {f['total_bits'][0]:.0f} b)")
    margin = min(margins)
    return Outcome(margin >= 0, "; ".join(parts) + f"; smallest RD-cost gap {margin:+.1f}", margin=margin)


def _aware_beats_unaware(res) -> Outcome:
    margins, parts = [], []
    for name, c in _panels(res):
        a, u = c["full-uniform"], c["full-unaware"]
        gain = _first(u, "nmse_db", f"{name} full-unaware points") - _first(a, "nmse_db", f"{name} full-uniform points")
        margins.append(gain)
        parts.append(f"{name}: aware {a['nmse_db'][0]:.2f} dB @ {a['total_bits'][0]:.0f} b vs unaware "
                     f"{u['nmse_db'][0]:.2f} dB @ {u['total_bits'][0]:.0f} b")
    margin = min(margins)
    return Outcome(margin > 0, "; ".join(parts) + f"; smallest gain {margin:+.2f} dB", margin=margin)


# ----- update period (Fig. 9) -------------------------------------------------------------------------

@dataclass(frozen=True)
class PeriodConfig:
    small: SizeSetup = field(default_factory=lambda: SizeSetup(64, 64, 28965, _LAMS_SMALL, 200))
    large: SizeSetup = field(default_factory=lambda: SizeSetup(512, 256, 11200, _LAMS_LARGE, 200, enabled=False))
    train: TrainSetup = field(default_factory=TrainSetup)
    ft_small: FineTuning = field(default_factory=_small_ft)
    ft_large: FineTuning = field(default_factory=_large_ft)
    #: The paper's Fig. 9 backbone: λ = 5e5 at 64×64, 10× its low-rate one (index 2 of our grid).
    lam_index: int = 2
    prior: str = "uniform"
    periods_m: tuple[float, ...] = (1, 2, 4, 8, 16, 32, 64)
    #: Update points along the walk (each one fine-tuning run), spaced ``spacing_m`` apart.
    n_points: int = 8
    spacing_m: float = 13.7
    #: The walk's mobility model: a new UMa drop every ``segment_m`` metres (see walk_csi).
    segment_m: float = 20.0
    n_finetune: int = 100


def walk_csi(length_m: float, segment_m: float, size: SizeSetup, seed: int, device) -> torch.Tensor:
    """CSI along a walk at 5 km/h, 27.15 samples/m: ``[round(27.15 length_m), n_ant, n_sc]``.

    Mobility model: the walk is a chain of ``segment_m``-metre pieces, each one UMa drop of
    Sionna's TR 38.901 model whose paths evolve by their Doppler shifts along the walk.
    Sionna has no spatial consistency across drops, so within a piece the small-scale
    fading is continuous and at its end the large-scale parameters and clusters are redrawn,
    as if the user turned into another street. The default 20 m is of the order of the
    UMa large-scale-parameter correlation distances of TR 38.901 Table 7.5-6 (15–50 m).
    """
    per_segment = max(1, int(round(segment_m * SAMPLES_PER_METRE)))
    n = int(round(length_m * SAMPLES_PER_METRE))
    return environment_csi("street-mobile", n, size.n_ant, size.n_sc, seed=seed, device=device,
                           snapshots_per_drop=per_segment)


def run_update_period(cfg: PeriodConfig, ctx) -> dict:
    if not cfg.periods_m or min(cfg.periods_m) <= 0:
        raise ConfigError("periods_m: expected positive distances in metres")
    if cfg.n_points < 1 or cfg.n_finetune < 1 or cfg.segment_m <= 0 or cfg.spacing_m <= 0:
        raise ConfigError("n_points, n_finetune, segment_m and spacing_m must be positive")
    if cfg.prior not in ("uniform", "gaussian"):
        raise ConfigError(f"prior: expected 'uniform' or 'gaussian', got {cfg.prior!r}")
    scheme = f"full-{cfg.prior}"
    results: dict = {"sizes": {}}
    for size in _sizes(cfg):
        ft = _ft(cfg, size)
        data = source_splits(size, cfg.train, ctx.seed, ctx.device)
        lam = size.lams[cfg.lam_index]
        codec = backbone(size, lam, cfg.train, data, ctx)
        start = cfg.n_finetune / SAMPLES_PER_METRE
        length = start + (cfg.n_points - 1) * cfg.spacing_m + max(cfg.periods_m) + 1
        walk = walk_csi(length, cfg.segment_m, size, ctx.seed + 3, ctx.device)
        per = {d: {"total_bits": [], "latent_bits": [], "update_bits_per_csi": [], "rd_cost": [], "nmse": [],
                   "nofit_nmse": []} for d in cfg.periods_m}
        for j in progress(range(cfg.n_points), total=cfg.n_points, desc=f"update points {size.label}", unit="point"):
            at = int(round((start + j * cfg.spacing_m) * SAMPLES_PER_METRE))
            adapted = fine_tune(codec, walk[at - cfg.n_finetune:at], scheme, ft, seed=ctx.seed, desc=f"point {j}")
            for d in cfg.periods_m:
                window = walk[at:at + max(1, int(round(d * SAMPLES_PER_METRE)))]
                row = evaluate_adapted(adapted, window)
                per[d]["total_bits"].append(row["total_bits"])
                per[d]["latent_bits"].append(row["bits_real"])
                per[d]["update_bits_per_csi"].append(row["update_bits_per_csi"])
                per[d]["rd_cost"].append(row["rd_cost"])
                per[d]["nmse"].append(row["nmse"])
                per[d]["nofit_nmse"].append(codec.evaluate(window)["nmse"])
        curve = {"periods_m": list(cfg.periods_m), "lam": lam}
        # rd_cost: the objective of eq. (9) at the backbone's λ, update bits included.
        for key in ("total_bits", "latent_bits", "update_bits_per_csi", "rd_cost"):
            curve[key] = [float(np.mean(per[d][key])) for d in cfg.periods_m]
        curve["nmse_db"] = [float(10 * np.log10(np.mean(per[d]["nmse"]))) for d in cfg.periods_m]
        curve["no_ft_nmse_db"] = [float(10 * np.log10(np.mean(per[d]["nofit_nmse"]))) for d in cfg.periods_m]
        best = int(np.argmin(curve["rd_cost"]))
        curve["best_period_m"] = float(cfg.periods_m[best])
        curve["interior_optimum"] = bool(0 < best < len(cfg.periods_m) - 1)
        curve["segment_m"] = cfg.segment_m
        results["sizes"][size.label] = curve
        ctx.log.info("%s: %s", size.label, curve)
    _period_figure(ctx, results)
    return results


def _period_figure(ctx, results: dict) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(9.5, 3.7))
    for label, c in results["sizes"].items():
        axes[0].plot(c["total_bits"], c["nmse_db"], "o-", label=f"FM {label}")
        for d, x, y in zip(c["periods_m"], c["total_bits"], c["nmse_db"]):
            axes[0].annotate(f"{d:g} m", (x, y), fontsize=6, xytext=(3, 3), textcoords="offset points")
        axes[1].semilogx(c["periods_m"], c["rd_cost"], "o-", label=f"{label} (best {c['best_period_m']:g} m)")
    axes[0].set_xlabel("bits per CSI (latents + amortized update)")
    axes[0].set_ylabel("NMSE (dB)")
    axes[1].set_xlabel("update period d (m)")
    axes[1].set_ylabel("RD cost: bits + λ·D")
    for ax in axes:
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize=7)
    ctx.save_figure(fig, "update_period")


def _interior_optimum(res) -> Outcome:
    margins, parts = [], []
    for label, c in require(res["sizes"], "CSI sizes").items():
        costs = np.asarray(require(c["rd_cost"], f"{label} periods"), dtype=float)
        if len(costs) != len(c["periods_m"]) or len(costs) < 3:
            raise ValueError(f"{label}: need ≥ 3 update periods with an RD cost each")
        order = np.argsort(c["periods_m"])
        costs, periods = costs[order], np.asarray(c["periods_m"], dtype=float)[order]
        best = int(np.argmin(costs))
        # margin: how far (in RD cost) the cheaper end of the range lies above the optimum; 0 at an end
        margins.append(float(min(costs[0], costs[-1]) - costs[best]))
        listed = ", ".join(f"{d:g} m: {v:.0f}" for d, v in zip(periods, costs))
        parts.append(f"{label}: best period {periods[best]:g} m "
                     f"({'interior' if 0 < best < len(costs) - 1 else 'NO interior optimum: at an end of the range'}); "
                     f"RD cost {listed}")
    margin = min(margins)
    return Outcome(margin > 0, "; ".join(parts) + f"; ends above the optimum by ≥ {margin:.1f}", margin=margin)


# ----- quantization-aware ablation (Fig. 10) ---------------------------------------------------------

@dataclass(frozen=True)
class AwareConfig:
    small: SizeSetup = field(default_factory=lambda: SizeSetup(64, 64, 28965, _LAMS_SMALL, 200, enabled=False))
    large: SizeSetup = field(default_factory=lambda: SizeSetup(512, 256, 11200, _LAMS_LARGE, 200))
    train: TrainSetup = field(default_factory=TrainSetup)
    ft_small: FineTuning = field(default_factory=_small_ft)
    ft_large: FineTuning = field(default_factory=_large_ft)
    shift: str = "street-mobile"
    n_eval: int = 300


def run_quantization_aware(cfg: AwareConfig, ctx) -> dict:
    results: dict = {"sizes": {}}
    for size in _sizes(cfg):
        ft = _ft(cfg, size)
        data = source_splits(size, cfg.train, ctx.seed, ctx.device)
        h_t, h_e = shifted_window(cfg.shift, N_FINETUNE.get(cfg.shift, 100), cfg.n_eval, size, ctx.seed + 1,
                                  ctx.device)
        rows = {"full-uniform": [], "full-unaware": []}
        for lam in progress(size.lams, total=len(size.lams), desc=f"QAT ablation {size.label}", unit="λ"):
            codec = backbone(size, lam, cfg.train, data, ctx)
            aware = fine_tune(codec, h_t, "full-uniform", ft, seed=ctx.seed, desc=f"aware λ={lam:g}")
            genie = fine_tune(codec, h_t, "genie", ft, seed=ctx.seed, desc=f"unaware λ={lam:g}")
            rows["full-uniform"].append(dict(evaluate_adapted(aware, h_e), lam=lam))
            rows["full-unaware"].append(dict(evaluate_adapted(quantize_update(genie, codec, ft), h_e), lam=lam))
        results["sizes"][size.label] = {cfg.shift: {k: _row_series(v) for k, v in rows.items()}}
    _figure(ctx, results, "quantization_aware")
    return results


def _aware_everywhere(res) -> Outcome:
    margins, parts = [], []
    for name, c in _panels(res):
        a = np.asarray(require(c["full-uniform"]["nmse_db"], f"{name} aware points"), dtype=float)
        u = np.asarray(c["full-unaware"]["nmse_db"], dtype=float)
        if a.shape != u.shape:
            raise ValueError(f"{name}: {a.size} aware vs {u.size} unaware points")
        margins.append(float(np.min(u - a)))
        parts.append(f"{name}: aware {', '.join(f'{v:.2f}' for v in a)} dB vs unaware "
                     f"{', '.join(f'{v:.2f}' for v in u)} dB")
    margin = min(margins)
    return Outcome(margin > 0, "; ".join(parts) + f"; smallest gain {margin:+.2f} dB", margin=margin)


# ----- complexity (Table IV) -----------------------------------------------------------------------

@dataclass(frozen=True)
class ComplexityConfig:
    sizes: tuple[tuple[int, int], ...] = ((512, 256), (64, 64))


def run_complexity(cfg: ComplexityConfig, ctx) -> dict:
    from chanlab.adaptive_compression.codec import CsiCodec
    from chanlab.metrics.flops import count_flops

    out = {}
    for n_ant, n_sc in cfg.sizes:
        codec = CsiCodec(n_ant, n_sc, 1.0)
        m = codec.model
        x = torch.zeros(1, 2, n_ant, n_sc)
        backbone_flops = count_flops(m.encoder, x) + count_flops(m.decoder, m.encoder(x))
        tm = Translation()
        tm_flops = 2 * count_flops(tm, x)
        count = lambda mod: int(sum(p.numel() for p in mod.parameters()))  # noqa: E731
        out[f"{n_ant}x{n_sc}"] = {
            "encoder-only": {"trainable": count(m.encoder), "flops": backbone_flops},
            "full-model": {"trainable": count(m), "flops": backbone_flops},
            "genie": {"trainable": count(m), "flops": backbone_flops},
            "translation": {"trainable": 2 * count(tm), "flops": backbone_flops + tm_flops},
            "decoder_side_parameters": int(sum(p.numel() for _, p in m.decoder_side_parameters())),
        }
    return {"sizes": out}


def _eo_less_than_half(res) -> Outcome:
    ratios, parts = [], []
    for label, r in require(res["sizes"], "CSI sizes").items():
        eo, fm = r["encoder-only"]["trainable"], r["full-model"]["trainable"]
        ratios.append(eo / fm)
        parts.append(f"{label}: EO {eo} vs FM {fm} trainable parameters ({eo / fm:.3f})")
    worst = max(ratios)
    return Outcome(worst < 0.5, "; ".join(parts), ours=worst, margin=0.5 - worst)


def _parameter_counts(res) -> Outcome:
    sizes = require(res["sizes"], "CSI sizes")
    rounded = {label: (round(r["encoder-only"]["trainable"] / 1e3), round(r["full-model"]["trainable"] / 1e3))
               for label, r in sizes.items()}
    eo = next(iter(sizes.values()))["encoder-only"]["trainable"]
    return Outcome(all(v == (8, 16) for v in rounded.values()),
                   "; ".join(f"{k}: EO {r['encoder-only']['trainable']}, FM {r['full-model']['trainable']} trainable "
                             f"parameters (≈ {rounded[k][0]} K, {rounded[k][1]} K)" for k, r in sizes.items()),
                   ours=float(eo))


def _lighter_than_tm3(res) -> Outcome:
    sizes = require(res["sizes"], "CSI sizes")
    flops = {label: float(r["full-model"]["flops"]) for label, r in sizes.items()}
    smallest = min(flops, key=flops.get)
    worst = max(flops.values())
    return Outcome(worst < _TM3_FLOPS,
                   "; ".join(f"{k}: {v / 1e6:.1f} M FLOPs (torch's counter, {v / 2e6:.1f} M multiply-adds)"
                             for k, v in flops.items()) + f"; TM3 (Table IV) {_TM3_FLOPS / 1e6:,.0f} M",
                   ours=flops[smallest], margin=_TM3_FLOPS / worst - 1)


_TM3_FLOPS = 6380e6


# ----- registration ------------------------------------------------------------------------------

_SMOKE_FT = {"ft_small.epochs": 1, "ft_small.batch_size": 16, "ft_large.epochs": 1, "ft_large.batch_size": 16}
# CPU budget: 300 epochs at lr 1e-3 instead of the paper's 800 at 5e-4 (the same number of
# learning-rate-steps to within 25 %). The update quantizer is fitted to our backbone's updates:
# the genie's |δ| on the walk has median 0.012 and 99th percentile 0.18, so the paper's
# t = 5e-4, N = 50 (levels within ±0.012) clips half of them (FM then reached -0.9 dB where
# the genie reached -4.9 dB); t = 4e-3 keeps N = 50 and covers ±0.096, and σ = 0.04 is their RMS.
_QUICK_FT = {"ft_small.epochs": 300, "ft_small.lr": 1e-3, "ft_small.step": 4e-3, "ft_small.sigma": 0.04,
             "ft_large.epochs": 60, "ft_large.lr": 1e-3, "ft_large.step": 4e-3, "ft_large.sigma": 0.04}
_BACKBONE_SMOKE = {k: v for k, v in BACKBONE_PRESETS["smoke"].items()}
_BACKBONE_QUICK = dict(BACKBONE_PRESETS["quick"])

register(Experiment(
    name="adaptive_compression/finetune",
    summary="Fine-tuning schemes on both shifted environments: NMSE vs bits incl. model updates (Fig. 8)",
    config=FineTuneConfig,
    run=run_finetune,
    presets={
        "smoke": dict(_BACKBONE_SMOKE, **_SMOKE_FT, n_eval=6, **{"large.enabled": False}),
        # CPU budget: 64×64 only (the 512×256 fine-tuning is a paper-preset/GPU job); see _QUICK_FT.
        "quick": dict(_BACKBONE_QUICK, **_QUICK_FT, **{"large.enabled": False}),
        "paper": {},
    },
    claims=(
        Claim("On both shifts full-model fine-tuning (both priors) has a lower NMSE than every No-FT and "
              "encoder-only point that spends at least as many bits (update bits included)", _full_beats_baselines,
              kind="paper", paper_text="Sec. IV, Fig. 8 ('FM fine-tuning significantly enhances RD performance'; "
                                       "no numbers)"),
        Claim("The genie (free updates) bounds full-model fine-tuning: a lower RD cost, bits + λ·D of eq. (9)",
              _genie_bounds, kind="paper", paper_text="Sec. IV, Fig. 8 ('GA serve as a lower bound'; no numbers)"),
        Claim("Quantization-aware full-model fine-tuning beats quantization-unaware (uniform prior)",
              _aware_beats_unaware, kind="paper", paper_text="Sec. IV, Fig. 10 (no numbers in the text)"),
    ),
    paper=PAPER,
))

register(Experiment(
    name="adaptive_compression/update-period",
    summary="Full-model fine-tuning every d metres along a walk: RD trade-off and best period (Fig. 9)",
    config=PeriodConfig,
    run=run_update_period,
    presets={
        "smoke": dict(_BACKBONE_SMOKE, **_SMOKE_FT, lam_index=1, periods_m=(0.5, 1.0, 2.0), n_points=2,
                      spacing_m=1.0, segment_m=1.5, n_finetune=8),
        "quick": dict(_BACKBONE_QUICK, **_QUICK_FT, n_points=6),
        "paper": {},
    },
    claims=(Claim("The RD cost over the update period has an interior optimum", _interior_optimum, kind="paper",
                  paper_text="Sec. IV, Fig. 9: optimum 'approximately between 4 and 16 meters' (a range, no "
                             "single number)"),),
    paper=PAPER,
))

register(Experiment(
    name="adaptive_compression/quantization-aware",
    summary="Full-model fine-tuning with vs without the update quantizer in the loop (Fig. 10)",
    config=AwareConfig,
    run=run_quantization_aware,
    presets={
        "smoke": dict(_BACKBONE_SMOKE, **_SMOKE_FT, n_eval=6),
        # CPU budget: 64×64 instead of the paper's 512×256.
        "quick": dict(_BACKBONE_QUICK, **_QUICK_FT, **{"small.enabled": True, "large.enabled": False}),
        "paper": {},
    },
    claims=(Claim("Quantization-aware fine-tuning has a lower NMSE than quantization-unaware at every λ",
                  _aware_everywhere, kind="paper", paper_text="Sec. IV, Fig. 10 (no numbers in the text)"),),
    paper=PAPER,
))

register(Experiment(
    name="adaptive_compression/complexity",
    summary="Trainable parameters and inference FLOPs per fine-tuning scheme (Table IV)",
    config=ComplexityConfig,
    run=run_complexity,
    presets={"smoke": {"sizes": ((64, 64),)}, "quick": {}, "paper": {}},
    claims=(
        Claim("Encoder-only fine-tuning trains less than half the parameters of full-model fine-tuning",
              _eo_less_than_half, kind="paper", paper_value=0.5,
              paper_text="Sec. IV, Table IV: EO 8 K vs FM 16 K trainable parameters, 'less than half' → ratio 0.5 "
                         "(rounded); ours = EO / FM at the worst CSI size"),
        Claim("Encoder-only and full-model fine-tuning train about Table IV's 8 K and 16 K parameters",
              _parameter_counts, kind="analytic", paper_value=8e3,
              paper_text="Table IV: EO 8 K, FM 16 K trainable parameters; ours = EO's count"),
        Claim("The backbone's inference FLOPs stay below those of TM3 (SPTM2-ISTANet+ with the translation "
              "module, 6,380 M in Table IV) at every CSI size", _lighter_than_tm3, kind="paper", paper_value=21e6,
              paper_text="Table IV: EO and FM 21 M FLOPs at inference (CSI size and whether a multiply-add counts "
                         "1 or 2 not stated); ours = torch's FLOPs (2 per multiply-add) at our smallest size"),
    ),
    paper=PAPER,
))
