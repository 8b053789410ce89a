"""Baselines of the synthetic benchmark (Section V-A-2): K-means in CAPS or beam space, with sparse recovery.

* ``kmeans-x``: K-means on the true CAPS samples (an oracle: real data never has them);
  centers are the cluster means.
* ``kmeans-y``: K-means on the RSRP in dBm (beam space gridization); no CAPS estimate.
* ``kmeans-y-{omp,nomp,wnomp}``: ``kmeans-y`` grids; each grid's CAPS center is recovered from
  its mean RSRP (linear mW, the mean that eq. 29 makes linear in the CAPS).
* ``{omp,nomp,wnomp}-kmeans-x``: every sample's CAPS is recovered from its RSRP first, then
  K-means on those estimates; centers are the cluster means of the estimates.

Every function returns a :class:`GridEstimate`; sparse recovery is
:mod:`chanlab.classical.sparse_recovery`, batched over all vectors at once.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from sklearn.cluster import KMeans

from chanlab.channels.lscm import dbm_to_mw
from chanlab.classical.sparse_recovery import nomp, omp, wnomp

RECOVERY = {"omp": omp, "nomp": nomp, "wnomp": wnomp}
BASELINES = ("kmeans-x", "kmeans-y", *(f"kmeans-y-{r}" for r in RECOVERY), *(f"{r}-kmeans-x" for r in RECOVERY))


@dataclass
class GridEstimate:
    """Labels ``[n]`` and, where the method estimates CAPS, centers ``[K, N]`` (else None)."""

    labels: torch.Tensor
    centers: torch.Tensor | None


def kmeans(features: torch.Tensor, n_grids: int, seed: int, max_iter: int = 300) -> GridEstimate:
    """scikit-learn K-means (k-means++, one initialization) on ``[n, d]`` features."""
    data = features.detach().cpu().numpy()
    km = KMeans(n_clusters=n_grids, n_init=1, max_iter=max_iter, random_state=seed).fit(
        data.astype(np.float32 if data.dtype == np.float32 else np.float64))
    return GridEstimate(torch.from_numpy(km.labels_.astype(np.int64)), torch.from_numpy(km.cluster_centers_).double())


def grid_mean_rsrp(rsrp_mw: torch.Tensor, labels: torch.Tensor, n_grids: int) -> torch.Tensor:
    """Mean linear RSRP of each grid, ``[K, M]`` (zero for an empty grid)."""
    sums = torch.zeros(n_grids, rsrp_mw.shape[1], dtype=torch.float64).index_add(0, labels, rsrp_mw.double())
    return sums / torch.bincount(labels, minlength=n_grids).clamp_min(1)[:, None]


def recover_caps(beam_pattern: torch.Tensor, rsrp_mw: torch.Tensor, sparsity: int, method: str,
                 chunk: int = 2000) -> torch.Tensor:
    """``[n, M]`` linear RSRP → ``[n, N]`` L-sparse CAPS estimates by OMP / NOMP / WNOMP."""
    fn = RECOVERY[method]
    a = beam_pattern.double()
    return torch.cat([fn(a, part.double(), sparsity) for part in rsrp_mw.split(chunk)])


def run_baseline(name: str, *, caps: torch.Tensor | None, rsrp_dbm: torch.Tensor, beam_pattern: torch.Tensor,
                 n_grids: int, sparsity: int, seed: int, kmeans_y: GridEstimate | None = None) -> GridEstimate:
    """One baseline of :data:`BASELINES` (``caps`` is needed by ``kmeans-x`` only).

    ``kmeans_y`` lets the three ``kmeans-y-*`` variants share one beam-space clustering.
    """
    if name == "kmeans-x":
        return kmeans(caps, n_grids, seed)
    if name == "kmeans-y":
        est = kmeans(rsrp_dbm.double(), n_grids, seed)
        return GridEstimate(est.labels, None)
    rsrp_mw = dbm_to_mw(rsrp_dbm.double())
    if name.startswith("kmeans-y-"):
        labels = (kmeans_y or kmeans(rsrp_dbm.double(), n_grids, seed)).labels
        centers = recover_caps(beam_pattern, grid_mean_rsrp(rsrp_mw, labels, n_grids), sparsity, name[len("kmeans-y-"):])
        return GridEstimate(labels, centers)
    if name.endswith("-kmeans-x"):
        est = recover_caps(beam_pattern, rsrp_mw, sparsity, name[: -len("-kmeans-x")])
        return kmeans(est.float(), n_grids, seed)
    raise KeyError(f"unknown baseline {name!r}; choose from {', '.join(BASELINES)}")
