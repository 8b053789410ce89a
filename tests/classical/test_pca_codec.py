"""PCA codec (the "PCA" baseline of Table I) against closed forms and NumPy eigendecompositions."""

import numpy as np
import pytest
import torch

from chanlab.classical.pca_codec import PcaCodec
from chanlab.core.errors import ConfigError, DataError

pytestmark = pytest.mark.usefixtures("one_thread")

F64 = torch.float64
EXACT = ("covariance", "svd")


def _data(n=400, d=24, seed=0, dtype=F64):
    """Correlated data with a non-zero mean and distinct eigenvalues."""
    gen = torch.Generator().manual_seed(seed)
    mix = torch.randn(d, d, generator=gen, dtype=F64) * torch.logspace(0, -2, d, dtype=F64)[:, None]
    x = torch.randn(n, d, generator=gen, dtype=F64) @ mix + 3 * torch.randn(d, generator=gen, dtype=F64)
    return x.to(dtype)


def _eigvals(x: torch.Tensor) -> np.ndarray:
    """Eigenvalues of the 1/n sample covariance, decreasing (NumPy reference)."""
    a = x.double().numpy()
    return np.linalg.eigvalsh(np.cov(a.T, bias=True))[::-1]


@pytest.mark.parametrize("method", EXACT)
def test_full_rank_reconstruction_is_exact(method):
    x = _data()
    pca = PcaCodec(x.shape[1], method=method).fit(x)
    assert torch.allclose(pca.reconstruct(x), x, rtol=0, atol=1e-10)
    assert float(pca.discarded_variance) < 1e-10


@pytest.mark.parametrize("method", EXACT)
@pytest.mark.parametrize("m", [1, 5, 17])
def test_error_equals_discarded_eigenvalues(method, m):
    x = _data(seed=m)
    lam = _eigvals(x)
    pca = PcaCodec(m, method=method).fit(x)
    err = float(((x - pca.reconstruct(x)) ** 2).sum(1).mean())
    assert np.isclose(err, lam[m:].sum(), rtol=1e-9, atol=1e-12)
    assert np.isclose(float(pca.discarded_variance), lam[m:].sum(), rtol=1e-9, atol=1e-12)
    assert np.allclose(pca.explained_variance.numpy(), lam[:m], rtol=1e-9, atol=1e-12)
    # Coefficients of the training data: zero mean, covariance diag(λ_1..λ_M).
    z = pca.encode(x)
    assert z.shape == (x.shape[0], m)
    assert torch.allclose(z.mean(0), torch.zeros(m, dtype=F64), atol=1e-9)
    cov = z.T @ z / x.shape[0]
    assert torch.allclose(cov, torch.diag(torch.from_numpy(lam[:m].copy())), rtol=1e-8, atol=1e-10)


@pytest.mark.parametrize("method", EXACT + ("lowrank",))
def test_components_orthonormal_and_methods_agree(method):
    x = _data(n=300, d=30, seed=3)
    ref = PcaCodec(6, method="covariance").fit(x)
    pca = PcaCodec(6, method=method, niter=6).fit(x)
    v = pca.components
    assert v.shape == (6, 30)
    assert torch.allclose(v @ v.T, torch.eye(6, dtype=F64), atol=1e-10)
    # Sign convention: each component's largest-magnitude entry is positive.
    assert bool((v.gather(1, v.abs().argmax(1, keepdim=True)) > 0).all())
    tol = 1e-8 if method in EXACT else 1e-3                                    # lowrank is randomized
    assert torch.allclose(v, ref.components, atol=tol)
    assert torch.allclose(pca.explained_variance, ref.explained_variance, rtol=tol)


def test_float32_and_state_dict_round_trip():
    x = _data(dtype=torch.float32)
    pca = PcaCodec(8).fit(x)
    assert pca.components.dtype == torch.float32 and pca.mean.dtype == torch.float32
    z = pca.encode(x)
    assert z.dtype == torch.float32
    lam = _eigvals(x)
    err = float(((x.double() - pca.decode(z).double()) ** 2).sum(1).mean())
    assert np.isclose(err, lam[8:].sum(), rtol=1e-3)
    fresh = PcaCodec(8)
    fresh.load_state_dict(pca.state_dict())
    assert torch.equal(fresh.encode(x), z)


def test_fewer_samples_than_features():
    x = _data(n=10, d=40, seed=4)
    pca = PcaCodec(9).fit(x)                 # rank of the centred data is 9: nothing discarded
    assert torch.allclose(pca.reconstruct(x), x, atol=1e-9)


def test_validation():
    with pytest.raises(ConfigError):
        PcaCodec(0)
    with pytest.raises(ConfigError):
        PcaCodec(3, method="eig")
    pca = PcaCodec(3)
    with pytest.raises(ConfigError, match="not fitted"):
        pca.encode(torch.randn(4, 5))
    with pytest.raises(ConfigError, match="n_components"):
        PcaCodec(6).fit(torch.randn(10, 5))
    with pytest.raises(DataError):
        pca.fit(torch.randn(10))
    with pytest.raises(DataError):
        pca.fit(torch.ones(10, 5, dtype=torch.complex64))
    bad = torch.randn(10, 5)
    bad[2, 3] = float("inf")
    with pytest.raises(DataError):
        pca.fit(bad)
    pca.fit(torch.randn(10, 5))
    with pytest.raises(DataError):
        pca.encode(torch.randn(4, 6))
    with pytest.raises(DataError):
        pca.decode(torch.randn(4, 2))
