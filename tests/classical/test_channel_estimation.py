import math

import pytest
import torch

from chanlab.classical.channel_estimation import (dft_pilots, lmmse_estimate, lmmse_mse, receive_pilots,
                                                  sample_covariance)
from chanlab.core.errors import ConfigError, DataError

C128 = torch.complex128


def _gen(seed):
    return torch.Generator().manual_seed(seed)


def _low_rank(m, r, seed=0):
    """``A`` ``[M, r]`` with ``R = A A^H`` of trace ``M``."""
    a = torch.randn(m, r, dtype=C128, generator=_gen(seed))
    return a * math.sqrt(m / float(a.abs().square().sum()))


def _draw(a, batch, users, seed=1):
    """``h_k = A z_k`` with ``z_k ~ CN(0, I)``: ``h ~ CN(0, A A^H)``, ``[batch, users, M]``."""
    z = torch.randn(batch, users, a.shape[1], dtype=C128, generator=_gen(seed))
    return z @ a.T


# ----------------------------------------------------------------------------------- pilots


@pytest.mark.parametrize("m, l, p", [(8, 8, 1.0), (16, 5, 2.5), (7, 3, 0.1), (1, 1, 1.0)])
def test_dft_pilots_orthogonal_with_power(m, l, p):
    x = dft_pilots(m, l, p, dtype=C128)
    assert x.shape == (m, l) and x.dtype == C128
    assert torch.allclose(x.mH @ x, p * torch.eye(l, dtype=C128), atol=1e-12)


def test_dft_pilots_are_the_first_dft_columns():
    m, l = 12, 4
    f = torch.fft.fft(torch.eye(m, dtype=C128), dim=0) / math.sqrt(m)   # F[a, b] = exp(-2πj ab/M)/sqrt(M)
    assert torch.allclose(dft_pilots(m, l, 3.0, dtype=C128), math.sqrt(3.0) * f[:, :l], atol=1e-12)
    assert dft_pilots(m, l).dtype == torch.complex64


def test_dft_pilots_validation():
    with pytest.raises(ConfigError, match="n_pilots"):
        dft_pilots(4, 5)
    with pytest.raises(ConfigError, match="n_ant"):
        dft_pilots(0, 1)
    with pytest.raises(ConfigError, match="power"):
        dft_pilots(4, 2, 0.0)
    with pytest.raises(ConfigError, match="power"):
        dft_pilots(4, 2, float("nan"))
    with pytest.raises(ConfigError, match="dtype"):
        dft_pilots(4, 2, dtype=torch.float32)


# ------------------------------------------------------------------------------- covariance


def test_sample_covariance_matches_known_gaussian():
    a = _low_rank(6, 6, seed=3) + torch.eye(6, dtype=C128)
    r = a @ a.mH
    h = _draw(a, 25_000, 2, seed=4)                                  # 50k pooled user channels
    r_hat = sample_covariance(h)
    assert r_hat.shape == (6, 6) and r_hat.dtype == C128
    assert torch.equal(r_hat, r_hat.mH)
    assert float((r_hat - r).norm() / r.norm()) < 0.03
    assert torch.linalg.eigvalsh(r_hat).min() > -1e-10
    # 2-D input, and pooling [n, K, M] equals stacking the users as samples.
    assert torch.allclose(sample_covariance(h.reshape(-1, 6)), r_hat, atol=1e-12)


def test_sample_covariance_validation():
    with pytest.raises(DataError, match="complex"):
        sample_covariance(torch.randn(10, 4))
    with pytest.raises(DataError, match="2-D or 3-D"):
        sample_covariance(torch.randn(4, dtype=C128))
    with pytest.raises(DataError, match="at least one"):
        sample_covariance(torch.zeros(0, 4, dtype=C128))
    with pytest.raises(DataError, match="NaN"):
        sample_covariance(torch.full((3, 4), float("nan"), dtype=C128))
    with pytest.raises(DataError, match="torch.Tensor"):
        sample_covariance([[1j]])


# -------------------------------------------------------------------------- received pilots


