"""The bitstream of a full-model fine-tuned codec: model update and latents together (Algorithms 3–4).

    sender:    data = encode_finetuned(adapted, h_e)
    receiver:  h_hat = FineTunedReceiver(backbone, prior, quantizer).decode(data)

The receiver holds only the backbone θ_0 (a saved :class:`CsiCodec`), the update prior and
the quantizer settings, all agreed in advance. Layout (integers little endian)::

    b"CLFT" | version u8 | n_params u32 | update_len u32 | n_csi u32 | n_csi × latent_len u32
    | crc32 of the header so far u32 | update stream | latent streams

The update stream (:func:`chanlab.quant.model_updates.encode_updates`) and every latent
stream carry their own CRC-16; the header has a CRC-32, and the lengths must account for
every byte, so a truncated, padded or corrupted stream raises :class:`BitstreamError`.
"""

from __future__ import annotations

import struct
import zlib
from typing import Sequence

import torch

from chanlab.adaptive_compression.codec import CsiCodec
from chanlab.adaptive_compression.finetune import Adapted, copy_codec, apply_update, decoder_side_vector
from chanlab.core.errors import BitstreamError, ConfigError
from chanlab.quant.model_updates import UpdatePrior, UpdateQuantizer, decode_updates

MAGIC = b"CLFT"
VERSION = 1
_FIXED = struct.Struct("<4sBIII")


def pack_finetuned(update_stream: bytes, n_params: int, latent_streams: Sequence[bytes]) -> bytes:
    """Join an update stream for ``n_params`` parameters and per-CSI latent streams."""
    header = _FIXED.pack(MAGIC, VERSION, n_params, len(update_stream), len(latent_streams))
    header += struct.pack(f"<{len(latent_streams)}I", *(len(s) for s in latent_streams))
    header += struct.pack("<I", zlib.crc32(header))
    return header + bytes(update_stream) + b"".join(bytes(s) for s in latent_streams)


def unpack_finetuned(data: bytes) -> tuple[bytes, int, list[bytes]]:
    """Inverse of :func:`pack_finetuned`: ``(update_stream, n_params, latent_streams)``."""
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise BitstreamError(f"expected bytes, got {type(data).__name__}")
    data = bytes(data)
    if len(data) < _FIXED.size:
        raise BitstreamError(f"fine-tuned stream: {len(data)} bytes is shorter than its header")
    magic, version, n_params, update_len, n_csi = _FIXED.unpack_from(data)
    if magic != MAGIC or version != VERSION:
        raise BitstreamError("fine-tuned stream: not a chanlab fine-tuned stream (bad magic or version)")
    end = _FIXED.size + 4 * n_csi
    if len(data) < end + 4:
        raise BitstreamError("fine-tuned stream: truncated header")
    (crc,) = struct.unpack_from("<I", data, end)
    if crc != zlib.crc32(data[:end]):
        raise BitstreamError("fine-tuned stream: header checksum mismatch")
    lengths = struct.unpack_from(f"<{n_csi}I", data, _FIXED.size)
    pos = end + 4
    if len(data) != pos + update_len + sum(lengths):
        raise BitstreamError(f"fine-tuned stream: {len(data)} bytes, the header accounts for "
                             f"{pos + update_len + sum(lengths)} (truncated or padded)")
    update = data[pos:pos + update_len]
    pos += update_len
    latents = []
    for n in lengths:
        latents.append(data[pos:pos + n])
        pos += n
    return update, n_params, latents


def encode_finetuned(adapted: Adapted, h_e) -> bytes:
    """Sender side of Algorithm 3: the coded update of ``adapted`` and the latents of ``h_e``."""
    if adapted.update_stream is None or adapted.levels is None:
        raise ConfigError(f"scheme {adapted.scheme!r} sends no model update; use a full-model scheme")
    return pack_finetuned(adapted.update_stream, int(adapted.levels.numel()), adapted.codec.compress(h_e))


class FineTunedReceiver:
    """Receiver side (Algorithm 4): decode θ̄ = θ_0 + δ̄, then the latents under p_θ̄, then the CSI.

    Args:
        backbone: the backbone codec θ_0 (only its decoder and prior are used).
        prior: the update prior agreed with the sender.
        quantizer: the update quantizer agreed with the sender.
    """

    def __init__(self, backbone: CsiCodec, prior: UpdatePrior, quantizer: UpdateQuantizer):
        self.backbone = backbone
        self.prior = prior
        self.quantizer = quantizer
        self.theta_0 = decoder_side_vector(backbone.model).cpu()

    def decode(self, data: bytes) -> torch.Tensor:
        """The CSI ``[N, n_ant, n_sc]`` complex64 carried by ``data``."""
        update, n_params, latents = unpack_finetuned(data)
        if n_params != self.theta_0.numel():
            raise BitstreamError(f"fine-tuned stream: updates {n_params} parameters, the backbone has "
                                 f"{self.theta_0.numel()}")
        levels = torch.from_numpy(decode_updates(update, n_params, self.prior, self.quantizer))
        codec = copy_codec(self.backbone)
        apply_update(codec.model, self.theta_0, levels, self.quantizer)
        codec.model.eval()
        return codec.decompress(latents)


__all__ = ["FineTunedReceiver", "encode_finetuned", "pack_finetuned", "unpack_finetuned"]
