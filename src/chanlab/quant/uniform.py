"""Uniform quantization with a smooth rounding surrogate (the "Round" baseline).

The CSI-feedback bit-allocation paper (``shared/papers/csi-feedback-bit-allocation.txt``,
Sections I and IV-A) compares against *Round*, its ref. [14] (Liang et al., "Changeable rate
and novel quantization for CSI feedback based on deep learning", IEEE TWC 2022): every
encoder output is squashed into ``(0, 1)`` by a sigmoid and uniformly quantized with ``B``
bits, and the rounding is replaced by a smooth function in the backward pass.

Forward (what is transmitted and what the decoder sees):

* ``s = σ(z)`` in ``(0, 1)``, ``x = (2^B - 1) s`` in ``(0, 2^B - 1)``;
* index ``k = ⌊x + ½⌋`` (round half up), clamped to ``[0, 2^B - 1]``;
* ``z_q = k / (2^B - 1)``: one of the ``2^B`` uniform levels ``0, 1/(2^B-1), ..., 1``.

**The decoder sees the sigmoid domain**: ``z_q`` approximates ``σ(z)``, not ``z``. A
CsiNet-style decoder starts with a learned linear layer and does not care (the sigmoid is
part of the encoder from its point of view); this module does not map back with a logit.

Backward (the choice written down here; the smoothing function of ref. [14] is not
restated in the paper): the hard rounding is differentiated as the smooth staircase
(the "soft rounding" of Agustsson & Theis, NeurIPS 2020)::

    r(x) = ⌊x⌋ + ½ + ½ · tanh(α (x - ⌊x⌋ - ½)) / tanh(α / 2)

which is continuous with a continuous derivative, passes through every integer
(``r(n) = n``) and has the derivative

    r'(x) = (α / 2) · sech²(α (x - ⌊x⌋ - ½)) / tanh(α / 2),

whose average over a unit interval is exactly 1 (the rise of one step), so the surrogate
has on average the scale of the identity STE. ``α → 0`` gives the identity (plain STE, which
ignores the staircase), ``α → ∞`` the true derivative (zero almost everywhere: vanishing
gradients). The default ``α = 4`` sits between the two: at a level the slope is
``α / sinh α ≈ 0.15`` and at a decision threshold ``α / (2 tanh(α/2)) ≈ 2.07``, so the
gradient is never below about 1/7 of its mean (no vanishing) yet still tells the encoder
where moving an output changes the transmitted level (not the plain identity). The
gradient passed to ``z`` is ``r'(x) · σ'(z)`` (chain rule through ``x = (2^B-1) σ(z)`` and
the division by ``2^B - 1``). It is implemented as ``z_q = sg(level) + (r̃ - sg(r̃))`` with
``r̃ = r(x) / (2^B - 1)``, so the forward value is exactly the level.

The method has no extra loss terms: :meth:`UniformQuantizer.loss` returns 0.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import nn

from chanlab.core.errors import ConfigError, DataError
from chanlab.core.validation import check_int_range
from chanlab.quant.checks import check_indices, check_outputs

# B ≤ 16: 2^16 levels are far beyond any feedback budget, and the levels k / (2^B - 1)
# stay distinct in float32.
MAX_BITS = 16
DEFAULT_ALPHA = 4.0


def soft_round(x: torch.Tensor, alpha: float = DEFAULT_ALPHA) -> torch.Tensor:
    """The smooth staircase ``r(x) = ⌊x⌋ + ½ + ½ tanh(α (x - ⌊x⌋ - ½)) / tanh(α/2)``.

    Differentiable in ``x`` (the floor contributes no gradient, which is correct: ``r`` is
    continuous across integers). ``r(n) = n`` for integers ``n``.
    """
    f = torch.floor(x)
    return f + 0.5 + 0.5 * torch.tanh(alpha * (x - f - 0.5)) / math.tanh(alpha / 2)


def soft_round_derivative(x: torch.Tensor, alpha: float = DEFAULT_ALPHA) -> torch.Tensor:
    """``r'(x) = (α/2) sech²(α (x - ⌊x⌋ - ½)) / tanh(α/2)`` (mean 1 over a unit interval)."""
    u = torch.tanh(alpha * (x - torch.floor(x) - 0.5))
    return 0.5 * alpha * (1 - u * u) / math.tanh(alpha / 2)


