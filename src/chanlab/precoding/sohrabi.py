"""The DL transceiver of Sohrabi, Attiah and Yu, the "DL Method in [6]" baseline of the paper.

Reference: F. Sohrabi, K. M. Attiah, W. Yu, "Deep learning for distributed channel feedback and
multiuser precoding in FDD massive MIMO", IEEE TWC 20(7), 2021; ref. [6] of
``fdd-scalable-precoding-rvq-egat.txt`` (baselines in its Sec. VI-B). End to end, it learns the
pilots, one feedback encoder *per user* and a fully connected precoding network at the BS. Its
fixed sizes (``K`` encoders; a BS input of ``K·B`` bits and an output of ``2MK`` numbers) are
what the paper's scalable design removes.

Model (paper Sec. II, Eqs. 1, 7, 8; conventions of :mod:`chanlab.metrics.rates`)::

    pilots      X = [x_1 .. x_L] ∈ C^{M x L},    x_l = sqrt(P) x̃_l / ‖x̃_l‖   (‖x_l‖² = P)
    reception   y_k = X^H h_k + n_k,             n_k ~ CN(0, σ² I_L)          (Eq. 1)
    user k      u_k = F_k([Re y_k; Im y_k]) ∈ R^B,   b_k = sign(u_k) ∈ {±1}^B
    BS          W = scale_P(G([b_1; ...; b_K])) ∈ C^{M x K},   ‖W‖_F² = P
    rate        R = Σ_k log2(1 + |h_k^H w_k|² / (Σ_{j≠k} |h_k^H w_j|² + σ²))  (Eqs. 7, 8)

The loss is ``-E[R]`` (:meth:`SohrabiTransceiver.loss`). The same ``P`` is the per-pilot power
and the downlink power budget, and the same ``σ²`` is the noise in both phases, as in the
paper, where ``SNR = 10 log10(P / σ²)``.

Choices (following the authors' public code where the paper is silent):

* **Pilots** are learned as real and imaginary parameters ``x̃`` ``[M, L]``. Each column is
  renormalized to ``‖x_l‖² = P`` at every use. They are initialized, like the authors' code, at
  ``L`` DFT columns spread over the spectrum (indices ``floor(l M / L)``, distinct for ``L <= M``),
  or at a seeded complex Gaussian when ``L > M``.
* **User encoders** ``F_k`` are ``K`` separate FCNs: ``BN(input) → [Linear → ReLU → BN] per
  hidden width → Linear(B)``. This is the authors' layer order (BatchNorm after the ReLU, and a
  BatchNorm on the raw input, which also removes the scale of ``y``). They are not shared: that
  is the point of this baseline. They run batched, with weights ``[K, in, out]`` applied by one
  ``einsum``. The per-user BatchNorm is one ``BatchNorm1d(K·features)`` over the flattened
  ``[batch, K·features]`` activations, so each user keeps its own statistics.
* **Binarization**: the forward pass is ``sign(u)`` with ``sign(0) = +1``, so bits are exactly
  ±1. The backward pass is the straight-through estimator of ``tanh(α u)``: the gradient is
  ``α (1 - tanh²(α u))``. This is what the authors' code does. Their paper describes a sigmoid
  with an annealed slope; ``2σ(2αu) - 1 = tanh(αu)``, so the two are the same. The slope ``α``
  is :attr:`SohrabiTransceiver.slope` (default 1). A training loop may anneal it, as the authors
  do (×1.001 whenever validation stalls); it is saved in the ``state_dict``.
* **BS network** ``G``: ``[Linear → ReLU → BN] per bs_hidden width → Linear(2MK)``, with no
  BatchNorm on its ±1 input. The output is read as ``[Re W; Im W]``, each user-major
  ``[K, M]``. It is scaled to ``‖W‖_F² = P`` by
  :func:`chanlab.classical.linear_precoding.scale_to_power`.
* **Initialization**: Glorot-uniform weights (the Keras default the authors used), zero biases.
  A private generator seeded with ``seed`` draws them, so building a model never touches the
  global RNG.
* BatchNorm in training mode needs ``batch >= 2``. Evaluate with ``model.eval()``.

Real bitstreams: :meth:`SohrabiTransceiver.compress_feedback` packs each user's ``B`` bits,
written as ``B`` one-bit indices (bit ``1`` for ``+1``), with
:func:`chanlab.quant.bit_packing.pack_indices`. Each stream has
:attr:`SohrabiTransceiver.feedback_stream_bits` bits: ``B``, padded to whole bytes.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import nn

from chanlab.classical.channel_estimation import receive_pilots
from chanlab.classical.linear_precoding import scale_to_power
from chanlab.core.errors import BitstreamError, ConfigError, DataError
from chanlab.core.validation import check_complex, check_int_range, check_ndim
from chanlab.metrics.rates import sum_rate
from chanlab.quant.bit_packing import pack_indices, stream_bits, unpack_indices


def binarize_ste(u: torch.Tensor, slope: float | torch.Tensor = 1.0) -> torch.Tensor:
    """``sign(u)`` in the forward pass (exactly ±1, ``sign(0) = +1``), ``d tanh(slope·u)/du`` backward.

    Written as ``hard + (soft - soft.detach())``, so the forward value is ``hard`` exactly: the
    added term is exactly zero.
    """
    soft = torch.tanh(slope * u)
    hard = torch.where(u >= 0, torch.ones_like(u), -torch.ones_like(u))
    return hard + (soft - soft.detach())


class _GroupedLinear(nn.Module):
    """``G`` independent affine maps applied at once: ``[batch, G, in] → [batch, G, out]``."""

    def __init__(self, groups: int, fan_in: int, fan_out: int, generator: torch.Generator):
        super().__init__()
        bound = math.sqrt(6.0 / (fan_in + fan_out))                  # Glorot uniform
        weight = (2.0 * torch.rand(groups, fan_in, fan_out, generator=generator) - 1.0) * bound
        self.weight = nn.Parameter(weight)
        self.bias = nn.Parameter(torch.zeros(groups, fan_out))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.einsum("bgi,gio->bgo", x, self.weight) + self.bias


class _GroupedFCN(nn.Module):
    """``G`` separate FCNs: ``[BN →] ([Linear → ReLU → BN] per hidden width) → Linear``.

    Shapes: ``[batch, G, fan_in] → [batch, G, fan_out]``. Each group has its own weights and
    its own BatchNorm statistics (one ``BatchNorm1d(G·width)`` over the flattened features).
    """

    def __init__(self, groups: int, fan_in: int, hidden: Sequence[int], fan_out: int,
                 generator: torch.Generator, input_norm: bool):
        super().__init__()
        widths = [fan_in, *hidden, fan_out]
        self.input_norm = nn.BatchNorm1d(groups * fan_in) if input_norm else None
        self.layers = nn.ModuleList(_GroupedLinear(groups, a, b, generator) for a, b in zip(widths[:-1], widths[1:]))
        self.norms = nn.ModuleList(nn.BatchNorm1d(groups * w) for w in hidden)

    @staticmethod
    def _norm(norm: nn.BatchNorm1d, x: torch.Tensor) -> torch.Tensor:
        b, g, f = x.shape
        return norm(x.reshape(b, g * f)).reshape(b, g, f)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.input_norm is not None:
            x = self._norm(self.input_norm, x)
        for layer, norm in zip(self.layers[:-1], self.norms):
            x = self._norm(norm, torch.relu(layer(x)))
        return self.layers[-1](x)


def _check_widths(widths, name: str) -> tuple[int, ...]:
    if isinstance(widths, (str, bytes)) or not isinstance(widths, Sequence):
        raise ConfigError(f"{name}: expected a sequence of positive integers, got {widths!r}")
    for w in widths:
        check_int_range(w, f"{name} entry", 1, error=ConfigError)
    return tuple(int(w) for w in widths)


def _check_power(power) -> float:
    if isinstance(power, bool) or not isinstance(power, (int, float)) or not math.isfinite(power) or power <= 0:
        raise DataError(f"power: expected a finite number > 0, got {power!r}")
    return float(power)


class SohrabiTransceiver(nn.Module):
    """Learned pilots, ``K`` user-specific binary feedback encoders and an FCN precoder at the BS.

    Args:
        n_ant: ``M``, BS antennas.
        n_users: ``K``. Fixed: the model has one encoder per user and a ``K``-sized BS network.
        n_pilots: ``L``, pilot length.
        bits_per_user: ``B``, feedback bits of each user.
        hidden: hidden widths of each user encoder (paper of Sohrabi et al.: 1024, 512, 256).
        bs_hidden: hidden widths of the BS network (1024, 512, 512).
        seed: seed of the private generator that draws the initial pilots and weights.

    Shapes: ``h`` ``[batch, K, M]`` complex → ``W`` ``[batch, M, K]`` complex (column ``k``
    serves user ``k``). Parameters are float32 by default (complex64 outputs). ``.double()``
    gives complex128, and inputs are cast to the model's dtype.
    """

    def __init__(self, n_ant: int, n_users: int, n_pilots: int, bits_per_user: int, *,
                 hidden: Sequence[int] = (1024, 512, 256), bs_hidden: Sequence[int] = (1024, 512, 512),
                 seed: int = 0):
        super().__init__()
        check_int_range(n_ant, "n_ant", 1, error=ConfigError)
        check_int_range(n_users, "n_users", 1, error=ConfigError)
        check_int_range(n_pilots, "n_pilots", 1, error=ConfigError)
        check_int_range(bits_per_user, "bits_per_user", 1, error=ConfigError)
        check_int_range(seed, "seed", 0, error=ConfigError)
        self.n_ant, self.n_users, self.n_pilots = int(n_ant), int(n_users), int(n_pilots)
        self.bits_per_user = int(bits_per_user)
        hidden = _check_widths(hidden, "hidden")
        bs_hidden = _check_widths(bs_hidden, "bs_hidden")
        gen = torch.Generator().manual_seed(int(seed))
        m, k, l, b = self.n_ant, self.n_users, self.n_pilots, self.bits_per_user
        if l <= m:
            rows = torch.arange(m, dtype=torch.int64)[:, None]
            cols = (torch.arange(l, dtype=torch.int64) * m) // l          # spread over the spectrum
            phase = (-2.0 * math.pi / m) * torch.remainder(rows * cols[None, :], m).to(torch.float64)
            x0 = torch.polar(torch.ones_like(phase), phase)
        else:
            x0 = torch.randn(m, l, dtype=torch.complex128, generator=gen)
        self.pilot_real = nn.Parameter(x0.real.float())
        self.pilot_imag = nn.Parameter(x0.imag.float())
        self.encoders = _GroupedFCN(k, 2 * l, hidden, b, gen, input_norm=True)
        self.bs = _GroupedFCN(1, k * b, bs_hidden, 2 * m * k, gen, input_norm=False)
        self.register_buffer("_slope", torch.tensor(1.0))

    # ------------------------------------------------------------------ properties

    @property
    def feedback_bits(self) -> int:
        """``B``: payload bits each user feeds back."""
        return self.bits_per_user

    @property
    def feedback_stream_bits(self) -> int:
        """Real length in bits of one user's feedback stream (``B`` padded to whole bytes)."""
        return stream_bits([1] * self.bits_per_user)

    @property
    def slope(self) -> float:
        """Slope ``α`` of the ``tanh`` whose gradient the binarization passes straight through."""
        return float(self._slope)

    @slope.setter
    def slope(self, value: float) -> None:
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value <= 0:
            raise ConfigError(f"slope: expected a finite number > 0, got {value!r}")
        self._slope.fill_(float(value))

    @property
    def _real_dtype(self) -> torch.dtype:
        return self.pilot_real.dtype

    @property
    def _complex_dtype(self) -> torch.dtype:
        return torch.complex128 if self._real_dtype == torch.float64 else torch.complex64

    # ------------------------------------------------------------------ checks

    def _check_multiuser(self, x, name: str, last: int, layout: str) -> torch.Tensor:
        if not isinstance(x, torch.Tensor):
            raise DataError(f"{name}: expected a torch.Tensor, got {type(x).__name__}")
        check_ndim(x, 3, name, layout)
        check_complex(x, name)
        if int(x.shape[1]) != self.n_users or int(x.shape[2]) != last:
            raise DataError(f"{name}: expected shape [batch, K={self.n_users}, {last}] {layout}, "
                            f"got {list(x.shape)}")
        if x.device != self.pilot_real.device:
            raise DataError(f"{name}: expected a tensor on the model's device {self.pilot_real.device}, "
                            f"got {x.device}")
        if self.training and x.shape[0] < 2:
            raise DataError(f"{name}: BatchNorm in training mode needs batch >= 2, got {int(x.shape[0])} "
                            f"(call .eval() for single samples)")
        return x.to(self._complex_dtype)

    # ------------------------------------------------------------------ stages

    def pilots(self, power: float = 1.0) -> torch.Tensor:
        """The pilot matrix ``X`` ``[M, L]`` complex, each column with ``‖x_l‖² = power``."""
        power = _check_power(power)
        x = torch.complex(self.pilot_real, self.pilot_imag)
        norm = x.abs().square().sum(0, keepdim=True).clamp_min(torch.finfo(self._real_dtype).tiny).sqrt()
        return x * (math.sqrt(power) / norm)

    def receive(self, h: torch.Tensor, noise_power: float | torch.Tensor, power: float = 1.0, *,
                generator: torch.Generator | None = None, check: bool = True) -> torch.Tensor:
        """Received pilots ``y_k = X^H h_k + n_k`` ``[batch, K, L]`` (Eq. 1), ``n_k ~ CN(0, σ² I)``."""
        h = self._check_multiuser(h, "h", self.n_ant, "[batch, K, M]")
        return receive_pilots(h, self.pilots(power), noise_power, generator=generator, check=check)

    def encode(self, y: torch.Tensor) -> torch.Tensor:
        """Pre-binarization encoder outputs ``u_k = F_k([Re y_k; Im y_k])``: ``[batch, K, B]`` real."""
        y = self._check_multiuser(y, "y", self.n_pilots, "[batch, K, L]")
        return self.encoders(torch.cat([y.real, y.imag], dim=-1))

    def feedback(self, y: torch.Tensor) -> torch.Tensor:
        """The fed-back bits ``b_k = sign(u_k)``: ``[batch, K, B]``, exactly ±1 (STE gradients)."""
        return binarize_ste(self.encode(y), self._slope)

    def precode(self, bits: torch.Tensor, power: float = 1.0) -> torch.Tensor:
        """BS network: ``[batch, K, B]`` ±1 bits → ``W`` ``[batch, M, K]`` with ``‖W‖_F² = power``."""
        power = _check_power(power)
        if not isinstance(bits, torch.Tensor):
            raise DataError(f"bits: expected a torch.Tensor, got {type(bits).__name__}")
        if list(bits.shape[1:]) != [self.n_users, self.bits_per_user] or bits.ndim != 3:
            raise DataError(f"bits: expected shape [batch, K={self.n_users}, B={self.bits_per_user}], "
                            f"got {list(bits.shape)}")
        if bits.is_complex():
            raise DataError(f"bits: expected a real tensor of ±1, got dtype {bits.dtype}")
        if self.training and bits.shape[0] < 2:
            raise DataError(f"bits: BatchNorm in training mode needs batch >= 2, got {int(bits.shape[0])}")
        batch = int(bits.shape[0])
        m, k = self.n_ant, self.n_users
        out = self.bs(bits.to(self._real_dtype).reshape(batch, 1, k * self.bits_per_user)).reshape(batch, 2, k, m)
        w = torch.complex(out[:, 0], out[:, 1]).transpose(1, 2)        # [batch, M, K]
        return scale_to_power(w, power)

    def forward(self, h: torch.Tensor, noise_power: float | torch.Tensor, power: float = 1.0, *,
                generator: torch.Generator | None = None, check: bool = True) -> torch.Tensor:
        """Pilots, noisy reception, user encoders, binarization, BS network.

        Args:
            h: ``[batch, K, M]`` complex channels.
            noise_power: ``σ²`` of the pilot-phase noise (a float, or a real tensor broadcastable
                to ``[batch, K]``).
            power: ``P``, the per-pilot power and the precoder's total power.
            generator: optional ``torch.Generator`` (on ``h``'s device) for the pilot noise.
            check: run the finiteness checks (they sync the device).

        Returns:
            ``W``, ``[batch, M, K]`` complex with ``‖W_b‖_F² = P``.
        """
        y = self.receive(h, noise_power, power, generator=generator, check=check)
        return self.precode(self.feedback(y), power)

    @staticmethod
    def loss(h: torch.Tensor, w: torch.Tensor, noise_power: float | torch.Tensor, *,
             check: bool = False) -> torch.Tensor:
        """Training loss: ``-mean_b Σ_k R_k`` (Eq. 8), a real scalar, differentiable in ``w``."""
        return -sum_rate(h, w, noise_power, conj=True, check=check).mean()

    # ------------------------------------------------------------------ real bitstreams

    @torch.no_grad()
    def compress_feedback(self, y: torch.Tensor) -> list[list[bytes]]:
        """Each user's feedback as bytes: ``streams[b][k]`` holds user ``k``'s ``B`` bits of sample ``b``.

        Bit ``+1`` is written as 1 and ``-1`` as 0, MSB first, padded with zeros to whole bytes
        (:func:`chanlab.quant.bit_packing.pack_indices` with ``B`` one-bit indices). Use the
        model in ``eval()`` mode, so that the bits do not depend on the batch.
        """
        bits = self.feedback(y)
        batch, k, b = (int(s) for s in bits.shape)
        flat = pack_indices((bits > 0).to(torch.int64).reshape(batch * k, b).cpu(), [1] * b)
        return [flat[i * k:(i + 1) * k] for i in range(batch)]

    def decompress_feedback(self, streams: Sequence[Sequence[bytes]]) -> torch.Tensor:
        """Inverse of :meth:`compress_feedback`: ``[batch, K, B]`` ±1 bits on the model's device.

        Raises:
            BitstreamError: not one list of ``K`` streams per sample, or a stream of the wrong
                length or with nonzero padding.
        """
        k, b = self.n_users, self.bits_per_user
        if isinstance(streams, (bytes, bytearray)) or not isinstance(streams, Sequence):
            raise BitstreamError("streams: expected one list of K byte strings per sample")
        for i, sample in enumerate(streams):
            if isinstance(sample, (bytes, bytearray)) or not isinstance(sample, Sequence) or len(sample) != k:
                raise BitstreamError(f"streams[{i}]: expected a list of K={k} byte strings (one per user), "
                                     f"got {type(sample).__name__}"
                                     f"{f' of length {len(sample)}' if isinstance(sample, Sequence) else ''}")
        flat = [s for sample in streams for s in sample]
        idx = unpack_indices(flat, [1] * b)                               # [batch*K, B] in {0, 1}
        bits = (2 * idx - 1).to(device=self.pilot_real.device, dtype=self._real_dtype)
        return bits.reshape(len(streams), k, b)


__all__ = ["SohrabiTransceiver", "binarize_ste"]
