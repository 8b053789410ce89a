"""Localized statistical channel model (LSCM): beam-level RSRP as a linear map of the CAPS.

The BS has a uniform rectangular array (URA) of ``n_y`` (horizontal, y) × ``n_z`` (vertical, z)
elements in the Y–Z plane, facing +X. Space is discretized into ``N = n_elevation × n_azimuth``
directions (θ_v zenith angle, φ_h azimuth from broadside); the channel angular power
spectrum (CAPS) ``x ∈ R^N_{≥0}`` holds the path gain of each direction, flattened
elevation-major (index ``v * n_azimuth + h``, eq. 5 of the gridization paper). The channel is
eq. (3)::

    h = Σ_n sqrt(x_n) g_n s_n ⊙ w_n,   s_n[y, z] = exp(-j 2π (d_y y sinθ sinφ + d_z z cosθ)),
    w_n[y, z] = exp(-j (w_n + w_{y,z})),  w_n ~ U(-π, π),  w_{y,z} ~ N(0, σ²),

and a UE reports ``RSRP = P |Bᴴ h|²`` for the M beams (columns of ``B``). Averaging over the
phases gives E[RSRP] = A x (eq. 4) with the closed form derived here: the per-direction phases
w_n are independent and uniform, so cross-direction terms vanish; within one direction
E[e^{-j(w_a - w_a')}] = e^{-σ²} for two different elements and 1 for the same one, so::

    A[m, n] = P g_n² ( e^{-σ²} |b_mᴴ s_n|² + (1 - e^{-σ²}) ‖b_m‖² ).

The phase errors blur each beam towards an isotropic floor ``‖b_m‖²``; σ = 0 gives the plain
beam gains. ``g_n²`` is the 3GPP TR 38.901 (Table 7.3-1) element power pattern.

:func:`sample_rsrp` draws the random phases of eq. (3) (the Monte Carlo side of the identity,
used by the tests), and :func:`measure_rsrp` turns linear RSRP into what a measurement report
holds: dBm with measurement noise, floored to 1 dB steps and clipped to the reporting range
(3GPP TS 38.133: −156 … −31 dBm).

The default :class:`LscmPanel` is a 5G-like 32-port panel: 8 × 4 elements at half-wavelength
spacing and 32 CSI-RS beams (matched-filter beams towards 8 azimuths from −52.5° to 52.5° in
15° steps × 4 electrical down-tilts of 3°, 9°, 15° and 21°). Its angular grid has 91 zenith
angles (0°…180° in 2° steps) × 72 azimuths (−88.75°…88.75° in 2.5° steps), N = 6552, the
size of the paper's synthetic CAPS.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from chanlab.channels.arrays import upa_response
from chanlab.core.errors import DataError
from chanlab.core.validation import check_finite, check_int_range

RSRP_REPORT_RANGE_DBM = (-156.0, -31.0)


def dbm_to_mw(dbm: torch.Tensor | float) -> torch.Tensor:
    """Power in dBm → mW (``10^(dBm/10)``)."""
    t = dbm if isinstance(dbm, torch.Tensor) else torch.tensor(float(dbm), dtype=torch.float64)
    return torch.pow(10.0, t / 10.0)


def mw_to_dbm(mw: torch.Tensor | float, floor_mw: float = 1e-30) -> torch.Tensor:
    """Power in mW → dBm; values below ``floor_mw`` (zero included) are clamped to it."""
    t = mw if isinstance(mw, torch.Tensor) else torch.tensor(float(mw), dtype=torch.float64)
    return 10.0 * torch.log10(t.clamp_min(floor_mw))


def angular_grid(n_elevation: int = 91, n_azimuth: int = 72, *, zenith_deg: tuple[float, float] = (0.0, 180.0),
                 azimuth_deg: tuple[float, float] = (-90.0, 90.0),
                 dtype: torch.dtype = torch.float64) -> tuple[torch.Tensor, torch.Tensor]:
    """The discrete angular space of the LSCM (Fig. 2a).

    Zenith angles include both ends of ``zenith_deg`` (θ = 0 is straight up); azimuths are the
    centres of ``n_azimuth`` equal bins of ``azimuth_deg`` (φ = 0 is broadside).

    Returns:
        ``(theta, phi)``, each ``[n_elevation * n_azimuth]`` in radians, elevation-major.
    """
    check_int_range(n_elevation, "n_elevation", low=1)
    check_int_range(n_azimuth, "n_azimuth", low=1)
    if n_elevation == 1:
        theta = torch.tensor([math.radians(sum(zenith_deg) / 2)], dtype=dtype)
    else:
        theta = torch.deg2rad(torch.linspace(zenith_deg[0], zenith_deg[1], n_elevation, dtype=dtype))
    width = (azimuth_deg[1] - azimuth_deg[0]) / n_azimuth
    phi = torch.deg2rad(azimuth_deg[0] + width * (torch.arange(n_azimuth, dtype=dtype) + 0.5))
    return theta.repeat_interleave(n_azimuth), phi.repeat(n_elevation)


def element_gain_3gpp(theta: torch.Tensor, phi: torch.Tensor, *, max_gain_dbi: float = 8.0,
                      beamwidth_deg: float = 65.0, max_attenuation_db: float = 30.0) -> torch.Tensor:
    """Element power pattern ``g²`` (linear) of 3GPP TR 38.901 Table 7.3-1.

    Args:
        theta: zenith angles in radians, ``[...]``.
        phi: azimuths from broadside in radians, broadcastable with ``theta``.

    Returns:
        ``[...]`` linear power gain (8 dBi at broadside, ≥ −22 dBi everywhere).
    """
    th = torch.rad2deg(theta)
    ph = torch.rad2deg(torch.remainder(phi + math.pi, 2 * math.pi) - math.pi)
    a_v = -torch.clamp(12 * ((th - 90.0) / beamwidth_deg) ** 2, max=max_attenuation_db)
    a_h = -torch.clamp(12 * (ph / beamwidth_deg) ** 2, max=max_attenuation_db)
    att = -torch.clamp(-(a_v + a_h), max=max_attenuation_db)
    return torch.pow(10.0, (max_gain_dbi + att) / 10.0)


def lscm_steering(theta: torch.Tensor, phi: torch.Tensor, n_y: int, n_z: int, spacing: float = 0.5) -> torch.Tensor:
    """Steering vectors ``s(θ, φ)`` of eq. (3), element ``z * n_y + y``.

    The exponent of eq. (3) is the conjugate of :func:`~chanlab.channels.arrays.upa_response`'s
    with elevation ``π/2 − θ``; conjugating both the steering vectors and the beams built from
    them (:meth:`LscmPanel.beams`) keeps ``|bᴴ s|`` the same as in the array module.

    Returns:
        ``[..., n_y * n_z]`` complex.
    """
    return upa_response(phi, math.pi / 2 - theta, n_rows=n_z, n_cols=n_y, spacing=spacing).conj()


def beam_pattern_matrix(beams: torch.Tensor, theta: torch.Tensor, phi: torch.Tensor, *, n_y: int, n_z: int,
                        spacing: float = 0.5, phase_error_std: float = 0.0, power_dbm: float = 0.0,
                        element_gain: torch.Tensor | None = None) -> torch.Tensor:
    """The beam-pattern matrix ``A(Ψ)`` of eq. (4), in closed form (module docstring).

    Args:
        beams: ``B``, ``[n_y * n_z, M]`` complex beamforming vectors (columns).
        theta, phi: ``[N]`` directions of the angular grid (radians).
        n_y, n_z, spacing: the URA.
        phase_error_std: σ of the per-element phase errors (radians).
        power_dbm: transmit power P per beam in dBm (any fixed gain, e.g. a reference path loss
            that the CAPS is measured against, folds into it).
        element_gain: ``[N]`` linear element power gain g²; default the 3GPP pattern.

    Returns:
        ``[M, N]`` float64, mW per unit of CAPS.
    """
    if beams.ndim != 2 or beams.shape[0] != n_y * n_z:
        raise DataError(f"beams: expected [n_y * n_z = {n_y * n_z}, M], got {tuple(beams.shape)}")
    if phase_error_std < 0:
        raise DataError(f"phase_error_std: expected >= 0, got {phase_error_std}")
    theta = theta.to(torch.float64)
    phi = phi.to(torch.float64)
    steer = lscm_steering(theta, phi, n_y, n_z, spacing)                       # [N, NT]
    b = beams.to(device=steer.device, dtype=torch.complex128)
    coherent = (steer.conj() @ b).abs().square().T                              # |b_mᴴ s_n|², [M, N]
    isotropic = b.abs().square().sum(0)[:, None]                                # ‖b_m‖², [M, 1]
    rho = math.exp(-phase_error_std ** 2)
    g2 = element_gain_3gpp(theta, phi) if element_gain is None else element_gain.to(torch.float64)
    return float(dbm_to_mw(power_dbm)) * g2[None, :] * (rho * coherent + (1 - rho) * isotropic)


def sample_rsrp(caps: torch.Tensor, beams: torch.Tensor, theta: torch.Tensor, phi: torch.Tensor, *, n_y: int,
                n_z: int, spacing: float = 0.5, phase_error_std: float = 0.0, power_dbm: float = 0.0,
                n_draws: int = 1, generator: torch.Generator | None = None) -> torch.Tensor:
    """Draw RSRP from eq. (3) with random phases: one channel per draw and CAPS.

    Args:
        caps: ``[S, N]`` nonnegative CAPS.
        beams, theta, phi, n_y, n_z, spacing, phase_error_std, power_dbm: as in
            :func:`beam_pattern_matrix`.
        n_draws: independent phase draws per CAPS.

    Returns:
        ``[S, n_draws, M]`` linear RSRP in mW; its mean over draws tends to ``A x``.
    """
    if caps.ndim != 2 or caps.shape[1] != theta.shape[0]:
        raise DataError(f"caps: expected [S, N = {theta.shape[0]}], got {tuple(caps.shape)}")
    if (caps < 0).any():
        raise DataError("caps: expected nonnegative path gains")
    n_t = n_y * n_z
    steer = lscm_steering(theta.to(torch.float64), phi.to(torch.float64), n_y, n_z, spacing)
    g = element_gain_3gpp(theta.to(torch.float64), phi.to(torch.float64)).sqrt()
    amp = caps.to(torch.float64).sqrt() * g                                      # [S, N]
    s, n = caps.shape
    w_dir = (torch.rand(s, n_draws, n, generator=generator, dtype=torch.float64) * 2 - 1) * math.pi
    w_ant = torch.randn(s, n_draws, n_t, generator=generator, dtype=torch.float64) * phase_error_std
    # h = Σ_n amp_n e^{-j w_n} s_n ⊙ e^{-j w_ant}: the direction sum is one matrix product
    coef = torch.polar(amp[:, None, :].expand(s, n_draws, n).contiguous(), -w_dir)
    h = (coef @ steer) * torch.polar(torch.ones_like(w_ant), -w_ant)             # [S, D, NT]
    b = beams.to(torch.complex128)
    return float(dbm_to_mw(power_dbm)) * (h @ b.conj()).abs().square()


def measure_rsrp(rsrp_mw: torch.Tensor, *, noise_std_db: float = 0.0, step_db: float = 1.0,
                 report_range_dbm: tuple[float, float] = RSRP_REPORT_RANGE_DBM,
                 generator: torch.Generator | None = None) -> torch.Tensor:
    """What a measurement report holds: noisy RSRP in dBm, quantized and clipped.

    Log-normal measurement noise (``noise_std_db``), then the report's ``step_db`` steps (a
    report index covers ``[k, k + step)``, so values are floored) and its range; a beam below
    the floor reports the floor.

    Args:
        rsrp_mw: ``[..., M]`` linear RSRP.

    Returns:
        ``[..., M]`` dBm, float64.
    """
    check_finite(rsrp_mw, "rsrp_mw")
    if (rsrp_mw < 0).any():
        raise DataError("rsrp_mw: expected nonnegative linear powers in mW")
    dbm = mw_to_dbm(rsrp_mw.to(torch.float64))
    if noise_std_db > 0:
        dbm = dbm + noise_std_db * torch.randn(dbm.shape, generator=generator, dtype=torch.float64)
    if step_db > 0:
        dbm = torch.floor(dbm / step_db) * step_db
    return dbm.clamp(*report_range_dbm)


@dataclass(frozen=True)
class LscmPanel:
    """A BS panel, its CSI-RS beams and the LSCM angular grid (defaults: module docstring).

    ``power_dbm`` is the reference power P of eq. (4) per beam; for CAPS measured against a
    reference path loss, P is the transmit power minus that loss, so that ``A x`` lands in a
    realistic RSRP range.
    """

    n_y: int = 8
    n_z: int = 4
    spacing: float = 0.5
    beam_azimuths_deg: tuple[float, ...] = (-52.5, -37.5, -22.5, -7.5, 7.5, 22.5, 37.5, 52.5)
    beam_tilts_deg: tuple[float, ...] = (3.0, 9.0, 15.0, 21.0)
    phase_error_std: float = 0.3
    power_dbm: float = -60.0
    n_elevation: int = 91
    n_azimuth: int = 72

    @property
    def n_beams(self) -> int:
        return len(self.beam_azimuths_deg) * len(self.beam_tilts_deg)

    @property
    def n_angles(self) -> int:
        return self.n_elevation * self.n_azimuth

    def angles(self) -> tuple[torch.Tensor, torch.Tensor]:
        """``(theta, phi)``, each ``[N]`` (:func:`angular_grid`)."""
        return angular_grid(self.n_elevation, self.n_azimuth)

    def beams(self) -> torch.Tensor:
        """``[n_y * n_z, M]`` unit-norm matched-filter beams, tilt-major (index ``t * n_az + a``)."""
        tilt = torch.tensor(self.beam_tilts_deg, dtype=torch.float64)
        az = torch.tensor(self.beam_azimuths_deg, dtype=torch.float64)
        theta = torch.deg2rad(90.0 + tilt)[:, None].expand(-1, az.numel()).reshape(-1)
        phi = torch.deg2rad(az)[None, :].expand(tilt.numel(), -1).reshape(-1)
        s = lscm_steering(theta, phi, self.n_y, self.n_z, self.spacing)          # [M, NT]
        return (s / math.sqrt(self.n_y * self.n_z)).T.contiguous()

    def beam_pattern(self) -> torch.Tensor:
        """``A`` of eq. (4), ``[M, N]`` float64 (:func:`beam_pattern_matrix`)."""
        theta, phi = self.angles()
        return beam_pattern_matrix(self.beams(), theta, phi, n_y=self.n_y, n_z=self.n_z, spacing=self.spacing,
                                   phase_error_std=self.phase_error_std, power_dbm=self.power_dbm)
