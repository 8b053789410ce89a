"""RSRP prediction accuracy of a gridization on measurements it was not fitted on (gridization paper, eq. 34)."""

from __future__ import annotations

import torch

from chanlab.core.errors import DataError


def grid_mean_dbm(rsrp_dbm: torch.Tensor, labels: torch.Tensor, n_grids: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Surrogate ground truth of Section V-B-3: the mean of the reported dBm of each grid's samples.

    Args:
        rsrp_dbm: ``[n, M]`` reported RSRP in dBm.
        labels: ``[n]`` grid of each sample, in ``[0, n_grids)``.

    Returns:
        ``(mean [K, M] float64, counts [K] int64)``; an empty grid's mean is 0, the paper's
        "zero real average RSRP" that marks it inactive.
    """
    y = torch.as_tensor(rsrp_dbm).double()
    lab = torch.as_tensor(labels).long()
    if y.ndim != 2 or lab.shape != (y.shape[0],):
        raise DataError(f"rsrp_dbm / labels: expected [n, M] and [n], got {tuple(y.shape)} and {tuple(lab.shape)}")
    if lab.numel() and (int(lab.min()) < 0 or int(lab.max()) >= n_grids):
        raise DataError(f"labels: expected grid indices in [0, {n_grids}), got {int(lab.min())} … {int(lab.max())}")
    counts = torch.bincount(lab, minlength=n_grids)
    sums = torch.zeros(n_grids, y.shape[1], dtype=torch.float64).index_add_(0, lab, y)
    return sums / counts.clamp_min(1)[:, None], counts


def grid_rsrp_errors(predicted_dbm: torch.Tensor, rsrp_dbm: torch.Tensor, labels: torch.Tensor) -> dict[str, float]:
    """Active MAE, Overall MAE and active ratio of eq. (34).

    Each grid's error is the mean over beams of ``|ȳ_k − ŷ_k|`` in dB between the surrogate truth
    (:func:`grid_mean_dbm`) and the prediction. Active MAE averages over the grids that hold at
    least one sample; Overall MAE over all K grids, an inactive grid's surrogate being 0 (so it
    costs about the magnitude of its predicted dBm, which is why a gridization that leaves grids
    empty is punished). Active ratio: the share of active grids.

    Args:
        predicted_dbm: ``[K, M]`` predicted grid-mean RSRP in dBm (finite).
        rsrp_dbm: ``[n, M]`` measurements; labels: ``[n]`` their grids.
    """
    pred = torch.as_tensor(predicted_dbm).double()
    if pred.ndim != 2 or not torch.isfinite(pred).all():
        raise DataError(f"predicted_dbm: expected a finite [K, M] array, got shape {tuple(pred.shape)}")
    truth, counts = grid_mean_dbm(rsrp_dbm, labels, pred.shape[0])
    if truth.shape[1] != pred.shape[1]:
        raise DataError(f"predicted_dbm has {pred.shape[1]} beams, the measurements {truth.shape[1]}")
    per_grid = (truth - pred).abs().mean(1)
    active = counts > 0
    return {"active_mae": float(per_grid[active].mean()) if active.any() else float("nan"),
            "overall_mae": float(per_grid.mean()), "active_ratio": float(active.double().mean())}
