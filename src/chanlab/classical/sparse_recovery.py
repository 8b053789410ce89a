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

**NNLS on tiny supports** (:func:`nnls_small`). The NNLS optimum is the unconstrained least
squares solution on its own passive set. So enumerating every subset of the ``k <= 12``
columns, solving least squares on each and keeping the feasible (all ``>= 0``) solution with
the smallest residual is exact and batches over samples and subsets alike. First, one
modified Gram–Schmidt (MGS) QR of ``[A_sub | y]`` per sample reduces every subset problem
from ``M`` rows to ``k`` rows. Then each subset is solved by MGS on its reduced columns. MGS
least squares is backward stable (Björck 1967). The normal equations would square the
condition number, and neighbouring angle columns of ``A`` are highly coherent. Inside NOMP,
the previous refit is the NNLS optimum without the new atom. So only the ``2^(k-1)`` subsets
that contain the new atom are enumerated.

**OMP's refit** grows a QR factorization of the support by one column per iteration
(classical Gram–Schmidt with one re-orthogonalization). The coefficients come from a single
triangular solve at the end.

**Cost.** Each iteration is dominated by one ``[batch, M] x [M, N]`` matmul for the
correlations. WNOMP adds one more, for the weighted atom norms.

All functions work on any device and floating dtype, loop only over iterations, columns and
subsets, never over samples, and return tensors on ``Y``'s device with ``Y``'s dtype.
"""

from __future__ import annotations

import torch

from chanlab.core.errors import DataError
from chanlab.core.validation import as_tensor, check_finite, check_int_range, check_ndim, check_real

#: Largest support :func:`nnls_small` enumerates (``2^12 - 1`` subsets); NOMP/WNOMP inherit it.
MAX_NNLS_ATOMS = 12

#: Floor of the WNOMP weights' RSRP, relative to the sample's strongest beam (-90 dB).
WEIGHT_FLOOR = 1e-9

# Elements per temporary [batch, subsets, k+1, k] block of nnls_small. It bounds memory
# when batch * 2^k is large; the subsets are processed in chunks of this size.
_CHUNK_ELEMENTS = 1 << 22


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
        raise DataError(f"sparsity: expected at most {cap} (exact NNLS refits enumerate all 2^L - 1 "
                        f"subsets of the support), got {sparsity}")


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


def _subset_masks(k: int, device: torch.device) -> torch.Tensor:
    """``[2^k - 1, k]`` bool: row ``s`` is the binary expansion of ``s + 1`` (every nonempty subset)."""
    codes = torch.arange(1, 1 << k, device=device)
    return ((codes[:, None] >> torch.arange(k, device=device)) & 1).bool()


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
    batch, m, k = A_sub.shape
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


def _subset_lstsq(A_sub: torch.Tensor, y: torch.Tensor, masks: torch.Tensor,
                  rank_tol: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Least squares on column subsets by modified Gram–Schmidt on ``[A_P | y]``.

    Args:
        A_sub: ``[batch, m, k]``.
        y: ``[batch, m]``.
        masks: ``[S, k]`` bool, the subsets.
        rank_tol: ``[batch, k]``, the remainder below which a column counts as dependent.

    Returns:
        ``coef [batch, S, k]`` (zero outside the subset) and ``ok [batch, S]``. ``ok`` is False
        where a member column is (numerically) dependent on the earlier ones.
    """
    batch, m, k = A_sub.shape
    s = masks.shape[0]
    dtype = A_sub.dtype
    tiny = torch.finfo(dtype).tiny
    # [A_P | y] for every subset at once, non-members zeroed. The remaining columns are
    # updated together so that the op count is O(k), not O(k²): on small tensors the per-op
    # overhead, not the arithmetic, sets the time.
    cols = A_sub.transpose(1, 2)[:, None] * masks.to(dtype)[None, :, :, None]  # [batch, S, k, m]
    V = torch.cat([cols, y[:, None, None, :].expand(batch, s, 1, m)], dim=2)  # [batch, S, k+1, m]
    R = A_sub.new_zeros(batch, s, k, k + 1)  # last column: Qᵀ y
    ok = torch.ones(batch, s, dtype=torch.bool, device=A_sub.device)
    for j in range(k):
        v = V[:, :, j]
        rjj = torch.linalg.vector_norm(v, dim=-1)  # [batch, S]
        is_member = masks[None, :, j]
        # A dependent member leaves a tiny remainder after orthogonalization. Its subset is
        # dropped: a smaller subset reaches the same fit, and the quotient would be noise.
        independent = rjj > rank_tol[:, None, j]
        ok &= ~is_member | independent
        use = is_member & independent
        q = torch.where(use[..., None], v / rjj.clamp_min(tiny)[..., None], 0.0)
        rest = (q[:, :, None, :] * V[:, :, j + 1:]).sum(-1)  # [batch, S, k-j]
        V[:, :, j + 1:] -= rest[..., None] * q[:, :, None, :]
        # A non-member (or dropped) column gets R_jj = 1, an empty row and (q·y) = 0, so x_j = 0.
        R[..., j, j] = torch.where(use, rjj, 1.0)
        R[..., j, j + 1:] = rest
    return _back_substitute(R[..., :k], R[..., k]), ok


