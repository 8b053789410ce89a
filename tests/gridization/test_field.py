"""GSG / BSG / CSG on field-like data, and beam-pattern search (eq. 31) against brute force."""

import math

import pytest
import torch

from chanlab.channels.beam_patterns import BeamPattern, pattern_family
from chanlab.channels.lscm import LscmPanel, dbm_to_mw, mw_to_dbm
from chanlab.core.errors import ConfigError, DataError
from chanlab.gridization.beam_optimization import measured_coverage, predicted_coverage, search_beam_patterns
from chanlab.gridization.field import FieldGridding, csg_gridding, fit_space_gridization, predict_grid_dbm

PANEL = LscmPanel(n_elevation=10, n_azimuth=12, power_dbm=0.0)
A = PANEL.beam_pattern()


def _field(n_per_grid=20, n_grids=4, seed=0):
    """Four well-separated places, each with one dominant angle: locations, RSRP and the angle of each place."""
    g = torch.Generator().manual_seed(seed)
    angles = torch.randperm(PANEL.n_angles, generator=g)[:n_grids]
    centers = torch.tensor([[0.0, 0.0], [100.0, 0.0], [0.0, 100.0], [100.0, 100.0]])[:n_grids]
    labels = torch.arange(n_grids).repeat_interleave(n_per_grid)
    pos = torch.cat([centers[labels] + torch.randn(len(labels), 2, generator=g), torch.full((len(labels), 1), 1.5)], 1)
    caps = torch.zeros(len(labels), PANEL.n_angles, dtype=torch.float64)
    caps[torch.arange(len(labels)), angles[labels]] = 1e-9 * (1 + 0.05 * torch.rand(len(labels), generator=g, dtype=torch.float64))
    rsrp = mw_to_dbm(caps @ A.T).float()
    return pos, rsrp, labels, angles


@pytest.mark.parametrize("method", ["gsg-omp", "gsg-nomp", "gsg-wnomp", "bsg-nomp", "bsg-wnomp"])
def test_space_gridization_recovers_places_and_predicts_their_rsrp(method):
    pos, rsrp, labels, angles = _field()
    fit = fit_space_gridization(method, pos, rsrp, A, n_grids=4, sparsity=1, seed=0)
    # each found grid is one place
    for k in range(4):
        assert labels[fit.labels == k].unique().numel() == 1
    pred = fit.predict_dbm(A)
    truth = torch.stack([rsrp[fit.labels == k].double().mean(0) for k in range(4)])
    assert (pred - truth).abs().max() < 0.5
    # a new sample near place 2 lands in place 2's grid
    new_pos, new_rsrp = pos[labels == 2][:3] + 0.5, rsrp[labels == 2][:3]
    assert (fit.assign(new_pos, new_rsrp) == fit.labels[labels == 2][0]).all()


def test_predict_grid_dbm_clips_to_the_report_range():
    caps = torch.zeros(2, PANEL.n_angles, dtype=torch.float64)
    caps[1, 0] = 1.0
    out = predict_grid_dbm(caps, A)
    assert (out[0] == -156.0).all() and out.max() <= -31.0


def test_csg_gridding_uses_codewords_for_grids_without_samples():
    class Fitted:
        grid_sizes_ = torch.tensor([3, 0])
        labels_ = torch.tensor([0, 0, 0])

        def grid_centers(self):
            return torch.ones(2, 5, dtype=torch.float64)

        def grid_caps(self):
            return torch.zeros(2, 5, dtype=torch.float64) + 7

        def assign(self, r):
            return torch.zeros(len(r), dtype=torch.long)

    fg = csg_gridding("csg-pida", Fitted())
    torch.testing.assert_close(fg.grid_caps[0], torch.full((5,), 7.0, dtype=torch.float64))
    torch.testing.assert_close(fg.grid_caps[1], torch.ones(5, dtype=torch.float64))


def test_predicted_coverage_by_hand_and_search_is_brute_force_argmax():
    pos, rsrp, labels, angles = _field()
    caps = torch.zeros(4, PANEL.n_angles, dtype=torch.float64)
    caps[torch.arange(4), angles] = 1e-9
    manual = mw_to_dbm(caps @ A.T).clamp(-156, -31).max(1).values.mean()
    assert predicted_coverage(caps, A) == pytest.approx(float(manual))
    fam = pattern_family((-4.0, 0.0, 4.0), (-10.0, 0.0, 10.0), (1.0,), (1.0,))
    of = lambda p: p.apply(PANEL).beam_pattern()  # noqa: E731
    p_max = float(A.sum(1).max())
    res = search_beam_patterns(caps, fam, of, p_max=p_max)
    from chanlab.channels.beam_patterns import power_limited

    brute = [predicted_coverage(caps, power_limited(of(p), p_max)) for p in fam]
    assert res.best == max(range(len(fam)), key=brute.__getitem__)
    torch.testing.assert_close(res.predicted, torch.tensor(brute, dtype=torch.float64))
    assert (res.power_scale <= 1).all()


def test_measured_coverage_by_hand():
    y = torch.tensor([[-80.0, -90.0], [-84.0, -88.0], [-70.0, -75.0]])
    # grid 0: means (-82, -89) -> best -82; grid 1 empty; grid 2: best -70
    assert measured_coverage(y, torch.tensor([0, 0, 2]), 3) == pytest.approx(-76.0)


def test_validation():
    with pytest.raises(ConfigError):
        fit_space_gridization("xsg-omp", torch.zeros(5, 3), torch.zeros(5, 32), A, n_grids=2, sparsity=1, seed=0)
    fg = FieldGridding("gsg-omp", torch.zeros(1, dtype=torch.long), torch.zeros(1, 7), lambda p, r: None)
    with pytest.raises(DataError):
        fg.predict_dbm(A)
    with pytest.raises(ConfigError):
        predicted_coverage(torch.zeros(2, PANEL.n_angles), A)
    with pytest.raises(ConfigError):
        search_beam_patterns(torch.ones(2, PANEL.n_angles), [], lambda p: A, p_max=1.0)
