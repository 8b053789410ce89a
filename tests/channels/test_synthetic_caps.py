import math

import pytest
import torch

from chanlab.channels.synthetic_caps import synthetic_caps, truncated_normal
from chanlab.core.errors import DataError


def test_truncated_normal_moments():
    z = truncated_normal((200000,), generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    assert float(z.min()) >= -1 and float(z.max()) <= 1
    # Var of TN(0, 1; -1, 1) = 1 - 2 φ(1) / (Φ(1) - Φ(-1))
    phi1 = math.exp(-0.5) / math.sqrt(2 * math.pi)
    var = 1 - 2 * phi1 / math.erf(1 / math.sqrt(2))
    assert float(z.var()) == pytest.approx(var, rel=0.01)
    assert abs(float(z.mean())) < 0.005


def test_dataset_structure_and_assumption_2():
    ds = synthetic_caps(n_grids=4, samples_per_grid=3000, n_angles=50, sparsity=3, scale=0.8,
                        generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    assert ds.centers.shape == (4, 50) and ds.caps.shape == (12000, 50) and ds.labels.shape == (12000,)
    assert ((ds.centers > 0).sum(1) == 3).all()
    assert (ds.caps >= 0).all()
    for k in range(4):
        support = ds.centers[k] > 0
        e = ds.caps[ds.labels == k] - ds.centers[k]
        m = float(ds.centers[k][support].min())
        # zero-mean perturbations on the support (Assumption 2), nonnegative ones elsewhere
        assert e[:, support].mean(0).abs().max() < 5 * 0.8 * m * 0.54 / math.sqrt(3000)
        assert (e[:, ~support] >= 0).all() and float(e[:, ~support].max()) <= 0.8 * m + 1e-15
        assert float(e.abs().max()) <= 0.8 * m + 1e-15


def test_center_values_are_laplace_magnitudes():
    ds = synthetic_caps(n_grids=4000, samples_per_grid=1, n_angles=20, sparsity=5, p=1e-4,
                        generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    values = ds.centers[ds.centers > 0]
    assert float(values.mean()) == pytest.approx(1e-2, rel=0.03)     # E|Laplace(0, b)| = b = √p


def test_rsrp_is_a_times_x_and_validation():
    ds = synthetic_caps(n_grids=2, samples_per_grid=5, n_angles=10, sparsity=2, generator=torch.Generator().manual_seed(2))
    a = torch.rand(4, 10, dtype=torch.float64)
    torch.testing.assert_close(ds.rsrp_mw(a, chunk=3), ds.caps.double() @ a.T)
    with pytest.raises(DataError):
        ds.rsrp_mw(torch.rand(4, 9))
    with pytest.raises(DataError, match="scale"):
        synthetic_caps(scale=1.5)
