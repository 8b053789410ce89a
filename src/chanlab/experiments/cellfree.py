"""Cell-free experiments of the RJAPCBN paper (``cellfree-robust-ap-clustering.txt``, Sec. V).

* ``cellfree/error-levels`` (Figs. 5–6): worst-case sum rate and Q_ave of every method at
  several CSI error levels η.
* ``cellfree/users`` (Figs. 7–8) and ``cellfree/antennas`` (Figs. 9–10): the same over the
  number of users I and of AP antennas M.
* ``cellfree/lambda`` (Fig. 4): RJAPCBN's worst-case sum rate and Q_ave over λ of Eq. (32).
* ``cellfree/kernels`` (Table I): RJAPCBN over convolution kernel sizes.
* ``cellfree/complexity`` (Table II, Fig. 11): multiplication counts (Table II's expressions)
  beside FLOPs measured by torch's counter, over the number of users.

Every sweep also runs ``robust_ga``, per-drop gradient ascent on the exact worst-case sum rate
from the WMMSE solution (:mod:`chanlab.classical.robust_ascent`): not a paper method but a
reference for how high the bound lets the worst-case sum rate go.

All numbers come from :func:`chanlab.cellfree.compare.compare_methods` or the counters.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

import numpy as np

from chanlab.cellfree.compare import Baselines, Setting, Training, compare_methods, parse_kernel
from chanlab.core.errors import ConfigError
from chanlab.core.progress import progress
from chanlab.core.registry import Claim, Experiment, register

PAPER = "cellfree-robust-ap-clustering.txt"
LABELS = {"rjapcbn": "RJAPCBN", "jcbnet": "JcbNet", "cnns": "CNNs [16]", "wmmse_imperfect": "WMMSE (imperfect)",
          "swmmse": "S-WMMSE", "wmmse_perfect": "WMMSE (perfect CSI)",
          "robust_ga": "robust GA (reference)"}


@dataclass(frozen=True)
class SweepConfig:
    setting: Setting = field(default_factory=Setting)
    training: Training = field(default_factory=Training)
    baselines: Baselines = field(default_factory=Baselines)
    values: tuple[float, ...] = (0.05, 0.1, 0.15, 0.2)


_QUICK = {"setting.n_train": 4000, "setting.n_val": 300, "setting.n_test": 500, "training.epochs": 20,
          "training.cnn_epochs": 5, "baselines.wmmse_iters": 50}
_SMOKE = {"setting.n_aps": 4, "setting.n_ant": 2, "setting.n_users": 3, "setting.n_train": 32,
          "setting.n_val": 8, "setting.n_test": 8, "training.epochs": 1, "training.cnn_epochs": 1,
          "training.n_units": 2, "baselines.wmmse_iters": 3,
          "baselines.ga_steps": 3}


def _sweep(cfg: SweepConfig, ctx, field_name: str, label: str, cast=float, methods=None) -> dict:
    if not cfg.values:
        raise ConfigError("values: expected at least one value to sweep")
    rows = {}
    for value in progress(cfg.values, total=len(cfg.values), desc=label, unit="point"):
        setting = dataclasses.replace(cfg.setting, **{field_name: cast(value)})
        rows[f"{value:g}"] = compare_methods(setting, cfg.training, cfg.baselines, ctx, f"{label}{value:g}",
                                             methods)
    methods_seen = list(next(iter(rows.values())))
    series = {m: {k: [rows[v][m][k] for v in rows] for k in rows[next(iter(rows))][m]} for m in methods_seen}
    result = {"sweep": label, "values": [cast(v) for v in cfg.values], "methods": series}
    _figure(ctx, result, label)
    return result


def _figure(ctx, result: dict, label: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(9.5, 3.6))
    for m, series in result["methods"].items():
        axes[0].plot(result["values"], series["worst_case_sum_rate"], "o-", label=LABELS.get(m, m))
        axes[1].plot(result["values"], series["q_ave"], "o-", label=LABELS.get(m, m))
    axes[0].set_ylabel("worst-case sum rate (bit/s/Hz)")
    axes[1].set_ylabel("Q_ave (serving APs per user)")
    for ax in axes:
        ax.set_xlabel(label)
        ax.grid(True, alpha=0.3)
    axes[1].legend(fontsize=7)
    ctx.save_figure(fig, f"{label.replace(' ', '_')}")


def run_error_levels(cfg: SweepConfig, ctx) -> dict:
    return _sweep(cfg, ctx, "error_level", "error level")


def run_users(cfg: SweepConfig, ctx) -> dict:
    return _sweep(cfg, ctx, "n_users", "users", int)


def run_antennas(cfg: SweepConfig, ctx) -> dict:
    return _sweep(cfg, ctx, "n_ant", "antennas", int)


def run_lambda(cfg: SweepConfig, ctx) -> dict:
    if not cfg.values:
        raise ConfigError("values: expected at least one λ")
    rows = []
    for lam in progress(cfg.values, total=len(cfg.values), desc="lambda", unit="λ"):
        training = dataclasses.replace(cfg.training, lam=float(lam))
        rows.append(compare_methods(cfg.setting, training, cfg.baselines, ctx, f"lam{lam:g}", ("rjapcbn",))["rjapcbn"])
    result = {"sweep": "lambda", "values": list(cfg.values),
              "methods": {"rjapcbn": {k: [r[k] for r in rows] for k in rows[0]}}}
    _figure(ctx, result, "lambda")
    return result


# ----- claims --------------------------------------------------------------------------------

def _series(res, method, key):
    return np.asarray(res["methods"][method][key], dtype=float)


def _beats(key: str, better) -> callable:
    def check(res) -> tuple[bool, str]:
        mine = _series(res, "rjapcbn", key)
        ok, parts = True, []
        for m in ("wmmse_imperfect", "swmmse", "jcbnet"):
            if m not in res["methods"]:
                return False, f"{m} was not run"
            other = _series(res, m, key)
            ok &= bool(np.all(better(mine, other)))
            parts.append(f"{LABELS[m]} {', '.join(f'{x:.2f}' for x in other)}")
        return ok, f"RJAPCBN {', '.join(f'{x:.2f}' for x in mine)} vs " + "; ".join(parts)
    return check


def _perfect_bounds(res) -> tuple[bool, str]:
    mine, top = _series(res, "rjapcbn", "worst_case_sum_rate"), _series(res, "wmmse_perfect", "worst_case_sum_rate")
    return bool(np.all(top >= mine)), (f"WMMSE perfect {', '.join(f'{x:.1f}' for x in top)} vs RJAPCBN "
                                       f"{', '.join(f'{x:.1f}' for x in mine)} bit/s/Hz")


def _cheaper(res) -> tuple[bool, str]:
    mine = _series(res, "rjapcbn", "multiplications")[0]
    wmmse = _series(res, "wmmse_imperfect", "multiplications")[0]
    return bool(wmmse >= 10 * mine), f"WMMSE {wmmse:.3g} vs RJAPCBN {mine:.3g} multiplications ({wmmse / mine:.0f}×)"


_SWEEP_CLAIMS = (
    Claim("RJAPCBN has a higher worst-case sum rate than WMMSE (imperfect CSI), S-WMMSE and JcbNet at every point",
          _beats("worst_case_sum_rate", lambda a, b: a > b)),
    Claim("RJAPCBN serves each user with fewer APs (smaller Q_ave) than WMMSE (imperfect CSI), S-WMMSE and JcbNet",
          _beats("q_ave", lambda a, b: a < b)),
    Claim("WMMSE with perfect CSI bounds RJAPCBN's worst-case sum rate from above", _perfect_bounds),
    Claim("RJAPCBN needs at least 10× fewer multiplications than WMMSE", _cheaper),
)

register(Experiment(
    name="cellfree/error-levels",
    summary="RJAPCBN vs WMMSE, S-WMMSE, CNNs, JcbNet over the CSI error level (Figs. 5-6)",
    config=SweepConfig, run=run_error_levels,
    presets={"smoke": dict(_SMOKE, values=(0.1, 0.2)), "quick": dict(_QUICK, values=(0.1, 0.2, 0.3)), "paper": {}},
    claims=_SWEEP_CLAIMS, paper=PAPER,
))

register(Experiment(
    name="cellfree/users",
    summary="RJAPCBN vs baselines over the number of users I (Figs. 7-8)",
    config=SweepConfig, run=run_users,
    presets={"smoke": dict(_SMOKE, values=(2, 3)), "quick": dict(_QUICK, values=(8, 12, 16)),
             "paper": {"values": (8, 10, 12, 14, 16)}},
    claims=_SWEEP_CLAIMS, paper=PAPER,
))

register(Experiment(
    name="cellfree/antennas",
    summary="RJAPCBN vs baselines over the number of AP antennas M (Figs. 9-10)",
    config=SweepConfig, run=run_antennas,
    presets={"smoke": dict(_SMOKE, values=(1, 2)), "quick": dict(_QUICK, values=(2, 4, 6)),
             "paper": {"values": (2, 3, 4, 5, 6)}},
    claims=_SWEEP_CLAIMS, paper=PAPER,
))


def _lambda_trade_off(res) -> tuple[bool, str]:
    rate, q = _series(res, "rjapcbn", "worst_case_sum_rate"), _series(res, "rjapcbn", "q_ave")
    order = np.argsort(res["values"])
    ok = bool(q[order][-1] < q[order][0] and rate[order][-1] < rate[order][0])
    return ok, (f"λ {', '.join(f'{v:g}' for v in np.asarray(res['values'])[order])}: rate "
                f"{', '.join(f'{x:.1f}' for x in rate[order])}, Q_ave {', '.join(f'{x:.2f}' for x in q[order])}")


register(Experiment(
    name="cellfree/lambda",
    summary="RJAPCBN's worst-case sum rate and Q_ave over λ of Eq. (32) (Fig. 4)",
    config=SweepConfig, run=run_lambda,
    presets={"smoke": dict(_SMOKE, values=(0.0, 1.0)), "quick": dict(_QUICK, values=(0.0, 0.1, 1.0)),
             "paper": {"values": (0.0, 0.05, 0.1, 0.2, 0.5, 1.0)}},
    claims=(Claim("A larger λ gives fewer serving APs and a lower worst-case sum rate", _lambda_trade_off),),
    paper=PAPER,
))


# ----- Table I: kernels -----------------------------------------------------------------------

@dataclass(frozen=True)
class KernelsConfig:
    setting: Setting = field(default_factory=Setting)
    training: Training = field(default_factory=Training)
    baselines: Baselines = field(default_factory=Baselines)
    kernels: tuple[str, ...] = ("7x7", "7x5", "5x5", "5x3", "3x3")


def run_kernels(cfg: KernelsConfig, ctx) -> dict:
    if not cfg.kernels:
        raise ConfigError("kernels: expected at least one kernel size such as '5x5'")
    for k in cfg.kernels:
        parse_kernel(k)
    rows = {}
    for k in progress(cfg.kernels, total=len(cfg.kernels), desc="kernels", unit="kernel"):
        training = dataclasses.replace(cfg.training, kernel=k)
        rows[k] = compare_methods(cfg.setting, training, cfg.baselines, ctx, f"kernel{k}", ("rjapcbn",))["rjapcbn"]
    return {"kernels": list(cfg.kernels), "rjapcbn": rows}


def _kernel_trade_off(res) -> tuple[bool, str]:
    rows = res["rjapcbn"]
    area = {k: np.prod(parse_kernel(k)) for k in rows}
    big, small = max(area, key=area.get), min(area, key=area.get)
    ok = bool(rows[big]["multiplications"] > rows[small]["multiplications"]
              and rows[big]["worst_case_sum_rate"] >= rows[small]["worst_case_sum_rate"])
    return ok, "; ".join(f"{k}: rate {r['worst_case_sum_rate']:.1f}, Q_ave {r['q_ave']:.2f}, "
                         f"{r['multiplications']:.3g} mult." for k, r in rows.items())


register(Experiment(
    name="cellfree/kernels",
    summary="RJAPCBN's worst-case sum rate, Q_ave and multiplications over kernel sizes (Table I)",
    config=KernelsConfig, run=run_kernels,
    presets={"smoke": dict(_SMOKE, kernels=("3x3", "5x3")), "quick": dict(_QUICK, kernels=("7x7", "5x5", "3x3")),
             "paper": {}},
    claims=(Claim("A larger kernel costs more multiplications and gives at least the worst-case sum rate "
                  "of the smallest", _kernel_trade_off),),
    paper=PAPER,
))


# ----- Table II / Fig. 11: complexity ------------------------------------------------------------

@dataclass(frozen=True)
class ComplexityConfig:
    n_aps: int = 16
    n_ant: int = 4
    users: tuple[int, ...] = (8, 10, 12, 14, 16)


def run_complexity(cfg: ComplexityConfig, ctx) -> dict:
    """Table II's analytic multiplication counts beside torch-measured FLOPs of the networks."""
    import torch

    from chanlab.cellfree.model import RJAPCBN
    from chanlab.cellfree.two_stage_cnn import TwoStageCNN
    from chanlab.classical import wmmse as wm
    from chanlab.metrics.flops import count_flops

    if not cfg.users:
        raise ConfigError("users: expected at least one number of users")
    analytic = {k: [] for k in ("wmmse", "swmmse", "cnns", "jcbnet", "rjapcbn")}
    measured = {"rjapcbn": [], "jcbnet": [], "cnns": []}
    for n_users in cfg.users:
        sizes = dict(n_aps=cfg.n_aps, n_ant=cfg.n_ant, n_users=int(n_users))
        analytic["wmmse"].append(float(wm.multiplication_count_wmmse(**sizes)))
        analytic["swmmse"].append(float(wm.multiplication_count_sparse_wmmse(**sizes)))
        analytic["cnns"].append(float(wm.multiplication_count_cnn(**sizes)))
        analytic["jcbnet"].append(float(wm.multiplication_count_jcbnet(**sizes)))
        analytic["rjapcbn"].append(float(wm.multiplication_count_rjapcbn(**sizes)))
        h = torch.randn(1, int(n_users), cfg.n_aps, cfg.n_ant, dtype=torch.complex64)
        for name, model in (("rjapcbn", RJAPCBN(**sizes)), ("jcbnet", RJAPCBN(**sizes, threshold="shared")),
                            ("cnns", TwoStageCNN(**sizes))):
            # A multiply-add is 2 FLOPs: half the FLOPs is the count of multiplications.
            measured[name].append(count_flops(model.eval(), h) / 2)
    result = {"users": list(cfg.users), "analytic_multiplications": analytic, "measured_multiplications": measured}
    _complexity_figure(ctx, result)
    return result


