"""Fine-tuning a backbone codec to a new environment (fine-tuning paper, Sec. III, Algorithms 1–4).

A backbone :class:`~chanlab.adaptive_compression.codec.CsiCodec` (encoder φ_0; decoder and
prior θ_0, both held by the receiver) is adapted on a few CSI matrices ``H_T`` of the new
environment and then used on later ones ``H_E``. The schemes:

``no-ft``
    The backbone unchanged.
``encoder-only`` (Algorithms 1–2)
    Only φ is trained; θ_0 stays, so nothing but the latents is sent.
``full-uniform``, ``full-gaussian`` (Algorithms 3–4)
    φ and θ are trained with the decoder side seen through the update quantizer,
    ``θ̄ = θ_0 + Q_t(θ − θ_0)`` with straight-through gradients (quantization-aware). The
    levels of ``δ̄ = Q_t(θ* − θ_0)`` are range-coded under the uniform or the truncated
    Gaussian prior (:mod:`chanlab.quant.model_updates`), and the receiver decodes with θ̄.
    The latents are coded under the fine-tuned prior p_θ̄.
``full-unaware``
    The Fig. 10 ablation: φ and θ trained without the quantizer, then quantized and coded
    like ``full-uniform``.
``genie``
    φ and θ trained without the quantizer; the receiver is assumed to know θ* for free
    (the scheme of ref. [29]; its update cost is ignored, so it bounds the others).
``translation``
    Ref. [30]: a convolutional translation module before the frozen encoder and a
    retranslation module after the frozen decoder, trained on ``H_T``; their cost is
    ignored (a lower bound on its rate, as in the paper). [30]'s sparsity-aligning function
    (a brute-force search over the angular-delay support) is not implemented; each module
    is a residual two-layer convolution (3×3, 16 channels) that starts as the identity.

All training minimizes the RD loss of eq. (9) at the backbone's λ with Adam (the paper:
lr 5e-4; 800 epochs at 64×64, 300 at 512×256) and keeps the last epoch (``H_T`` is all the
data there is). The rate of a scheme on ``H_E`` is the real range-coded latent bits per CSI
plus, where it counts, the update stream's bits divided by ``|H_E|``.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass

import torch
from torch import nn

from chanlab.adaptive_compression.codec import CsiCodec
from chanlab.adaptive_compression.training import train_rd
from chanlab.core.errors import ConfigError
from chanlab.quant.model_updates import UpdatePrior, UpdateQuantizer, encode_updates, make_prior

SCHEMES = ("no-ft", "encoder-only", "full-uniform", "full-gaussian", "full-unaware", "genie", "translation")
#: Schemes whose update bits count toward the rate.
CODED_SCHEMES = ("full-uniform", "full-gaussian", "full-unaware")


@dataclass(frozen=True)
class FineTuning:
    """Fine-tuning settings (the paper's for 64×64: t = 5e-4, N = 50, σ = 0.01, lr 5e-4, 800 epochs)."""

    epochs: int = 800
    batch_size: int = 32
    lr: float = 5e-4
    step: float = 5e-4
    n_bins: int = 50
    mu: float = 0.0
    sigma: float = 0.01

    def __post_init__(self):
        for name in ("epochs", "batch_size"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                raise ConfigError(f"{name}: expected an integer >= 1, got {v!r}")
        if not self.lr > 0:
            raise ConfigError(f"lr: expected a positive learning rate, got {self.lr}")

    @property
    def quantizer(self) -> UpdateQuantizer:
        return UpdateQuantizer(step=self.step, n_bins=self.n_bins)

    def prior(self, name: str) -> UpdatePrior:
        return make_prior(name, self.quantizer, mu=self.mu, sigma=self.sigma)


# ----- the receiver-side parameters θ ---------------------------------------------------------

def decoder_side_vector(model: nn.Module) -> torch.Tensor:
    """θ flattened (decoder then prior parameters, in :meth:`RDCompressor.decoder_side_parameters` order)."""
    return torch.cat([p.detach().reshape(-1) for _, p in model.decoder_side_parameters()])


def apply_update(model: nn.Module, theta_0: torch.Tensor, levels: torch.Tensor, quantizer: UpdateQuantizer) -> None:
    """Set θ = θ_0 + levels · t in place (float32, the computation the receiver repeats exactly)."""
    theta = theta_0.float().cpu() + quantizer.dequantize(levels.cpu(), torch.float32)
    offset = 0
    with torch.no_grad():
        for _, p in model.decoder_side_parameters():
            n = p.numel()
            p.copy_(theta[offset:offset + n].view_as(p).to(p.device))
            offset += n


# ----- translation modules (ref. [30]) --------------------------------------------------------

class Translation(nn.Module):
    """``x + conv(relu(conv(x)))`` on real CSI ``[batch, 2, n_ant, n_sc]``; the identity at start."""

    def __init__(self, hidden: int = 16, kernel: int = 3):
        super().__init__()
        self.inner = nn.Conv2d(2, hidden, kernel, padding=kernel // 2)
        self.outer = nn.Conv2d(hidden, 2, kernel, padding=kernel // 2)
        nn.init.zeros_(self.outer.weight)
        nn.init.zeros_(self.outer.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.outer(torch.relu(self.inner(x)))


# ----- schemes --------------------------------------------------------------------------------

@dataclass
class Adapted:
    """A fine-tuned codec as the receiver will use it, with what was sent to get there.

    Attributes:
        scheme: one of :data:`SCHEMES`.
        codec: the adapted codec (for coded schemes, with the quantized θ̄ the receiver builds).
        levels: the update levels ``δ̄ / t`` (int64 ``[n_theta]``), or ``None``.
        update_stream: the range-coded levels, or ``None``.
        update_counts: whether the update's bits count toward the rate.
        trainable: parameters trained by the scheme.
        prior: the update prior (coded schemes).
    """

    scheme: str
    codec: CsiCodec
    levels: torch.Tensor | None = None
    update_stream: bytes | None = None
    update_counts: bool = False
    trainable: int = 0
    prior: UpdatePrior | None = None

    @property
    def update_bits(self) -> int:
        return 0 if self.update_stream is None else 8 * len(self.update_stream)


def copy_codec(codec: CsiCodec) -> CsiCodec:
    out = copy.copy(codec)
    out.model = copy.deepcopy(codec.model)
    return out


def _count(params) -> int:
    return int(sum(p.numel() for p in params))


def fine_tune(codec: CsiCodec, h_t, scheme: str, cfg: FineTuning, *, seed: int = 0, desc: str | None = None) -> Adapted:
    """Adapt ``codec`` on ``h_t [N, n_ant, n_sc]`` with ``scheme``; ``codec`` itself is not changed.

    Args:
        codec: the fitted backbone (its λ is the fine-tuning λ).
        h_t: the fine-tuning CSI ``H_T`` (complex).
        scheme: one of :data:`SCHEMES`.
        cfg: epochs, learning rate and the update quantizer/prior settings.
        seed: seeds the batch order and the latent noise.

    Returns:
        The :class:`Adapted` codec, for :func:`evaluate_adapted`.
    """
    if scheme not in SCHEMES:
        raise ConfigError(f"scheme: expected one of {', '.join(SCHEMES)}, got {scheme!r}")
    x = codec.to_input(h_t)
    out = copy_codec(codec)
    model = out.model
    desc = desc or scheme
    common = dict(epochs=cfg.epochs, batch_size=cfg.batch_size, lr=cfg.lr, seed=seed, desc=desc)
    torch.manual_seed(seed)
    if scheme == "no-ft":
        return Adapted(scheme, out)
    if scheme == "encoder-only":
        params = list(model.encoder.parameters())
        train_rd(model, x, None, codec.lam, parameters=params, **common)
        return Adapted(scheme, _eval(out), trainable=_count(params))
    if scheme == "translation":
        front, back = Translation().to(out.device), Translation().to(out.device)
        model.encoder = nn.Sequential(front, model.encoder)
        model.decoder = nn.Sequential(model.decoder, back)
        params = list(front.parameters()) + list(back.parameters())
        train_rd(model, x, None, codec.lam, parameters=params, **common)
        return Adapted(scheme, _eval(out), trainable=_count(params))

    quantizer = cfg.quantizer
    named = model.decoder_side_parameters()
    theta_0 = {n: p.detach().clone() for n, p in named}

    def quantized_theta():
        return {n: theta_0[n] + quantizer.quantize(p - theta_0[n]) for n, p in named}

    aware = scheme in ("full-uniform", "full-gaussian")
    train_rd(model, x, None, codec.lam, substitute=quantized_theta if aware else None, **common)
    trained = Adapted("genie", _eval(out), trainable=_count(model.parameters()))
    if scheme == "genie":
        return trained
    prior = "gaussian" if scheme == "full-gaussian" else "uniform"
    return quantize_update(trained, codec, cfg, prior, scheme=scheme)


def quantize_update(trained: Adapted, backbone: CsiCodec, cfg: FineTuning, prior: str = "uniform", *,
                    scheme: str = "full-unaware") -> Adapted:
    """Quantize and code ``trained``'s decoder-side update against ``backbone`` (θ_0).

    Applied to a ``genie`` result this is the quantization-unaware scheme of Fig. 10 (no
    second training run is needed: the training is the same).
    """
    quantizer = cfg.quantizer
    theta_0 = decoder_side_vector(backbone.model).cpu()
    out = copy_codec(trained.codec)
    levels = quantizer.indices(decoder_side_vector(out.model).cpu() - theta_0)
    apply_update(out.model, theta_0, levels, quantizer)
    update_prior = cfg.prior(prior)
    stream = encode_updates(levels, update_prior, quantizer)
    return Adapted(scheme, _eval(out), levels=levels, update_stream=stream, update_counts=True,
                   trainable=trained.trainable, prior=update_prior)


def _eval(codec: CsiCodec) -> CsiCodec:
    codec.model.eval()
    return codec


def evaluate_adapted(adapted: Adapted, h_e) -> dict[str, float]:
    """Compress ``H_E`` with the adapted codec and measure NMSE and rate per CSI.

    Returns the fields of :meth:`CsiCodec.evaluate` plus ``update_bits`` (the stream's real
    size, 0 when none is sent or its cost is ignored), ``update_bits_per_csi`` and
    ``total_bits`` (latent bits plus the amortized update bits), ``distortion`` (eq. 9's
    squared error per complex entry, in the codec's scaled units), ``rd_cost``
    (``total_bits + λ · distortion``, the objective of eq. 9 with the update counted) and
    ``trainable``.
    """
    from chanlab.adaptive_compression.model import distortion

    codec = adapted.codec
    row = codec.evaluate(h_e)
    counted = adapted.update_bits if adapted.update_counts else 0
    row["update_bits"] = float(counted)
    row["update_bits_per_csi"] = counted / row["n"]
    row["total_bits"] = row["bits_real"] + row["update_bits_per_csi"]
    # evaluate() checked that the bytes decode to exactly this reconstruction.
    x = codec.to_input(h_e)
    row["distortion"] = float(distortion(x, codec.to_input(codec.decode_latents(codec.latents(h_e)))).mean())
    row["rd_cost"] = row["total_bits"] + codec.lam * row["distortion"]
    row["trainable"] = adapted.trainable
    return row


__all__ = ["Adapted", "CODED_SCHEMES", "FineTuning", "SCHEMES", "Translation", "apply_update",
           "decoder_side_vector", "evaluate_adapted", "fine_tune", "quantize_update"]
