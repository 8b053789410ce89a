"""Quantization and entropy coding of model updates ``δ = θ − θ_0`` (fine-tuning paper, eqs. 12–20).

A fine-tuned decoder is conveyed to the receiver as the difference from the backbone θ_0 that
both sides hold. Each entry of δ is quantized to ``N`` equispaced levels of width ``t``:

    Q_t(δ) = clip(⌊δ / t⌉ t, −K t, K t),   K = ⌊(N − 1) / 2⌋        (eqs. 12–14)

with ⌊·⌉ rounding halves up (eq. 14) and straight-through gradients (``∂Q_t/∂δ = 1``). The
paper clips at ``±(N − 1) t / 2``; for even ``N`` that bound is not a level, so the levels
here are the integers ``−K..K`` times ``t``: ``N`` levels for odd ``N``, ``N − 1`` for even.

The integer levels are range-coded (:mod:`chanlab.quant.range_coding`) with the pmf of a
fixed prior pushed through ``Q_t`` (eq. 15): level ``k`` gets ``P(δ ∈ [(k − ½) t, (k + ½) t))``,
and the two edge levels also take the prior's tails, because clipping sends every larger
update there. The priors are the uniform ``U(a, b)`` (eq. 16) and the truncated Gaussian
``TN(μ, σ², a, b)`` (eqs. 17–20). Both sides build the same table from the prior's numbers
alone, so the receiver needs nothing but θ_0, the prior and the stream.

    q = UpdateQuantizer(step=5e-4, n_bins=50)
    prior = TruncatedGaussianPrior(mu=0.0, sigma=0.01, a=-50 * 5e-4, b=50 * 5e-4)
    stream = encode_updates(q.indices(delta), prior, q)        # bytes
    levels = decode_updates(stream, delta.numel(), prior, q)   # int64 [n]
    theta_bar = theta_0 + q.dequantize(levels)
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
from scipy.special import ndtr

from chanlab.core.errors import BitstreamError, ConfigError, DataError
from chanlab.quant.range_coding import CodingTables, decode_symbols, encode_symbols

_MIN_PROB = 1e-9  # every level stays codable, however unlikely under the prior


def _positive(name: str, value) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value <= 0:
        raise ConfigError(f"{name}: expected a finite number > 0, got {value!r}")
    return float(value)


@dataclass(frozen=True)
class UpdateQuantizer:
    """``Q_t`` of eq. (12): levels ``k t`` for integers ``|k| <= K = (n_bins - 1) // 2``."""

    step: float
    n_bins: int

    def __post_init__(self):
        _positive("step", self.step)
        if isinstance(self.n_bins, bool) or not isinstance(self.n_bins, int) or self.n_bins < 2:
            raise ConfigError(f"n_bins: expected an integer >= 2, got {self.n_bins!r}")

    @property
    def half_levels(self) -> int:
        """``K``: the largest level index."""
        return (self.n_bins - 1) // 2

    @property
    def n_levels(self) -> int:
        return 2 * self.half_levels + 1

    def indices(self, delta: torch.Tensor) -> torch.Tensor:
        """Integer levels ``clip(⌊δ/t⌉, −K, K)`` (int64, same shape)."""
        k = torch.floor(delta.detach().double() / self.step + 0.5)
        return k.clamp(-self.half_levels, self.half_levels).to(torch.int64)

    def dequantize(self, levels: torch.Tensor, dtype: torch.dtype = torch.float32) -> torch.Tensor:
        """``k t`` in ``dtype``: the receiver computes exactly this from the decoded levels."""
        return levels.to(dtype) * torch.tensor(self.step, dtype=dtype)

    def quantize(self, delta: torch.Tensor) -> torch.Tensor:
        """``Q_t(δ)`` with straight-through gradients (the value is :meth:`dequantize` of the levels)."""
        q = self.dequantize(self.indices(delta), delta.dtype).to(delta.device)
        return delta + (q - delta).detach()


@dataclass(frozen=True)
class UniformPrior:
    """``δ ~ U(a, b)`` (eq. 16)."""

    a: float
    b: float

    def __post_init__(self):
        if not (math.isfinite(self.a) and math.isfinite(self.b) and self.a < self.b):
            raise ConfigError(f"uniform prior: expected finite a < b, got a={self.a}, b={self.b}")

    def cdf(self, x: np.ndarray) -> np.ndarray:
        return np.clip((np.asarray(x, dtype=np.float64) - self.a) / (self.b - self.a), 0.0, 1.0)


