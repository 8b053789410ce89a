"""Batched OMP / NOMP / WNOMP and exact small NNLS against per-sample NumPy/SciPy references."""

import functools

import numpy as np
import pytest
import scipy.optimize
import torch

from chanlab.classical.sparse_recovery import nnls_small, nomp, nomp_reference_loop, omp, wnomp
from chanlab.core.errors import DataError

F64 = torch.float64
RTOL64 = float(np.finfo(np.float64).eps) ** 0.5


pytestmark = pytest.mark.usefixtures("one_thread")


# ---------------------------------------------------------------------------------------------
# instances


def _abs_gaussian(m, n, seed):
    return np.abs(np.random.default_rng(seed).standard_normal((m, n)))


def _beam_like(m, n, seed):
    """Nonnegative, smooth in n (coherent neighbours), very different column norms."""
    rng = np.random.default_rng(seed)
    theta = np.linspace(-1.0, 1.0, n)
    centre = rng.uniform(-1.0, 1.0, m)
    width = rng.uniform(0.1, 0.4, m)
    gain = 10 ** rng.uniform(-2, 0, m)
    a = gain[:, None] * np.exp(-((theta[None, :] - centre[:, None]) / width[:, None]) ** 2)
    return a * (10 ** (2 * theta[None, :])) + 1e-4  # column norms over 4 decades


def _sparse_caps(batch, n, k, seed):
    rng = np.random.default_rng(seed)
    x = np.zeros((batch, n))
    for b in range(batch):
        x[b, rng.choice(n, k, replace=False)] = rng.uniform(0.5, 2.0, k)
    return x


def _observations(a, batch, k, seed, noise=0.05):
    """``y = A x`` times a positive perturbation, so the fit is not exact and constraints bind."""
    rng = np.random.default_rng(seed + 1)
    x = _sparse_caps(batch, a.shape[1], k, seed)
    y = (x @ a.T) * np.exp(noise * rng.standard_normal((batch, a.shape[0])))
    return y


# ---------------------------------------------------------------------------------------------
# per-sample references


def _ref_omp(a, y, L):
    norms = np.linalg.norm(a, axis=0)
    r, support, x = y.copy(), [], np.zeros(a.shape[1])
    for _ in range(L):
        if np.linalg.norm(r) <= RTOL64 * np.linalg.norm(y):
            break
        c = np.abs(a.T @ r) / norms
        c[support] = -np.inf
        n = int(np.argmax(c))
        if c[n] <= 0:
            break
        support.append(n)
        coef = np.linalg.lstsq(a[:, support], y, rcond=None)[0]
        x = np.zeros(a.shape[1])
        x[support] = coef
        r = y - a @ x
    return x, support


def _ref_nomp(a, y, L, w=None):
    return nomp_reference_loop(a, y, L, w, rtol=RTOL64)


def _ref_weights(y):
    return 1.0 / np.maximum(y, 1e-9 * y.max())


def _check_against(x_batched, refs, atol=1e-5):
    x_batched = x_batched.cpu().double().numpy()
    for b, (x_ref, support) in enumerate(refs):
        got = set(np.flatnonzero(x_batched[b]).tolist())
        want = set(np.flatnonzero(x_ref).tolist())
        assert got == want, f"sample {b}: support {sorted(got)} != reference {sorted(want)} ({support})"
        np.testing.assert_allclose(x_batched[b], x_ref, rtol=1e-6, atol=atol * max(1.0, np.abs(x_ref).max()))


# ---------------------------------------------------------------------------------------------
# nnls_small


@pytest.mark.parametrize("k", [1, 2, 5, 8])
def test_nnls_small_matches_scipy(k):
    rng = np.random.default_rng(k)
    batch, m = 64, 12
    # Signed columns and targets: many constraints are active at the optimum.
    a = rng.standard_normal((batch, m, k))
    y = rng.standard_normal((batch, m))
    got = nnls_small(torch.from_numpy(a), torch.from_numpy(y)).numpy()
    assert got.shape == (batch, k) and (got >= 0).all()
    want = np.stack([scipy.optimize.nnls(a[b], y[b])[0] for b in range(batch)])
    np.testing.assert_allclose(got, want, atol=1e-10)
    if k > 1:
        assert ((want == 0) & (want.sum(-1, keepdims=True) > 0)).any(), "no active constraint was tested"
    res_got = np.linalg.norm(y - np.einsum("bmk,bk->bm", a, got), axis=-1)
    res_want = np.linalg.norm(y - np.einsum("bmk,bk->bm", a, want), axis=-1)
    assert (res_got <= res_want + 1e-12).all()


