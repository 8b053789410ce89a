"""The backbone rate–distortion CSI compressor: conv encoder, unit-bin quantizer, learned
factorized prior, conv decoder (Section II-B of Sattari, Gündüz and Svensson).

Shapes: real CSI ``x`` is ``[batch, 2, n_ant, n_sc]`` (real and imaginary parts of the
spatial-frequency matrix H); the latent is ``[batch, 2, n_ant / P, n_sc / P]``.

Loss (eq. 9), per CSI matrix and averaged over the batch:

    L = bits(ẑ) + λ · ‖x − x̂‖² / (n_ant · n_sc)

``bits`` is −log2 of the prior's bin probabilities of the (noisy, while training) latent.
The distortion is the squared error per complex entry; for CSI scaled to unit average
power per entry (how :class:`~chanlab.adaptive_compression.codec.CsiCodec` scales its
input) it is the NMSE of eq. (11) up to the per-sample power. The paper's λ values
(5e4 … 1e7) belong to DeepMIMO's unnormalized channel powers and its sum-over-entries MSE;
ours are on this per-entry scale and so are smaller.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Sequence

import torch
from torch import nn

from chanlab.core.errors import ConfigError
from chanlab.nn.conv_compressor import ConvDecoder, ConvEncoder, default_pools
from chanlab.quant.factorized_prior import FactorizedPrior


@dataclass(frozen=True)
class CompressorSpec:
    """Architecture of an :class:`RDCompressor` (saved with every checkpoint)."""

    n_ant: int
    n_sc: int
    pools: tuple[int, int]
    hidden: int = 16
    latent_channels: int = 2
    kernel: int = 5

    @classmethod
    def for_size(cls, n_ant: int, n_sc: int, pools: Sequence[int] | None = None, **kw) -> "CompressorSpec":
        pools = tuple(pools) if pools is not None else default_pools(n_ant, n_sc)
        spec = cls(int(n_ant), int(n_sc), (int(pools[0]), int(pools[1])), **kw)
        factor = spec.pools[0] * spec.pools[1]
        if n_ant % factor or n_sc % factor:
            raise ConfigError(f"CSI size {n_ant}×{n_sc} is not divisible by the pooling factor {factor} "
                              f"(pools {spec.pools})")
        return spec

    @property
    def latent_shape(self) -> tuple[int, int, int]:
        f = self.pools[0] * self.pools[1]
        return (self.latent_channels, self.n_ant // f, self.n_sc // f)

    @property
    def compression_ratio(self) -> float:
        c, h, w = self.latent_shape
        return 2 * self.n_ant * self.n_sc / (c * h * w)

    def to_dict(self) -> dict:
        return asdict(self)


class RDCompressor(nn.Module):
    """Encoder ``f_φ``, prior ``p_θ`` and decoder ``g_θ`` of the backbone compressor."""

    def __init__(self, spec: CompressorSpec):
        super().__init__()
        self.spec = spec
        self.encoder = ConvEncoder(spec.pools, spec.hidden, spec.latent_channels, spec.kernel)
        self.prior = FactorizedPrior(spec.latent_channels)
        self.decoder = ConvDecoder(spec.pools, spec.hidden, spec.latent_channels, spec.kernel)

    def decoder_side_parameters(self) -> list[tuple[str, nn.Parameter]]:
        """θ: the parameters the receiver holds (decoder and prior), named."""
        return [(f"decoder.{n}", p) for n, p in self.decoder.named_parameters()] + \
               [(f"prior.{n}", p) for n, p in self.prior.named_parameters()]

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """``x [batch, 2, n_ant, n_sc]`` → ``{"x_hat", "latent", "bits" [batch]}``.

        In training mode the latent gets uniform noise (the differentiable proxy of the
        quantizer); in eval mode it is rounded, as it will be coded.
        """
        y = self.encoder(x)
        y_hat, likelihoods = self.prior(y)
        return {"x_hat": self.decoder(y_hat), "latent": y_hat, "bits": self.prior.bits(likelihoods)}


def distortion(x: torch.Tensor, x_hat: torch.Tensor) -> torch.Tensor:
    """Squared error per complex entry, per sample: ``[batch]``."""
    n = x.shape[-1] * x.shape[-2]
    return (x - x_hat).square().flatten(1).sum(1) / n


def rd_loss(out: dict[str, torch.Tensor], x: torch.Tensor, lam: float) -> tuple[torch.Tensor, dict[str, float]]:
    """Eq. (9): mean over the batch of ``bits + λ · distortion``; also returns the parts."""
    d = distortion(x, out["x_hat"])
    loss = (out["bits"] + lam * d).mean()
    return loss, {"bits": float(out["bits"].detach().mean()), "distortion": float(d.detach().mean())}
