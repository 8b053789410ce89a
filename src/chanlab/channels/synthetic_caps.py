"""Synthetic CAPS grids of the gridization paper (Section V-A-1).

``K`` grid centers ``x_(k) ∈ R^N`` are L-sparse: L entries chosen uniformly at random hold
``|Laplace(0, √p)|`` values. Each grid gets ``samples_per_grid`` perturbed samples
``x_i = x_(k) + e_i`` with ``z_n ~ TN(0, 1; −1, 1)`` and::

    e_n = z_n · s · min(x_(k))     on the support of x_(k)   (zero mean: Assumption 2),
    e_n = |z_n| · s · min(x_(k))   elsewhere                 (nonnegative background),

where ``min(x_(k))`` is the smallest nonzero entry; since |z_n| ≤ 1 and s ≤ 1 the samples stay
nonnegative. RSRP is then ``y_i = A x_i`` (linear mW) for a beam-pattern matrix A
(:mod:`chanlab.channels.lscm`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from chanlab.core.errors import DataError
from chanlab.core.validation import check_int_range


@dataclass
class SyntheticCaps:
    """One synthetic gridization dataset.

    Attributes:
        centers: ``[K, N]`` true grid centers.
        caps: ``[K * samples_per_grid, N]`` perturbed CAPS samples, grid-major.
        labels: ``[K * samples_per_grid]`` int64 true grid of each sample.
    """

    centers: torch.Tensor
    caps: torch.Tensor
    labels: torch.Tensor

    def rsrp_mw(self, beam_pattern: torch.Tensor, chunk: int = 2048) -> torch.Tensor:
        """``y_i = A x_i``: ``[n_samples, M]`` float64 mW (computed in chunks to bound memory)."""
        if beam_pattern.ndim != 2 or beam_pattern.shape[1] != self.caps.shape[1]:
            raise DataError(f"beam_pattern: expected [M, N = {self.caps.shape[1]}], got {tuple(beam_pattern.shape)}")
        a = beam_pattern.to(torch.float64).T
        return torch.cat([c.to(torch.float64) @ a for c in self.caps.split(chunk)])


def truncated_normal(shape: tuple[int, ...], low: float = -1.0, high: float = 1.0,
                     generator: torch.Generator | None = None, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """Standard normal truncated to ``[low, high]``, by inverse-CDF sampling."""
    def cdf(v: float) -> float:
        return 0.5 * (1 + math.erf(v / math.sqrt(2)))
    u = torch.rand(shape, generator=generator, dtype=torch.float64)
    z = torch.special.ndtri(cdf(low) + u * (cdf(high) - cdf(low)))
    return z.clamp(low, high).to(dtype)


def synthetic_caps(*, n_grids: int = 100, samples_per_grid: int = 100, n_angles: int = 6552, sparsity: int = 5,
                   p: float = 1e-5, scale: float = 0.5, generator: torch.Generator | None = None,
                   dtype: torch.dtype = torch.float32) -> SyntheticCaps:
    """Draw the dataset of Section V-A-1 (module docstring).

    Args:
        n_grids: K (paper: 100).
        samples_per_grid: perturbed samples per grid (paper: 100).
        n_angles: N (paper: 6552).
        sparsity: L nonzeros per center (paper: 5).
        p: Laplace scale √p of the center values (paper: 1e-5).
        scale: perturbation scale factor s ∈ [0.1, 1] (any s ∈ (0, 1] is allowed).

    Returns:
        A :class:`SyntheticCaps`.
    """
    check_int_range(n_grids, "n_grids", low=1)
    check_int_range(samples_per_grid, "samples_per_grid", low=1)
    check_int_range(n_angles, "n_angles", low=1)
    check_int_range(sparsity, "sparsity", low=1, high=n_angles)
    if not 0 < scale <= 1:
        raise DataError(f"scale: expected s in (0, 1] so that samples stay nonnegative, got {scale}")
    if not p > 0:
        raise DataError(f"p: expected a positive Laplace variance parameter, got {p}")
    support = torch.rand(n_grids, n_angles, generator=generator).argsort(dim=1)[:, :sparsity]
    # |Laplace(0, b)| is Exponential with mean b; zeros are measure-zero but would break min(x)
    values = -math.sqrt(p) * torch.log1p(-torch.rand(n_grids, sparsity, generator=generator, dtype=torch.float64))
    values = values.clamp_min(1e-12)
    centers = torch.zeros(n_grids, n_angles, dtype=torch.float64).scatter_(1, support, values)
    on_support = torch.zeros(n_grids, n_angles, dtype=torch.bool).scatter_(1, support, True)
    min_nonzero = values.min(dim=1).values                                       # [K]

    labels = torch.arange(n_grids).repeat_interleave(samples_per_grid)
    z = truncated_normal((labels.numel(), n_angles), generator=generator, dtype=torch.float64)
    z = torch.where(on_support[labels], z, z.abs())
    caps = centers[labels] + z * (scale * min_nonzero[labels])[:, None]
    return SyntheticCaps(centers=centers.to(dtype), caps=caps.clamp_min(0).to(dtype), labels=labels)
