import pytest
import torch

from chanlab.channels.lscm import mw_to_dbm
from chanlab.channels.synthetic_caps import synthetic_caps
from chanlab.gridization.baselines import BASELINES, grid_mean_rsrp, run_baseline


@pytest.fixture(scope="module")
def data():
    g = torch.Generator().manual_seed(0)
    a = torch.rand(12, 30, generator=g, dtype=torch.float64) ** 3 * 1e-3
    ds = synthetic_caps(n_grids=4, samples_per_grid=15, n_angles=30, sparsity=2, scale=0.1, generator=g)
    return a, ds, mw_to_dbm(ds.rsrp_mw(a)).float()


@pytest.mark.parametrize("name", BASELINES)
def test_every_baseline_runs(data, name):
    a, ds, y = data
    est = run_baseline(name, caps=ds.caps, rsrp_dbm=y, beam_pattern=a, n_grids=4, sparsity=2, seed=0)
    assert est.labels.shape == (60,) and int(est.labels.max()) < 4
    if name == "kmeans-y":
        assert est.centers is None
    else:
        assert est.centers.shape == (4, 30) and torch.isfinite(est.centers).all()
    if "nomp" in name:                 # nonnegative recovery (K-means means may round by an ulp)
        assert float(est.centers.min()) >= -1e-6 * float(est.centers.abs().max())


def test_kmeans_x_finds_well_separated_grids(data):
    a, ds, y = data
    est = run_baseline("kmeans-x", caps=ds.caps, rsrp_dbm=y, beam_pattern=a, n_grids=4, sparsity=2, seed=0)
    from chanlab.metrics.clustering import clustering_scores

    assert clustering_scores(ds.labels, est.labels)["ari"] == pytest.approx(1.0)


def test_grid_mean_rsrp():
    y = torch.tensor([[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]])
    out = grid_mean_rsrp(y, torch.tensor([0, 0, 2]), 3)
    torch.testing.assert_close(out, torch.tensor([[2.0, 3.0], [0.0, 0.0], [5.0, 6.0]], dtype=torch.float64))


def test_unknown_baseline(data):
    a, ds, y = data
    with pytest.raises(KeyError):
        run_baseline("fancy", caps=ds.caps, rsrp_dbm=y, beam_pattern=a, n_grids=4, sparsity=2, seed=0)
