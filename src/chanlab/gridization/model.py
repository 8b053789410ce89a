"""CSG-AE: RSRP encoder, L-sparse codebook quantizer and the fixed LSCM decoder (Fig. 4)."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from chanlab.core.errors import DataError
from chanlab.nn.mlp import SkipMLP
from chanlab.quant.sparse_codebook import SparseCodebook

# Decoder outputs below this power (all-zero CAPS) are clamped rather than sent to −∞ dBm.
_FLOOR_MW = 1e-30


class LscmDecoder(nn.Module):
    """``D(x) = 10 log10(A x)`` (eq. 23) with A fixed: ``[B, N] → [B, M]`` dBm."""

    def __init__(self, beam_pattern: torch.Tensor):
        super().__init__()
        if beam_pattern.ndim != 2:
            raise DataError(f"beam_pattern: expected [M, N], got {tuple(beam_pattern.shape)}")
        self.register_buffer("beam_pattern", beam_pattern.detach().to(torch.float32).clone())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return 10.0 * torch.log10((x @ self.beam_pattern.T).clamp_min(_FLOOR_MW))


class CsgAutoencoder(nn.Module):
    """The Channel Space Gridization autoencoder.

    Internally the CAPS lives in units of ``caps_scale`` (``x = caps_scale · x̃``): physical
    CAPS of a few 1e-3 would make AdamW's lr 1e-2 steps on the codebook meaningless, so the
    encoder output, the codebook and the quantization loss use x̃, and the decoder holds
    ``caps_scale · A``. :meth:`calibrate_caps_scale` picks it from the training RSRP before
    training; it is a fixed change of units, not a learned part. Likewise the encoder sees ``(y_dBm − input_mean) / input_std``.

    Args:
        beam_pattern: A, ``[M, N]`` (mW per unit CAPS).
        n_grids: K codewords.
        sparsity: L nonzeros per codeword.
        caps_scale, input_mean, input_std: the fixed units above.
        hidden, n_layers, skip_at: the encoder MLP (paper: 256, 6, (2, 4)).

    Shapes: RSRP ``[B, M]`` dBm → embeddings ``[B, N]`` (scaled units) → grid ``[B]``.
    """

    def __init__(self, beam_pattern: torch.Tensor, n_grids: int, sparsity: int, *, caps_scale: float = 1.0,
                 input_mean: float = 0.0, input_std: float = 1.0, hidden: int = 256, n_layers: int = 6,
                 skip_at: Sequence[int] = (2, 4), generator: torch.Generator | None = None):
        super().__init__()
        n_beams, n_angles = beam_pattern.shape
        self.encoder = SkipMLP(n_beams, n_angles, hidden=hidden, n_layers=n_layers, skip_at=skip_at)
        self.quantizer = SparseCodebook(n_grids, n_angles, sparsity, generator=generator)
        self.decoder = LscmDecoder(beam_pattern * caps_scale)
        self.register_buffer("caps_scale", torch.tensor(float(caps_scale)))
        self.register_buffer("input_mean", torch.tensor(float(input_mean)))
        self.register_buffer("input_std", torch.tensor(float(input_std)))

    @property
    def n_beams(self) -> int:
        return self.decoder.beam_pattern.shape[0]

    @torch.no_grad()
    def set_caps_scale(self, caps_scale: float) -> None:
        """Change the internal CAPS unit (the decoder's ``caps_scale · A`` follows)."""
        self.decoder.beam_pattern.mul_(caps_scale / float(self.caps_scale))
        self.caps_scale.fill_(caps_scale)

    @torch.no_grad()
    def calibrate_caps_scale(self, rsrp_dbm: torch.Tensor) -> float:
        """Choose the CAPS unit so that the untrained encoder's reconstruction has the median level of ``rsrp_dbm``.

        A freshly initialized MLP puts O(0.1) on about half of the N outputs; in a unit where
        that dense output is far too strong, the first steps switch most output ReLUs off for
        good and the embeddings collapse onto a few angles. Starting at the data's level avoids
        that; it is a change of units, not a learned part.
        """
        gap = (rsrp_dbm - self.decoder(self.embed(rsrp_dbm))).median()
        self.set_caps_scale(float(self.caps_scale) * 10 ** (float(gap) / 10))
        return float(self.caps_scale)

    def embed(self, rsrp_dbm: torch.Tensor) -> torch.Tensor:
        """``x̃ = ReLU(g_Θ(y))`` (eq. 20), ``[B, M] → [B, N]`` in scaled units."""
        return torch.relu(self.encoder((rsrp_dbm - self.input_mean) / self.input_std))

    def reconstruction_loss(self, rsrp_dbm: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        """``L1`` of eq. (18): the mean over samples and beams of |y_dBm − 10 log10(A x)|."""
        return (self.decoder(x) - rsrp_dbm).abs().mean()

    def forward(self, rsrp_dbm: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(embeddings [B, N], grid indices [B])``."""
        x = self.embed(rsrp_dbm)
        return x, self.quantizer.assign(x)
