"""WMMSE and sparse WMMSE (S-WMMSE) precoding for the cell-free downlink with per-AP power budgets.

These are the classical baselines of the cell-free paper (``cellfree-robust-ap-clustering.txt``,
Sec. V): "WMMSE with perfect CSI", "WMMSE with imperfect CSI" and "S-WMMSE with imperfect CSI".

Model (Eq. 1-3 and C1 of Eq. 7, conventions of :mod:`chanlab.metrics.rates`)::

    SINR_i = |h_i^H v_i|^2 / (sum_{j != i} |h_i^H v_j|^2 + sigma_i^2)
    maximise  sum_i alpha_i log2(1 + SINR_i)   [- lambda sum_{i,q} ||v_i^q||_2   (S-WMMSE)]
    subject to  sum_i ||v_i^q||^2 <= P_max^q   for every AP q                         (C1)

Cell-free tensors are ``[batch, n_users, n_aps, n_ant]`` = ``[B, I, Q, M]`` for both the
channels ``h_i^q`` and the beamformers ``v_i^q``.

**WMMSE** (Shi, Razaviyayn, Luo, He, IEEE TSP 2011). Block coordinate descent on
``f(u, w, V) = sum_i alpha_i (w_i e_i - ln w_i)``, where ``e_i`` is user ``i``'s MSE with the
scalar receiver ``u_i``. Each iteration does three steps:

1. MMSE receivers: ``u_i = h_i^H v_i / (sum_j |h_i^H v_j|^2 + sigma_i^2)``.
2. MSE weights: ``w_i = 1 / e_i = 1 + SINR_i``.
3. Beamformers: minimise ``sum_k v_k^H A v_k - 2 Re(b_k^H v_k)`` under C1. Here
   ``A = sum_i alpha_i w_i |u_i|^2 h_i h_i^H`` and ``b_k = alpha_k w_k u_k h_k``.

``min_{u,w} f = const - sum_i alpha_i ln(1 + SINR_i)``. So any beamformer step that does not
increase ``f`` and stays feasible makes the weighted sum rate (WSR) non-decreasing, iteration
by iteration.

**The beamformer step with per-AP budgets.** With a single total budget (Shi et al.), step 3 is
``v_k = (A + mu I)^{-1} b_k``, with one multiplier ``mu`` found by bisection. With one budget
per AP the solution is ``(A + diag(mu_q I_M))^{-1} b_k``. Every AP's power then depends on
*all* ``Q`` multipliers through the inverse, so ``Q`` independent bisections run side by side
would not solve the KKT system, and a Jacobi-style simultaneous update has no descent
guarantee. This module therefore solves step 3 by **block coordinate descent over the APs**,
exactly as Hong et al. do for S-WMMSE. For ``q = 1..Q`` in turn, it minimises exactly over
AP ``q``'s block ``{v_k^q}_k``, with the other APs fixed. That subproblem has a single
constraint and a single multiplier ``mu_q``::

    v_k^q = (A_qq + mu_q I)^{-1} c_k^q,    c_k^q = b_k^q - sum_{p != q} A_qp v_k^p

``A_qq = U diag(lam) U^H`` is eigendecomposed once per iteration, for all samples and APs at
once. Then ``P_q(mu) = sum_m d_m / (lam_m + mu)^2``, with ``d_m = sum_k |(U^H c_k^q)_m|^2``.
``mu_q = 0`` if ``P_q(0) <= P_max``. Otherwise ``P_q(mu_q) = P_max`` is solved by a batched,
bracket-safeguarded Newton iteration on ``P^{-1/2}``. That function is concave and almost
linear (Moré and Sorensen's secular-equation trick), and the iteration falls back to
bisection whenever a step leaves the bracket. It is warm-started at the AP's multiplier from
the previous iteration. Each AP's step is batched over all samples and all users; only the
loop over APs is sequential.

``inner_sweeps`` passes are made over the APs per iteration. The default, 1, already gives
a monotone WSR, because every block is minimised exactly. The fixed points are stationary
points, by the same BCD argument as Hong et al.'s. Hong et al. and Table II use ``I_Q = 10``
inner passes.

**S-WMMSE** (Hong, Sun, Baligh, Luo, IEEE JSAC 2013). The same BCD, with the group-LASSO
(mixed l2/l1) penalty ``lambda sum_{i,q} ||v_i^q||_2`` added to the objective. The paper's
Eq. (5) writes the penalty as ``||v_i^q||_1``. The group norm used here is the one that makes
whole ``(user, AP)`` blocks exactly zero, as Hong et al. and the paper's "zero blocks"
describe. ``lambda`` is in bit/s/Hz per unit beamformer amplitude, as in Eq. (5). In the
natural-log WMMSE objective the penalty becomes ``lambda ln 2``. With AP ``q``'s multiplier
``mu``, the block subproblem decouples over users::

    min_x  x^H (A_qq + mu I) x - 2 Re(c^H x) + lambda ln2 ||x||

Its exact solution, with ``kappa = lambda ln2 / 2``:

* ``x = 0`` if ``||c|| <= kappa``. This zero block is the AP clustering.
* Otherwise ``x = (A_qq + (mu + tau) I)^{-1} c``, where ``tau = kappa / ||x||``.

``tau`` is the root of a 1-D monotone equation, solved by the same safeguarded Newton
iteration in ``t = 1 / tau``. ``mu`` is found by an outer safeguarded Newton iteration on the
AP's power (the derivative comes from the implicit function theorem). These are Hong et al.'s
two nested bisections, the ``(log2 eps)^2`` factor of Table II, with Newton steps in place of
halving. With ``group_penalty = 0``, S-WMMSE *is* WMMSE: the same code runs.

Simplifications and choices:

* The AP order in each sweep is fixed: ``q = 0..Q-1``.
* At ``mu = 0``, eigen-directions of ``A_qq`` with ``lam <= M eps lam_max`` are treated as its
  null space. Their components are dropped: this is a pseudo-inverse. ``c`` lies in the range
  of ``A_qq`` in exact arithmetic.
* Root iterations stop at a relative power error of about ``1e-12`` (float64) or ``1e-5``
  (float32). An AP block at or above its budget is then scaled to ``(1 - 16 eps)^2 P_max``,
  so C1 holds in the working precision whatever order the power is summed in.
* Each sample stops when its objective changed by at most ``tol * (1 + |objective|)`` over
  its last ``window`` iterations, or after ``n_iter`` iterations; stopped samples leave the
  batch, so a sample's result does not depend on the others in its batch (and the slow ones
  iterate on smaller tensors). Its history stays at its last value after it stopped.
* A user whose beamformer becomes all-zero has ``u_i = 0`` and stays off. This is the usual
  WMMSE fixed point, and it happens in S-WMMSE with a large penalty.
* A block is zero when ``||c_k^q|| <= kappa``, and ``||c||`` grows with the MSE weights
  ``w = 1 + SINR``. So the same ``lambda`` sparsifies less at high SNR. Calibrate ``lambda``
  per SNR (the paper gives no S-WMMSE value).
* complex128 is monotone to about ``1e-12``. complex64 is monotone up to rounding, which
  becomes visible (about ``1e-3`` relative) when SINRs reach about 50 dB. Use complex128 for
  very high SNR.
* The functions run under ``torch.no_grad()``: the result is not differentiable in ``h``.

Imperfect CSI treated as perfect (the paper's "WMMSE with imperfect CSI"): design on the
estimate and evaluate on the true channel::

    drop = generate_cellfree(64, error_level=0.1)
    sigma2 = noise_power_for_snr(10.0)
    v = wmmse(drop.h_hat, sigma2, 1.0)                 # the design sees only h_hat
    rate = sum_rate(drop.h, v, sigma2)                 # chanlab.metrics.rates.sum_rate
    v_perfect = wmmse(drop.h, sigma2, 1.0)             # "WMMSE with perfect CSI"
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import torch

from chanlab.core.errors import ConfigError, DataError
from chanlab.core.validation import as_tensor, check_complex, check_finite, check_int_range, check_ndim

_LN2 = math.log(2.0)
#: Upper bound on the iterations of every 1-D root search (Newton steps usually need < 10).
_MAX_ROOT_ITER = 60
_DTYPES = (torch.complex64, torch.complex128)
#: Relative amplitude margin, in machine epsilons, kept below a budget after the final scaling.
_MARGIN_ULPS = 16

# ----------------------------------------------------------------------------------------------
# Input handling
# ----------------------------------------------------------------------------------------------


def _as_cellfree(h: torch.Tensor | np.ndarray) -> tuple[torch.Tensor, bool]:
    """Validate ``h`` and return it as ``[B, I, Q, M]`` plus whether it came flat ``[B, I, N]``."""
    h = as_tensor(h, "h")
    check_complex(h, "h")
    check_ndim(h, (3, 4), "h", "[batch, n_users, n_aps, n_ant] or flat [batch, n_users, n_tx]")
    if h.dtype not in _DTYPES:
        raise DataError(f"h: expected dtype complex64 or complex128, got {h.dtype}")
    if any(int(s) == 0 for s in h.shape):
        raise DataError(f"h: expected every dimension >= 1, got shape {list(h.shape)}")
    check_finite(h, "h")
    flat = h.ndim == 3
    return (h.unsqueeze(2) if flat else h), flat


def _real_values(value: float | torch.Tensor | np.ndarray, name: str, shape: tuple[int, int],
                 layout: str, real: torch.dtype, device: torch.device, *,
                 allow_zero: bool = False) -> torch.Tensor:
    """A positive real scalar or tensor, checked and broadcast to ``shape``."""
    bound = ">= 0" if allow_zero else "> 0"
    if isinstance(value, (torch.Tensor, np.ndarray)):
        t = as_tensor(value, name)
        if t.is_complex() or not (t.is_floating_point() or t.dtype in (torch.int32, torch.int64)):
            raise DataError(f"{name}: expected a real tensor, got dtype {t.dtype}")
        t = t.to(device=device, dtype=real)
        try:
            t = torch.broadcast_to(t, shape)
        except RuntimeError:
            raise DataError(f"{name}: expected a shape broadcastable to {layout} = {list(shape)}, "
                            f"got {list(t.shape)}") from None
    else:
        if isinstance(value, bool):
            raise DataError(f"{name}: expected a number or a real tensor, got {value!r}")
        try:
            scalar = float(value)
        except (TypeError, ValueError):
            raise DataError(f"{name}: expected a number or a real tensor, got {value!r}") from None
        t = torch.full(shape, scalar, dtype=real, device=device)
    if t.numel():
        bad = (t < 0) if allow_zero else (t <= 0)
        if not bool(torch.isfinite(t).all()) or bool(bad.any()):
            raise DataError(f"{name}: expected finite values {bound}, got min {float(t.min())}, "
                            f"max {float(t.max())}")
    return t.contiguous()


def _check_iterations(n_iter: int, tol: float, inner_sweeps: int, window: int = 1) -> None:
    check_int_range(n_iter, "n_iter", low=0, error=ConfigError)
    check_int_range(inner_sweeps, "inner_sweeps", low=1, error=ConfigError)
    check_int_range(window, "window", low=1, error=ConfigError)
    if isinstance(tol, bool) or not isinstance(tol, (int, float)) or not math.isfinite(tol) or tol < 0:
        raise ConfigError(f"tol: expected a finite number >= 0, got {tol!r}")


def _check_penalty(group_penalty: float) -> float:
    if isinstance(group_penalty, bool) or not isinstance(group_penalty, (int, float)):
        raise ConfigError(f"group_penalty: expected a number >= 0, got {group_penalty!r}")
    if not math.isfinite(group_penalty) or group_penalty < 0:
        raise ConfigError(f"group_penalty: expected a finite number >= 0, got {group_penalty}")
    return float(group_penalty)


def _ap_power(v: torch.Tensor) -> torch.Tensor:
    """Per-AP transmit power ``sum_i ||v_i^q||^2`` of ``[B, I, Q, M]`` beamformers: ``[B, Q]``."""
    return (v.real.square() + v.imag.square()).sum((1, 3))


def _budget_scale(power: torch.Tensor, p_max: torch.Tensor) -> torch.Tensor:
    """Amplitude factor <= 1 that brings ``power`` within ``p_max``, with a rounding margin.

    Blocks within the budget keep factor 1. Blocks at or above it are scaled to
    ``(1 - 16 eps)^2 p_max``, so that the power recomputed in any summation order stays
    ``<= p_max``.
    """
    finfo = torch.finfo(power.dtype)
    margin = 1.0 - _MARGIN_ULPS * finfo.eps
    over = power > p_max * margin ** 2  # exactly where the scale below is < 1
    # Divide only where the budget is exceeded: a near-zero power in the unused branch would
    # still send inf * 0 = NaN into the gradient of a network trained through this projection.
    safe = torch.where(over, power, torch.broadcast_to(torch.as_tensor(p_max, dtype=power.dtype,
                                                                       device=power.device), power.shape))
    scale = torch.sqrt(p_max / safe) * margin
    return torch.where(over, scale.clamp(max=1.0), torch.ones_like(scale))


def project_per_ap_power(v: torch.Tensor, p_max: float | torch.Tensor) -> torch.Tensor:
    """Scale each AP's block of ``v [B, I, Q, M]`` down onto its budget where it exceeds it
    (never up); differentiable, with finite gradients even at (near-)zero power."""
    power = _ap_power(v)
    p = torch.as_tensor(p_max, dtype=power.dtype, device=power.device)
    return v * _budget_scale(power, p)[:, None, :, None].to(v.dtype)


_project_per_ap = project_per_ap_power


def _initial(init: torch.Tensor | np.ndarray | None, h: torch.Tensor, flat: bool,
             p_max: torch.Tensor) -> torch.Tensor:
    """Initial beamformers ``[B, I, Q, M]``: per-AP MRT at full power, or ``init`` made feasible."""
    if init is None:
        gain = (h.real.square() + h.imag.square()).sum((1, 3))  # [B, Q]
        scale = torch.sqrt(p_max / gain.clamp_min(torch.finfo(gain.dtype).tiny))
        return _project_per_ap(h * scale[:, None, :, None].to(h.dtype), p_max)
    v = as_tensor(init, "init")
    check_complex(v, "init")
    b, n_users, n_aps, n_ant = (int(s) for s in h.shape)
    if flat:
        want, layout = [b, n_ant, n_users], "[batch, n_tx, n_users]"
    else:
        want, layout = [b, n_users, n_aps, n_ant], "[batch, n_users, n_aps, n_ant]"
    if list(v.shape) != want:
        raise DataError(f"init: expected shape {want} {layout} (the layout wmmse returns for this h), "
                        f"got {list(v.shape)}")
    check_finite(v, "init")
    v = v.to(device=h.device, dtype=h.dtype)
    if flat:
        v = v.transpose(1, 2).unsqueeze(2)
    return _project_per_ap(v.clone(), p_max)


def _output(v: torch.Tensor, flat: bool) -> torch.Tensor:
    return v[:, :, 0, :].transpose(1, 2).contiguous() if flat else v


# ----------------------------------------------------------------------------------------------
# Batched 1-D root finding
# ----------------------------------------------------------------------------------------------


def _root_rtol(real: torch.dtype) -> float:
    return max(1e-12, 100.0 * torch.finfo(real).eps)


def _solve_decreasing(fn: Callable[[torch.Tensor], tuple[torch.Tensor, torch.Tensor]],
                      target: torch.Tensor, hi: torch.Tensor, active: torch.Tensor,
                      start: torch.Tensor | None = None) -> torch.Tensor:
    """Batched root of ``F(t) = target`` on ``[0, hi]`` for a positive, decreasing ``F``.

    ``fn(t)`` returns ``(F(t), F'(t))`` elementwise. The caller guarantees ``F(0) > target``
    and ``F(hi) <= target`` where ``active``. Inactive entries stay at their start value.
    ``start`` (default 0) is a warm start, clamped into ``[0, hi]``: the previous iteration's
    multiplier. From the right of the root, the first Newton step lands left of it.

    Newton's method runs on ``F^{-1/2}``. For the secular functions used here,
    ``F = sum_m w_m / (s_m + t)^2``, this function is concave and nearly linear. Started at
    ``t = 0``, the iteration then rises monotonically and quadratically to the root. A bracket
    ``[lo, hi]`` is kept from the signs of ``F - target``, and any step that leaves it, or is
    not finite, is replaced by bisection. So the search also converges for functions that are
    not exactly of that form, such as the nested S-WMMSE power.
    """
    real = hi.dtype
    eps, tiny = torch.finfo(real).eps, torch.finfo(real).tiny
    rtol = _root_rtol(real)
    target = torch.broadcast_to(target, hi.shape)
    inv_sqrt_target = target.rsqrt()
    lo = torch.zeros_like(hi)
    t = torch.zeros_like(hi) if start is None else torch.minimum(start.clamp_min(0.0), hi)
    done = ~active
    for _ in range(_MAX_ROOT_ITER):
        f, df = fn(t)
        done = done | ((f - target).abs() <= rtol * target)
        if bool(done.all()):
            break
        above = f > target
        lo = torch.where(above, t, lo)
        hi = torch.where(above, hi, t)
        fs = f.clamp_min(tiny)
        phi = fs.rsqrt()
        dphi = -0.5 * df * phi / fs
        t_new = t + (inv_sqrt_target - phi) / dphi
        outside = ~((t_new >= lo) & (t_new <= hi))  # also catches NaN
        t_new = torch.where(outside, 0.5 * (lo + hi), t_new)
        done = done | ((t_new - t).abs() <= 4 * eps * t.abs())  # stalled at rounding level
        t = torch.where(done, t, t_new)
    return t


# ----------------------------------------------------------------------------------------------
# Exact per-AP beamformer updates (one AP, all samples and users at once)
# ----------------------------------------------------------------------------------------------


def _ap_update(c_hat: torch.Tensor, lam: torch.Tensor, valid: torch.Tensor, p_max: torch.Tensor,
               kappa: float, mu_start: torch.Tensor | None = None
               ) -> tuple[torch.Tensor, torch.Tensor]:
    """Exact minimiser of one AP's beamformer subproblem, in the eigenbasis of ``A_qq``.

    Solves, for every sample ``b``::

        min_{x_k}  sum_k [x_k^H diag(lam) x_k - 2 Re(c_hat_k^H x_k) + 2 kappa ||x_k||]
        s.t.       sum_k ||x_k||^2 <= p_max

    Args:
        c_hat: ``[B, K, M]`` complex, ``U^H c_k^q`` for every user ``k``.
        lam: ``[B, M]`` real eigenvalues of ``A_qq`` (clamped at 0).
        valid: ``[B, M]`` bool, eigenvalues above the null-space threshold (used at ``mu = 0``).
        p_max: ``[B]`` real budget of this AP.
        kappa: half the penalty in natural-log units, ``lambda ln2 / 2``. Zero for WMMSE.
        mu_start: ``[B]`` warm start of the multiplier search (the last iteration's ``mu``).

    Returns:
        ``[B, K, M]`` complex ``U^H v_k^q``, feasible, with exactly-zero rows for users this AP
        does not serve, and the multiplier ``mu`` ``[B]``.
    """
    if kappa == 0.0:
        x_hat, mu = _ap_update_wmmse(c_hat, lam, valid, p_max, mu_start)
    else:
        x_hat, mu = _ap_update_sparse(c_hat, lam, valid, p_max, kappa, mu_start)
    power = (x_hat.real.square() + x_hat.imag.square()).sum((1, 2))
    return x_hat * _budget_scale(power, p_max)[:, None, None].to(x_hat.dtype), mu


def _ap_update_wmmse(c_hat: torch.Tensor, lam: torch.Tensor, valid: torch.Tensor,
                     p_max: torch.Tensor, mu_start: torch.Tensor | None
                     ) -> tuple[torch.Tensor, torch.Tensor]:
    d = (c_hat.real.square() + c_hat.imag.square()).sum(1)  # [B, M]
    lam_safe = torch.where(valid, lam, torch.ones_like(lam))
    p0 = torch.where(valid, d / lam_safe.square(), torch.zeros_like(d)).sum(-1)
    need = p0 > p_max
    mu = torch.zeros_like(p_max)
    if bool(need.any()):
        hi = torch.sqrt(d.sum(-1) / p_max)

        tiny = torch.finfo(d.dtype).tiny

        def power(m: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
            den = lam + m[:, None]
            # The clamps keep 0/0 (a null direction at m = 0) out; d/0 becomes a large value.
            return ((d / den.square().clamp_min(tiny)).sum(-1),
                    -2.0 * (d / den.pow(3).clamp_min(tiny)).sum(-1))

        mu = torch.where(need, _solve_decreasing(power, p_max, hi, need, mu_start), mu)
    use = valid | (mu > 0)[:, None]
    den = torch.where(use, lam + mu[:, None], torch.ones_like(lam))
    inv = torch.where(use, 1.0 / den, torch.zeros_like(den))
    return c_hat * inv[:, None, :].to(c_hat.dtype), mu


def _sparse_blocks(d: torch.Tensor, lam: torch.Tensor, valid: torch.Tensor, mu: torch.Tensor,
                   kappa: float) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Per-block solution of the group-LASSO subproblem for a given AP multiplier ``mu``.

    With ``a_m = lam_m + mu`` and ``t = 1 / tau``, the active block solves
    ``G(t) = sum_m d_m / (1 + a_m t)^2 = kappa^2``. ``G`` decreases from ``||c||^2`` at
    ``t = 0``. The block is ``x = c t / (1 + a t)`` and ``||x|| = kappa t``.

    Returns ``t`` ``[B, K]`` (0 for zero blocks), ``a`` ``[B, 1, M]``, the used ``d``
    ``[B, K, M]`` and the active mask ``[B, K]``.
    """
    a = (lam + mu[:, None])[:, None, :]
    use = (valid | (mu > 0)[:, None])[:, None, :]
    dd = torch.where(use, d, torch.zeros_like(d))
    kappa2 = torch.tensor(kappa * kappa, dtype=d.dtype, device=d.device)
    active = dd.sum(-1) > kappa2
    t = torch.zeros(active.shape, dtype=d.dtype, device=d.device)
    if bool(active.any()):
        a_safe = torch.where(a > 0, a, torch.ones_like(a))
        hi = torch.sqrt(torch.where(a > 0, dd / a_safe.square(), torch.zeros_like(dd)).sum(-1)) / kappa

        def g(tt: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
            den = 1.0 + a * tt[..., None]
            return (dd / den.square()).sum(-1), -2.0 * (dd * a / den.pow(3)).sum(-1)

        t = torch.where(active, _solve_decreasing(g, kappa2, hi, active), t)
    return t, a, dd, active


def _ap_update_sparse(c_hat: torch.Tensor, lam: torch.Tensor, valid: torch.Tensor,
                      p_max: torch.Tensor, kappa: float, mu_start: torch.Tensor | None
                      ) -> tuple[torch.Tensor, torch.Tensor]:
    d = c_hat.real.square() + c_hat.imag.square()  # [B, K, M]
    k2 = kappa * kappa
    zero = torch.zeros_like(p_max)
    t0, _, _, _ = _sparse_blocks(d, lam, valid, zero, kappa)
    need = k2 * t0.square().sum(-1) > p_max
    mu = zero
    if bool(need.any()):
        # ||x_k(mu)|| < ||c_k|| / mu, so the power is below p_max at this bound.
        hi = torch.sqrt(d.sum((1, 2)) / p_max)

        def power(m: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
            t, a, dd, active = _sparse_blocks(d, lam, valid, m, kappa)
            den3 = (1.0 + a * t[..., None]).pow(3)
            s3 = (dd / den3).sum(-1)
            sa3 = (dd * a / den3).sum(-1)
            # Implicit derivative of G(t, mu) = kappa^2: dt/dmu = -t sum d/den^3 / sum d a/den^3.
            dt = torch.where(active, -t * s3 / sa3.clamp_min(torch.finfo(sa3.dtype).tiny),
                             torch.zeros_like(t))
            return k2 * t.square().sum(-1), 2.0 * k2 * (t * dt).sum(-1)

        mu = torch.where(need, _solve_decreasing(power, p_max, hi, need, mu_start), zero)
    t, a, dd, active = _sparse_blocks(d, lam, valid, mu, kappa)
    use = (valid | (mu > 0)[:, None])[:, None, :]
    gain = torch.where(use & active[..., None], t[..., None] / (1.0 + a * t[..., None]),
                       torch.zeros_like(d))
    return c_hat * gain.to(c_hat.dtype), mu


# ----------------------------------------------------------------------------------------------
# The BCD loop
# ----------------------------------------------------------------------------------------------


def _objective(h_flat: torch.Tensor, v_flat: torch.Tensor, sigma2: torch.Tensor,
               alpha: torch.Tensor, penalty: float, block_norms: Callable[[], torch.Tensor]
               ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Gains ``G[b, i, k] = h_i^H v_k``, interference-plus-noise, signal power and objective.

    ``h_flat``/``v_flat`` are ``[B, I, QM]``. ``block_norms()`` gives ``sum_{i,q} ||v_i^q||``
    ``[B]`` and is called only when there is a penalty.
    """
    g = h_flat.conj() @ v_flat.mT
    power = g.real.square() + g.imag.square()
    signal = torch.diagonal(power, dim1=-2, dim2=-1)
    off = ~torch.eye(h_flat.shape[1], dtype=torch.bool, device=h_flat.device)
    noise_interf = (power * off).sum(-1) + sigma2
    obj = (alpha * torch.log1p(signal / noise_interf)).sum(-1) / _LN2
    if penalty:
        obj = obj - penalty * block_norms()
    return g, noise_interf, signal, obj


def _bcd(h: torch.Tensor, sigma2: torch.Tensor, p_max: torch.Tensor, alpha: torch.Tensor,
         v: torch.Tensor, penalty: float, n_iter: int, tol: float,
         inner_sweeps: int, window: int = 1) -> tuple[torch.Tensor, torch.Tensor]:
    """Run (S-)WMMSE from feasible ``v`` ``[B, I, Q, M]``. Returns it updated and the history.

    Each sample stops on its own (``tol`` over the last ``window`` iterations); the stopped ones
    leave the batch, so the rest iterate on smaller tensors and no sample depends on the others.
    """
    b_all, n_users, n_aps, n_ant = (int(s) for s in h.shape)
    kappa = penalty * _LN2 / 2.0
    eps = torch.finfo(p_max.dtype).eps
    out = v.clone()
    history = torch.empty((n_iter + 1, b_all), dtype=p_max.dtype, device=p_max.device)
    stopped_at = torch.full((b_all,), n_iter, dtype=torch.long)
    active = torch.arange(b_all, device=h.device)
    # AP-major copies, so that every per-AP slice is contiguous: [Q, B, I, M].
    h_ap = h.permute(2, 0, 1, 3).contiguous()
    v_ap = v.permute(2, 0, 1, 3).contiguous()
    h_flat = h.reshape(b_all, n_users, n_aps * n_ant)
    h_aqmi = h.permute(0, 2, 3, 1)  # [B, Q, M, I]
    mu = torch.zeros((n_aps, b_all), dtype=p_max.dtype, device=p_max.device)  # warm starts

    def v_flat() -> torch.Tensor:
        return v_ap.permute(1, 2, 0, 3).reshape(v_ap.shape[1], n_users, n_aps * n_ant)

    def block_norms() -> torch.Tensor:
        return torch.linalg.vector_norm(v_ap, dim=-1).sum((0, 2))

    last = 0
    for it in range(n_iter + 1):
        last = it
        g, noise_interf, signal, obj = _objective(h_flat, v_flat(), sigma2, alpha, penalty,
                                                  block_norms)
        history[it, active] = obj
        if it == n_iter:
            break
        if tol > 0 and it >= window:
            done = (obj - history[it - window, active]).abs() <= tol * (1 + obj.abs())
            if bool(done.any()):
                gone = active[done]
                out[gone] = v_ap[:, done].permute(1, 2, 0, 3)
                stopped_at[gone.cpu()] = it
                keep = ~done
                if not bool(keep.any()):
                    break
                active = active[keep]
                h_ap, v_ap, mu = h_ap[:, keep], v_ap[:, keep], mu[:, keep]
                h_flat, h_aqmi = h_flat[keep], h_aqmi[keep]
                sigma2, p_max, alpha = sigma2[keep], p_max[keep], alpha[keep]
                g, noise_interf, signal = g[keep], noise_interf[keep], signal[keep]
        total = signal + noise_interf
        u = torch.diagonal(g, dim1=-2, dim2=-1) / total  # MMSE receivers
        w = total / noise_interf  # 1 / MMSE = 1 + SINR
        cw = alpha * w * (u.real.square() + u.imag.square())  # A = sum_i cw_i h_i h_i^H
        bc = alpha.to(h.dtype) * w.to(h.dtype) * u  # b_k = bc_k h_k
        cw_c = cw.to(h.dtype)
        a_qq = (h_aqmi * cw_c[:, None, None, :]) @ h_aqmi.conj().mT  # [B, Q, M, M]
        lam, vec = torch.linalg.eigh(0.5 * (a_qq + a_qq.mH))
        lam = lam.clamp_min(0.0)
        valid = lam > n_ant * eps * lam.amax(-1, keepdim=True)
        for _ in range(inner_sweeps):
            for q in range(n_aps):
                hq, vq, uq = h_ap[q], v_ap[q], vec[:, q]  # [B, I, M], [B, I, M], [B, M, M]
                gq = hq.conj() @ vq.mT  # gq[b, i, k] = h_i^qH v_k^q
                # c_k^q = b_k^q - sum_i cw_i h_i^q (h_i^H v_k - h_i^qH v_k^q)
                c = bc[..., None] * hq - (g - gq).mT @ (cw_c[..., None] * hq)  # [B, K, M]
                x_hat, mu[q] = _ap_update(c @ uq.conj(), lam[:, q], valid[:, q], p_max[:, q],
                                          kappa, mu[q])
                vq_new = x_hat @ uq.mT
                v_ap[q] = vq_new
                g = g + hq.conj() @ vq_new.mT - gq
    out[active] = v_ap.permute(1, 2, 0, 3)
    history = history[:last + 1]
    # a stopped sample's objective stays where it stopped
    rows = torch.arange(last + 1, device=history.device)[:, None]
    stop = stopped_at.to(history.device).clamp(max=last)[None, :]
    history = torch.where(rows > stop, history.gather(0, stop.expand(1, -1)).expand_as(history), history)
    return out, history


def _run(h, noise_power, p_max, weights, n_iter, tol, init, inner_sweeps, return_history,
         penalty, window=1):
    _check_iterations(n_iter, tol, inner_sweeps, window)
    h4, flat = _as_cellfree(h)
    b, n_users, n_aps, _ = (int(s) for s in h4.shape)
    real = h4.real.dtype
    dev = h4.device
    sigma2 = _real_values(noise_power, "noise_power", (b, n_users), "[batch, n_users]", real, dev)
    budget_layout = "[batch, 1] (flat h: one total budget)" if flat else "[batch, n_aps]"
    pmax = _real_values(p_max, "p_max", (b, n_aps), budget_layout, real, dev)
    alpha = (torch.ones((b, n_users), dtype=real, device=dev) if weights is None else
             _real_values(weights, "weights", (b, n_users), "[batch, n_users]", real, dev,
                          allow_zero=True))
    with torch.no_grad():
        v0 = _initial(init, h4, flat, pmax)
        v, history = _bcd(h4, sigma2, pmax, alpha, v0.clone(), penalty, n_iter, tol, inner_sweeps, window)
    out = _output(v, flat)
    return (out, history) if return_history else out


def wmmse(h: torch.Tensor, noise_power: float | torch.Tensor, p_max: float | torch.Tensor, *,
          weights: torch.Tensor | None = None, n_iter: int = 100, tol: float = 1e-6,
          init: torch.Tensor | None = None, inner_sweeps: int = 1, window: int = 1,
          return_history: bool = False) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
    """Weighted sum-rate maximisation by WMMSE under per-AP power budgets (batched).

    See the module docstring for the algorithm: Shi et al.'s WMMSE, whose beamformer step is
    solved exactly by block coordinate descent over the APs, with one multiplier per AP. Every
    step is batched over samples and users, and the weighted sum rate does not decrease from one
    iteration to the next (up to rounding; see the module docstring).

    For the paper's "WMMSE with imperfect CSI", pass the estimate ``drop.h_hat`` and evaluate
    the result on ``drop.h`` (module docstring).

    Args:
        h: cell-free channels ``[batch, n_users, n_aps, n_ant]`` complex64/complex128. A flat
            ``[batch, n_users, n_tx]`` is a single AP: one total power budget.
        noise_power: ``sigma_i^2 > 0``. A float, or a real tensor broadcastable to
            ``[batch, n_users]``.
        p_max: per-AP budget ``P_max > 0``. A float, or a real tensor broadcastable to
            ``[batch, n_aps]`` (``[batch, 1]`` for flat ``h``).
        weights: rate weights ``alpha_i >= 0``, broadcastable to ``[batch, n_users]``. Default 1.
        n_iter: maximum number of WMMSE iterations (>= 0).
        tol: a sample stops when its WSR changed by at most ``tol * (1 + WSR)`` over the last
            ``window`` iterations; the others go on without it. 0 runs all ``n_iter`` iterations.
        window: iterations over which ``tol`` is measured. WMMSE crawls along plateaus: on
            cell-free drops (Q = I = 16, M = 4, 20 dB) a per-iteration test (``window=1``) at
            ``1e-4`` stopped at 77 iterations in the median, 8.3 bit/s/Hz (4 %) below the value
            after 1000; ``window=50`` with ``tol=3e-4`` came within 0.03 on average.
        init: initial beamformers in the output layout. They are scaled down per AP if they
            exceed a budget. Default: per-AP MRT at full power,
            ``v_i^q = h_i^q sqrt(P_max / sum_j ||h_j^q||^2)``.
        inner_sweeps: Gauss-Seidel passes over the APs per iteration (Table II's ``I_Q``).
        return_history: also return the weighted sum rate before the first and after every
            iteration.

    Returns:
        ``V``: ``[batch, n_users, n_aps, n_ant]`` with ``V[b, i, q]`` = ``v_i^q``, or
        ``[batch, n_tx, n_users]`` for flat ``h`` (column ``i`` = ``v_i``, the layout of
        :mod:`chanlab.classical.linear_precoding`). It has ``h``'s dtype and device and
        satisfies ``sum_i ||v_i^q||^2 <= P_max`` for every AP. With ``return_history``, also
        ``[n_done + 1, batch]`` (``n_done``: the most iterations any sample ran): the weighted
        sum rate ``sum_i alpha_i log2(1 + SINR_i)`` in bit/s/Hz, non-decreasing along dim 0;
        :func:`iterations_run` reads each sample's iteration count from it.
    """
    return _run(h, noise_power, p_max, weights, n_iter, tol, init, inner_sweeps, return_history,
                0.0, window)


def sparse_wmmse(h: torch.Tensor, noise_power: float | torch.Tensor, p_max: float | torch.Tensor,
                 *, group_penalty: float, weights: torch.Tensor | None = None, n_iter: int = 100,
                 tol: float = 1e-6, init: torch.Tensor | None = None, inner_sweeps: int = 1,
                 window: int = 1,
                 return_history: bool = False) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
    """S-WMMSE (Hong et al. 2013): joint AP clustering and beamforming by group sparsity.

    This maximises ``sum_i alpha_i log2(1 + SINR_i) - group_penalty * sum_{i,q} ||v_i^q||_2``
    under the per-AP budgets, by the WMMSE BCD. Each AP's block is updated exactly: a zero
    block when ``||c_k^q|| <= group_penalty ln2 / 2``, otherwise a regularised MMSE block (see
    the module docstring). APs whose block ``v_i^q`` is exactly zero do not serve user ``i``.
    Use :func:`serving_aps` and :func:`average_serving_aps` on the result. The paper runs it on
    ``h_hat`` ("S-WMMSE with imperfect CSI").

    Args:
        h, noise_power, p_max, weights, n_iter, init, inner_sweeps, window: as for :func:`wmmse`.
        group_penalty: ``lambda >= 0`` in bit/s/Hz per unit beamformer amplitude (Eq. 5's
            lambda, with the group norm). 0 gives exactly :func:`wmmse`. Larger values serve
            each user from fewer APs.
        tol: as for :func:`wmmse`, applied to the penalised objective.
        return_history: also return the penalised objective
            ``WSR - group_penalty * sum ||v_i^q||``, ``[n_done + 1, batch]``, before the first
            and after every iteration. It is non-decreasing.

    Returns:
        ``V`` as for :func:`wmmse`, with exactly-zero ``(user, AP)`` blocks, and with
        ``return_history`` the objective history.
    """
    penalty = _check_penalty(group_penalty)
    return _run(h, noise_power, p_max, weights, n_iter, tol, init, inner_sweeps, return_history,
                penalty, window)


# ----------------------------------------------------------------------------------------------
# AP clustering statistics
# ----------------------------------------------------------------------------------------------


def iterations_run(history: torch.Tensor) -> torch.Tensor:
    """Per sample, the iterations a ``return_history`` run made: ``[batch]`` int64 (the last
    iteration whose objective differs from the one before; a stopped sample's history is flat)."""
    if history.ndim != 2 or history.shape[0] < 1:
        raise DataError(f"history: expected [n_done + 1, batch] from return_history, got {list(history.shape)}")
    changed = history[1:] != history[:-1]                               # [n_done, batch]
    steps = torch.arange(1, history.shape[0], device=history.device)[:, None]
    return (changed * steps).amax(0) if changed.numel() else torch.zeros(history.shape[1], dtype=torch.long)


def serving_aps(v: torch.Tensor, threshold: float = 0.0) -> torch.Tensor:
    """Which APs serve which users: ``||v_i^q||_2 > threshold``.

    Args:
        v: cell-free beamformers ``[batch, n_users, n_aps, n_ant]``.
        threshold: block-norm threshold ``>= 0``. The default 0 counts a block as serving
            unless it is exactly zero, which is how S-WMMSE switches links off.

    Returns:
        ``[batch, n_users, n_aps]`` bool.
    """
    v = as_tensor(v, "v")
    check_ndim(v, 4, "v", "[batch, n_users, n_aps, n_ant]")
    if isinstance(threshold, bool) or not isinstance(threshold, (int, float)) \
            or not math.isfinite(threshold) or threshold < 0:
        raise ConfigError(f"threshold: expected a finite number >= 0, got {threshold!r}")
    if v.is_complex():
        norm2 = (v.real.square() + v.imag.square()).sum(-1)
    else:
        norm2 = v.square().sum(-1)
    return norm2 > float(threshold) ** 2


def average_serving_aps(v: torch.Tensor, threshold: float = 0.0) -> torch.Tensor:
    """Average number of serving APs per user, ``Q_ave`` of the paper's Eq. (33), per sample.

    Eq. (33) is ``Q_ave = Q (1 - V_zero / (Q I M))``, with ``V_zero`` the number of zero
    entries of ``V``. When every block is either all-zero or has no zero entry, as with
    S-WMMSE and WMMSE outputs, this equals the mean over users of the number of serving APs.
    That block-wise count is what is computed here (``serving_aps(v, threshold)``, summed over
    APs and averaged over users). Average the result over samples for the paper's
    test-set figure.

    Returns:
        ``[batch]`` real: between 0 and ``n_aps``.
    """
    mask = serving_aps(v, threshold)
    real = v.real.dtype if v.is_complex() else (v.dtype if v.is_floating_point() else torch.float32)
    return mask.sum(-1).to(real).mean(-1)


# ----------------------------------------------------------------------------------------------
# Per-sample NumPy reference
# ----------------------------------------------------------------------------------------------


def _ref_power_root(fun: Callable[[float], float], hi: float) -> float:
    from scipy.optimize import brentq

    return float(brentq(fun, 0.0, hi, xtol=max(hi * 1e-15, 1e-300), rtol=4 * np.finfo(float).eps,
                        maxiter=500))


def _ref_ap_block(c_hat: np.ndarray, lam: np.ndarray, valid: np.ndarray, p_max: float,
                  kappa: float) -> np.ndarray:
    """One AP's exact block update for one sample, ``c_hat`` ``[M, K]`` -> ``[M, K]``."""

    def blocks(mu: float) -> np.ndarray:
        use = valid if mu == 0.0 else np.ones_like(valid)
        a = np.where(use, lam + mu, 1.0)
        if kappa == 0.0:
            return np.where(use[:, None], c_hat / a[:, None], 0.0)
        x = np.zeros_like(c_hat)
        for k in range(c_hat.shape[1]):
            ck = np.where(use, c_hat[:, k], 0.0)
            cn = float(np.linalg.norm(ck))
            if cn <= kappa:
                continue
            # tau * ||(a + tau)^-1 c|| = kappa, increasing in tau from 0 to ||c||.
            tau_hi = 2.0 * kappa * float(a.max()) / (cn - kappa) + 1e-300
            tau = _ref_power_root(lambda s: s * float(np.linalg.norm(ck / (a + s))) - kappa, tau_hi)
            x[:, k] = ck / (a + tau)
        return x

    def power(mu: float) -> float:
        return float(np.sum(np.abs(blocks(mu)) ** 2))

    mu = 0.0
    if power(0.0) > p_max:
        hi = math.sqrt(float(np.sum(np.abs(c_hat) ** 2)) / p_max)
        mu = _ref_power_root(lambda m: power(m) - p_max, hi)
    x = blocks(mu)
    p = float(np.sum(np.abs(x) ** 2))
    return x * min(1.0, math.sqrt(p_max / p)) if p > 0 else x


def _ref_one(h: np.ndarray, sigma2: np.ndarray, p_max: np.ndarray, alpha: np.ndarray,
             v0: np.ndarray, penalty: float, n_iter: int, tol: float, sweeps: int) -> np.ndarray:
    n_users, n_aps, n_ant = h.shape
    kappa = penalty * _LN2 / 2.0
    hm = h.reshape(n_users, n_aps * n_ant)  # row i = h_i (not conjugated)
    v = v0.reshape(n_users, n_aps * n_ant).T.copy()  # column k = v_k
    prev = None
    off = ~np.eye(n_users, dtype=bool)
    for it in range(n_iter + 1):
        g = hm.conj() @ v  # g[i, k] = h_i^H v_k
        pw = np.abs(g) ** 2
        signal = np.diag(pw).copy()
        noise_interf = (pw * off).sum(1) + sigma2
        obj = float(np.sum(alpha * np.log2(1.0 + signal / noise_interf)))
        if penalty:
            obj -= penalty * float(np.linalg.norm(v.T.reshape(n_users, n_aps, n_ant), axis=-1).sum())
        if it == n_iter or (tol > 0 and prev is not None and abs(obj - prev) <= tol * (1 + abs(obj))):
            break
        prev = obj
        total = signal + noise_interf
        u = np.diag(g) / total
        w = total / noise_interf
        cw = alpha * w * np.abs(u) ** 2
        a_full = (hm.T * cw) @ hm.conj()  # sum_i cw_i h_i h_i^H
        b_full = hm.T * (alpha * w * u)  # column k = b_k
        for _ in range(sweeps):
            for q in range(n_aps):
                sl = slice(q * n_ant, (q + 1) * n_ant)
                c = b_full[sl] - a_full[sl] @ v + a_full[sl, sl] @ v[sl]
                lam, vec = np.linalg.eigh(a_full[sl, sl])
                lam = np.clip(lam, 0.0, None)
                valid = lam > n_ant * np.finfo(float).eps * lam.max()
                v[sl] = vec @ _ref_ap_block(vec.conj().T @ c, lam, valid, float(p_max[q]), kappa)
    return v.T.reshape(n_users, n_aps, n_ant)


def wmmse_reference_loop(h: torch.Tensor | np.ndarray, noise_power: float | torch.Tensor,
                         p_max: float | torch.Tensor, *, weights: torch.Tensor | None = None,
                         n_iter: int = 100, tol: float = 0.0, init: torch.Tensor | None = None,
                         inner_sweeps: int = 1, group_penalty: float = 0.0) -> np.ndarray:
    """Straightforward per-sample NumPy version of :func:`wmmse` / :func:`sparse_wmmse`.

    This is the same algorithm with the same initialisation, AP order and stopping rule,
    written plainly. A Python loop runs over samples, the full ``QM x QM`` matrix ``A`` is
    formed, every AP's block is computed as ``b^q - A_{q,:} V + A_qq V^q``, and
    ``scipy.optimize.brentq`` finds the multipliers (and, for ``group_penalty > 0``, each
    block's ``tau``). It always computes in float64/complex128. It is the agreement
    reference for the tests and ``benchmarks/bench_wmmse.py``, not for production use.

    Arguments are as for :func:`sparse_wmmse`, whose ``tol`` here defaults to 0 (a fixed
    number of iterations). Each sample stops on its own objective.

    Returns:
        ``numpy.ndarray`` complex128 in :func:`wmmse`'s output layout.
    """
    _check_iterations(n_iter, tol, inner_sweeps)
    penalty = _check_penalty(group_penalty)
    h4, flat = _as_cellfree(h)
    h4 = h4.detach().cpu().to(torch.complex128)
    b, n_users, n_aps, _ = (int(s) for s in h4.shape)
    dev = h4.device
    real = torch.float64
    sigma2 = _real_values(noise_power, "noise_power", (b, n_users), "[batch, n_users]", real, dev)
    pmax = _real_values(p_max, "p_max", (b, n_aps), "[batch, n_aps]", real, dev)
    alpha = (torch.ones((b, n_users), dtype=real) if weights is None else
             _real_values(weights, "weights", (b, n_users), "[batch, n_users]", real, dev,
                          allow_zero=True))
    if isinstance(init, torch.Tensor):
        init = init.detach().cpu()
    v0 = _initial(init, h4, flat, pmax).numpy()
    hn, s2, pm, al = h4.numpy(), sigma2.numpy(), pmax.numpy(), alpha.numpy()
    out = np.stack([_ref_one(hn[i], s2[i], pm[i], al[i], v0[i], penalty, n_iter, float(tol),
                             inner_sweeps) for i in range(b)])
    return out[:, :, 0, :].transpose(0, 2, 1).copy() if flat else out


# ----------------------------------------------------------------------------------------------
# Table II: analytic multiplication counts
# ----------------------------------------------------------------------------------------------


def _check_sizes(**sizes: int) -> None:
    for name, value in sizes.items():
        check_int_range(value, name, low=1, error=ConfigError)


def multiplication_count_wmmse(n_aps: int, n_ant: int, n_users: int, n_iter: int = 15) -> int:
    """Real multiplications of WMMSE, transcribed from the cell-free paper's Table II.

    ``4 L_ite (I Q^3 M^3 + I + I^2 Q^2 M^2 + I^2 + I Q^2 M^2 + I Q M + 4 I^2 Q M + 3 I Q M + I Q M)``
    with ``Q`` = ``n_aps``, ``M`` = ``n_ant``, ``I`` = ``n_users`` and ``L_ite`` = ``n_iter``
    (15 in Table II). The factor 4 counts the real multiplications of one complex
    multiplication. The ``I (QM)^3`` term is presumably one ``QM x QM`` inversion per user and
    iteration. The paper does not break the terms down. For ``Q = I = 16``,
    ``M = 4`` this is about ``3.2e8`` ("about 10^8", Fig. 11).

    It counts the paper's WMMSE, not the per-AP BCD implemented in :func:`wmmse`.
    """
    _check_sizes(n_aps=n_aps, n_ant=n_ant, n_users=n_users, n_iter=n_iter)
    q, m, i = n_aps, n_ant, n_users
    per_iter = (i * q**3 * m**3 + i + i**2 * q**2 * m**2 + i**2 + i * q**2 * m**2 + i * q * m
                + 4 * i**2 * q * m + 3 * i * q * m + i * q * m)
    return 4 * n_iter * per_iter


def multiplication_count_sparse_wmmse(n_aps: int, n_ant: int, n_users: int, n_iter: int = 15, *,
                                      inner_iter: int = 10, bisection_range: float = 1e5,
                                      a: float = 0.9) -> float:
    """Real multiplications of S-WMMSE, transcribed from Table II.

    ``4 L_ite (I + I^2 + 2 I Q^2 M^2 + 2 I^2 Q M + 8 I Q M
    + I_Q Q (I (Q-1) M^2 + I M + a I ((log2 eps)^2 + 1)(M^3 + M^2 + M)))``

    The symbols and Table II's values:

    * ``L_ite = n_iter = 15``.
    * ``I_Q = inner_iter = 10``: BCD passes over the ``Q`` APs per iteration.
    * ``eps = bisection_range = 1e5``. ``(log2 eps)^2`` counts the two nested bisections
      (the AP multiplier and each block's norm).
    * ``a = 0.9``: not defined in the paper. It is presumably the fraction of blocks that need
      the inner search. It is only a multiplier here.

    About ``3.3e9`` at ``Q = I = 16``, ``M = 4`` ("about 10^9", Fig. 11). The result is
    a float, because ``a`` and the logarithm are not integers.
    """
    _check_sizes(n_aps=n_aps, n_ant=n_ant, n_users=n_users, n_iter=n_iter, inner_iter=inner_iter)
    if not (math.isfinite(bisection_range) and bisection_range > 1):
        raise ConfigError(f"bisection_range: expected a finite number > 1, got {bisection_range}")
    if not (math.isfinite(a) and a >= 0):
        raise ConfigError(f"a: expected a finite number >= 0, got {a}")
    q, m, i = n_aps, n_ant, n_users
    search = a * i * (math.log2(bisection_range) ** 2 + 1) * (m**3 + m**2 + m)
    per_iter = (i + i**2 + 2 * i * q**2 * m**2 + 2 * i**2 * q * m + 8 * i * q * m
                + inner_iter * q * (i * (q - 1) * m**2 + i * m + search))
    return 4.0 * n_iter * per_iter


def multiplication_count_cnn(n_aps: int, n_ant: int, n_users: int, *, channels: int = 16,
                             k: int = 10, n_layers: int = 8, o: int = 3, o_o: int = 80) -> int:
    """Multiplications of the CNN baseline (He, Dai, Zhang 2020), from Table II.

    ``Q I (36 M C + 38 K M C^2 + L L_l + (2M + 1) O O_o)`` with ``L_l = Q I M``. Table II's
    values are ``C = 16``, ``K = 10``, ``L = 8``, ``O = 3`` and ``O_o = 80``. The paper
    does not define ``K``, ``O`` or ``O_o`` further. About ``1.0e8`` at ``Q = I = 16``,
    ``M = 4``.
    """
    _check_sizes(n_aps=n_aps, n_ant=n_ant, n_users=n_users, channels=channels, k=k,
                 n_layers=n_layers, o=o, o_o=o_o)
    q, m, i, c = n_aps, n_ant, n_users, channels
    return q * i * (36 * m * c + 38 * k * m * c**2 + n_layers * q * i * m + (2 * m + 1) * o * o_o)


def multiplication_count_jcbnet(n_aps: int, n_ant: int, n_users: int, *,
                                n_qos_users: int | None = None, kernel: tuple[int, int] = (5, 5),
                                n_layers: int = 5, channels: int | None = None) -> int:
    """Multiplications of JcbNet (Chen et al. 2023, ref. [17]), from Table II.

    ``QIM + Q^2 I^2 M + QIMC + 3 QIMC kw kh + 2 QIMC (L-1)(2 kw kh + 1) + 4 Q I_QoS M C``, with
    ``kw = kh = 5``, ``C = 2M`` and ``L = 5``. The paper does not define ``I_QoS``. It is
    taken as the number of users with a QoS requirement, ``n_users`` by default (an
    assumption; the term is under 1% of the total). About ``4.3e6`` at ``Q = I = 16``,
    ``M = 4``.
    """
    _check_sizes(n_aps=n_aps, n_ant=n_ant, n_users=n_users, n_layers=n_layers)
    c = 2 * n_ant if channels is None else channels
    i_qos = n_users if n_qos_users is None else n_qos_users
    _check_sizes(channels=c, n_qos_users=i_qos, kernel_w=kernel[0], kernel_h=kernel[1])
    q, m, i = n_aps, n_ant, n_users
    kk = kernel[0] * kernel[1]
    return (q * i * m + q**2 * i**2 * m + q * i * m * c + 3 * q * i * m * c * kk
            + 2 * q * i * m * c * (n_layers - 1) * (2 * kk + 1) + 4 * q * i_qos * m * c)


def multiplication_count_rjapcbn(n_aps: int, n_ant: int, n_users: int, *,
                                 kernel: tuple[int, int] = (5, 5), n_layers: int = 5,
                                 channels: int | None = None) -> int:
    """Multiplications of the paper's RJAPCBN, from Table II.

    ``Q^2 I^2 C + QIMC + QI + QIMC kw kh + (L-1) Q I C^2 kw kh`` with ``kw = kh = 5``,
    ``C = 2M`` and ``L = 5``. About ``2.4e6`` at ``Q = I = 16``, ``M = 4``
    ("about 10^6", Fig. 11).
    """
    _check_sizes(n_aps=n_aps, n_ant=n_ant, n_users=n_users, n_layers=n_layers)
    c = 2 * n_ant if channels is None else channels
    _check_sizes(channels=c, kernel_w=kernel[0], kernel_h=kernel[1])
    q, m, i = n_aps, n_ant, n_users
    kk = kernel[0] * kernel[1]
    return (q**2 * i**2 * c + q * i * m * c + q * i + q * i * m * c * kk
            + (n_layers - 1) * q * i * c**2 * kk)


def multiplication_counts_table2(n_aps: int = 16, n_ant: int = 4, n_users: int = 16) -> dict[str, float]:
    """All Table II counts at Table II's default parameters, by algorithm name (Fig. 11)."""
    return {
        "S-WMMSE": multiplication_count_sparse_wmmse(n_aps, n_ant, n_users),
        "WMMSE": float(multiplication_count_wmmse(n_aps, n_ant, n_users)),
        "CNN": float(multiplication_count_cnn(n_aps, n_ant, n_users)),
        "JcbNet": float(multiplication_count_jcbnet(n_aps, n_ant, n_users)),
        "RJAPCBN": float(multiplication_count_rjapcbn(n_aps, n_ant, n_users)),
    }


__all__ = [
    "average_serving_aps", "iterations_run", "multiplication_count_cnn", "multiplication_count_jcbnet",
    "multiplication_count_rjapcbn", "multiplication_count_sparse_wmmse",
    "multiplication_count_wmmse", "multiplication_counts_table2", "serving_aps",
    "sparse_wmmse", "wmmse", "wmmse_reference_loop",
]
