"""Shared-codebook vector quantization of encoder outputs (the "Vector" baseline).

The CSI-feedback bit-allocation paper (``shared/papers/csi-feedback-bit-allocation.txt``,
Sections I, III-B and IV-A) compares against *Vector*, its ref. [11] (Rizzello et al.,
"User-driven adaptive CSI feedback with ordered vector quantization", IEEE WCL 2023): the
``M`` encoder outputs are split into ``M / L`` sub-vectors of length ``L``, each quantized
to the nearest codeword of ONE codebook shared by all sub-vectors, with ``2^{L B}``
codewords of dimension ``L`` (``B`` bits per output, ``L B`` bits per sub-vector); the
codewords are learned, training uses the STE and the loss of eq. 4.

* Quantization: nearest codeword in squared Euclidean distance; ties go to the smaller
  index. Distances are computed batched as ``||v||² - 2 v·w + ||w||²`` (a matmul), over
  chunks of sub-vectors so that the ``[chunk, 2^{LB}]`` distance block stays below
  ``2^20`` entries; rows whose best two candidates of that expansion are within its
  rounding-error bound are re-scored with the directly summed ``Σ (v - w)²``, so that the
  result is the brute-force argmin (:func:`nearest_codeword`).
* Gradients (as :class:`~chanlab.quant.scalar_codebooks.ScalarCodebooks`, the paper's
  ref. [16]): ``z_q = sg(w) + z - sg(z)`` (forward = exactly the codeword, backward =
  identity to ``z``, nothing to the codewords). :meth:`SharedVectorQuantizer.loss` adds
  eq. 4's ``β ||sg(z^q) - z||²`` (pulls the encoder to its codewords) and the codebook loss
  ``||z^q - sg(z)||²`` (below eq. 4; the only path from the data to the codewords), both
  summed over the ``M`` outputs and averaged over the batch.
* Initialization: :meth:`SharedVectorQuantizer.init_from` runs k-means on sample
  sub-vectors (k-means++ seeding, then Lloyd iterations; batched torch on any device).
* Dead codewords (never selected) are left as they are, as the paper's baseline does not
  revive them; they cost nothing but index space.
* Feasibility: the codebook has ``2^{LB}`` codewords; beyond ``max_codewords`` (default
  ``2^14``) the constructor raises :class:`~chanlab.core.errors.ConfigError`. The paper
  marks several *Vector* cases as computationally infeasible (Table II); the example it
  gives, ``L = 4``, ``B = 3``, has ``2^12`` codewords, "codebook size ``L × 2^{LB} = 2^14``"
  scalars. Its dashes also cover ``L = 2``, ``B = 5`` (``2^10`` codewords), so our
  threshold is a compute limit, not a reproduction of the dashes.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import nn

from chanlab.core.errors import ConfigError, DataError
from chanlab.core.validation import check_int_range
from chanlab.quant.checks import check_indices, check_outputs

DEFAULT_MAX_CODEWORDS = 1 << 14
# Entries of one [chunk, K] distance block (~4 MiB in float32: cache-friendly, measured fastest).
_CHUNK_CELLS = 1 << 20
# Column blocks of the argmin search (see _min_two): about this many codewords per block.
_BLOCK = 64
# k-means++ draws from at most this many samples (torch.multinomial's limit is 2^24).
_MAX_SEEDING_SAMPLES = 1 << 24


def _chunk_rows(n_codes: int) -> int:
    return max(1, _CHUNK_CELLS // max(n_codes, 1))


def _matmul_input_unit(dtype: torch.dtype, device: torch.device) -> float:
    """Unit roundoff of the operands of a float32 matmul where TF32 or bfloat16 matmuls are
    allowed (``torch.set_float32_matmul_precision``, the CUDA / oneDNN backend flags), else 0."""
    if dtype != torch.float32:
        return 0.0
    flags = {torch.get_float32_matmul_precision()}
    backends = torch.backends.cuda.matmul if device.type == "cuda" else torch.backends.mkldnn.matmul
    for read in (lambda: backends.fp32_precision,
                 lambda: "tf32" if device.type == "cuda" and torch.backends.cuda.matmul.allow_tf32 else ""):
        try:
            flags.add(str(read()))
        except (AttributeError, RuntimeError):
            pass
    if flags & {"medium", "bf16"}:
        return 2.0 ** -8                    # bfloat16: 8 significant bits
    if flags & {"high", "tf32"}:
        return 2.0 ** -11                   # TF32: 11 significant bits
    return 0.0


def _margin_coef(dim: int, dtype: torch.dtype, device: torch.device) -> float:
    """``c`` such that ``c (||v||² + max_j ||w_j||²)`` bounds, with a factor 2 to spare, how far
    the matmul expansion ``||w_j||² - 2 v·w_j`` can be from the exactly summed
    ``Σ (v - w_j)² - ||v||²`` after rounding of both (any summation order; see
    :func:`nearest_codeword`); ``inf`` where the dimension is too large for the bound."""
    u = torch.finfo(dtype).eps / 2
    n = dim + 2
    if n * u >= 0.5:
        return math.inf
    gamma = n * u / (1 - n * u)
    return 2 * (5 * gamma + 3 * _matmul_input_unit(dtype, device))


def _min_two(a: torch.Tensor, block: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Smallest entry, its column and the second smallest entry of each row of ``a``
    ``[rows, nb * block]`` (another column's value: equal to the smallest on a tie).

    With ``nb > 1`` the search goes through the column blocks' minima (a plain row ``amin`` is
    vectorized, an argmin over all columns is not) and then one block per row. On return
    ``a`` holds its original values (with ``nb == 1`` it is changed and restored in place).
    """
    rows, k = a.shape
    nb = k // block
    if nb == 1:                                                   # in place, then restored
        m, i = a.min(1)
        second = a.scatter_(1, i[:, None], math.inf).amin(1)
        a.scatter_(1, i[:, None], m[:, None])
        return m, i, second
    ab = a.view(rows, nb, block)
    bmin = ab.amin(2)                                             # [rows, nb]
    bi = bmin.argmin(1)
    sub = a.view(rows * nb, block).index_select(                    # [rows, block] (a copy)
        0, torch.arange(0, rows * nb, nb, device=a.device) + bi)
    m, si = sub.min(1)
    second = torch.minimum(bmin.scatter_(1, bi[:, None], math.inf).amin(1),
                           sub.scatter_(1, si[:, None], math.inf).amin(1))
    return m, bi * block + si, second


