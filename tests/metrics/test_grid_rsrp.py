"""Eq. (34): Active MAE, Overall MAE and active ratio, by hand."""

import pytest
import torch

from chanlab.core.errors import DataError
from chanlab.metrics.grid_rsrp import grid_mean_dbm, grid_rsrp_errors


def test_grid_mean_dbm_and_counts():
    y = torch.tensor([[-80.0, -90.0], [-82.0, -94.0], [-70.0, -71.0]])
    mean, counts = grid_mean_dbm(y, torch.tensor([0, 0, 2]), 3)
    torch.testing.assert_close(mean, torch.tensor([[-81.0, -92.0], [0.0, 0.0], [-70.0, -71.0]], dtype=torch.float64))
    assert counts.tolist() == [2, 0, 1]


def test_errors_by_hand():
    y = torch.tensor([[-80.0, -90.0], [-82.0, -94.0], [-70.0, -71.0]])
    pred = torch.tensor([[-80.0, -90.0], [-100.0, -60.0], [-72.0, -71.0]])
    e = grid_rsrp_errors(pred, y, torch.tensor([0, 0, 2]))
    per_grid = [(1 + 2) / 2, (100 + 60) / 2, 1.0]          # the empty grid's surrogate is 0 dBm
    assert e["active_mae"] == pytest.approx((per_grid[0] + per_grid[2]) / 2)
    assert e["overall_mae"] == pytest.approx(sum(per_grid) / 3)
    assert e["active_ratio"] == pytest.approx(2 / 3)


def test_validation():
    with pytest.raises(DataError, match="finite"):
        grid_rsrp_errors(torch.full((2, 2), float("-inf")), torch.zeros(1, 2), torch.tensor([0]))
    with pytest.raises(DataError, match="grid indices"):
        grid_mean_dbm(torch.zeros(2, 2), torch.tensor([0, 5]), 3)
    with pytest.raises(DataError, match="beams"):
        grid_rsrp_errors(torch.zeros(2, 3), torch.zeros(1, 2), torch.tensor([0]))
