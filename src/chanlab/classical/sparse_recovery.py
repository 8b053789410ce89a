"""Batched greedy sparse recovery of a nonnegative channel angular power spectrum (CAPS).

These are the baselines of the Channel Space Gridization paper: OMP, nonnegative OMP (NOMP)
and weighted nonnegative OMP (WNOMP). Each estimates an ``L``-sparse CAPS
``x ∈ R^N_{≥0}`` from a beam-level RSRP vector ``y ∈ R^M`` (linear mW) with ``y ≈ A x``,
where ``A ∈ R^{M×N}_{≥0}`` is the beam-pattern matrix (eq. 6 of the paper)::

    min_x  ||y - A x||²   s.t.  ||x||_0 <= L,  x >= 0

**OMP** (Pati, Rezaiifar, Krishnaprasad 1993). At each of ``L`` iterations it adds the atom
with the largest ``|a_nᵀ r| / ||a_n||`` to the support and refits by unconstrained least
squares on the support, so entries may be negative. The columns of ``A`` have very different
norms, hence the normalization: without it the selection would favour strong beams over
well-matched ones.

**NOMP** (Bruckstein, Elad, Zibulevsky 2008). It adds the atom with the largest *positive*
normalized correlation and refits by nonnegative least squares (NNLS) on the support. A
sample whose best correlation is ``<= 0`` stops: no nonnegative step along any atom can then
lower the residual.

**WNOMP.** The paper cites [5] for it without giving the weights. This module uses
weighted least squares with per-beam weights::

    w_m = 1 / y_m,    min_x ||diag(w) (y - A x)||²  s.t.  ||x||_0 <= L,  x >= 0

The weighted residual is the *relative* error per beam. To first order,
``(y_m - ŷ_m) / y_m ≈ ln(10)/10 · (y_m,dB - ŷ_m,dB)``, so each beam's error counts in
proportion to its error in dB. That is the MAE-in-dB objective used elsewhere, and without
the weights the strongest beams would dominate a linear-mW fit. WNOMP is NOMP run per sample
on ``(diag(w) A, diag(w) y)``. The weights differ per sample, so the weighted dictionary is
never built (it would be ``[batch, M, N]``). The correlations are ``(w² ⊙ r)ᵀ A`` and the
atom norms ``sqrt((w²)ᵀ (A ⊙ A))``, both plain matmuls. A beam with ``y_m <= 0`` (or below
the floor) is clamped to ``y_m = 1e-9 · max_m y_m``, i.e. 90 dB below the sample's strongest
beam, so its weight stays finite. A sample with no positive beam gets unit weights.
``weights`` overrides the rule.

**Stopping.** A sample stops adding atoms once its (weighted) residual norm is at most
``rtol`` times that of its target, ``sqrt(eps)`` of the dtype by default. Past that point
the best atom is chosen by rounding noise. Every sample still runs as part of the batch, but
a stopped sample's support and coefficients are frozen.

**NNLS refits** (:func:`nnls_small`). An exact active-set method (Lawson & Hanson 1974,
ch. 23), batched: every sample runs the same iterations under masks, and a converged sample
is frozen, so the loop runs over active-set iterations, never over samples. First, one
modified Gram–Schmidt (MGS) QR of ``[A_sub | y]`` per sample reduces the problem from ``M``
rows to ``k`` rows: ``||y - A_sub c||² = ||z - R c||² + const``. Each iteration adds the
zero-set column with the largest positive gradient to the passive set, or, after a step that
hit the constraints, drops the coefficients that reached zero. Then it solves unconstrained
least squares on the passive set by MGS on the reduced columns ``[R_P | z]``. MGS least
squares is backward stable (Björck 1967). The normal equations would square the condition
number, and neighbouring angle columns of ``A`` are highly coherent. The same MGS sweep also
orthogonalizes the zero-set columns against ``R_P``. The next gradient is taken from those
remainders and the least squares residual, so its sign stays reliable where coherent columns
make ``Rᵀ(z - R c)`` pure rounding. As in Lawson and Hanson's code, a column is rejected until
the iterate next moves if it does not enter with a positive coefficient, makes the passive
set dependent, or fails to lower the residual by more than rounding. The cost grows
polynomially with the support size ``k``, not as the ``2^k`` subsets of an enumeration.

Inside NOMP the factorization grows by one column per iteration, and each refit warm-starts
from the previous one, which is the NNLS optimum without the new atom. Where that optimum is
positive on every old atom, the method's first step is least squares on all ``k`` atoms: one
triangular solve with ``R``, for the whole batch at once. If its coefficients are all
positive, they are the optimum. In ``benchmarks/bench_nnls.py`` that settles every sample at
most iterations and about nine in ten at worst. Only the others go through the active-set
loop.

**OMP's refit** grows a QR factorization of the support by one column per iteration
(classical Gram–Schmidt with one re-orthogonalization). The coefficients come from a single
triangular solve at the end.

**Cost.** Each iteration is dominated by one ``[batch, M] x [M, N]`` matmul for the
correlations. WNOMP adds one more, for the weighted atom norms.

All functions work on any device and floating dtype, loop only over iterations and columns,
never over samples, and return tensors on ``Y``'s device with ``Y``'s dtype.
"""

from __future__ import annotations

import torch

from chanlab.core.errors import DataError
from chanlab.core.validation import as_tensor, check_finite, check_int_range, check_ndim, check_real

