"""Gridization of field measurements (Section V-B): GSG, BSG and CSG-AE fitted on one round, applied to others.

The ten methods of Fig. 10a, each fitted on the training round's samples:

* ``gsg-{omp,nomp,wnomp}`` (geographical space gridization, [5]): K-means on the locations,
  then each grid's CAPS from its mean RSRP by OMP / NOMP / WNOMP.
* ``bsg-{omp,nomp,wnomp}`` (beam space gridization, [8]): the same with K-means on the RSRP
  vectors in dBm.
* ``csg-{naive,detached,asynchronous,pida}``: CSG-AE trained with Algorithm 2, the two
  ablations and PIDA (:mod:`chanlab.gridization.training`); a grid's CAPS is eq. (30), and a
  codeword no training sample chose (eq. 30 is then undefined) uses the codeword itself.

A fitted :class:`FieldGridding` assigns samples of another round as Section V-B-3 says: GSG
and BSG to the nearest training-round grid centre in their own space (the test round's
locations, or its RSRP in dBm), CSG by its encoder and quantizer. It predicts each grid's mean
RSRP under any beam pattern as ``10 log10(A x̄_k)`` (eq. 29), clipped to the report range
(−156 … −31 dBm): a grid predicted below the floor is predicted to report the floor.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch

from chanlab.channels.lscm import RSRP_REPORT_RANGE_DBM, dbm_to_mw, mw_to_dbm
from chanlab.core.errors import ConfigError, DataError
from chanlab.gridization.baselines import grid_mean_rsrp, kmeans, recover_caps

SPACE_METHODS = tuple(f"{space}-{rec}" for space in ("gsg", "bsg") for rec in ("omp", "nomp", "wnomp"))
CSG_SCHEMES = ("naive", "detached", "asynchronous", "pida")
FIELD_METHODS = (*SPACE_METHODS, *(f"csg-{s}" for s in CSG_SCHEMES))


@dataclass
class FieldGridding:
    """A gridization fitted on one round.

    Attributes:
        method: one of :data:`FIELD_METHODS`.
        labels: ``[n_train]`` grid of each training sample.
        grid_caps: ``[K, N]`` float64 CAPS of each grid (the units of the beam pattern).
        assigner: ``(position [n, 3], rsrp_dbm [n, M]) → [n]`` grids of new samples.
    """

    method: str
    labels: torch.Tensor
    grid_caps: torch.Tensor
    assigner: Callable[[torch.Tensor, torch.Tensor], torch.Tensor]

    @property
    def n_grids(self) -> int:
        return self.grid_caps.shape[0]

    def assign(self, position, rsrp_dbm) -> torch.Tensor:
        """Grid of each sample of another round: ``[n]`` int64."""
        return self.assigner(torch.as_tensor(position, dtype=torch.float64), torch.as_tensor(rsrp_dbm))

    def predict_dbm(self, beam_pattern: torch.Tensor) -> torch.Tensor:
        """Grid-mean RSRP under ``beam_pattern`` ``[M', N]`` (eq. 29): ``[K, M']`` dBm in the report range."""
        a = torch.as_tensor(beam_pattern, dtype=torch.float64)
        if a.ndim != 2 or a.shape[1] != self.grid_caps.shape[1]:
            raise DataError(f"beam_pattern: expected [M', N = {self.grid_caps.shape[1]}], got {tuple(a.shape)}")
        return predict_grid_dbm(self.grid_caps, a)


def predict_grid_dbm(grid_caps: torch.Tensor, beam_pattern: torch.Tensor) -> torch.Tensor:
    """``10 log10(A x̄_k)`` for every grid, clipped to the report range: ``[K, N], [M, N] → [K, M]``."""
    mw = grid_caps.double() @ beam_pattern.double().T
    return mw_to_dbm(mw.clamp_min(0.0)).clamp(*RSRP_REPORT_RANGE_DBM)


def _nearest(centers: torch.Tensor) -> Callable[[torch.Tensor], torch.Tensor]:
    return lambda features: torch.cdist(features.double(), centers.double()).argmin(1)


def fit_space_gridization(method: str, position: torch.Tensor, rsrp_dbm: torch.Tensor, beam_pattern: torch.Tensor, *,
                          n_grids: int, sparsity: int, seed: int) -> FieldGridding:
    """GSG or BSG (module docstring) on one round's ``[n, 3]`` locations and ``[n, M]`` RSRP."""
    if method not in SPACE_METHODS:
        raise ConfigError(f"method: expected one of {', '.join(SPACE_METHODS)}, got {method!r}")
    space, recovery = method.split("-")
    y = torch.as_tensor(rsrp_dbm, dtype=torch.float64)
    pos = torch.as_tensor(position, dtype=torch.float64)[:, :2]
    features = pos if space == "gsg" else y
    est = kmeans(features, n_grids, seed)
    caps = recover_caps(beam_pattern, grid_mean_rsrp(dbm_to_mw(y), est.labels, n_grids), sparsity, recovery)
    nearest = _nearest(est.centers)
    if space == "gsg":
        assigner = lambda p, r: nearest(p[:, :2])  # noqa: E731
    else:
        assigner = lambda p, r: nearest(r)  # noqa: E731
    return FieldGridding(method, est.labels, caps, assigner)


def csg_gridding(method: str, gridizer) -> FieldGridding:
    """Wrap a fitted :class:`~chanlab.gridization.gridizer.ChannelSpaceGridizer` as a :class:`FieldGridding`."""
    empty = gridizer.grid_sizes_ == 0
    caps = torch.where(empty[:, None], gridizer.grid_centers(), gridizer.grid_caps())
    return FieldGridding(method, gridizer.labels_, caps, lambda p, r: gridizer.assign(r.float()))
