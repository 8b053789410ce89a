"""Accuracy of estimated cluster centers against the true ones, sample by sample."""

from __future__ import annotations

import torch

from chanlab.core.errors import DataError


def sample_mean_nmse(true_centers: torch.Tensor, true_labels: torch.Tensor, est_centers: torch.Tensor,
                     est_labels: torch.Tensor) -> float:
    """Sample-mean NMSE of the gridization paper, eq. (32).

    For every sample i, the error of the center its estimated grid assigns to it against the
    center of its true grid, ``‖x_(k_i) − x*_(k̂_i)‖₂ / ‖x_(k_i)‖₂``, averaged over samples. As in
    the paper the ratio is of norms (not squared), so an all-zero estimate scores exactly 1.

    Args:
        true_centers: ``[K, N]``; true_labels: ``[n]`` indices into it.
        est_centers: ``[K', N]``; est_labels: ``[n]`` indices into it.

    Returns:
        The mean ratio (float).
    """
    for name, c, lab in (("true", true_centers, true_labels), ("estimated", est_centers, est_labels)):
        if c.ndim != 2 or lab.ndim != 1:
            raise DataError(f"{name} centers/labels: expected [K, N] and [n], got {tuple(c.shape)} and {tuple(lab.shape)}")
        if lab.numel() and (int(lab.min()) < 0 or int(lab.max()) >= c.shape[0]):
            raise DataError(f"{name} labels: expected indices in [0, {c.shape[0]}), got {int(lab.min())}..{int(lab.max())}")
    if true_centers.shape[1] != est_centers.shape[1] or true_labels.shape != est_labels.shape:
        raise DataError(f"expected matching dimensions, got centers {tuple(true_centers.shape)} vs "
                        f"{tuple(est_centers.shape)} and labels {tuple(true_labels.shape)} vs {tuple(est_labels.shape)}")
    t = true_centers.double()
    e = est_centers.to(t.device).double()
    norms = t.norm(dim=1)
    if (norms[true_labels] == 0).any():
        raise DataError("true centers: a sample's true center is zero, so its NMSE is undefined")
    # the error depends only on the (true, estimated) grid pair, so compute it per pair
    pairs, counts = torch.unique(torch.stack([true_labels.to(t.device), est_labels.to(t.device)]), dim=1,
                                 return_counts=True)
    err = (t[pairs[0]] - e[pairs[1]]).norm(dim=1) / norms[pairs[0]]
    return float((err * counts).sum() / counts.sum())
