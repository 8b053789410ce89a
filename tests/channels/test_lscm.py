import math

import pytest
import torch

from chanlab.channels.lscm import (LscmPanel, angular_grid, beam_pattern_matrix, dbm_to_mw, element_gain_3gpp,
                                   lscm_steering, measure_rsrp, mw_to_dbm, sample_rsrp)
from chanlab.core.errors import DataError


def small_panel(sigma=0.4):
    return LscmPanel(n_y=4, n_z=2, beam_azimuths_deg=(-30.0, 0.0, 30.0), beam_tilts_deg=(5.0, 15.0),
                     phase_error_std=sigma, power_dbm=10.0, n_elevation=7, n_azimuth=8)


@pytest.mark.parametrize("sigma", [0.0, 0.4, 1.2])
def test_monte_carlo_mean_rsrp_matches_beam_pattern(sigma):
    """E[P |Bᴴ h|²] over the random phases of eq. (3) equals A x (eq. 4)."""
    panel = small_panel(sigma)
    theta, phi = panel.angles()
    a = panel.beam_pattern()
    g = torch.Generator().manual_seed(0)
    caps = torch.rand(3, panel.n_angles, generator=g, dtype=torch.float64) * (torch.rand(3, panel.n_angles, generator=g) < 0.2)
    caps[:, 0] = 0.5                                       # every sample has at least one path
    draws = sample_rsrp(caps, panel.beams(), theta, phi, n_y=panel.n_y, n_z=panel.n_z,
                        phase_error_std=sigma, power_dbm=panel.power_dbm, n_draws=40000, generator=g)
    expected = caps @ a.T
    mc = draws.mean(1)
    stderr = draws.std(1) / math.sqrt(draws.shape[1])
    assert ((mc - expected).abs() < 5 * stderr + 1e-12).all()


def test_zero_phase_error_gives_plain_beam_gains():
    panel = small_panel(0.0)
    theta, phi = panel.angles()
    b = panel.beams()
    s = lscm_steering(theta, phi, panel.n_y, panel.n_z)
    plain = (s.conj() @ b).abs().square().T * element_gain_3gpp(theta, phi) * float(dbm_to_mw(panel.power_dbm))
    torch.testing.assert_close(panel.beam_pattern(), plain)


def test_large_phase_error_tends_to_isotropic_floor():
    panel = small_panel(6.0)
    theta, phi = panel.angles()
    a = panel.beam_pattern()
    floor = element_gain_3gpp(theta, phi) * float(dbm_to_mw(panel.power_dbm))     # ‖b_m‖ = 1
    torch.testing.assert_close(a, floor.expand_as(a), rtol=1e-6, atol=0)


def test_beams_point_where_they_should():
    panel = LscmPanel(n_elevation=91, n_azimuth=72, phase_error_std=0.0)
    theta, phi = panel.angles()
    a = panel.beam_pattern() / element_gain_3gpp(theta, phi)
    best = a.argmax(1)
    for m, (tilt, az) in enumerate([(t, z) for t in panel.beam_tilts_deg for z in panel.beam_azimuths_deg]):
        assert abs(math.degrees(theta[best[m]]) - (90 + tilt)) <= 2.0 + 1e-9
        assert abs(math.degrees(phi[best[m]]) - az) <= 1.25 + 1e-9


def test_default_panel_shape_and_grid():
    panel = LscmPanel()
    assert (panel.n_beams, panel.n_angles) == (32, 6552)
    theta, phi = angular_grid(91, 72)
    assert theta.shape == (6552,) and float(theta[72]) == pytest.approx(math.radians(2.0))
    assert float(phi[0]) == pytest.approx(math.radians(-88.75))


def test_element_gain_3gpp_limits():
    g = element_gain_3gpp(torch.tensor([math.pi / 2, 0.0]), torch.tensor([0.0, math.pi]))
    assert 10 * math.log10(float(g[0])) == pytest.approx(8.0)
    assert 10 * math.log10(float(g[1])) == pytest.approx(8.0 - 30.0)


def test_dbm_mw_round_trip():
    x = torch.tensor([-120.0, -31.0, 0.0, 23.0], dtype=torch.float64)
    torch.testing.assert_close(mw_to_dbm(dbm_to_mw(x)), x)
    assert float(mw_to_dbm(torch.tensor(0.0))) == pytest.approx(-300.0)


def test_measure_rsrp_quantizes_and_clips():
    mw = dbm_to_mw(torch.tensor([-200.0, -100.4, -99.6, -10.0], dtype=torch.float64))
    out = measure_rsrp(mw)
    assert out.tolist() == [-156.0, -101.0, -100.0, -31.0]
    noisy = measure_rsrp(dbm_to_mw(torch.full((20000,), -90.0, dtype=torch.float64)), noise_std_db=2.0,
                         generator=torch.Generator().manual_seed(1))
    assert (noisy == noisy.round()).all()
    assert float(noisy.mean()) == pytest.approx(-90.5, abs=0.1)          # flooring moves the mean by half a step
    with pytest.raises(DataError):
        measure_rsrp(torch.tensor([-1.0]))


def test_beam_pattern_validates():
    theta, phi = angular_grid(3, 4)
    with pytest.raises(DataError, match="beams"):
        beam_pattern_matrix(torch.ones(5, 2, dtype=torch.complex128), theta, phi, n_y=2, n_z=2)
    with pytest.raises(DataError, match="caps"):
        sample_rsrp(-torch.ones(1, 12), torch.ones(4, 1, dtype=torch.complex128), theta, phi, n_y=2, n_z=2)
