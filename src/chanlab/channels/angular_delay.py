"""Spatial-frequency ↔ angular-delay transform and CsiNet's [0, 1] normalization.

For CSI ``H`` of shape ``[batch, n_ant, n_sc]`` (antennas × subcarriers) the angular-delay
representation is ``H_ad = F_a H F_d^H``: a unitary DFT over antennas (angle) and a unitary
inverse DFT over subcarriers (delay: a path of delay τ is a phase ramp exp(-j2π k Δf τ) over
subcarriers, which the inverse DFT maps to tap τ·n_sc·Δf). Because multipath delays are
short compared with the OFDM symbol, the energy sits in the first taps; CsiNet keeps the first
``n_delay`` of them. Both DFTs are unitary (``norm="ortho"``), so energy and NMSE are the
same in both domains before truncation.

CsiNet feeds a network with the real and imaginary parts mapped to [0, 1]:
``x = H_ad / (2 s) + 0.5`` with a scale ``s`` (the largest |Re|, |Im| of the training set), and
stacks them as ``[batch, 2, n_ant, n_delay]``.
"""

from __future__ import annotations

import torch

from chanlab.core.errors import DataError
from chanlab.core.validation import check_complex, check_finite, check_int_range, check_ndim, check_real


def _check_csi(h: torch.Tensor, name: str) -> None:
    if not isinstance(h, torch.Tensor):
        raise DataError(f"{name}: expected a torch.Tensor, got {type(h).__name__}")
    check_ndim(h, 3, name, "[batch, n_ant, n_sc]")
    check_complex(h, name)


def to_angular_delay(h: torch.Tensor, n_delay: int | None = None) -> torch.Tensor:
    """Spatial-frequency CSI → angular-delay CSI, truncated to the first ``n_delay`` taps.

    Args:
        h: ``[batch, n_ant, n_sc]`` complex.
        n_delay: taps to keep (``None`` keeps all ``n_sc``).

    Returns:
        ``[batch, n_ant, n_delay]`` complex, same dtype and device.
    """
    _check_csi(h, "h")
    n_sc = h.shape[-1]
    if n_delay is not None:
        check_int_range(n_delay, "n_delay", low=1, high=n_sc)
    h_ad = torch.fft.ifft(torch.fft.fft(h, dim=-2, norm="ortho"), dim=-1, norm="ortho")
    return h_ad if n_delay is None else h_ad[..., :n_delay]


def from_angular_delay(h_ad: torch.Tensor, n_sc: int | None = None) -> torch.Tensor:
    """Angular-delay CSI → spatial-frequency CSI, zero-padding truncated taps.

    Args:
        h_ad: ``[batch, n_ant, n_delay]`` complex.
        n_sc: number of subcarriers (``None``: ``n_delay``, i.e. no truncation happened).

    Returns:
        ``[batch, n_ant, n_sc]`` complex.
    """
    _check_csi(h_ad, "h_ad")
    n_delay = h_ad.shape[-1]
    n_sc = n_delay if n_sc is None else n_sc
    check_int_range(n_sc, "n_sc", low=n_delay)
    if n_sc > n_delay:
        h_ad = torch.nn.functional.pad(h_ad, (0, n_sc - n_delay))
    return torch.fft.ifft(torch.fft.fft(h_ad, dim=-1, norm="ortho"), dim=-2, norm="ortho")


def unit_interval_scale(h_ad: torch.Tensor) -> float:
    """The scale ``s`` = max(|Re|, |Im|) over a (training) set, so that ``x`` fills [0, 1]."""
    check_complex(h_ad, "h_ad")
    check_finite(h_ad, "h_ad")
    s = float(torch.maximum(h_ad.real.abs().max(), h_ad.imag.abs().max()))
    if s <= 0:
        raise DataError("h_ad: all entries are zero, no scale can be fitted")
    return s


def to_unit_interval(h_ad: torch.Tensor, scale: float) -> torch.Tensor:
    """Complex angular-delay CSI → CsiNet's real input in [0, 1].

    Args:
        h_ad: ``[batch, n_ant, n_delay]`` complex.
        scale: ``s`` from :func:`unit_interval_scale` (fit it on the training set).

    Returns:
        ``[batch, 2, n_ant, n_delay]`` real (channel 0 real part, channel 1 imaginary part).
    """
    _check_csi(h_ad, "h_ad")
    if not scale > 0:
        raise DataError(f"scale: expected a positive number, got {scale}")
    return torch.stack((h_ad.real, h_ad.imag), dim=1) / (2 * scale) + 0.5


def from_unit_interval(x: torch.Tensor, scale: float) -> torch.Tensor:
    """Inverse of :func:`to_unit_interval`: ``[batch, 2, n_ant, n_delay]`` → complex."""
    if not isinstance(x, torch.Tensor):
        raise DataError(f"x: expected a torch.Tensor, got {type(x).__name__}")
    check_ndim(x, 4, "x", "[batch, 2, n_ant, n_delay]")
    check_real(x, "x")
    if x.shape[1] != 2:
        raise DataError(f"x: expected 2 channels (real, imaginary) in dim 1, got shape {list(x.shape)}")
    y = (x - 0.5) * (2 * scale)
    return torch.complex(y[:, 0], y[:, 1])


def real_to_complex(x: torch.Tensor) -> torch.Tensor:
    """``[batch, 2, ...]`` real/imaginary planes → ``[batch, ...]`` complex (no rescaling)."""
    check_real(x, "x")
    if x.ndim < 2 or x.shape[1] != 2:
        raise DataError(f"x: expected shape [batch, 2, ...], got {list(x.shape)}")
    return torch.complex(x[:, 0], x[:, 1])


def complex_to_real(h: torch.Tensor) -> torch.Tensor:
    """``[batch, ...]`` complex → ``[batch, 2, ...]`` real/imaginary planes."""
    check_complex(h, "h")
    return torch.stack((h.real, h.imag), dim=1)
