"""PCA encoder/decoder of flattened CSI (the "PCA" baseline of the CSI-feedback paper).

Table I of the CSI-feedback bit-allocation paper (``shared/papers/csi-feedback-bit-allocation.txt``)
compares against *PCA*, its ref. [12] (Nerini et al., "Machine learning-based CSI feedback
with variable length in FDD massive MIMO", IEEE TWC 2023): a linear encoder keeping the top
``M`` principal components of the (real, flattened) channel, with bits allocated per
component by the caller (:func:`chanlab.quant.scalar_codebooks.allocate_bits` on the
coefficients ``encode(x)``).

* ``fit(x)``: ``μ`` = sample mean, components = the top-``M`` eigenvectors of the sample
  covariance ``C = (1/n) Σ (x - μ)(x - μ)ᵀ``. The ``1/n`` normalization (not ``1/(n-1)``)
  makes ``explained_variance`` and ``discarded_variance`` exact statements about the fitted
  data: the mean squared reconstruction error ``(1/n) Σ ||x - decode(encode(x))||²`` on the
  training set equals the sum of the discarded eigenvalues of ``C``.
* ``encode(x) = (x - μ) Vᵀ`` ``[n, M]``; ``decode(z) = z V + μ`` ``[n, d]``; ``V`` ``[M, d]``
  has orthonormal rows, sorted by decreasing eigenvalue. Signs are fixed so that the entry
  of largest magnitude of each component is positive (deterministic across methods and
  devices).

Methods (``method=``; the choice for speed at the paper's size ``n = 100k``, ``d = 2048``):

* ``"covariance"`` (default): the ``d × d`` covariance accumulated in float64 over chunks of
  rows (bounded memory: one float64 chunk at a time), then ``torch.linalg.eigh``. Cost
  ``n d²`` for the Gram matrix plus ``d³`` for the eigendecomposition — no ``n × d``
  decomposition at all, exact up to float64 rounding.
* ``"svd"``: thin ``torch.linalg.svd`` of the centred data (in float64): the same result,
  more accurate for ill-conditioned data, but it factors the whole ``n × d`` matrix (slower,
  and holds a float64 copy of the data).
* ``"lowrank"``: ``torch.pca_lowrank`` (randomized, ``q = M + 10`` oversampling,
  ``niter`` power iterations): approximate; only worthwhile when ``M ≪ d``. Eigenvalues
  are then the squared singular values ``/ n`` of the found components.

Measured on 2 CPU cores, ``n = 20 000``, ``d = 2048``, ``M = 512``, float32 input:
covariance 2.7 s, svd 7.5 s, lowrank 7.9 s (the covariance cost grows linearly in ``n``).
"""

from __future__ import annotations

import torch
from torch import nn

from chanlab.core.errors import ConfigError, DataError
from chanlab.core.validation import check_int_range, check_samples

_METHODS = ("covariance", "svd", "lowrank")
# Rows per float64 chunk in the covariance accumulation: 2^12 x 2048 x 8 B = 64 MiB.
_CHUNK_ROWS = 1 << 12


def _fix_signs(v: torch.Tensor) -> torch.Tensor:
    """Flip rows of ``v`` ``[M, d]`` so that each row's largest-magnitude entry is positive."""
    pivot = v.gather(1, v.abs().argmax(1, keepdim=True))
    return v * torch.where(pivot < 0, -1.0, 1.0).to(v.dtype)