def _nnls_small(A_sub: torch.Tensor, y: torch.Tensor, incumbent: torch.Tensor | None = None) -> torch.Tensor:
    """Exact NNLS by subset enumeration; see :func:`nnls_small`.

    ``incumbent [batch, k]``, if given, must be the NNLS optimum on the first ``k - 1`` columns
    (padded with a 0). Then only the subsets containing the last column are enumerated. If
    the optimum's passive set leaves out the last column, the optimum is the incumbent. This
    halves the work of each NOMP refit.
    """
    batch, m, k = A_sub.shape
    if k == 0:
        return y.new_zeros(batch, 0)
    tol = _rank_tol(A_sub)
    R, z = _qr_reduce(A_sub, y)
    masks = _subset_masks(k, y.device)
    # Subset residuals are ranked by ||z - R_P c||², which is the objective minus a constant
    # per sample.
    if incumbent is None:
        best_coef = y.new_zeros(batch, k)
        best_res = z.square().sum(-1)  # the all-zero solution is always feasible
    else:
        masks = masks[masks[:, -1]]
        best_coef = incumbent
        best_res = (z - (R @ incumbent[:, :, None])[..., 0]).square().sum(-1)
    chunk = max(1, _CHUNK_ELEMENTS // max(1, batch * k * (k + 1)))
    for start in range(0, masks.shape[0], chunk):
        coef, ok = _subset_lstsq(R, z, masks[start:start + chunk], tol)  # [batch, S, k]
        # The explicit residual of the computed coefficients, not the Gram–Schmidt remainder:
        # whatever is picked is then a feasible point with (up to rounding) the objective it
        # was ranked by.
        res = (z[:, None, :] - torch.einsum("bik,bsk->bsi", R, coef)).square().sum(-1)
        feasible = ok & (coef >= 0).all(-1) & torch.isfinite(res)
        res = torch.where(feasible, res, torch.inf)
        chunk_res, idx = res.min(dim=1)
        better = chunk_res < best_res
        chunk_coef = coef.gather(1, idx[:, None, None].expand(batch, 1, k))[:, 0]
        best_coef = torch.where(better[:, None], chunk_coef, best_coef)
        best_res = torch.where(better, chunk_res, best_res)
    return best_coef


def nnls_small(A_sub, y) -> torch.Tensor:
    """Exact batched nonnegative least squares for tiny supports.

    Solves ``min_c ||y_b - A_b c||²  s.t. c >= 0`` for each sample ``b``. It enumerates all
    ``2^k - 1`` nonempty column subsets, solves unconstrained least squares on each and keeps
    the feasible solution with the smallest residual, or zero if none beats it. This is exact
    because the NNLS optimum is the least squares solution on its own passive set.

    Args:
        A_sub: ``[batch, M, k]`` real, ``k <= 12``, the support's columns per sample.
        y: ``[batch, M]`` real.

    Returns:
        ``coef``: ``[batch, k]``, nonnegative, with ``y``'s dtype and device.

    Raises:
        DataError: on wrong shapes, non-finite values or ``k > 12``.
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
        raise DataError(f"A_sub: expected at most k = {MAX_NNLS_ATOMS} columns (2^k - 1 subsets are "
                        f"enumerated), got {A_sub.shape[2]}")
    A_sub = A_sub.to(device=y.device, dtype=y.dtype)
    check_finite(A_sub, "A_sub")
    check_finite(y, "y")
    return _nnls_small(A_sub, y)


# ---------------------------------------------------------------------------------------------
# greedy pursuits


def _gather_columns(A: torch.Tensor, support: torch.Tensor) -> torch.Tensor:
    """``A [M, N]``, ``support [batch, k]`` -> ``[batch, M, k]``."""
    return A.T[support].transpose(1, 2)


def _scatter(support: torch.Tensor, coef: torch.Tensor, n: int) -> torch.Tensor:
    x = coef.new_zeros(coef.shape[0], n)
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
    coef = Y.new_zeros(batch, sparsity)
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
        support[:, t] = torch.where(active, idx, support[:, t])
        A_sub = _gather_columns(A, support[:, :t + 1])  # [batch, M, t+1]
        # The previous refit is the NNLS optimum without the new atom (coef[:, t] is still 0).
        incumbent = coef[:, :t + 1]
        if weights is None:
            new = _nnls_small(A_sub, Y, incumbent)
        else:
            new = _nnls_small(weights[:, :, None] * A_sub, Yw, incumbent)
        # Stopped samples keep their coefficients. Their slot t still points at their old atom
        # (index 0 or whatever it held) and carries a zero coefficient.
        new = torch.cat([new, coef[:, t + 1:]], dim=1)
        coef = torch.where(active[:, None], new, coef)
        fit = torch.einsum("bmk,bk->bm", A_sub, coef[:, :t + 1])
        r = torch.where(active[:, None], Y - fit, r)
    return _scatter(support, coef, n)


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
        sparsity: ``L``, an integer in ``[1, min(M, N, 12)]``.
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
        sparsity: ``L``, an integer in ``[1, min(M, N, 12)]``.
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