def test_nnls_small_zero_and_dependent_columns():
    a = torch.tensor([[[1.0, 1.0, 0.0], [0.0, 0.0, 0.0], [1.0, 1.0, 0.0]]], dtype=F64)
    y = torch.tensor([[2.0, 1.0, 2.0]], dtype=F64)
    coef = nnls_small(a, y)
    assert torch.isfinite(coef).all()
    # Duplicate columns: any split of the weight 2 is optimal.
    assert float(coef[0, :2].sum()) == pytest.approx(2.0) and float(coef[0, 2]) == 0.0
    assert torch.equal(nnls_small(a, -y), torch.zeros(1, 3, dtype=F64))


# Equivalence with SciPy on many problems. The tolerances scale with the conditioning:
# a coefficient error is judged against eps · (κ_P ||c|| + κ_P² ||r|| / σ_max(A_P)), the
# first-order perturbation bound of least squares on the optimal passive set P, and a
# residual against eps · (||y|| + ||A||_F ||c||), its rounding level.
EPS64 = float(np.finfo(np.float64).eps)
COEF_FACTOR = 50.0
RESIDUAL_FACTOR = 10.0


@functools.lru_cache(maxsize=1)
def _lscm_beam_pattern():
    """``[32, 91 x 72]`` beam pattern of the default LSCM panel, elevation-major."""
    from chanlab.channels.lscm import LscmPanel

    panel = LscmPanel(n_elevation=91, n_azimuth=72)
    return panel.beam_pattern().numpy(), panel.n_elevation, panel.n_azimuth


def _neighbour_columns(k, rng, rows=None):
    """``k`` columns of neighbouring grid angles: a small elevation x azimuth window.

    ``rows`` picks the elevation rows; by default the window avoids the poles (rows 0 and
    n_el - 1), whose columns are all identical.
    """
    a, n_el, n_az = _lscm_beam_pattern()
    side = int(np.ceil(np.sqrt(2 * k))) + 1
    e0 = rng.integers(1, n_el - side - 1) if rows is None else rows
    a0 = rng.integers(0, n_az - side)
    cells = [(e0 + i) * n_az + a0 + j for i in range(side) for j in range(side)]
    return a[:, rng.choice(cells, k, replace=False)]


def _nnls_problem(family, k, rng):
    """One ``(A [32, k], y [32])``; see the families in test_nnls_small_equivalent_to_scipy."""
    a_full = _lscm_beam_pattern()[0]
    m = a_full.shape[0]
    if family == "gaussian":
        return rng.standard_normal((m, k)), rng.standard_normal(m)
    if family == "beam-random":
        a = a_full[:, rng.choice(a_full.shape[1], k, replace=False)]
        return a, (a @ rng.uniform(0.0, 1.0, k)) * np.exp(0.3 * rng.standard_normal(m))
    a = _neighbour_columns(k, rng)
    x = rng.uniform(0.5, 1.5, k)
    if family == "neighbours":  # a sparse nonnegative mix, jittered: constraints bind
        return a, (a @ (x * (rng.uniform(size=k) < 0.5))) * np.exp(0.1 * rng.standard_normal(m))
    if family == "neighbours-signed":
        return a, a @ rng.standard_normal(k)
    if family == "span":  # y = A x, x > 0: every column passive, κ up to ~1e8
        return a, a @ x
    if family == "span-sparse":  # y = A x with zeros in x: zero residual, degenerate multipliers
        return a, a @ (x * (rng.uniform(size=k) < 0.5))
    if family == "zero-y":
        return a, np.zeros(m)
    if family == "negative-y":  # the optimum is 0
        return a, -(a @ x)
    if family == "duplicates":  # equal or proportional columns: the optimum is not unique
        a = a.copy()
        if k > 1:
            i, j = rng.choice(k, 2, replace=False)
            a[:, j] = a[:, i] * rng.choice([1.0, 0.5])
        return a, (a @ x) * np.exp(0.1 * rng.standard_normal(m))
    if family == "pole":  # the grid's pole row: every azimuth is the same direction
        a = _neighbour_columns(k, rng, rows=0)
        return a, (a @ x) * np.exp(0.1 * rng.standard_normal(m))
    raise ValueError(family)


