import math

import numpy as np
import pytest
import torch

from chanlab.core.errors import DataError
from chanlab.metrics.clustering import clustering_scores
from chanlab.metrics.distortion import cosine_similarity, mae_db, nmse, nmse_db, nmse_per_sample
from chanlab.metrics.flops import count_flops
from chanlab.metrics.wasserstein import center_wasserstein


def test_nmse_is_mean_of_per_sample_ratios():
    h = torch.tensor([[1.0, 0.0], [10.0, 0.0]])
    h_hat = torch.tensor([[0.5, 0.0], [9.0, 0.0]])
    # per-sample ratios 0.25 and 0.01: the mean is 0.13, the ratio of sums would be 1.25/101
    assert torch.allclose(nmse_per_sample(h, h_hat), torch.tensor([0.25, 0.01]))
    assert math.isclose(nmse(h, h_hat), 0.13, rel_tol=1e-6)
    assert math.isclose(nmse_db(h, h_hat), 10 * math.log10(0.13), rel_tol=1e-6)
    assert nmse_db(h, h) == -math.inf


def test_nmse_complex_and_errors():
    h = torch.randn(4, 3, 5, dtype=torch.complex64)
    assert math.isclose(nmse(h, 0.9 * h), 0.01, rel_tol=1e-4)
    with pytest.raises(DataError, match="equal shapes"):
        nmse(h, h[:2])
    with pytest.raises(DataError, match="NaN"):
        nmse(h, torch.full_like(h, float("nan")))
    with pytest.raises(DataError, match="zero power"):
        nmse(torch.zeros(2, 3), torch.ones(2, 3))


def test_rho_closed_forms():
    g = torch.Generator().manual_seed(0)
    h = torch.randn(3, 8, 6, dtype=torch.complex64, generator=g)
    # ρ ignores a per-subcarrier complex gain
    gain = torch.randn(3, 1, 6, dtype=torch.complex64, generator=g)
    assert math.isclose(cosine_similarity(h, h * gain), 1.0, rel_tol=1e-5)
    # orthogonal antenna vectors give 0
    a = torch.zeros(1, 2, 1, dtype=torch.complex64)
    b = torch.zeros(1, 2, 1, dtype=torch.complex64)
    a[0, 0, 0], b[0, 1, 0] = 1, 1
    assert cosine_similarity(a, b) == 0.0
    # a brute-force loop agrees
    h_hat = h + 0.5 * torch.randn(3, 8, 6, dtype=torch.complex64, generator=g)
    ref = np.mean([[abs(np.vdot(h_hat[b_, :, n].numpy(), h[b_, :, n].numpy()))
                    / (np.linalg.norm(h_hat[b_, :, n]) * np.linalg.norm(h[b_, :, n]))
                    for n in range(6)] for b_ in range(3)])
    assert math.isclose(cosine_similarity(h, h_hat), ref, rel_tol=1e-5)


def test_mae_db():
    assert mae_db(torch.tensor([-80.0, -90.0]), torch.tensor([-82.0, -89.0])) == pytest.approx(1.5)


def test_clustering_scores_match_definitions():
    s = clustering_scores([0, 0, 1, 1], [1, 1, 0, 0])
    assert all(math.isclose(v, 1.0) for v in s.values())
    s = clustering_scores(np.array([0, 0, 0, 0]), np.array([0, 1, 2, 3]))
    assert math.isclose(s["homogeneity"], 1.0) and s["completeness"] < 1e-12
    with pytest.raises(DataError, match="integer"):
        clustering_scores([0.5, 1.0], [0, 1])
    with pytest.raises(DataError, match="equal lengths"):
        clustering_scores([0, 1], [0])


def test_center_wasserstein_matches_brute_force():
    import itertools

    rng = np.random.default_rng(0)
    a, b = rng.normal(size=(5, 2)), rng.normal(size=(5, 2))
    brute = min(np.mean([np.sum((a[i] - b[j]) ** 2) for i, j in enumerate(p)])
                for p in itertools.permutations(range(5))) ** 0.5
    assert math.isclose(center_wasserstein(a, b), brute, rel_tol=1e-12)
    assert center_wasserstein(a, a[::-1]) == 0.0
    assert math.isclose(center_wasserstein(torch.zeros(3, 1), torch.ones(3, 1), p=1), 1.0)
    with pytest.raises(DataError, match="equal shapes"):
        center_wasserstein(a, b[:4])


def test_flops_of_linear_layer():
    layer = torch.nn.Linear(16, 8, bias=False)
    assert count_flops(layer, torch.zeros(4, 16)) == 2 * 4 * 16 * 8
