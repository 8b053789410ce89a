"""``adaptive_compression/backbone-rd`` (Fig. 2) and ``adaptive_compression/shift`` (Fig. 5).

backbone-rd trains the backbone compressor of Sattari, Gündüz and Svensson on the source
environment for a grid of λ at both CSI sizes (64×64, compression ratio 16; 512×256, ratio
64) and reports, on the held-out 20 %, the NMSE against the **real** bits per CSI matrix
(lengths of the range-coded streams), with the prior's entropy estimate beside them, and
whether decoding the bytes reproduces the encoder-side reconstruction exactly.

shift evaluates the same backbones on two shifted environments (a walking user in an urban
macro cell; a street with moving scatterers, see
:mod:`chanlab.adaptive_compression.environments`) against the source test set: the
mismatch the fine-tuning experiments then repair.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from chanlab.adaptive_compression.backbones import SizeSetup, TrainSetup, backbone, source_splits
from chanlab.adaptive_compression.environments import environment_csi
from chanlab.core.claims import Outcome, all_of, require, worst_margin
from chanlab.core.errors import ConfigError
from chanlab.core.progress import progress
from chanlab.core.registry import Claim, Experiment, register

PAPER = "csi-compression-dynamic-finetuning.txt"
# The paper's λ ratios (1 : 2 : 10 : 20, the large size's grid 10× the small one's), on our
# per-entry distortion scale (see chanlab.adaptive_compression.model).
_LAMS_SMALL = (5e3, 1e4, 5e4, 1e5)
_LAMS_LARGE = (5e4, 1e5, 5e5, 1e6)


@dataclass(frozen=True)
class BackboneConfig:
    small: SizeSetup = field(default_factory=lambda: SizeSetup(64, 64, 28965, _LAMS_SMALL, 200))
    large: SizeSetup = field(default_factory=lambda: SizeSetup(512, 256, 11200, _LAMS_LARGE, 200))
    train: TrainSetup = field(default_factory=TrainSetup)


@dataclass(frozen=True)
class ShiftConfig(BackboneConfig):
    shifted: tuple[str, ...] = ("street-mobile", "dynamic-scatterers")
    n_eval: int = 300


PRESETS = {
    "smoke": {"small.num": 60, "small.lams": (1e2, 1e4), "small.epochs": 2,
              "large.n_ant": 64, "large.n_sc": 32, "large.num": 40, "large.lams": (1e2, 1e4), "large.epochs": 1,
              "train.reuse_models": False},
    # CPU budget: fewer CSI and epochs than the paper, batches of 8 (4× the updates per epoch)
    # and a prior that learns 10× faster (it starts broad; see train_rd).
    "quick": {"small.num": 2000, "small.epochs": 20, "large.num": 400, "large.epochs": 6,
              "large.lams": (5e4, 1e5, 1e6), "train.batch_size": 8, "train.prior_lr_scale": 10.0},
    "paper": {},
}
SHIFT_PRESETS = {
    "smoke": dict(PRESETS["smoke"], n_eval=10),
    "quick": dict(PRESETS["quick"], n_eval=300),
    "paper": {},
}


def _sizes(cfg) -> list[SizeSetup]:
    sizes = [s for s in (cfg.small, cfg.large) if s.enabled]
    if not sizes:
        raise ConfigError("both small.enabled and large.enabled are false: nothing to run")
    for s in sizes:
        if not s.lams or any(not (lam > 0) for lam in s.lams):
            raise ConfigError(f"{s.label}: lams must be a nonempty tuple of positive numbers, got {s.lams}")
    return sizes


def _curve(codecs, h) -> dict[str, list]:
    rows = [codec.evaluate(h) for codec in codecs]
    return {key: [row[key] for row in rows] for key in rows[0]}


def run_backbone_rd(cfg: BackboneConfig, ctx) -> dict:
    results = {"sizes": {}}
    for size in _sizes(cfg):
        data = source_splits(size, cfg.train, ctx.seed, ctx.device)
        codecs = [backbone(size, lam, cfg.train, data, ctx)
                  for lam in progress(size.lams, total=len(size.lams), desc=f"backbones {size.label}", unit="λ")]
        curve = _curve(codecs, data[2])
        curve["lams"] = list(size.lams)
        curve["compression_ratio"] = codecs[0].spec.compression_ratio
        curve["n_train"] = int(data[0].shape[0])
        results["sizes"][size.label] = curve
        ctx.log.info("%s: %s", size.label, curve)
    _rd_figure(ctx, {label: {"source": c} for label, c in results["sizes"].items()}, "backbone_rd",
               "Backbone RD on the source environment (real bits)")
    return results


def run_shift(cfg: ShiftConfig, ctx) -> dict:
    if cfg.n_eval < 1:
        raise ConfigError(f"n_eval: expected a positive number of CSI matrices, got {cfg.n_eval}")
    results = {"sizes": {}}
    for size in _sizes(cfg):
        data = source_splits(size, cfg.train, ctx.seed, ctx.device)
        codecs = [backbone(size, lam, cfg.train, data, ctx) for lam in size.lams]
        curves = {"source": _curve(codecs, data[2][: cfg.n_eval])}
        for env in cfg.shifted:
            h = environment_csi(env, cfg.n_eval, size.n_ant, size.n_sc, seed=ctx.seed + 1, device=ctx.device)
            curves[env] = _curve(codecs, h)
        for c in curves.values():
            c["lams"] = list(size.lams)
        results["sizes"][size.label] = curves
        ctx.log.info("%s: %s", size.label, curves)
    _rd_figure(ctx, results["sizes"], "shift_rd", "Backbone trained on the source, tested on shifted environments")
    return results


def _rd_figure(ctx, curves_by_size: dict, name: str, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(curves_by_size), figsize=(4.6 * len(curves_by_size), 3.6), squeeze=False)
    for ax, (label, curves) in zip(axes[0], curves_by_size.items()):
        for env, c in curves.items():
            ax.plot(c["bits_real"], c["nmse_db"], "o-", label=env)
            for lam, x, y in zip(c["lams"], c["bits_real"], c["nmse_db"]):
                ax.annotate(f"λ={lam:g}", (x, y), fontsize=6, xytext=(3, 3), textcoords="offset points")
        ax.set_title(f"CSI {label}")
        ax.set_xlabel("bits per CSI matrix (range-coded)")
        ax.set_ylabel("NMSE (dB)")
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize=7)
    fig.suptitle(title, y=1.03)
    ctx.save_figure(fig, name)


# ----- claims -------------------------------------------------------------------------------

def _monotone(res) -> Outcome:
    outcomes, parts = [], []
    for label, c in require(res["sizes"], "CSI sizes").items():
        lams = require(c["lams"], f"{label} λ points")
        if not (len(lams) == len(c["bits_real"]) == len(c["nmse_db"])) or len(lams) < 2:
            raise ValueError(f"{label}: need ≥ 2 λ with bits and NMSE each")
        order = np.argsort(lams)
        bits = np.asarray(c["bits_real"], dtype=float)[order]
        nmse = np.asarray(c["nmse_db"], dtype=float)[order]
        # the margin: the smallest NMSE improvement (dB) from one λ to the next, where the rate rises too
        step = float(np.min(-np.diff(nmse)))
        rising = bool(np.all(np.diff(bits) > 0))
        outcomes.append(Outcome(rising and step > 0, "", margin=step if rising else None))
        parts.append(f"{label}: bits {', '.join(f'{b:.0f}' for b in bits)}; "
                     f"NMSE {', '.join(f'{v:.2f}' for v in nmse)} dB")
    return worst_margin(outcomes, " | ".join(parts))


def _exact(res) -> Outcome:
    sizes = require(res["sizes"], "CSI sizes")
    flags = {label: all_of(c["exact"], f"{label} exactness flags") for label, c in sizes.items()}
    return Outcome(all(flags.values()), ", ".join(f"{k}: {'bit-exact' if v else 'MISMATCH'}" for k, v in flags.items()))


def _size_gap(res) -> Outcome:
    sizes = require(res["sizes"], "CSI sizes")
    worst = {label: max(require(c["bytes_gap_max_excess"], f"{label} points")) for label, c in sizes.items()}
    gaps = {label: max(require(c["bytes_gap"], f"{label} points")) for label, c in sizes.items()}
    margin = -max(worst.values())  # bytes left under the allowance by the worst CSI
    return Outcome(margin >= 0, "; ".join(
        f"{k}: mean gap ≤ {gaps[k]:.1f} B, worst CSI {worst[k]:+.1f} B against the 2 % + 8 B allowance"
        for k in worst), margin=margin)


def _shift_worse(res) -> Outcome:
    margins, parts = [], []
    for label, curves in require(res["sizes"], "CSI sizes").items():
        src = np.asarray(require(curves["source"]["nmse_db"], f"{label} source points"), dtype=float)
        for env, c in curves.items():
            if env == "source":
                continue
            gap = np.asarray(c["nmse_db"], dtype=float) - src
            if gap.shape != src.shape:
                raise ValueError(f"{label} {env}: {gap.size} points, source {src.size}")
            margins.append(float(gap.min()))
            parts.append(f"{label} {env}: +{gap.min():.1f} to +{gap.max():.1f} dB")
    margin = min(require(margins, "shifted environments"))
    return Outcome(margin > 0, "; ".join(parts) + f"; smallest loss {margin:+.2f} dB", margin=margin)


register(Experiment(
    name="adaptive_compression/backbone-rd",
    summary="Backbone RD compressor (conv + learned factorized prior + range coding): NMSE vs real bits (Fig. 2)",
    config=BackboneConfig,
    run=run_backbone_rd,
    presets=PRESETS,
    claims=(
        Claim("Larger λ gives a higher rate and a lower NMSE (a monotone RD curve) at both CSI sizes", _monotone,
              kind="paper", paper_text="Fig. 2 (no numbers in the text)"),
        Claim("Decoding the bytes reproduces the encoder-side reconstruction exactly", _exact, kind="invariant"),
        Claim("Every CSI's real size is within 2% plus 8 bytes of the entropy estimate", _size_gap,
              kind="invariant"),
    ),
    paper=PAPER,
))

register(Experiment(
    name="adaptive_compression/shift",
    summary="The source-trained backbone on shifted environments: RD degradation (Fig. 5)",
    config=ShiftConfig,
    run=run_shift,
    presets=SHIFT_PRESETS,
    claims=(
        Claim("On every shifted environment the backbone's NMSE is worse than on the source at every λ",
              _shift_worse, kind="paper", paper_text="Sec. III, Fig. 5 ('performs catastrophically'; no numbers)"),
    ),
    paper=PAPER,
))
