"""Stochastic fallback for ray tracing: departure paths from fixed scatterer clusters (3GPP UMi levels).

**This is not ray tracing.** Where Sionna RT cannot run, the walking test draws its paths from
a geometric stochastic model with the interface of :func:`chanlab.channels.raytracing.trace_paths`
(``power``, ``zenith``, ``azimuth`` in the global frame, ``n_paths``), so everything downstream is
the same. The model is spatially consistent, which gridization needs (nearby UEs must see nearby
channels):

* **Clusters** are scatterers fixed in space for a given ``scene_seed``: position uniform in a
  square around the BS, height U(2, 30) m, each with a visibility region (a disc of radius
  U(40, 120) m, as in COST 2100) that fades in over its outer 10 m, a shadowing drawn once per
  cluster (σ = 4 dB) and ``rays_per_cluster`` sub-paths at fixed angular offsets around the
  BS → cluster direction (3GPP TR 38.901 Table 7.5-6 UMi: cluster ASD 3°, and 3/8 of a
  typical 10^{0.7}° ZSD ≈ 1.9° in zenith).
* **Cluster power** is the UMi NLoS path loss (TR 38.901 Table 7.4.1-1, ``35.3 log10 d +
  22.4 + 21.3 log10 f_GHz``) over the BS → cluster → UE distance, split over the sub-paths.
* **Line of sight** follows the UMi LoS probability ``min(18/d, 1)(1 − e^{−d/36}) + e^{−d/36}``,
  made spatially consistent by thresholding a smooth random field with a 50 m correlation
  distance (Table 7.6.3.1-2); a LoS path has the UMi LoS path loss ``32.4 + 21 log10 d +
  20 log10 f_GHz``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from chanlab.core.errors import DataError
from chanlab.core.validation import check_int_range


@dataclass(frozen=True)
class StochasticSite:
    """The BS of the stochastic fallback: at the origin, on a 25 m mast, panel facing +x."""

    bs_position: tuple[float, float, float] = (0.0, 0.0, 25.0)
    bs_azimuth_deg: float = 0.0
    route_radius: tuple[float, float] = (60.0, 180.0)
    ue_height: float = 1.5
    n_clusters: int = 80
    area_m: float = 500.0
    rays_per_cluster: int = 4
    scene_seed: int = 0


def _clusters(site: StochasticSite) -> dict[str, np.ndarray]:
    rng = np.random.default_rng([site.scene_seed, 17])
    n, r = site.n_clusters, site.rays_per_cluster
    half = site.area_m / 2
    return {
        "xy": site.bs_position[0:2] + rng.uniform(-half, half, (n, 2)),
        "z": rng.uniform(2.0, 30.0, n),
        "radius": rng.uniform(40.0, 120.0, n),
        "shadow_db": rng.normal(0.0, 4.0, n),
        "d_az": rng.laplace(0.0, math.radians(3.0) / math.sqrt(2), (n, r)),
        "d_zen": rng.laplace(0.0, math.radians(1.9) / math.sqrt(2), (n, r)),
        "field_k": rng.normal(0.0, 1.0 / 50.0, (16, 2)) * 2 * math.pi / math.sqrt(2),
        "field_phase": rng.uniform(0, 2 * math.pi, 16),
    }


def _los_field(xy: np.ndarray, c: dict[str, np.ndarray]) -> np.ndarray:
    """A smooth random field with uniform marginals on (0, 1) (correlation distance ≈ 50 m)."""
    from scipy.special import ndtr

    g = np.sqrt(2.0 / len(c["field_phase"])) * np.cos(xy @ c["field_k"].T + c["field_phase"]).sum(1)
    return ndtr(g)


def umi_los_probability(d2d: np.ndarray) -> np.ndarray:
    """3GPP TR 38.901 Table 7.4.2-1, UMi street canyon."""
    d = np.maximum(d2d, 1e-3)
    return np.minimum(18.0 / d, 1.0) * (1 - np.exp(-d / 36.0)) + np.exp(-d / 36.0)


def stochastic_paths(ue_positions: np.ndarray, *, site: StochasticSite = StochasticSite(),
                     carrier_frequency: float = 3.5e9, max_paths: int = 24) -> dict[str, np.ndarray]:
    """Paths from the BS to every UE position (module docstring).

    Args:
        ue_positions: ``[S, 3]`` global positions in metres.
        max_paths: P, the strongest paths kept per UE.

    Returns:
        ``{"power": [S, P], "zenith": [S, P], "azimuth": [S, P]}`` float64 (global azimuth from +x
        towards +y, zero-power padding, sorted by power) and ``"n_paths": [S]`` int64.
    """
    ue = np.asarray(ue_positions, dtype=np.float64)
    if ue.ndim != 2 or ue.shape[1] != 3 or not np.isfinite(ue).all():
        raise DataError(f"ue_positions: expected finite [S, 3] metres, got shape {ue.shape}")
    check_int_range(max_paths, "max_paths", low=1)
    f_ghz = carrier_frequency / 1e9
    bs = np.asarray(site.bs_position, dtype=np.float64)
    c = _clusters(site)
    cl = np.concatenate([c["xy"], c["z"][:, None]], 1)                                  # [C, 3]

    # cluster paths: departure towards the cluster, power over BS -> cluster -> UE
    to_cl = cl - bs
    d1 = np.linalg.norm(to_cl, axis=1)                                                   # [C]
    d2 = np.linalg.norm(ue[:, None, :] - cl[None], axis=2)                               # [S, C]
    d_h = np.linalg.norm(ue[:, None, :2] - cl[None, :, :2], axis=2)
    visibility = np.clip((c["radius"][None] - d_h) / 10.0, 0.0, 1.0)
    pl_db = 35.3 * np.log10(d1[None] + d2) + 22.4 + 21.3 * np.log10(f_ghz) - c["shadow_db"][None]
    p_cluster = visibility * 10 ** (-pl_db / 10) / site.rays_per_cluster                # [S, C]
    az_c = np.arctan2(to_cl[:, 1], to_cl[:, 0])
    zen_c = np.arccos(np.clip(to_cl[:, 2] / d1, -1, 1))
    s = len(ue)
    power = np.repeat(p_cluster[:, :, None], site.rays_per_cluster, 2).reshape(s, -1)
    azimuth = np.broadcast_to((az_c[:, None] + c["d_az"]).reshape(1, -1), power.shape)
    zenith = np.broadcast_to(np.clip(zen_c[:, None] + c["d_zen"], 0, math.pi).reshape(1, -1), power.shape)

    # line of sight
    to_ue = ue - bs
    d2d = np.linalg.norm(to_ue[:, :2], axis=1)
    d3d = np.linalg.norm(to_ue, axis=1)
    los = _los_field(ue[:, :2], c) < umi_los_probability(d2d)
    p_los = np.where(los, 10 ** (-(32.4 + 21 * np.log10(np.maximum(d3d, 1.0)) + 20 * np.log10(f_ghz)) / 10), 0.0)
    power = np.concatenate([p_los[:, None], power], 1)
    azimuth = np.concatenate([np.arctan2(to_ue[:, 1], to_ue[:, 0])[:, None], azimuth], 1)
    zenith = np.concatenate([np.arccos(np.clip(to_ue[:, 2] / np.maximum(d3d, 1e-9), -1, 1))[:, None], zenith], 1)

    order = np.argsort(-power, axis=1, kind="stable")[:, :max_paths]
    out = {k: np.take_along_axis(v, order, 1) for k, v in
           (("power", power), ("zenith", zenith), ("azimuth", azimuth))}
    if out["power"].shape[1] < max_paths:
        pad = max_paths - out["power"].shape[1]
        out = {k: np.pad(v, ((0, 0), (0, pad))) for k, v in out.items()}
    out["n_paths"] = (out["power"] > 0).sum(1).astype(np.int64)
    return out


def loop_route(center_xy: tuple[float, float], radius: tuple[float, float], n_points: int, *, seed: int = 0,
               z: float = 1.5) -> np.ndarray:
    """A smooth closed route around ``center_xy``, evenly spaced by arc length: ``[n_points, 3]``.

    The distance from the centre varies smoothly with the bearing (a few random Fourier terms),
    within ``radius = (min, max)``.
    """
    check_int_range(n_points, "n_points", low=3)
    lo, hi = radius
    if not 0 < lo < hi:
        raise DataError(f"radius: expected 0 < min < max, got {radius}")
    rng = np.random.default_rng([seed, 29])
    t = np.linspace(0, 2 * np.pi, 4096, endpoint=False)
    wiggle = sum(rng.normal(0, 1 / k) * np.cos(k * t + rng.uniform(0, 2 * np.pi)) for k in range(1, 5))
    wiggle = (wiggle - wiggle.min()) / max(np.ptp(wiggle), 1e-9)
    r = lo + (hi - lo) * wiggle
    xy = np.stack([center_xy[0] + r * np.cos(t), center_xy[1] + r * np.sin(t)], 1)
    seg = np.linalg.norm(np.diff(np.vstack([xy, xy[:1]]), axis=0), axis=1)
    arc = np.concatenate([[0], np.cumsum(seg)])
    at = np.linspace(0, arc[-1], n_points, endpoint=False)
    closed = np.vstack([xy, xy[:1]])
    pts = np.stack([np.interp(at, arc, closed[:, 0]), np.interp(at, arc, closed[:, 1])], 1)
    return np.concatenate([pts, np.full((n_points, 1), z)], 1)
