"""Cell-free downlink channels with a bounded CSI-error model.

This follows Chen et al., *Computationally Efficient Unsupervised Deep Learning for Robust Joint
AP Clustering and Beamforming Design in Cell-Free Systems* (``cellfree-robust-ap-clustering.txt``):

* **System (Sec. II-A).** ``Q`` APs with ``M`` antennas each serve ``I`` single-antenna users.
  ``h_i^q`` (``M`` entries) is the channel from AP ``q`` to user ``i``. The stacked channel of
  user ``i`` is ``h_i = [h_i^1; ...; h_i^Q]`` (``QM`` entries). The received signal is
  ``y_i = h_i^H v_i s_i + sum_{j != i} h_i^H v_j s_j + z_i`` (Eq. 1).
* **Large-scale fading (Sec. V).** ``beta_i^q = (200 / d_i^q)^3 * L_i^q`` with
  ``10 log10 L_i^q ~ N(0, 64)``, i.e. 8 dB log-normal shadowing. ``d`` is in metres. The gain is
  relative: it is 1 at 200 m. The paper names no absolute path-loss reference, no bandwidth
  and no noise figure. Use :func:`noise_power_for_snr` to choose the noise from an SNR.
* **Small-scale fading.** Rayleigh, ``CN(0, beta_i^q I_M)``, independent across APs, users and
  antennas. This is the usual reading of the "geographic location channel model" of the
  paper's refs. [9], [17].
* **Bounded CSI error (Sec. II-C, Eq. 6).** ``h_i^q = h_hat_i^q + dh_i^q`` with
  ``||dh_i^q||_2 <= eps_i^q``.
* **Error level (Sec. V).** ``eta_i = ||dh_i||_2 / ||h_i||_2``.

Choices the paper leaves open, and what this module does:

* **Layout.** APs and users are drawn independently and uniformly in an ``area x area`` square.
  A new layout is drawn for every drop. There is no wrap-around and no AP grid, because the
  paper mentions neither. The paper gives no area, so the default is 1 km x 1 km. Distances
  are horizontal (2-D) and are clipped below at ``min_distance``.
* **Which channel is Rayleigh.** The *estimate* ``h_hat`` is drawn ``CN(0, beta I_M)``, and the
  true channel is ``h = h_hat + dh``. The network and the robust design only ever see
  ``h_hat`` and ``eps``, so the estimate should carry the stated statistics. ``h`` is one
  feasible member of the uncertainty set, and ``E||h_i^q||^2 = M beta (1 + eta^2)`` in sphere
  mode.
* **Error bounds.** ``eps_i^q = eta * ||h_hat_i^q||_2``. This makes the per-user bound
  ``sqrt(sum_q (eps_i^q)^2) = eta * ||h_hat_i||_2``, so the per-AP radii add up to the paper's
  per-user error level. It also depends only on what the transmitter knows. Two alternatives
  were rejected:

  * ``eta * ||h_i^q||`` would leak the true channel into the design's input.
  * ``eta * sqrt(M beta)`` would let the realised level drift with every fading draw.

* **Drawing dh.** :func:`sample_bounded_error` draws an isotropic direction. Its radius is
  either ``eps`` ("sphere", the default) or uniform in the ball ("ball").

  * **Sphere mode.** ``||dh_i|| = eta ||h_hat_i||`` (up to the 2e-6 margin). By the triangle inequality, the
    realised level ``||dh_i|| / ||h_i||`` lies in ``[eta / (1 + eta), eta / (1 - eta)]``
    (for ``eta < 1``). On average it is about ``eta / sqrt(1 + eta^2)``.
  * **Ball mode.** The radius has ``E r^2 = eps^2 M / (M + 1)``, so the realised level is
    about ``eta * sqrt(M / (M + 1))``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from chanlab.core.device import select_device
from chanlab.core.errors import ConfigError, DataError
from chanlab.core.seeding import torch_generator
from chanlab.core.validation import (
    check_complex, check_finite, check_int_range, check_positive, check_real,
)

#: Values stated in the paper's Sec. V ("unless otherwise stated").
PAPER_N_APS = 16
PAPER_N_USERS = 16
PAPER_N_ANT = 4
#: Per-AP power budget (C1 in Eq. 7), in the same linear units as the noise power.
PAPER_P_MAX = 1.0
#: Shadowing standard deviation: 10 log10 L ~ N(0, 64).
PAPER_SHADOWING_DB = 8.0
#: Reference distance of the (200 / d)^3 path-loss law, in metres.
REFERENCE_DISTANCE_M = 200.0
PATH_LOSS_EXPONENT = 3.0

#: Relative safety margin on the error radius, in units of machine epsilon. Without it, a
#: radius of exactly eps can come out one rounding step above eps after normalisation.
_RADIUS_MARGIN_ULPS = 16

_MODES = ("sphere", "ball")


@dataclass(frozen=True)
class CellFreeLayout:
    """Sizes of a cell-free deployment.

    The positions themselves are drawn anew for each drop and returned in
    :class:`CellFreeDrop`.

    Attributes:
        area: side of the square deployment area in metres.
        n_aps: number of APs ``Q``.
        n_ant: antennas per AP ``M``.
        n_users: number of single-antenna users ``I``.
    """

    area: float = 1000.0
    n_aps: int = PAPER_N_APS
    n_ant: int = PAPER_N_ANT
    n_users: int = PAPER_N_USERS

    def __post_init__(self) -> None:
        check_positive(self.area, "area", error=ConfigError)
        check_int_range(self.n_aps, "n_aps", low=1, error=ConfigError)
        check_int_range(self.n_ant, "n_ant", low=1, error=ConfigError)
        check_int_range(self.n_users, "n_users", low=1, error=ConfigError)

    @property
    def n_tx(self) -> int:
        """Total number of transmit antennas ``Q * M``."""
        return self.n_aps * self.n_ant


@dataclass
class CellFreeDrop:
    """A batch of cell-free channel drops.

    The real tensors (``eps``, ``beta``, positions) use the real dtype that matches the complex
    dtype: float32 for complex64 and float64 for complex128.

    Attributes:
        h_hat: ``[batch, n_users, n_aps, n_ant]`` complex, the estimated CSI ``h_hat_i^q``.
        h: ``[batch, n_users, n_aps, n_ant]`` complex. A feasible true channel
            ``h = h_hat + delta_h``.
        delta_h: ``[batch, n_users, n_aps, n_ant]`` complex, the error as drawn. It satisfies
            ``||delta_h_i^q||_2 <= eps_i^q`` exactly. ``h - h_hat`` recomputed from ``h`` can
            differ from it by the rounding of the sum, about ``1e-7 * ||h_hat||`` in
            complex64.
        eps: ``[batch, n_users, n_aps]`` real, the error radii ``eps_i^q = eta ||h_hat_i^q||``.
        beta: ``[batch, n_users, n_aps]`` real, the linear large-scale gain
            ``(200/d)^3 10^(sigma z / 10)``.
        ap_pos: ``[batch, n_aps, 2]`` AP positions in metres.
        user_pos: ``[batch, n_users, 2]`` user positions in metres.
        layout: the sizes these drops were drawn with.
        error_level: the error level ``eta`` used for ``eps``.
    """

    h_hat: torch.Tensor
    h: torch.Tensor
    delta_h: torch.Tensor
    eps: torch.Tensor
    beta: torch.Tensor
    ap_pos: torch.Tensor
    user_pos: torch.Tensor
    layout: CellFreeLayout
    error_level: float

    def __len__(self) -> int:
        return int(self.h_hat.shape[0])


def path_gain(distance: torch.Tensor, min_distance: float = 1.0) -> torch.Tensor:
    """Distance-dependent gain ``(200 / max(d, min_distance))^3``, without shadowing.

    Args:
        distance: real tensor of distances in metres, any shape.
        min_distance: distances below this (metres) are clipped to it. Without the clip, a user
            standing on an AP would get an infinite gain.

    Returns:
        Real tensor of linear gains, same shape and dtype as ``distance``.
    """
    check_real(distance, "distance")
    check_positive(min_distance, "min_distance", error=ConfigError)
    d = distance.clamp_min(min_distance)
    return (REFERENCE_DISTANCE_M / d) ** PATH_LOSS_EXPONENT


def noise_power_for_snr(snr_db: float, p_max: float = PAPER_P_MAX) -> float:
    """Noise variance ``sigma^2`` that gives ``snr_db`` at the 200 m reference distance.

    The paper's large-scale model is normalised: the gain is 1 at 200 m and ``P_max = 1``.
    It states no noise power, bandwidth or noise figure, so a thermal-noise helper in dBm would
    have no absolute path-loss reference to pair with. Instead, this helper fixes the
    single-antenna SNR ``p_max * 1 / sigma^2`` of a link at 200 m without shadowing.

    Args:
        snr_db: reference SNR in dB.
        p_max: transmit power in the same linear units as the returned noise power.

    Returns:
        ``sigma^2 = p_max * 10^(-snr_db / 10)``, in the units of ``p_max``. Pass it as
        ``noise_power`` to :mod:`chanlab.metrics.rates`.
    """
    if not math.isfinite(snr_db):
        raise ConfigError(f"snr_db: expected a finite number, got {snr_db}")
    check_positive(p_max, "p_max", error=ConfigError)
    return float(p_max) * 10.0 ** (-float(snr_db) / 10.0)


def _radius_margin(real_dtype: torch.dtype) -> float:
    return 1.0 - _RADIUS_MARGIN_ULPS * torch.finfo(real_dtype).eps


def sample_bounded_error(h_hat: torch.Tensor, eps: torch.Tensor,
                         generator: torch.Generator | None = None, *,
                         mode: str = "sphere") -> torch.Tensor:
    """Draw a random error ``dh`` with ``||dh[..., :]||_2 <= eps`` for every vector.

    The direction is isotropic in ``C^M``: a normalised ``CN(0, I_M)`` draw, independent of
    ``h_hat``. The radius depends on ``mode``:

    * ``"sphere"`` (default): ``eps``. The error sits on the boundary of the uncertainty set,
      so the realised error level equals the nominal one.
    * ``"ball"``: ``eps * U^(1 / (2M))``, which gives a point uniform in the ball
      (``C^M`` is ``R^(2M)``).

    In both modes the radius is shrunk by a relative ``16 * machine epsilon`` (about 2e-6 in
    float32). This keeps the computed norm ``<= eps`` despite rounding, so the bound holds
    exactly in the working precision.

    Args:
        h_hat: ``[..., M]`` complex. Only its shape, dtype and device are used.
        eps: ``[...]`` real, with ``h_hat.shape[:-1]`` and entries ``>= 0``.
        generator: a ``torch.Generator`` on ``h_hat``'s device. ``None`` uses torch's
            global generator.
        mode: ``"sphere"`` or ``"ball"``.

    Returns:
        ``[..., M]`` complex error with the dtype and device of ``h_hat``.
    """
    check_complex(h_hat, "h_hat")
    check_real(eps, "eps")
    if mode not in _MODES:
        raise ConfigError(f"mode: expected one of {_MODES}, got {mode!r}")
    if h_hat.ndim < 1 or tuple(eps.shape) != tuple(h_hat.shape[:-1]):
        raise DataError(f"eps: expected shape {list(h_hat.shape[:-1])} (h_hat.shape[:-1]), "
                        f"got {list(eps.shape)}")
    check_finite(eps, "eps")
    if eps.numel() and bool((eps < 0).any()):
        raise DataError("eps: expected error radii >= 0, got negative entries")
    real = h_hat.real.dtype
    m = h_hat.shape[-1]
    u = torch.randn(h_hat.shape, dtype=h_hat.dtype, device=h_hat.device, generator=generator)
    # A CN(0, I) draw is exactly zero with probability 0. The clamp only keeps a 0/0 out.
    norm = torch.linalg.vector_norm(u, dim=-1).clamp_min(torch.finfo(real).tiny)
    radius = eps.to(device=h_hat.device, dtype=real) * _radius_margin(real)
    if mode == "ball":
        uni = torch.rand(eps.shape, dtype=real, device=h_hat.device, generator=generator)
        radius = radius * uni ** (1.0 / (2 * m))
    return u * (radius / norm).unsqueeze(-1)


def generate_cellfree(num: int, *, n_aps: int = PAPER_N_APS, n_ant: int = PAPER_N_ANT,
                      n_users: int = PAPER_N_USERS, area: float = 1000.0,
                      shadowing_db: float = PAPER_SHADOWING_DB, error_level: float = 0.1,
                      min_distance: float = 1.0, error_mode: str = "sphere", seed: int = 0,
                      device: str | torch.device = "cpu",
                      dtype: torch.dtype = torch.complex64) -> CellFreeDrop:
    """Draw ``num`` independent cell-free drops: layout, fading, estimate and bounded error.

    See the module docstring for the model and the choices behind it. In order, each call
    draws the AP positions, the user positions, the shadowing, the Rayleigh fading and then
    the error, all from one ``torch.Generator`` seeded with ``seed`` on ``device``. The same
    ``(seed, device, dtype, sizes)`` therefore gives the same drop. CPU and CUDA streams
    differ.

    Args:
        num: number of drops (batch size).
        n_aps: ``Q``, APs per drop. The paper uses 16.
        n_ant: ``M``, antennas per AP. The paper uses 4.
        n_users: ``I``, single-antenna users. The paper uses 16 (Sec. V).
        area: side of the square area in metres. The paper gives none.
        shadowing_db: standard deviation of the log-normal shadowing in dB. The paper uses 8.
        error_level: ``eta >= 0``. The radii are ``eps_i^q = eta ||h_hat_i^q||``.
        min_distance: distances are clipped below at this value, in metres.
        error_mode: how the feasible ``h`` is drawn inside the set, ``"sphere"`` or ``"ball"``
            (see :func:`sample_bounded_error`).
        seed: seed of the generator.
        device: ``"cpu"``, ``"cuda"``, ``"cuda:N"`` or ``"auto"``.
        dtype: ``torch.complex64`` or ``torch.complex128``.

    Returns:
        A :class:`CellFreeDrop`. Its channel tensors have shape
        ``[num, n_users, n_aps, n_ant]``.
    """
    check_int_range(num, "num", low=1, error=ConfigError)
    layout = CellFreeLayout(area=float(area), n_aps=n_aps, n_ant=n_ant, n_users=n_users)
    check_positive(shadowing_db, "shadowing_db", error=ConfigError, allow_zero=True)
    check_positive(error_level, "error_level", error=ConfigError, allow_zero=True)
    check_positive(min_distance, "min_distance", error=ConfigError)
    if error_mode not in _MODES:
        raise ConfigError(f"error_mode: expected one of {_MODES}, got {error_mode!r}")
    if dtype not in (torch.complex64, torch.complex128):
        raise ConfigError(f"dtype: expected torch.complex64 or torch.complex128, got {dtype}")
    dev = select_device(device)
    real = torch.float32 if dtype == torch.complex64 else torch.float64
    gen = torch_generator(seed, dev)

    ap_pos = torch.rand(num, n_aps, 2, generator=gen, dtype=real, device=dev) * area
    user_pos = torch.rand(num, n_users, 2, generator=gen, dtype=real, device=dev) * area
    # Explicit differences rather than torch.cdist: cdist's matmul path loses digits when two
    # points are close, and those are exactly the links with the strongest gain.
    dist = torch.linalg.vector_norm(user_pos[:, :, None, :] - ap_pos[:, None, :, :], dim=-1)
    z = torch.randn(num, n_users, n_aps, generator=gen, dtype=real, device=dev)
    beta = path_gain(dist, min_distance) * 10.0 ** (shadowing_db * z / 10.0)

    # For complex dtypes torch.randn draws CN(0, 1): real and imaginary parts each have
    # variance 1/2.
    g = torch.randn(num, n_users, n_aps, n_ant, generator=gen, dtype=dtype, device=dev)
    h_hat = g * beta.sqrt().unsqueeze(-1).to(dtype)
    eps = float(error_level) * torch.linalg.vector_norm(h_hat, dim=-1)
    dh = sample_bounded_error(h_hat, eps, gen, mode=error_mode)
    return CellFreeDrop(h_hat=h_hat, h=h_hat + dh, delta_h=dh, eps=eps, beta=beta, ap_pos=ap_pos,
                        user_pos=user_pos, layout=layout, error_level=float(error_level))


__all__ = [
    "CellFreeDrop", "CellFreeLayout", "PAPER_N_ANT", "PAPER_N_APS", "PAPER_N_USERS",
    "PAPER_P_MAX", "PAPER_SHADOWING_DB", "generate_cellfree", "noise_power_for_snr",
    "path_gain", "sample_bounded_error",
]