#: Largest support :func:`nnls_small` accepts; NOMP/WNOMP inherit it. The active-set method
#: has no combinatorial limit. But one least squares solve is a loop of O(k) small-tensor ops,
#: and a cold solve takes up to about 3k of them, so the op count grows as k². 64 is twice
#: the paper's M = 32 beams, which bounds the sparsity already.
MAX_NNLS_ATOMS = 64

#: Floor of the WNOMP weights' RSRP, relative to the sample's strongest beam (-90 dB).
WEIGHT_FLOOR = 1e-9

# ---------------------------------------------------------------------------------------------
# validation


def _check_dictionary(A, Y, name_a: str = "A", name_y: str = "Y") -> tuple[torch.Tensor, torch.Tensor]:
    A = as_tensor(A, name_a)
    Y = as_tensor(Y, name_y)
    check_ndim(A, 2, name_a, "[M, N] (beams x angles)")
    check_ndim(Y, 2, name_y, "[batch, M] (RSRP per beam)")
    check_real(Y, name_y)
    if A.is_complex():
        raise DataError(f"{name_a}: expected a real beam-pattern matrix, got dtype {A.dtype}")
    m = A.shape[0]
    if Y.shape[1] != m:
        raise DataError(f"{name_y}: expected RSRP with M = {m} beams to match {name_a} [{m}, N], "
                        f"got {Y.shape[1]}")
    if A.shape[1] == 0 or m == 0:
        raise DataError(f"{name_a}: expected at least one beam and one angle, got shape {list(A.shape)}")
    A = A.to(device=Y.device, dtype=Y.dtype)
    check_finite(A, name_a)
    check_finite(Y, name_y)
    return A, Y


def _check_sparsity(sparsity, A: torch.Tensor, cap: int | None = None) -> None:
    m, n = A.shape
    check_int_range(sparsity, "sparsity", 1, min(m, n))
    if cap is not None and sparsity > cap:
        raise DataError(f"sparsity: expected at most {cap} (each batched NNLS refit takes O(L²) "
                        f"small-tensor steps), got {sparsity}")


def _default_rtol(dtype: torch.dtype, rtol: float | None) -> float:
    if rtol is None:
        return float(torch.finfo(dtype).eps) ** 0.5
    if not (rtol >= 0):
        raise DataError(f"rtol: expected a number >= 0, got {rtol}")
    return float(rtol)


# ---------------------------------------------------------------------------------------------
# least-squares kernels


