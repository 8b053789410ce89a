"""The PCA baseline of Table I (ref. [12]): PCA for encoding, bit allocation on its coefficients."""

from __future__ import annotations

from typing import Any

import torch

from chanlab.csi_feedback.data import nmse_db, rho


class PcaFeedback:
    """Linear feedback: the top-M principal components of the centred CsiNet input, quantized with
    per-component scalar codebooks under the bit allocation of Section III-A.

    ``fit(x_train)`` → ``compress(x)`` (list of bytes, exactly M·B bits each, padded to bytes) →
    ``decompress(streams)`` (CsiNet inputs). Shapes: ``[n, 2, n_ant, n_delay]``.
    """

    def __init__(self, n_components: int, bits: int, alloc_samples: int = 20000):
        self.n_components, self.bits, self.alloc_samples = n_components, bits, alloc_samples

    def fit(self, x_train: torch.Tensor) -> PcaFeedback:
        from chanlab.classical.pca_codec import PcaCodec
        from chanlab.quant.scalar_codebooks import ScalarCodebooks, allocate_bits

        self.shape = x_train.shape[1:]
        flat = x_train.flatten(1).double()
        self.codec = PcaCodec(self.n_components).fit(flat)
        z = self.codec.encode(flat[: self.alloc_samples])
        alloc = allocate_bits(z, self.n_components * self.bits)
        self.quantizer = ScalarCodebooks.from_allocation(alloc)
        return self

    def compress(self, x: torch.Tensor) -> list[bytes]:
        return self.quantizer.compress(self.codec.encode(x.flatten(1).double()).float())

    def decompress(self, streams) -> torch.Tensor:
        z = self.quantizer.decompress(streams).double()
        return self.codec.decode(z).float().reshape(-1, *self.shape).clamp(0, 1)

    def evaluate(self, x_test: torch.Tensor, n_sc: int = 1024) -> dict[str, Any]:
        streams = self.compress(x_test)
        x_hat = self.decompress(streams)
        return {"nmse_db": nmse_db(x_test, x_hat), "rho": rho(x_test, x_hat, n_sc), "stream_bits": 8 * len(streams[0]),
                "payload_bits": int(self.quantizer.total_bits)}
