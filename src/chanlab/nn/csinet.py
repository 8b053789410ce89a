"""CSI feedback autoencoders: CsiNet, two intermediate CsiNet variants, CsiNet-Pro, TransNet.

These are the autoencoders of the bit-allocation paper (``csi-feedback-bit-allocation.txt``,
Sec. IV-A: "CSINet from [1] and CSINet-Pro from [14], and Transformer-based autoencoder from
[5]"), plus the two intermediate encoders of its Fig. 2. Every one is a pair

* ``encoder``: real CSI ``[batch, 2, n_ant, n_delay]`` → codeword ``[batch, m]`` (linear output,
  the ``z`` that the quantizer sees), and
* ``decoder``: ``[batch, m]`` → ``[batch, 2, n_ant, n_delay]`` through a sigmoid, because the
  input is CsiNet-normalized CSI in ``[0, 1]`` (real and imaginary parts shifted by 0.5).

The paper uses 32×32 angular-delay CSI and ``m ∈ {128, 256, 512}``; here ``n_ant``, ``n_delay``
and ``m ≥ 1`` are free. All conv layers are "same"-padded with stride 1, so the flattened
feature map before the dense layer has ``c_last · n_ant · n_delay`` entries (2048 for 32×32).

Architectures (``make_autoencoder`` names; parameter counts at 32×32, ``m = 512``, encoder +
decoder; the two dense layers, ``2 · (2048 · 512)`` weights, dominate all of them):

``"csinet"`` — :class:`CsiNet` (Wen, Shih, Jin 2018), 2,103,116 parameters.
    Encoder: conv 3×3 (2→2) + BN + LeakyReLU(0.3), flatten, dense → m.
    Decoder: dense m → 2·n_ant·n_delay, reshape, two RefineNet blocks (conv 3×3 2→8, 8→16,
    16→2, each with BN; LeakyReLU after the first two; identity shortcut; LeakyReLU after the
    sum), conv 3×3 (2→2), sigmoid.
``"csinet-v1"`` — :class:`CsiNetVar1` (the paper's CSINet-var1), 2,103,876 parameters.
``"csinet-v2"`` — :class:`CsiNetVar2` (the paper's CSINet-var2), 2,105,860 parameters.
    See "The two intermediate variants" below. Aliases ``"csinet-var1"``, ``"csinet-var2"``.
``"csinet-pro"`` — :class:`CsiNetPro` (the paper's [14], Liang et al. 2022, who take it from
    Zimaglia et al. 2020), 2,119,488 parameters.
    Encoder: conv 7×7 (2→16), (16→8), (8→4), (4→2), each + BN + LeakyReLU(0.3); flatten,
    dense → m. Decoder: dense, reshape, conv 7×7 (2→16), (16→8), (8→4) each + BN + LeakyReLU,
    conv 7×7 (4→2), sigmoid. The public CsiNet-Pro implementations we checked use 7×7 kernels
    in the decoder as well, so ``kernel=7`` is the default there too; both kernels are
    arguments of :class:`CsiNetPro`. That code feeds power-normalized CSI to a tanh output; we
    keep CsiNet's ``[0, 1]`` normalization and sigmoid, as the paper runs all its autoencoders
    on the same CsiNet data.
``"transnet"`` — :class:`TransNet` (Cui, Guo, Song 2022), 2,312,064 parameters (defaults).
    Tokens are the ``n_ant`` antenna rows, each a ``2·n_delay`` feature (real and imaginary
    parts over delay: 64 for 32×32). Encoder: linear embedding ``2·n_delay → d_model``
    (64 → 64), a learned positional embedding, ``n_layers = 2`` post-LN transformer encoder
    layers (``d_model = 64``, ``n_heads = 2``, ``d_ff = 256``, ReLU FFN, dropout 0),
    flatten ``n_ant·d_model`` (2048), dense → m. Decoder mirrors it: dense m → ``n_ant·d_model``,
    positional embedding, two transformer layers of the same size, linear ``d_model →
    2·n_delay``, sigmoid. The decoder layers are self-attention + FFN layers (a mirror of the
    encoder); we do not reproduce any encoder-decoder cross-attention of the original code.
    Widths are chosen small so that it trains on a CPU (d_model matches the 2·32 token size);
    all are arguments of :class:`TransNet`.

The two intermediate variants (Fig. 2). The paper's only description is: "Four autoencoders
are evaluated in Fig. 2, including CSINet, two CSINet variants (i.e., *CSINet-var1* and
*CSINet-var2*), and CSINet-Pro, with increasing encoder scales in terms of the number of hidden
convolutional layers", and "encoders with fewer trainable parameters, such as CSINet, tend to
produce outputs with more distinct dynamic ranges than those with more parameters, like
CSINet-Pro." So the axis that separates the four encoders is the number of hidden conv layers:
CsiNet has one and CsiNet-Pro four, which leaves two and three for var1 and var2. They are
"CSINet variants" and only their *encoder* scale is said to change, so they keep CsiNet's
RefineNet decoder. For the added layers we interpolate toward CsiNet-Pro: var1 and var2 are
CsiNet-Pro's encoder without its first two / first layer, i.e. 7×7 conv stacks with widths

    CsiNet (2,) 3×3 → var1 (4, 2) 7×7 → var2 (8, 4, 2) 7×7 → CsiNet-Pro (16, 8, 4, 2) 7×7,

each conv followed by BN + LeakyReLU(0.3). Every stack ends in 2 channels, so the dense layer
has the same shape in all four encoders and only the conv stack differs. The encoder
parameter count rises strictly: 1,049,130 / 1,049,890 / 1,051,874 / 1,058,978 at
``m = 512`` (conv + BN part 42 / 802 / 2,786 / 9,890). A reader who prefers other widths can build
them with :class:`CsiNetEncoder` directly.

Other choices. LeakyReLU slope 0.3 is Keras' default, which CsiNet and CsiNet-Pro used. Conv
layers keep their biases, as in those Keras models. Batch norm is the usual ``nn.BatchNorm2d``
(works on any device; in training mode it needs more than one value per channel, which a
``[batch, 2, n_ant, n_delay]`` map with ``n_ant · n_delay > 1`` always has). Initialization is
PyTorch's default.

Output head. Every decoder takes ``output="sigmoid"`` (CsiNet's head, the default) or
``output="linear"`` (the last layer's raw output). CsiNet's max scaling leaves generated CSI at a
standard deviation of about 0.02 around 0.5, so under a sigmoid the last layer must produce tiny
pre-activations and the sparse angle-delay peaks sit in its flat tails. The linear head, used by
``FeedbackAutoencoder.calibrate`` together with a standardized encoder input, predicts
standardized CSI instead. Measured on the quick 16×16 InH set, 30 epochs, M = 128, no
quantization: CsiNet reaches −9.4 dB with the sigmoid on raw inputs and −14.1 dB standardized;
TransNet stays at 0.0 dB with the sigmoid and trains with the linear head.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from chanlab.core.errors import ConfigError, DataError

LEAKY_SLOPE = 0.3
"""LeakyReLU negative slope of CsiNet and CsiNet-Pro (the Keras default)."""


# ----------------------------------------------------------------------------- validation

def _positive_int(value: object, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ConfigError(f"{name}: expected a positive integer, got {value!r}")
    return int(value)


def _odd_kernel(kernel: object) -> int:
    if isinstance(kernel, bool) or not isinstance(kernel, int) or kernel < 1 or kernel % 2 == 0:
        raise ConfigError(f"kernel: expected an odd positive size, got {kernel!r}")
    return int(kernel)


def _channels(channels: Sequence[int]) -> tuple[int, ...]:
    if isinstance(channels, (str, bytes)) or not isinstance(channels, Sequence) or not channels:
        raise ConfigError(f"channels: expected a non-empty sequence of widths, got {channels!r}")
    return tuple(_positive_int(c, "channels") for c in channels)


def _check_csi(x: torch.Tensor, n_ant: int, n_delay: int, what: str) -> None:
    if not isinstance(x, torch.Tensor) or x.ndim != 4 or tuple(x.shape[1:]) != (2, n_ant, n_delay):
        got = list(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__
        raise DataError(f"{what}: expected [batch, 2, {n_ant}, {n_delay}], got {got}")


def _check_code(z: torch.Tensor, m: int, what: str) -> None:
    if not isinstance(z, torch.Tensor) or z.ndim != 2 or z.shape[1] != m:
        got = list(z.shape) if isinstance(z, torch.Tensor) else type(z).__name__
        raise DataError(f"{what}: expected [batch, {m}], got {got}")


DECODER_OUTPUTS = ("sigmoid", "linear")
"""Decoder output heads: CsiNet's ``"sigmoid"`` (inputs in [0, 1]) or ``"linear"`` (standardized
CSI, mapped back by :class:`chanlab.csi_feedback.model.FeedbackAutoencoder`)."""


def _output_head(output: object) -> str:
    if output not in DECODER_OUTPUTS:
        raise ConfigError(f"output: expected one of {', '.join(DECODER_OUTPUTS)}, got {output!r}")
    return str(output)


def _activate(u: torch.Tensor, output: str) -> torch.Tensor:
    return torch.sigmoid(u) if output == "sigmoid" else u


def _conv_bn_act(c_in: int, c_out: int, kernel: int, act: bool = True) -> nn.Sequential:
    """conv k×k ("same", stride 1) + BN (+ LeakyReLU)."""
    layers: list[nn.Module] = [nn.Conv2d(c_in, c_out, kernel, padding=kernel // 2), nn.BatchNorm2d(c_out)]
    if act:
        layers.append(nn.LeakyReLU(LEAKY_SLOPE))
    return nn.Sequential(*layers)


# ----------------------------------------------------------------------------- CNN blocks

class CsiNetEncoder(nn.Module):
    """Conv stack + dense: ``[batch, 2, n_ant, n_delay]`` → ``[batch, m]``.

    Each width in ``channels`` is one conv ``kernel``×``kernel`` + BN + LeakyReLU(0.3); the last
    feature map ``[batch, channels[-1], n_ant, n_delay]`` is flattened (channel-major, as
    CsiNet) and mapped to ``m`` by a linear dense layer. CsiNet: ``channels=(2,), kernel=3``;
    CsiNet-Pro: ``channels=(16, 8, 4, 2), kernel=7``.
    """

    def __init__(self, m: int, n_ant: int = 32, n_delay: int = 32, channels: Sequence[int] = (2,),
                 kernel: int = 3):
        super().__init__()
        self.m = _positive_int(m, "m")
        self.n_ant = _positive_int(n_ant, "n_ant")
        self.n_delay = _positive_int(n_delay, "n_delay")
        self.channels = _channels(channels)
        self.kernel = _odd_kernel(kernel)
        widths = (2,) + self.channels
        self.convs = nn.Sequential(*(_conv_bn_act(a, b, self.kernel) for a, b in zip(widths[:-1], widths[1:])))
        self.dense = nn.Linear(self.channels[-1] * self.n_ant * self.n_delay, self.m)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        _check_csi(x, self.n_ant, self.n_delay, "encoder input")
        return self.dense(self.convs(x).flatten(1))


class RefineNetBlock(nn.Module):
    """CsiNet's RefineNet: ``[batch, 2, h, w]`` → ``[batch, 2, h, w]``.

    conv 3×3 (2→8) BN LeakyReLU, conv 3×3 (8→16) BN LeakyReLU, conv 3×3 (16→2) BN, then
    ``LeakyReLU(input + that)``.
    """

    def __init__(self, widths: Sequence[int] = (8, 16), kernel: int = 3):
        super().__init__()
        widths = _channels(widths)
        kernel = _odd_kernel(kernel)
        chain = (2,) + widths
        self.body = nn.Sequential(*(_conv_bn_act(a, b, kernel) for a, b in zip(chain[:-1], chain[1:])),
                                  _conv_bn_act(chain[-1], 2, kernel, act=False))
        self.act = nn.LeakyReLU(LEAKY_SLOPE)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(x + self.body(x))


class CsiNetDecoder(nn.Module):
    """CsiNet decoder: ``[batch, m]`` → ``[batch, 2, n_ant, n_delay]`` in ``[0, 1]``.

    dense m → 2·n_ant·n_delay (linear), reshape, ``n_refine`` :class:`RefineNetBlock`\\ s
    (8 and 16 channels, 3×3), conv 3×3 (2→2), sigmoid.
    """

    def __init__(self, m: int, n_ant: int = 32, n_delay: int = 32, n_refine: int = 2, output: str = "sigmoid"):
        super().__init__()
        self.output = _output_head(output)
        self.m = _positive_int(m, "m")
        self.n_ant = _positive_int(n_ant, "n_ant")
        self.n_delay = _positive_int(n_delay, "n_delay")
        if isinstance(n_refine, bool) or not isinstance(n_refine, int) or n_refine < 0:
            raise ConfigError(f"n_refine: expected an integer >= 0, got {n_refine!r}")
        self.dense = nn.Linear(self.m, 2 * self.n_ant * self.n_delay)
        self.refine = nn.Sequential(*(RefineNetBlock() for _ in range(n_refine)))
        self.out = nn.Conv2d(2, 2, 3, padding=1)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        _check_code(z, self.m, "decoder input")
        x = self.dense(z).view(z.shape[0], 2, self.n_ant, self.n_delay)
        return _activate(self.out(self.refine(x)), self.output)


class CsiNetProDecoder(nn.Module):
    """CsiNet-Pro decoder: ``[batch, m]`` → ``[batch, 2, n_ant, n_delay]`` in ``[0, 1]``.

    dense m → 2·n_ant·n_delay (linear), reshape, conv ``kernel``×``kernel`` to each width in
    ``channels[:-1]`` with BN + LeakyReLU, a last conv to 2 channels, sigmoid. Default
    ``channels=(16, 8, 4, 2)``, ``kernel=7``.
    """

    def __init__(self, m: int, n_ant: int = 32, n_delay: int = 32,
                 channels: Sequence[int] = (16, 8, 4, 2), kernel: int = 7, output: str = "sigmoid"):
        super().__init__()
        self.output = _output_head(output)
        self.m = _positive_int(m, "m")
        self.n_ant = _positive_int(n_ant, "n_ant")
        self.n_delay = _positive_int(n_delay, "n_delay")
        channels = _channels(channels)
        if channels[-1] != 2:
            raise ConfigError(f"channels: the last width is the output's 2 (real, imag), got {channels}")
        kernel = _odd_kernel(kernel)
        self.dense = nn.Linear(self.m, 2 * self.n_ant * self.n_delay)
        chain = (2,) + channels
        self.convs = nn.Sequential(*(_conv_bn_act(a, b, kernel) for a, b in zip(chain[:-2], chain[1:-1])))
        self.out = nn.Conv2d(chain[-2], 2, kernel, padding=kernel // 2)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        _check_code(z, self.m, "decoder input")
        x = self.dense(z).view(z.shape[0], 2, self.n_ant, self.n_delay)
        return _activate(self.out(self.convs(x)), self.output)


# ----------------------------------------------------------------------------- TransNet blocks

def _transformer(d_model: int, n_heads: int, n_layers: int, d_ff: int, dropout: float) -> nn.TransformerEncoder:
    layer = nn.TransformerEncoderLayer(d_model, n_heads, dim_feedforward=d_ff, dropout=dropout,
                                       batch_first=True)
    return nn.TransformerEncoder(layer, n_layers, enable_nested_tensor=False)


def _check_transformer_sizes(d_model: int, n_heads: int, n_layers: int, d_ff: int, dropout: float) -> None:
    for value, name in ((d_model, "d_model"), (n_heads, "n_heads"), (n_layers, "n_layers"), (d_ff, "d_ff")):
        _positive_int(value, name)
    if d_model % n_heads:
        raise ConfigError(f"d_model: must be a multiple of n_heads={n_heads}, got {d_model}")
    if not 0.0 <= float(dropout) < 1.0:
        raise ConfigError(f"dropout: expected a probability in [0, 1), got {dropout!r}")


def _transnet_sizes(m, n_ant, n_delay, d_model, n_heads, n_layers, d_ff, dropout) -> tuple[int, int, int]:
    """Validated ``(m, n_ant, n_delay)`` of a TransNet half (its transformer sizes checked too)."""
    _check_transformer_sizes(d_model, n_heads, n_layers, d_ff, dropout)
    return _positive_int(m, "m"), _positive_int(n_ant, "n_ant"), _positive_int(n_delay, "n_delay")


class TransNetEncoder(nn.Module):
    """``[batch, 2, n_ant, n_delay]`` → ``[batch, m]`` with ``n_ant`` tokens of ``2·n_delay`` features.

    Token ``a`` is antenna row ``a``: ``[Re x[a, :], Im x[a, :]]``. Linear embedding to
    ``d_model``, plus a learned positional embedding ``[n_ant, d_model]``, ``n_layers``
    transformer encoder layers, flatten to ``n_ant·d_model``, dense → ``m``.
    """

    def __init__(self, m: int, n_ant: int = 32, n_delay: int = 32, d_model: int = 64, n_heads: int = 2,
                 n_layers: int = 2, d_ff: int = 256, dropout: float = 0.0):
        super().__init__()
        self.m, self.n_ant, self.n_delay = _transnet_sizes(m, n_ant, n_delay, d_model, n_heads, n_layers, d_ff, dropout)
        self.embed = nn.Linear(2 * self.n_delay, d_model)
        self.pos = nn.Parameter(torch.zeros(self.n_ant, d_model))
        nn.init.normal_(self.pos, std=0.02)
        self.body = _transformer(d_model, n_heads, n_layers, d_ff, dropout)
        self.dense = nn.Linear(self.n_ant * d_model, self.m)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        _check_csi(x, self.n_ant, self.n_delay, "encoder input")
        tokens = x.permute(0, 2, 1, 3).reshape(x.shape[0], self.n_ant, 2 * self.n_delay)
        h = self.body(self.embed(tokens) + self.pos)
        return self.dense(h.flatten(1))


class TransNetDecoder(nn.Module):
    """``[batch, m]`` → ``[batch, 2, n_ant, n_delay]`` in ``[0, 1]``; mirrors :class:`TransNetEncoder`.

    dense m → ``n_ant·d_model``, reshape to ``n_ant`` tokens, add a learned positional
    embedding, ``n_layers`` transformer layers (self-attention + FFN), linear ``d_model →
    2·n_delay`` per token, back to ``[batch, 2, n_ant, n_delay]``, sigmoid.
    """

    def __init__(self, m: int, n_ant: int = 32, n_delay: int = 32, d_model: int = 64, n_heads: int = 2,
                 n_layers: int = 2, d_ff: int = 256, dropout: float = 0.0, output: str = "sigmoid"):
        super().__init__()
        self.m, self.n_ant, self.n_delay = _transnet_sizes(m, n_ant, n_delay, d_model, n_heads, n_layers, d_ff, dropout)
        self.output = _output_head(output)
        self.d_model = d_model
        self.dense = nn.Linear(self.m, self.n_ant * d_model)
        self.pos = nn.Parameter(torch.zeros(self.n_ant, d_model))
        nn.init.normal_(self.pos, std=0.02)
        self.body = _transformer(d_model, n_heads, n_layers, d_ff, dropout)
        self.unembed = nn.Linear(d_model, 2 * self.n_delay)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        _check_code(z, self.m, "decoder input")
        h = self.dense(z).view(z.shape[0], self.n_ant, self.d_model) + self.pos
        out = self.unembed(self.body(h))                      # [batch, n_ant, 2·n_delay]
        out = out.view(z.shape[0], self.n_ant, 2, self.n_delay).permute(0, 2, 1, 3)
        return _activate(out.contiguous(), self.output)


# ----------------------------------------------------------------------------- autoencoders

class CsiAutoencoder(nn.Module):
    """An ``encoder`` / ``decoder`` pair; ``forward(x) = decoder(encoder(x))``.

    Shapes: ``x [batch, 2, n_ant, n_delay]`` → ``encode`` ``[batch, m]`` → ``decode``
    ``[batch, 2, n_ant, n_delay]`` in ``[0, 1]``.
    """

    name = ""

    def __init__(self, encoder: nn.Module, decoder: nn.Module):
        super().__init__()
        self.encoder = encoder
        self.decoder = decoder

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        return self.encoder(x)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        return self.decoder(z)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.decoder(self.encoder(x))


class CsiNet(CsiAutoencoder):
    """CsiNet (Wen et al. 2018): 3×3 conv encoder + dense; dense + 2 RefineNets decoder."""

    name = "csinet"

    def __init__(self, m: int, n_ant: int = 32, n_delay: int = 32, output: str = "sigmoid"):
        super().__init__(CsiNetEncoder(m, n_ant, n_delay, channels=(2,), kernel=3),
                         CsiNetDecoder(m, n_ant, n_delay, output=output))


class CsiNetVar1(CsiAutoencoder):
    """CSINet-var1 of Fig. 2: two hidden 7×7 conv layers (4, 2) in the encoder; CsiNet decoder."""

    name = "csinet-v1"

    def __init__(self, m: int, n_ant: int = 32, n_delay: int = 32, output: str = "sigmoid"):
        super().__init__(CsiNetEncoder(m, n_ant, n_delay, channels=(4, 2), kernel=7),
                         CsiNetDecoder(m, n_ant, n_delay, output=output))


class CsiNetVar2(CsiAutoencoder):
    """CSINet-var2 of Fig. 2: three hidden 7×7 conv layers (8, 4, 2) in the encoder; CsiNet decoder."""

    name = "csinet-v2"

    def __init__(self, m: int, n_ant: int = 32, n_delay: int = 32, output: str = "sigmoid"):
        super().__init__(CsiNetEncoder(m, n_ant, n_delay, channels=(8, 4, 2), kernel=7),
                         CsiNetDecoder(m, n_ant, n_delay, output=output))


class CsiNetPro(CsiAutoencoder):
    """CsiNet-Pro: four 7×7 conv layers (16, 8, 4, 2) + dense; dense + four 7×7 convs decoder."""

    name = "csinet-pro"

    def __init__(self, m: int, n_ant: int = 32, n_delay: int = 32, encoder_kernel: int = 7,
                 decoder_kernel: int = 7, output: str = "sigmoid"):
        super().__init__(CsiNetEncoder(m, n_ant, n_delay, channels=(16, 8, 4, 2), kernel=encoder_kernel),
                         CsiNetProDecoder(m, n_ant, n_delay, channels=(16, 8, 4, 2), kernel=decoder_kernel,
                                          output=output))


class TransNet(CsiAutoencoder):
    """TransNet (Cui et al. 2022), small by default: d_model 64, 2 heads, 2 layers, d_ff 256."""

    name = "transnet"

    def __init__(self, m: int, n_ant: int = 32, n_delay: int = 32, d_model: int = 64, n_heads: int = 2,
                 n_layers: int = 2, d_ff: int = 256, dropout: float = 0.0, output: str = "sigmoid"):
        sizes = dict(d_model=d_model, n_heads=n_heads, n_layers=n_layers, d_ff=d_ff, dropout=dropout)
        super().__init__(TransNetEncoder(m, n_ant, n_delay, **sizes),
                         TransNetDecoder(m, n_ant, n_delay, **sizes, output=output))


AUTOENCODERS: dict[str, type[CsiAutoencoder]] = {
    cls.name: cls for cls in (CsiNet, CsiNetVar1, CsiNetVar2, CsiNetPro, TransNet)
}
AUTOENCODER_NAMES: tuple[str, ...] = tuple(AUTOENCODERS)
"""``("csinet", "csinet-v1", "csinet-v2", "csinet-pro", "transnet")``, in increasing encoder
conv depth for the four CNNs (Fig. 2's order), then TransNet."""

_ALIASES = {"csinet-var1": "csinet-v1", "csinet-var2": "csinet-v2"}


def make_autoencoder(name: str, m: int, n_ant: int = 32, n_delay: int = 32,
                     output: str = "sigmoid") -> tuple[nn.Module, nn.Module]:
    """``(encoder, decoder)`` of architecture ``name`` with codeword size ``m``.

    ``name`` is one of ``"csinet"``, ``"csinet-v1"`` (alias ``"csinet-var1"``), ``"csinet-v2"``
    (alias ``"csinet-var2"``), ``"csinet-pro"``, ``"transnet"`` (case and ``_``/``-`` are
    ignored). Encoder: ``[batch, 2, n_ant, n_delay] → [batch, m]``; decoder: ``[batch, m] →
    [batch, 2, n_ant, n_delay]`` in ``[0, 1]`` (``output="sigmoid"``, CsiNet's head) or in
    standardized units (``output="linear"``; see :class:`chanlab.csi_feedback.model.FeedbackAutoencoder`).
    Raises :class:`ConfigError` for an unknown name, a non-positive size or an unknown head.
    """
    key = name.strip().lower().replace("_", "-") if isinstance(name, str) else None
    key = _ALIASES.get(key, key)
    if key not in AUTOENCODERS:
        raise ConfigError(f"autoencoder: expected one of {', '.join(AUTOENCODER_NAMES)}, got {name!r}")
    model = AUTOENCODERS[key](m, n_ant, n_delay, output=_output_head(output))
    return model.encoder, model.decoder
