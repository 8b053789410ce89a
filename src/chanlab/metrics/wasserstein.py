"""Wasserstein distance between two equally weighted sets of cluster centers."""

from __future__ import annotations

import numpy as np
import torch
from scipy.optimize import linear_sum_assignment
from scipy.spatial.distance import cdist

from chanlab.core.errors import DataError


def center_wasserstein(a, b, p: float = 2.0) -> float:
    """``W_p`` between two sets of K centers, each weighted 1/K.

    With equal weights and equal sizes an optimal transport plan is a permutation
    (Birkhoff–von Neumann), so ``W_p = (min_σ (1/K) Σ_k ‖a_k − b_σ(k)‖^p)^(1/p)``, found by the
    Hungarian algorithm.

    Args:
        a, b: ``[K, dim]`` centers (tensor or array).
        p: order ≥ 1.

    Returns:
        The distance, in the units of the centers.
    """
    x = a.detach().cpu().double().numpy() if isinstance(a, torch.Tensor) else np.asarray(a, dtype=np.float64)
    y = b.detach().cpu().double().numpy() if isinstance(b, torch.Tensor) else np.asarray(b, dtype=np.float64)
    if x.ndim != 2 or y.ndim != 2:
        raise DataError(f"centers: expected 2-D [K, dim] arrays, got shapes {x.shape} and {y.shape}")
    if x.shape != y.shape:
        raise DataError(f"centers: expected equal shapes (equal weights need equal K), got {x.shape} and {y.shape}")
    if not (np.isfinite(x).all() and np.isfinite(y).all()):
        raise DataError("centers: contain NaN or infinite values")
    if not p >= 1:
        raise DataError(f"p: expected p >= 1, got {p}")
    cost = cdist(x, y) ** p                              # [K, K], without a [K, K, dim] temporary
    rows, cols = linear_sum_assignment(cost)
    return float(cost[rows, cols].mean() ** (1.0 / p))
