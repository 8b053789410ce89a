"""Clustering scores of a labelling against the ground truth (scikit-learn's definitions)."""

from __future__ import annotations

import numpy as np
import torch
from sklearn import metrics as skm

from chanlab.core.errors import DataError


def _labels(x, name: str) -> np.ndarray:
    arr = x.detach().cpu().numpy() if isinstance(x, torch.Tensor) else np.asarray(x)
    if arr.ndim != 1:
        raise DataError(f"{name}: expected 1-D integer labels, got shape {arr.shape}")
    if arr.size and not np.issubdtype(arr.dtype, np.integer):
        raise DataError(f"{name}: expected integer labels, got dtype {arr.dtype}")
    return arr


def clustering_scores(labels_true, labels_pred) -> dict[str, float]:
    """ARI, NMI, homogeneity, completeness and V-measure.

    Args:
        labels_true, labels_pred: ``[n_samples]`` integer labels (tensor, array or list).

    Returns:
        ``{"ari", "nmi", "homogeneity", "completeness", "v_measure"}``.
    """
    t = _labels(labels_true, "labels_true")
    p = _labels(labels_pred, "labels_pred")
    if t.shape != p.shape:
        raise DataError(f"labels: expected equal lengths, got {t.shape[0]} and {p.shape[0]}")
    if t.size == 0:
        raise DataError("labels: expected at least one sample")
    h, c, v = skm.homogeneity_completeness_v_measure(t, p)
    return {
        "ari": float(skm.adjusted_rand_score(t, p)),
        "nmi": float(skm.normalized_mutual_info_score(t, p)),
        "homogeneity": float(h),
        "completeness": float(c),
        "v_measure": float(v),
    }