# (family, problems per k, coefficients unique?)
_NNLS_FAMILIES = [
    ("gaussian", 12, True), ("beam-random", 12, True), ("neighbours", 16, True),
    ("neighbours-signed", 16, True), ("span", 32, True), ("span-sparse", 8, True),
    ("zero-y", 2, True), ("negative-y", 4, True), ("duplicates", 8, False), ("pole", 4, False),
]


def _nnls_errors(a, y, got, want):
    """Per problem: coefficient error / its bound, residual excess / its bound, κ of the optimal P."""
    coef_ratio, res_ratio, kappa = [], [], []
    for b in range(len(y)):
        r_got = np.linalg.norm(y[b] - a[b] @ got[b])
        r_want = np.linalg.norm(y[b] - a[b] @ want[b])
        scale = np.linalg.norm(y[b]) + np.linalg.norm(a[b]) * np.linalg.norm(want[b])
        res_ratio.append((r_got - r_want) / max(EPS64 * scale, np.finfo(float).tiny))
        passive = want[b] > 0
        sv = np.linalg.svd(a[b][:, passive], compute_uv=False) if passive.any() else np.ones(1)
        kappa.append(sv[0] / sv[-1])
        bound = EPS64 * (kappa[-1] * np.linalg.norm(want[b]) + kappa[-1] ** 2 * r_want / sv[0])
        coef_ratio.append(np.abs(got[b] - want[b]).max() / max(bound, np.finfo(float).tiny))
    return np.array(coef_ratio), np.array(res_ratio), np.array(kappa)


def test_nnls_small_equivalent_to_scipy():
    """1368 problems, k = 1..12: the same optimum as ``scipy.optimize.nnls``.

    Families: signed Gaussian; random and neighbouring columns of the LSCM beam pattern
    (median coherence of neighbours > 0.99) with jittered sparse, signed and exactly
    representable targets; and the degenerate cases: zero y, y in the negative cone, y in
    the span with zero coefficients, and duplicate columns (proportional, or the grid's pole
    row). Where the optimum is unique, the coefficients agree within the conditioning-scaled
    bound and, outside the degenerate families, the supports agree exactly. Everywhere the
    residual is no worse than SciPy's beyond rounding.
    """
    rng = np.random.default_rng(123)
    count, kappa_max = 0, 0.0
    for family, per_k, unique in _NNLS_FAMILIES:
        for k in range(1, 13):
            problems = [_nnls_problem(family, k, rng) for _ in range(per_k)]
            a = np.stack([p[0] for p in problems])
            y = np.stack([p[1] for p in problems])
            got = nnls_small(torch.from_numpy(a), torch.from_numpy(y)).numpy()
            want = np.stack([scipy.optimize.nnls(a[b], y[b])[0] for b in range(per_k)])
            assert np.isfinite(got).all() and (got >= 0).all()
            coef_ratio, res_ratio, kappa = _nnls_errors(a, y, got, want)
            where = f"{family}, k = {k}"
            assert res_ratio.max() <= RESIDUAL_FACTOR, f"{where}: residual above SciPy's by {res_ratio.max():.1f} eps"
            if unique:
                assert coef_ratio.max() <= COEF_FACTOR, f"{where}: coefficient error {coef_ratio.max():.1f} x bound"
                kappa_max = max(kappa_max, kappa.max())
            if family in ("gaussian", "beam-random", "neighbours", "neighbours-signed", "span"):
                np.testing.assert_array_equal(got > 0, want > 0, err_msg=where)
            if family in ("zero-y", "negative-y"):
                assert (got == 0).all(), where
            count += per_k
    assert count >= 1000
    assert kappa_max > 1e6, "no ill-conditioned passive set was tested"


