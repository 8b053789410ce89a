"""Beam-pattern changes and the per-beam power limit."""

import pytest
import torch

from chanlab.channels.beam_patterns import WALKING_TEST_PATTERNS, BeamPattern, pattern_family, power_limited
from chanlab.channels.lscm import LscmPanel
from chanlab.core.errors import ConfigError

PANEL = LscmPanel(n_elevation=12, n_azimuth=16)


def test_identity_pattern_keeps_the_panel():
    assert BeamPattern().apply(PANEL) == PANEL


def test_pattern_moves_tilts_and_azimuths():
    p = BeamPattern(tilt_offset_deg=2.0, azimuth_offset_deg=-5.0, tilt_spread=0.5, azimuth_spread=2.0).apply(PANEL)
    assert p.beam_tilts_deg == tuple(2.0 + 0.5 * t for t in PANEL.beam_tilts_deg)
    assert p.beam_azimuths_deg == tuple(-5.0 + 2.0 * a for a in PANEL.beam_azimuths_deg)
    assert p.n_beams == PANEL.n_beams


def test_walking_test_patterns_are_distinct_and_start_with_the_configured_one():
    assert WALKING_TEST_PATTERNS[0] == BeamPattern()
    assert len(set(WALKING_TEST_PATTERNS)) == len(WALKING_TEST_PATTERNS) == 10
    a = [p.apply(PANEL).beam_pattern() for p in WALKING_TEST_PATTERNS[:3]]
    assert not torch.allclose(a[0], a[1]) and not torch.allclose(a[0], a[2])


def test_pattern_family_is_the_product():
    fam = pattern_family((0.0, 1.0), (0.0,), (1.0, 1.2), (1.0,))
    assert len(fam) == 4 and BeamPattern() in fam


def test_power_limited_enforces_the_limit_and_leaves_weaker_beams():
    a = PANEL.beam_pattern()
    sums = a.sum(1)
    p_max = float(sums.median())
    limited = power_limited(a, p_max)
    assert (limited.sum(1) <= p_max * (1 + 1e-12)).all()
    weak = sums <= p_max
    torch.testing.assert_close(limited[weak], a[weak])


def test_pattern_validation():
    with pytest.raises(ConfigError):
        BeamPattern(tilt_spread=0.0)
    with pytest.raises(ConfigError):
        BeamPattern(azimuth_offset_deg=90.0)
    with pytest.raises(ConfigError):
        power_limited(torch.ones(2, 3), 0.0)