def test_receive_pilots_signal_and_noise_statistics():
    m, l, k = 8, 4, 3
    x = dft_pilots(m, l, 2.0, dtype=C128)
    h = torch.randn(5, k, m, dtype=C128, generator=_gen(0))
    y = receive_pilots(h, x, 1e-30, generator=_gen(1))
    expect = torch.einsum("ml,bkm->bkl", x.conj(), h)                 # y_k = X^H h_k
    assert y.shape == (5, k, l) and torch.allclose(y, expect, atol=1e-12)
    # Noise only: per-user powers from a [K] tensor, circular (equal real/imag power).
    sigma2 = torch.tensor([0.5, 1.0, 2.0], dtype=torch.float64)
    n = receive_pilots(torch.zeros(20_000, k, m, dtype=C128), x, sigma2, generator=_gen(2))
    power = n.abs().square().mean((0, 2))
    assert torch.allclose(power, sigma2, rtol=0.03)
    assert abs(float(n.real.square().mean() / n.imag.square().mean()) - 1) < 0.03
    # Reproducible with a generator.
    assert torch.equal(receive_pilots(h, x, 0.1, generator=_gen(7)), receive_pilots(h, x, 0.1, generator=_gen(7)))


def test_receive_pilots_is_differentiable_in_pilots():
    x = dft_pilots(6, 3).requires_grad_(True)
    h = torch.randn(4, 2, 6, dtype=torch.complex64, generator=_gen(0))
    receive_pilots(h, x, 0.1, generator=_gen(1)).abs().square().sum().backward()
    assert x.grad is not None and torch.isfinite(x.grad).all() and x.grad.abs().sum() > 0


def test_receive_pilots_validation():
    x = dft_pilots(4, 2)
    h = torch.zeros(3, 2, 4, dtype=torch.complex64)
    with pytest.raises(DataError, match="complex"):
        receive_pilots(h.real, x, 0.1)
    with pytest.raises(DataError, match="3-D"):
        receive_pilots(h[0], x, 0.1)
    with pytest.raises(DataError, match="pilots: expected 4 rows"):
        receive_pilots(h, dft_pilots(5, 2), 0.1)
    with pytest.raises(DataError, match="pilots: expected a complex"):
        receive_pilots(h, x.real, 0.1)
    with pytest.raises(DataError, match="noise_power"):
        receive_pilots(h, x, 0.0)
    with pytest.raises(DataError, match="noise_power"):
        receive_pilots(h, x, torch.ones(4))


# ------------------------------------------------------------------------------------ LMMSE


def test_lmmse_mse_matches_closed_form_and_beats_ls_and_zero():
    m, r, l, k, sigma2 = 16, 3, 6, 2, 0.1
    a = _low_rank(m, r)
    cov = a @ a.mH
    x = dft_pilots(m, l, dtype=C128)
    h = _draw(a, 10_000, k)
    y = receive_pilots(h, x, sigma2, generator=_gen(5))
    h_hat = lmmse_estimate(y, x, cov, sigma2)
    assert h_hat.shape == h.shape and h_hat.dtype == C128
    err = (h_hat - h).abs().square().sum(-1).flatten()               # ‖ĥ_k - h_k‖², 20k samples
    closed = float(lmmse_mse(x, cov, sigma2))
    direct = float(torch.trace(cov - cov @ x @ torch.linalg.inv(x.mH @ cov @ x + sigma2 * torch.eye(l, dtype=C128)) @ x.mH @ cov).real)
    assert closed == pytest.approx(direct, rel=1e-10)
    assert abs(float(err.mean()) - closed) < 4 * float(err.std()) / math.sqrt(err.numel())
    # Least squares (min-norm, X^H X = I for DFT pilots): ĥ = X y. And the zero estimate.
    mse_ls = float((y @ x.T - h).abs().square().sum(-1).mean())
    mse_zero = float(torch.trace(cov).real)
    assert closed < 0.8 * mse_ls and closed < 0.8 * mse_zero


def test_lmmse_recovers_h_without_noise_at_full_rank():
    m = 8
    a = torch.randn(m, m, dtype=C128, generator=_gen(3)) + 2 * torch.eye(m, dtype=C128)
    cov = a @ a.mH
    x = dft_pilots(m, m, dtype=C128)
    h = _draw(a, 50, 3)
    sigma2 = 1e-12
    y = receive_pilots(h, x, sigma2, generator=_gen(4))
    h_hat = lmmse_estimate(y, x, cov, sigma2)
    assert float((h_hat - h).norm() / h.norm()) < 1e-5


