"""Downlink pilots, their reception at the users, and LMMSE channel estimation.

The model is Eq. (1) of the FDD precoding paper (``fdd-scalable-precoding-rvq-egat.txt``,
Sec. II). The BS sends ``L`` pilot symbols from its ``M`` antennas, the columns of
``X = [x_1, ..., x_L]`` (``[M, L]`` complex, ``‖x_l‖² = P``). User ``k`` receives::

    y_k^H = h_k^H X + n_k^H,   i.e.   y_k = X^H h_k + n_k,   n_k ~ CN(0, σ² I_L).

Layouts follow :mod:`chanlab.metrics.rates`: channels ``h`` are ``[batch, K, M]`` with row ``k``
holding the entries of the column vector ``h_k``; received pilots ``y`` are ``[batch, K, L]``
with row ``k`` holding ``y_k``. In row form ``y = h @ conj(X) + n``.

**Pilots.** :func:`dft_pilots` returns the first ``L`` columns of the unitary ``M``-point DFT
matrix ``F[m, l] = exp(-2πj m l / M) / sqrt(M)``, scaled by ``sqrt(P)``: orthogonal columns
with ``‖x_l‖² = P`` (the orthogonal baseline the paper's authors use). It needs ``L <= M``.

**LMMSE.** With the zero-mean prior ``h_k ~ CN(0, R)`` (the paper's "ZF: Imperfect CE &
Perfect Feedback" baseline, Sec. VI-B), the linear MMSE estimate and its error are::

    ĥ_k = R X (X^H R X + σ² I_L)^{-1} y_k
    E‖ĥ_k - h_k‖² = tr(R - R X (X^H R X + σ² I_L)^{-1} X^H R)

(:func:`lmmse_mse` evaluates the second line). Only an ``L x L`` system is solved, never an
``M x M`` one. With one shared covariance and one noise power, a single solve
``G = (X^H R X + σ² I)^{-1} X^H R`` (``[L, M]``) serves every sample and user:
``ĥ = y @ conj(G)``. A per-sample covariance ``[batch, M, M]`` gives one ``L x L`` solve per
sample. A noise power that differs across samples or users (a tensor broadcastable to
``[batch, K]``) gives one ``L x L`` solve per (sample, user). ``torch.linalg.solve`` (LU with
partial pivoting) is used rather than an eigendecomposition. Its gradients stay finite when
eigenvalues repeat (DFT pilots with ``R = I``), so the estimator can sit inside a training
graph. ``X^H R X`` is symmetrized before the solve, so rounding cannot make it non-Hermitian.

**Covariance.** :func:`sample_covariance` returns the second moment ``R = E[h h^H]``, with no
mean subtracted, because the LMMSE prior above is zero-mean. Given ``[n, K, M]`` drops, it
pools all users. This is the per-user covariance when users are exchangeable, as in our
drops: every user is placed by the same random law, so every ``h_k`` has the same
distribution.

All functions are batched, run on the device of their inputs and follow the input dtype
(complex64 or complex128).
"""

from __future__ import annotations

import math

import torch

from chanlab.core.errors import ConfigError, DataError
from chanlab.core.validation import check_complex, check_finite, check_int_range, check_ndim, operand_dtype
from chanlab.metrics.rates import noise_matrix, scalar_noise_power


def _check_tensor(x, name: str) -> torch.Tensor:
    if not isinstance(x, torch.Tensor):
        raise DataError(f"{name}: expected a torch.Tensor, got {type(x).__name__}")
    return x


def _real_dtype(dtype: torch.dtype) -> torch.dtype:
    return torch.empty((), dtype=dtype).real.dtype


