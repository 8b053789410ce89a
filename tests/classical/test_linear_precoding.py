import pytest
import torch

from chanlab.classical.linear_precoding import mrt, rzf, zf
from chanlab.core.errors import DataError


def _h(batch=5, users=3, tx=6, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(batch, users, tx, dtype=torch.complex128, generator=g)


def test_zf_removes_interference_and_meets_power():
    h = _h()
    v = zf(h, power=2.0)
    eff = h.conj() @ v  # [batch, users, users]: entry (i, j) = h_i^H v_j
    off = eff - torch.diag_embed(eff.diagonal(dim1=-2, dim2=-1))
    assert off.abs().max() < 1e-10
    assert torch.allclose(v.abs().square().sum((1, 2)), torch.full((5,), 2.0, dtype=torch.float64))


def test_mrt_points_each_beam_at_its_user():
    h = _h(users=1)
    v = mrt(h, power=1.0)
    assert torch.allclose((h.conj() @ v).abs().squeeze(), h.norm(dim=-1).squeeze())


def test_rzf_tends_to_mrt_for_large_regularization():
    h = _h()
    v = rzf(h, 1.0, regularization=1e9)
    cos = (v.conj() * mrt(h, 1.0)).sum((1, 2)).abs()
    assert torch.allclose(cos, torch.ones(5, dtype=torch.float64), atol=1e-6)


def test_zf_needs_enough_antennas():
    with pytest.raises(DataError, match="n_users <= n_tx"):
        zf(_h(users=4, tx=2))


def test_zf_equal_power_split_gives_each_user_p_over_k_and_no_interference():
    gen = torch.Generator().manual_seed(3)
    h = torch.complex(torch.randn(5, 3, 8, generator=gen), torch.randn(5, 3, 8, generator=gen))
    v = zf(h, 2.0, power_split="equal")
    col = v.abs().square().sum(dim=1)
    torch.testing.assert_close(col, torch.full_like(col, 2.0 / 3))
    g = h.conj() @ v
    off = g - torch.diag_embed(torch.diagonal(g, dim1=-2, dim2=-1))
    assert off.abs().max() < 1e-4 * g.abs().max()
    # same directions as the total-power ZF
    v_total = zf(h, 2.0)
    cos = (v.conj() * v_total).sum(1).abs() / (v.norm(dim=1) * v_total.norm(dim=1))
    torch.testing.assert_close(cos, torch.ones_like(cos))


def test_rzf_rejects_unknown_power_split():
    h = torch.ones(1, 2, 4, dtype=torch.complex64)
    with pytest.raises(DataError, match="power_split"):
        rzf(h, 1.0, power_split="per-antenna")