def test_nomp_refit_from_the_previous_optimum_matches_scipy():
    """NOMP's refit: from the optimum on the first k - 1 columns to the optimum on all k.

    It takes a triangular solve where the previous optimum is positive, a partial step and
    the active-set method where that solve is not, and the method from the previous optimum
    where that has zeros; all three occur here.
    """
    from chanlab.classical import sparse_recovery as sr

    rng = np.random.default_rng(11)
    families = ("neighbours", "neighbours-signed", "beam-random", "span", "duplicates")
    for k in range(2, 13):
        problems = [_nnls_problem(family, k, rng) for family in families for _ in range(8)]
        a = torch.from_numpy(np.stack([p[0] for p in problems]))
        y = torch.from_numpy(np.stack([p[1] for p in problems]))
        x0 = torch.cat([nnls_small(a[:, :, :-1], y), y.new_zeros(len(y), 1)], dim=1)
        R, z = sr._qr_reduce(a, y)
        x = sr._nomp_refit(R.permute(2, 1, 0).contiguous(), z.T.contiguous(), sr._rank_tol(a).T.contiguous(),
                           x0.T.contiguous(), torch.ones(len(y), dtype=torch.bool)).T.numpy()
        a, y = a.numpy(), y.numpy()
        want = np.stack([scipy.optimize.nnls(a[b], y[b])[0] for b in range(len(y))])
        assert np.isfinite(x).all() and (x >= 0).all()
        coef_ratio, res_ratio, _ = _nnls_errors(a, y, x, want)
        assert res_ratio.max() <= RESIDUAL_FACTOR, k
        unique = np.array([f != "duplicates" for f in families for _ in range(8)])
        assert coef_ratio[unique].max() <= COEF_FACTOR, k


def test_nnls_small_float32_and_larger_supports():
    rng = np.random.default_rng(7)
    for k, dtype in [(6, torch.float32), (12, torch.float32), (16, torch.float64), (24, torch.float64),
                     (32, torch.float64), (40, torch.float64)]:
        problems = [_nnls_problem("neighbours-signed" if k <= 32 else "gaussian", k, rng) for _ in range(16)]
        a = np.stack([p[0] for p in problems])
        y = np.stack([p[1] for p in problems])
        got = nnls_small(torch.from_numpy(a).to(dtype), torch.from_numpy(y).to(dtype))
        assert got.dtype == dtype and (got >= 0).all()
        want = np.stack([scipy.optimize.nnls(a[b], y[b])[0] for b in range(len(y))])
        # Judged on the float64 data: float32 rounding of A and y moves the optimum itself.
        eps = float(torch.finfo(dtype).eps)
        for b in range(len(y)):
            r_got = np.linalg.norm(y[b] - a[b] @ got[b].double().numpy())
            r_want = np.linalg.norm(y[b] - a[b] @ want[b])
            scale = np.linalg.norm(y[b]) + np.linalg.norm(a[b]) * np.linalg.norm(want[b])
            assert r_got <= r_want + 100 * eps * scale, (k, dtype, b)


def test_nnls_small_errors():
    with pytest.raises(DataError, match="at most k = 64"):
        nnls_small(torch.zeros(2, 16, 65), torch.zeros(2, 16))
    with pytest.raises(DataError, match="to match"):
        nnls_small(torch.zeros(2, 16, 3), torch.zeros(2, 15))
    with pytest.raises(DataError, match="NaN"):
        nnls_small(torch.full((1, 4, 2), float("nan")), torch.zeros(1, 4))


# ---------------------------------------------------------------------------------------------
# OMP / NOMP / WNOMP against the references


@pytest.mark.parametrize("make_a", [_abs_gaussian, _beam_like])
@pytest.mark.parametrize("m,n,L", [(8, 40, 3), (32, 200, 6)])
def test_omp_matches_reference(make_a, m, n, L):
    a = make_a(m, n, 0)
    rng = np.random.default_rng(1)
    y = rng.standard_normal((32, m))  # signed targets: the refit has negative entries
    x = omp(torch.from_numpy(a), torch.from_numpy(y), L)
    assert x.shape == (32, n) and x.dtype == F64
    assert ((x != 0).sum(-1) <= L).all()
    _check_against(x, [_ref_omp(a, y[b], L) for b in range(len(y))])
    assert (x < 0).any()


@pytest.mark.parametrize("make_a", [_abs_gaussian, _beam_like])
@pytest.mark.parametrize("m,n,L,k", [(8, 40, 3, 4), (32, 200, 5, 5), (16, 120, 8, 3)])
def test_nomp_matches_reference(make_a, m, n, L, k):
    a = make_a(m, n, 2)
    y = _observations(a, 32, k, seed=3)
    x = nomp(torch.from_numpy(a), torch.from_numpy(y), L)
    assert (x >= 0).all() and ((x != 0).sum(-1) <= L).all()
    _check_against(x, [_ref_nomp(a, y[b], L) for b in range(len(y))])


