"""Rate metrics against closed forms, a brute-force loop reference and the validation rules."""

from __future__ import annotations

import math

import pytest
import torch

from chanlab.core.errors import DataError
from chanlab.metrics.rates import (
    flatten_cellfree, flatten_cellfree_precoder, sinr, sum_rate, unflatten_cellfree, user_rates,
)


def _crandn(*shape, seed=0, dtype=torch.complex128):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(*shape, generator=g, dtype=dtype)


def _loop_sinr(h, v, sigma2, conj):
    """Eq. (2) written out with Python loops, one sample, one user and one stream at a time."""
    b, n_users, n_tx = h.shape
    out = torch.zeros(b, n_users, dtype=torch.float64)
    for s in range(b):
        for i in range(n_users):
            def gain(j):
                acc = 0j
                for n in range(n_tx):
                    hn = complex(h[s, i, n])
                    acc += (hn.conjugate() if conj else hn) * complex(v[s, n, j])
                return abs(acc) ** 2
            interference = sum(gain(j) for j in range(n_users) if j != i)
            noise = float(sigma2[s, i]) if isinstance(sigma2, torch.Tensor) else sigma2
            out[s, i] = gain(i) / (interference + noise)
    return out


@pytest.mark.parametrize("conj", [True, False])
def test_matches_brute_force_loop(conj):
    h = _crandn(3, 4, 5, seed=1)
    v = _crandn(3, 5, 4, seed=2)
    sigma2 = torch.rand(3, 4, dtype=torch.float64) + 0.1
    got = sinr(h, v, sigma2, conj=conj)
    want = _loop_sinr(h, v, sigma2, conj)
    torch.testing.assert_close(got, want, rtol=1e-12, atol=0.0)
    torch.testing.assert_close(user_rates(h, v, sigma2, conj=conj), torch.log2(1 + want))
    torch.testing.assert_close(sum_rate(h, v, sigma2, conj=conj), torch.log2(1 + want).sum(-1))


def test_conj_convention():
    # conj=False with h_i^H stored in the rows equals conj=True with h_i stored.
    h = _crandn(2, 3, 4, seed=3)
    v = _crandn(2, 4, 3, seed=4)
    torch.testing.assert_close(sinr(h, v, 0.5), sinr(h.conj(), v, 0.5, conj=False))
    assert not torch.allclose(sinr(h, v, 0.5), sinr(h, v, 0.5, conj=False))


def test_single_user_mrt_closed_form():
    p, sigma2 = 2.0, 0.3
    h = _crandn(6, 1, 8, seed=5)
    norm = torch.linalg.vector_norm(h, dim=-1, keepdim=True)  # [6, 1, 1]
    v = (math.sqrt(p) * h / norm).transpose(1, 2)  # MRT: v = sqrt(P) h / ||h||
    want = torch.log2(1 + norm.squeeze(-1).square() * p / sigma2)
    torch.testing.assert_close(user_rates(h, v, sigma2), want)
    torch.testing.assert_close(sum_rate(h, v, sigma2), want.squeeze(-1))


@pytest.mark.parametrize("dtype", [torch.complex64, torch.complex128])
def test_zero_forcing_has_no_interference(dtype):
    b, n_users, n_tx, sigma2 = 4, 3, 6, 0.2
    h = _crandn(b, n_users, n_tx, seed=6, dtype=dtype)
    a = h.conj()  # gain matrix G = conj(h) @ v; ZF makes it diagonal
    v = a.mH @ torch.linalg.inv(a @ a.mH)
    v = v / torch.linalg.vector_norm(v, dim=1, keepdim=True)  # unit-norm columns
    got = sinr(h, v, sigma2)
    gain = torch.diagonal(h.conj() @ v, dim1=-2, dim2=-1).abs().square()
    torch.testing.assert_close(got, gain / sigma2)
    assert got.dtype == h.real.dtype


def test_high_sinr_keeps_interference_below_one_ulp_of_signal():
    # Interference and noise are both ~1e-9 of the signal, below float32 resolution. Summing
    # only the off-diagonal terms keeps them; "total - signal" would round them away.
    h = torch.eye(2, dtype=torch.complex64).expand(1, 2, 2)
    v = torch.tensor([[[1.0, 3e-5], [3e-5, 1.0]]], dtype=torch.complex64)
    got = sinr(h, v, 1e-9)
    want = 1.0 / (torch.tensor(3e-5, dtype=torch.float32) ** 2 + 1e-9)
    torch.testing.assert_close(got, want.expand(1, 2), rtol=1e-5, atol=0.0)


def test_noise_broadcasting():
    h = _crandn(2, 3, 4, seed=7)
    v = _crandn(2, 4, 3, seed=8)
    per_user = torch.tensor([0.1, 0.5, 2.0], dtype=torch.float64)
    full = per_user.expand(2, 3)
    torch.testing.assert_close(sinr(h, v, per_user), sinr(h, v, full))
    per_sample = torch.tensor([[0.3], [0.7]], dtype=torch.float64)
    torch.testing.assert_close(sinr(h, v, per_sample), sinr(h, v, per_sample.expand(2, 3)))
    torch.testing.assert_close(sinr(h, v, 0.4), sinr(h, v, torch.tensor(0.4)))


