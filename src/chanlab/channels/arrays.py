"""Array responses of uniform linear (ULA) and uniform planar (UPA) arrays.

Conventions (shared by the beam codebooks and documented for matching with the Sionna
generator): element spacing is in wavelengths; a ULA lies along the y axis with element ``n``
at ``n * spacing`` (n = 0..N-1); angles are in radians.

* ULA steering vector: ``a_n(θ) = exp(j 2π d n sin θ)``, θ the angle from broadside.
* UPA with ``n_rows`` (vertical, z) × ``n_cols`` (horizontal, y) elements, flattened row-major
  (index ``r * n_cols + c``): ``a_{r,c}(φ, θ) = exp(j 2π d (c sin φ cos θ + r sin θ))`` with φ the
  azimuth from broadside and θ the elevation above the horizon. This is the Kronecker
  product ``a_v(θ) ⊗ a_h(φ, θ)``.

``normalized=True`` divides by ``sqrt(N)`` so that ``‖a‖ = 1``.
"""

from __future__ import annotations

import math

import torch

from chanlab.core.errors import DataError
from chanlab.core.validation import check_int_range, check_positive


def _as_angles(x: torch.Tensor | float, name: str) -> torch.Tensor:
    t = x if isinstance(x, torch.Tensor) else torch.tensor(x, dtype=torch.float64)
    if t.is_complex() or not t.is_floating_point():
        t = t.to(torch.float64) if not t.is_complex() else t
        if t.is_complex():
            raise DataError(f"{name}: expected real angles in radians, got dtype {t.dtype}")
    return t


def _complex_dtype(real: torch.dtype) -> torch.dtype:
    return torch.complex128 if real == torch.float64 else torch.complex64


def ula_response(angles: torch.Tensor | float, n_ant: int, spacing: float = 0.5,
                 normalized: bool = False) -> torch.Tensor:
    """ULA steering vectors.

    Args:
        angles: angles from broadside in radians, any shape ``[...]``.
        n_ant: number of elements N.
        spacing: element spacing d in wavelengths.
        normalized: divide by sqrt(N).

    Returns:
        ``[..., n_ant]`` complex (complex128 for float64 angles, complex64 otherwise).
    """
    check_int_range(n_ant, "n_ant", low=1)
    check_positive(spacing, "spacing")
    theta = _as_angles(angles, "angles")
    n = torch.arange(n_ant, device=theta.device, dtype=theta.dtype)
    phase = 2 * math.pi * spacing * torch.sin(theta)[..., None] * n
    a = torch.polar(torch.ones_like(phase), phase).to(_complex_dtype(theta.dtype))
    return a / math.sqrt(n_ant) if normalized else a


def upa_response(azimuth: torch.Tensor | float, elevation: torch.Tensor | float, n_rows: int, n_cols: int,
                 spacing: float = 0.5, normalized: bool = False) -> torch.Tensor:
    """UPA steering vectors, flattened row-major.

    Args:
        azimuth: φ in radians, ``[...]``.
        elevation: θ in radians, broadcastable with ``azimuth``.
        n_rows, n_cols: vertical and horizontal element counts.
        spacing: element spacing in wavelengths (both directions).
        normalized: divide by sqrt(n_rows * n_cols).

    Returns:
        ``[..., n_rows * n_cols]`` complex.
    """
    check_int_range(n_rows, "n_rows", low=1)
    check_int_range(n_cols, "n_cols", low=1)
    check_positive(spacing, "spacing")
    phi = _as_angles(azimuth, "azimuth")
    theta = _as_angles(elevation, "elevation")
    phi, theta = torch.broadcast_tensors(phi, theta)
    r = torch.arange(n_rows, device=phi.device, dtype=phi.dtype)
    c = torch.arange(n_cols, device=phi.device, dtype=phi.dtype)
    u_h = (torch.sin(phi) * torch.cos(theta))[..., None, None]
    u_v = torch.sin(theta)[..., None, None]
    phase = 2 * math.pi * spacing * (c[None, :] * u_h + r[:, None] * u_v)
    a = torch.polar(torch.ones_like(phase), phase).to(_complex_dtype(phi.dtype))
    a = a.reshape(*phase.shape[:-2], n_rows * n_cols)
    return a / math.sqrt(n_rows * n_cols) if normalized else a
