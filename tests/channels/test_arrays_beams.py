import math

import pytest
import torch

from chanlab.channels.arrays import ula_response, upa_response
from chanlab.channels.beams import beam_gains, dft_codebook, dft_directions, upa_dft_codebook
from chanlab.core.errors import DataError


def test_ula_closed_form():
    theta = torch.tensor([0.0, math.pi / 6], dtype=torch.float64)
    a = ula_response(theta, 4, spacing=0.5)
    assert a.shape == (2, 4) and a.dtype == torch.complex128
    assert torch.allclose(a[0], torch.ones(4, dtype=torch.complex128))
    # sin(30°) = 1/2, so the phase step is π/2: 1, j, -1, -j
    assert torch.allclose(a[1], torch.tensor([1, 1j, -1, -1j], dtype=torch.complex128), atol=1e-12)
    assert torch.allclose(ula_response(theta, 4, normalized=True).norm(dim=-1), torch.ones(2, dtype=torch.float64))


def test_upa_is_kronecker_of_vertical_and_horizontal():
    phi, theta = torch.tensor(0.3, dtype=torch.float64), torch.tensor(-0.2, dtype=torch.float64)
    a = upa_response(phi, theta, 3, 4)
    a_v = torch.exp(1j * math.pi * torch.arange(3, dtype=torch.float64) * math.sin(-0.2))
    a_h = torch.exp(1j * math.pi * torch.arange(4, dtype=torch.float64) * math.sin(0.3) * math.cos(-0.2))
    assert torch.allclose(a, torch.kron(a_v, a_h), atol=1e-12)


def test_dft_codebook_orthonormal_and_steered():
    w, sin_theta = dft_codebook(8, dtype=torch.complex128)
    assert torch.allclose(w.mH @ w, torch.eye(8, dtype=torch.complex128), atol=1e-12)
    # Each beam is the normalized steering vector of its own direction: gain 1 there.
    h = ula_response(torch.asin(sin_theta), 8, normalized=True)
    gains = beam_gains(h, w)
    assert torch.allclose(gains.diagonal(), torch.ones(8, dtype=torch.float64), atol=1e-12)
    assert torch.equal(gains.argmax(-1), torch.arange(8))


def test_oversampled_directions_cover_the_circle_evenly():
    u = dft_directions(4, oversampling=4)
    assert u.shape == (16,)
    assert torch.allclose(u[1:] - u[:-1], torch.full((15,), 2 / 16, dtype=torch.float64))
    assert torch.isclose(u.mean(), torch.tensor(0.0, dtype=torch.float64), atol=1e-12)


def test_upa_codebook_unit_columns_and_tilt():
    w = upa_dft_codebook(4, 8, 2, 2, tilt=-0.1)
    assert w.shape == (32, 8 * 16)
    assert torch.allclose(w.norm(dim=0), torch.ones(128), atol=1e-6)
    # Tilting shifts every vertical beam by sin(tilt): the beam with u_v = 1/8, u_h = 1/16 now
    # points at sin θ = 1/8 + sin(-0.1) and sin φ cos θ = 1/16, with full gain there.
    theta = math.asin(1 / 8 + math.sin(-0.1))
    phi = math.asin(1 / 16 / math.cos(theta))
    h = upa_response(torch.tensor(phi), torch.tensor(theta), 4, 8, normalized=True)
    gains = beam_gains(h.to(torch.complex64), w)
    assert gains.max() == pytest.approx(1.0, abs=1e-5)


def test_bad_inputs():
    with pytest.raises(DataError, match="n_ant"):
        ula_response(torch.zeros(2), 0)
    with pytest.raises(DataError, match="spacing"):
        ula_response(torch.zeros(2), 4, spacing=-1.0)