class PcaCodec(nn.Module):
    """Top-``M`` principal components of real ``[n, d]`` data: a linear encoder/decoder.

    Buffers (set by :meth:`fit`, saved in ``state_dict``, moved by ``.to``): ``mean`` ``[d]``,
    ``components`` ``[M, d]`` (orthonormal rows), ``explained_variance`` ``[M]`` (eigenvalues
    of the ``1/n`` covariance, decreasing), ``total_variance`` (scalar, trace of the
    covariance), all in the dtype of the fitted data.

    Args:
        n_components: ``M ≥ 1``.
        method: ``"covariance"`` (default), ``"svd"`` or ``"lowrank"`` (module docstring).
        niter: power iterations of ``"lowrank"``.

    Raises:
        ConfigError: bad ``n_components``, ``method`` or ``niter``.
    """

    def __init__(self, n_components: int, method: str = "covariance", niter: int = 4):
        super().__init__()
        check_int_range(n_components, "n_components", 1, error=ConfigError)
        if method not in _METHODS:
            raise ConfigError(f"method: expected one of {_METHODS}, got {method!r}")
        check_int_range(niter, "niter", 0, error=ConfigError)
        self.n_components = int(n_components)
        self.method = method
        self.niter = int(niter)
        for name in ("mean", "components", "explained_variance", "total_variance"):
            self.register_buffer(name, None)

    def extra_repr(self) -> str:
        return f"n_components={self.n_components}, method={self.method!r}, fitted={self.fitted}"

    @property
    def fitted(self) -> bool:
        return self.components is not None

    @property
    def discarded_variance(self) -> torch.Tensor:
        """Sum of the discarded eigenvalues = mean squared reconstruction error on the fitted data."""
        self._require_fit()
        return (self.total_variance - self.explained_variance.sum()).clamp_min(0)

    def _require_fit(self) -> None:
        if not self.fitted:
            raise ConfigError("PcaCodec is not fitted: call fit(x) first (or load a fitted state_dict)")

    # ---- fit

    @torch.no_grad()
    def fit(self, x) -> "PcaCodec":
        """Centre ``x`` ``[n, d]`` (real, finite) and keep its top-``M`` principal components.

        Computed in float64 on the device of ``x``; the buffers take the dtype of ``x``.

        Raises:
            DataError: ``x`` is not a finite real 2-D array.
            ConfigError: ``M > min(n, d)``.
        """
        x = self._check_x(x, "x")
        n, d = x.shape
        m = self.n_components
        if m > min(n, d):
            raise ConfigError(f"n_components: M = {m} exceeds min(n_samples, d) = min({n}, {d})")
        mean = x.sum(0, dtype=torch.float64) / n
        if self.method == "covariance":
            cov = torch.zeros(d, d, dtype=torch.float64, device=x.device)
            for lo in range(0, n, _CHUNK_ROWS):
                xc = x[lo:lo + _CHUNK_ROWS].to(torch.float64) - mean
                cov.addmm_(xc.T, xc)
            cov /= n
            total = cov.diagonal().sum()
            evals, evecs = torch.linalg.eigh(cov)                      # ascending
            evals, v = evals.flip(0)[:m].clamp_min(0), evecs.flip(1)[:, :m].T
        elif self.method == "svd":
            xc = x.to(torch.float64) - mean
            total = (xc * xc).sum() / n
            _, s, vh = torch.linalg.svd(xc, full_matrices=False)
            evals, v = s[:m] ** 2 / n, vh[:m]
        else:
            xc = x.to(torch.float64) - mean
            total = (xc * xc).sum() / n
            q = min(m + 10, n, d)
            _, s, vv = torch.pca_lowrank(xc, q=q, center=False, niter=self.niter)
            evals, v = s[:m] ** 2 / n, vv[:, :m].T
        dtype = x.dtype
        self.mean = mean.to(dtype)
        self.components = _fix_signs(v).contiguous().to(dtype)
        self.explained_variance = evals.to(dtype)
        self.total_variance = total.to(dtype)
        return self

    # ---- codec

    def _check_x(self, x, name: str) -> torch.Tensor:
        return check_samples(x, name, "[n, d]")

    def encode(self, x) -> torch.Tensor:
        """``[n, M]`` principal-component coefficients ``(x - μ) Vᵀ`` of ``x`` ``[n, d]`` (dtype of ``x``)."""
        self._require_fit()
        x = self._check_x(x, "x")
        d = self.components.shape[1]
        if x.shape[1] != d:
            raise DataError(f"x: expected [n, d = {d}], got {list(x.shape)}")
        return (x - self.mean.to(x.dtype)) @ self.components.to(x.dtype).T

    def decode(self, z) -> torch.Tensor:
        """``[n, d]`` reconstruction ``z V + μ`` of coefficients ``z`` ``[n, M]`` (dtype of ``z``)."""
        self._require_fit()
        z = self._check_x(z, "z")
        if z.shape[1] != self.n_components:
            raise DataError(f"z: expected [n, M = {self.n_components}], got {list(z.shape)}")
        return z @ self.components.to(z.dtype) + self.mean.to(z.dtype)

    def reconstruct(self, x) -> torch.Tensor:
        """``decode(encode(x))``: the projection of ``x`` onto the principal subspace."""
        return self.decode(self.encode(x))

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):
        # Buffers start as None: adopt the saved tensors so that a fitted codec can be loaded
        # into a fresh one.
        for name in ("mean", "components", "explained_variance", "total_variance"):
            if prefix + name in state_dict and getattr(self, name) is None:
                saved = state_dict[prefix + name]
                setattr(self, name, torch.empty_like(saved))
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)
