"""The classical baselines of the FDD precoding paper (Section VI-B), as precoders ``h -> W``.

* **ZF: CSIT** — zero forcing on the true channels, equal power per user
  (``w_k = sqrt(P/K) m_k / ‖m_k‖``, ``m_k`` the columns of ``H^H (H H^H)^{-1}``). Every ZF
  here loads the Gram matrix by :data:`ZF_LOADING` of the channel power, which changes nothing
  measurable on well-conditioned channels and keeps ZF defined on coarsely quantized ones.
* **ZF: Imperfect CE & Perfect Feedback** — each user receives ``L`` DFT pilots (the first
  ``L`` columns of the unitary DFT matrix, ``‖x_l‖² = P``; the paper's authors use these),
  estimates its channel by LMMSE with the training set's channel covariance, and the estimate
  reaches the BS without error; ZF (equal power) on the estimates.
* **ZF: Perfect CE & Imperfect Feedback** — each user knows its channel and feeds back the
  index of an ``N``-tier residual VQ codebook of ``B`` bits built by Lloyd's algorithm on the
  training channels (``[Re h; Im h]``, tier by tier on the residuals); ZF on the quantized
  channels. One codebook serves every user (our users are exchangeable; the authors build one
  per user slot from the same distribution).
* **WMMSE: CSIT** — weighted sum-rate WMMSE (unit weights) on the true channels, a reference
  curve (:func:`chanlab.classical.wmmse.wmmse`).

All are batched over drops; rates are always computed with the true channels.
"""

from __future__ import annotations

import torch

from chanlab.classical.channel_estimation import dft_pilots, lmmse_estimate, receive_pilots, sample_covariance
from chanlab.classical.linear_precoding import rzf
from chanlab.core.errors import ConfigError
from chanlab.quant.residual_vq import ResidualVQ


# Relative diagonal loading of the ZF inversion: negligible for any well-conditioned channel, but
# it keeps ZF defined when coarse feedback gives two users the same quantized channel (a
# singular Gram matrix), where it degrades gracefully towards a pseudo-inverse.
ZF_LOADING = 1e-6


def zf_csit(h: torch.Tensor, power: float = 1.0) -> torch.Tensor:
    """ZF on the channels ``h`` the BS believes, equal power per user: ``W`` ``[batch, M, K]``
    (``H^H (H H^H + ε I)^{-1}`` with ``ε`` = :data:`ZF_LOADING` times the mean channel power)."""
    loading = ZF_LOADING * h.abs().square().sum(-1).mean(-1)
    return rzf(h, power, loading, power_split="equal")


class LmmseZf:
    """ZF on LMMSE estimates from ``L`` DFT pilots (perfect feedback of the estimate).

    Args:
        covariance: ``[M, M]`` channel covariance (use :meth:`fit`).
        n_pilots: ``L``.
    """

    def __init__(self, covariance: torch.Tensor, n_pilots: int):
        self.covariance = covariance
        self.n_pilots = int(n_pilots)

    @classmethod
    def fit(cls, h_train: torch.Tensor, n_pilots: int) -> LmmseZf:
        return cls(sample_covariance(h_train), n_pilots)

    def estimate(self, h: torch.Tensor, noise_power: float, power: float = 1.0,
                 generator: torch.Generator | None = None) -> torch.Tensor:
        x = dft_pilots(h.shape[-1], self.n_pilots, power, dtype=h.dtype, device=h.device)
        y = receive_pilots(h, x, noise_power, generator=generator)
        return lmmse_estimate(y, x, self.covariance.to(h.device, h.dtype), noise_power)

    def __call__(self, h: torch.Tensor, noise_power: float, power: float = 1.0,
                 generator: torch.Generator | None = None) -> torch.Tensor:
        if h.shape[1] > self.n_pilots:
            raise ConfigError(f"n_pilots: ZF on LMMSE estimates needs L >= K; with a shared covariance every "
                              f"estimate lies in the L-dimensional span of R X, so {h.shape[1]} users and "
                              f"L = {self.n_pilots} give a singular Gram matrix")
        return zf_csit(self.estimate(h, noise_power, power, generator), power)


class LloydRvqZf:
    """ZF on channels quantized by an ``N``-tier Lloyd residual VQ (perfect estimation).

    Args:
        n_ant: ``M`` (the quantized vectors are ``[Re h; Im h]`` of size ``2M``).
        tier_bits: bits per tier (``B = Σ B_n``).
    """

    def __init__(self, n_ant: int, tier_bits: list[int] | tuple[int, ...], seed: int = 0):
        self.n_ant = int(n_ant)
        self.rvq = ResidualVQ(2 * self.n_ant, tier_bits, seed=seed)
        self.rvq.eval()
        self.tier_mse: list[float] = []

    @staticmethod
    def _real(h: torch.Tensor) -> torch.Tensor:
        return torch.cat([h.real, h.imag], dim=-1).reshape(-1, 2 * h.shape[-1])

    def fit(self, h_train: torch.Tensor, n_iter: int = 20, seed: int = 0) -> LloydRvqZf:
        """Lloyd codebooks tier by tier on the training users' channels."""
        self.tier_mse = self.rvq.fit_lloyd(self._real(h_train), n_iter=n_iter, seed=seed)
        return self

    def quantize(self, h: torch.Tensor) -> torch.Tensor:
        """The channels the BS reconstructs from the users' indices, ``[batch, K, M]``."""
        with torch.no_grad():
            x_q, _ = self.rvq.quantize(self._real(h).to(next(self.rvq.parameters()).device))
        x_q = x_q.to(h.device).reshape(*h.shape[:-1], 2 * self.n_ant)
        return torch.complex(x_q[..., :self.n_ant], x_q[..., self.n_ant:])

    def feedback_bits(self) -> int:
        return self.rvq.stream_bits()

    def __call__(self, h: torch.Tensor, noise_power: float, power: float = 1.0,
                 generator: torch.Generator | None = None) -> torch.Tensor:
        return zf_csit(self.quantize(h), power)


def wmmse_csit(h: torch.Tensor, noise_power: float, power: float = 1.0, n_iter: int = 100) -> torch.Tensor:
    """WMMSE (unit weights) with perfect CSIT under the total power ``P``: ``[batch, M, K]``."""
    from chanlab.classical.wmmse import wmmse

    return wmmse(h, noise_power, power, n_iter=n_iter)
