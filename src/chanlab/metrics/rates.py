"""SINR, per-user rates and sum rate of a linearly precoded multi-user downlink.

The model is Eq. (1)-(3) of the cell-free paper (``cellfree-robust-ap-clustering.txt``,
Sec. II-A)::

    y_i      = h_i^H v_i s_i + sum_{j != i} h_i^H v_j s_j + z_i,     z_i ~ CN(0, sigma_i^2)
    SINR_i   = |h_i^H v_i|^2 / (sum_{j != i} |h_i^H v_j|^2 + sigma_i^2)
    R_i      = log2(1 + SINR_i)                                      [bit/s/Hz]

The symbols are unit-power (``E|s_i|^2 = 1``), so the transmit power sits in the precoders.

Layouts:

* ``h``: ``[batch, n_users, n_tx]`` complex. Row ``i`` is user ``i``'s channel.
* ``v``: ``[batch, n_tx, n_users]`` complex. Column ``j`` is the precoder ``v_j`` of user
  ``j``.

Conjugation (keyword ``conj``):

* ``conj=True`` (default, the paper's convention): row ``i`` holds the entries of the column
  vector ``h_i``, and the effective gain is ``h_i^H v_j = sum_n conj(h[i, n]) v[n, j]``. That
  is ``G = conj(h) @ v``.
* ``conj=False``: row ``i`` already holds ``h_i^H`` (a receive-side row vector). The gain is the
  plain product ``G = h @ v``.

Cell-free tensors (``[batch, n_users, n_aps, n_ant]``) follow the paper's stacking
``h_i = [h_i^1; ...; h_i^Q]``: AP-major, antenna-minor. So ``flatten_cellfree`` is a reshape
to ``[batch, n_users, n_aps * n_ant]``, and ``h_i^H v_i = sum_q (h_i^q)^H v_i^q``. Per-user
beamformers ``v_i^q`` are stored like the channels, as ``[batch, n_users, n_aps, n_ant]``.
:func:`unflatten_cellfree` and :func:`flatten_cellfree_precoder` convert them to and from the
``[batch, n_aps * n_ant, n_users]`` layout. :func:`sinr` and the rate functions also take the
4-D layouts directly.

All functions are batched, differentiable in ``h`` and ``v`` (they serve as unsupervised
training losses), and run on whatever device and dtype they are given. Real outputs use the
real dtype that matches the (promoted) complex dtype.
"""

from __future__ import annotations

import math

import torch

from chanlab.core.errors import DataError
from chanlab.core.validation import check_complex, check_ndim, operand_dtype

_LN2 = math.log(2.0)


def _shape(x: torch.Tensor) -> list[int]:
    return [int(s) for s in x.shape]


def flatten_cellfree(h: torch.Tensor) -> torch.Tensor:
    """Stack per-AP channels into one channel vector per user.

    Args:
        h: ``[batch, n_users, n_aps, n_ant]`` complex, ``h[b, i, q]`` = ``h_i^q``.

    Returns:
        ``[batch, n_users, n_aps * n_ant]``, with entry ``q * n_ant + m`` = ``h_i^q[m]``.
        This is the paper's ``h_i = [h_i^1; ...; h_i^Q]``. The result is a view when
        possible.
    """
    check_ndim(h, 4, "h", "[batch, n_users, n_aps, n_ant]")
    return h.reshape(h.shape[0], h.shape[1], h.shape[2] * h.shape[3])


def flatten_cellfree_precoder(v: torch.Tensor) -> torch.Tensor:
    """Turn per-user, per-AP beamformers into the precoding matrix layout.

    This is the inverse of :func:`unflatten_cellfree`.

    Args:
        v: ``[batch, n_users, n_aps, n_ant]``, ``v[b, i, q]`` = ``v_i^q``.

    Returns:
        ``[batch, n_aps * n_ant, n_users]``. Column ``i`` is ``v_i = [v_i^1; ...; v_i^Q]``.
    """
    check_ndim(v, 4, "v", "[batch, n_users, n_aps, n_ant]")
    return v.reshape(v.shape[0], v.shape[1], v.shape[2] * v.shape[3]).transpose(1, 2)