def nearest_codeword(v: torch.Tensor, w: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Nearest row of ``w`` ``[K, L]`` to each row of ``v`` ``[n, L]`` (batched, chunked).

    The result is the brute-force one: the index minimizes the squared distance
    ``Σ_l (v_l - w_l)²`` computed in the dtype of ``v`` (differences, squares, a sum over
    ``L``), the smallest index winning ties, as
    ``((v[:, None] - w[None]) ** 2).sum(2).argmin(1)`` would give.

    The search: over chunks of rows (``[chunk, K]`` blocks of at most ``2^20`` entries), the
    matmul expansion ``A_j = ||w_j||² - 2 v·w_j`` (``||v||²`` is the same for the whole row)
    gives, per row, the smallest ``A_m`` (its column ``m``) and the second smallest entry.
    Rounding makes the computed ``A_j + ||v||²`` and the computed direct sum ``D_j`` differ by
    at most ``β = c S`` with ``S = ||v||² + max_j ||w_j||²``: the standard bound
    ``γ_n = n u / (1 - n u)`` of a sum of ``n`` rounded terms in any order (``u`` the unit
    roundoff of the dtype, ``n = L + 2``) gives ``|A_j - a_j| ≤ 3 γ_n S`` and
    ``|D_j - d_j| ≤ 2 γ_n S`` against the real-number values ``a_j``, ``d_j = ||v||² + a_j``,
    plus ``3 u' S`` for matmul operands rounded to TF32 (``u' = 2^-11``) or bfloat16
    (``u' = 2^-8``) where ``torch.set_float32_matmul_precision`` or the backend flags allow
    it; ``c = 2 (5 γ_n + 3 u')`` takes twice that, which also covers the rounding of ``β``
    itself. A codeword ``j`` with ``D_j ≤ D_m`` therefore has ``A_j ≤ A_m + 2β``. Where the
    second smallest ``A`` is above that threshold, ``m`` is the brute-force answer. The other
    rows (near-ties, duplicated codewords, far outliers) are scored with ``D_j`` over all
    codewords with ``A_j ≤ A_m + 2β`` (all ``K`` where the threshold is not finite), and the
    smallest ``D_j`` wins, ties to the smallest index. Inputs are assumed finite (with NaN
    the index is unspecified).

    For float32 and ``L = 128``, ``2β ≈ 1.9e-4 S``: on Lloyd codebooks a few percent of the
    rows are re-scored, each over a handful of codewords.

    Returns:
        ``(indices, sq_dist)``: ``[n]`` int64 indices and ``[n]`` squared distances
        ``Σ_l (v_l - w_l)²`` of the chosen codewords, summed directly in the dtype of ``v``
        (not through the expansion). No gradients. Works on any device; ``w`` is cast to
        the dtype of ``v``.
    """
    with torch.no_grad():
        v = v.detach()
        w = w.detach().to(v.dtype)
        n, k = v.shape[0], w.shape[0]
        if k == 1 or n == 0:
            idx = torch.zeros(n, dtype=torch.int64, device=v.device)
            return idx, ((v - w[:1]) ** 2).sum(1)
        idx = torch.empty(n, dtype=torch.int64, device=v.device)
        dist = torch.empty(n, dtype=v.dtype, device=v.device)
        w_sq = (w * w).sum(1)
        w_sq_max = w_sq.max()
        coef = _margin_coef(w.shape[1], v.dtype, v.device)
        # Column blocks of the argmin: pad to nb * block columns with codewords at infinity.
        nb = k // _BLOCK if k >= 2 * _BLOCK else 1
        block = -(-k // nb)
        if nb * block > k:
            w_sq = torch.cat([w_sq, w_sq.new_full((nb * block - k,), math.inf)])
            w = torch.cat([w, w.new_zeros(nb * block - k, w.shape[1])])
        rows = _chunk_rows(nb * block)
        pairs = max(1, _CHUNK_CELLS // max(w.shape[1], 1))
        for lo in range(0, n, rows):
            vc = v[lo:lo + rows]
            approx = torch.addmm(w_sq[None, :], vc, w.T, alpha=-2)     # [chunk, K (padded)]
            a_min, pick, a_second = _min_two(approx, block)
            thr = a_min + 2 * coef * ((vc * vc).sum(1) + w_sq_max)    # A_m + 2β
            loose = ~torch.isfinite(thr)
            amb = torch.nonzero((a_second <= thr) | loose).flatten()
            if amb.numel():
                t_amb = thr.index_select(0, amb)
                cand = approx.index_select(0, amb)[:, :k] <= t_amb[:, None]   # [n_amb, K]
                cand |= ~torch.isfinite(t_amb)[:, None]
                r_i, j_i = torch.nonzero(cand, as_tuple=True)
                vr = vc.index_select(0, amb)
                d = torch.empty(r_i.numel(), dtype=v.dtype, device=v.device)
                for p in range(0, r_i.numel(), pairs):                # [pairs, L] at a time
                    d[p:p + pairs] = ((vr.index_select(0, r_i[p:p + pairs])
                                       - w.index_select(0, j_i[p:p + pairs])) ** 2).sum(1)
                best = torch.full((amb.numel(),), math.inf, dtype=v.dtype, device=v.device
                                  ).scatter_reduce_(0, r_i, d, "amin")
                first = torch.where((d == best.index_select(0, r_i)) | d.isnan(), j_i, torch.full_like(j_i, k))
                pick[amb] = torch.full_like(amb, k).scatter_reduce_(0, r_i, first, "amin").clamp_max_(k - 1)
            idx[lo:lo + vc.shape[0]] = pick
            dist[lo:lo + vc.shape[0]] = ((vc - w.index_select(0, pick)) ** 2).sum(1)
        return idx, dist


def _kmeans_pp(x: torch.Tensor, k: int, gen: torch.Generator) -> torch.Tensor:
    """k-means++ seeding (D² sampling) of ``k`` centers from ``x`` ``[n, L]``.

    The ``k - 1`` later centers are drawn in rounds of ``max(1, k // 128)``, each round
    sampling proportionally to the squared distance ``D²`` to the nearest center chosen so
    far, and the distances are then updated with a batched ``[n, round]`` computation. For
    ``k ≤ 255`` a round is one center, chosen greedily as in scikit-learn: the best (lowest
    total ``D²`` afterwards) of ``2 + ⌊ln k⌋`` draws. Larger codebooks draw a round's centers
    at once without replacement (no trials), which bounds the Python loop to about 128
    rounds and the cost to one ``n × k`` distance pass for ``2^14`` codewords. When every sample already coincides with a
    center (fewer distinct samples than ``k``), the rest are drawn uniformly (then some
    centers coincide).
    """
    n = x.shape[0]
    first = torch.randint(n, (1,), generator=gen, device="cpu").to(x.device)
    centers = [x[first]]
    d2 = ((x - centers[0]) ** 2).sum(1)
    x_sq = (x * x).sum(1)
    step = max(1, k // 128)
    trials = 2 + int(math.log(k))
    have = 1
    while have < k:
        m = min(step, k - have)
        p = d2.double().cpu()
        if int((p > 0).sum()) < m:          # too few samples away from the centers: uniform
            p = torch.ones_like(p)
        if m == 1:                          # greedy: the best of `trials` D² draws
            cand = x[torch.multinomial(p, trials, replacement=True, generator=gen).to(x.device)]
            dc = (torch.addmm((cand * cand).sum(1)[None, :], x, cand.T, alpha=-2) + x_sq[:, None]).clamp_min(0)
            dc = torch.minimum(d2[:, None], dc)                                     # [n, trials]
            best = int(dc.sum(0).argmin())
            centers.append(cand[best:best + 1])
            d2 = dc[:, best]
        else:
            new = x[torch.multinomial(p, m, replacement=False, generator=gen).to(x.device)]
            centers.append(new)
            d2 = torch.minimum(d2, _sq_dist_min(x, new))
        have += m
    return torch.cat(centers)


def _sq_dist_min(x: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
    """``[n]``: min over the rows of ``c`` ``[m, L]`` of the squared distance to each row of
    ``x`` ``[n, L]`` (matmul expansion, chunked, clamped at 0; only used for seeding weights)."""
    out = torch.empty(x.shape[0], dtype=x.dtype, device=x.device)
    c_sq = (c * c).sum(1)
    rows = _chunk_rows(c.shape[0])
    for lo in range(0, x.shape[0], rows):
        xc = x[lo:lo + rows]
        d = torch.addmm(c_sq[None, :], xc, c.T, alpha=-2).min(1).values + (xc * xc).sum(1)
        out[lo:lo + rows] = d.clamp_min(0)
    return out


def kmeans(x: torch.Tensor, k: int, n_iter: int = 20, seed: int = 0, tol: float = 0.0
           ) -> tuple[torch.Tensor, float]:
    """Batched k-means of ``x`` ``[n, L]`` into ``k`` clusters (k-means++ then Lloyd).

    Each Lloyd iteration assigns all samples with :func:`nearest_codeword` and moves each
    center to the mean of its samples (``index_add``); a cluster left empty is re-seeded at
    the samples farthest from their centers (as scikit-learn does), so that no center is
    wasted during initialization. Stops after ``n_iter`` iterations or when the mean squared
    error no longer falls by more than ``tol`` (relative).

    Returns:
        ``(centers, mse)``: ``[k, L]`` centers (dtype of ``x``) and the mean squared distance
        of the samples to their nearest center.
    """
    gen = torch.Generator().manual_seed(int(seed))
    seeds = x
    if x.shape[0] > _MAX_SEEDING_SAMPLES:               # torch.multinomial's category limit
        seeds = x[torch.randperm(x.shape[0], generator=gen)[:_MAX_SEEDING_SAMPLES].to(x.device)]
    centers = _kmeans_pp(seeds, k, gen)
    prev = math.inf
    for _ in range(n_iter):
        idx, d2 = nearest_codeword(x, centers)
        mse = float(d2.mean())
        if prev < math.inf and prev - mse <= tol * prev:
            return centers, mse
        prev = mse
        counts = torch.bincount(idx, minlength=k)
        sums = torch.zeros_like(centers).index_add_(0, idx, x)
        nonempty = counts > 0
        centers = torch.where(nonempty[:, None], sums / counts.clamp_min(1)[:, None].to(x.dtype), centers)
        empty = torch.nonzero(~nonempty).flatten()
        if empty.numel():
            far = d2.topk(min(empty.numel(), x.shape[0])).indices
            centers[empty[:far.numel()]] = x[far]
    idx, d2 = nearest_codeword(x, centers)
    return centers, float(d2.mean())


class SharedVectorQuantizer(nn.Module):
    """One shared codebook of ``2^{L B}`` codewords for the ``M / L`` sub-vectors of ``z``.

    Interface shared with the other feedback quantizers (``ScalarCodebooks``,
    ``UniformQuantizer``): ``forward(z) -> (z_q, indices)``, ``loss(z, indices)``,
    ``dequantize(indices)``, ``symbol_bits`` / ``total_bits``, ``compress`` / ``decompress``.

    Sub-vector ``s`` is ``z[:, s L : (s + 1) L]`` (consecutive outputs).

    Args:
        n_outputs: ``M``.
        sub_dim: ``L``, which must divide ``M``.
        bits_per_output: ``B``; each sub-vector index has ``L B`` bits.
        beta: weight ``β ≥ 0`` of eq. 4's quantization term in :meth:`loss`.
        max_codewords: refuse codebooks larger than this (default ``2^14``).
        seed: seed of the default initialization (uniform in ``[-1, 1]^L``); use
            :meth:`init_from` for the k-means start.
        dtype: codebook dtype.

    Raises:
        ConfigError: ``L`` does not divide ``M``, ``2^{LB}`` exceeds ``max_codewords`` (or
            ``LB > 32``, beyond what a packed index holds), or a non-positive size.
    """

    def __init__(self, n_outputs: int, sub_dim: int, bits_per_output: int, beta: float = 0.1,
                 max_codewords: int = DEFAULT_MAX_CODEWORDS, seed: int = 0,
                 dtype: torch.dtype = torch.float32):
        super().__init__()
        check_int_range(n_outputs, "n_outputs", 1, error=ConfigError)
        check_int_range(sub_dim, "sub_dim", 1, error=ConfigError)
        check_int_range(bits_per_output, "bits_per_output", 1, error=ConfigError)
        check_int_range(max_codewords, "max_codewords", 1, error=ConfigError)
        if n_outputs % sub_dim:
            raise ConfigError(f"sub_dim: L = {sub_dim} must divide the number of outputs M = {n_outputs}")
        if isinstance(beta, bool) or not isinstance(beta, (int, float)) or not math.isfinite(beta) or beta < 0:
            raise ConfigError(f"beta: expected a finite number >= 0, got {beta!r}")
        sym = int(sub_dim) * int(bits_per_output)
        if sym > 32 or (1 << sym) > max_codewords:
            raise ConfigError(f"codebook too large: L = {sub_dim}, B = {bits_per_output} needs 2^(L*B) = 2^{sym} "
                              f"codewords of dimension {sub_dim}, above max_codewords = {max_codewords} "
                              f"(the paper marks such Vector cases infeasible); lower L or B, or raise max_codewords")
        self.sub_dim = int(sub_dim)
        self.bits_per_output = int(bits_per_output)
        self.beta = float(beta)
        gen = torch.Generator().manual_seed(int(seed))
        self.codewords = nn.Parameter((2 * torch.rand(1 << sym, self.sub_dim, generator=gen, dtype=torch.float64) - 1)
                                      .to(dtype))
        self.register_buffer("index_bits", torch.full((n_outputs // sub_dim,), sym, dtype=torch.int64))

    def extra_repr(self) -> str:
        return (f"n_outputs={self.n_outputs}, sub_dim={self.sub_dim}, bits_per_output={self.bits_per_output}, "
                f"n_codewords={self.n_codewords}, beta={self.beta}")

    # ---- views

    @property
    def n_codewords(self) -> int:
        return int(self.codewords.shape[0])

    @property
    def n_symbols(self) -> int:
        """``M / L`` sub-vectors (index symbols) per sample."""
        return int(self.index_bits.shape[0])

    @property
    def n_outputs(self) -> int:
        return self.n_symbols * self.sub_dim

    @property
    def symbol_bits(self) -> torch.Tensor:
        """``[M / L]`` int64: ``L B`` bits per sub-vector index."""
        return self.index_bits

    @property
    def total_bits(self) -> int:
        """``M B``, the payload bits per sample."""
        return int(self.index_bits.sum())

    # ---- checks

    def _check_z(self, z) -> torch.Tensor:
        return check_outputs(z, self.n_outputs)

    def _check_indices(self, indices) -> torch.Tensor:
        return check_indices(indices, self.n_symbols, self.n_codewords, "[batch, M / L]").to(self.codewords.device)

    def _check_pair(self, z, indices) -> tuple[torch.Tensor, torch.Tensor]:
        z = self._check_z(z)
        indices = self._check_indices(indices)
        if indices.shape[0] != z.shape[0]:
            raise DataError(f"indices: expected {z.shape[0]} rows like z, got {indices.shape[0]}")
        return z, indices

    # ---- quantization

    def nearest(self, z: torch.Tensor) -> torch.Tensor:
        """``[batch, M / L]`` int64 index of the nearest shared codeword of each sub-vector
        (:func:`nearest_codeword`; ties go to the smaller index). No gradient."""
        z = self._check_z(z)
        idx, _ = nearest_codeword(z.detach().reshape(-1, self.sub_dim), self.codewords)
        return idx.reshape(z.shape[0], self.n_symbols)

    def _gather(self, indices: torch.Tensor) -> torch.Tensor:
        """``[batch, M]`` codewords of ``indices`` (differentiable in the codewords)."""
        return self.codewords[indices].reshape(indices.shape[0], self.n_outputs)

    def forward(self, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Quantize ``z`` ``[batch, M]`` with a straight-through gradient.

        Returns:
            ``(z_q, indices)``: ``z_q`` ``[batch, M]`` (dtype of ``z``) equals the chosen
            codewords exactly, with the identity gradient to ``z`` and none to the codewords
            (use :meth:`loss`); ``indices`` ``[batch, M / L]`` int64.
        """
        idx = self.nearest(z)
        with torch.no_grad():
            w = self._gather(idx).to(z.dtype)
        # w + (z - sg(z)) rather than z + sg(w - z): the forward value is exactly the codeword.
        return w + (z - z.detach()), idx

    def commitment_loss(self, z: torch.Tensor, indices: torch.Tensor) -> torch.Tensor:
        """Eq. 4's quantization term ``β mean_batch ||sg(z^q) - z||²`` (gradient to ``z`` only)."""
        z, indices = self._check_pair(z, indices)
        with torch.no_grad():
            w = self._gather(indices).to(z.dtype)
        return self.beta * ((w - z) ** 2).sum(1).mean()

    def codebook_loss(self, z: torch.Tensor, indices: torch.Tensor) -> torch.Tensor:
        """The codebook loss ``mean_batch ||z^q - sg(z)||²`` (gradient to the codewords only)."""
        z, indices = self._check_pair(z, indices)
        w = self._gather(indices)
        return ((w - z.detach().to(w.dtype)) ** 2).sum(1).mean()

    def loss(self, z: torch.Tensor, indices: torch.Tensor) -> torch.Tensor:
        """:meth:`commitment_loss` + :meth:`codebook_loss` (disjoint gradient paths)."""
        return self.commitment_loss(z, indices) + self.codebook_loss(z, indices).to(z.dtype)

    def dequantize(self, indices: torch.Tensor) -> torch.Tensor:
        """``[batch, M]`` codewords of ``indices`` ``[batch, M / L]`` (differentiable in the codewords)."""
        return self._gather(self._check_indices(indices))

    # ---- initialization

    @torch.no_grad()
    def init_from(self, z, n_iter: int = 20, max_samples: int | None = 1 << 18, seed: int = 0) -> float:
        """Set the codebook to the k-means centers of the sub-vectors of ``z`` ``[n, M]``.

        All ``n M / L`` sub-vectors (or a random subset of ``max_samples`` of them, drawn with
        ``seed``; ``None`` keeps all) are clustered into ``2^{LB}`` centers by :func:`kmeans`
        (k-means++ seeding, ``n_iter`` Lloyd iterations, empty clusters re-seeded), on the
        device of the codebook. Each iteration costs ``samples × 2^{LB}`` distances: about
        ``2^32`` for the defaults at ``2^14`` codewords, seconds on a GPU, tens of seconds
        per iteration on a CPU core (lower ``max_samples`` / ``n_iter`` there).

        Returns:
            the mean squared distance of the clustered sub-vectors to their nearest center.

        Raises:
            DataError: ``z`` is not a finite real ``[n, M]`` array, or has fewer sub-vectors
                than codewords.
            ConfigError: ``n_iter < 1`` or ``max_samples < 1``.
        """
        check_int_range(n_iter, "n_iter", 1, error=ConfigError)
        if max_samples is not None:
            check_int_range(max_samples, "max_samples", 1, error=ConfigError)
        z = self._check_z(z)
        v = z.detach().reshape(-1, self.sub_dim).to(self.codewords.device)
        if max_samples is not None and v.shape[0] > max_samples:
            gen = torch.Generator().manual_seed(int(seed))
            v = v[torch.randperm(v.shape[0], generator=gen)[:max_samples].to(v.device)]
        if v.shape[0] < self.n_codewords:
            raise DataError(f"z: {v.shape[0]} sub-vectors cannot initialize {self.n_codewords} codewords; "
                            f"give at least {math.ceil(self.n_codewords * self.sub_dim / self.n_outputs)} samples")
        compute = torch.float64 if v.dtype == torch.float64 else torch.float32
        centers, mse = kmeans(v.to(compute), self.n_codewords, n_iter=n_iter, seed=seed)
        self.codewords.copy_(centers.to(self.codewords.dtype))
        return mse

    # ---- bitstreams

    def compress(self, z: torch.Tensor, crc: bool = False) -> list[bytes]:
        """One byte string per sample: the ``M / L`` codeword indices, ``L B`` bits each
        (:func:`~chanlab.quant.bit_packing.pack_indices`)."""
        from chanlab.quant.bit_packing import pack_indices

        return pack_indices(self.nearest(z), self.symbol_bits, crc=crc)

    def decompress(self, streams: Sequence[bytes], crc: bool = False) -> torch.Tensor:
        """``[n, M]`` codewords read back from :meth:`compress` streams."""
        from chanlab.quant.bit_packing import unpack_indices

        with torch.no_grad():
            return self.dequantize(unpack_indices(streams, self.symbol_bits, crc=crc).to(self.codewords.device))
