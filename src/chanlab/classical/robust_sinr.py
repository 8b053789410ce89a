"""Exact worst-case SINR lower bound under a bounded (spherical) CSI error.

This implements the robust SINR bound of the cell-free paper (``cellfree-robust-ap-clustering.txt``,
Sec. III, Eq. (9)-(18) and problem (31)) in closed form, batched over samples and users.

**Model.** User ``i`` has the estimate ``h_hat_i`` (``N = Q M`` entries, AP-major) and the true
channel ``h_i = h_hat_i + dh_i``. The precoders are ``V = [v_1, ..., v_I]`` (``N x I``) and the
gain of stream ``j`` at user ``i`` is ``h_i^H v_j`` (see :mod:`chanlab.metrics.rates`). Eq. (9)
lower-bounds the worst-case SINR by a ratio of two separate worst cases::

    SINR_wc_i = min_{||dh|| <= eps_i} |(h_hat_i + dh)^H v_i|^2
                / (max_{||dh|| <= eps_i} sum_{j != i} |(h_hat_i + dh)^H v_j|^2 + sigma_i^2)

The numerator is the ``alpha_i`` of C4 (Eq. 11) and the denominator the ``beta_i`` of C5
(Eq. 12). For a fixed ``V``, problem (31) separates over users. ``log2(1 + gamma_i)`` increases in
``gamma_i`` and C6 reads ``gamma_i <= alpha_i / beta_i``. So its optimum is
``gamma_i = alpha_i* / beta_i*``: the largest ``alpha_i`` allowed by C4-bar (Eq. 15) over the
smallest ``beta_i`` allowed by C5-bar (Eq. 18). The S-lemma (Lemma 1) and the sign-definiteness
lemma (Lemma 2) are exact for one ball constraint. The SDP optimum is therefore exactly the ratio
above, and this module computes it without an SDP solver.

* This is the bound of Eq. (9), not ``min_dh SINR_i(dh)``. The two worst cases generally need
  different errors, so the bound can lie below the SINR of every single feasible error.
* **Numerator (closed form).** The set ``{dh^H v : ||dh|| <= eps}`` is the disc of radius
  ``eps ||v||``, so ``min |a + dh^H v|^2 = max(|a| - eps ||v||, 0)^2`` with
  ``a = h_hat^H v``. The minimiser is ``dh = -(t / ||v||^2) (conj(a) / |a|) v`` with
  ``t = min(eps ||v||, |a|)``. This is the minimum-norm choice when the bound is 0.
* **Denominator (trust-region problem).** ``max_{||dh|| <= eps} (h_hat + dh)^H A (h_hat + dh)``
  with ``A = W W^H`` and ``W = V_{-i}`` (``N x (I-1)``). It is solved exactly in the
  ``(I-1)``-dimensional eigenspace of ``G = W^H W = R diag(lam) R^H``, and the ``N x N`` matrix
  ``A`` is never formed. With ``b = W^H h_hat`` and ``beta = R^H b``, the maximiser is
  ``dh* = W R diag(1 / (mu - lam)) beta``. The multiplier ``mu >= lam_max`` solves the secular
  equation ``sum_k lam_k |beta_k|^2 / (mu - lam_k)^2 = eps^2``, and the maximum is
  ``sum_k |beta_k|^2 mu^2 / (mu - lam_k)^2``.

  The equation is solved for ``d = mu - lam_max >= 0``, not for ``mu``, so no cancellation
  occurs near ``lam_max``. It uses safeguarded Newton steps on ``1 / ||z(d)|| - 1 / eps``, which
  is increasing and concave in ``d``. Newton therefore converges monotonically from the lower
  end of the bracket::

      max_k (sqrt(lam_k) |beta_k| / eps - gap_k)  <=  d  <=  sqrt(sum_k lam_k |beta_k|^2) / eps

  A step that leaves the bracket falls back to bisection. All samples and users iterate
  together, and the loop stops once every one has converged.

  The components of ``h_hat`` outside ``range(A)`` add nothing to the objective. ``dh*`` lies in
  ``range(W)``, so the whole budget goes where it counts.

  **Hard case.** Here ``h_hat`` is orthogonal to the top eigenspace (``beta_top = 0``) and
  ``sum_{k not top} lam_k |beta_k|^2 / gap_k^2 <= eps^2``. Then ``mu = lam_max`` and the
  left-over budget ``tau^2 = eps^2 - (that sum)`` goes along the top eigenvector
  ``W r_top / sqrt(lam_max)``, which adds ``lam_max tau^2``. A nearly orthogonal ``h_hat``, as
  round-off always produces, is an ordinary instance with a tiny ``d``, and it gives the same
  value up to round-off.

  **Edge cases.** ``eps = 0`` gives ``dh* = 0`` and the nominal interference ``||W^H h_hat||^2``.
  ``W = 0`` (or ``I = 1``) gives 0. ``v_i = 0`` gives a signal of 0.

**Error radius (a choice the paper makes).** The error model (Eq. 6) bounds every AP separately,
``||dh_i^q|| <= eps_i^q``. Below Eq. (15), the paper replaces this with one ball on the stacked
error, ``||dh_i|| <= eps_i = sqrt(sum_q (eps_i^q)^2)``, and Eq. (15) and (18) use only ``eps_i``.
That ball contains every per-AP product set, so the bound is also a valid, if conservative,
lower bound for the per-AP model. Every function here accepts per-AP radii ``[B, I, Q]`` and
aggregates them this way, or aggregate radii ``[B, I]`` directly. With
:func:`chanlab.channels.cellfree.generate_cellfree` (``eps_i^q = eta ||h_hat_i^q||``), this gives
``eps_i = eta ||h_hat_i||``.

**Precision.** The Gram matrices ``V^H V`` and gains ``h_hat^H V`` are formed in the input
precision. The small ``(I-1)``-dimensional problems (eigendecomposition, secular equation,
closed forms) are then solved in float64 and complex128 for every input dtype. The outputs come
back in the real dtype that matches the input.

**Gradients (envelope theorem / Danskin).** Both worst cases are optimal values of problems
whose feasible set does not depend on ``h_hat`` or ``V``. Their gradient is therefore the
objective's partial gradient at the optimiser. We compute ``dh*`` under ``torch.no_grad()`` and
write it as ``eps_i * u*`` with ``u*`` detached. We then evaluate the objective
``f(h_hat, V, eps * u*)`` with autograd and return
``exact_value.detach() + (f - f.detach())``. The forward value is the exact closed form. The
backward pass is the envelope gradient with respect to ``V``, ``h_hat`` and ``eps``. This holds
wherever the optimiser is unique. In the hard case, and at the kink ``|a| = eps ||v||`` of the
numerator, it is one element of the (Clarke) subdifferential. No gradient flows through the
eigendecomposition or the Newton iterations. This evaluation runs only when grad mode is on and
an input requires grad.

**Reference.** :func:`worst_case_sinr_cvxpy` solves the paper's LMIs (Eq. 15 and 18) with CVXPY,
one user at a time, so that tests and benchmarks can check the closed forms.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import torch

from chanlab.core.errors import DataError
from chanlab.core.validation import check_complex, check_finite, check_ndim
from chanlab.metrics.rates import flatten_cellfree, flatten_cellfree_precoder, noise_matrix

_LN2 = math.log(2.0)
#: Default relative tolerance on ``||dh*|| = eps`` in the secular equation (float64).
DEFAULT_TOL = 1e-13
#: Default cap on safeguarded Newton iterations. Typical instances need fewer than 10.
DEFAULT_MAX_ITER = 100


def _shape(x: torch.Tensor) -> list[int]:
    return [int(s) for s in x.shape]


# --------------------------------------------------------------------------------------------
# Input handling
# --------------------------------------------------------------------------------------------

def aggregate_error_radius(eps: torch.Tensor) -> torch.Tensor:
    """Per-user radius ``eps_i = sqrt(sum_q (eps_i^q)^2)`` of the paper (below Eq. 15).

    The ball ``||dh_i|| <= eps_i`` contains every per-AP set ``||dh_i^q|| <= eps_i^q``, so the
    robust bounds of this module are conservative for the per-AP model.

    Args:
        eps: ``[batch, n_users, n_aps]`` real per-AP radii, or ``[batch, n_users]``. The
            ``[batch, n_users]`` form is returned unchanged.

    Returns:
        ``[batch, n_users]`` real.
    """
    if not isinstance(eps, torch.Tensor) or not eps.is_floating_point():
        raise DataError(f"eps: expected a real floating-point tensor, got "
                        f"{type(eps).__name__ if not isinstance(eps, torch.Tensor) else eps.dtype}")
    check_ndim(eps, (2, 3), "eps", "[batch, n_users] or [batch, n_users, n_aps]")
    if eps.ndim == 3:
        return torch.linalg.vector_norm(eps, dim=-1)
    return eps


def _prepare(h_hat: torch.Tensor, v: torch.Tensor, eps: float | torch.Tensor, check: bool
             ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Validate inputs.

    Returns ``h [B, I, N]`` and ``v [B, N, I]`` of one complex dtype, and real ``eps [B, I]``.
    """
    if not isinstance(h_hat, torch.Tensor) or not isinstance(v, torch.Tensor):
        raise DataError(f"h_hat, v: expected torch.Tensors, got {type(h_hat).__name__}, "
                        f"{type(v).__name__}")
    check_complex(h_hat, "h_hat")
    check_complex(v, "v")
    check_ndim(h_hat, (3, 4), "h_hat", "[batch, n_users, n_tx] or [batch, n_users, n_aps, n_ant]")
    check_ndim(v, (3, 4), "v", "[batch, n_tx, n_users] or [batch, n_users, n_aps, n_ant]")
    n_aps = int(h_hat.shape[2]) if h_hat.ndim == 4 else None
    h = flatten_cellfree(h_hat) if h_hat.ndim == 4 else h_hat
    w = flatten_cellfree_precoder(v) if v.ndim == 4 else v
    b, n_users, n_tx = _shape(h)
    if _shape(w) != [b, n_tx, n_users]:
        raise DataError(f"v: expected shape [batch={b}, n_tx={n_tx}, n_users={n_users}] to match "
                        f"h_hat (after flattening any cell-free layout), got {_shape(w)}")
    if h.device != w.device:
        raise DataError(f"h_hat, v: expected tensors on one device, got {h.device} and {w.device}")
    dtype = torch.promote_types(h.dtype, w.dtype)
    if dtype not in (torch.complex64, torch.complex128):
        raise DataError(f"h_hat, v: expected complex64 or complex128, got {h.dtype} and {w.dtype}")
    h, w = h.to(dtype), w.to(dtype)
    real = h.real.dtype

    if isinstance(eps, torch.Tensor):
        if not eps.is_floating_point():
            raise DataError(f"eps: expected a real floating-point tensor, got dtype {eps.dtype}")
        if eps.ndim == 2:
            if _shape(eps) != [b, n_users]:
                raise DataError(f"eps: expected shape [batch={b}, n_users={n_users}] or "
                                f"[batch, n_users, n_aps], got {_shape(eps)}")
        elif eps.ndim == 3:
            q = int(eps.shape[2])
            if _shape(eps)[:2] != [b, n_users] or (n_aps is not None and q != n_aps) \
                    or q < 1 or n_tx % q:
                want = f"n_aps={n_aps}" if n_aps is not None else f"n_aps dividing n_tx={n_tx}"
                raise DataError(f"eps: expected per-AP radii of shape [batch={b}, "
                                f"n_users={n_users}, {want}], got {_shape(eps)}")
        else:
            raise DataError(f"eps: expected shape [batch, n_users] or [batch, n_users, n_aps], "
                            f"got {_shape(eps)}")
        if check and eps.numel():
            check_finite(eps, "eps")
            if bool((eps < 0).any()):
                raise DataError(f"eps: expected error radii >= 0, got min {float(eps.min())}")
        eps_agg = aggregate_error_radius(eps.to(device=h.device, dtype=real))
    else:
        if isinstance(eps, bool):
            raise DataError(f"eps: expected a number or a real tensor, got {eps!r}")
        try:
            value = float(eps)
        except (TypeError, ValueError):
            raise DataError(f"eps: expected a number or a real tensor, got {eps!r}") from None
        if not math.isfinite(value) or value < 0:
            raise DataError(f"eps: expected a finite radius >= 0, got {value}")
        eps_agg = torch.full((b, n_users), value, dtype=real, device=h.device)
    if check:
        check_finite(h, "h_hat")
        check_finite(w, "v")
    return h, w, eps_agg


