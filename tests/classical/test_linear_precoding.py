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