def dft_pilots(n_ant: int, n_pilots: int, power: float = 1.0, *, dtype: torch.dtype = torch.complex64,
               device: torch.device | str | None = None) -> torch.Tensor:
    """First ``L`` columns of the unitary ``M``-point DFT matrix, scaled to ``‖x_l‖² = power``.

    ``X[m, l] = sqrt(power / M) · exp(-2πj m l / M)``, so ``X^H X = power · I_L``.

    Args:
        n_ant: ``M >= 1``.
        n_pilots: ``1 <= L <= M`` (an ``M``-point DFT has only ``M`` orthogonal columns).
        power: per-pilot power ``P > 0``.
        dtype: a complex dtype.
        device: where to create the matrix.

    Returns:
        ``[M, L]`` complex.

    Raises:
        ConfigError: bad sizes, power or dtype.
    """
    check_int_range(n_ant, "n_ant", 1, error=ConfigError)
    check_int_range(n_pilots, "n_pilots", 1, int(n_ant), error=ConfigError)
    if isinstance(power, bool) or not isinstance(power, (int, float)) or not math.isfinite(power) or power <= 0:
        raise ConfigError(f"power: expected a finite number > 0, got {power!r}")
    if not isinstance(dtype, torch.dtype) or not dtype.is_complex:
        raise ConfigError(f"dtype: expected a complex torch dtype, got {dtype!r}")
    m = torch.arange(n_ant, dtype=torch.int64, device=device)
    col = torch.arange(n_pilots, dtype=torch.int64, device=device)
    # Reduce m*l mod M in integers first: the float64 angle then stays in [0, 2π) and exact.
    phase = (-2.0 * math.pi / n_ant) * torch.remainder(m[:, None] * col[None, :], n_ant).to(torch.float64)
    x = torch.polar(torch.full_like(phase, math.sqrt(power / n_ant)), phase)
    return x.to(dtype)


def sample_covariance(h: torch.Tensor) -> torch.Tensor:
    """Sample second moment ``R = (1/n) Σ_i h_i h_i^H`` (zero-mean prior: no centering).

    Args:
        h: ``[n, M]`` or ``[n, K, M]`` complex channel samples (row = the entries of ``h_i``).
            ``[n, K, M]`` drops pool all ``n·K`` user channels. This is the per-user
            covariance when users are exchangeable (every user is dropped by the same random
            law, as in our drops).

    Returns:
        ``[M, M]`` Hermitian (exactly: symmetrized), positive semidefinite, in the dtype of ``h``.
    """
    h = _check_tensor(h, "h")
    check_ndim(h, (2, 3), "h", "[n, M] or [n, K, M]")
    check_complex(h, "h")
    check_finite(h, "h")
    rows = h.reshape(-1, h.shape[-1])
    if rows.shape[0] < 1 or rows.shape[1] < 1:
        raise DataError(f"h: expected at least one sample and one antenna, got shape {list(h.shape)}")
    r = rows.transpose(0, 1) @ rows.conj() / rows.shape[0]   # r[a, b] = mean_i h_i[a] conj(h_i[b])
    return 0.5 * (r + r.mH)


def _check_pilots(pilots, n_ant: int | None = None) -> torch.Tensor:
    pilots = _check_tensor(pilots, "pilots")
    check_ndim(pilots, 2, "pilots", "[M, L]")
    check_complex(pilots, "pilots")
    if n_ant is not None and pilots.shape[0] != n_ant:
        raise DataError(f"pilots: expected {n_ant} rows (one per antenna, [M, L]), got shape {list(pilots.shape)}")
    if pilots.shape[1] < 1:
        raise DataError(f"pilots: expected at least one pilot column, got shape {list(pilots.shape)}")
    return pilots