def unflatten_cellfree(v: torch.Tensor, n_aps: int) -> torch.Tensor:
    """Split a precoding matrix into per-user, per-AP beamformers ``v_i^q``.

    Args:
        v: ``[batch, n_aps * n_ant, n_users]``, column ``i`` = ``v_i``.
        n_aps: number of APs ``Q``. It must divide ``v.shape[1]``.

    Returns:
        ``[batch, n_users, n_aps, n_ant]`` with ``out[b, i, q]`` = ``v_i^q``. The per-AP power
        of C1 (Eq. 7) is then ``out.abs().square().sum((1, 3))``.
    """
    check_ndim(v, 3, "v", "[batch, n_aps * n_ant, n_users]")
    if isinstance(n_aps, bool) or not isinstance(n_aps, int) or n_aps < 1:
        raise DataError(f"n_aps: expected a positive integer, got {n_aps!r}")
    n_tx = int(v.shape[1])
    if n_tx % n_aps:
        raise DataError(f"v: expected n_tx = v.shape[1] divisible by n_aps={n_aps}, got n_tx={n_tx}")
    return v.transpose(1, 2).reshape(v.shape[0], v.shape[2], n_aps, n_tx // n_aps)


def _prepare(h: torch.Tensor, v: torch.Tensor, check: bool) -> tuple[torch.Tensor, torch.Tensor]:
    """Validate and bring ``h`` and ``v`` to ``[B, I, N]`` and ``[B, N, I]`` of one complex dtype."""
    if not isinstance(h, torch.Tensor) or not isinstance(v, torch.Tensor):
        raise DataError(f"h, v: expected torch.Tensors, got {type(h).__name__}, {type(v).__name__}")
    check_complex(h, "h")
    check_complex(v, "v")
    check_ndim(h, (3, 4), "h", "[batch, n_users, n_tx] or [batch, n_users, n_aps, n_ant]")
    check_ndim(v, (3, 4), "v", "[batch, n_tx, n_users] or [batch, n_users, n_aps, n_ant]")
    if h.ndim == 4:
        h = flatten_cellfree(h)
    if v.ndim == 4:
        v = flatten_cellfree_precoder(v)
    b, n_users, n_tx = _shape(h)
    if _shape(v) != [b, n_tx, n_users]:
        raise DataError(
            f"v: expected shape [batch={b}, n_tx={n_tx}, n_users={n_users}] to match h "
            f"(after flattening any cell-free layout), got {_shape(v)}")
    dtype = operand_dtype(h, v, ("h", "v"), check)
    return h.to(dtype), v.to(dtype)


def noise_matrix(noise_power: float | torch.Tensor, batch: int, n_users: int, real: torch.dtype,
                 device: torch.device, check: bool = True) -> torch.Tensor:
    """Check ``noise_power`` (a float, or a real tensor broadcastable to ``[batch, n_users]``)
    and return it as a real ``[batch, n_users]`` tensor on ``device``."""
    if isinstance(noise_power, torch.Tensor):
        if noise_power.is_complex() or not (noise_power.is_floating_point() or noise_power.dtype
                                            in (torch.int32, torch.int64)):
            raise DataError(f"noise_power: expected a real tensor, got dtype {noise_power.dtype}")
        try:
            sigma2 = torch.broadcast_to(noise_power.to(device=device, dtype=real), (batch, n_users))
        except RuntimeError:
            raise DataError(f"noise_power: expected a shape broadcastable to [batch={batch}, "
                            f"n_users={n_users}], got {_shape(noise_power)}") from None
        if check and sigma2.numel():
            if not bool(torch.isfinite(sigma2).all()) or bool((sigma2 <= 0).any()):
                raise DataError("noise_power: expected finite values > 0, got "
                                f"min {float(sigma2.min())}, max {float(sigma2.max())}")
        return sigma2
    return torch.full((batch, n_users), scalar_noise_power(noise_power), dtype=real, device=device)


def scalar_noise_power(noise_power: object) -> float:
    """A noise power given as one number (not a bool), checked finite and > 0, as a float."""
    if isinstance(noise_power, bool):
        raise DataError(f"noise_power: expected a float or a tensor, got {noise_power!r}")
    try:
        value = float(noise_power)
    except (TypeError, ValueError):
        raise DataError(f"noise_power: expected a float or a tensor, got {noise_power!r}") from None
    if not math.isfinite(value) or value <= 0:
        raise DataError(f"noise_power: expected a finite number > 0, got {value}")
    return value


def sinr(h: torch.Tensor, v: torch.Tensor, noise_power: float | torch.Tensor, *,
         conj: bool = True, check: bool = True) -> torch.Tensor:
    """Per-user SINR of Eq. (2): ``|g_ii|^2 / (sum_{j != i} |g_ij|^2 + sigma_i^2)``.

    Here ``g_ij`` is the effective gain of user ``j``'s stream at user ``i``. With ``conj=True``
    it is ``h_i^H v_j``; with ``conj=False`` it is ``(h @ v)[i, j]`` (see the module
    docstring).

    Args:
        h: ``[batch, n_users, n_tx]`` complex, or cell-free ``[batch, n_users, n_aps, n_ant]``.
        v: ``[batch, n_tx, n_users]`` complex (column ``j`` serves user ``j``), or cell-free
            per-user beamformers ``[batch, n_users, n_aps, n_ant]``.
        noise_power: ``sigma_i^2 > 0``, in the same power units as ``|h^H v|^2``. A float, or a
            real tensor broadcastable to ``[batch, n_users]`` (for example ``[batch, 1]`` or
            ``[n_users]``).
        conj: whether ``h`` holds ``h_i`` (True, conjugated in the product) or ``h_i^H``.
        check: run the finiteness and positivity checks. These force a device sync; hot
            training loops may turn them off. Shape checks always run.

    Returns:
        ``[batch, n_users]`` real SINR (linear, not dB).
    """
    h, v = _prepare(h, v, check)
    b, n_users, _ = _shape(h)
    g = torch.matmul(h.conj() if conj else h, v)  # [B, I, I], g[b, i, j] = gain of stream j at user i
    power = g.real.square() + g.imag.square()  # avoids abs()'s gradient singularity at 0
    signal = torch.diagonal(power, dim1=-2, dim2=-1)
    # Sum the off-diagonal terms by masking, not as "total - signal". The subtraction has an
    # error of about one ulp of the signal. That error swamps the denominator when the
    # interference and the noise are both that small (near-zero-forcing at very high SNR).
    off = ~torch.eye(n_users, dtype=torch.bool, device=h.device)
    interference = (power * off).sum(-1)
    sigma2 = noise_matrix(noise_power, b, n_users, power.dtype, h.device, check)
    return signal / (interference + sigma2)


def user_rates(h: torch.Tensor, v: torch.Tensor, noise_power: float | torch.Tensor, *,
               conj: bool = True, check: bool = True) -> torch.Tensor:
    """Per-user achievable rate ``log2(1 + SINR_i)`` of Eq. (3), in bit/s/Hz.

    Arguments are as for :func:`sinr`.

    Returns:
        ``[batch, n_users]`` real.
    """
    # log1p keeps low-SINR users (SINR << 1) accurate.
    return torch.log1p(sinr(h, v, noise_power, conj=conj, check=check)) / _LN2


def sum_rate(h: torch.Tensor, v: torch.Tensor, noise_power: float | torch.Tensor, *,
             conj: bool = True, check: bool = True) -> torch.Tensor:
    """Sum over users of :func:`user_rates`, in bit/s/Hz.

    Arguments are as for :func:`sinr`.

    Returns:
        ``[batch]`` real.
    """
    return user_rates(h, v, noise_power, conj=conj, check=check).sum(-1)


__all__ = ["flatten_cellfree", "flatten_cellfree_precoder", "sinr", "sum_rate",
           "unflatten_cellfree", "user_rates"]
