"""Fully factorized learned latent prior ("DeepFactorized", Ballé et al., ICLR 2018, App. 6.1).

Each latent channel ``c`` has its own univariate density, defined through a learned CDF
``F_c = sigmoid(f_K ∘ … ∘ f_1)`` where every ``f_k`` is monotone: a matrix with softplus
(positive) entries, a bias, and (except for the last) a gated ``x + tanh(a) ⊙ tanh(x)``.
The probability of a quantized value is the mass of its unit bin,

    p(ŷ) = F(ŷ + 1/2) − F(ŷ − 1/2),

which during training, evaluated at ``ỹ = y + u`` with ``u ~ U(−1/2, 1/2)``, is the density
of the noisy latent: the differentiable rate proxy of eq. (5) of the compression paper.
At coding time the same CDF, evaluated in float64 on the CPU so that every machine builds
the same tables, gives the discrete tables of :mod:`chanlab.quant.range_coding`.
"""

from __future__ import annotations

import math
from typing import Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from chanlab.core.errors import DataError
from chanlab.quant.range_coding import CodingTables, decode_symbols, encode_symbols


class FactorizedPrior(nn.Module):
    """Learned per-channel density of latents ``[batch, channels, *spatial]``.

    Args:
        channels: number of latent channels C (one density each).
        filters: hidden widths of the monotone CDF network (paper's default ``(3, 3, 3)``).
        init_scale: initial scale of the density (a broad start; training narrows it).
        likelihood_bound: floor of the bin probability in the rate term (keeps -log finite).
        tail_mass: probability left outside the coding window (coded through escapes).
        max_width: most integers a coding window may cover.
    """

    def __init__(self, channels: int, filters: Sequence[int] = (3, 3, 3), init_scale: float = 10.0,
                 likelihood_bound: float = 1e-9, tail_mass: float = 1e-9, max_width: int = 4096):
        super().__init__()
        if channels < 1:
            raise DataError(f"channels: expected a positive count, got {channels}")
        self.channels = int(channels)
        self.likelihood_bound = float(likelihood_bound)
        self.tail_mass = float(tail_mass)
        self.max_width = int(max_width)
        dims = (1, *filters, 1)
        scale = init_scale ** (1.0 / (len(dims) - 1))
        self.matrices = nn.ParameterList()
        self.biases = nn.ParameterList()
        self.factors = nn.ParameterList()
        for k in range(len(dims) - 1):
            init = math.log(math.expm1(1.0 / scale / dims[k + 1]))
            self.matrices.append(nn.Parameter(torch.full((channels, dims[k + 1], dims[k]), init)))
            self.biases.append(nn.Parameter(torch.empty(channels, dims[k + 1], 1).uniform_(-0.5, 0.5)))
            if k < len(dims) - 2:
                self.factors.append(nn.Parameter(torch.zeros(channels, dims[k + 1], 1)))

    def _logits_cdf(self, x: torch.Tensor, params=None) -> torch.Tensor:
        """Logit of F_c at ``x`` ``[C, 1, N]`` -> ``[C, 1, N]``."""
        matrices, biases, factors = params or (self.matrices, self.biases, self.factors)
        for k, (m, b) in enumerate(zip(matrices, biases)):
            x = torch.matmul(F.softplus(m), x) + b
            if k < len(factors):
                x = x + torch.tanh(factors[k]) * torch.tanh(x)
        return x

    def _by_channel(self, y: torch.Tensor) -> tuple[torch.Tensor, tuple[int, ...]]:
        if y.ndim < 2 or y.shape[1] != self.channels:
            raise DataError(f"latents: expected [batch, {self.channels}, ...], got {list(y.shape)}")
        perm = (1, 0, *range(2, y.ndim))
        return y.permute(perm).reshape(self.channels, 1, -1), perm

    def likelihood(self, y: torch.Tensor) -> torch.Tensor:
        """Bin probability ``F(y + 1/2) − F(y − 1/2)`` per element of ``y`` (same shape)."""
        flat, perm = self._by_channel(y)
        lower = self._logits_cdf(flat - 0.5)
        upper = self._logits_cdf(flat + 0.5)
        # Subtract in the tail where both sigmoids are far from 1 (numerically stable). Not
        # -sign(lower + upper): that is 0 where the logits are symmetric about 0 and would
        # turn the bin's mass into 0 (then the bound).
        sign = 1.0 - 2.0 * (lower + upper > 0).to(lower.dtype)
        p = (torch.sigmoid(sign * upper) - torch.sigmoid(sign * lower)).abs()
        p = p.clamp_min(self.likelihood_bound)
        shape = [y.shape[i] for i in perm]
        return p.reshape(shape).permute(perm)

    def forward(self, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(ŷ, likelihoods)``: noisy latents while training, rounded ones in eval mode."""
        if self.training:
            y_hat = y + torch.empty_like(y).uniform_(-0.5, 0.5)
        else:
            y_hat = torch.round(y)
        return y_hat, self.likelihood(y_hat)

    @staticmethod
    def bits(likelihoods: torch.Tensor) -> torch.Tensor:
        """Ideal code length per sample in bits, ``[batch]``."""
        return -torch.log2(likelihoods).flatten(1).sum(1)

    # ----- coding -----------------------------------------------------------------------

    @torch.no_grad()
    def cdf(self, x: np.ndarray) -> np.ndarray:
        """F_c at ``x`` ``[C, N]`` (float64, CPU, deterministic) -> ``[C, N]``."""
        params = tuple([p.detach().to("cpu", torch.float64) for p in group]
                       for group in (self.matrices, self.biases, self.factors))
        xs = torch.tensor(np.asarray(x, dtype=np.float64)).reshape(self.channels, 1, -1)
        return torch.sigmoid(self._logits_cdf(xs, params)).reshape(self.channels, -1).numpy()

    def coding_tables(self) -> CodingTables:
        """Discrete tables covering all but ``tail_mass`` of each channel's density."""
        half = self.tail_mass / 2
        radius = 64
        while True:
            ks = np.arange(-radius, radius + 1, dtype=np.float64)
            upper = self.cdf(np.broadcast_to(ks + 0.5, (self.channels, ks.size)))
            lower = self.cdf(np.broadcast_to(ks - 0.5, (self.channels, ks.size)))
            covered = (lower[:, 0] <= half) & (upper[:, -1] >= 1 - half)
            if covered.all() or 2 * radius + 1 >= self.max_width:
                break
            radius *= 2
        lo = np.array([ks[np.argmax(u >= half)] if (u >= half).any() else ks[0] for u in upper], dtype=np.int64)
        hi = np.array([ks[len(ks) - 1 - np.argmax(l[::-1] <= 1 - half)] if (l <= 1 - half).any() else ks[-1]
                       for l in lower], dtype=np.int64)
        width = int(min(max((hi - lo).max() + 1, 1), self.max_width))
        edges = lo[:, None] - 0.5 + np.arange(width + 1)[None, :]
        return CodingTables.from_cdf(lo, self.cdf(edges))

    def channel_map(self, shape: Sequence[int]) -> np.ndarray:
        """Channel index of every element of one latent ``[C, *spatial]`` in C order."""
        shape = tuple(int(s) for s in shape)
        if len(shape) < 1 or shape[0] != self.channels:
            raise DataError(f"latent shape: expected ({self.channels}, ...), got {shape}")
        return np.repeat(np.arange(self.channels), int(np.prod(shape[1:], dtype=np.int64)))

    def compress(self, y: torch.Tensor, tables: CodingTables | None = None) -> list[bytes]:
        """Round latents ``[batch, C, *spatial]`` and range-code each sample into bytes."""
        if not torch.isfinite(y).all():
            raise DataError("latents contain NaN or Inf")
        values = torch.round(y.detach()).to("cpu", torch.int64).reshape(y.shape[0], -1).numpy()
        tables = tables or self.coding_tables()
        return encode_symbols(values, self.channel_map(y.shape[1:]), tables)

    def decompress(self, streams: Sequence[bytes], shape: Sequence[int],
                   tables: CodingTables | None = None) -> torch.Tensor:
        """Decode ``len(streams)`` latents of shape ``shape = (C, *spatial)`` -> float32 tensor."""
        tables = tables or self.coding_tables()
        values = decode_symbols(streams, self.channel_map(shape), tables)
        return torch.from_numpy(values.astype(np.float32)).reshape(len(streams), *shape)
