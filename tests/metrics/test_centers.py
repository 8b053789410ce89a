import pytest
import torch

from chanlab.core.errors import DataError
from chanlab.metrics.centers import sample_mean_nmse
from chanlab.metrics.wasserstein import center_wasserstein


def test_sample_mean_nmse_matches_a_loop():
    g = torch.Generator().manual_seed(0)
    t, e = torch.rand(5, 8, generator=g), torch.rand(4, 8, generator=g)
    lt, le = torch.randint(0, 5, (50,), generator=g), torch.randint(0, 4, (50,), generator=g)
    loop = sum(float((t[a] - e[b]).norm() / t[a].norm()) for a, b in zip(lt, le)) / 50
    assert sample_mean_nmse(t, lt, e, le) == pytest.approx(loop)
    assert sample_mean_nmse(t, lt, torch.zeros(4, 8), le) == pytest.approx(1.0)
    assert sample_mean_nmse(t, lt, t, lt) == 0.0


def test_sample_mean_nmse_validates():
    with pytest.raises(DataError):
        sample_mean_nmse(torch.ones(2, 3), torch.tensor([0, 2]), torch.ones(2, 3), torch.tensor([0, 1]))
    with pytest.raises(DataError):
        sample_mean_nmse(torch.ones(2, 3), torch.tensor([0, 1]), torch.ones(2, 4), torch.tensor([0, 1]))


def test_center_wasserstein_is_permutation_invariant():
    a = torch.rand(6, 30, dtype=torch.float64)
    assert center_wasserstein(a, a[torch.randperm(6)]) == pytest.approx(0.0, abs=1e-12)