@pytest.mark.parametrize("L,k", [(12, 8), (16, 12)])
def test_nomp_wnomp_large_sparsity_match_reference(L, k):
    """L beyond the former cap of 12, on the LSCM beam pattern's neighbouring angles."""
    a_full, n_el, n_az = _lscm_beam_pattern()
    a = a_full[:, (n_el // 2 - 4) * n_az:(n_el // 2 + 4) * n_az]  # 8 elevation rows: coherent columns
    y = _observations(a, 24, k, seed=30 + L, noise=0.1)
    x = nomp(torch.from_numpy(a), torch.from_numpy(y), L)
    assert (x >= 0).all() and ((x != 0).sum(-1) <= L).all()
    _check_against(x, [_ref_nomp(a, y[b], L) for b in range(len(y))])
    x = wnomp(torch.from_numpy(a), torch.from_numpy(y), L)
    _check_against(x, [_ref_nomp(a, y[b], L, _ref_weights(y[b])) for b in range(len(y))])


@pytest.mark.parametrize("make_a", [_abs_gaussian, _beam_like])
@pytest.mark.parametrize("m,n,L,k", [(8, 40, 3, 4), (32, 200, 5, 5)])
def test_wnomp_matches_reference(make_a, m, n, L, k):
    a = make_a(m, n, 4)
    y = _observations(a, 32, k, seed=5, noise=0.2)
    x = wnomp(torch.from_numpy(a), torch.from_numpy(y), L)
    assert (x >= 0).all() and ((x != 0).sum(-1) <= L).all()
    _check_against(x, [_ref_nomp(a, y[b], L, _ref_weights(y[b])) for b in range(len(y))])


def test_wnomp_custom_weights_and_nonpositive_beams():
    a = _abs_gaussian(16, 60, 6)
    y = _observations(a, 16, 3, seed=7)
    w = np.random.default_rng(8).uniform(0.2, 3.0, y.shape)
    x = wnomp(torch.from_numpy(a), torch.from_numpy(y), 4, weights=torch.from_numpy(w))
    _check_against(x, [_ref_nomp(a, y[b], 4, w[b]) for b in range(len(y))])
    # Beams at or below zero get the floored weight; an all-zero sample gives zero.
    y[0, :3] = [0.0, -1.0, 1e-14]
    y[1] = 0.0
    x = wnomp(torch.from_numpy(a), torch.from_numpy(y), 4)
    assert torch.isfinite(x).all() and (x[1] == 0).all()
    _check_against(x[:1], [_ref_nomp(a, y[0], 4, _ref_weights(y[0]))])


def test_wnomp_unit_weights_equal_nomp():
    a = torch.from_numpy(_beam_like(32, 150, 9))
    y = torch.from_numpy(_observations(a.numpy(), 48, 4, seed=10))
    x_w, x = wnomp(a, y, 5, weights=torch.ones_like(y)), nomp(a, y, 5)
    assert torch.equal(x_w != 0, x != 0)
    torch.testing.assert_close(x_w, x, rtol=1e-10, atol=1e-12)


def _recoverable():
    """A nonnegative ``A [32, 64]`` (|Gaussian| with 30 % nonzeros) and 64 3-sparse CAPS.

    Greedy pursuits carry no recovery guarantee on nonnegative dictionaries: every pair of
    columns is positively correlated, and on a dense |Gaussian| ``A`` (coherence ~0.85) about
    one sample in ten picks a wrong atom first. The sparser ``A`` is better conditioned, and
    this fixed draw is one on which every sample is recovered.
    """
    rng = np.random.default_rng(2)
    a = np.abs(rng.standard_normal((32, 64))) * (rng.uniform(size=(32, 64)) < 0.3)
    return a, _sparse_caps(64, 64, 3, seed=102)


@pytest.mark.parametrize("algo", [omp, nomp, wnomp])
def test_exact_recovery_noiseless(algo):
    a, x = _recoverable()
    x[0] = 0.0  # an all-zero RSRP gives an all-zero CAPS
    y = torch.from_numpy(x @ a.T)
    np.testing.assert_allclose(algo(torch.from_numpy(a), y, 3).numpy(), x, atol=1e-9)
    # A larger L stops once the residual vanishes. An early wrong atom is then zeroed by the refit.
    np.testing.assert_allclose(algo(torch.from_numpy(a), y, 6).numpy(), x, atol=1e-9)


@pytest.mark.parametrize("algo", [omp, nomp, wnomp])
def test_degenerate_dictionaries_and_shapes(algo):
    a = torch.from_numpy(_abs_gaussian(8, 20, 21))
    a[:, 3] = 0.0  # a dead beam-pattern column
    a[:, 5] = a[:, 4]  # two identical columns
    y = torch.from_numpy(_observations(a.numpy(), 6, 3, seed=22))
    x = algo(a, y, 6)
    assert torch.isfinite(x).all() and (x[:, 3] == 0).all()
    assert not ((x[:, 4] != 0) & (x[:, 5] != 0)).any()
    assert algo(a, y[:0], 3).shape == (0, 20)
    # L = M: OMP interpolates y exactly, NOMP stays nonnegative.
    x = algo(a, y, 8)
    if algo is omp:
        torch.testing.assert_close(x @ a.T, y, rtol=0, atol=1e-12)
    else:
        assert (x >= 0).all()


# ---------------------------------------------------------------------------------------------
# dtype, device, errors


@pytest.mark.parametrize("algo", [omp, nomp, wnomp])
def test_float32_close_to_float64(algo):
    a = _beam_like(32, 100, 15)
    y = _observations(a, 32, 3, seed=16)
    x64 = algo(torch.from_numpy(a), torch.from_numpy(y), 4)
    x32 = algo(torch.from_numpy(a).float(), torch.from_numpy(y).float(), 4)
    assert x32.dtype == torch.float32
    same = ((x32 != 0) == (x64 != 0)).all(-1)
    assert same.float().mean() >= 0.9  # near-ties may flip in float32
    torch.testing.assert_close(x32[same].double(), x64[same], rtol=1e-3, atol=1e-3 * float(x64.abs().max()))


def test_numpy_inputs_and_a_dtype_follow_y():
    a = _abs_gaussian(8, 40, 17)
    y = _observations(a, 4, 2, seed=18)
    x = nomp(a.astype(np.float32), torch.from_numpy(y), 2)  # A follows Y's dtype
    assert isinstance(x, torch.Tensor) and x.dtype == F64
    assert torch.equal(x, nomp(torch.from_numpy(a.astype(np.float32)).double(), torch.from_numpy(y), 2))


@pytest.mark.parametrize("algo", [omp, nomp, wnomp])
def test_errors(algo):
    a = torch.rand(32, 50, dtype=F64)
    y = torch.rand(4, 32, dtype=F64)
    with pytest.raises(DataError, match=r"M = 32 beams to match A \[32, N\], got 31"):
        algo(a, y[:, :31], 3)
    with pytest.raises(DataError, match="NaN"):
        algo(a, y.clone().index_fill_(1, torch.tensor([2]), float("nan")), 3)
    with pytest.raises(DataError, match="NaN"):
        algo(a.clone().index_fill_(1, torch.tensor([2]), float("inf")), y, 3)
    for bad in (0, 33, 2.0, True):
        with pytest.raises(DataError, match="sparsity"):
            algo(a, y, bad)
    with pytest.raises(DataError, match="2-D"):
        algo(a, y[0], 3)
    if algo is not omp:
        with pytest.raises(DataError, match="at most 64"):
            algo(torch.rand(70, 80, dtype=F64), torch.rand(2, 70, dtype=F64), 65)
    if algo is wnomp:
        with pytest.raises(DataError, match="nonnegative"):
            algo(a, y, 3, weights=-torch.ones_like(y))
        with pytest.raises(DataError, match="weights"):
            algo(a, y, 3, weights=torch.ones(4, 31, dtype=F64))


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")
@pytest.mark.parametrize("algo", [omp, nomp, wnomp])
def test_cuda_matches_cpu(algo):
    a = torch.from_numpy(_beam_like(32, 200, 19))
    y = torch.from_numpy(_observations(a.numpy(), 64, 4, seed=20))
    x_gpu = algo(a.cuda(), y.cuda(), 5)
    assert x_gpu.device.type == "cuda"
    torch.testing.assert_close(x_gpu.cpu(), algo(a, y, 5), rtol=1e-7, atol=1e-9)
