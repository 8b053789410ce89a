import pytest
import torch

from chanlab.core.errors import DataError
from chanlab.csi_feedback.ranges import normalized_std, range_report

# Lloyd-Max distortions of a unit Gaussian at 1, 2, 3 bits (Max 1960): the k-means losses of
# Section III-A for Gaussian outputs.
GAUSS_D = {1: 0.3634, 2: 0.1175, 3: 0.03454}
# A bit moves from output d to output a at B = 2 iff σ_d²(D1 − D2) < σ_a²(D2 − D3).
THRESHOLD = ((GAUSS_D[1] - GAUSS_D[2]) / (GAUSS_D[2] - GAUSS_D[3])) ** 0.5       # ≈ 1.72


def gaussian_outputs(sigmas, n=40000, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, len(sigmas), generator=g, dtype=torch.float64) * torch.tensor(sigmas, dtype=torch.float64)


def test_normalized_std_closed_form():
    z = gaussian_outputs([1.0, 2.0, 3.0])
    ratio = normalized_std(z)
    torch.testing.assert_close(ratio, torch.tensor([0.5, 1.0, 1.5], dtype=torch.float64), atol=0.02, rtol=0)
    assert torch.equal(normalized_std(torch.ones(5, 3)), torch.zeros(3))


@pytest.mark.parametrize("ratio, moves", [(0.9 * THRESHOLD, 0), (1.1 * THRESHOLD, 1)])
def test_allocation_moves_only_past_the_gaussian_threshold(ratio, moves):
    rep = range_report(gaussian_outputs([1.0, ratio]), 2)
    assert rep["allocation_moves"] == moves
    if moves:
        assert (rep["allocated_bits_min"], rep["allocated_bits_max"]) == (1, 3)
        # the closed-form gain: loss D2 (σ_d² + σ_a²) before, σ_d² D1 + σ_a² D3 after the move
        expect = 1 - (GAUSS_D[1] + ratio ** 2 * GAUSS_D[3]) / (GAUSS_D[2] * (1 + ratio ** 2))
        assert rep["allocation_gain"] == pytest.approx(expect, abs=0.01)
    else:
        assert rep["allocation_gain"] == 0.0
        assert (rep["allocated_bits_min"], rep["allocated_bits_max"]) == (2, 2)
    assert rep["ratio_max_over_min"] == pytest.approx(ratio, rel=0.02)


def test_even_outputs_keep_equal_bits():
    rep = range_report(gaussian_outputs([1.0] * 16, n=4000), 3)
    assert rep["allocation_moves"] == 0 and rep["ratio_std"] < 0.05


def test_bad_inputs():
    with pytest.raises(DataError, match="at least 2 samples"):
        normalized_std(torch.zeros(1, 4))
    with pytest.raises(DataError):
        normalized_std(torch.zeros(4))
    with pytest.raises(DataError):
        normalized_std(torch.full((3, 2), float("nan")))