def test_cellfree_layouts():
    b, i, q, m = 2, 3, 4, 2
    h4 = _crandn(b, i, q, m, seed=9)
    v4 = _crandn(b, i, q, m, seed=10)  # per-user beamformers v_i^q
    h = flatten_cellfree(h4)
    v = flatten_cellfree_precoder(v4)
    assert h.shape == (b, i, q * m) and v.shape == (b, q * m, i)
    # Paper stacking: h_i = [h_i^1; ...; h_i^Q] so h_i^H v_j = sum_q (h_i^q)^H v_j^q.
    per_ap = torch.einsum("biqm,bjqm->bij", h4.conj(), v4)
    torch.testing.assert_close(h.conj() @ v, per_ap)
    assert torch.equal(h[:, 1, 2 * m:3 * m], h4[:, 1, 2])
    assert torch.equal(v[:, 2 * m:3 * m, 1], v4[:, 1, 2])
    # Round trip, and 4-D inputs are accepted directly.
    assert torch.equal(unflatten_cellfree(v, q), v4)
    torch.testing.assert_close(sinr(h4, v4, 0.5), sinr(h, v, 0.5))
    torch.testing.assert_close(sinr(h4, v, 0.5), sinr(h, v4, 0.5))


def test_gradients_flow_to_precoders():
    h = _crandn(2, 3, 4, seed=11, dtype=torch.complex64)
    v = _crandn(2, 4, 3, seed=12, dtype=torch.complex64).requires_grad_(True)
    loss = -sum_rate(h, v, 1.0).mean()
    loss.backward()
    assert v.grad is not None and bool(torch.isfinite(torch.view_as_real(v.grad)).all())
    # A zero precoder has zero gain; the squared-magnitude form keeps the gradient finite.
    v0 = torch.zeros(2, 4, 3, dtype=torch.complex64, requires_grad=True)
    sum_rate(h, v0, 1.0).sum().backward()
    assert bool(torch.isfinite(torch.view_as_real(v0.grad)).all())


def test_mixed_precision_promotes():
    h = _crandn(1, 2, 3, seed=13, dtype=torch.complex64)
    v = _crandn(1, 3, 2, seed=14, dtype=torch.complex128)
    assert sinr(h, v, 1.0).dtype == torch.float64


@pytest.mark.parametrize("h, v, noise, match", [
    (_crandn(2, 3, 4), _crandn(2, 5, 3), 1.0, r"v: expected shape \[batch=2, n_tx=4, n_users=3\].*got \[2, 5, 3\]"),
    (_crandn(2, 3, 4), _crandn(2, 4, 2), 1.0, r"n_users=3.*got \[2, 4, 2\]"),
    (_crandn(2, 3, 4), _crandn(1, 4, 3), 1.0, r"batch=2.*got \[1, 4, 3\]"),
    (_crandn(2, 3, 4).real, _crandn(2, 4, 3), 1.0, "h: expected a complex array"),
    (_crandn(2, 3, 4), _crandn(2, 4, 3).real, 1.0, "v: expected a complex array"),
    (_crandn(3, 4), _crandn(4, 3), 1.0, "h: expected a 3-D or 4-D array"),
    (torch.full((2, 3, 4), complex("nan"), dtype=torch.complex128), _crandn(2, 4, 3), 1.0, "h: contains NaN"),
    (_crandn(2, 3, 4), torch.full((2, 4, 3), complex("inf"), dtype=torch.complex128), 1.0, "v: contains NaN"),
    (_crandn(2, 3, 4), _crandn(2, 4, 3), 0.0, "noise_power: expected a finite number > 0"),
    (_crandn(2, 3, 4), _crandn(2, 4, 3), float("nan"), "noise_power"),
    (_crandn(2, 3, 4), _crandn(2, 4, 3), torch.ones(4), r"broadcastable to \[batch=2, n_users=3\], got \[4\]"),
    (_crandn(2, 3, 4), _crandn(2, 4, 3), -torch.ones(3), "noise_power: expected finite values > 0"),
    (_crandn(2, 3, 4), _crandn(2, 4, 3), torch.ones(3, dtype=torch.complex64), "noise_power: expected a real"),
    (_crandn(2, 3, 4), _crandn(2, 4, 3), "loud", "noise_power: expected a float"),
])
def test_validation_errors(h, v, noise, match):
    with pytest.raises(DataError, match=match):
        sum_rate(h, v, noise)


def test_helper_validation():
    with pytest.raises(DataError, match="divisible by n_aps=3"):
        unflatten_cellfree(_crandn(1, 8, 2), 3)
    with pytest.raises(DataError, match="n_aps"):
        unflatten_cellfree(_crandn(1, 8, 2), 0)
    with pytest.raises(DataError, match=r"h: expected a 4-D array"):
        flatten_cellfree(_crandn(1, 8, 2))
    with pytest.raises(DataError, match=r"v: expected a 4-D array"):
        flatten_cellfree_precoder(_crandn(1, 8, 2))
