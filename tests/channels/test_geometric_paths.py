"""The stochastic fallback of ray tracing: closed-form LoS power, spatial consistency, determinism."""

import math

import numpy as np
import pytest

from chanlab.channels.geometric_paths import StochasticSite, loop_route, stochastic_paths, umi_los_probability
from chanlab.core.errors import DataError


def test_umi_los_probability_closed_form():
    assert umi_los_probability(np.array([10.0]))[0] == pytest.approx(1.0)
    d = 100.0
    assert umi_los_probability(np.array([d]))[0] == pytest.approx(18 / d * (1 - math.exp(-d / 36)) + math.exp(-d / 36))


def test_los_path_has_umi_los_power_and_geometric_angles():
    site = StochasticSite(n_clusters=1)
    ue = np.array([[20.0, 5.0, 1.5]])            # 20.6 m: LoS with probability 1
    out = stochastic_paths(ue, site=site, carrier_frequency=3.5e9, max_paths=8)
    d3 = math.dist(ue[0], site.bs_position)
    expected = 10 ** (-(32.4 + 21 * math.log10(d3) + 20 * math.log10(3.5)) / 10)
    los = np.argmin(np.abs(out["azimuth"][0] - math.atan2(5.0, 20.0)) + (out["power"][0] == 0) * 10)
    assert out["power"][0, los] == pytest.approx(expected)
    assert out["zenith"][0, los] == pytest.approx(math.acos((1.5 - 25.0) / d3))


def test_paths_are_sorted_padded_and_deterministic():
    ue = loop_route((0.0, 0.0), (60.0, 150.0), 50)
    a = stochastic_paths(ue, max_paths=40)
    b = stochastic_paths(ue, max_paths=40)
    for k in a:
        np.testing.assert_array_equal(a[k], b[k])
    assert a["power"].shape == (50, 40)
    assert (np.diff(a["power"], axis=1) <= 0).all()
    assert (a["n_paths"] == (a["power"] > 0).sum(1)).all()


def test_nearby_positions_see_similar_paths_and_far_ones_do_not():
    base = np.array([[80.0, 20.0, 1.5]])
    near = base + [[0.5, 0.0, 0.0]]
    far = np.array([[-60.0, -140.0, 1.5]])
    p = [stochastic_paths(x, max_paths=200)["power"][0] for x in (base, near, far)]
    rel = lambda u, v: np.abs(np.sort(u) - np.sort(v)).sum() / np.sort(u).sum()  # noqa: E731
    assert rel(p[0], p[1]) < 0.1
    assert rel(p[0], p[2]) > 0.5


def test_loop_route_is_closed_even_and_within_radius():
    r = loop_route((10.0, -5.0), (60.0, 180.0), 400, seed=3)
    dist = np.hypot(r[:, 0] - 10.0, r[:, 1] + 5.0)
    assert dist.min() >= 60.0 - 1e-6 and dist.max() <= 180.0 + 1e-6
    steps = np.linalg.norm(np.diff(np.vstack([r, r[:1]])[:, :2], axis=0), axis=1)
    assert steps.max() / steps.mean() < 1.2


def test_validation():
    with pytest.raises(DataError):
        stochastic_paths(np.zeros((3, 2)))
    with pytest.raises(DataError):
        loop_route((0, 0), (100.0, 50.0), 10)
