import os

import numpy as np
import pytest

from chanlab.channels import raytracing
from chanlab.channels.raytracing import (RtSite, jitter_route, outdoor_mask, route_loop, rt_status,
                                         trace_paths)
from chanlab.core.errors import ConfigError, DataError

RT_OK, RT_REASON = rt_status()
needs_rt = pytest.mark.skipif(not RT_OK, reason=f"ray tracing unavailable: {RT_REASON}")

SPEED_OF_LIGHT = 299_792_458.0
# Open points of Marienplatz in front of the default BS, with a free line of sight to it.
SQUARE = np.array([[30.0, 80.0, 1.5], [0.0, 90.0, 1.5], [60.0, 75.0, 1.5], [-10.0, 70.0, 1.5],
                   [20.0, 120.0, 1.5]])
TOWN_HALL_ROOF_XY = (20.0, 0.0)     # inside the New Town Hall, 16 m behind the BS
STREET_XY = (20.0, 60.0)            # on the square


# ---------------------------------------------------------------- always runs

def test_rt_status_and_unavailable_error(monkeypatch):
    ok, reason = rt_status()
    assert isinstance(ok, bool) and isinstance(reason, str) and reason.strip()
    assert rt_status() is rt_status()                                    # cached
    monkeypatch.setattr(raytracing, "_STATUS", (False, "sionna-rt is not installed (pip install chanlab[rt])"))
    with pytest.raises(ConfigError, match="pip install chanlab"):
        trace_paths(SQUARE[:1], show_progress=False)
    with pytest.raises(ConfigError, match="not available"):
        outdoor_mask(np.zeros((1, 2)))


def test_probe_without_llvm_or_cuda_does_not_import_drjit(monkeypatch, tmp_path):
    monkeypatch.delenv("DRJIT_LIBLLVM_PATH", raising=False)
    monkeypatch.setattr(raytracing, "LLVM_PATH", str(tmp_path / "missing-libLLVM.so"))
    monkeypatch.setattr(raytracing, "_cuda_present", lambda: False)
    monkeypatch.setattr(raytracing.importlib.metadata, "version", lambda name: "2.2.0")
    ok, reason = raytracing._probe()
    assert not ok and "libllvm19" in reason and "DRJIT_LIBLLVM_PATH" not in os.environ


def test_input_validation_before_ray_tracing():
    with pytest.raises(DataError, match=r"\[S, 3\]"):
        trace_paths(np.zeros((4, 2)), show_progress=False)
    with pytest.raises(DataError, match="NaN"):
        trace_paths(np.array([[0.0, np.nan, 1.5]]), show_progress=False)
    with pytest.raises(DataError):
        trace_paths(np.array([["a", "b", "c"]]), show_progress=False)
    for bad in ({"max_paths": 0}, {"max_depth": -1}, {"chunk": 0}, {"carrier_frequency": -1.0},
                {"seed": 1.5}, {"show_progress": 1}, {"site": "munich"},
                {"site": RtSite(route_radius=(100.0, 50.0))}):
        with pytest.raises(ConfigError):
            trace_paths(SQUARE[:1], **bad)
    with pytest.raises(DataError, match=r"\[n, 2\]"):
        outdoor_mask(np.zeros((3, 3)))
    with pytest.raises(ConfigError):
        route_loop(n_points=1)
    with pytest.raises(ConfigError):
        jitter_route(SQUARE, -1.0, seed=0)


# ---------------------------------------------------------------- needs Sionna RT

@pytest.fixture(scope="module")
def square_paths():
    return trace_paths(SQUARE, show_progress=False)


@needs_rt
def test_los_path_matches_geometry_and_free_space(square_paths):
    bs = np.asarray(RtSite().bs_position)
    d = SQUARE - bs
    dist = np.linalg.norm(d, axis=1)
    lam = SPEED_OF_LIGHT / 3.5e9
    # The strongest path is the LoS path: geometric angles, free-space gain.
    np.testing.assert_allclose(square_paths["azimuth"][:, 0], np.arctan2(d[:, 1], d[:, 0]), atol=1e-4)
    np.testing.assert_allclose(square_paths["zenith"][:, 0], np.arccos(d[:, 2] / dist), atol=1e-4)
    err_db = 10 * np.log10(square_paths["power"][:, 0] / (lam / (4 * np.pi * dist)) ** 2)
    assert np.all(np.abs(err_db) < 1.0), err_db
    assert np.all(square_paths["n_paths"] >= 2)                         # LoS + reflections


