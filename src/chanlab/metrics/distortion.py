"""Reconstruction quality: NMSE, CsiNet's cosine similarity ρ, MAE in dB.

All functions take batch-first tensors and return the per-sample mean, as the papers define
them: ``NMSE = E[‖H − Ĥ‖² / ‖H‖²]`` (the mean of per-sample ratios, not a ratio of means).
"""

from __future__ import annotations

import math

import torch

from chanlab.core.errors import DataError
from chanlab.core.validation import check_finite, check_ndim


def _pair(x: torch.Tensor, x_hat: torch.Tensor, name: str = "x") -> None:
    for arg, label in ((x, name), (x_hat, f"{name}_hat")):
        if not isinstance(arg, torch.Tensor):
            raise DataError(f"{label}: expected a torch.Tensor, got {type(arg).__name__}")
    if x.shape != x_hat.shape:
        raise DataError(f"{name} and {name}_hat: expected equal shapes, got {list(x.shape)} and {list(x_hat.shape)}")
    if x.ndim < 1 or x.shape[0] == 0:
        raise DataError(f"{name}: expected a non-empty batch, got shape {list(x.shape)}")
    check_finite(x, name)
    check_finite(x_hat, f"{name}_hat")


def nmse_per_sample(h: torch.Tensor, h_hat: torch.Tensor) -> torch.Tensor:
    """``‖h_b − ĥ_b‖² / ‖h_b‖²`` for each sample b.

    Args:
        h, h_hat: ``[batch, ...]`` real or complex, same shape.

    Returns:
        ``[batch]`` real.
    """
    _pair(h, h_hat, "h")
    err = (h - h_hat).abs().square().flatten(1).sum(1)
    power = h.abs().square().flatten(1).sum(1)
    if bool((power == 0).any()):
        raise DataError("h: a sample has zero power, its NMSE is undefined")
    return err / power


def nmse(h: torch.Tensor, h_hat: torch.Tensor) -> float:
    """Mean per-sample NMSE (linear)."""
    return float(nmse_per_sample(h, h_hat).mean())


def nmse_db(h: torch.Tensor, h_hat: torch.Tensor) -> float:
    """Mean per-sample NMSE in dB: ``10 log10(E[‖h − ĥ‖²/‖h‖²])``."""
    value = nmse(h, h_hat)
    return -math.inf if value == 0 else 10 * math.log10(value)


def cosine_similarity(h: torch.Tensor, h_hat: torch.Tensor) -> float:
    """CsiNet's ρ: mean over samples and subcarriers of ``|ĥ_n^H h_n| / (‖ĥ_n‖ ‖h_n‖)``.

    Args:
        h, h_hat: spatial-frequency CSI ``[batch, n_ant, n_sc]`` complex; ``h_n`` is the
            antenna vector of subcarrier n. Subcarriers where either vector is zero count as 0.

    Returns:
        ρ in [0, 1].
    """
    _pair(h, h_hat, "h")
    check_ndim(h, 3, "h", "[batch, n_ant, n_sc]")
    inner = (h_hat.conj() * h).sum(dim=1).abs()
    norms = h.abs().square().sum(dim=1).sqrt() * h_hat.abs().square().sum(dim=1).sqrt()
    rho = torch.where(norms > 0, inner / norms.clamp_min(torch.finfo(norms.dtype).tiny), torch.zeros_like(inner))
    return float(rho.mean())


def mae_db(x_db: torch.Tensor, y_db: torch.Tensor) -> float:
    """Mean absolute error between two quantities already in dB (e.g. RSRP in dBm)."""
    _pair(x_db, y_db, "x_db")
    if x_db.is_complex():
        raise DataError("x_db: expected real values in dB, got a complex tensor")
    return float((x_db - y_db).abs().mean())


def to_db(power: torch.Tensor, floor: float = 1e-30) -> torch.Tensor:
    """``10 log10(power)``, with ``power`` clipped below at ``floor`` (linear)."""
    return 10 * torch.log10(power.clamp_min(floor))
