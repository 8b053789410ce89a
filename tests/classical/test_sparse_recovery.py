"""Batched OMP / NOMP / WNOMP and exact small NNLS against per-sample NumPy/SciPy references."""

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


def test_nnls_small_errors():
    with pytest.raises(DataError, match="at most k = 12"):
        nnls_small(torch.zeros(2, 16, 13), torch.zeros(2, 16))
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
        with pytest.raises(DataError, match="at most 12"):
            algo(a, y, 13)
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
