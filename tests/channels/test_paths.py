"""Paths → CAPS and RSRP: binning, and the LSCM identity E[RSRP] = A x by Monte Carlo."""

import math

import pytest
import torch

from chanlab.channels.lscm import LscmPanel, angular_grid, beam_pattern_matrix
from chanlab.channels.paths import bin_caps, rsrp_from_paths, wrap_angle
from chanlab.core.errors import DataError

PANEL = LscmPanel(n_elevation=10, n_azimuth=12, phase_error_std=0.4, power_dbm=3.0)


def _on_grid_paths(n_samples=3, n_paths=4, seed=0):
    g = torch.Generator().manual_seed(seed)
    theta, phi = angular_grid(PANEL.n_elevation, PANEL.n_azimuth)
    idx = torch.stack([torch.randperm(theta.numel(), generator=g)[:n_paths] for _ in range(n_samples)])
    power = torch.rand(n_samples, n_paths, generator=g, dtype=torch.float64) + 0.1
    return power, theta[idx], phi[idx], idx


def test_bin_caps_puts_on_grid_paths_in_their_own_angle():
    power, zen, az, idx = _on_grid_paths()
    caps = bin_caps(power, zen, az, n_elevation=PANEL.n_elevation, n_azimuth=PANEL.n_azimuth)
    assert caps.shape == (3, PANEL.n_angles)
    expected = torch.zeros_like(caps).scatter_add_(1, idx, power)
    torch.testing.assert_close(caps, expected)


def test_bin_caps_sums_paths_in_one_bin_and_drops_paths_behind_the_panel():
    zen = torch.tensor([[math.radians(90.0), math.radians(90.4), math.radians(90.0)]])
    az = torch.tensor([[math.radians(1.0), math.radians(2.0), math.radians(135.0)]])
    power = torch.tensor([[1.0, 2.0, 5.0]], dtype=torch.float64)
    caps = bin_caps(power, zen, az, n_elevation=91, n_azimuth=72)
    assert caps.sum() == pytest.approx(3.0)          # the path at 135° has no LSCM angle
    assert int((caps > 0).sum()) == 1


def test_wrap_angle():
    x = torch.tensor([3 * math.pi, -3 * math.pi / 2, 0.5])
    torch.testing.assert_close(wrap_angle(x), torch.tensor([-math.pi, math.pi / 2, 0.5]))


def test_rsrp_from_paths_mean_is_the_beam_pattern_times_the_caps():
    """On-grid paths: the Monte Carlo mean over phase draws tends to A x (eq. 4)."""
    power, zen, az, idx = _on_grid_paths(n_samples=2, n_paths=3)
    caps = bin_caps(power, zen, az, n_elevation=PANEL.n_elevation, n_azimuth=PANEL.n_azimuth)
    a = PANEL.beam_pattern()
    draws = 20000
    mean = rsrp_from_paths(power, zen, az, PANEL.beams(), n_y=PANEL.n_y, n_z=PANEL.n_z,
                           phase_error_std=PANEL.phase_error_std, power_dbm=PANEL.power_dbm, n_draws=draws,
                           generator=torch.Generator().manual_seed(1))
    expected = caps @ a.T
    # the relative standard error of a mean of `draws` draws is at most about 1/sqrt(draws) per beam
    rel = (mean - expected).abs() / expected
    assert rel.max() < 8 / math.sqrt(draws) * math.sqrt(3)


def test_rsrp_from_paths_single_path_no_phase_error_is_deterministic_beam_gain():
    theta, phi = torch.tensor([[1.7]], dtype=torch.float64), torch.tensor([[0.3]], dtype=torch.float64)
    p = torch.tensor([[2.0]], dtype=torch.float64)
    y = rsrp_from_paths(p, theta, phi, PANEL.beams(), n_y=PANEL.n_y, n_z=PANEL.n_z, power_dbm=0.0, n_draws=3)
    a = beam_pattern_matrix(PANEL.beams(), theta[0], phi[0], n_y=PANEL.n_y, n_z=PANEL.n_z)
    torch.testing.assert_close(y, 2.0 * a.T)


def test_path_validation():
    bad = torch.ones(2, 3)
    with pytest.raises(DataError, match="one shape"):
        bin_caps(bad, torch.ones(2, 2), bad, n_elevation=4, n_azimuth=4)
    with pytest.raises(DataError, match="nonnegative"):
        bin_caps(-bad, bad, bad, n_elevation=4, n_azimuth=4)
    with pytest.raises(DataError, match="finite"):
        bin_caps(bad, bad * float("nan"), bad, n_elevation=4, n_azimuth=4)