class UniformQuantizer(nn.Module):
    """Sigmoid + ``B``-bit uniform quantizer of ``M`` outputs with a soft-rounding gradient.

    Interface shared with the other feedback quantizers (``ScalarCodebooks``,
    ``SharedVectorQuantizer``): ``forward(z) -> (z_q, indices)``, ``loss(z, indices)``,
    ``dequantize(indices)``, ``symbol_bits`` / ``total_bits``, ``compress`` / ``decompress``.

    Args:
        n_outputs: ``M``, the encoder outputs per sample.
        bits: ``B`` in ``[1, 16]``, the bits of every output.
        alpha: sharpness ``α > 0`` of the soft-rounding surrogate (module docstring).

    Raises:
        ConfigError: ``n_outputs < 1``, ``bits`` outside ``[1, 16]`` or ``alpha`` not > 0.
    """

    def __init__(self, n_outputs: int, bits: int, alpha: float = DEFAULT_ALPHA):
        super().__init__()
        check_int_range(n_outputs, "n_outputs", 1, error=ConfigError)
        check_int_range(bits, "bits", 1, MAX_BITS, error=ConfigError)
        if isinstance(alpha, bool) or not isinstance(alpha, (int, float)) or not math.isfinite(alpha) \
                or alpha <= 0:
            raise ConfigError(f"alpha: expected a finite number > 0, got {alpha!r}")
        self.alpha = float(alpha)
        self.n_levels = 1 << int(bits)
        self.register_buffer("bits", torch.full((int(n_outputs),), int(bits), dtype=torch.int64))

    def extra_repr(self) -> str:
        return f"n_outputs={self.n_outputs}, bits={int(self.bits[0])}, alpha={self.alpha}"

    # ---- views

    @property
    def n_outputs(self) -> int:
        return int(self.bits.shape[0])

    @property
    def symbol_bits(self) -> torch.Tensor:
        """``[M]`` int64: ``B`` bits per index symbol (one symbol per output)."""
        return self.bits

    @property
    def total_bits(self) -> int:
        """``M B``, the payload bits per sample."""
        return int(self.bits.sum())

    def levels(self, dtype: torch.dtype = torch.float32) -> torch.Tensor:
        """``[2^B]`` quantization levels ``k / (2^B - 1)`` in the sigmoid domain."""
        return torch.arange(self.n_levels, dtype=dtype, device=self.bits.device) / (self.n_levels - 1)

    # ---- checks

    def _check_z(self, z: torch.Tensor) -> torch.Tensor:
        return check_outputs(z, self.n_outputs)

    def _check_indices(self, indices) -> torch.Tensor:
        return check_indices(indices, self.n_outputs, self.n_levels)

    # ---- quantization

    def _scaled(self, z: torch.Tensor) -> torch.Tensor:
        """``x = (2^B - 1) σ(z)`` (differentiable)."""
        return torch.sigmoid(z) * (self.n_levels - 1)

    def nearest(self, z: torch.Tensor) -> torch.Tensor:
        """``[batch, M]`` int64 level indices ``k = ⌊(2^B - 1) σ(z) + ½⌋`` (no gradient)."""
        z = self._check_z(z)
        with torch.no_grad():
            k = torch.floor(self._scaled(z.detach()) + 0.5)
            return k.clamp_(0, self.n_levels - 1).to(torch.int64)

    def forward(self, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Quantize ``z`` ``[batch, M]``.

        Returns:
            ``(z_q, indices)``: ``z_q`` ``[batch, M]`` (dtype of ``z``) equals the level
            ``k / (2^B - 1)`` exactly in the forward pass, with the gradient
            ``r'(x) σ'(z)`` of the soft-rounding surrogate; ``indices`` ``[batch, M]``
            int64 level indices ``k``.
        """
        idx = self.nearest(z)
        level = idx.to(z.dtype) / (self.n_levels - 1)
        surrogate = soft_round(self._scaled(z), self.alpha) / (self.n_levels - 1)
        # level + (s - sg(s)): the forward value is exactly the level (s - s is exactly 0).
        return level + (surrogate - surrogate.detach()), idx

    def loss(self, z: torch.Tensor, indices: torch.Tensor) -> torch.Tensor:
        """The method's extra training loss: none (a zero scalar of ``z``'s dtype and device)."""
        z = self._check_z(z)
        indices = self._check_indices(indices)
        if indices.shape != z.shape:
            raise DataError(f"indices: expected the shape of z {list(z.shape)}, got {list(indices.shape)}")
        return torch.zeros((), dtype=z.dtype, device=z.device)

    def dequantize(self, indices: torch.Tensor, dtype: torch.dtype = torch.float32) -> torch.Tensor:
        """``[batch, M]`` levels ``k / (2^B - 1)`` of ``indices`` ``[batch, M]`` (sigmoid domain)."""
        indices = self._check_indices(indices)
        return indices.to(dtype) / (self.n_levels - 1)

    # ---- bitstreams

    def compress(self, z: torch.Tensor, crc: bool = False) -> list[bytes]:
        """One byte string per sample: the ``M`` level indices, ``B`` bits each
        (:func:`~chanlab.quant.bit_packing.pack_indices`)."""
        from chanlab.quant.bit_packing import pack_indices

        return pack_indices(self.nearest(z), self.symbol_bits, crc=crc)

    def decompress(self, streams: Sequence[bytes], crc: bool = False,
                   dtype: torch.dtype = torch.float32) -> torch.Tensor:
        """``[n, M]`` levels read back from :meth:`compress` streams (equal to the forward's
        ``z_q`` for the same ``dtype``)."""
        from chanlab.quant.bit_packing import unpack_indices

        idx = unpack_indices(streams, self.symbol_bits, crc=crc).to(self.bits.device)
        return self.dequantize(idx, dtype)