def receive_pilots(h: torch.Tensor, pilots: torch.Tensor, noise_power: float | torch.Tensor, *,
                   generator: torch.Generator | None = None, check: bool = True) -> torch.Tensor:
    """Received pilots ``y_k = X^H h_k + n_k`` of every user (paper Eq. 1).

    Differentiable in ``h`` and ``pilots`` (learned pilots train through it).

    Args:
        h: ``[batch, K, M]`` complex channels.
        pilots: ``X``, ``[M, L]`` complex.
        noise_power: ``σ² > 0``: a float, or a real tensor broadcastable to ``[batch, K]``.
            The noise ``n_k ~ CN(0, σ² I_L)`` is drawn from ``generator`` (on ``h``'s device).
        generator: optional ``torch.Generator`` for reproducible noise.
        check: run the finiteness checks (they sync the device). Shape and dtype checks
            always run.

    Returns:
        ``y``, ``[batch, K, L]`` complex, in the promoted dtype of ``h`` and ``pilots``.
    """
    h = _check_tensor(h, "h")
    check_ndim(h, 3, "h", "[batch, K, M]")
    check_complex(h, "h")
    pilots = _check_pilots(pilots, int(h.shape[-1]))
    dtype = operand_dtype(h, pilots, ("h", "pilots"), check)
    b, k, _ = (int(s) for s in h.shape)
    y = h.to(dtype) @ pilots.to(dtype).conj()                       # [B, K, L]: y[b,k,l] = x_l^H h_k
    sigma2 = noise_matrix(noise_power, b, k, _real_dtype(dtype), h.device, check)
    noise = torch.randn(y.shape, dtype=dtype, device=h.device, generator=generator)  # CN(0, 1)
    return y + noise * sigma2.sqrt()[..., None]


def _scalar_noise(noise_power) -> float | None:
    """The noise power as a validated float if it is one number, else None."""
    if isinstance(noise_power, torch.Tensor) and (noise_power.numel() != 1 or noise_power.is_complex()):
        return None
    return scalar_noise_power(noise_power)


def _check_covariance(covariance, n_ant: int, batch: int | None) -> torch.Tensor:
    covariance = _check_tensor(covariance, "covariance")
    check_ndim(covariance, (2, 3), "covariance", "[M, M] or [batch, M, M]")
    if not (covariance.is_complex() or covariance.is_floating_point()):
        raise DataError(f"covariance: expected a complex or real floating dtype, got {covariance.dtype}")
    want = [n_ant, n_ant] if covariance.ndim == 2 else [batch, n_ant, n_ant]
    if [int(s) for s in covariance.shape] != want:
        layout = "[M, M]" if covariance.ndim == 2 else "[batch, M, M]"
        raise DataError(f"covariance: expected shape {want} {layout}, got {list(covariance.shape)}")
    return covariance


def _gain(pilots: torch.Tensor, covariance: torch.Tensor, dtype: torch.dtype) -> tuple[torch.Tensor, torch.Tensor]:
    """``R X`` (``[.., M, L]``) and the symmetrized ``X^H R X`` (``[.., L, L]``)."""
    x = pilots.to(dtype)
    rx = covariance.to(dtype) @ x
    c = x.mH @ rx
    return rx, 0.5 * (c + c.mH)