def _back_substitute(R: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Solve ``R x = b`` for upper-triangular ``R [..., k, k]``, ``b [..., k]``.

    A Python loop over ``k`` of elementwise ops. For tiny ``k`` it beats a batched LAPACK call,
    which runs one small solve per matrix on the CPU.
    """
    k = R.shape[-1]
    x = torch.zeros_like(b)
    for j in range(k - 1, -1, -1):
        acc = b[..., j] - (R[..., j, j + 1:] * x[..., j + 1:]).sum(-1)
        x[..., j] = acc / R[..., j, j]
    return x


def _rank_tol(A_sub: torch.Tensor) -> torch.Tensor:
    """``[batch, k]``: a column whose remainder after orthogonalization is below this is dependent."""
    return A_sub.shape[1] * float(torch.finfo(A_sub.dtype).eps) * torch.linalg.vector_norm(A_sub, dim=1)


def _qr_reduce(A_sub: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``R [batch, k, k]`` and ``z = Qᵀ y [batch, k]`` from modified Gram–Schmidt on ``[A_sub | y]``.

    For every column subset ``P``, ``||y - A_P c||² = ||z - R_P c||² + (||y||² - ||z||²)``.
    So each subset problem shrinks from ``M`` rows to ``k`` rows. MGS on the augmented matrix is
    an exact orthogonal reduction of a nearby problem (Björck & Paige 1992), so every subset
    problem stays backward stable, which the normal equations would not be.
    """
    batch, _, k = A_sub.shape
    tol = _rank_tol(A_sub)
    V = torch.cat([A_sub, y[:, :, None]], dim=-1).transpose(1, 2).contiguous()  # [batch, k+1, M]
    R = A_sub.new_zeros(batch, k, k + 1)
    for j in range(k):
        v = V[:, j]
        rjj = torch.linalg.vector_norm(v, dim=-1)
        # A dependent column keeps only its components along the earlier q's: the remainder
        # dropped here is below the rank tolerance.
        use = rjj > tol[:, j]
        q = torch.where(use[:, None], v / rjj.clamp_min(torch.finfo(v.dtype).tiny)[:, None], 0.0)
        rest = (q[:, None, :] * V[:, j + 1:]).sum(-1)  # [batch, k-j]
        V[:, j + 1:] -= rest[..., None] * q[:, None, :]
        R[:, j, j] = torch.where(use, rjj, 0.0)
        R[:, j, j + 1:] = rest
    return R[..., :k], R[..., k]


# The active-set kernels below keep the batch in the LAST dimension ("batch-last"): a column
# of the reduced problem is ``[k, batch]`` and ``R`` is stored as its columns, ``Rc [k, k, batch]``
# with ``Rc[j]`` = column ``j``. Every elementwise op then runs along a contiguous batch
# dimension. With the batch first, the innermost dimension would be k <= 64, and the same ops
# ran 2-3x slower on the CPU.


def _norm0(v: torch.Tensor) -> torch.Tensor:
    """Euclidean norm over dim 0 (faster than ``vector_norm`` there, and equally unscaled)."""
    return (v * v).sum(0).sqrt()


def _passive_lstsq(Rc: torch.Tensor, z: torch.Tensor, passive: torch.Tensor,
                   rank_tol: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Least squares ``min ||z - R_P c||`` on each sample's passive set ``P``, by MGS on ``[R | z]``.

    Only the members of ``P`` are pivots, but every column and ``z`` are orthogonalized against
    them. So the same sweep also gives, for each column ``j`` outside ``P``, its remainder
    ``u_j`` orthogonal to ``span(R_P)``, and the least squares residual ``ρ`` (the remainder of
    ``z``).

    Args (batch-last):
        Rc: ``[k, k, batch]``, ``Rc[j]`` is column ``j`` of the reduced ``R``.
        z: ``[k, batch]``.
        passive: ``[k, batch]`` bool, the passive set of each sample.
        rank_tol: ``[k, batch]``, the remainder below which a column counts as dependent.

    Returns:
        ``s [k, batch]``, zero outside ``P``; ``dependent [batch]`` bool, whether a member of
        ``P`` had a remainder, after orthogonalization against the earlier members, below
        ``rank_tol`` (its coefficient is then 0); and ``w [k, batch]``, ``u_jᵀ ρ`` outside ``P``
        and 0 on it. In exact arithmetic ``w`` is the NNLS gradient ``Rᵀ(z - R s)`` on the zero
        set. Computed from the remainders it keeps its sign where the columns are so coherent
        that ``Rᵀ(z - R s)`` is all rounding error: ``R_j`` is then almost in ``span(R_P)``,
        ``u_j`` is tiny, and ``R_jᵀ`` times the residual's rounding error swamps ``u_jᵀ ρ``.
        Last, ``||ρ|| [batch]``, the least squares residual norm.
    """
    k, batch = z.shape
    threshold = torch.where(passive, rank_tol, torch.inf)  # a non-member is never a pivot
    # Rows of V: the columns of R, then z. All rows are updated together, so the op count is
    # O(k), not O(k²): on these small tensors the per-op overhead, not the arithmetic, sets
    # the time. A finished pivot row is updated too, harmlessly: it is not read again.
    V = torch.cat([Rc, z[None]], dim=0)  # [k+1, k, batch]
    # T[j, i] = q_jᵀ (row i of V at step j): T[j, j+1:k] is pivot row j of the triangular
    # factor of R_P and T[j, k] = q_jᵀ z. Entries left of the diagonal are never read.
    T = Rc.new_empty(k, k + 1, batch)
    rjj = Rc.new_empty(k, batch)
    # unbind: one op for all the row views, instead of an indexing op per row and step.
    for v, r, thr, row in zip(V.unbind(0), rjj.unbind(0), threshold.unbind(0), T.unbind(0)):
        torch.sqrt((v * v).sum(0), out=r)
        q = torch.where(r > thr, v / r, 0.0)
        torch.sum(V * q, dim=1, out=row)
        V.addcmul_(row[:, None], q, value=-1.0)
    use = rjj > threshold
    # A non-pivot column has q = 0, hence an empty row; R_jj = 1 then gives it s_j = 0.
    torch.diagonal(T, dim1=0, dim2=1).copy_(torch.where(use, rjj, 1.0).T)
    s = torch.linalg.solve_triangular(T[:, :k].permute(2, 0, 1), T[:, k].T[:, :, None], upper=True)
    w = torch.where(passive, 0.0, (V[:k] * V[k]).sum(1))
    return s[:, :, 0].T, (passive & ~use).any(0), w, _norm0(V[k])


def _partial_step(x: torch.Tensor, s: torch.Tensor, negative: torch.Tensor) -> torch.Tensor:
    """Move from a feasible ``x`` towards ``s`` until the first coefficient in ``negative`` reaches 0.

    ``negative [k, batch]`` marks the passive coefficients with ``s <= 0``; there ``x > 0``, or
    ``x = 0`` at a just-added column (a zero step), so ``x - s > 0`` wherever ``x > 0``. The
    coefficient that blocks the step is set to exactly 0, and rounding below 0 is clipped.
    """
    gap = x - s
    alpha, first = torch.where(negative, x / torch.where(gap > 0, gap, 1.0), torch.inf).min(0)
    x_step = x + alpha.clamp(0.0, 1.0) * (s - x)
    position = torch.arange(x.shape[0], device=x.device)[:, None]
    return x_step.masked_fill_(position == first, 0.0).clamp_min_(0.0)


def _nnls_reduced(Rc: torch.Tensor, z: torch.Tensor, rank_tol: torch.Tensor,
                  x0: torch.Tensor | None = None, active: torch.Tensor | None = None,
                  inner: torch.Tensor | None = None) -> torch.Tensor:
    """Batched Lawson–Hanson active-set NNLS ``min_c ||z - R c||²  s.t. c >= 0`` (batch-last).

    Args:
        Rc: ``[k, k, batch]``, the columns of the QR-reduced ``R``; z: ``[k, batch]``.
        rank_tol: ``[k, batch]``, see :func:`_passive_lstsq`.
        x0: ``[k, batch]``, optional warm start: a nonnegative point that is the least squares
            solution on its own positive entries, such as the NNLS optimum on fewer columns
            padded with zeros. Default 0.
        active: ``[batch]`` bool, optional: the samples to solve. The others return ``x0`` (or
            0) unchanged and take no part in the iterations.
        inner: ``[batch]`` bool, optional: samples whose ``x0`` is feasible but not the least
            squares solution on its positive entries (after a partial step). They start with a
            solve instead of a dual check.

    Returns:
        ``x [k, batch]``, ``x >= 0``, the NNLS optimum.

    Every sample runs the same iterations under masks, and a converged sample is frozen. One
    iteration is one dual check for the samples at a least squares point ``x`` (add the
    zero-set column with the largest positive gradient ``w_j = R_jᵀ(z - R x)`` to the passive
    set ``P``) and one least squares solve ``s`` on ``P`` (:func:`_passive_lstsq`) for every
    sample still running. Then:

    * a sample that has just added column ``t`` rejects it, and bars it until ``x`` next
      changes, if ``s_t <= 0``, if ``P`` became numerically dependent, or if ``s`` does not
      lower the residual by more than its rounding error. This is Lawson & Hanson's
      safeguard against rounding; without it a column could enter and leave forever.
    * If ``s > 0`` on all of ``P``, then ``x = s`` and the next iteration starts with a dual
      check, on the gradient from the remainders of that solve.
    * Otherwise ``x`` moves towards ``s`` until its first coefficient reaches zero. The zeros
      leave ``P``, and the next iteration solves again on the smaller ``P``.

    A sample converges when no column qualifies, or when its residual is at the rounding level
    of its own computation, ``k · eps · (||z|| + ||R||_F ||x||)``. The loop stops after
    ``5k + 10`` iterations in any case, a guard never reached in the tests, and then returns
    the current feasible ``x``.
    """
    k, batch = z.shape
    x = z.new_zeros(k, batch) if x0 is None else x0.clamp_min(0.0)
    if active is not None:
        keep = active.nonzero()[:, 0]
        if keep.numel() < batch:  # solve the active samples only
            if keep.numel():
                x[:, keep] = _nnls_reduced(Rc.index_select(-1, keep), z[:, keep], rank_tol[:, keep], x[:, keep],
                                           inner=None if inner is None else inner[keep])
            return x
    if k == 0 or batch == 0:
        return x
    eps_k = k * float(torch.finfo(z.dtype).eps)
    r_fro = _norm0(Rc.reshape(k * k, batch))
    z_norm = _norm0(z)
    passive = x > 0
    # dual: at a least squares point, so the iteration starts with a dual check on w.
    dual = torch.ones(batch, dtype=torch.bool, device=z.device) if inner is None else ~inner
    if inner is None or not bool(inner.all()):
        # The gradient at the start. From x = 0 it is exactly Rᵀ z; from a warm start the
        # explicit residual is good enough to judge the new column.
        r = z - (Rc * x[:, None]).sum(0)
        r_norm = _norm0(r)
        w = (Rc * r).sum(1)
    else:  # set by the first solve, before any dual check
        r_norm, w = z.new_zeros(batch), torch.zeros_like(x)
    done = torch.zeros_like(dual)
    barred = torch.zeros_like(passive)
    position = torch.arange(k, device=z.device)[:, None]
    out, live = x, None  # results of the samples dropped from the working set; their indices
    for _ in range(5 * k + 10):
        floor = eps_k * (z_norm + r_fro * _norm0(x))
        # Dual check: the open samples' best zero-set column with a positive gradient.
        best, t = (w.masked_fill(passive | barred, 0.0) * (dual & (r_norm > floor))).max(0)
        adding = best > 0
        done |= dual & ~adding
        running = int((~done).sum())
        if running == 0:
            break
        if 2 * running <= x.shape[1]:
            # Most samples have converged: go on with the others only. On small tensors the
            # op count sets the time, but each op still costs in proportion to its size.
            keep = (~done).nonzero()[:, 0]
            if live is None:
                out = x
            else:
                out[:, live] = x
            live = keep if live is None else live[keep]
            Rc, z, rank_tol, x, passive, barred, w = (
                v.index_select(-1, keep) for v in (Rc, z, rank_tol, x, passive, barred, w))
            dual, done, r_norm, z_norm, r_fro, floor, adding, t = (
                v[keep] for v in (dual, done, r_norm, z_norm, r_fro, floor, adding, t))
        new = (position == t) & adding
        passive |= new
        s, dependent, w_s, s_norm = _passive_lstsq(Rc, z, passive, rank_tol)
        negative = passive & (s <= 0)
        move = ~done
        if bool(adding.any()):
            # The new column must enter with a positive coefficient, keep P independent and
            # lower the residual by more than its rounding error.
            reject = adding & ((negative & new).any(0) | dependent | ~(s_norm < r_norm - floor))
            barred |= new & reject
            passive &= ~(new & reject)
            barred &= ~(adding & ~reject)  # an accepted column changes x: the bars lapse
            move &= ~reject
        stepping = move & negative.any(0)
        full = move & ~stepping
        if bool(stepping.any()):
            x_step = _partial_step(x, s, negative)
            x = torch.where(stepping, x_step, x)
            passive = torch.where(stepping, x_step > 0, passive)
        x = torch.where(full, s, x)
        w = torch.where(full, w_s, w)
        r_norm = torch.where(full, s_norm, r_norm)
        dual = ((dual & ~move) | full) & ~done
    if live is None:
        return x
    out[:, live] = x
    return out


def _qr_append(Q: torch.Tensor, Rc: torch.Tensor, z: torch.Tensor, y_rem: torch.Tensor,
               a: torch.Tensor, t: int, rank_tol: torch.Tensor) -> None:
    """Append column ``a [M, batch]`` as column ``t`` of the MGS factorization of ``[A_sub | y]``, in place.

    Batch-last: ``Q [L, M, batch]`` holds the orthonormal ``q_0 .. q_{t-1}`` (zero for
    dependent columns), ``Rc [L, L, batch]`` and ``z [L, batch]`` are the columns of ``R`` and
    ``Qᵀ y`` of :func:`_qr_reduce`, and ``y_rem [M, batch]`` is ``y`` minus its components along
    ``q_0 .. q_{t-1}``. MGS handles one column at a time, so appending ``a`` before ``y`` gives
    the same arithmetic as :func:`_qr_reduce` on the ``t + 1`` columns, for ``O(t)`` small ops
    instead of ``O(t)`` sweeps.
    """
    for q, r in zip(Q[:t].unbind(0), Rc[t, :t].unbind(0)):
        torch.sum(q * a, dim=0, out=r)
        a = torch.addcmul(a, r, q, value=-1.0)
    rtt = _norm0(a)
    use = rtt > rank_tol  # below it, a depends on the earlier columns: R_tt = 0 and q_t = 0
    torch.mul(a, torch.where(use, rtt.reciprocal(), 0.0), out=Q[t])
    Rc[t, t] = torch.where(use, rtt, 0.0)
    torch.sum(Q[t] * y_rem, dim=0, out=z[t])
    y_rem.addcmul_(z[t], Q[t], value=-1.0)


def _nomp_refit(Rc: torch.Tensor, z: torch.Tensor, rank_tol: torch.Tensor, x0: torch.Tensor,
                active: torch.Tensor) -> torch.Tensor:
    """One NOMP refit: the NNLS optimum on ``k`` columns from the optimum ``x0`` on the first ``k - 1``.

    Batch-last, as :func:`_nnls_reduced`; ``x0 [k, batch]`` has ``x0[k-1] = 0``. Warm-started at
    ``x0``, the active-set method's first iteration adds the new column ``k - 1`` to the
    passive set and solves. Where ``x0 > 0`` on every old column, which in the benchmarks is
    nearly every sample, that solve is on all ``k`` columns: a triangular solve with ``R``,
    done here for the whole batch in one call. Its outcome is then applied as the method
    would:

    * the new column is rejected (``x0`` is the optimum) if it enters with a coefficient
      ``<= 0`` or does not lower the residual beyond its rounding level;
    * if all coefficients are positive, they are the optimum: every column is passive, so
      there is no dual check left;
    * otherwise the partial step towards them is taken here, and :func:`_nnls_reduced` goes
      on from there, for these samples only.

    The samples with a zero among the old coefficients, or a dependent column, run
    :func:`_nnls_reduced` from ``x0``.
    """
    k, batch = z.shape
    eps_k = k * float(torch.finfo(z.dtype).eps)
    s = torch.linalg.solve_triangular(Rc.permute(2, 1, 0), z.T[:, :, None], upper=True)[:, :, 0].T
    r_norm = _norm0(z - (Rc * x0[:, None]).sum(0))
    floor = eps_k * (_norm0(z) + _norm0(Rc.reshape(k * k, batch)) * _norm0(x0))
    # Where s is the method's first solve. Every column must also be independent of the earlier
    # ones (R_jj above the rank tolerance): then R is nonsingular wherever s is read.
    independent = (torch.diagonal(Rc, dim1=0, dim2=1) > rank_tol.T).all(-1)
    dense = active & (x0[:-1] > 0).all(0) & independent
    accept = dense & (s[-1] > 0) & (r_norm > floor)
    optimal = accept & (s > 0).all(0)
    stepping = accept & ~optimal
    x = torch.where(optimal, s, x0)
    if bool(stepping.any()):
        x = torch.where(stepping, _partial_step(x0, s, s <= 0), x)
    return _nnls_reduced(Rc, z, rank_tol, x, (active & ~dense) | stepping, inner=stepping)


def _nnls_small(A_sub: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Exact batched NNLS: MGS reduction, then the active-set method; see :func:`nnls_small`.

    Where ``R`` is nonsingular and the unconstrained least squares solution ``R⁻¹ z`` is
    positive, that solution is the NNLS optimum (every column passive, zero gradient): one
    triangular solve settles those samples, and only the others run the active-set method.
    """
    R, z = _qr_reduce(A_sub, y)
    rank_tol = _rank_tol(A_sub)
    s = torch.linalg.solve_triangular(R, z[:, :, None], upper=True)[:, :, 0]
    optimal = (torch.diagonal(R, dim1=1, dim2=2) > rank_tol).all(-1) & (s > 0).all(-1)
    x = torch.where(optimal[:, None], s, 0.0)
    x = _nnls_reduced(R.permute(2, 1, 0).contiguous(), z.T.contiguous(), rank_tol.T.contiguous(), x.T, ~optimal)
    return x.T.contiguous()


def nnls_small(A_sub, y) -> torch.Tensor:
    """Exact batched nonnegative least squares for small supports.

    Solves ``min_c ||y_b - A_b c||²  s.t. c >= 0`` for each sample ``b``, by a batched
    Lawson–Hanson active-set method on the MGS-reduced ``k x k`` problem (module docstring).
    It loops over active-set iterations, never over samples. The result is the NNLS optimum
    up to rounding. Where the optimum is not unique (dependent columns), it is one optimal
    point.

    Args:
        A_sub: ``[batch, M, k]`` real, ``k <= 64``, the support's columns per sample.
        y: ``[batch, M]`` real.

    Returns:
        ``coef``: ``[batch, k]``, nonnegative, with ``y``'s dtype and device.

    Raises:
        DataError: on wrong shapes, non-finite values or ``k > 64``.
    """
    A_sub = as_tensor(A_sub, "A_sub")
    y = as_tensor(y, "y")
    check_ndim(A_sub, 3, "A_sub", "[batch, M, k]")
    check_ndim(y, 2, "y", "[batch, M]")
    check_real(y, "y")
    if A_sub.is_complex():
        raise DataError(f"A_sub: expected a real array, got dtype {A_sub.dtype}")
    if A_sub.shape[:2] != y.shape:
        raise DataError(f"A_sub: expected shape [batch, M, k] = [{y.shape[0]}, {y.shape[1]}, k] to match "
                        f"y {list(y.shape)}, got {list(A_sub.shape)}")
    if A_sub.shape[2] > MAX_NNLS_ATOMS:
        raise DataError(f"A_sub: expected at most k = {MAX_NNLS_ATOMS} columns, got {A_sub.shape[2]}")
    A_sub = A_sub.to(device=y.device, dtype=y.dtype)
    check_finite(A_sub, "A_sub")
    check_finite(y, "y")
    return _nnls_small(A_sub, y)


# ---------------------------------------------------------------------------------------------
# greedy pursuits


def _scatter(support: torch.Tensor, coef: torch.Tensor, n: int, out: torch.Tensor | None = None) -> torch.Tensor:
    """``[batch, n]`` with ``coef`` at ``support``; ``out``, if given, is zeroed and reused."""
    x = coef.new_zeros(coef.shape[0], n) if out is None else out.zero_()
    # scatter_add, not scatter: a stopped sample's unused slots may repeat an index (with 0).
    return x.scatter_add_(1, support, coef)


def _omp(A: torch.Tensor, Y: torch.Tensor, sparsity: int, rtol: float) -> torch.Tensor:
    batch, m = Y.shape
    n = A.shape[1]
    norms = torch.linalg.vector_norm(A, dim=0)
    # Zero atoms get a zero column here, hence a zero score: they are never picked (a best
    # score of 0 stops the sample).
    A_unit = A * torch.where(norms > 0, 1.0 / norms.clamp_min(torch.finfo(A.dtype).tiny), 0.0)
    # The QR factors of the support grow by one column per iteration (classical Gram–Schmidt
    # with one re-orthogonalization, "twice is enough"). That gives the least squares residual
    # without a refit, and the coefficients need a single triangular solve at the end.
    Q = Y.new_zeros(batch, m, sparsity)
    # Slots never filled (every sample stopped early) keep R_jj = 1 and get coefficient 0.
    R = torch.eye(sparsity, dtype=Y.dtype, device=Y.device).repeat(batch, 1, 1)
    qty = Y.new_zeros(batch, sparsity)
    support = torch.zeros(batch, sparsity, dtype=torch.long, device=Y.device)
    r = Y.clone()
    stop_norm = rtol * torch.linalg.vector_norm(Y, dim=-1)
    active = torch.ones(batch, dtype=torch.bool, device=Y.device)
    rank_tol = m * float(torch.finfo(Y.dtype).eps)
    rows = torch.arange(batch, device=Y.device)
    # One [batch, N] buffer for all iterations: at N ~ 6500 a fresh one per iteration costs
    # more in page faults than the matmul that fills it.
    scores = Y.new_empty(batch, n)
    for t in range(sparsity):
        active &= torch.linalg.vector_norm(r, dim=-1) > stop_norm
        torch.mm(r, A_unit, out=scores).abs_()
        idx = _select_atoms(scores, support, t, rows, active)
        if not bool(active.any()):
            break
        a = A.T[idx]  # [batch, M]
        v = a
        coeffs = torch.zeros_like(qty)
        for _ in range(2):
            c = torch.einsum("bmk,bm->bk", Q, v)
            v = v - torch.einsum("bmk,bk->bm", Q, c)
            coeffs = coeffs + c
        rjj = torch.linalg.vector_norm(v, dim=-1)
        # Stopped samples and numerically dependent atoms get an empty slot (q = 0, R_jj = 1),
        # whose coefficient comes out as exactly 0.
        use = active & (rjj > rank_tol * norms[idx])
        q = torch.where(use[:, None], v / rjj.clamp_min(torch.finfo(Y.dtype).tiny)[:, None], 0.0)
        R[:, :, t] = torch.where(use[:, None], coeffs, 0.0)
        R[:, t, t] = torch.where(use, rjj, 1.0)
        Q[:, :, t] = q
        proj = (q * r).sum(-1)
        qty[:, t] = proj
        r = r - proj[:, None] * q
        support[:, t] = idx
    coef = _back_substitute(R, qty)
    return _scatter(support, coef, n)


def _nomp(A: torch.Tensor, Y: torch.Tensor, sparsity: int, rtol: float,
          weights: torch.Tensor | None) -> torch.Tensor:
    batch, m = Y.shape
    n = A.shape[1]
    tiny = torch.finfo(Y.dtype).tiny
    # Zero atoms get a zero score and are never picked (a best score of 0 stops the sample).
    if weights is None:
        norms = torch.linalg.vector_norm(A, dim=0)
        A_unit = A * torch.where(norms > 0, 1.0 / norms.clamp_min(tiny), 0.0)
        Yw = Y
    else:
        w2 = weights.square()
        # ||w ⊙ a_n|| for every sample and atom without forming the weighted dictionary.
        inv_norms = (w2 @ A.square()).clamp_min_(0).sqrt_()  # [batch, N], in place: it is large
        dead = inv_norms <= tiny
        inv_norms.reciprocal_().masked_fill_(dead, 0.0)
        del dead
        Yw = weights * Y
    support = torch.zeros(batch, sparsity, dtype=torch.long, device=Y.device)
    # Batch-last, like the NNLS kernels: the coefficients [L, batch], the support's columns of
    # A [L, batch, M], and the MGS factorization of the (weighted) [A_sub | y], grown by one
    # column per iteration (_qr_append), on whose reduced problem the refits work.
    coef = Y.new_zeros(sparsity, batch)
    cols = Y.new_zeros(sparsity, batch, m)
    Q = Y.new_zeros(sparsity, m, batch)
    Rc = Y.new_zeros(sparsity, sparsity, batch)
    z = Y.new_zeros(sparsity, batch)
    y_rem = Yw.T.contiguous()
    rank_tol = Y.new_zeros(sparsity, batch)
    eps = float(torch.finfo(Y.dtype).eps)
    r = Y.clone()  # unweighted residual y - A x
    stop_norm = rtol * torch.linalg.vector_norm(Yw, dim=-1)
    active = torch.ones(batch, dtype=torch.bool, device=Y.device)
    rows = torch.arange(batch, device=Y.device)
    scores = Y.new_empty(batch, n)  # reused: see _omp
    for t in range(sparsity):
        if weights is None:
            active &= torch.linalg.vector_norm(r, dim=-1) > stop_norm
            torch.mm(r, A_unit, out=scores)
        else:
            active &= torch.linalg.vector_norm(weights * r, dim=-1) > stop_norm
            # (w ⊙ a_n)ᵀ (w ⊙ r) / ||w ⊙ a_n|| = a_nᵀ (w² ⊙ r) / ||w ⊙ a_n||
            torch.mm(w2 * r, A, out=scores).mul_(inv_norms)
        idx = _select_atoms(scores, support, t, rows, active)
        if not bool(active.any()):
            break
        # Stopped samples are frozen: their slot t keeps its old atom (index 0) with a zero
        # coefficient, and their factorization is never read again.
        support[:, t] = torch.where(active, idx, support[:, t])
        cols[t] = A.T[support[:, t]]  # [batch, M]
        a = cols[t].T if weights is None else (weights * cols[t]).T  # [M, batch]
        rank_tol[t] = (m * eps) * _norm0(a)  # as _rank_tol
        _qr_append(Q, Rc, z, y_rem, a, t, rank_tol[t])
        k = t + 1
        coef[:k] = _nomp_refit(Rc[:k, :k], z[:k], rank_tol[:k], coef[:k], active)
        fit = (cols[:k] * coef[:k, :, None]).sum(0)
        r = torch.where(active[:, None], Y - fit, r)
    return _scatter(support, coef.T, n, out=scores)  # scores is spent: reuse its [batch, N]


def _select_atoms(scores: torch.Tensor, support: torch.Tensor, t: int, rows: torch.Tensor,
                  active: torch.Tensor) -> torch.Tensor:
    """Best new atom per sample (``[batch]``); samples whose best score is ≤ 0 stop (``active`` in place)."""
    if t:
        scores[rows[:, None], support[:, :t]] = -torch.inf      # never pick an atom twice
    best, idx = scores.max(dim=-1)
    active &= best > 0
    return idx


def omp(A, Y, sparsity: int, *, rtol: float | None = None) -> torch.Tensor:
    """Orthogonal matching pursuit, batched over samples.

    At each of ``sparsity`` iterations it adds the atom with the largest
    ``|a_nᵀ r| / ||a_n||`` and refits by unconstrained least squares on the support, so
    entries may be negative. A sample stops early once its residual norm is at most
    ``rtol · ||y||``.

    Args:
        A: ``[M, N]`` real beam-pattern matrix (moved to ``Y``'s device and dtype).
        Y: ``[batch, M]`` real RSRP (linear mW).
        sparsity: ``L``, an integer in ``[1, min(M, N)]``.
        rtol: relative residual at which a sample stops; default ``sqrt(eps)`` of the dtype.

    Returns:
        ``X``: ``[batch, N]`` with at most ``L`` nonzeros per row, on ``Y``'s device and dtype.

    Raises:
        DataError: on wrong shapes (``Y.shape[1] != M``), non-finite values or a bad ``sparsity``.
    """
    A, Y = _check_dictionary(A, Y)
    _check_sparsity(sparsity, A)
    return _omp(A, Y, int(sparsity), _default_rtol(Y.dtype, rtol))


def nomp(A, Y, sparsity: int, *, rtol: float | None = None) -> torch.Tensor:
    """Nonnegative orthogonal matching pursuit, batched over samples.

    At each iteration it adds the atom with the largest *positive* normalized correlation
    ``a_nᵀ r / ||a_n||`` and refits by exact NNLS on the support (:func:`nnls_small`). A
    sample stops once its best correlation is ``<= 0`` or its residual norm is at most
    ``rtol · ||y||``.

    Args:
        A: ``[M, N]`` real (nonnegative in the paper) beam-pattern matrix.
        Y: ``[batch, M]`` real RSRP (linear mW).
        sparsity: ``L``, an integer in ``[1, min(M, N, 64)]``.
        rtol: relative residual at which a sample stops; default ``sqrt(eps)`` of the dtype.

    Returns:
        ``X``: ``[batch, N]``, ``X >= 0``, at most ``L`` nonzeros per row, on ``Y``'s device
        and dtype.

    Raises:
        DataError: on wrong shapes, non-finite values or a bad ``sparsity``.
    """
    A, Y = _check_dictionary(A, Y)
    _check_sparsity(sparsity, A, MAX_NNLS_ATOMS)
    return _nomp(A, Y, int(sparsity), _default_rtol(Y.dtype, rtol), None)


def wnomp_weights(Y: torch.Tensor) -> torch.Tensor:
    """WNOMP's default per-beam weights ``w_m = 1 / max(y_m, 1e-9 · max_m y_m)``, ``[batch, M]``.

    A sample with no positive beam gets unit weights.
    """
    peak = Y.amax(dim=-1, keepdim=True)
    floor = WEIGHT_FLOOR * peak
    w = 1.0 / torch.maximum(Y, floor).clamp_min(torch.finfo(Y.dtype).tiny)
    return torch.where(peak > 0, w, torch.ones_like(Y))


def wnomp(A, Y, sparsity: int, weights=None, *, rtol: float | None = None) -> torch.Tensor:
    """Weighted nonnegative OMP: NOMP on ``(diag(w_b) A, diag(w_b) y_b)`` for each sample ``b``.

    The default weights ``w_m = 1 / y_m`` make the fit relative, roughly the error in dB per
    beam (see the module docstring). The weighted dictionary is never formed.

    Args:
        A: ``[M, N]`` real (nonnegative in the paper) beam-pattern matrix.
        Y: ``[batch, M]`` real RSRP (linear mW).
        sparsity: ``L``, an integer in ``[1, min(M, N, 64)]``.
        weights: optional ``[batch, M]`` nonnegative per-beam weights replacing ``1 / y``.
        rtol: relative weighted residual at which a sample stops; default ``sqrt(eps)``.

    Returns:
        ``X``: ``[batch, N]``, ``X >= 0``, at most ``L`` nonzeros per row, on ``Y``'s device
        and dtype.

    Raises:
        DataError: on wrong shapes, non-finite values, negative weights or a bad ``sparsity``.
    """
    A, Y = _check_dictionary(A, Y)
    _check_sparsity(sparsity, A, MAX_NNLS_ATOMS)
    if weights is None:
        w = wnomp_weights(Y)
    else:
        w = as_tensor(weights, "weights")
        check_ndim(w, 2, "weights", "[batch, M]")
        if tuple(w.shape) != tuple(Y.shape):
            raise DataError(f"weights: expected shape [batch, M] = {list(Y.shape)} to match Y, "
                            f"got {list(w.shape)}")
        if w.is_complex():
            raise DataError(f"weights: expected real weights, got dtype {w.dtype}")
        w = w.to(device=Y.device, dtype=Y.dtype)
        check_finite(w, "weights")
        if bool((w < 0).any()):
            raise DataError(f"weights: expected nonnegative weights, got minimum {float(w.min())}")
    return _nomp(A, Y, int(sparsity), _default_rtol(Y.dtype, rtol), w)


def nomp_reference_loop(A, y, sparsity: int, weights=None, rtol: float | None = None):
    """NOMP / WNOMP for ONE sample, the straightforward way: NumPy correlations, SciPy NNLS refits.

    The reference the tests and ``benchmarks/bench_sparse_recovery.py`` compare :func:`nomp`
    and :func:`wnomp` with (same selection and stopping rules); not for production use.

    Args:
        A: ``[M, N]`` array; y: ``[M]`` array.
        weights: ``[M]`` per-beam weights (WNOMP's ``1/y_m``), ``None`` for NOMP.
        rtol: stop when the residual is at most ``rtol`` of the target (default √eps of float64).

    Returns:
        ``(x [N], support)``: the estimate and the selected atoms in selection order.
    """
    import numpy as np
    import scipy.optimize

    a, y = np.asarray(A, dtype=np.float64), np.asarray(y, dtype=np.float64)
    w = np.ones_like(y) if weights is None else np.asarray(weights, dtype=np.float64)
    rtol = float(np.finfo(np.float64).eps) ** 0.5 if rtol is None else rtol
    aw, yw = w[:, None] * a, w * y
    norms = np.linalg.norm(aw, axis=0)
    r, support, x = yw.copy(), [], np.zeros(a.shape[1])
    for _ in range(sparsity):
        if np.linalg.norm(r) <= rtol * np.linalg.norm(yw):
            break
        c = aw.T @ r / norms
        c[support] = -np.inf
        n = int(np.argmax(c))
        if c[n] <= 0:
            break
        support.append(n)
        coef = scipy.optimize.nnls(aw[:, support], yw)[0]
        x = np.zeros(a.shape[1])
        x[support] = coef
        r = yw - aw @ x
    return x, support
