"""Size-preserving residual CNN ``R(., theta)`` of RJAPCBN (cell-free paper, Sec. IV-B).

The paper (``cellfree-robust-ap-clustering.txt``) maps the real CSI tensor ``Q x I x M`` to a
beamforming tensor ``Q x I x 2M`` with ``L`` convolution units and one identity mapping:

* **Unit ``l`` (Eq. 20).** ``V_l = AL(BN(CL(V_{l-1}, theta_l)))``: a convolution, batch
  normalisation, then an activation. The activation is ReLU in units ``1 .. L-1``.
* **Residual output (Eq. 21).** ``V_R = AL(V_L + V_IM)``. ``V_IM`` is a ``1 x 1`` convolution of
  the network input, the "identity mapping" of He et al. The last activation is tanh, because the
  output holds real and imaginary parts and must take both signs.
* **Remark 2.** The output is ``Q x I x 2M`` when (1) every unit keeps the ``Q x I`` spatial size,
  by Proposition 1 or 2, and (2) the last unit has ``2M`` kernels.

Tensor layout. PyTorch's ``[batch, channels, dim2, dim3]`` holds the paper's ``Q x I x C``
tensor as ``[batch, C, Q, I]``. The third dimension (antennas, or real/imaginary parts) is the
channel axis. The paper's "width" ``w`` is the ``Q`` axis and its "height" ``h`` is the ``I``
axis. Kernels, strides and paddings are written ``(k^w, k^h)`` = ``(along Q, along I)``.

**Output size (Eq. 22).** ``out = (in + 2p - k) / s + 1`` per axis. PyTorch floors the fraction.

* **Proposition 1.** With stride ``s = 1`` and ``p = (k - 1) / 2`` (``k`` odd, so ``p`` is an
  integer), ``out = in``.
* **Proposition 2.** With stride ``s > 1`` and ``p = (in s - in - s + k) / 2`` (an integer
  ``>= 0``), ``out = in``.

:func:`size_preserving_padding` returns that padding, or raises
:class:`~chanlab.core.errors.ConfigError` when no integer padding exists. A padding given
explicitly is checked against Eq. (22). Note that Proposition 2's padding depends on the input
size, so a strided unit is tied to one ``Q x I``.

Choices the paper leaves open, and what this module does:

* **Where the last tanh sits.** Eq. (20) gives every unit its own activation, and Eq. (21)
  applies one more after the addition. Literally, that would be tanh twice on the residual
  branch. Following He et al. (the paper's ref. [28]), the last unit here is convolution plus
  BN, and the single tanh of Eq. (21) comes after the addition.
* **Biases.** A convolution followed by BN has no bias, because BN's shift would cancel it. The
  ``1 x 1`` identity mapping has a bias and no BN. The paper shows no BN on it.
* **Widths.** The hidden units have ``channels`` kernels, default ``out_channels`` (``2M``).
  This is the ``C = 2M`` of the paper's Table II multiplication count, where every unit is
  ``C`` wide.
* **Initialisation.** PyTorch's defaults: Kaiming-uniform convolutions, and BN with unit scale
  and zero shift.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from chanlab.core.errors import ConfigError, DataError

Pair = tuple[int, int]


def _is_int(x: object) -> bool:
    return isinstance(x, int) and not isinstance(x, bool)


def _pair(value: int | Sequence[int], name: str, *, low: int) -> Pair:
    """``value`` as ``(along Q, along I)``. A single int is used for both axes."""
    if _is_int(value):
        pair = (int(value), int(value))
    elif isinstance(value, Sequence) and len(value) == 2 and all(_is_int(v) for v in value):
        pair = (int(value[0]), int(value[1]))
    else:
        raise ConfigError(f"{name}: expected an integer or a pair of integers, got {value!r}")
    if min(pair) < low:
        raise ConfigError(f"{name}: expected integers >= {low}, got {pair}")
    return pair


def _per_unit(value, name: str, n_units: int, *, low: int, allow_none: bool = False) -> list:
    """Broadcast one kernel/stride/padding spec to ``n_units`` units, or check a per-unit list."""
    if value is None and allow_none:
        return [None] * n_units
    if _is_int(value) or (isinstance(value, Sequence) and len(value) == 2
                          and all(_is_int(v) for v in value)):
        return [_pair(value, name, low=low)] * n_units
    if isinstance(value, Sequence) and not isinstance(value, (str, bytes)):
        if len(value) != n_units:
            raise ConfigError(f"{name}: expected one entry per unit ({n_units}), got {len(value)}")
        return [None if (v is None and allow_none) else _pair(v, f"{name}[{u}]", low=low)
                for u, v in enumerate(value)]
    raise ConfigError(f"{name}: expected an integer, a pair or a list of {n_units} of those, "
                      f"got {value!r}")


def conv_output_size(size: int, kernel: int, padding: int, stride: int) -> int:
    """Eq. (22) as PyTorch computes it: ``floor((size + 2 padding - kernel) / stride) + 1``."""
    return (size + 2 * padding - kernel) // stride + 1


def size_preserving_padding(size: int, kernel: int, stride: int = 1) -> int:
    """The zero padding that keeps ``size`` under a convolution (Propositions 1 and 2).

    Args:
        size: input size along the axis (``Q`` or ``I``).
        kernel: kernel size along the axis.
        stride: stride along the axis.

    Returns:
        ``(kernel - 1) / 2`` when ``stride == 1`` (Proposition 1). Otherwise
        ``(size * stride - size - stride + kernel) / 2`` (Proposition 2).

    Raises:
        ConfigError: the padding is not a non-negative integer. For ``stride == 1`` this means
            an even kernel. For ``stride > 1`` it means an odd ``size * (stride - 1) - stride +
            kernel``.
    """
    for name, v in (("size", size), ("kernel", kernel), ("stride", stride)):
        if not _is_int(v) or v < 1:
            raise ConfigError(f"{name}: expected an integer >= 1, got {v!r}")
    if stride == 1:
        twice = kernel - 1
        rule = "Proposition 1 (stride 1) needs p = (k - 1) / 2, i.e. an odd kernel"
    else:
        twice = size * stride - size - stride + kernel
        rule = (f"Proposition 2 (stride {stride} > 1) needs p = (in*s - in - s + k) / 2 to be an "
                f"integer >= 0")
    if twice < 0 or twice % 2:
        raise ConfigError(f"no zero padding keeps size {size} for kernel {kernel}, stride {stride}: "
                          f"{rule}; got 2p = {twice}")
    return twice // 2


class ConvUnit(nn.Sequential):
    """One unit of Eq. (20): convolution, BN, then an activation (``None`` for none)."""

    def __init__(self, c_in: int, c_out: int, kernel: Pair, stride: Pair, padding: Pair,
                 activation: nn.Module | None):
        layers: list[nn.Module] = [
            nn.Conv2d(c_in, c_out, kernel, stride=stride, padding=padding, bias=False),
            nn.BatchNorm2d(c_out),
        ]
        if activation is not None:
            layers.append(activation)
        super().__init__(*layers)


class ResidualCNN(nn.Module):
    """``R(., theta)``: ``[batch, in_channels, Q, I]`` to ``[batch, out_channels, Q, I]`` in ``[-1, 1]``.

    ``n_units`` units of Eq. (20) (ReLU in all but the last), plus a ``1 x 1`` convolution of
    the input (the identity mapping), with a tanh after the sum (Eq. 21). Every unit keeps the
    ``Q x I`` size (Remark 2). Its padding comes from Proposition 1 (stride 1) or
    Proposition 2 (stride > 1), or is checked against Eq. (22) when given explicitly.

    Args:
        in_channels: input channels (``M``, the antennas, for the paper's ``Q x I x M`` input).
        out_channels: output channels (``2M``: real parts, then imaginary parts).
        spatial_size: ``(Q, I)``, the spatial size every unit must keep.
        n_units: ``L``, the number of convolution units. The paper uses 5.
        channels: kernels per hidden unit (units ``1 .. L-1``). The default is
            ``out_channels``. An int, or a list of ``L - 1`` ints.
        kernel: ``(k^w, k^h)`` per unit. An int, a pair, or a list of ``L`` of those. The paper
            uses 5 x 5. A sequence of two ints is always read as one pair, so with ``L = 2``
            per-unit kernels must be given as pairs, e.g. ``[(3, 3), (5, 5)]``.
        stride: the same forms as ``kernel``. The default is 1.
        padding: the same forms as ``kernel``, with ``None`` entries derived from the
            propositions. ``None`` derives all of them.

    Raises:
        ConfigError: a unit would change the ``Q x I`` size, or an argument is malformed.
    """

    def __init__(self, in_channels: int, out_channels: int, spatial_size: Sequence[int], *,
                 n_units: int = 5, channels: int | Sequence[int] | None = None,
                 kernel: int | Sequence = 5, stride: int | Sequence = 1,
                 padding: int | Sequence | None = None):
        super().__init__()
        for name, v in (("in_channels", in_channels), ("out_channels", out_channels),
                        ("n_units", n_units)):
            if not _is_int(v) or v < 1:
                raise ConfigError(f"{name}: expected an integer >= 1, got {v!r}")
        self.spatial_size = _pair(tuple(spatial_size) if isinstance(spatial_size, Sequence)
                                  else spatial_size, "spatial_size", low=1)
        kernels = _per_unit(kernel, "kernel", n_units, low=1)
        strides = _per_unit(stride, "stride", n_units, low=1)
        paddings = _per_unit(padding, "padding", n_units, low=0, allow_none=True)
        if channels is None:
            widths = [out_channels] * (n_units - 1)
        elif _is_int(channels):
            widths = [int(channels)] * (n_units - 1)
        elif isinstance(channels, Sequence) and len(channels) == n_units - 1 \
                and all(_is_int(c) for c in channels):
            widths = [int(c) for c in channels]
        else:
            raise ConfigError(f"channels: expected an integer or a list of {n_units - 1} integers "
                              f"(one per hidden unit), got {channels!r}")
        if any(c < 1 for c in widths):
            raise ConfigError(f"channels: expected integers >= 1, got {widths}")
        widths = widths + [out_channels]  # Remark 2, condition 2: the last unit has 2M kernels

        units = []
        resolved_padding = []
        c_in = in_channels
        for u in range(n_units):
            pad = []
            for axis, size in enumerate(self.spatial_size):
                k, s, p = kernels[u][axis], strides[u][axis], paddings[u]
                if p is None:
                    try:
                        p_axis = size_preserving_padding(size, k, s)
                    except ConfigError as exc:
                        raise ConfigError(f"unit {u + 1}, axis {'QI'[axis]}: {exc}") from None
                else:
                    p_axis = p[axis]
                    out = conv_output_size(size, k, p_axis, s)
                    exact = (size + 2 * p_axis - k) % s == 0
                    if out != size or not exact:
                        raise ConfigError(
                            f"unit {u + 1}, axis {'QI'[axis]}: kernel {k}, stride {s}, padding "
                            f"{p_axis} maps size {size} to {(size + 2 * p_axis - k) / s + 1:g} "
                            f"(Eq. 22); Proposition {1 if s == 1 else 2} needs padding "
                            f"{'(k - 1) / 2' if s == 1 else '(in*s - in - s + k) / 2'}")
                pad.append(p_axis)
            resolved_padding.append(tuple(pad))
            last = u == n_units - 1
            units.append(ConvUnit(c_in, widths[u], kernels[u], strides[u], tuple(pad),
                                  None if last else nn.ReLU()))
            c_in = widths[u]
        self.units = nn.Sequential(*units)
        self.identity = nn.Conv2d(in_channels, out_channels, 1)
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.kernels = kernels
        self.strides = strides
        self.paddings = resolved_padding

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``x [batch, in_channels, Q, I]`` to ``[batch, out_channels, Q, I]``, tanh of Eq. (21)."""
        want = [self.in_channels, *self.spatial_size]
        if not isinstance(x, torch.Tensor) or x.ndim != 4 or list(x.shape[1:]) != want:
            got = list(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__
            raise DataError(f"residual CNN input: expected [batch, {want[0]}, {want[1]}, {want[2]}] "
                            f"(channels, Q, I), got {got}")
        return torch.tanh(self.units(x) + self.identity(x))


__all__ = ["ConvUnit", "ResidualCNN", "conv_output_size", "size_preserving_padding"]
