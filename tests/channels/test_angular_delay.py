import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from chanlab.channels.angular_delay import (complex_to_real, from_angular_delay, from_unit_interval,
                                            real_to_complex, to_angular_delay, to_unit_interval,
                                            unit_interval_scale)
from chanlab.channels.arrays import ula_response
from chanlab.core.errors import DataError


def _random_csi(batch, n_ant, n_sc, dtype=torch.complex64, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(batch, n_ant, n_sc, dtype=dtype, generator=g)


@settings(max_examples=25, deadline=None)
@given(batch=st.integers(1, 3), n_ant=st.integers(1, 16), n_sc=st.integers(1, 64), seed=st.integers(0, 99))
def test_round_trip_to_float_precision(batch, n_ant, n_sc, seed):
    h = _random_csi(batch, n_ant, n_sc, seed=seed)
    back = from_angular_delay(to_angular_delay(h))
    assert (back - h).abs().max() <= 1e-5 * max(1.0, float(h.abs().max()))


def test_round_trip_double_precision_and_unitary():
    h = _random_csi(4, 8, 32, dtype=torch.complex128)
    h_ad = to_angular_delay(h)
    assert torch.allclose(from_angular_delay(h_ad), h, atol=1e-12)
    assert torch.allclose(h_ad.abs().square().sum((1, 2)), h.abs().square().sum((1, 2)))


def test_single_path_is_a_single_angular_delay_bin():
    # A plane wave from the direction of DFT bin 3 with delay of exactly 5 taps.
    n_ant, n_sc = 16, 64
    sin_theta = 2 * 3 / n_ant
    a = ula_response(torch.tensor(math.asin(sin_theta), dtype=torch.float64), n_ant)
    k = torch.arange(n_sc, dtype=torch.float64)
    freq = torch.exp(-2j * math.pi * k * 5 / n_sc)
    h = (a[:, None] * freq[None, :])[None]
    mag = to_angular_delay(h).abs()[0]
    peak = divmod(int(mag.argmax()), n_sc)
    assert mag.square().max() / mag.square().sum() > 1 - 1e-9
    assert peak[1] == 5


def test_truncation_zero_pads():
    h = _random_csi(2, 4, 16)
    h_ad = to_angular_delay(h, n_delay=6)
    assert h_ad.shape == (2, 4, 6)
    back = from_angular_delay(h_ad, n_sc=16)
    assert back.shape == h.shape
    # keeping all taps of the truncated channel and re-truncating is the identity
    assert torch.allclose(to_angular_delay(back, 6), h_ad, atol=1e-5)


def test_unit_interval_round_trip_and_range():
    h_ad = to_angular_delay(_random_csi(8, 4, 16), 8)
    s = unit_interval_scale(h_ad)
    x = to_unit_interval(h_ad, s)
    assert x.shape == (8, 2, 4, 8)
    assert float(x.min()) >= 0 and float(x.max()) <= 1
    assert math.isclose(max(float(x.max()) - 0.5, 0.5 - float(x.min())), 0.5, rel_tol=1e-6)
    assert torch.allclose(from_unit_interval(x, s), h_ad, atol=1e-6)
    assert torch.equal(real_to_complex(complex_to_real(h_ad)), h_ad)


def test_errors():
    with pytest.raises(DataError, match=r"expected a 3-D array \[batch, n_ant, n_sc\]"):
        to_angular_delay(torch.zeros(4, 4, dtype=torch.complex64))
    with pytest.raises(DataError, match="complex"):
        to_angular_delay(torch.zeros(1, 4, 4))
    with pytest.raises(DataError, match="n_delay"):
        to_angular_delay(torch.zeros(1, 4, 4, dtype=torch.complex64), n_delay=5)
    with pytest.raises(DataError, match="2 channels"):
        from_unit_interval(torch.zeros(1, 3, 4, 4), 1.0)
    nan = torch.full((1, 2, 2), float("nan"), dtype=torch.complex64)
    with pytest.raises(DataError, match="NaN"):
        unit_interval_scale(nan)
