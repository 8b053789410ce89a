"""L-sparse nonnegative codebook with nearest-codeword assignment (CSG-AE quantizer)."""

from __future__ import annotations

import torch
from torch import nn

from chanlab.core.errors import ConfigError, DataError


class SparseCodebook(nn.Module):
    """A learnable codebook whose codewords are ``ReLU(δ_L(ξ_k))`` (gridization paper, eq. 21).

    ``δ_L`` keeps the L largest entries of ``ξ_k`` and zeroes the rest, so every codeword is
    L-sparse and nonnegative; gradients reach the kept entries only. Rows of ``weight``
    (``[n_codes, dim]``) are the ``ξ_k`` (the paper's columns of Ξ).

    Args:
        n_codes: K codewords (grids).
        dim: N, the embedding dimension (angles of the CAPS).
        sparsity: L nonzeros per codeword.
        init_scale: the raw ``ξ`` start as ``|N(0, init_scale²)|`` (a random codebook, as in
            the naive scheme; :meth:`init_from` replaces it).
    """

    def __init__(self, n_codes: int, dim: int, sparsity: int, init_scale: float = 1.0,
                 generator: torch.Generator | None = None):
        super().__init__()
        if not 1 <= sparsity <= dim:
            raise ConfigError(f"sparsity: expected 1 <= L <= dim = {dim}, got {sparsity}")
        if n_codes < 1:
            raise ConfigError(f"n_codes: expected >= 1, got {n_codes}")
        self.sparsity = sparsity
        self.weight = nn.Parameter(torch.randn(n_codes, dim, generator=generator).abs() * init_scale)

    @property
    def n_codes(self) -> int:
        return self.weight.shape[0]

    def support(self) -> torch.Tensor:
        """``[K, N]`` bool: the L kept entries of each codeword (the paper's N_(k))."""
        idx = self.weight.detach().topk(self.sparsity, dim=1).indices
        return torch.zeros_like(self.weight, dtype=torch.bool).scatter_(1, idx, True)

    def codewords(self) -> torch.Tensor:
        """``[K, N]`` the codewords ``Ξ[k] = ReLU(δ_L(ξ_k))`` (differentiable in the kept entries)."""
        return torch.relu(self.weight * self.support())

    @torch.no_grad()
    def init_from(self, centers: torch.Tensor) -> None:
        """Set ``ξ_k`` to ``centers`` (``[K, N]``, e.g. k-means centroids of the embeddings)."""
        if centers.shape != self.weight.shape:
            raise DataError(f"centers: expected {tuple(self.weight.shape)}, got {tuple(centers.shape)}")
        self.weight.copy_(centers.to(self.weight))

    def assign(self, x: torch.Tensor, chunk: int = 4096) -> torch.Tensor:
        """Nearest codeword (Euclidean) of each embedding: ``[B, N] → [B]`` int64 (eq. 22)."""
        if x.ndim != 2 or x.shape[1] != self.weight.shape[1]:
            raise DataError(f"embeddings: expected [B, N = {self.weight.shape[1]}], got {tuple(x.shape)}")
        with torch.no_grad():
            c = self.codewords().to(x.dtype)
            c2 = c.square().sum(1)
            # ‖x − c‖² = ‖x‖² − 2 x·c + ‖c‖²; ‖x‖² does not change the argmin
            return torch.cat([(c2 - 2 * part @ c.T).argmin(1) for part in x.split(chunk)])

    def loss(self, x: torch.Tensor, assignments: torch.Tensor | None = None) -> torch.Tensor:
        """Quantization loss of eq. (19)/(26): ``(1/K) Σ_k MSE(Ξ[k], μ_k)``.

        ``μ_k`` is the mean of the assigned embeddings projected onto the support of ``Ξ[k]``
        (eq. 17); a codeword with no assigned sample has ``μ_k = 0`` (its loss pulls it to the
        origin, the collapse mechanism the paper describes). Pass detached ``x`` for the
        detached update (eq. 26).

        Args:
            x: ``[B, N]`` embeddings.
            assignments: ``[B]`` codeword indices; default :meth:`assign` of ``x``.

        Returns:
            A scalar.
        """
        if assignments is None:
            assignments = self.assign(x)
        k = self.n_codes
        sums = torch.zeros(k, x.shape[1], dtype=x.dtype, device=x.device).index_add(0, assignments, x)
        counts = torch.bincount(assignments, minlength=k).to(x.dtype).clamp_min(1)
        mu = sums / counts[:, None] * self.support()
        return (self.codewords().to(x.dtype) - mu).square().mean()

    @torch.no_grad()
    def active_ratio(self, assignments: torch.Tensor) -> float:
        """Fraction of codewords with at least one assigned sample (codebook utilization)."""
        return float((torch.bincount(assignments, minlength=self.n_codes) > 0).float().mean())
