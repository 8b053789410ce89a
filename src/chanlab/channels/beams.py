"""DFT beam codebooks for ULAs and UPAs (oversampled, optionally tilted).

A codebook is a matrix ``W`` of shape ``[n_ant, n_beams]`` with unit-norm columns; the beam
gain towards a channel ``h`` (``[..., n_ant]``) is ``|h^H w|^2`` — the transmit array applies
``w`` and the user receives ``h^H w`` (the convention of the papers' ``h_i^H v_i``), so beam k
is strongest for a user whose channel is the steering vector of direction θ_k. Array conventions are those of
:mod:`chanlab.channels.arrays`.
"""

from __future__ import annotations

import math

import torch

from chanlab.channels.arrays import ula_response
from chanlab.core.validation import check_int_range, check_positive


def dft_directions(n_ant: int, oversampling: int = 1) -> torch.Tensor:
    """Spatial frequencies ``u_k = 2 d sin θ_k`` of an oversampled DFT codebook.

    ``u_k = -1 + (2k + 1) / (n_ant · oversampling)``, k = 0..N·O-1: evenly spaced in [-1, 1)
    and symmetric about broadside.

    Returns:
        ``[n_ant * oversampling]`` float64.
    """
    check_int_range(n_ant, "n_ant", low=1)
    check_int_range(oversampling, "oversampling", low=1)
    n_beams = n_ant * oversampling
    k = torch.arange(n_beams, dtype=torch.float64)
    return -1.0 + (2 * k + 1) / n_beams


def dft_codebook(n_ant: int, oversampling: int = 1, spacing: float = 0.5,
                 dtype: torch.dtype = torch.complex64) -> tuple[torch.Tensor, torch.Tensor]:
    """Oversampled DFT codebook of a ULA.

    Beam k points at ``sin θ_k = u_k / (2 d)``; with d = 1/2 and ``oversampling = 1`` the
    columns are orthonormal. For ``d != 1/2`` the same spatial frequencies are used (so the
    codebook stays a DFT), and directions with ``|sin θ| > 1`` are invisible.

    Returns:
        ``(W, sin_theta)``: ``W`` ``[n_ant, n_ant * oversampling]`` unit-norm columns,
        ``sin_theta`` ``[n_ant * oversampling]`` float64.
    """
    check_positive(spacing, "spacing")
    u = dft_directions(n_ant, oversampling)
    n = torch.arange(n_ant, dtype=torch.float64)
    phase = math.pi * n[:, None] * u[None, :]
    w = torch.polar(torch.ones_like(phase), phase) / math.sqrt(n_ant)
    return w.to(dtype), u / (2 * spacing)


def upa_dft_codebook(n_rows: int, n_cols: int, oversampling_v: int = 1, oversampling_h: int = 1,
                     tilt: float = 0.0, spacing: float = 0.5,
                     dtype: torch.dtype = torch.complex64) -> torch.Tensor:
    """Kronecker DFT codebook of a UPA, with an optional electrical down-tilt.

    The vertical factor is ``a_v(tilt)`` ⊙ (vertical DFT beam): tilting multiplies every
    vertical beam by the steering phase of elevation ``tilt`` (radians, negative = down).
    Beams are ordered vertical-major: index ``iv * n_beams_h + ih``.

    Returns:
        ``[n_rows * n_cols, n_rows*O_v * n_cols*O_h]`` with unit-norm columns, element order
        matching :func:`chanlab.channels.arrays.upa_response`.
    """
    w_v, _ = dft_codebook(n_rows, oversampling_v, spacing, dtype=torch.complex128)
    w_h, _ = dft_codebook(n_cols, oversampling_h, spacing, dtype=torch.complex128)
    if tilt:
        steer = ula_response(torch.tensor(tilt, dtype=torch.float64), n_rows, spacing)
        w_v = w_v * steer[:, None]
    w = torch.einsum("rv,ch->rcvh", w_v, w_h).reshape(n_rows * n_cols, -1)
    return w.to(dtype)


def beam_gains(h: torch.Tensor, codebook: torch.Tensor) -> torch.Tensor:
    """Power of each beam towards each channel: ``|h^H w_k|^2``.

    Args:
        h: ``[..., n_ant]`` complex channels.
        codebook: ``[n_ant, n_beams]``.

    Returns:
        ``[..., n_beams]`` real.
    """
    return (h.conj() @ codebook.to(h.dtype)).abs().square()