def _complexity_figure(ctx, result: dict) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5.2, 3.8))
    for name, values in result["analytic_multiplications"].items():
        ax.semilogy(result["users"], values, "o-", label=f"{LABELS.get(name, name)} (Table II)")
    for name, values in result["measured_multiplications"].items():
        ax.semilogy(result["users"], values, "x--", label=f"{LABELS.get(name, name)} (measured)")
    ax.set_xlabel("number of users I")
    ax.set_ylabel("real multiplications")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=6)
    ctx.save_figure(fig, "complexity")


def _complexity_claim(res) -> tuple[bool, str]:
    a = res["analytic_multiplications"]
    ratio = np.asarray(a["wmmse"]) / np.asarray(a["rjapcbn"])
    return bool(np.all(ratio >= 10)), f"WMMSE / RJAPCBN = {', '.join(f'{r:.0f}' for r in ratio)} over I = {res['users']}"


register(Experiment(
    name="cellfree/complexity",
    summary="Multiplication counts of every method (Table II, Fig. 11), analytic and measured",
    config=ComplexityConfig, run=run_complexity,
    presets={"smoke": {"n_aps": 4, "n_ant": 2, "users": (2, 3)}, "quick": {}, "paper": {}},
    claims=(Claim("RJAPCBN needs at least 10× fewer multiplications than WMMSE at every number of users",
                  _complexity_claim),),
    paper=PAPER,
))