def _others(n_users: int, device: torch.device) -> torch.Tensor:
    """``[I, I-1]`` long: row ``i`` lists the users ``j != i`` in increasing order."""
    idx = torch.arange(n_users, device=device)
    grid = idx.expand(n_users, n_users)
    return grid[grid != idx[:, None]].reshape(n_users, n_users - 1)


# --------------------------------------------------------------------------------------------
# The two worst cases, without gradients
# --------------------------------------------------------------------------------------------

def _secular(lam: torch.Tensor, c: torch.Tensor, eps: torch.Tensor, max_iter: int, tol: float
             ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, int]:
    """Solve ``sum_k c_k / (d + gap_k)^2 = eps^2`` for ``d >= 0``. All inputs are float64.

    Args:
        lam: ``[..., K]`` eigenvalues ``>= 0``, ascending. ``gap_k = lam_max - lam_k``.
        c: ``[..., K]`` weights ``lam_k |beta_k|^2 >= 0``.
        eps: ``[...]`` radii ``> 0``.

    Returns:
        ``(d, hard, tau2, iterations)``. ``hard`` marks the hard case (``d = 0``).
        ``tau2 = eps^2 - phi(0)`` is the budget left for the top eigenvector (0 elsewhere).
    """
    gap = (lam[..., -1:] - lam).clamp_min(0.0)
    gap[..., -1] = 0.0
    eps2 = eps.square()

    def moments(d: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        den = d.unsqueeze(-1) + gap
        live = c > 0
        safe = torch.where(live, den, torch.ones_like(den))
        r = torch.where(live, c / safe.square(), torch.zeros_like(c))
        return r.sum(-1), (r / safe).sum(-1)  # phi, sum c / den^3

    lo = (c.sqrt() / eps.unsqueeze(-1) - gap).amax(-1).clamp_min(0.0)
    hi = torch.maximum(c.sum(-1).sqrt() / eps, lo)
    phi0, _ = moments(torch.zeros_like(eps))
    # d = 0 is the answer when phi(0) <= eps^2. This needs every top weight to vanish, since
    # phi(0) is infinite otherwise, so it is exactly the hard case.
    top_zero = torch.where(gap == 0, c, torch.zeros_like(c)).sum(-1) == 0
    hard = top_zero & (phi0 <= eps2)
    tau2 = torch.where(hard, (eps2 - phi0).clamp_min(0.0), torch.zeros_like(eps))

    d = torch.where(hard, torch.zeros_like(lo), lo)
    done = hard | (hi <= lo)
    it = 0
    for it in range(1, max_iter + 1):
        phi, s3 = moments(d)
        norm = phi.sqrt()
        psi = 1.0 / norm - 1.0 / eps  # < 0 left of the root
        lo = torch.where(psi <= 0, torch.maximum(lo, d), lo)
        hi = torch.where(psi >= 0, torch.minimum(hi, d), hi)
        narrow = hi - lo <= 4 * torch.finfo(d.dtype).eps * hi
        done = done | ((norm - eps).abs() <= tol * eps) | narrow
        if bool(done.all()):
            break
        dpsi = s3 / (phi * norm)  # = d/dd (phi^{-1/2})
        step = d - psi / dpsi
        ok = torch.isfinite(step) & (step > lo) & (step < hi)
        step = torch.where(ok, step, 0.5 * (lo + hi))
        d = torch.where(done, d, step)
    return d, hard, tau2, it


@dataclass
class _Solution:
    signal: torch.Tensor         # [B, I] float64
    interference: torch.Tensor   # [B, I] float64
    delta_signal: torch.Tensor   # [B, I, N] complex128
    delta_interference: torch.Tensor  # [B, I, N] complex128
    multiplier: torch.Tensor     # [B, I] float64
    hard: torch.Tensor           # [B, I] bool
    iterations: int


@torch.no_grad()
def _solve(h: torch.Tensor, v: torch.Tensor, eps: torch.Tensor, max_iter: int, tol: float,
           need_signal: bool = True, need_interference: bool = True) -> _Solution:
    """Both worst cases and their optimisers. ``h [B, I, N]``, ``v [B, N, I]``, ``eps [B, I]``."""
    b, n_users, n_tx = _shape(h)
    dev = h.device
    c128, f64 = torch.complex128, torch.float64
    gains = torch.matmul(h.conj(), v).to(c128)       # [B, I, I]: gains[i, j] = h_i^H v_j
    gram = torch.matmul(v.mH, v).to(c128)            # [B, I, I]: gram[j, k] = v_j^H v_k
    e64 = eps.detach().to(f64)
    v128 = v.detach().to(c128)
    zeros_bi = torch.zeros(b, n_users, dtype=f64, device=dev)

    # ---- numerator: min |a + dh^H v_i|^2 over the ball (closed form)
    if need_signal:
        a = torch.diagonal(gains, dim1=-2, dim2=-1)                       # [B, I]
        vnorm2 = torch.diagonal(gram, dim1=-2, dim2=-1).real.clamp_min(0)  # [B, I]
        vnorm = vnorm2.sqrt()
        abs_a = a.abs()
        signal = (abs_a - e64 * vnorm).clamp_min(0).square()
        margin = 1.0 - 16 * torch.finfo(h.real.dtype).eps  # keeps ||dh|| <= eps after the cast
        t = torch.minimum(e64 * vnorm * margin, abs_a)
        live = (abs_a > 0) & (vnorm2 > 0)
        phase = torch.where(live, a.conj() / torch.where(live, abs_a, torch.ones_like(abs_a)),
                            torch.zeros_like(a))
        kappa = -(t / torch.where(live, vnorm2, torch.ones_like(vnorm2))) * phase  # [B, I]
        delta_signal = kappa.unsqueeze(-1) * v128.transpose(1, 2)               # [B, I, N]
    else:
        signal = zeros_bi
        delta_signal = torch.zeros(b, n_users, n_tx, dtype=c128, device=dev)

    # ---- denominator: trust-region maximisation in the (I-1)-dimensional eigenspace
    delta_int = torch.zeros(b, n_users, n_tx, dtype=c128, device=dev)
    interference, multiplier = zeros_bi.clone(), zeros_bi.clone()
    hard = torch.zeros(b, n_users, dtype=torch.bool, device=dev)
    iterations = 0
    if need_interference and n_users > 1 and b > 0:
        oth = _others(n_users, dev)                                   # [I, K]
        rows = torch.arange(n_users, device=dev)[:, None]
        g_i = gram[:, oth[:, :, None], oth[:, None, :]]               # [B, I, K, K]
        b_i = gains[:, rows, oth].conj()                              # [B, I, K]: W_i^H h_i
        lam, r = torch.linalg.eigh(g_i)
        lam = lam.clamp_min(0.0)
        beta = torch.matmul(r.mH, b_i.unsqueeze(-1)).squeeze(-1)     # [B, I, K]
        b2 = beta.real.square() + beta.imag.square()
        lam_max = lam[..., -1]
        pos = e64 > 0
        e_safe = torch.where(pos, e64, torch.ones_like(e64))
        d, hard, tau2, iterations = _secular(lam, lam * b2, e_safe, max_iter, tol)
        hard = hard & pos
        gap = (lam_max.unsqueeze(-1) - lam).clamp_min(0.0)
        gap[..., -1] = 0.0
        den = d.unsqueeze(-1) + gap
        mu = lam_max + d
        nz = den > 0
        den_safe = torch.where(nz, den, torch.ones_like(den))
        ratio = torch.where(nz, mu.unsqueeze(-1) / den_safe, torch.zeros_like(den))
        robust = (b2 * ratio.square()).sum(-1) + torch.where(hard, lam_max * tau2, zeros_bi)
        nominal = b2.sum(-1)  # ||W^H h||^2
        interference = torch.where(pos, robust, nominal)
        multiplier = torch.where(pos, mu, lam_max)
        # dh* = W_i y with y = R (beta / den) (+ tau r_top / sqrt(lam_max) in the hard case)
        coef = torch.where(nz, beta / den_safe, torch.zeros_like(beta))
        y = torch.matmul(r, coef.unsqueeze(-1)).squeeze(-1)
        s_top = lam_max.sqrt()
        top_ok = hard & (s_top > 0)
        s_top_safe = torch.where(top_ok, s_top, torch.ones_like(s_top))
        top_scale = torch.where(top_ok, tau2.sqrt() / s_top_safe, zeros_bi)
        y = y + top_scale.unsqueeze(-1) * r[..., :, -1]
        y = torch.where(pos.unsqueeze(-1), y, torch.zeros_like(y))
        full = torch.zeros(b, n_users, n_users, dtype=c128, device=dev)
        full[:, rows, oth] = y                                        # coefficients over v_j
        delta_int = torch.matmul(full, v128.transpose(1, 2))          # [B, I, N]
        # Enforce ||dh*|| <= eps: the secular solve meets it to ~tol, and the margin of 16 ulps
        # of the output precision keeps it after the cast back to the input dtype.
        cap = e64 * (1.0 - 16 * torch.finfo(h.real.dtype).eps)
        nrm = torch.linalg.vector_norm(delta_int, dim=-1)
        shrink = torch.where(nrm > cap, cap / torch.where(nrm > 0, nrm, torch.ones_like(nrm)),
                             torch.ones_like(nrm))
        delta_int = delta_int * shrink.unsqueeze(-1)
    return _Solution(signal=signal, interference=interference, delta_signal=delta_signal,
                     delta_interference=delta_int, multiplier=multiplier, hard=hard,
                     iterations=iterations)


# --------------------------------------------------------------------------------------------
# Envelope-theorem evaluation (differentiable)
# --------------------------------------------------------------------------------------------

def _needs_grad(*xs: object) -> bool:
    return torch.is_grad_enabled() and any(isinstance(x, torch.Tensor) and x.requires_grad
                                           for x in xs)


def _unit(delta: torch.Tensor, eps: torch.Tensor) -> torch.Tensor:
    """``delta / eps`` (0 where ``eps = 0``), detached, in ``delta``'s dtype."""
    e = eps.detach().to(delta.real.dtype)
    pos = e > 0
    e_safe = torch.where(pos, e, torch.ones_like(e)).unsqueeze(-1)
    return torch.where(pos.unsqueeze(-1), delta / e_safe, torch.zeros_like(delta))


def _envelope_signal(h: torch.Tensor, v: torch.Tensor, eps: torch.Tensor, delta: torch.Tensor
                     ) -> torch.Tensor:
    u = _unit(delta, eps).to(h.dtype)
    h_eval = h + eps.unsqueeze(-1).to(h.real.dtype) * u                     # [B, I, N]
    a = (h_eval.conj() * v.transpose(1, 2)).sum(-1)                         # (h+dh)_i^H v_i
    return a.real.square() + a.imag.square()


def _envelope_interference(h: torch.Tensor, v: torch.Tensor, eps: torch.Tensor,
                           delta: torch.Tensor) -> torch.Tensor:
    n_users = h.shape[1]
    u = _unit(delta, eps).to(h.dtype)
    h_eval = h + eps.unsqueeze(-1).to(h.real.dtype) * u
    g = torch.matmul(h_eval.conj(), v)
    power = g.real.square() + g.imag.square()
    off = ~torch.eye(n_users, dtype=torch.bool, device=h.device)
    return (power * off).sum(-1)


def _attach(exact: torch.Tensor, surrogate: torch.Tensor | None) -> torch.Tensor:
    """Exact forward value, envelope gradient: ``exact + (f - f.detach())``."""
    if surrogate is None:
        return exact
    return exact + (surrogate - surrogate.detach())


# --------------------------------------------------------------------------------------------
# Public API
# --------------------------------------------------------------------------------------------

@dataclass
class WorstCaseTerms:
    """The two worst cases of Eq. (9) and their optimisers, per sample and user.

    The real tensors use the real dtype that matches the input's complex dtype. ``signal`` and
    ``interference`` carry envelope-theorem gradients (see the module docstring). The error
    tensors are detached. They are in the flattened, stacked layout ``[batch, n_users, N]``
    (AP-major, so ``.reshape(B, I, Q, M)`` gives per-AP errors).

    Attributes:
        signal: ``[B, I]``, ``min_{||dh_i|| <= eps_i} |(h_hat_i + dh_i)^H v_i|^2``. This is the
            ``alpha_i*`` of C4-bar (Eq. 15).
        interference: ``[B, I]``,
            ``max_{||dh_i|| <= eps_i} sum_{j != i} |(h_hat_i + dh_i)^H v_j|^2``. Adding the
            noise gives the ``beta_i*`` of C5-bar (Eq. 18).
        noise: ``[B, I]``, ``sigma_i^2``.
        eps: ``[B, I]``, the aggregate radii ``eps_i`` that were used.
        delta_signal: ``[B, I, N]`` complex, the minimum-norm minimiser of the signal term.
        delta_interference: ``[B, I, N]`` complex, a maximiser of the interference term
            (in ``range(V_{-i})``, with norm ``eps_i`` whenever the interference can grow).
            Both error tensors are shrunk by a relative 16 ulps of the output precision, so
            ``||dh|| <= eps_i`` holds in that precision.
        multiplier: ``[B, I]``, the Lagrange multiplier ``mu_i >= lam_max`` of the ball in the
            interference problem. It is ``lam_max`` when ``eps_i = 0``.
        hard_case: ``[B, I]`` bool, whether the trust-region problem was in the hard case.
        iterations: Newton/bisection iterations the batch needed (the maximum over entries).
    """

    signal: torch.Tensor
    interference: torch.Tensor
    noise: torch.Tensor
    eps: torch.Tensor
    delta_signal: torch.Tensor
    delta_interference: torch.Tensor
    multiplier: torch.Tensor
    hard_case: torch.Tensor
    iterations: int

    @property
    def denominator(self) -> torch.Tensor:
        """``[B, I]``: worst-case interference plus noise, i.e. ``beta_i*``."""
        return self.interference + self.noise

    @property
    def sinr(self) -> torch.Tensor:
        """``[B, I]``: the worst-case SINR lower bound ``signal / denominator`` of Eq. (9)."""
        return self.signal / self.denominator


def worst_case_terms(h_hat: torch.Tensor, v: torch.Tensor, eps: float | torch.Tensor,
                     noise_power: float | torch.Tensor, *, check: bool = True,
                     max_iter: int = DEFAULT_MAX_ITER, tol: float = DEFAULT_TOL) -> WorstCaseTerms:
    """Worst-case signal and interference of Eq. (9), with their optimisers.

    Args:
        h_hat: estimated channels, ``[batch, n_users, N]`` complex (row ``i`` = ``h_hat_i``,
            gain ``h_i^H v_j``) or cell-free ``[batch, n_users, n_aps, n_ant]``.
        v: precoders, ``[batch, N, n_users]`` (column ``j`` = ``v_j``) or cell-free per-user
            beamformers ``[batch, n_users, n_aps, n_ant]``. Both are complex64 or complex128.
            Mixed dtypes are promoted.
        eps: error radii ``>= 0``: aggregate ``[batch, n_users]``, per-AP
            ``[batch, n_users, n_aps]`` (combined as ``sqrt(sum_q (eps_i^q)^2)``, see
            :func:`aggregate_error_radius`), or one number for every user.
        noise_power: ``sigma_i^2 > 0``, a float or a real tensor broadcastable to
            ``[batch, n_users]``.
        check: run the finiteness and range checks. These force a device sync. Shape checks
            always run.
        max_iter: cap on the safeguarded Newton iterations of the secular equation.
        tol: relative tolerance on ``||dh*|| = eps`` at the root.

    Returns:
        A :class:`WorstCaseTerms`.
    """
    if isinstance(max_iter, bool) or not isinstance(max_iter, int) or max_iter < 1:
        raise DataError(f"max_iter: expected a positive integer, got {max_iter!r}")
    if not (isinstance(tol, (int, float)) and 0 < float(tol) < 1):
        raise DataError(f"tol: expected a number in (0, 1), got {tol!r}")
    h, w, e = _prepare(h_hat, v, eps, check)
    b, n_users, _ = _shape(h)
    real = h.real.dtype
    sigma2 = noise_matrix(noise_power, b, n_users, real, h.device, check)
    sol = _solve(h, w, e, max_iter, float(tol))
    grad = _needs_grad(h, w, e)
    f_sig = _envelope_signal(h, w, e, sol.delta_signal) if grad else None
    f_int = _envelope_interference(h, w, e, sol.delta_interference) if grad else None
    signal = _attach(sol.signal.to(real), f_sig)
    interference = _attach(sol.interference.to(real), f_int)
    return WorstCaseTerms(signal=signal, interference=interference, noise=sigma2, eps=e,
                          delta_signal=sol.delta_signal.to(h.dtype),
                          delta_interference=sol.delta_interference.to(h.dtype),
                          multiplier=sol.multiplier.to(real), hard_case=sol.hard,
                          iterations=sol.iterations)


def worst_case_signal(h_hat: torch.Tensor, v: torch.Tensor, eps: float | torch.Tensor, *,
                      check: bool = True) -> torch.Tensor:
    """Worst-case signal ``min_{||dh_i|| <= eps_i} |(h_hat_i + dh_i)^H v_i|^2``.

    In closed form this is ``max(|h_hat_i^H v_i| - eps_i ||v_i||, 0)^2``.

    Arguments are as for :func:`worst_case_terms`. The gradient is the envelope gradient.

    Returns:
        ``[batch, n_users]`` real.
    """
    h, w, e = _prepare(h_hat, v, eps, check)
    sol = _solve(h, w, e, 1, DEFAULT_TOL, need_signal=True, need_interference=False)
    grad = _needs_grad(h, w, e)
    return _attach(sol.signal.to(h.real.dtype),
                   _envelope_signal(h, w, e, sol.delta_signal) if grad else None)


def worst_case_interference(h_hat: torch.Tensor, v: torch.Tensor, eps: float | torch.Tensor, *,
                            check: bool = True, max_iter: int = DEFAULT_MAX_ITER,
                            tol: float = DEFAULT_TOL) -> torch.Tensor:
    """``max_{||dh_i|| <= eps_i} sum_{j != i} |(h_hat_i + dh_i)^H v_j|^2`` (noise not included).

    Arguments are as for :func:`worst_case_terms`. The gradient is the envelope gradient.

    Returns:
        ``[batch, n_users]`` real.
    """
    h, w, e = _prepare(h_hat, v, eps, check)
    sol = _solve(h, w, e, max_iter, float(tol), need_signal=False, need_interference=True)
    grad = _needs_grad(h, w, e)
    return _attach(sol.interference.to(h.real.dtype),
                   _envelope_interference(h, w, e, sol.delta_interference) if grad else None)


def worst_case_sinr(h_hat: torch.Tensor, v: torch.Tensor, eps: float | torch.Tensor,
                    noise_power: float | torch.Tensor, *, check: bool = True) -> torch.Tensor:
    """Worst-case SINR lower bound of Eq. (9) per user. It equals the ``gamma_i*`` of problem (31).

    ``SINR_wc_i = worst_case_signal / (worst_case_interference + sigma_i^2)``. With ``eps = 0``
    it equals :func:`chanlab.metrics.rates.sinr`.

    Arguments are as for :func:`worst_case_terms`.

    Returns:
        ``[batch, n_users]`` real (linear, not dB), differentiable in ``h_hat``, ``v``, ``eps``
        and ``noise_power``.
    """
    return worst_case_terms(h_hat, v, eps, noise_power, check=check).sinr


def worst_case_rates(h_hat: torch.Tensor, v: torch.Tensor, eps: float | torch.Tensor,
                     noise_power: float | torch.Tensor, *, check: bool = True) -> torch.Tensor:
    """Per-user worst-case rate ``log2(1 + SINR_wc_i)`` in bit/s/Hz, ``[batch, n_users]``."""
    return torch.log1p(worst_case_sinr(h_hat, v, eps, noise_power, check=check)) / _LN2


def worst_case_sum_rate(h_hat: torch.Tensor, v: torch.Tensor, eps: float | torch.Tensor,
                        noise_power: float | torch.Tensor, *, check: bool = True) -> torch.Tensor:
    """Worst-case sum rate ``sum_i log2(1 + SINR_wc_i)`` in bit/s/Hz, ``[batch]``.

    This is the objective of problem (31), and of (19) without the sparsity penalty, for the
    given precoders.
    """
    return worst_case_rates(h_hat, v, eps, noise_power, check=check).sum(-1)


# --------------------------------------------------------------------------------------------
# CVXPY reference (the paper's LMIs)
# --------------------------------------------------------------------------------------------

@dataclass
class CvxpyWorstCase:
    """Result of :func:`worst_case_sinr_cvxpy`. Every tensor is float64 ``[batch, n_users]``.

    Attributes:
        sinr: ``alpha* / beta*``, the ``gamma*`` of problem (31).
        signal: ``alpha*``, the largest ``alpha_i`` feasible in C4-bar (Eq. 15).
        interference: ``beta* - sigma^2``, from the smallest ``beta_i`` feasible in C5-bar (Eq. 18).
        noise: ``sigma^2``.
        delta: the S-lemma multipliers ``delta_i`` of Eq. (15), in the caller's units.
        mu: the sign-definiteness multipliers ``mu_i`` of Eq. (18), in the caller's units.
        status: per-entry solver statuses ``"<Eq. 15>/<Eq. 18>"``, ``[batch][n_users]``
            (``"trivial"`` where no SDP was needed, ``"skipped"`` for users not solved).
    """

    sinr: torch.Tensor
    signal: torch.Tensor
    interference: torch.Tensor
    noise: torch.Tensor
    delta: torch.Tensor
    mu: torch.Tensor
    status: list[list[str]]


def _realify(m):
    """Hermitian ``n x n`` -> real symmetric ``2n x 2n`` with the same PSD-ness."""
    import numpy as np
    return np.block([[m.real, -m.imag], [m.imag, m.real]])


def _lmi_min(cp, c0, c_obj, c_aux, solver, solver_opts):
    """``min t  s.t.  c0 + t c_obj + s c_aux >= 0 (PSD), s >= 0``. Returns ``(t, s, status)``."""
    import numpy as np
    t = cp.Variable()
    s = cp.Variable(nonneg=True)
    lhs = _realify(c0) + t * _realify(c_obj) + s * _realify(c_aux)
    prob = cp.Problem(cp.Minimize(t), [lhs >> 0])
    prob.solve(solver=solver, **solver_opts)
    if t.value is None:
        return float("nan"), float("nan"), str(prob.status)
    return float(np.asarray(t.value)), float(np.asarray(s.value)), str(prob.status)


def worst_case_sinr_cvxpy(h_hat: torch.Tensor, v: torch.Tensor, eps: float | torch.Tensor,
                          noise_power: float | torch.Tensor, *, solver: str | None = None,
                          reduce: bool = False, normalize: bool = True,
                          solver_opts: dict | None = None,
                          users: Sequence[int] | None = None) -> CvxpyWorstCase:
    """Reference: the paper's LMIs (Eq. 15 and 18) solved with CVXPY, one user at a time.

    For each sample and user, with ``W = V_{-i}``, ``E = v_i v_i^H``, ``e = E h_hat_i`` and the
    aggregate radius ``eps_i``:

    * **C4-bar (Eq. 15)**, S-lemma: maximise ``alpha`` over ``alpha`` and ``delta >= 0`` s.t.
      ``[[E + delta I, e], [e^H, h_hat^H E h_hat - alpha - delta eps^2]] >= 0``.
    * **C5-bar (Eq. 18)**, sign-definiteness: minimise ``beta`` over ``beta`` and ``mu >= 0`` s.t.
      ``[[beta - sigma^2 - mu, h_hat^H W, 0], [W^H h_hat, I, eps W^H], [0, eps W, mu I_N]] >= 0``.
      ``t = beta - sigma^2`` is the optimisation variable, so that the interference keeps its
      relative accuracy when the noise dominates.

    Then ``gamma* = alpha* / beta*``. This is the optimum of problem (31) for the given ``V``,
    since that problem separates over users (see the module docstring). Complex Hermitian LMIs
    are passed to the solver in the equivalent real form ``[[Re, -Im], [Im, Re]] >= 0``.

    This is a per-sample Python loop, meant for small instances. Interior-point SDP cost grows
    like the sixth power of the LMI size, so the literal Eq. (18) (size ``1 + (I-1) + N``) takes
    tens of seconds per user at ``N = 64``.

    ``reduce=True`` applies exact congruence transforms instead. ``blockdiag(1, I, [U_r, U_perp])``
    with ``U_r`` an orthonormal basis of ``range(W)`` splits the LMI of Eq. (18) into one of size
    ``1 + (I-1) + rank(W)`` plus the decoupled block ``mu I >= 0``. ``[v/||v||, U_perp]`` reduces
    Eq. (15) to a ``2 x 2`` LMI plus ``delta I >= 0``. The optimal values are unchanged.

    With ``normalize=True`` (default), each user's data are scaled to unit size
    (``h_hat, eps`` by ``max(||h_hat_i||, eps_i)``, ``V`` by its spectral norm) before solving,
    and the results are scaled back. The large-scale fading of cell-free drops spans many
    decades, and this keeps solver tolerances relative.

    Args:
        h_hat, v, eps, noise_power: as for :func:`worst_case_terms`.
        solver: a CVXPY solver name. The default is ``"CLARABEL"`` if installed, else ``"SCS"``.
        reduce: solve the exactly reduced LMIs (see above) rather than the literal ones.
        normalize: rescale each problem to unit size before solving.
        solver_opts: extra keyword arguments for ``Problem.solve``. The defaults are tight
            tolerances (Clarabel: ``1e-9`` gap and feasibility; SCS: ``eps_abs = eps_rel = 1e-9``).
            At these tolerances Clarabel often reports ``optimal_inaccurate`` while still
            agreeing with the closed forms to about ``1e-8``.
        users: solve only these user indices (the others are NaN, status ``"skipped"``), e.g. to
            time the literal LMIs at paper sizes.

    Returns:
        A :class:`CvxpyWorstCase` (float64 tensors on the CPU).
    """
    try:
        import cvxpy as cp
    except ImportError as exc:  # pragma: no cover - cvxpy is a declared dependency
        raise DataError("worst_case_sinr_cvxpy needs cvxpy (pip install cvxpy)") from exc
    import numpy as np

    h, w, e = _prepare(h_hat, v, eps, True)
    b, n_users, n_tx = _shape(h)
    sigma2 = noise_matrix(noise_power, b, n_users, torch.float64, h.device, True)
    installed = cp.installed_solvers()
    if solver is None:
        solver = "CLARABEL" if "CLARABEL" in installed else "SCS"
    if solver not in installed:
        raise DataError(f"solver: expected one of the installed CVXPY solvers {installed}, "
                        f"got {solver!r}")
    opts = {"CLARABEL": dict(tol_gap_abs=1e-9, tol_gap_rel=1e-9, tol_feas=1e-9),
            "SCS": dict(eps_abs=1e-9, eps_rel=1e-9, max_iters=200_000)}.get(solver, {})
    opts.update(solver_opts or {})

    hn = h.detach().to(torch.complex128).cpu().numpy()
    vn = w.detach().to(torch.complex128).cpu().numpy()
    en = e.detach().to(torch.float64).cpu().numpy()
    sn = sigma2.detach().cpu().numpy()
    chosen = range(n_users) if users is None else sorted({int(i) for i in users})
    if any(not 0 <= i < n_users for i in chosen):
        raise DataError(f"users: expected indices in [0, {n_users - 1}], got {list(users)}")
    out = {k: np.full((b, n_users), np.nan) for k in ("signal", "interference", "delta", "mu")}
    status: list[list[str]] = []
    for s in range(b):
        row_status = ["skipped"] * n_users
        for i in chosen:
            hi, vi, ei = hn[s, i], vn[s, :, i], float(en[s, i])
            wi = np.delete(vn[s], i, axis=1)                   # N x (I-1)
            sh = max(float(np.linalg.norm(hi)), ei) if normalize else 1.0
            sh = sh if sh > 0 else 1.0
            st = []
            # ---- C4-bar (Eq. 15): alpha* = max alpha
            sv = float(np.linalg.norm(vi)) if normalize else 1.0
            if float(np.linalg.norm(vi)) == 0.0:
                alpha, delta = 0.0, 0.0
                st.append("trivial")
            else:
                hs, vs, es = hi / sh, vi / (sv if sv > 0 else 1.0), ei / sh
                if reduce:
                    nv = np.linalg.norm(vs)
                    a = np.vdot(hs, vs)                         # h^H v
                    big_e = np.array([[nv ** 2]], dtype=complex)
                    small_e = np.array([nv * np.conj(a)])       # [u, U_perp]^H e, first entry
                    c = abs(a) ** 2
                else:
                    big_e = np.outer(vs, vs.conj())
                    small_e = big_e @ hs
                    c = float(np.real(np.vdot(hs, big_e @ hs)))
                n = big_e.shape[0]
                # max alpha <=> min (-alpha):
                # [[E + d I, e], [e^H, c - alpha - d eps^2]] = C0 + (-alpha) C_obj + d C_aux
                c0 = np.zeros((n + 1, n + 1), dtype=complex)
                c0[:n, :n], c0[:n, n], c0[n, :n], c0[n, n] = big_e, small_e, small_e.conj(), c
                c_obj = np.zeros((n + 1, n + 1))
                c_obj[n, n] = 1.0
                c_aux = np.zeros((n + 1, n + 1))
                c_aux[:n, :n] = np.eye(n)
                c_aux[n, n] = -es ** 2
                neg_alpha, delta, stat = _lmi_min(cp, c0, c_obj, c_aux, solver, opts)
                scale = (sh * sv) ** 2
                alpha, delta = -neg_alpha * scale, delta * sv ** 2
                st.append(stat)
            # ---- C5-bar (Eq. 18): beta* = sigma^2 + min t
            sw = float(np.linalg.norm(wi, 2)) if wi.size else 0.0
            if sw == 0.0:
                t_opt, mu = 0.0, 0.0
                st.append("trivial")
            else:
                sw_n = sw if normalize else 1.0
                hs, ws, es = hi / sh, wi / sw_n, ei / sh
                bvec = ws.conj().T @ hs                          # W^H h, (I-1)
                if reduce:
                    u, sing, _ = np.linalg.svd(ws, full_matrices=False)
                    rank = int((sing > sing[0] * 1e-12).sum())
                    wblock = u[:, :rank].conj().T @ ws           # U_r^H W, rank x (I-1)
                else:
                    wblock = ws                                  # N x (I-1)
                k, m = wi.shape[1], wblock.shape[0]
                n = 1 + k + m
                c0 = np.zeros((n, n), dtype=complex)
                c0[0, 1:1 + k] = bvec.conj()
                c0[1:1 + k, 0] = bvec
                c0[1:1 + k, 1:1 + k] = np.eye(k)
                c0[1:1 + k, 1 + k:] = es * wblock.conj().T
                c0[1 + k:, 1:1 + k] = es * wblock
                c_obj = np.zeros((n, n))
                c_obj[0, 0] = 1.0
                c_aux = np.zeros((n, n))
                c_aux[0, 0] = -1.0
                c_aux[1 + k:, 1 + k:] = np.eye(m)
                t_opt, mu, stat = _lmi_min(cp, c0, c_obj, c_aux, solver, opts)
                t_opt, mu = t_opt * (sh * sw_n) ** 2, mu * (sh * sw_n) ** 2
                st.append(stat)
            out["signal"][s, i], out["delta"][s, i] = alpha, delta
            out["interference"][s, i], out["mu"][s, i] = t_opt, mu
            row_status[i] = "/".join(st)
        status.append(row_status)
    signal = torch.from_numpy(out["signal"])
    interference = torch.from_numpy(out["interference"])
    noise = torch.from_numpy(np.ascontiguousarray(sn, dtype=np.float64))
    return CvxpyWorstCase(sinr=signal / (interference + noise), signal=signal,
                          interference=interference, noise=noise,
                          delta=torch.from_numpy(out["delta"]), mu=torch.from_numpy(out["mu"]),
                          status=status)


__all__ = ["CvxpyWorstCase", "DEFAULT_MAX_ITER", "DEFAULT_TOL", "WorstCaseTerms",
           "aggregate_error_radius", "worst_case_interference", "worst_case_rates",
           "worst_case_signal", "worst_case_sinr", "worst_case_sinr_cvxpy",
           "worst_case_sum_rate", "worst_case_terms"]