def test_lmmse_batching_paths_agree_with_a_per_user_reference():
    m, l, b, k = 10, 4, 6, 3
    x = torch.randn(m, l, dtype=C128, generator=_gen(0))
    a = torch.randn(b, m, m, dtype=C128, generator=_gen(1))
    covs = a @ a.mH / m                                               # per-sample covariances
    y = torch.randn(b, k, l, dtype=C128, generator=_gen(2))
    s2 = torch.rand(b, k, dtype=torch.float64, generator=_gen(3)) + 0.05

    def ref(r, sigma2, yk):
        return r @ x @ torch.linalg.solve(x.mH @ r @ x + sigma2 * torch.eye(l, dtype=C128), yk)

    shared = lmmse_estimate(y, x, covs[0], 0.3)
    per_sample = lmmse_estimate(y, x, covs, 0.3)
    per_user = lmmse_estimate(y, x, covs, s2)
    per_user_shared = lmmse_estimate(y, x, covs[0], s2)
    for i in range(b):
        for j in range(k):
            assert torch.allclose(shared[i, j], ref(covs[0], 0.3, y[i, j]), atol=1e-10)
            assert torch.allclose(per_sample[i, j], ref(covs[i], 0.3, y[i, j]), atol=1e-10)
            assert torch.allclose(per_user[i, j], ref(covs[i], float(s2[i, j]), y[i, j]), atol=1e-10)
            assert torch.allclose(per_user_shared[i, j], ref(covs[0], float(s2[i, j]), y[i, j]), atol=1e-10)
    # A constant tensor noise takes the per-user path and gives the scalar-path result.
    assert torch.allclose(lmmse_estimate(y, x, covs[0], torch.full((b, k), 0.3, dtype=torch.float64)),
                          shared, atol=1e-10)
    assert torch.allclose(lmmse_estimate(y, x, covs[0], torch.tensor(0.3)), shared, atol=1e-12)
    # A real covariance is accepted (promoted to complex).
    assert torch.allclose(lmmse_estimate(y, x, covs[0].real.contiguous(), 0.3),
                          lmmse_estimate(y, x, covs[0].real.to(C128), 0.3), atol=1e-12)
    assert lmmse_mse(x, covs, 0.3).shape == (b,)


def test_lmmse_gradients_finite_with_repeated_eigenvalues():
    x = dft_pilots(8, 4).requires_grad_(True)                         # X^H R X = I: all eigenvalues equal
    y = torch.randn(3, 2, 4, dtype=torch.complex64, generator=_gen(0))
    lmmse_estimate(y, x, torch.eye(8, dtype=torch.complex64), 0.1).abs().square().sum().backward()
    assert torch.isfinite(x.grad).all()


def test_lmmse_follows_complex64():
    x = dft_pilots(6, 3)
    y = torch.randn(2, 2, 3, dtype=torch.complex64, generator=_gen(0))
    assert lmmse_estimate(y, x, torch.eye(6, dtype=torch.complex64), 0.1).dtype == torch.complex64


def test_lmmse_validation():
    x = dft_pilots(4, 2)
    y = torch.zeros(3, 2, 2, dtype=torch.complex64)
    cov = torch.eye(4, dtype=torch.complex64)
    with pytest.raises(DataError, match="L = 2"):
        lmmse_estimate(torch.zeros(3, 2, 3, dtype=torch.complex64), x, cov, 0.1)
    with pytest.raises(DataError, match="y: expected a complex"):
        lmmse_estimate(y.real, x, cov, 0.1)
    with pytest.raises(DataError, match="covariance: expected shape"):
        lmmse_estimate(y, x, torch.eye(5, dtype=torch.complex64), 0.1)
    with pytest.raises(DataError, match="covariance: expected shape"):
        lmmse_estimate(y, x, torch.eye(4, dtype=torch.complex64).expand(2, 4, 4), 0.1)
    with pytest.raises(DataError, match="noise_power"):
        lmmse_estimate(y, x, cov, -1.0)
    with pytest.raises(DataError, match="noise_power"):
        lmmse_estimate(y, x, cov, torch.zeros(3, 2))
    with pytest.raises(DataError, match="noise_power"):
        lmmse_estimate(y, x, cov, "loud")
    with pytest.raises(DataError, match="NaN"):
        lmmse_estimate(torch.full_like(y, float("nan")), x, cov, 0.1)