def lmmse_estimate(y: torch.Tensor, pilots: torch.Tensor, covariance: torch.Tensor,
                   noise_power: float | torch.Tensor, *, check: bool = True) -> torch.Tensor:
    """LMMSE channel estimate ``ĥ_k = R X (X^H R X + σ² I_L)^{-1} y_k`` (zero-mean prior).

    Args:
        y: ``[batch, K, L]`` complex received pilots (from :func:`receive_pilots`).
        pilots: ``X``, ``[M, L]`` complex.
        covariance: ``R = E[h h^H]``, ``[M, M]`` shared by all samples and users, or
            ``[batch, M, M]`` per sample (shared by its users). Complex or real; Hermitian
            positive semidefinite (not checked).
        noise_power: ``σ² > 0``. A single number costs one ``L x L`` solve (per sample with a
            per-sample covariance). A tensor broadcastable to ``[batch, K]`` costs one solve
            per (sample, user).
        check: run the finiteness checks (they sync the device).

    Returns:
        ``ĥ``, ``[batch, K, M]`` complex, in the promoted dtype of the inputs.
    """
    y = _check_tensor(y, "y")
    check_ndim(y, 3, "y", "[batch, K, L]")
    check_complex(y, "y")
    pilots = _check_pilots(pilots)
    n_ant, n_pilots = (int(s) for s in pilots.shape)
    b, k, n_y = (int(s) for s in y.shape)
    if n_y != n_pilots:
        raise DataError(f"y: expected L = {n_pilots} received samples per user (pilots are [M={n_ant}, "
                        f"L={n_pilots}]), got shape {[b, k, n_y]}")
    covariance = _check_covariance(covariance, n_ant, b)
    if len({y.device, pilots.device, covariance.device}) != 1:
        raise DataError(f"y, pilots, covariance: expected one device, got {y.device}, {pilots.device}, "
                        f"{covariance.device}")
    if check:
        check_finite(y, "y")
        check_finite(pilots, "pilots")
        check_finite(covariance, "covariance")
    dtype = torch.promote_types(torch.promote_types(y.dtype, pilots.dtype), covariance.dtype)
    if not dtype.is_complex:  # pragma: no cover - y is complex, so the promotion is too
        raise DataError(f"expected a complex computation dtype, got {dtype}")
    y = y.to(dtype)
    rx, c = _gain(pilots, covariance, dtype)                  # [.., M, L], [.., L, L]
    eye = torch.eye(n_pilots, dtype=dtype, device=y.device)
    sigma2 = _scalar_noise(noise_power)
    if sigma2 is not None:
        # G = (C + σ² I)^{-1} (R X)^H, [.., L, M]; ĥ_k = G^H y_k, i.e. ĥ = y @ conj(G).
        g = torch.linalg.solve(c + sigma2 * eye, rx.mH)
        return y @ g.conj()
    s2 = noise_matrix(noise_power, b, k, _real_dtype(dtype), y.device, check)        # [B, K]
    c = c.unsqueeze(-3) if c.ndim == 3 else c                                          # [B|1, 1|., L, L]
    a = c + s2[..., None, None].to(dtype) * eye                                       # [B, K, L, L]
    z = torch.linalg.solve(a, y.unsqueeze(-1)).squeeze(-1)                             # [B, K, L]
    return z @ rx.transpose(-2, -1)                                                    # ĥ_k = R X z_k


def lmmse_mse(pilots: torch.Tensor, covariance: torch.Tensor, noise_power: float) -> torch.Tensor:
    """Closed-form per-user LMMSE error ``E‖ĥ_k - h_k‖² = tr(R - R X (X^H R X + σ² I)^{-1} X^H R)``.

    Args:
        pilots: ``[M, L]`` complex.
        covariance: ``[M, M]`` or ``[batch, M, M]``.
        noise_power: ``σ² > 0`` (one number).

    Returns:
        Real scalar (``[]``), or ``[batch]`` for a per-sample covariance.
    """
    pilots = _check_pilots(pilots)
    n_ant, n_pilots = (int(s) for s in pilots.shape)
    covariance = _check_tensor(covariance, "covariance")
    covariance = _check_covariance(covariance, n_ant, int(covariance.shape[0]) if covariance.ndim == 3 else None)
    if covariance.device != pilots.device:
        raise DataError(f"pilots, covariance: expected one device, got {pilots.device} and {covariance.device}")
    sigma2 = _scalar_noise(noise_power)
    dtype = torch.promote_types(pilots.dtype, covariance.dtype)
    rx, c = _gain(pilots, covariance, dtype)
    eye = torch.eye(n_pilots, dtype=dtype, device=pilots.device)
    explained = rx @ torch.linalg.solve(c + sigma2 * eye, rx.mH)
    return (covariance.to(dtype) - explained).diagonal(dim1=-2, dim2=-1).real.sum(-1)


__all__ = ["dft_pilots", "lmmse_estimate", "lmmse_mse", "receive_pilots", "sample_covariance"]
