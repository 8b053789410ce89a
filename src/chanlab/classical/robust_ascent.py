"""Per-drop projected gradient ascent on the exact worst-case sum rate (a reference, not a paper method).

The cell-free paper compares its network against designs that ignore the CSI error (WMMSE,
S-WMMSE on the estimates). None of those tells how high the worst-case sum rate of Eq. (9) can
go for a drop. This optimizer answers that question directly, so that an experiment can show
the headroom left above every method. For each drop it runs Adam on the beamformers, with the
loss ``-sum_i log2(1 + SINR_wc_i)`` from :func:`chanlab.classical.robust_sinr.worst_case_sum_rate`
(exact, with envelope-theorem gradients), and projects onto the per-AP budgets after every step
with :func:`chanlab.classical.wmmse.project_per_ap_power` (Eq. 30). All drops of a batch are
optimised at once; each keeps its best iterate, so the result is never below the start.

It is a local method on a non-concave objective: its value is a lower bound on the robust
optimum, not the optimum itself. It is also expensive (``n_steps`` bound evaluations with
gradients per drop), which is why it is a reference and not a competitor on complexity.
"""

from __future__ import annotations

import math

import torch

from chanlab.classical.robust_sinr import worst_case_sum_rate
from chanlab.classical.wmmse import project_per_ap_power
from chanlab.core.errors import ConfigError, DataError


def robust_gradient_ascent(h_hat: torch.Tensor, eps: torch.Tensor | float, noise_power: float | torch.Tensor,
                           p_max: float, init: torch.Tensor, *, n_steps: int = 300,
                           lr: float = 0.01, tol: float = 0.0, patience: int = 20,
                           return_steps: bool = False) -> torch.Tensor | tuple[torch.Tensor, int]:
    """Beamformers that locally maximise the worst-case sum rate, one ascent per drop (batched).

    Args:
        h_hat: estimated CSI ``[batch, n_users, n_aps, n_ant]`` complex.
        eps: error radii, per AP ``[batch, n_users, n_aps]``, per user ``[batch, n_users]`` or a
            float (see :func:`chanlab.classical.robust_sinr.worst_case_terms`).
        noise_power: ``sigma^2`` (float or broadcastable to ``[batch, n_users]``).
        p_max: per-AP power budget.
        init: starting beamformers, same shape as ``h_hat`` (e.g. WMMSE on ``h_hat``).
        n_steps: Adam steps, at most (the cap when ``tol`` stops it earlier).
        lr: Adam learning rate, in the units of the beamformer entries.
        tol: stop once no drop's best rate has risen by more than ``tol · (1 + best)`` over the
            last ``patience`` steps (0: run all ``n_steps``).
        patience: the window of that test, in steps.
        return_steps: also return the number of steps run.

    Returns:
        ``[batch, n_users, n_aps, n_ant]`` beamformers meeting every per-AP budget; for every
        drop, the iterate with the highest worst-case sum rate seen (``init`` projected included).
        With ``return_steps``, ``(beamformers, steps run)``.
    """
    if not isinstance(h_hat, torch.Tensor) or not h_hat.is_complex() or h_hat.ndim != 4:
        raise DataError("h_hat: expected a complex tensor [batch, n_users, n_aps, n_ant]")
    if not isinstance(init, torch.Tensor) or init.shape != h_hat.shape or not init.is_complex():
        raise DataError(f"init: expected a complex tensor of shape {list(h_hat.shape)}")
    if isinstance(n_steps, bool) or not isinstance(n_steps, int) or n_steps < 0:
        raise ConfigError(f"n_steps: expected an integer >= 0, got {n_steps!r}")
    if isinstance(lr, bool) or not isinstance(lr, (int, float)) or not math.isfinite(lr) or lr <= 0:
        raise ConfigError(f"lr: expected a finite number > 0, got {lr!r}")
    if isinstance(tol, bool) or not isinstance(tol, (int, float)) or not math.isfinite(tol) or tol < 0:
        raise ConfigError(f"tol: expected a finite number >= 0, got {tol!r}")
    if isinstance(patience, bool) or not isinstance(patience, int) or patience < 1:
        raise ConfigError(f"patience: expected an integer >= 1, got {patience!r}")

    def rate(v: torch.Tensor) -> torch.Tensor:
        return worst_case_sum_rate(h_hat, v, eps, noise_power, check=False)

    with torch.no_grad():
        best = project_per_ap_power(init, p_max)
        best_rate = rate(best)
    x = torch.view_as_real(best.clone()).requires_grad_(True)
    opt = torch.optim.Adam([x], lr=lr)
    window = [best_rate]
    steps = 0
    for _ in range(n_steps):
        steps += 1
        v = project_per_ap_power(torch.view_as_complex(x), p_max)
        r = rate(v)
        opt.zero_grad(set_to_none=True)
        (-r.sum()).backward()
        opt.step()
        with torch.no_grad():
            better = r.detach() > best_rate
            best = torch.where(better[:, None, None, None], v.detach(), best)
            best_rate = torch.maximum(best_rate, r.detach())
        if tol > 0:
            window.append(best_rate)
            if len(window) > patience:
                old = window.pop(0)
                if bool((best_rate - old <= tol * (1 + best_rate.abs())).all()):
                    break
    with torch.no_grad():  # the last step's iterate has not been scored yet
        v = project_per_ap_power(torch.view_as_complex(x.detach()), p_max)
        r = rate(v)
        out = torch.where((r > best_rate)[:, None, None, None], v, best)
    return (out, steps) if return_steps else out


__all__ = ["robust_gradient_ascent"]