@dataclass(frozen=True)
class TruncatedGaussianPrior:
    """``δ ~ TN(μ, σ², a, b)`` (eqs. 17–20)."""

    mu: float
    sigma: float
    a: float
    b: float

    def __post_init__(self):
        _positive("sigma", self.sigma)
        if not (math.isfinite(self.a) and math.isfinite(self.b) and self.a < self.b and math.isfinite(self.mu)):
            raise ConfigError(f"truncated Gaussian prior: expected finite mu and a < b, got "
                              f"mu={self.mu}, a={self.a}, b={self.b}")
        lo, hi = ndtr((self.a - self.mu) / self.sigma), ndtr((self.b - self.mu) / self.sigma)
        if not hi - lo > 0:
            raise ConfigError("truncated Gaussian prior: [a, b] holds no probability mass")

    def cdf(self, x: np.ndarray) -> np.ndarray:
        x = np.clip(np.asarray(x, dtype=np.float64), self.a, self.b)
        lo, hi = ndtr((self.a - self.mu) / self.sigma), ndtr((self.b - self.mu) / self.sigma)
        return (ndtr((x - self.mu) / self.sigma) - lo) / (hi - lo)


UpdatePrior = UniformPrior | TruncatedGaussianPrior


def make_prior(name: str, quantizer: UpdateQuantizer, *, mu: float = 0.0, sigma: float = 0.01,
               support: float | None = None) -> UpdatePrior:
    """The paper's priors by name: ``"uniform"`` or ``"gaussian"``, on ``[−support, support]``.

    The default support is the paper's ``a = −N t``, ``b = N t``.
    """
    s = quantizer.n_bins * quantizer.step if support is None else _positive("support", support)
    if name == "uniform":
        return UniformPrior(-s, s)
    if name == "gaussian":
        return TruncatedGaussianPrior(mu, sigma, -s, s)
    raise ConfigError(f"update prior: expected 'uniform' or 'gaussian', got {name!r}")


def level_pmf(prior: UpdatePrior, quantizer: UpdateQuantizer) -> np.ndarray:
    """Eq. (15) with clipping: ``[2K + 1]`` probabilities of the levels ``−K..K`` (sum 1).

    Level ``k`` gets the prior's mass on ``[(k − ½) t, (k + ½) t)``; the edge levels also get
    the tails beyond them. Every level keeps at least ``1e-9`` so that it stays codable.
    """
    k = quantizer.half_levels
    edges = (np.arange(-k, k + 2, dtype=np.float64) - 0.5) * quantizer.step
    cdf = prior.cdf(edges)
    cdf[0], cdf[-1] = 0.0, 1.0  # the clipped tails land on the edge levels
    pmf = np.maximum(np.diff(cdf), _MIN_PROB)
    return pmf / pmf.sum()


def update_tables(prior: UpdatePrior, quantizer: UpdateQuantizer) -> CodingTables:
    """One-channel coding table for the levels (its escape entry is never used: levels are clipped)."""
    pmf = np.concatenate([[_MIN_PROB], level_pmf(prior, quantizer)])
    return CodingTables(np.array([-quantizer.half_levels]), (pmf / pmf.sum())[None, :])


def update_bits(levels: torch.Tensor | np.ndarray, prior: UpdatePrior, quantizer: UpdateQuantizer) -> float:
    """Ideal code length of the levels in bits, ``−Σ log2 p[δ̄]``."""
    levels = np.asarray(torch.as_tensor(levels).cpu(), dtype=np.int64).reshape(-1)
    _check_levels(levels, quantizer)
    pmf = level_pmf(prior, quantizer)
    return float(-np.log2(pmf[levels + quantizer.half_levels]).sum())


def _check_levels(levels: np.ndarray, quantizer: UpdateQuantizer) -> None:
    if levels.size and int(np.abs(levels).max()) > quantizer.half_levels:
        raise DataError(f"update levels must lie in [−{quantizer.half_levels}, {quantizer.half_levels}]")


def encode_updates(levels: torch.Tensor | np.ndarray, prior: UpdatePrior, quantizer: UpdateQuantizer) -> bytes:
    """Range-code the integer levels of a flattened update into one bitstream."""
    levels = np.asarray(torch.as_tensor(levels).cpu(), dtype=np.int64).reshape(1, -1)
    _check_levels(levels, quantizer)
    tables = update_tables(prior, quantizer)
    return encode_symbols(levels, np.zeros(levels.shape[1], dtype=np.int64), tables)[0]


def decode_updates(stream: bytes, n_params: int, prior: UpdatePrior, quantizer: UpdateQuantizer) -> np.ndarray:
    """Inverse of :func:`encode_updates`: ``[n_params]`` int64 levels.

    Raises:
        BitstreamError: the stream is corrupt, truncated, or holds another number of levels.
    """
    if isinstance(n_params, bool) or not isinstance(n_params, int) or n_params < 0:
        raise DataError(f"n_params: expected an integer >= 0, got {n_params!r}")
    tables = update_tables(prior, quantizer)
    levels = decode_symbols([stream], np.zeros(n_params, dtype=np.int64), tables)[0]
    if levels.size and int(np.abs(levels).max()) > quantizer.half_levels:
        raise BitstreamError("update stream: a level lies outside the quantizer's range")
    return levels


__all__ = ["TruncatedGaussianPrior", "UniformPrior", "UpdatePrior", "UpdateQuantizer", "decode_updates",
           "encode_updates", "level_pmf", "make_prior", "update_bits", "update_tables"]
