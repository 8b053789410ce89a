"""Residual vector quantization (RVQ) with noise-substitution gradients (NSVQ).

The feedback quantizer of the scalable FDD precoding paper
(``shared/papers/fdd-scalable-precoding-rvq-egat.txt``, Sec. IV-B, eqs. 12-17 and 23; Sec. V-A,
eq. 24 and Algorithm 2). A feature vector ``v`` ``[D]`` is quantized in ``N`` tiers; tier
``n`` has its own codebook of ``2^{B_n}`` codewords of dimension ``D``, and the feedback is
the ``N`` indices, ``B = Σ_n B_n`` bits.

* **Encoding** (eqs. 12-13): ``r^0 = v``; tier ``n`` picks the nearest codeword (squared
  Euclidean distance, ties to the smaller index) to ``r^{n-1}`` with
  :func:`~chanlab.quant.vector.nearest_codeword` (batched, chunked matmul expansion; rows
  within its rounding-error bound of a tie are re-scored exactly, so the index is the
  brute-force argmin) and ``r^n = r^{n-1} - q^n_{i_n}``. The search carries no gradient.
* **Decoding** (eq. 15): ``v_q = Σ_n Q_n[i_n]``, computed by indexing the codebook
  parameters, so it is differentiable with respect to the chosen codewords.
  :meth:`ResidualVQ.quantize` and :meth:`ResidualVQ.dequantize` sum in the same order, so
  ``quantize(v)[0]`` equals ``dequantize(indices)`` bit for bit (same dtype).
* **Truncation**: every method takes ``n_tiers`` (default all): only the first ``n_tiers``
  tiers are used. This is Remark 1's "discard the later VQ layers", progressive training's
  stage ``n`` (Algorithm 1) and the first step of the ``B_deploy < B`` shrinkage.
* **NSVQ** (eq. 17, ref. [27]): in training mode ``forward`` returns
  ``v_hat = v + ||v - v_q||_2 / ||u||_2 · u`` per sample, so ``v_hat`` lies at exactly the
  quantization-error distance from ``v`` in a random direction; the gradient reaches ``v``
  (identity plus the norm term) and the chosen codewords (through the norm). The paper
  writes ``u ~ CN(0, I)``; the features here are real, so ``u ~ N(0, I_D)`` (real), drawn
  per sample (per leading index) from the global torch generator or from ``generator``.
  In eval mode ``v_hat = v_q`` exactly (hard quantization).
* **Quantization loss** (eq. 23): ``||v - v_q||²`` summed over the ``D`` features and
  averaged over the samples (every leading index of ``[..., D]``); the paper sums over the
  ``K`` users, which differs only by the constant factor ``K`` (absorbed by ``λ`` in eq. 22).
  It is differentiable in ``v`` and in the chosen codewords.
* **Initialization**: codewords uniform in ``[-s/√D, s/√D]^D`` with ``s = init_scale``
  (default ``0.1``; codeword norm about ``0.058`` whatever ``D``) from a CPU
  ``torch.Generator`` seeded with ``seed`` (Algorithm 1 "initialize randomly"). Small
  codewords make the first assignments depend on direction (``argmax v·q``) rather than on
  the scale of untrained features. :meth:`ResidualVQ.fit_lloyd` is the k-means alternative.
* **Tier freezing** (Algorithm 1): tiers are numbered from 0 (tier ``n`` here is the
  paper's tier ``n + 1``); :meth:`ResidualVQ.freeze_tier` switches ``requires_grad`` off
  and drops a stale ``.grad``, so that an optimizer leaves the tier alone.
* **Dead codewords**: a non-persistent ``int64`` usage counter per tier (not saved in the
  ``state_dict``) counts the selections of each codeword in training-mode ``forward``.
  :meth:`ResidualVQ.replace_unused` moves the never-selected codewords of each trainable
  tier onto the residuals ``r^{n-1}`` of distinct random samples, computing the residuals
  tier after tier with the already-updated earlier tiers, then resets the counters. Frozen
  tiers are skipped by default (replacing their codewords would change the quantization
  the later tiers were trained on). Optimizer moments of a replaced codeword are not reset.
* **Lloyd construction** (:meth:`ResidualVQ.fit_lloyd`): the baseline "ZF: Perfect CE &
  Imperfect Feedback" (Sec. VI-B): k-means (:func:`~chanlab.quant.vector.kmeans`, k-means++
  then Lloyd) on the data for tier 1, quantize, k-means on the residuals for tier 2, ...
* **Bitstreams**: :meth:`ResidualVQ.compress` packs the ``n_tiers`` indices of each sample,
  ``B_n`` bits each, MSB first, into ``ceil(Σ B_n / 8)`` bytes
  (:func:`~chanlab.quant.bit_packing.pack_indices`, optional CRC-16); a stream of the wrong
  length, with nonzero padding or a failed CRC raises
  :class:`~chanlab.core.errors.BitstreamError`.
* **Codebook shrinkage** (Sec. V-A-1): :func:`differentiable_kmeans` is Algorithm 2 and
  :meth:`ResidualVQ.shrink` builds the ``B_deploy < B`` quantizer of eq. 24 (see there for
  the temperature).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import torch
from torch import nn

from chanlab.core.errors import BitstreamError, ConfigError, DataError
from chanlab.core.validation import as_tensor, check_finite, check_int_range, check_ndim, check_real
from chanlab.quant.vector import _kmeans_pp, kmeans, nearest_codeword

MAX_TIER_BITS = 16
# temperature=None in differentiable_kmeans: T = this times the median gap between the distances
# of a codeword to its second-nearest and nearest initial center (weight ratio e^4 for a typical codeword).
AUTO_TEMPERATURE_GAP = 0.25


def _check_positive_float(value, name: str, allow_zero: bool = False) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) \
            or value < 0 or (value == 0 and not allow_zero):
        raise ConfigError(f"{name}: expected a finite number {'>= 0' if allow_zero else '> 0'}, got {value!r}")
    return float(value)


def _auto_temperature(dist: torch.Tensor) -> float:
    """``AUTO_TEMPERATURE_GAP`` × the median (over codewords) of ``d_2nd - d_1st`` of ``dist`` ``[K, C]``."""
    if dist.shape[1] < 2:
        return 1.0
    two = dist.topk(2, dim=1, largest=False).values
    gap = two[:, 1] - two[:, 0]
    med = float(gap.median())
    if med <= 0:                                    # mostly coinciding codewords: use the positive gaps
        pos = gap[gap > 0]
        med = float(pos.median()) if pos.numel() else 0.0
    return AUTO_TEMPERATURE_GAP * med if med > 0 else 1.0


def differentiable_kmeans(codebook: torch.Tensor, n_clusters: int, *, temperature: float | None = 1.0,
                          eps: float = 1e-6, max_iter: int = 100, seed: int = 0) -> torch.Tensor:
    """Differentiable k-means (DKM) compression of a codebook: the paper's Algorithm 2.

    Starting from ``n_clusters`` rows of ``codebook`` chosen by k-means++ (the private
    seeding of :mod:`chanlab.quant.vector`, generator seeded with ``seed``), each iteration

    * builds the distance matrix ``D(i, j) = -||q_i - q̃_j||_2 / T`` ``[K, n_clusters]``
      (eq. 25, exact pairwise distances). The paper has no temperature, i.e. ``T = 1``
      (the default); since the distances scale with the codeword norm, ``T = 1`` makes the
      attention nearly uniform for small codewords (all centers collapse onto the mean)
      and nearly hard for large ones, so ``T`` is exposed (``T → 0`` is Lloyd's k-means).
      ``temperature=None`` picks a scale-free ``T``: 0.25 × the median over the codewords
      of (distance to the second-nearest initial center − distance to the nearest), so a
      typical codeword gives its nearest center ``e^4 ≈ 55`` times the attention of the
      next; measured on k-means codebooks of Gaussian residuals (D = 4, 16, 128), DKM then
      matches or beats hard k-means, whereas ``T`` a few times larger collapses the centers;
    * takes the softmax over the centers ``j``: ``A(i, j) = exp D(i, j) / Σ_l exp D(i, l)``
      (eq. 26);
    * moves each center to the attention-weighted mean of the codewords,
      ``q̃_j = Σ_i A(i, j) q_i / Σ_i A(i, j)``. The paper's eq. 27 swaps the indices
      (``q̃_i = Σ_j A(i, j) q_j / Σ_j A(i, j)`` mixes the ``K`` codewords with weights that
      belong to the centers); this is the consistent reading. A center whose total
      attention underflows to 0 (tiny ``T``, nobody's nearest) keeps its position;
    * stops when ``||Q̃^{m+1} - Q̃^m||_F² / ||Q̃^m||_F² ≤ eps`` (Algorithm 2) or after
      ``max_iter`` iterations.

    The iterations are differentiable with respect to ``codebook`` when it requires grad
    (the k-means++ choice is not); ``Q̃`` keeps its graph of up to ``max_iter`` ``[K, n_clusters]``
    steps. Rows of ``codebook`` that coincide can make k-means++ pick equal centers, which
    then stay equal.

    Args:
        codebook: ``[K, D]`` real finite codewords (a tier's ``Q^{N_0+1}``, one row each).
        n_clusters: ``2^{B_r}`` centers, ``1 ≤ n_clusters ≤ K``.
        temperature: ``T > 0``, divides the distances of eq. 25 (None: automatic, above).
        eps: halting threshold ``ε ≥ 0`` on the relative squared change.
        max_iter: at most this many iterations (``≥ 1``).
        seed: seed of the k-means++ initialization.

    Returns:
        ``[n_clusters, D]`` centers (dtype and device of ``codebook``).

    Raises:
        DataError: ``codebook`` is not a finite real 2-D tensor.
        ConfigError: ``n_clusters`` outside ``[1, K]``, ``T ≤ 0``, ``eps < 0``, ``max_iter < 1``.
    """
    codebook = as_tensor(codebook, "codebook")
    check_ndim(codebook, 2, "codebook", "[K, D]")
    check_real(codebook, "codebook")
    check_finite(codebook, "codebook")
    k = int(codebook.shape[0])
    if k < 1 or codebook.shape[1] < 1:
        raise DataError(f"codebook: expected at least one codeword of dimension >= 1 [K, D], got {list(codebook.shape)}")
    check_int_range(n_clusters, "n_clusters", 1, k, error=ConfigError)
    if temperature is not None:
        temperature = _check_positive_float(temperature, "temperature")
    eps = _check_positive_float(eps, "eps", allow_zero=True)
    check_int_range(max_iter, "max_iter", 1, error=ConfigError)
    check_int_range(seed, "seed", 0, error=ConfigError)

    gen = torch.Generator().manual_seed(int(seed))
    with torch.no_grad():
        centers = _kmeans_pp(codebook.detach(), int(n_clusters), gen).clone()
        if temperature is None:
            temperature = _auto_temperature(torch.cdist(codebook.detach(), centers,
                                                        compute_mode="donot_use_mm_for_euclid_dist"))
    for _ in range(max_iter):
        dist = torch.cdist(codebook, centers, compute_mode="donot_use_mm_for_euclid_dist")   # [K, C]
        attn = torch.softmax(-dist / temperature, dim=1)                                     # eq. 26
        mass = attn.sum(0)                                                                   # [C]
        moved = (attn.T @ codebook) / mass.clamp_min(torch.finfo(mass.dtype).tiny)[:, None]
        new = torch.where((mass > 0)[:, None], moved, centers)
        with torch.no_grad():
            change = float(((new - centers) ** 2).sum())
            ref = float((centers ** 2).sum())
        centers = new
        if change <= eps * ref:
            break
    return centers


_NSVQ_EPS = 1e-12


class ResidualVQ(nn.Module):
    """``N``-tier residual vector quantizer of ``D``-dimensional features (RVQ-VAE, NSVQ).

    See the module docstring for the equations and choices. Shapes: features ``[..., D]``
    (usually ``[batch, D]``; any leading dimensions are flattened and restored), indices
    ``[..., n_tiers]`` int64, bitstreams one ``bytes`` per row of a ``[batch, D]`` input.

    Args:
        dim: ``D ≥ 1``, the codeword (feature) dimension.
        tier_bits: ``(B_1, ..., B_N)``, at least one tier, each ``B_n`` in ``[1, 16]``; tier
            ``n`` has ``2^{B_n}`` codewords.
        seed: seed of the random initialization.
        init_scale: ``s > 0``; codewords start uniform in ``[-s/√D, s/√D]^D``.
        dtype: codebook dtype (a real floating dtype).

    Raises:
        ConfigError: invalid ``dim``, ``tier_bits``, ``init_scale`` or ``dtype``.
    """

    def __init__(self, dim: int, tier_bits: Sequence[int], *, seed: int = 0, init_scale: float = 0.1,
                 dtype: torch.dtype = torch.float32):
        super().__init__()
        check_int_range(dim, "dim", 1, error=ConfigError)
        if isinstance(tier_bits, (str, bytes)) or not isinstance(tier_bits, (Sequence, torch.Tensor, np.ndarray)):
            raise ConfigError(f"tier_bits: expected a sequence of integers (B_1, ..., B_N), got {tier_bits!r}")
        bits = [int(b) if isinstance(b, torch.Tensor) and b.ndim == 0 and not b.is_floating_point() else b
                for b in tier_bits]
        if not bits:
            raise ConfigError("tier_bits: expected at least one tier, got an empty sequence")
        for n, b in enumerate(bits):
            check_int_range(b, f"tier_bits[{n}]", 1, MAX_TIER_BITS, error=ConfigError)
        check_int_range(seed, "seed", 0, error=ConfigError)
        init_scale = _check_positive_float(init_scale, "init_scale")
        if not isinstance(dtype, torch.dtype) or not dtype.is_floating_point:
            raise ConfigError(f"dtype: expected a real floating torch dtype, got {dtype!r}")
        self.dim = int(dim)
        self._bits = tuple(int(b) for b in bits)
        self.init_scale = init_scale
        gen = torch.Generator().manual_seed(int(seed))
        half = init_scale / math.sqrt(self.dim)
        self.codebooks = nn.ParameterList(
            nn.Parameter(((2 * torch.rand(1 << b, self.dim, generator=gen, dtype=torch.float64) - 1) * half).to(dtype))
            for b in self._bits)
        for n, b in enumerate(self._bits):
            self.register_buffer(f"usage_{n}", torch.zeros(1 << b, dtype=torch.int64), persistent=False)

    def extra_repr(self) -> str:
        return f"dim={self.dim}, tier_bits={self._bits}, frozen={self.frozen}"

    # ---- views

    @property
    def n_tiers(self) -> int:
        """``N``, the number of tiers."""
        return len(self._bits)

    @property
    def tier_bits(self) -> tuple[int, ...]:
        """``(B_1, ..., B_N)``."""
        return self._bits

    def total_bits(self, n_tiers: int | None = None) -> int:
        """``Σ_{n < n_tiers} B_n``: payload bits of the first ``n_tiers`` tiers (default all)."""
        return sum(self._bits[:self._tiers(n_tiers)])

    @property
    def frozen(self) -> tuple[bool, ...]:
        """Per tier: whether its codebook is frozen (``requires_grad`` off)."""
        return tuple(not p.requires_grad for p in self.codebooks)

    @property
    def usage(self) -> list[torch.Tensor]:
        """Per tier: ``[2^{B_n}]`` int64 selection counts since the last reset (training-mode
        ``forward`` only; the buffers themselves, not copies)."""
        return [getattr(self, f"usage_{n}") for n in range(self.n_tiers)]

    def reset_usage(self) -> None:
        """Set every usage counter to zero."""
        for u in self.usage:
            u.zero_()

    # ---- checks

    def _tiers(self, n_tiers: int | None) -> int:
        if n_tiers is None:
            return self.n_tiers
        check_int_range(n_tiers, "n_tiers", 1, self.n_tiers, error=ConfigError)
        return int(n_tiers)

    def _tier(self, n: int) -> int:
        check_int_range(n, "tier", 0, self.n_tiers - 1, error=ConfigError)
        return int(n)

    def _check_v(self, v, name: str = "v") -> torch.Tensor:
        """A finite real ``[..., D]`` tensor on the codebooks' device, returned as ``[n, D]``."""
        v = as_tensor(v, name)
        if v.ndim < 1 or v.shape[-1] != self.dim:
            raise DataError(f"{name}: expected a real array [..., D = {self.dim}], got shape {list(v.shape)}")
        check_real(v, name)
        device = self.codebooks[0].device
        if v.device != device:
            raise DataError(f"{name}: expected a tensor on the quantizer's device {device}, got {v.device}")
        check_finite(v, name)
        return v.reshape(-1, self.dim)

    def _check_indices(self, indices) -> torch.Tensor:
        indices = as_tensor(indices, "indices")
        if indices.ndim < 1 or not 1 <= indices.shape[-1] <= self.n_tiers \
                or indices.is_floating_point() or indices.is_complex() or indices.dtype == torch.bool:
            raise DataError(f"indices: expected an integer tensor [..., n_tiers] with 1 <= n_tiers <= {self.n_tiers}, "
                            f"got {indices.dtype} {list(indices.shape)}")
        m = int(indices.shape[-1])
        indices = indices.to(device=self.codebooks[0].device, dtype=torch.int64)
        if indices.numel():
            bound = torch.tensor([1 << b for b in self._bits[:m]], device=indices.device)
            bad = (indices < 0) | (indices >= bound)
            if bool(bad.any()):
                t = int(torch.nonzero(bad)[0, -1])
                raise DataError(f"indices: tier {t} index outside [0, 2^{self._bits[t]}) for its {self._bits[t]} bits")
        return indices

    # ---- quantization

    def _encode(self, flat: torch.Tensor, n: int) -> torch.Tensor:
        """``[rows, n]`` indices of eqs. 12-13 for ``flat`` ``[rows, D]`` (no gradient)."""
        with torch.no_grad():
            r = flat.detach().clone()
            idx = torch.empty(flat.shape[0], n, dtype=torch.int64, device=flat.device)
            for t in range(n):
                w = self.codebooks[t].detach().to(r.dtype)
                i, _ = nearest_codeword(r, w)
                idx[:, t] = i
                if t + 1 < n:
                    r -= w[i]
            return idx

    def _decode(self, idx: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
        """``Σ_t Q_t[idx[..., t]]`` in ``dtype`` (eq. 15, differentiable in the codewords)."""
        out = self.codebooks[0].to(dtype)[idx[..., 0]]
        for t in range(1, idx.shape[-1]):
            out = out + self.codebooks[t].to(dtype)[idx[..., t]]
        return out

    def quantize(self, v: torch.Tensor, n_tiers: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """Hard RVQ of ``v`` ``[..., D]`` with the first ``n_tiers`` tiers (eqs. 12-13, 15).

        Returns:
            ``(v_q, indices)``: ``v_q`` ``[..., D]`` (dtype of ``v``) is the sum of the chosen
            codewords, differentiable with respect to them (not to ``v``); ``indices``
            ``[..., n_tiers]`` int64.

        Raises:
            DataError: ``v`` is not a finite real ``[..., D]`` tensor on the codebooks' device.
            ConfigError: ``n_tiers`` outside ``[1, N]``.
        """
        n = self._tiers(n_tiers)
        v = as_tensor(v, "v")
        flat = self._check_v(v)
        idx = self._encode(flat, n)
        v_q = self._decode(idx, flat.dtype)
        return v_q.reshape(v.shape), idx.reshape(*v.shape[:-1], n)

    def dequantize(self, indices: torch.Tensor) -> torch.Tensor:
        """``[..., D]`` reconstruction ``Σ_n Q_n[i_n]`` of ``indices`` ``[..., m]`` (the first
        ``m ≤ N`` tiers; eq. 15), in the codebook dtype, differentiable in the codewords."""
        idx = self._check_indices(indices)
        return self._decode(idx, self.codebooks[0].dtype)

    def forward(self, v: torch.Tensor, n_tiers: int | None = None, *, generator: torch.Generator | None = None
                ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Quantize ``v`` ``[..., D]``: NSVQ in training mode, hard RVQ in eval mode.

        Training mode: ``v_hat = v + ||v - v_q||_2 / ||u||_2 · u`` per sample (eq. 17) with
        ``u ~ N(0, I_D)`` real (from ``generator``, on ``v``'s device, or the global torch
        generator), and the
        usage counters of the first ``n_tiers`` tiers are updated. Eval mode: ``v_hat = v_q``.

        Returns:
            ``(v_hat, indices, loss)``: ``v_hat`` ``[..., D]`` (dtype of ``v``), ``indices``
            ``[..., n_tiers]`` int64 and the eq. 23 loss ``mean_samples Σ_D (v - v_q)²`` (a
            scalar, 0 for an empty batch), differentiable in ``v`` and the codewords.
        """
        v = as_tensor(v, "v")
        v_q, idx = self.quantize(v, n_tiers)
        err = v - v_q
        sq = (err * err).sum(-1)
        loss = sq.mean() if sq.numel() else sq.sum()
        if not self.training:
            return v_q, idx, loss
        with torch.no_grad():
            flat_idx = idx.reshape(-1, idx.shape[-1])
            for t in range(flat_idx.shape[1]):
                u = getattr(self, f"usage_{t}")
                u += torch.bincount(flat_idx[:, t], minlength=u.numel())
        u = torch.randn(v.shape, generator=generator, dtype=v.dtype, device=v.device)
        u_norm = torch.linalg.vector_norm(u, dim=-1, keepdim=True).clamp_min(torch.finfo(v.dtype).tiny)
        # sqrt(Σ err² + ε) instead of the norm: the norm's gradient is 0/0 = NaN when a sample sits
        # exactly on its codewords (saturated tanh features after a dead-code replacement).
        err_norm = (err.square().sum(-1, keepdim=True) + _NSVQ_EPS).sqrt()
        return v + err_norm / u_norm * u, idx, loss

    # ---- progressive training

    def freeze_tier(self, n: int) -> None:
        """Freeze tier ``n`` (0-based): ``requires_grad`` off and any ``.grad`` dropped."""
        p = self.codebooks[self._tier(n)]
        p.requires_grad_(False)
        p.grad = None

    def unfreeze_tier(self, n: int) -> None:
        """Make tier ``n`` (0-based) trainable again."""
        self.codebooks[self._tier(n)].requires_grad_(True)

    # ---- codebook maintenance

    @torch.no_grad()
    def replace_unused(self, v: torch.Tensor, n_tiers: int | None = None, *, include_frozen: bool = False,
                       generator: torch.Generator | None = None) -> list[int]:
        """Move never-selected codewords onto residuals of ``v`` ``[..., D]``; reset the counters.

        For tier ``n < n_tiers`` in order: the residuals ``r^{n-1}`` of all samples of ``v``
        are computed with the (already updated) earlier tiers; the codewords whose usage
        counter is 0 become the residuals of distinct random samples (``torch.randperm``
        with ``generator``, CPU; the global generator when None). With fewer samples than
        dead codewords only as many codewords as samples are replaced (the lowest indices).
        Frozen tiers are skipped unless ``include_frozen``. Afterwards the counters of the
        first ``n_tiers`` tiers are reset. Only the replacement is batched; no sample loop.

        Returns:
            the number of codewords replaced per tier, ``n_tiers`` integers.
        """
        n = self._tiers(n_tiers)
        flat = self._check_v(v)
        r = flat.detach().clone()
        counts = []
        for t in range(n):
            w = self.codebooks[t]
            dead = torch.nonzero(getattr(self, f"usage_{t}") == 0).flatten()
            m = min(int(dead.numel()), int(r.shape[0]))
            if m and (include_frozen or w.requires_grad):
                pick = torch.randperm(r.shape[0], generator=generator)[:m].to(r.device)
                w[dead[:m]] = r[pick].to(w.dtype)
            else:
                m = 0
            counts.append(m)
            if t + 1 < n:
                wt = w.detach().to(r.dtype)
                r -= wt[nearest_codeword(r, wt)[0]]
        for t in range(n):
            getattr(self, f"usage_{t}").zero_()
        return counts

    @torch.no_grad()
    def fit_lloyd(self, x: torch.Tensor, n_tiers: int | None = None, n_iter: int = 20, seed: int = 0) -> list[float]:
        """Set the first ``n_tiers`` codebooks by the classical RVQ Lloyd construction.

        The paper's baseline "ZF: Perfect CE & Imperfect Feedback" (Sec. VI-B):
        :func:`~chanlab.quant.vector.kmeans` (k-means++, ``n_iter`` Lloyd iterations, seed
        ``seed + n`` for tier ``n``) on ``x`` ``[..., D]`` gives tier 0; ``x`` is quantized with
        it and the residuals give tier 1, and so on. Computed in float64 for float64 data,
        float32 otherwise; frozen tiers are overwritten too (it is an initialization); the
        usage counters of the fitted tiers are reset.

        Returns:
            after each fitted tier, the mean over samples of ``||residual||²`` (summed over
            ``D``), i.e. the eq. 23 loss of the RVQ truncated to that tier.

        Raises:
            DataError: invalid ``x``, or fewer samples than the codewords of a tier.
            ConfigError: ``n_tiers``, ``n_iter`` or ``seed`` out of range.
        """
        n = self._tiers(n_tiers)
        check_int_range(n_iter, "n_iter", 1, error=ConfigError)
        check_int_range(seed, "seed", 0, error=ConfigError)
        flat = self._check_v(x, "x")
        need = max(1 << b for b in self._bits[:n])
        if flat.shape[0] < need:
            raise DataError(f"x: {flat.shape[0]} samples cannot fit a tier of {need} codewords; give at least {need}")
        r = flat.detach().to(torch.float64 if flat.dtype == torch.float64 else torch.float32).clone()
        mses = []
        for t in range(n):
            centers, _ = kmeans(r, 1 << self._bits[t], n_iter=n_iter, seed=int(seed) + t)
            self.codebooks[t].copy_(centers.to(self.codebooks[t].dtype))
            w = self.codebooks[t].detach().to(r.dtype)
            i, _ = nearest_codeword(r, w)
            r -= w[i]
            mses.append(float((r * r).sum(1).mean()))
            getattr(self, f"usage_{t}").zero_()
        return mses

    # ---- bitstreams

    def stream_bits(self, n_tiers: int | None = None, crc: bool = False) -> int:
        """Real length in bits of one :meth:`compress` stream: ``8 ceil(Σ B_n / 8)`` (+16 with CRC)."""
        from chanlab.quant.bit_packing import stream_bits

        return stream_bits(list(self._bits[:self._tiers(n_tiers)]), crc=bool(crc))

    def compress(self, v: torch.Tensor, n_tiers: int | None = None, crc: bool = False) -> list[bytes]:
        """One byte string per row of ``v`` ``[batch, D]``: its ``n_tiers`` indices, ``B_n``
        bits each (:func:`~chanlab.quant.bit_packing.pack_indices`)."""
        from chanlab.quant.bit_packing import pack_indices

        n = self._tiers(n_tiers)
        v = as_tensor(v, "v")
        check_ndim(v, 2, "v", f"[batch, D = {self.dim}]")
        idx = self._encode(self._check_v(v), n)
        return pack_indices(idx, list(self._bits[:n]), crc=bool(crc))

    def decompress(self, streams: Sequence[bytes], n_tiers: int | None = None, crc: bool = False) -> torch.Tensor:
        """``[batch, D]`` reconstructions read back from :meth:`compress` streams (no gradient).

        Raises:
            BitstreamError: not a sequence of byte strings, a stream of the wrong length
                (truncated, extra bytes, another ``n_tiers``), nonzero padding bits, or
                (``crc=True``) a checksum mismatch.
        """
        from chanlab.quant.bit_packing import unpack_indices

        n = self._tiers(n_tiers)
        if isinstance(streams, (bytes, bytearray, memoryview)):
            raise BitstreamError("streams: expected a sequence of byte strings (one per sample), got one bytes object")
        try:
            streams = list(streams)
        except TypeError as exc:
            raise BitstreamError(f"streams: expected a sequence of byte strings, got {type(streams).__name__}") from exc
        idx = unpack_indices(streams, list(self._bits[:n]), crc=bool(crc))
        with torch.no_grad():
            if not streams:
                return torch.empty(0, self.dim, dtype=self.codebooks[0].dtype, device=self.codebooks[0].device)
            return self.dequantize(idx.to(self.codebooks[0].device))

    # ---- codebook expansion (B_deploy > B)

    def expand(self, extra_bits: Sequence[int], *, seed: int = 0) -> ResidualVQ:
        """A new quantizer with more tiers for ``B_deploy > B`` bits (Sec. V-A-2).

        The existing codebooks are copied and frozen; the ``extra_bits`` tiers are appended,
        initialized as a fresh quantizer would be (``seed``), and trainable: train them
        progressively (one stage per new tier) with the rest of the transceiver frozen or
        lightly fine-tuned. Same dim, dtype and device.
        """
        extra = [int(b) for b in extra_bits]
        if not extra:
            raise ConfigError("extra_bits: expected at least one new tier")
        ref = self.codebooks[0]
        out = ResidualVQ(self.dim, list(self._bits) + extra, seed=seed, init_scale=self.init_scale,
                         dtype=ref.dtype).to(ref.device)
        with torch.no_grad():
            for t in range(self.n_tiers):
                out.codebooks[t].copy_(self.codebooks[t])
        for t in range(self.n_tiers):
            out.freeze_tier(t)
        return out

    # ---- codebook shrinkage (B_deploy < B)

    def shrink(self, total_bits: int, *, temperature: float | None = None, eps: float = 1e-6,
               max_iter: int = 100, seed: int = 0) -> ResidualVQ:
        """A new quantizer for ``B_deploy = total_bits < B`` bits (Sec. V-A-1, eq. 24).

        With equal tier bits ``B̄``: the first ``N_0 = ⌊B_deploy / B̄⌋`` codebooks are copied,
        and if ``B_r = B_deploy - N_0 B̄ > 0`` one more tier of ``2^{B_r}`` codewords is
        :func:`differentiable_kmeans` of tier ``N_0`` (0-based; the paper's ``N_0 + 1``).
        ``total_bits = B`` returns a copy.

        ``temperature`` is DKM's ``T``; None (default) is :func:`differentiable_kmeans`'s
        scale-free automatic choice, because the paper's ``T = 1`` collapses the centers of
        a residual tier whose codewords are small (pass ``temperature=1.0`` for the paper).

        The new quantizer has the same dim, dtype and device, all tiers trainable and fresh
        usage counters.

        Raises:
            ConfigError: unequal tier bits, ``total_bits`` outside ``[1, B]``, or bad DKM
                settings.
        """
        if len(set(self._bits)) != 1:
            raise ConfigError(f"shrink: needs equal tier bits (the paper's B̄ = B / N), got {self._bits}")
        check_int_range(total_bits, "total_bits", 1, self.total_bits(), error=ConfigError)
        if temperature is not None:
            temperature = _check_positive_float(temperature, "temperature")
        bbar = self._bits[0]
        n0, br = divmod(int(total_bits), bbar)
        bits = [bbar] * n0 + ([br] if br else [])
        ref = self.codebooks[0]
        out = ResidualVQ(self.dim, bits, init_scale=self.init_scale, dtype=ref.dtype).to(ref.device)
        with torch.no_grad():
            for t in range(n0):
                out.codebooks[t].copy_(self.codebooks[t])
            if br:
                q = self.codebooks[n0].detach()
                out.codebooks[n0].copy_(differentiable_kmeans(q, 1 << br, temperature=temperature, eps=eps,
                                                              max_iter=max_iter, seed=seed))
        return out
