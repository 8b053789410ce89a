"""Quantized CSI feedback: an autoencoder of ``chanlab.nn.csinet`` with one of the quantizers.

Schemes (the paper's methods; :data:`SCHEMES`):

=================  ==========================  ===========  ========  ========  ==========
 name              quantizer                   bit alloc.   β'        log loss  training
=================  ==========================  ===========  ========  ========  ==========
 ``nq``            none (upper bound)          –            –         ✓         end to end
 ``proposed``      per-output scalar codebooks ✓ (Sec. III) adaptive  ✓         alternating
 ``proposed-var1`` per-output scalar codebooks –  (B_m = B)   fixed β   ✓         end to end
 ``proposed-var2`` per-output scalar codebooks ✓            adaptive  –         alternating
 ``round``         uniform, smooth rounding    –            –         –         end to end
 ``vector-L``      shared L-dim codebook       –            fixed β   –         end to end (eq. 4)
 ``lloyd``         Lloyd-Max after training    –            –         –         two-step
 ``lloyd-log``     Lloyd-Max after training    –            –         ✓         two-step
=================  ==========================  ===========  ========  ========  ==========

``pca`` (PCA with bit allocation) has no autoencoder and lives in :mod:`.baselines`.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from chanlab.core.errors import ConfigError, DataError


@dataclass(frozen=True)
class Scheme:
    quantizer: str | None          # None, "scalar", "uniform", "vector"
    allocate: bool = False
    adaptive: bool = False
    log_loss: bool = False
    sub_dim: int = 1               # vector quantization only
    post_hoc: bool = False         # quantizer fitted after training (Lloyd)


SCHEMES: dict[str, Scheme] = {
    "nq": Scheme(None, log_loss=True),
    "proposed": Scheme("scalar", allocate=True, adaptive=True, log_loss=True),
    "proposed-var1": Scheme("scalar", log_loss=True),
    "proposed-var2": Scheme("scalar", allocate=True, adaptive=True),
    "round": Scheme("uniform"),
    "vector-1": Scheme("vector", sub_dim=1),
    "vector-2": Scheme("vector", sub_dim=2),
    "vector-4": Scheme("vector", sub_dim=4),
    "lloyd": Scheme("scalar", post_hoc=True),
    "lloyd-log": Scheme("scalar", post_hoc=True, log_loss=True),
}


def get_scheme(name: str) -> Scheme:
    if name not in SCHEMES:
        raise ConfigError(f"scheme: unknown {name!r}; choose from {', '.join(SCHEMES)}")
    return SCHEMES[name]


class FeedbackAutoencoder(nn.Module):
    """Encoder → quantizer → decoder on CsiNet inputs ``[B, 2, n_ant, n_delay]`` in [0, 1].

    ``quantizer`` is None (no quantization) or a module with the common interface of
    :class:`chanlab.quant.scalar_codebooks.ScalarCodebooks`: ``forward(z) -> (z_q, indices)``,
    ``dequantize``, ``compress`` / ``decompress``. It can be set after training (Lloyd).

    Standardization. :meth:`calibrate` fixes ``center = 0.5`` and ``scale`` = the standard
    deviation of the training CSI around it; the encoder then sees ``(x − center) / scale`` and a
    decoder with the ``"linear"`` head (:func:`chanlab.nn.csinet.make_autoencoder`) predicts
    standardized CSI, mapped back as ``center + scale · u``. Both are fixed buffers, saved with the
    weights. Uncalibrated (``center = 0``, ``scale = 1``) the model is the plain autoencoder. The
    reason is in :mod:`chanlab.nn.csinet` ("Output head").
    """

    def __init__(self, encoder: nn.Module, decoder: nn.Module, quantizer: nn.Module | None = None):
        super().__init__()
        self.encoder = encoder
        self.decoder = decoder
        self.quantizer = quantizer
        self.register_buffer("center", torch.zeros(()))
        self.register_buffer("scale", torch.ones(()))

    @torch.no_grad()
    def calibrate(self, x: torch.Tensor) -> FeedbackAutoencoder:
        """Set the standardization from training inputs ``x`` ``[n, 2, n_ant, n_delay]`` in [0, 1]."""
        if not isinstance(x, torch.Tensor) or x.ndim != 4 or len(x) < 2:
            raise DataError(f"calibrate: expected at least 2 CSI [n, 2, n_ant, n_delay], got "
                            f"{list(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__}")
        if not torch.isfinite(x).all():
            raise DataError("calibrate: the CSI contain NaN or inf")
        std = float((x.double() - 0.5).square().mean().sqrt())
        if not std > 0:
            raise DataError("calibrate: the CSI are constant at 0.5 (all-zero channels)")
        self.center.fill_(0.5)
        self.scale.fill_(std)
        return self

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """Encoder outputs ``z`` ``[B, M]`` (before quantization)."""
        return self.encoder((x - self.center) / self.scale)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """Decoder outputs in the CsiNet input domain ``[B, 2, n_ant, n_delay]``."""
        out = self.decoder(z)
        if getattr(self.decoder, "output", "sigmoid") == "linear":
            out = self.center + self.scale * out
        return out

    def forward(self, x: torch.Tensor):
        """``(x_hat, z, z_q, indices)``; without a quantizer ``z_q = z`` and ``indices`` is None."""
        z = self.encode(x)
        if self.quantizer is None:
            return self.decode(z), z, z, None
        z_q, idx = self.quantizer(z)
        return self.decode(z_q), z, z_q, idx

    @torch.no_grad()
    def compress(self, x: torch.Tensor) -> list[bytes]:
        """One bitstream per CSI: exactly the quantizer's bits, padded to whole bytes."""
        if self.quantizer is None:
            raise ConfigError("compress: this model has no quantizer (scheme nq sends floats)")
        return self.quantizer.compress(self.encode(x))

    @torch.no_grad()
    def decompress(self, streams) -> torch.Tensor:
        """Bitstreams → reconstructed CsiNet inputs ``[n, 2, n_ant, n_delay]``."""
        return self.decode(self.quantizer.decompress(streams).to(self.scale.device))
