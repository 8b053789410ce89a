"""Uniform quantizer with a soft-rounding surrogate gradient (the "Round" baseline).

Levels and indices are checked against a hand computation and a brute-force nearest level,
the gradient against the closed-form derivative of the smooth staircase (and autograd of it),
the bitstream by a round trip (hypothesis).
"""

import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from chanlab.core.errors import BitstreamError, ConfigError, DataError
from chanlab.quant.uniform import UniformQuantizer, soft_round, soft_round_derivative

pytestmark = pytest.mark.usefixtures("one_thread")


def test_levels_and_indices_by_hand():
    q = UniformQuantizer(4, 2)                                  # levels 0, 1/3, 2/3, 1
    assert torch.equal(q.levels(torch.float64), torch.tensor([0, 1 / 3, 2 / 3, 1], dtype=torch.float64))
    # σ(z) = 0.01, 0.3, 0.6, 0.99 → x = 3σ = 0.03, 0.9, 1.8, 2.97 → k = 0, 1, 2, 3
    s = torch.tensor([[0.01, 0.3, 0.6, 0.99]], dtype=torch.float64)
    z = torch.logit(s)
    z_q, idx = q(z)
    assert torch.equal(idx, torch.tensor([[0, 1, 2, 3]]))
    assert torch.equal(z_q, torch.tensor([[0, 1 / 3, 2 / 3, 1]], dtype=torch.float64))
    assert idx.dtype == torch.int64 and z_q.dtype == torch.float64
    assert torch.equal(q.symbol_bits, torch.full((4,), 2, dtype=torch.int64)) and q.total_bits == 8
    # Saturated sigmoid and far outliers stay in range.
    _, idx = q(torch.tensor([[-1e4, 1e4, 0.0, -0.0]]))
    assert idx.tolist() == [[0, 3, 2, 2]]                        # σ(0) = ½ → x = 1.5 → round half up


@pytest.mark.parametrize("bits", [1, 3, 5])
def test_indices_are_the_nearest_level(bits):
    gen = torch.Generator().manual_seed(bits)
    q = UniformQuantizer(6, bits)
    z = torch.randn(400, 6, generator=gen, dtype=torch.float64) * 3
    z_q, idx = q(z)
    lv = q.levels(torch.float64)
    brute = (torch.sigmoid(z)[..., None] - lv).abs().argmin(-1)
    assert torch.equal(idx, brute)
    assert torch.equal(z_q, lv[idx])
    assert int(idx.min()) >= 0 and int(idx.max()) < 2 ** bits


def test_soft_round_staircase():
    x = torch.linspace(-3, 5, 801, dtype=torch.float64)
    r = soft_round(x, 4.0)
    n = torch.arange(-3, 6, dtype=torch.float64)
    assert torch.allclose(soft_round(n, 4.0), n, atol=1e-12)                # passes through integers
    assert bool((r[1:] >= r[:-1]).all())                                    # monotone
    # Mean slope over a unit interval is 1 (trapezoid rule on a fine grid).
    xs = torch.linspace(0, 1, 20001, dtype=torch.float64)
    assert math.isclose(float(torch.trapezoid(soft_round_derivative(xs, 4.0), xs)), 1.0, rel_tol=1e-6)
    # Slopes at a level and at a decision threshold (module docstring).
    assert math.isclose(float(soft_round_derivative(torch.tensor(2.0), 4.0)), 4 / math.sinh(4), rel_tol=1e-6)
    assert math.isclose(float(soft_round_derivative(torch.tensor(2.5), 4.0)), 2 / math.tanh(2), rel_tol=1e-6)
    # The closed-form derivative is autograd's.
    xg = x.clone().requires_grad_(True)
    soft_round(xg, 4.0).sum().backward()
    assert torch.allclose(xg.grad, soft_round_derivative(x, 4.0), atol=1e-12)


@pytest.mark.parametrize("bits,alpha", [(2, 4.0), (4, 1.5), (1, 8.0)])
def test_surrogate_gradient(bits, alpha):
    gen = torch.Generator().manual_seed(7)
    q = UniformQuantizer(5, bits, alpha=alpha)
    z = (torch.randn(64, 5, generator=gen, dtype=torch.float64) * 2).requires_grad_(True)
    g = torch.randn(64, 5, generator=gen, dtype=torch.float64)
    z_q, idx = q(z)
    (z_q * g).sum().backward()
    s = torch.sigmoid(z.detach())
    x = s * (2 ** bits - 1)
    expect = g * soft_round_derivative(x, alpha) * s * (1 - s)
    assert torch.allclose(z.grad, expect, rtol=1e-10, atol=1e-14)
    assert bool(torch.isfinite(z.grad).all()) and bool((z.grad != 0).all())
    # Not the identity STE through the sigmoid (which would be g σ'(z)).
    assert not torch.allclose(z.grad, g * s * (1 - s), rtol=1e-3)


def test_loss_is_zero():
    q = UniformQuantizer(3, 3)
    z = torch.randn(8, 3, requires_grad=True)
    z_q, idx = q(z)
    loss = q.loss(z, idx)
    assert loss.shape == () and float(loss) == 0.0 and loss.dtype == z.dtype


@settings(max_examples=30, deadline=None)
@given(seed=st.integers(0, 2**31 - 1), n=st.integers(1, 20), m=st.integers(1, 17), bits=st.integers(1, 16),
       crc=st.booleans())
def test_compress_round_trip(seed, n, m, bits, crc):
    gen = torch.Generator().manual_seed(seed)
    q = UniformQuantizer(m, bits)
    z = torch.randn(n, m, generator=gen) * 4
    z_q, idx = q(z)
    streams = q.compress(z, crc=crc)
    assert len(streams) == n and all(len(s) == (m * bits + 7) // 8 + (2 if crc else 0) for s in streams)
    out = q.decompress(streams, crc=crc)
    assert torch.equal(out, z_q.detach())                         # bit-exact, float32
    assert torch.equal(q.dequantize(idx), z_q.detach())


def test_decompress_rejects_bad_streams():
    q = UniformQuantizer(5, 3)
    streams = q.compress(torch.randn(2, 5))
    with pytest.raises(BitstreamError):
        q.decompress([streams[0][:-1]])


def test_validation():
    for bad in [dict(n_outputs=0, bits=2), dict(n_outputs=3, bits=0), dict(n_outputs=3, bits=17),
                dict(n_outputs=3, bits=2, alpha=0.0), dict(n_outputs=3, bits=2, alpha=float("nan"))]:
        with pytest.raises(ConfigError):
            UniformQuantizer(**bad)
    q = UniformQuantizer(3, 2)
    with pytest.raises(DataError):
        q(torch.randn(4, 2))
    with pytest.raises(DataError):
        q(torch.tensor([[0.0, float("nan"), 1.0]]))
    with pytest.raises(DataError):
        q.dequantize(torch.tensor([[0, 1, 4]]))
    with pytest.raises(DataError):
        q.loss(torch.randn(2, 3), torch.zeros(3, 3, dtype=torch.int64))
