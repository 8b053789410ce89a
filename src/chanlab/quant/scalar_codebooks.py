"""Per-output scalar codebooks with bit allocation (quantized CSI feedback, Yin-Han-Yang).

The equations cited are those of the CSI-feedback bit-allocation paper
(``shared/papers/csi-feedback-bit-allocation.txt``):

* eq. 1 — output ``z_m`` is quantized to the nearest codeword of its own codebook
  ``W_m = {w_{m,1} < ... < w_{m,2^{B_m}}}``: :meth:`ScalarCodebooks.quantize`.
* eqs. 2-3 — the iterative bit allocation (move one bit from the output whose k-means loss
  grows least to the one whose loss falls most): :func:`allocate_bits`, with per-output
  exact 1-D k-means (Ckmeans.1d.dp through ``ckwrap``): :func:`lloyd_max`.
* eq. 4 — fixed-β loss ``||Ĥ-H||² + β||z^q - z||²`` (the "Proposed-var1" weights).
* eqs. 5-7 — adaptive per-sample weights ``β'_m = β (w^L_{m,j} - w^R_{m,j})`` from the
  spacing of the codewords around the chosen one, doubled one-sided spacing at the edges:
  :func:`codeword_spacing`, :meth:`ScalarCodebooks.adaptive_weights`.
* eq. 8 — ``log(reconstruction loss) + mean_batch Σ_m β'_m (z^q_m - z_m)²``:
  :func:`feedback_loss`, :meth:`ScalarCodebooks.feedback_loss`.

Gradients (Section III-B, STE as in the paper's ref. [16]): the quantized value passed on
is ``sg(w_j) + z - sg(z)`` (forward = exactly the codeword, backward = identity to ``z``);
the quantization term of eq. 8 / eq. 4 sees ``sg(w_j)``, so it only pulls the encoder
towards its codewords; the codebook loss ``mean_batch Σ_m (w_j - sg(z_m))²`` (the paper's
loss for the codebook, below eq. 4) is the only path from the data to the codewords. The β'
weights are constants (computed from detached codewords), as the paper computes them per
sample before the loss.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import nn

from chanlab.core.errors import ConfigError, DataError
from chanlab.core.validation import as_tensor, check_finite, check_int_range, check_samples
from chanlab.quant.checks import check_indices, check_outputs

# Default ceiling of B_m in allocate_bits: 2^16 codewords per output is far beyond any
# feedback budget, and the padded codebook [M, 2^max B_m] must stay small.
DEFAULT_MAX_BITS = 16


# --------------------------------------------------------------------------- exact 1-D k-means

def _kmeans_1d(x: np.ndarray, n_unique: int, bits: int) -> tuple[float, np.ndarray]:
    """Optimal k-means of 1-D samples ``x`` ``[n]`` with ``k = 2^bits`` clusters.

    Returns ``(loss, centers)``: the mean squared distance of the samples to their nearest
    center (the paper's ``l_[B_m]``) and ``[k]`` sorted centers (float64).

    ``ckwrap.ckmeans`` (Ckmeans.1d.dp) is exact, and refuses ``k`` above the number of
    distinct values. Then (and for ``k`` equal to it) the distinct values themselves are
    the optimal centers with zero loss; the ``k - n_unique`` extra codewords are placed
    above the largest value at the mean spacing of the distinct values (spacing 1 for a
    constant output), so that the codebook stays strictly increasing and no sample ever
    selects them.
    """
    import ckwrap

    k = 1 << bits
    if k >= n_unique:
        uniq = np.unique(x)
        step = (uniq[-1] - uniq[0]) / (uniq.size - 1) if uniq.size > 1 else 1.0
        extra = uniq[-1] + step * np.arange(1, k - uniq.size + 1)
        return 0.0, np.concatenate([uniq, extra])
    if k == 1:                                   # no DP needed: the mean, loss = variance
        mu = x.mean()
        return float(((x - mu) ** 2).mean()), np.array([mu])
    # All of ckwrap's methods return the same optimum; "loglinear" was the fastest here.
    res = ckwrap.ckmeans(x, k, method="loglinear")
    return float(res.withinss.sum() / x.size), np.asarray(res.centers, dtype=np.float64)


def _as_samples(z, name: str = "z") -> np.ndarray:
    """``z`` ``[n, M]`` (tensor or array) as a C-contiguous float64 array, validated."""
    z = check_samples(z, name, "[n_samples, M]")
    # Columns are what k-means reads: store them contiguously once.
    return np.ascontiguousarray(z.detach().cpu().double().numpy().T)


def _as_bits(bits, n_outputs: int, name: str = "bits", max_bits: int | None = None) -> torch.Tensor:
    bits = as_tensor(torch.as_tensor(bits) if isinstance(bits, (list, tuple)) else bits, name)
    if bits.ndim != 1 or bits.shape[0] != n_outputs or bits.is_floating_point() or bits.is_complex():
        raise DataError(f"{name}: expected an integer tensor [M = {n_outputs}], got {bits.dtype} {list(bits.shape)}")
    bits = bits.detach().cpu().to(torch.int64)
    hi = DEFAULT_MAX_BITS if max_bits is None else max_bits
    if bits.numel() and (int(bits.min()) < 0 or int(bits.max()) > hi):
        raise DataError(f"{name}: expected 0 <= B_m <= {hi}, got [{int(bits.min())}, {int(bits.max())}]")
    return bits


class _KMeansCache:
    """Per-(output, bits) k-means results, computed on first use (the caching of Sec. III-C, P2-P3)."""

    def __init__(self, columns: np.ndarray):
        # Sorted once: Ckmeans.1d.dp sorts its input, which is then nearly free, and the
        # distinct-value counts come from neighbour differences (k-means ignores the order).
        self.columns = np.sort(columns, axis=1)                       # [M, n] float64
        self.n_unique = (1 + (np.diff(self.columns, axis=1) != 0).sum(1)).tolist()
        self.store: dict[tuple[int, int], tuple[float, np.ndarray]] = {}
        self.n_fits = 0

    def get(self, m: int, b: int) -> tuple[float, np.ndarray]:
        key = (m, b)
        if key not in self.store:
            self.store[key] = _kmeans_1d(self.columns[m], self.n_unique[m], b)
            self.n_fits += 1
        return self.store[key]

    def loss(self, m: int, b: int) -> float:
        return self.get(m, b)[0]


def lloyd_max(z, bits) -> tuple[list[torch.Tensor], torch.Tensor]:
    """Optimal scalar quantizer of each output at given bits (per-output exact 1-D k-means).

    A 1-D k-means optimum is a Lloyd-Max quantizer for the empirical distribution, found
    exactly (Ckmeans.1d.dp dynamic programming), not by Lloyd iterations from a start.

    Args:
        z: ``[n, M]`` real samples of the encoder outputs.
        bits: ``[M]`` integers ``B_m`` in ``[0, 16]``.

    Returns:
        ``(codebooks, losses)``: ``M`` sorted 1-D tensors of ``2^{B_m}`` codewords (dtype of
        ``z``, float32 for non-float input), and ``[M]`` float64 per-output mean squared
        quantization errors ``l_[B_m]``.
    """
    dtype = z.dtype if isinstance(z, torch.Tensor) and z.is_floating_point() else torch.float32
    cols = _as_samples(z)
    bits = _as_bits(bits, cols.shape[0])
    cache = _KMeansCache(cols)
    books, losses = [], []
    for m, b in enumerate(bits.tolist()):
        loss, centers = cache.get(m, b)
        books.append(torch.from_numpy(centers).to(dtype))
        losses.append(loss)
    return books, torch.tensor(losses, dtype=torch.float64)


# --------------------------------------------------------------------------- bit allocation (eqs. 2-3)

@dataclass
class BitAllocation:
    """Result of :func:`allocate_bits`; unpacks as ``bits, codebooks, loss = allocate_bits(...)``.

    Attributes:
        bits: ``[M]`` int64 allocation, ``Σ bits = total_bits``.
        codebooks: ``M`` sorted 1-D tensors of ``2^{B_m}`` k-means codewords.
        loss: total quantization loss ``Σ_m l_[B_m]`` (mean squared error per sample, summed
            over outputs) of the final allocation.
        losses: ``[M]`` float64 per-output losses ``l_[B_m]``.
        history: total loss before the first move and after each move (non-increasing).
        moves: ``(d, a)`` per iteration: the output that lost a bit and the one that gained it.
        n_fits: k-means problems solved (cache misses).
    """

    bits: torch.Tensor
    codebooks: list[torch.Tensor]
    loss: float
    losses: torch.Tensor
    history: list[float] = field(default_factory=list)
    moves: list[tuple[int, int]] = field(default_factory=list)
    n_fits: int = 0

    def __iter__(self):
        return iter((self.bits, self.codebooks, self.loss))


def _best_move(down: np.ndarray, up: np.ndarray) -> tuple[int, int, float]:
    """The single-bit move ``d → a`` (``d != a``) with the lowest loss change ``down[d] - up[a]``.

    ``down[m] = l_[B_m-1] - l_[B_m]`` (eq. 2's cost) and ``up[m] = l_[B_m] - l_[B_m+1]``
    (eq. 3's gain). The change is separable, so the best pair is eq. 2's argmin with eq. 3's
    argmax; when both name the same output (a no-op move) the runner-up of either side is
    taken, whichever is better.
    """
    if down.size < 2:
        return -1, -1, np.inf
    d_order = np.argsort(down, kind="stable")[:2]
    a_order = np.argsort(-up, kind="stable")[:2]
    d, a = int(d_order[0]), int(a_order[0])
    if d != a:
        return d, a, float(down[d] - up[a])
    c1 = float(down[d_order[1]] - up[a])
    c2 = float(down[d] - up[a_order[1]])
    return (int(d_order[1]), a, c1) if c1 <= c2 else (d, int(a_order[1]), c2)


def allocate_bits(z, total_bits: int, init=None, max_bits: int | None = None,
                  max_iter: int | None = None, rtol: float = 1e-12) -> BitAllocation:
    """Iterative bit allocation among encoder outputs (Section III-A, eqs. 2-3).

    Each output's codebook for ``B`` bits is the exact k-means of its samples with ``2^B``
    clusters, and ``l_[B]`` its mean squared error. Starting from equal bits (or ``init``),
    every iteration computes, for each output, the loss increase of removing one bit
    (eq. 2, ``l_[B_m-1] - l_[B_m]``) and the loss decrease of adding one (eq. 3,
    ``l_[B_m] - l_[B_m+1]``), and moves one bit from the cheapest output ``d`` to the most
    profitable output ``a``. The loop stops when the best move no longer lowers the total
    loss (the paper: "until the total quantization loss stops decreasing"), i.e. a move is
    only made when it lowers the loss by more than ``rtol`` times the current total. The
    losses are therefore non-increasing (convergence argument of Sec. III-A), and the result
    is a local optimum: no single-bit move between two outputs lowers the total loss.

    Choices the paper leaves open (written down here):

    * If eqs. 2 and 3 pick the same output, the runner-up of either side is used
      (:func:`_best_move`), so the move found is always the best single-bit move.
    * Equal start with a budget not divisible by M: ``total_bits // M`` each, plus one more
      bit for the first ``total_bits % M`` outputs.
    * Range ``0 <= B_m <= max_bits``. ``B_m = 0`` is allowed: the output is sent as the
      constant mean of its samples (one codeword, zero bits). ``max_bits`` defaults to
      ``min(total_bits, 16)``.
    * The k-means results are cached per (output, bits), so the first iteration fits the
      ``B_m - 1, B_m, B_m + 1`` codebooks of every output and each later one only the two
      new neighbours (``B_d - 2`` and ``B_a + 2``) — the paper's P2/P3 complexity.

    Args:
        z: ``[n, M]`` real samples of the encoder outputs (``n`` samples ``ϕ_m`` per output).
        total_bits: the budget ``Σ_m B_m`` (the paper's ``MB``).
        init: optional ``[M]`` starting allocation summing to ``total_bits``.
        max_bits: the largest ``B_m`` allowed.
        max_iter: safety cap on the moves (default ``M * max_bits + total_bits``); the loop
            ends on its own long before that in practice.
        rtol: relative decrease a move must achieve.

    Returns:
        :class:`BitAllocation` (unpacks to ``bits, codebooks, loss``).

    Raises:
        ConfigError: inconsistent budget, ``init`` or ``max_bits``.
        DataError: ``z`` is not a finite real ``[n, M]`` array.
    """
    dtype = z.dtype if isinstance(z, torch.Tensor) and z.is_floating_point() else torch.float32
    cols = _as_samples(z)
    n_out = cols.shape[0]
    check_int_range(total_bits, "total_bits", 0, error=ConfigError)
    if max_bits is None:
        max_bits = min(int(total_bits), DEFAULT_MAX_BITS)
    check_int_range(max_bits, "max_bits", 0, DEFAULT_MAX_BITS, error=ConfigError)
    if total_bits > n_out * max_bits:
        raise ConfigError(f"total_bits: {total_bits} bits cannot be spread over M = {n_out} outputs "
                          f"with at most max_bits = {max_bits} each")
    if init is None:
        bits = np.full(n_out, total_bits // n_out, dtype=np.int64)
        bits[: total_bits % n_out] += 1
    else:
        try:
            bits = _as_bits(init, n_out, "init", max_bits).numpy().copy()
        except DataError as err:
            raise ConfigError(str(err)) from err
        if int(bits.sum()) != total_bits:
            raise ConfigError(f"init: expected an allocation summing to total_bits = {total_bits}, "
                              f"got {int(bits.sum())}")
    if max_iter is None:
        max_iter = n_out * max_bits + int(total_bits)

    cache = _KMeansCache(cols)

    def neighbours(m: int) -> tuple[float, float, float]:
        b = int(bits[m])
        cur = cache.loss(m, b)
        down = cache.loss(m, b - 1) - cur if b > 0 else np.inf
        up = cur - cache.loss(m, b + 1) if b < max_bits else -np.inf
        return cur, down, up

    cur, down, up = (np.array(v, dtype=np.float64) for v in zip(*(neighbours(m) for m in range(n_out))))
    total = float(cur.sum())
    history, moves = [total], []
    for _ in range(max_iter):
        d, a, delta = _best_move(down, up)
        if not delta < -rtol * max(total, np.finfo(np.float64).tiny):
            break
        bits[d] -= 1
        bits[a] += 1
        for m in (d, a):                       # only these two outputs' neighbours change
            cur[m], down[m], up[m] = neighbours(m)
        total = float(cur.sum())
        history.append(total)
        moves.append((d, a))

    books = [torch.from_numpy(cache.get(m, int(b))[1]).to(dtype) for m, b in enumerate(bits)]
    return BitAllocation(bits=torch.from_numpy(bits), codebooks=books, loss=total,
                         losses=torch.from_numpy(cur.copy()), history=history, moves=moves,
                         n_fits=cache.n_fits)


# --------------------------------------------------------------------------- losses (eqs. 4-8)

def codeword_spacing(codewords: torch.Tensor, bits: torch.Tensor, indices: torch.Tensor) -> torch.Tensor:
    """Neighbouring-codeword spacing of each chosen codeword (eqs. 5-7 without β).

    For ``z_m`` quantized to ``w_{m,j}`` (eq. 1), with ``w^L`` the next larger and ``w^R``
    the next smaller codeword, the decision interval of eq. 5 has width
    ``(w^L - w^R) / 2`` (eq. 6), and eq. 7 uses the spacing ``w^L - w^R``. For the largest
    codeword the spacing is ``2 (w_j - w^R)``, for the smallest ``2 (w^L - w_j)`` (the
    doubled one-sided spacing of the paper, below eq. 7). With a single codeword
    (``B_m = 0``) there are no neighbours and the interval is the whole line; the spacing is
    then set to 1, i.e. the fixed weight ``β`` of eq. 4 (a choice; the paper has no
    ``B_m = 0``).

    Args:
        codewords: ``[M, K]`` codewords, each row sorted ascending in its first ``2^{B_m}``
            entries (entries beyond are ignored).
        bits: ``[M]`` integer ``B_m``.
        indices: ``[batch, M]`` int64 chosen codeword index per output.

    Returns:
        ``[batch, M]`` spacings (``≥ 0``), dtype and device of ``codewords``.
    """
    n_valid = (torch.ones_like(bits) << bits).to(indices.device)        # [M]
    last = (n_valid - 1)[None, :]                                       # [1, M]
    w = codewords.T                                                     # [K, M]: gather along dim 0
    lo = indices.clamp(min=1) - 1
    hi = torch.minimum(indices + 1, last)
    w_j, w_r, w_l = w.gather(0, indices), w.gather(0, lo), w.gather(0, hi)
    spacing = torch.where(indices == 0, 2 * (w_l - w_j),                # smallest codeword
                          torch.where(indices == last, 2 * (w_j - w_r),  # largest codeword
                                      w_l - w_r))                       # interior (eq. 7)
    return torch.where(last == 0, torch.ones_like(spacing), spacing)    # single codeword


def feedback_loss(recon_loss: torch.Tensor, quantization_loss: torch.Tensor, log_recon: bool = True) -> torch.Tensor:
    """The autoencoder loss of eq. 8: ``log(recon_loss) + quantization_loss``.

    ``recon_loss`` is the batch mean of ``||Ĥ - H||²`` (any fixed normalization, e.g. the
    per-element MSE: a constant factor only shifts the log by a constant and leaves the
    gradients unchanged). It is clamped at the smallest positive normal number of its dtype
    so that a perfect reconstruction gives a finite loss. ``quantization_loss`` is
    :meth:`ScalarCodebooks.quantization_loss` (adaptive β' for eq. 8, fixed β for the
    "Proposed-var1" variant). With ``log_recon=False`` the plain reconstruction loss is
    used instead (eq. 4 with fixed β; the "Proposed-var2" variant with adaptive β').
    """
    if not log_recon:
        return recon_loss + quantization_loss
    return torch.log(recon_loss.clamp_min(torch.finfo(recon_loss.dtype).tiny)) + quantization_loss


def _gather(w: torch.Tensor, indices: torch.Tensor) -> torch.Tensor:
    """``[batch, M]`` entries ``w[m, indices[b, m]]`` of ``w`` ``[M, K]`` (differentiable in ``w``)."""
    return w.T.gather(0, indices.to(device=w.device, dtype=torch.int64))


# --------------------------------------------------------------------------- the module

class ScalarCodebooks(nn.Module):
    """M learnable scalar codebooks, ``2^{B_m}`` sorted codewords for output ``m`` (eq. 1).

    Storage: ``codewords`` is an ``[M, K]`` parameter, ``K = 2^{width_bits}`` (default
    ``2^{max B_m}``), of which row ``m`` uses its first ``2^{B_m}`` entries (``mask``); the
    unused entries hold copies of the last valid codeword, never receive gradients and are
    never selected. ``bits`` is an int64 ``[M]`` buffer. Indices always refer to the codewords
    *sorted* ascending (:meth:`sorted_codewords`): gradient steps may reorder the raw
    parameter, the codebook's meaning does not change; :meth:`sort_` reorders it in place.

    Args:
        bits: ``[M]`` integers ``B_m`` in ``[0, 16]``.
        codewords: ``None`` (a uniform grid on ``[-1, 1]``: cell midpoints ``(2i+1)/2^B - 1``),
            a list of ``M`` 1-D tensors of ``2^{B_m}`` codewords (e.g. from
            :func:`allocate_bits`), or an ``[M, ≥ 2^{max B_m}]`` tensor read row-wise.
        width_bits: store ``2^{width_bits}`` codewords per row, so that later allocations up
            to that many bits fit the same parameter (:meth:`set_allocation`).
        dtype: parameter dtype.
    """

    def __init__(self, bits, codewords=None, width_bits: int | None = None,
                 dtype: torch.dtype = torch.float32):
        super().__init__()
        bits = as_tensor(torch.as_tensor(bits) if isinstance(bits, (list, tuple)) else bits, "bits")
        bits = _as_bits(bits, int(bits.shape[0]) if bits.ndim == 1 else -1)
        if bits.numel() == 0:
            raise ConfigError("bits: expected at least one output")
        need = int(bits.max())
        if width_bits is None:
            width_bits = need
        check_int_range(width_bits, "width_bits", need, DEFAULT_MAX_BITS, error=ConfigError)
        self.register_buffer("bits", bits.clone())
        self.codewords = nn.Parameter(torch.empty(bits.numel(), 1 << width_bits, dtype=dtype))
        if codewords is None:
            codewords = [(2 * torch.arange(1 << b, dtype=torch.float64) + 1) / (1 << b) - 1 for b in bits.tolist()]
        self._write(bits, codewords)

    # ---- construction and reallocation

    @classmethod
    def from_samples(cls, z, bits, **kwargs) -> "ScalarCodebooks":
        """Codebooks from per-output k-means of samples ``z`` ``[n, M]`` (:func:`lloyd_max`)."""
        books, _ = lloyd_max(z, bits)
        return cls(bits, books, **kwargs)

    @classmethod
    def from_allocation(cls, allocation: BitAllocation, **kwargs) -> "ScalarCodebooks":
        """Codebooks of an :func:`allocate_bits` result."""
        return cls(allocation.bits, allocation.codebooks, **kwargs)

    @torch.no_grad()
    def _write(self, bits: torch.Tensor, codewords) -> None:
        n_out, width = self.codewords.shape
        if isinstance(codewords, torch.Tensor) and codewords.ndim == 2:
            if codewords.shape[0] != n_out or codewords.shape[1] < (1 << int(bits.max())):
                raise DataError(f"codewords: expected [M = {n_out}, >= {1 << int(bits.max())}], "
                                f"got {list(codewords.shape)}")
            codewords = [codewords[m, : 1 << b] for m, b in enumerate(bits.tolist())]
        if not isinstance(codewords, Sequence) or len(codewords) != n_out:
            raise DataError(f"codewords: expected {n_out} codebooks, got "
                            f"{len(codewords) if isinstance(codewords, Sequence) else type(codewords).__name__}")
        rows = []
        for m, (b, book) in enumerate(zip(bits.tolist(), codewords)):
            book = as_tensor(torch.as_tensor(book) if not isinstance(book, (torch.Tensor, np.ndarray)) else book,
                             f"codewords[{m}]")
            if book.ndim != 1 or book.numel() != 1 << b:
                raise DataError(f"codewords[{m}]: expected {1 << b} codewords for B_m = {b}, "
                                f"got shape {list(book.shape)}")
            check_finite(book, f"codewords[{m}]")
            book = torch.sort(book.detach().to(self.codewords.device, self.codewords.dtype)).values
            rows.append(torch.cat([book, book[-1:].expand(width - book.numel())]))
        self.codewords.copy_(torch.stack(rows))
        self.bits.copy_(bits)

    def set_allocation(self, bits, codewords) -> None:
        """Replace the allocation and codewords (after a bit-allocation step, Sec. III-C).

        Written in place when ``2^{max B_m}`` fits the current width, so an optimizer keeps
        its reference to the parameter (its moment estimates for moved codewords are stale;
        reset them if that matters). Otherwise the parameter is replaced by a wider one and
        the optimizer must be rebuilt.
        """
        bits = _as_bits(bits, self.n_outputs)
        if (1 << int(bits.max())) > self.codewords.shape[1]:
            self.codewords = nn.Parameter(torch.empty(self.n_outputs, 1 << int(bits.max()),
                                                      dtype=self.codewords.dtype, device=self.codewords.device))
        self._write(bits, codewords)

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):
        # A checkpoint written after a reallocation may hold a wider codebook than this
        # freshly built module: adopt its width so that resuming works.
        saved = state_dict.get(prefix + "codewords")
        if saved is not None and saved.ndim == 2 and saved.shape[0] == self.n_outputs \
                and saved.shape[1] != self.codewords.shape[1]:
            self.codewords = nn.Parameter(torch.empty_like(saved, dtype=self.codewords.dtype,
                                                           device=self.codewords.device))
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)

    # ---- views

    @property
    def n_outputs(self) -> int:
        return int(self.codewords.shape[0])

    @property
    def total_bits(self) -> int:
        """``Σ_m B_m``, the payload bits per sample."""
        return int(self.bits.sum())

    @property
    def mask(self) -> torch.Tensor:
        """``[M, K]`` bool, True on the ``2^{B_m}`` codewords row ``m`` uses."""
        k = torch.arange(self.codewords.shape[1], device=self.codewords.device)
        return k[None, :] < (torch.ones_like(self.bits) << self.bits)[:, None]

    def sorted_codewords(self) -> torch.Tensor:
        """``[M, K]`` codewords sorted ascending per row, ``+inf`` past ``2^{B_m}`` (differentiable)."""
        w = torch.where(self.mask, self.codewords, torch.full_like(self.codewords, torch.inf))
        return torch.sort(w, dim=1).values

    def codebook(self, m: int) -> torch.Tensor:
        """The sorted ``2^{B_m}`` codewords of output ``m`` (detached)."""
        return self.sorted_codewords()[m, : 1 << int(self.bits[m])].detach()

    @torch.no_grad()
    def sort_(self) -> None:
        """Sort the stored codewords in place (indices already refer to the sorted order)."""
        w = self.sorted_codewords()
        last = w.gather(1, ((torch.ones_like(self.bits) << self.bits) - 1)[:, None].to(w.device))
        self.codewords.copy_(torch.where(self.mask, w, last))

    # ---- quantization (eq. 1)

    def _check_z(self, z: torch.Tensor) -> None:
        check_outputs(z, self.n_outputs)

    def _check_indices(self, indices: torch.Tensor) -> None:
        check_indices(indices, self.n_outputs, torch.ones_like(self.bits) << self.bits)

    def nearest(self, z: torch.Tensor) -> torch.Tensor:
        """``[batch, M]`` int64 index of the nearest codeword (eq. 1; ties go to the smaller).

        Batched binary search over the decision thresholds (codeword midpoints), then an
        exact comparison of the squared distances to the found codeword and its two
        neighbours, so that rounding in the midpoints cannot change the argmin. Cost
        ``O(batch · M · log K)`` without a ``[batch, M, K]`` temporary.
        """
        self._check_z(z)
        with torch.no_grad():
            w = self.sorted_codewords().detach().to(z.dtype)                     # [M, K]
            last = ((torch.ones_like(self.bits) << self.bits) - 1).to(z.device)[:, None]
            zt = z.detach().T.contiguous()                                          # [M, batch]
            if w.shape[1] == 1:
                return torch.zeros(z.shape, dtype=torch.int64, device=z.device)
            mid = (w[:, 1:] + w[:, :-1]) / 2                                        # inf past 2^{B_m}
            j = torch.searchsorted(mid, zt)
            cand = torch.stack([(j - 1).clamp(min=0), torch.minimum(j, last),
                                torch.minimum(j + 1, last)], dim=0)                # [3, M, batch]
            dist = (w[None].expand(3, -1, -1).gather(2, cand) - zt[None]) ** 2
            # Candidates are in ascending order, argmin picks the first of ties = smallest index.
            best = cand.gather(0, dist.argmin(0, keepdim=True))[0]
            return best.T.contiguous()

    def quantize(self, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Quantize encoder outputs (eq. 1) with a straight-through gradient.

        Args:
            z: ``[batch, M]`` real encoder outputs.

        Returns:
            ``(z_q, indices)``: ``z_q`` ``[batch, M]`` equals the chosen codewords in the
            forward pass and has the identity gradient to ``z`` (``sg(w_j) + z - sg(z)``; no
            gradient to the codewords: use :meth:`codebook_loss`); ``indices`` ``[batch, M]``
            int64 into the sorted codebooks.
        """
        idx = self.nearest(z)
        with torch.no_grad():
            w_j = _gather(self.sorted_codewords(), idx).to(z.dtype)
        # w_j + (z - sg(z)) rather than z + sg(w_j - z): the forward value is then exactly the
        # codeword (z - z is exactly 0), not the codeword up to a rounding error.
        return w_j + (z - z.detach()), idx

    def forward(self, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Same as :meth:`quantize`."""
        return self.quantize(z)

    def dequantize(self, indices: torch.Tensor) -> torch.Tensor:
        """``[batch, M]`` codewords of ``indices`` ``[batch, M]`` (differentiable in the codewords)."""
        indices = as_tensor(indices, "indices")
        self._check_indices(indices)
        return _gather(self.sorted_codewords(), indices)

    # ---- losses (eqs. 4-8)

    def adaptive_weights(self, indices: torch.Tensor, beta: float) -> torch.Tensor:
        """``[batch, M]`` per-sample weights ``β'_m = β (w^L_{m,j} - w^R_{m,j})`` (eq. 7).

        Edge codewords use the doubled one-sided spacing; a single codeword gets ``β``
        (:func:`codeword_spacing`). Computed from detached codewords: the weights are
        constants of the loss.
        """
        indices = as_tensor(indices, "indices")
        self._check_indices(indices)
        with torch.no_grad():
            w = self.sorted_codewords()
            return beta * codeword_spacing(w, self.bits.to(w.device), indices.to(w.device, torch.int64))

    def _check_pair(self, z: torch.Tensor, indices: torch.Tensor) -> torch.Tensor:
        self._check_z(z)
        indices = as_tensor(indices, "indices")
        self._check_indices(indices)
        if indices.shape != z.shape:
            raise DataError(f"indices: expected the shape of z {list(z.shape)}, got {list(indices.shape)}")
        return indices.to(self.codewords.device, torch.int64)

    def quantization_loss(self, z: torch.Tensor, indices: torch.Tensor, beta: float,
                          adaptive: bool = True) -> torch.Tensor:
        """The encoder's quantization term: ``mean_batch Σ_m β'_m (sg(z^q_m) - z_m)²``.

        With ``adaptive=True`` the weights are the per-sample ``β'_m`` of eq. 7 (the second
        term of eq. 8); with ``adaptive=False`` they are the fixed ``β`` of eq. 4 (the
        "Proposed-var1" baseline). The codewords are detached: this term moves the encoder
        towards its codewords, :meth:`codebook_loss` moves the codewords.

        Args:
            z: ``[batch, M]`` encoder outputs (with gradient).
            indices: ``[batch, M]`` their codeword indices (from :meth:`quantize`).
            beta: the base weight ``β`` (the paper tunes it in ``[0.01, 0.25]``).

        Returns:
            a scalar tensor.
        """
        indices = self._check_pair(z, indices)
        with torch.no_grad():
            w = self.sorted_codewords()
            w_j = _gather(w, indices).to(z.dtype)
            weight = (beta * codeword_spacing(w, self.bits, indices).to(z.dtype)) if adaptive else beta
        return (weight * (w_j - z) ** 2).sum(1).mean()

    def codebook_loss(self, z: torch.Tensor, indices: torch.Tensor) -> torch.Tensor:
        """The codebook loss ``mean_batch Σ_m (w_{m,j} - sg(z_m))²`` (the paper, below eq. 4).

        Gradients reach only the selected codewords (the encoder output is detached).
        """
        indices = self._check_pair(z, indices)
        w_j = _gather(self.sorted_codewords(), indices)
        return ((w_j - z.detach().to(w_j.dtype)) ** 2).sum(1).mean()

    def feedback_loss(self, recon_loss: torch.Tensor, z: torch.Tensor, indices: torch.Tensor,
                      beta: float, adaptive: bool = True, log_recon: bool = True) -> torch.Tensor:
        """Eq. 8: ``log(recon_loss) + mean_batch Σ_m β'_m (z^q_m - z_m)²``.

        ``adaptive=False`` gives the fixed-β variant ("Proposed-var1"), ``log_recon=False``
        the plain reconstruction loss ("Proposed-var2"; with ``adaptive=False`` too, eq. 4).
        Add :meth:`codebook_loss` to train the codewords with the same optimizer: the
        gradient paths are disjoint (see the module docstring).
        """
        return feedback_loss(recon_loss, self.quantization_loss(z, indices, beta, adaptive), log_recon)

    # ---- bitstreams

    def compress(self, z: torch.Tensor, crc: bool = False) -> list[bytes]:
        """One byte string per sample: the indices of eq. 1 packed with ``B_m`` bits each
        (:func:`~chanlab.quant.bit_packing.pack_indices`)."""
        from chanlab.quant.bit_packing import pack_indices

        return pack_indices(self.nearest(z), self.bits, crc=crc)

    def decompress(self, streams: Sequence[bytes], crc: bool = False) -> torch.Tensor:
        """``[n, M]`` quantized outputs read back from :meth:`compress` streams."""
        from chanlab.quant.bit_packing import unpack_indices

        with torch.no_grad():
            return self.dequantize(unpack_indices(streams, self.bits, crc=crc).to(self.codewords.device))