@needs_rt
def test_shapes_sorting_and_padding(square_paths):
    p = square_paths
    assert set(p) == {"power", "zenith", "azimuth", "n_paths"}
    for key in ("power", "zenith", "azimuth"):
        assert p[key].shape == (len(SQUARE), 24) and p[key].dtype == np.float64
    assert p["n_paths"].shape == (len(SQUARE),) and p["n_paths"].dtype == np.int64
    assert np.all(np.diff(p["power"], axis=1) <= 0)
    slot = np.arange(24)[None, :]
    pad = slot >= p["n_paths"][:, None]
    assert np.all(p["power"][pad] == 0) and np.all(p["zenith"][pad] == 0) and np.all(p["azimuth"][pad] == 0)
    assert np.all(p["power"][~pad] > 0)
    assert np.all((p["zenith"][~pad] >= 0) & (p["zenith"][~pad] <= np.pi))
    assert np.all(np.abs(p["azimuth"][~pad]) <= np.pi)
    # Truncation keeps the strongest paths.
    few = trace_paths(SQUARE, max_paths=2, show_progress=False)
    assert few["power"].shape == (len(SQUARE), 2)
    np.testing.assert_array_equal(few["power"], p["power"][:, :2])
    np.testing.assert_array_equal(few["n_paths"], np.minimum(p["n_paths"], 2))


@needs_rt
def test_deterministic_and_independent_of_chunking(square_paths):
    again = trace_paths(SQUARE, show_progress=False)
    chunked = trace_paths(SQUARE, chunk=2, show_progress=False)
    for key in square_paths:
        np.testing.assert_array_equal(again[key], square_paths[key])
        np.testing.assert_array_equal(chunked[key], square_paths[key])
    empty = trace_paths(np.zeros((0, 3)), show_progress=False)
    assert empty["power"].shape == (0, 24) and empty["n_paths"].shape == (0,)


@needs_rt
def test_outdoor_mask_building_vs_street():
    mask = outdoor_mask(np.array([TOWN_HALL_ROOF_XY, STREET_XY, (1e5, 0.0)]))
    assert mask.dtype == bool and mask.tolist() == [False, True, False]
    assert outdoor_mask(SQUARE[:, :2]).all()


@needs_rt
def test_route_loop_closed_outdoor_in_radius():
    site = RtSite()
    route = route_loop(site, 200, seed=0)
    assert route.shape == (200, 3)
    np.testing.assert_array_equal(route, route_loop(site, 200, seed=0))
    assert not np.array_equal(route, route_loop(site, 200, seed=1))
    assert np.all(route[:, 2] == site.ue_height)
    assert outdoor_mask(route[:, :2]).all()
    rel = route[:, :2] - np.asarray(site.bs_position[:2])
    r = np.hypot(rel[:, 0], rel[:, 1])
    assert r.min() >= site.route_radius[0] and r.max() <= site.route_radius[1]
    steps = np.hypot(*np.diff(np.vstack([route, route[:1]])[:, :2], axis=0).T)   # includes last -> first
    assert steps.max() < 1.5 * np.median(steps) and steps.min() > 0.3 * np.median(steps)
    az = np.unwrap(np.arctan2(rel[:, 1], rel[:, 0]))
    assert abs(az[-1] - az[0] + (az[1] - az[0])) == pytest.approx(2 * np.pi, abs=0.2)   # one turn
    off = np.angle(np.exp(1j * (np.arctan2(rel[:, 1], rel[:, 0]) - np.radians(site.bs_azimuth_deg))))
    assert np.mean(np.abs(off) <= np.radians(60)) > 0.2


@needs_rt
def test_jitter_route_stays_outdoors():
    route = route_loop(RtSite(), 200, seed=0)
    moved = jitter_route(route, 3.0, seed=7)
    assert moved.shape == route.shape and outdoor_mask(moved[:, :2]).all()
    np.testing.assert_array_equal(moved[:, 2], route[:, 2])
    assert 1.0 < np.abs(moved[:, :2] - route[:, :2]).std() < 5.0
    np.testing.assert_array_equal(moved, jitter_route(route, 3.0, seed=7))
    np.testing.assert_array_equal(jitter_route(route, 0.0, seed=7), route)
    with pytest.raises(DataError, match="outdoors"):
        jitter_route(np.array([[*TOWN_HALL_ROOF_XY, 1.5]]), 1.0, seed=0)
