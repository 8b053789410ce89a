"""Departure paths of a BS → UE channel, seen through an LSCM panel: their CAPS and their RSRP.

A path set holds, per sample (UE position), up to P paths with linear power gain ``power``
(``|a|²``, path loss included), zenith angle of departure ``zenith`` (0 = up) and azimuth of
departure ``azimuth`` in the **panel's frame** (0 = broadside, as in :mod:`chanlab.channels.lscm`),
all ``[S, P]`` with zero-power padding. Ray tracing (:mod:`chanlab.channels.raytracing`) and the
stochastic fallback (:mod:`chanlab.channels.geometric_paths`) both produce them.

* :func:`bin_caps` is the ground-truth CAPS: path powers summed into the LSCM angular grid
  (nearest zenith sample, azimuth bin). The grid covers the panel's front half-space; a path
  behind the panel (|φ| ≥ 90°, at least 22 dB down in the element pattern) has no LSCM angle and
  is left out of the CAPS, but still reaches the RSRP.
* :func:`rsrp_from_paths` is eq. (3) on the exact, off-grid path angles:
  ``h = Σ_l sqrt(p_l) g(θ_l, φ_l) e^{-j w_l} s(θ_l, φ_l) ⊙ e^{-j w_{y,z}}`` with the LSCM's random
  phases (``w_l ~ U(−π, π)`` per path, ``w_{y,z} ~ N(0, σ²)`` per element), and
  ``RSRP = P |Bᴴ h|²`` averaged over ``n_draws`` independent phase draws, the fast fading that a
  UE's layer-3 filter averages before it reports. With ``n_draws → ∞`` and on-grid paths it
  tends to ``A x`` of eq. (4).
"""

from __future__ import annotations

import math

import torch

from chanlab.channels.lscm import dbm_to_mw, element_gain_3gpp, lscm_steering
from chanlab.core.errors import DataError
from chanlab.core.validation import check_int_range


def check_paths(power: torch.Tensor, zenith: torch.Tensor, azimuth: torch.Tensor) -> None:
    """Validate a path set: three ``[S, P]`` finite real tensors, nonnegative powers."""
    if power.ndim != 2 or zenith.shape != power.shape or azimuth.shape != power.shape:
        raise DataError(f"paths: expected power, zenith, azimuth of one shape [S, P], got "
                        f"{tuple(power.shape)}, {tuple(zenith.shape)}, {tuple(azimuth.shape)}")
    for name, t in (("power", power), ("zenith", zenith), ("azimuth", azimuth)):
        if t.is_complex() or not torch.isfinite(t).all():
            raise DataError(f"paths: expected finite real {name}, got non-finite or complex values")
    if (power < 0).any():
        raise DataError("paths: expected nonnegative path powers")


def wrap_angle(angle: torch.Tensor) -> torch.Tensor:
    """Angles wrapped into ``[−π, π)``."""
    return torch.remainder(angle + math.pi, 2 * math.pi) - math.pi


def bin_caps(power: torch.Tensor, zenith: torch.Tensor, azimuth: torch.Tensor, *, n_elevation: int,
             n_azimuth: int) -> torch.Tensor:
    """Ground-truth CAPS of each sample on the grid of :func:`chanlab.channels.lscm.angular_grid`.

    Args:
        power, zenith, azimuth: ``[S, P]`` paths (panel frame, radians).
        n_elevation, n_azimuth: the LSCM grid (zenith 0°…180° inclusive; azimuth bins of −90°…90°).

    Returns:
        ``[S, n_elevation * n_azimuth]`` float64, elevation-major like the LSCM.
    """
    check_paths(power, zenith, azimuth)
    check_int_range(n_elevation, "n_elevation", low=1)
    check_int_range(n_azimuth, "n_azimuth", low=1)
    zen = torch.rad2deg(zenith.double())
    az = torch.rad2deg(wrap_angle(azimuth.double()))
    step = 180.0 / (n_elevation - 1) if n_elevation > 1 else 180.0
    v = torch.round(zen / step).long().clamp(0, n_elevation - 1) if n_elevation > 1 else torch.zeros_like(zen).long()
    h = torch.floor((az + 90.0) / (180.0 / n_azimuth)).long()
    inside = (h >= 0) & (h < n_azimuth) & (power > 0)
    flat = torch.where(inside, v * n_azimuth + h.clamp(0, n_azimuth - 1), 0)
    caps = torch.zeros(power.shape[0], n_elevation * n_azimuth, dtype=torch.float64, device=power.device)
    return caps.scatter_add_(1, flat, torch.where(inside, power.double(), 0.0))


def rsrp_from_paths(power: torch.Tensor, zenith: torch.Tensor, azimuth: torch.Tensor, beams: torch.Tensor, *,
                    n_y: int, n_z: int, spacing: float = 0.5, phase_error_std: float = 0.0, power_dbm: float = 0.0,
                    n_draws: int = 1, generator: torch.Generator | None = None, chunk: int = 512) -> torch.Tensor:
    """Beam-level RSRP of eq. (3) on the exact path angles, averaged over phase draws (module docstring).

    Args:
        power, zenith, azimuth: ``[S, P]`` paths (panel frame).
        beams: ``B``, ``[n_y * n_z, M]`` complex beamforming vectors.
        n_y, n_z, spacing, phase_error_std, power_dbm: the panel, as in
            :func:`chanlab.channels.lscm.beam_pattern_matrix`.
        n_draws: fast-fading phase draws averaged per sample.
        generator: the random phases' generator (CPU).

    Returns:
        ``[S, M]`` float64 linear RSRP in mW.
    """
    check_paths(power, zenith, azimuth)
    check_int_range(n_draws, "n_draws", low=1)
    if beams.ndim != 2 or beams.shape[0] != n_y * n_z:
        raise DataError(f"beams: expected [n_y * n_z = {n_y * n_z}, M], got {tuple(beams.shape)}")
    b = beams.to(device=power.device, dtype=torch.complex128).conj()
    scale = float(dbm_to_mw(power_dbm))
    out = []
    for p, th, ph in zip(power.double().split(chunk), zenith.double().split(chunk), azimuth.double().split(chunk)):
        s, n_paths = p.shape
        steer = lscm_steering(th, ph, n_y, n_z, spacing)                            # [s, P, NT]
        amp = p.sqrt() * element_gain_3gpp(th, ph).sqrt()                            # [s, P]
        # phases are drawn on the CPU generator so a seed gives the same data on any device
        w_path = ((torch.rand(s, n_draws, n_paths, generator=generator, dtype=torch.float64) * 2 - 1)
                  * math.pi).to(p.device)
        w_elem = (torch.randn(s, n_draws, n_y * n_z, generator=generator, dtype=torch.float64)
                  * phase_error_std).to(p.device)
        coef = torch.polar(amp[:, None, :].expand(s, n_draws, n_paths).contiguous(), -w_path)
        h = (coef @ steer) * torch.polar(torch.ones_like(w_elem), -w_elem)           # [s, D, NT]
        out.append(scale * (h @ b).abs().square().mean(1))
    return torch.cat(out)
