"""One comparison of RJAPCBN against its baselines on one cell-free setting.

For a setting (Q APs, M antennas, I users, error level η) this draws training, validation and
test drops, trains RJAPCBN (attention thresholds), JcbNet (one shared threshold) and the
two-stage CNN of [16] on the estimates ``h_hat``, runs WMMSE on the true channels (perfect
CSI, the upper bound), WMMSE and S-WMMSE on the estimates, and measures on the test drops.

The paper describes JcbNet, like the CNNs, as a design for perfect CSI that "does not take
into account the robustness". So JcbNet is trained on the same network and loss as RJAPCBN
but with every error radius set to 0 (the nominal sum rate of the estimates). RJAPCBN is the
only network that sees the radii. ``unfolded`` is ours, not the paper's: a 30-step unfolded
ascent on the exact bound with a fitted schedule (:mod:`chanlab.cellfree.unfolded`).
``robust_ga`` is our reference, not the paper's either: per-drop
gradient ascent on the exact worst-case sum rate from the WMMSE solution
(:mod:`chanlab.classical.robust_ascent`), which shows how much the bound allows. The
figures measured are:

* ``worst_case_sum_rate``: the exact bound of Eq. (9) summed over users, with the
  estimates and the error radii (bit/s/Hz). For WMMSE with perfect CSI the radius is 0 and
  the channel is the true one: its plain sum rate.
* ``true_sum_rate``: the sum rate on the drop's true channel ``h = h_hat + Δh`` (one sampled
  member of the uncertainty set).
* ``q_ave``: Eq. (33), the mean number of APs serving a user.
* ``multiplications``: Table II's analytic count for the method (None for ours);
  the experiments add ``measured_multiplications``, counted on the code that runs.

Every number in the experiments' ``results.json`` comes from :func:`compare_methods`.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from chanlab.channels.cellfree import CellFreeDrop, generate_cellfree, noise_power_for_snr
from chanlab.classical import wmmse as wm
from chanlab.classical.robust_sinr import worst_case_sum_rate
from chanlab.core.errors import ConfigError
from chanlab.metrics.rates import sum_rate

METHODS = ("rjapcbn", "jcbnet", "cnns", "unfolded", "wmmse_imperfect", "swmmse", "wmmse_perfect", "robust_ga")


@dataclass(frozen=True)
class Setting:
    """The system: sizes, error level, SNR at the 200 m reference, drop counts."""

    n_aps: int = 16
    n_ant: int = 4
    n_users: int = 16
    error_level: float = 0.1
    snr_db: float = 20.0
    p_max: float = 1.0
    area: float = 1000.0
    n_train: int = 10000
    n_val: int = 1000
    n_test: int = 6400


@dataclass(frozen=True)
class Training:
    """Network training (RJAPCBN and JcbNet share it; the two-stage CNN uses its own epochs)."""

    lam: float = 0.1
    kernel: str = "5x5"
    n_units: int = 5
    epochs: int = 30
    batch_size: int = 64
    lr: float = 1e-2
    cnn_epochs: int = 30
    #: RJAPCBN/JcbNet input: "modulus" (the paper) or "cartesian" (real and imaginary parts).
    csi: str = "modulus"
    #: The unfolded robust ascent (ours, :mod:`chanlab.cellfree.unfolded`): iterations, and the
    #: training drops its schedule is fitted on (:func:`chanlab.cellfree.training.fit_unfolded`).
    unfolded_iters: int = 30
    unfolded_drops: int = 128


@dataclass(frozen=True)
class Baselines:
    #: WMMSE and S-WMMSE: each drop stops when its objective rose by at most ``wmmse_tol`` (relative)
    #: over ``wmmse_window`` iterations, at most ``wmmse_iters`` (:func:`chanlab.classical.wmmse.wmmse`).
    #: WMMSE crawls along plateaus here: 100 plain iterations end ~9 bit/s/Hz (nominal, Q = I = 16,
    #: M = 4, 20 dB) below 1000, and most drops still gain 0.06 per 50 iterations at 1000.
    wmmse_iters: int = 1000
    wmmse_tol: float = 3e-4
    wmmse_window: int = 50
    swmmse_penalty: float = 1.0
    #: Adam steps (a cap with ``ga_tol``), step size and stopping tolerance of the ``robust_ga``
    #: reference (:func:`chanlab.classical.robust_ascent.robust_gradient_ascent`).
    ga_steps: int = 300
    ga_lr: float = 0.01
    ga_tol: float = 0.0
    methods: tuple[str, ...] = METHODS


def parse_kernel(kernel: str | int) -> tuple[int, int]:
    """``"7x5"`` (width x height, Table I) or ``5`` → ``(7, 5)`` / ``(5, 5)``."""
    try:
        parts = [int(k) for k in str(kernel).lower().split("x")]
    except ValueError:
        parts = []
    if len(parts) == 1:
        parts = parts * 2
    if len(parts) != 2 or min(parts) < 1:
        raise ConfigError(f"kernel: expected 'KxK' such as '5x5' or '7x5', got {kernel!r}")
    return parts[0], parts[1]


def _drops(s: Setting, num: int, seed: int, device) -> CellFreeDrop:
    return generate_cellfree(num, n_aps=s.n_aps, n_ant=s.n_ant, n_users=s.n_users, area=s.area,
                             error_level=s.error_level, seed=seed, device=device)


def _wmmse_stop(b: Baselines) -> dict:
    """The stopping rule of WMMSE and S-WMMSE as keyword arguments."""
    return {"n_iter": b.wmmse_iters, "tol": b.wmmse_tol, "window": b.wmmse_window}


def _check(s: Setting, b: Baselines) -> None:
    unknown = sorted(set(b.methods) - set(METHODS))
    if unknown:
        raise ConfigError(f"baselines.methods: unknown {unknown}; known: {', '.join(METHODS)}")
    if min(s.n_train, s.n_val, s.n_test) < 2:
        raise ConfigError("n_train, n_val and n_test must be at least 2")


def _batched(fn, n: int, batch: int = 512) -> torch.Tensor:
    return torch.cat([fn(i, min(i + batch, n)) for i in range(0, n, batch)])


def measure(v: torch.Tensor, test: CellFreeDrop, noise: float, perfect: bool = False) -> dict[str, float]:
    """Means over the test drops of beamformers ``v``: ``worst_case_sum_rate`` (the bound of Eq. (9) on the
    estimates; with ``perfect``, the plain sum rate on the true channels), ``true_sum_rate`` and ``q_ave``."""
    n = test.h.shape[0]
    if perfect:
        wc = _batched(lambda a, b: sum_rate(test.h[a:b], v[a:b], noise), n)
    else:
        wc = _batched(lambda a, b: worst_case_sum_rate(test.h_hat[a:b], v[a:b], test.eps[a:b], noise), n)
    true = _batched(lambda a, b: sum_rate(test.h[a:b], v[a:b], noise), n)
    return {"worst_case_sum_rate": float(wc.mean()), "true_sum_rate": float(true.mean()),
            "q_ave": float(wm.average_serving_aps(v).double().mean())}


def draw_drops(s: Setting, num: int, seed: int, device="cpu") -> CellFreeDrop:
    """``num`` drops of setting ``s`` (compare_methods' train / val / test use seeds ``seed``, ``+1``, ``+2``)."""
    return _drops(s, num, seed, device)


def compare_methods(s: Setting, t: Training, b: Baselines, ctx, tag: str,
                    methods: tuple[str, ...] | None = None, keep: dict | None = None) -> dict[str, dict[str, float]]:
    """Train and evaluate every method of ``methods`` on one setting; ``tag`` names checkpoints.
    The trained unfolded beamformer goes into ``keep["unfolded"]`` when ``keep`` is a dict."""
    from chanlab.cellfree.model import RJAPCBN
    from chanlab.cellfree.training import train_rjapcbn
    from chanlab.cellfree.two_stage_cnn import TwoStageCNN, train_two_stage_cnn

    _check(s, b)
    methods = tuple(methods or b.methods)
    dev = ctx.device
    noise = noise_power_for_snr(s.snr_db, s.p_max)
    test = _drops(s, s.n_test, ctx.seed + 2, "cpu")
    need_training = any(m in methods for m in ("rjapcbn", "jcbnet", "cnns", "unfolded"))
    train = _drops(s, s.n_train, ctx.seed, "cpu") if need_training else None
    val = _drops(s, s.n_val, ctx.seed + 1, "cpu") if need_training else None
    out: dict[str, dict[str, float]] = {}
    sizes = dict(n_aps=s.n_aps, n_ant=s.n_ant, n_users=s.n_users)

    for name, mode in (("rjapcbn", "attention"), ("jcbnet", "shared")):
        if name not in methods:
            continue
        torch.manual_seed(ctx.seed)
        model = RJAPCBN(s.n_aps, s.n_ant, s.n_users, kernel=parse_kernel(t.kernel), n_units=t.n_units, threshold=mode,
                        p_max=s.p_max, csi=t.csi).to(dev)
        # JcbNet is a perfect-CSI design: it trains on the estimates with zero error radii.
        fit_train, fit_val = (train, val) if name == "rjapcbn" else (
            (train.h_hat, torch.zeros_like(train.eps)), (val.h_hat, torch.zeros_like(val.eps)))
        train_rjapcbn(model, fit_train, fit_val, t.lam, noise, epochs=t.epochs, batch_size=t.batch_size, lr=t.lr,
                      seed=ctx.seed, checkpointer=ctx.checkpoint(f"{name}-{tag}"), desc=f"{name} {tag}")
        with torch.no_grad():
            v = _batched(lambda a, c: model(test.h_hat[a:c].to(dev), hard=True).cpu(), s.n_test)
        out[name] = measure(v, test, noise)
        count = wm.multiplication_count_rjapcbn if name == "rjapcbn" else wm.multiplication_count_jcbnet
        out[name]["multiplications"] = float(count(**sizes, kernel=parse_kernel(t.kernel), n_layers=t.n_units))
        ctx.log.info("%s %s: %s", tag, name, out[name])

    if "cnns" in methods:
        torch.manual_seed(ctx.seed)
        cnn = TwoStageCNN(s.n_aps, s.n_ant, s.n_users, p_max=s.p_max, noise_power=noise).to(dev)
        train_two_stage_cnn(cnn, train.h_hat, val.h_hat, noise, epochs=t.cnn_epochs, batch_size=t.batch_size,
                            seed=ctx.seed, checkpointer=ctx.checkpoint(f"cnns-{tag}"), desc=f"CNNs {tag}")
        with torch.no_grad():
            v = _batched(lambda a, c: cnn(test.h_hat[a:c].to(dev))["v"].cpu(), s.n_test)
        out["cnns"] = measure(v, test, noise)
        out["cnns"]["multiplications"] = float(cnn.multiplication_count())
        ctx.log.info("%s cnns: %s", tag, out["cnns"])

    if "unfolded" in methods:
        from chanlab.cellfree.training import fit_unfolded
        from chanlab.cellfree.unfolded import UnfoldedRobustAscent
        from chanlab.metrics.flops import real_multiplications

        model = UnfoldedRobustAscent(t.unfolded_iters).to(dev)
        n_fit = min(t.unfolded_drops, s.n_train)
        fit = fit_unfolded(model, (train.h_hat[:n_fit], train.eps[:n_fit]), val, noise, s.p_max, desc=f"unfolded {tag}")
        v = _batched(lambda a, c: model(test.h_hat[a:c].to(dev), test.eps[a:c].to(dev), noise, s.p_max).cpu(),
                     s.n_test)
        out["unfolded"] = measure(v, test, noise)
        out["unfolded"]["multiplications"] = real_multiplications(
            model, test.h_hat[:1].to(dev), test.eps[:1].to(dev), noise, s.p_max, grad=True)
        out["unfolded"]["iterations"] = t.unfolded_iters
        out["unfolded"]["fit"] = {k: fit[k] for k in ("schedule", "train_rate", "val_rate", "start_val_rate")}
        if keep is not None:
            keep["unfolded"] = model
        ctx.log.info("%s unfolded: %s", tag, out["unfolded"])

    v_imperfect = None
    if "wmmse_imperfect" in methods or "robust_ga" in methods:
        v_imperfect = wm.wmmse(test.h_hat.to(dev), noise, s.p_max, **_wmmse_stop(b)).cpu()
    if "wmmse_imperfect" in methods:
        out["wmmse_imperfect"] = measure(v_imperfect, test, noise)
        out["wmmse_imperfect"]["multiplications"] = float(wm.multiplication_count_wmmse(**sizes))
    if "robust_ga" in methods:
        from chanlab.classical.robust_ascent import robust_gradient_ascent

        v = _batched(lambda a, c: robust_gradient_ascent(
            test.h_hat[a:c].to(dev), test.eps[a:c].to(dev), noise, s.p_max, v_imperfect[a:c].to(dev),
            n_steps=b.ga_steps, lr=b.ga_lr, tol=b.ga_tol).cpu(), s.n_test)
        out["robust_ga"] = measure(v, test, noise)
        out["robust_ga"]["multiplications"] = None  # an iterative reference, not counted
    if "swmmse" in methods:
        v = wm.sparse_wmmse(test.h_hat.to(dev), noise, s.p_max, group_penalty=b.swmmse_penalty,
                            **_wmmse_stop(b)).cpu()
        out["swmmse"] = measure(v, test, noise)
        out["swmmse"]["multiplications"] = float(wm.multiplication_count_sparse_wmmse(**sizes))
    if "wmmse_perfect" in methods:
        v = wm.wmmse(test.h.to(dev), noise, s.p_max, **_wmmse_stop(b)).cpu()
        out["wmmse_perfect"] = measure(v, test, noise, perfect=True)
        out["wmmse_perfect"]["multiplications"] = float(wm.multiplication_count_wmmse(**sizes))
    return out
