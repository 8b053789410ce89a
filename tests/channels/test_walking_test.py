"""The walking-test dataset (stochastic backend: runs everywhere; the ray-traced one is in test_raytracing)."""

import numpy as np
import pytest
import torch

from chanlab.channels.beam_patterns import WALKING_TEST_PATTERNS, BeamPattern
from chanlab.channels.walking_test import WalkingTestConfig, generate_walking_test, load_walking_test
from chanlab.core.errors import ConfigError

SMALL = WalkingTestConfig(backend="stochastic", n_rounds=3, points_per_round=80, n_elevation=12, n_azimuth=16,
                          n_fading_draws=64, noise_std_db=0.0, report_step_db=0.0)


@pytest.fixture(scope="module")
def walk(tmp_path_factory):
    return generate_walking_test(SMALL, seed=0, cache=tmp_path_factory.mktemp("wt"))


def test_rounds_shapes_and_patterns(walk):
    assert walk.backend == "stochastic" and len(walk.rounds) == 3
    for r, rd in enumerate(walk.rounds):
        assert rd.pattern == WALKING_TEST_PATTERNS[r]
        n = len(rd)
        assert 0 < n <= 80
        assert rd.position.shape == (n, 3) and rd.rsrp_dbm.shape == (n, 32)
        assert rd.power.shape == (n, SMALL.max_paths)
        assert (rd.rsrp_dbm.max(1) >= SMALL.min_rsrp_dbm).all()
    assert walk.caps(0).shape == (len(walk.rounds[0]), 12 * 16)


def test_rounds_walk_nearly_the_same_route_in_the_panel_sector(walk):
    a, b = walk.rounds[0].position, walk.rounds[1].position
    m = min(len(a), len(b))
    assert np.median(np.linalg.norm(a[:m, :2] - b[:m, :2], axis=1)) < 4 * SMALL.jitter_m
    bearing = np.degrees(np.arctan2(a[:, 1], a[:, 0]))           # the fallback's BS is at the origin facing +x
    assert np.abs(bearing).max() <= SMALL.sector_half_width_deg + 5


def test_lscm_predicts_the_reports_from_the_true_caps(walk):
    """With many fading draws and no noise, 10 log10(A x) of the binned CAPS matches the report closely."""
    rd = walk.rounds[1]
    pred = 10 * torch.log10(walk.caps(1) @ walk.beam_pattern(1).T)
    err = (pred - torch.from_numpy(rd.rsrp_dbm).double()).abs()
    assert float(err.median()) < 1.5


def test_cache_hit_and_reload(walk, tmp_path_factory):
    again = generate_walking_test(SMALL, seed=0, cache=walk.path.parent)
    assert again.path == walk.path
    np.testing.assert_array_equal(again.rounds[2].rsrp_dbm, walk.rounds[2].rsrp_dbm)
    loaded = load_walking_test(walk.path)
    assert loaded.config == SMALL and loaded.site["bs_position"] == [0.0, 0.0, 25.0]


def test_simulate_rsrp_under_the_same_pattern_matches_the_round_statistically(walk):
    y = walk.simulate_rsrp(0, BeamPattern(), seed=5)
    assert y.shape == walk.rounds[0].rsrp_dbm.shape
    diff = (y - torch.from_numpy(walk.rounds[0].rsrp_dbm).double()).abs()
    assert float(diff.median()) < 1.5
    half = walk.simulate_rsrp(0, BeamPattern(), seed=5, beam_power_scale=torch.full((32,), 0.5))
    torch.testing.assert_close(half, y - 10 * np.log10(2), atol=1e-9, rtol=0)


def test_config_validation():
    with pytest.raises(ConfigError):
        WalkingTestConfig(backend="magic")
    with pytest.raises(ConfigError):
        WalkingTestConfig(n_rounds=11)


from chanlab.channels.raytracing import rt_status  # noqa: E402

RT_OK, RT_REASON = rt_status()


@pytest.mark.skipif(not RT_OK, reason=f"ray tracing unavailable: {RT_REASON}")
def test_ray_traced_walking_test_small(tmp_path):
    cfg = WalkingTestConfig(backend="rt", n_rounds=2, points_per_round=24, n_elevation=12, n_azimuth=16,
                            n_fading_draws=64, noise_std_db=0.0, report_step_db=0.0)
    walk = generate_walking_test(cfg, seed=0, cache=tmp_path)
    assert walk.backend == "rt" and walk.site["scene"] == "munich"
    rd = walk.rounds[1]
    assert len(rd) > 0 and rd.rsrp_dbm.shape == (len(rd), 32)
    assert (rd.power[:, 0] > 0).all()                      # every kept sample has a path
    pred = 10 * torch.log10(walk.caps(1) @ walk.beam_pattern(1).T)
    assert float((pred - torch.from_numpy(rd.rsrp_dbm).double()).abs().median()) < 2.0
