"""Linear multi-user precoders: MRT, ZF and regularized ZF, scaled to a total power budget.

Channels follow the rate convention of :mod:`chanlab.metrics.rates`: ``h`` is
``[batch, n_users, n_tx]`` with row ``h_i`` such that user i receives ``h_i^H v_j`` from the
precoder ``v_j``; precoders are ``[batch, n_tx, n_users]`` with column j serving user j.
With ``H`` the matrix of rows ``h_i^H`` (= ``h.conj()``), the effective channel is ``H V``.
"""

from __future__ import annotations

import torch

from chanlab.core.errors import DataError
from chanlab.core.validation import check_complex, check_finite, check_ndim


def _check(h: torch.Tensor) -> None:
    if not isinstance(h, torch.Tensor):
        raise DataError(f"h: expected a torch.Tensor, got {type(h).__name__}")
    check_ndim(h, 3, "h", "[batch, n_users, n_tx]")
    check_complex(h, "h")
    check_finite(h, "h")


def scale_to_power(v: torch.Tensor, power: float | torch.Tensor) -> torch.Tensor:
    """Scale each sample's precoder so that ``‖V_b‖_F² = power``.

    Args:
        v: ``[batch, n_tx, n_users]``.
        power: total transmit power (scalar or ``[batch]``).
    """
    norm2 = v.abs().square().sum(dim=(-2, -1), keepdim=True)
    power = torch.as_tensor(power, dtype=norm2.dtype, device=v.device).reshape(-1, 1, 1)
    return v * torch.sqrt(power / norm2.clamp_min(torch.finfo(norm2.dtype).tiny))


def mrt(h: torch.Tensor, power: float | torch.Tensor = 1.0) -> torch.Tensor:
    """Maximum-ratio transmission ``V ∝ H^H`` (i.e. ``v_i ∝ h_i``). Returns ``[batch, n_tx, n_users]``."""
    _check(h)
    return scale_to_power(h.transpose(-2, -1), power)


def equal_power_columns(v: torch.Tensor, power: float | torch.Tensor) -> torch.Tensor:
    """Scale every column of ``v`` ``[batch, n_tx, n_users]`` to ``‖v_k‖² = power / n_users``
    (equal power per user; the ZF baseline of the FDD precoding paper, Sec. VI-B)."""
    norm2 = v.abs().square().sum(dim=-2, keepdim=True)
    power = torch.as_tensor(power, dtype=norm2.dtype, device=v.device).reshape(-1, 1, 1) / v.shape[-1]
    return v * torch.sqrt(power / norm2.clamp_min(torch.finfo(norm2.dtype).tiny))


def rzf(h: torch.Tensor, power: float | torch.Tensor = 1.0, regularization: float | torch.Tensor = 0.0,
        *, power_split: str = "total") -> torch.Tensor:
    """Regularized zero forcing ``V ∝ H^H (H H^H + α I)^{-1}``; ``α = 0`` is plain ZF.

    ``power_split="total"`` scales the whole matrix to ``‖V‖_F² = power`` (the columns keep
    the relative norms of the pseudo-inverse); ``"equal"`` normalizes each column and gives
    every user ``power / n_users``: ``v_k = sqrt(P/K) m_k / ‖m_k‖``.

    ZF needs ``n_users <= n_tx`` and full-rank channels. Returns ``[batch, n_tx, n_users]``.
    """
    if power_split not in ("total", "equal"):
        raise DataError(f"power_split: expected 'total' or 'equal', got {power_split!r}")
    _check(h)
    n_users, n_tx = h.shape[-2], h.shape[-1]
    if n_users > n_tx and not torch.as_tensor(regularization).gt(0).all():
        raise DataError(f"zero forcing needs n_users <= n_tx, got {n_users} users and {n_tx} antennas")
    big_h = h.conj()
    gram = big_h @ big_h.mH
    alpha = torch.as_tensor(regularization, dtype=gram.real.dtype, device=h.device).reshape(-1, 1, 1)
    eye = torch.eye(n_users, dtype=gram.dtype, device=h.device)
    v = big_h.mH @ torch.linalg.solve(gram + alpha * eye, eye.expand_as(gram))
    return scale_to_power(v, power) if power_split == "total" else equal_power_columns(v, power)


def zf(h: torch.Tensor, power: float | torch.Tensor = 1.0, *, power_split: str = "total") -> torch.Tensor:
    """Zero forcing ``V ∝ H^H (H H^H)^{-1}``: no inter-user interference. ``[batch, n_tx, n_users]``.

    ``power_split`` as in :func:`rzf`."""
    return rzf(h, power, 0.0, power_split=power_split)
