"""``CsiCodec``: fit a rate–distortion CSI compressor, turn CSI into bytes and back.

    codec = CsiCodec(n_ant=64, n_sc=64, lam=3e3).fit(h_train, h_val)
    streams = codec.compress(h_test)          # list of bytes, one per CSI matrix
    h_hat = codec.decompress(streams)         # [N, 64, 64] complex64
    data = codec.compress_batch(h_test)       # one stream for all N, one header and one CRC
    h_hat = codec.decompress_batch(data)      # [N, 64, 64]; index=i decodes CSI i alone
    codec.save("codec.pt"); CsiCodec.load("codec.pt")

CSI is ``[N, n_ant, n_sc]`` complex (spatial-frequency). The codec divides it by one fixed
scale, the RMS entry magnitude of the training set, so the network sees unit average power
per entry; the scale is part of the model (the receiver knows it), not side information.
Each CSI matrix becomes its own bitstream (:mod:`chanlab.quant.range_coding`): its length
is the feedback cost reported as "real bits", with the prior's entropy estimate beside it.

Stream overhead (measured in ``benchmarks/bench_stream_overhead.py``): a per-CSI stream
carries a 16-bit CRC and the range coder's 32-bit-word termination, ~30-40 bits per CSI
beyond ``-sum log2 p``. ``compress(h, crc=False)`` drops the CRC and terminates to the byte
(a few bits), for links that check frames with their own CRC; ``compress_batch`` puts many
CSI in one stream with one header, one CRC-32 and a small index (within ~1 % of
``-sum log2 p`` for 256 CSI of ~170 bits), each CSI still decodable alone.
"""

from __future__ import annotations

import os
from typing import Sequence

import numpy as np
import torch

from chanlab.adaptive_compression.model import CompressorSpec, RDCompressor
from chanlab.adaptive_compression.training import TrainHistory, train_rd
from chanlab.core.checkpoint import Checkpointer, load_checkpoint, save_checkpoint
from chanlab.core.device import select_device
from chanlab.core.errors import CheckpointError, ConfigError, DataError
from chanlab.core.validation import as_tensor, check_finite
from chanlab.metrics.distortion import nmse_per_sample
from chanlab.quant.range_coding import (
    DEFAULT_BLOCK,
    decode_batch,
    decode_symbols,
    encode_batch,
    encode_symbols,
)

_CHUNK_ENTRIES = 1 << 22  # CSI entries per inference chunk (bounds memory on 512×256)


def csi_to_real(h: torch.Tensor) -> torch.Tensor:
    """``[N, n_ant, n_sc]`` complex → ``[N, 2, n_ant, n_sc]`` real (real, imaginary)."""
    return torch.stack([h.real, h.imag], 1).to(torch.float32)


def real_to_csi(x: torch.Tensor) -> torch.Tensor:
    """Inverse of :func:`csi_to_real`."""
    return torch.complex(x[:, 0].float(), x[:, 1].float())


class CsiCodec:
    """A trained backbone compressor (encoder, factorized prior, decoder) with real bitstreams.

    Args:
        n_ant, n_sc: CSI size; both must be multiples of the pooling factor.
        lam: λ of the RD loss (eq. 9); larger λ, more bits and less distortion.
        pools: encoder pool sizes (default: the paper's, from the size).
        device: where the network runs (``"auto"``, ``"cpu"``, ``"cuda"``).
    """

    def __init__(self, n_ant: int, n_sc: int, lam: float, *, pools: Sequence[int] | None = None,
                 hidden: int = 16, kernel: int = 5, device: str | torch.device = "cpu"):
        if not (float(lam) > 0):
            raise ConfigError(f"lam: expected a positive RD weight, got {lam}")
        self.spec = CompressorSpec.for_size(n_ant, n_sc, pools, hidden=hidden, kernel=kernel)
        self.lam = float(lam)
        self.device = select_device(device)
        self.model = RDCompressor(self.spec).to(self.device).eval()
        self.scale: float | None = None
        self.history: TrainHistory | None = None

    # ----- data ---------------------------------------------------------------------------

    def _check_csi(self, h, name: str) -> torch.Tensor:
        h = as_tensor(h, name)
        if not h.is_complex():
            raise DataError(f"{name}: expected complex CSI [N, {self.spec.n_ant}, {self.spec.n_sc}], got dtype {h.dtype}")
        if h.ndim != 3 or tuple(h.shape[1:]) != (self.spec.n_ant, self.spec.n_sc):
            raise DataError(f"{name}: expected [N, {self.spec.n_ant}, {self.spec.n_sc}], got {list(h.shape)}")
        if h.shape[0] == 0:
            raise DataError(f"{name}: no CSI matrices")
        check_finite(h, name)
        return h.to(torch.complex64)

    def _fitted(self) -> float:
        if self.scale is None:
            raise ConfigError("this CsiCodec is not fitted: call fit() or CsiCodec.load()")
        return self.scale

    def to_input(self, h) -> torch.Tensor:
        """Scaled real network input ``[N, 2, n_ant, n_sc]`` (on the CPU)."""
        return csi_to_real(self._check_csi(h, "CSI").cpu()) / self._fitted()

    def _chunks(self, n: int):
        step = max(1, _CHUNK_ENTRIES // (self.spec.n_ant * self.spec.n_sc))
        return [(i, min(i + step, n)) for i in range(0, n, step)]

    # ----- training -----------------------------------------------------------------------

    def fit(self, h_train, h_val=None, *, epochs: int = 200, batch_size: int = 32, lr: float = 1e-3,
            prior_lr_scale: float = 1.0, seed: int = 0, checkpointer: Checkpointer | None = None,
            desc: str = "train") -> "CsiCodec":
        """Train on ``h_train [N, n_ant, n_sc]`` (Adam, eq. 9), keeping the best model on ``h_val``."""
        h_train = self._check_csi(h_train, "h_train").cpu()
        self.scale = float(h_train.abs().square().mean().sqrt())
        if not self.scale > 0:
            raise DataError("h_train is all zeros")
        x_val = None if h_val is None else self.to_input(h_val)
        torch.manual_seed(seed)  # the uniform quantization noise
        self.history = train_rd(self.model, self.to_input(h_train), x_val, self.lam, epochs=epochs,
                                batch_size=batch_size, lr=lr, prior_lr_scale=prior_lr_scale, seed=seed,
                                checkpointer=checkpointer, desc=desc)
        return self

    # ----- coding -------------------------------------------------------------------------

    @torch.no_grad()
    def latents(self, h) -> torch.Tensor:
        """Rounded latents ``[N, *latent_shape]`` (float32, integer-valued, CPU)."""
        x = self.to_input(h)
        self.model.eval()
        out = [torch.round(self.model.encoder(x[a:b].to(self.device))).cpu() for a, b in self._chunks(x.shape[0])]
        return torch.cat(out)

    @torch.no_grad()
    def decode_latents(self, latents: torch.Tensor) -> torch.Tensor:
        """Decoder network on latents ``[N, *latent_shape]`` → CSI ``[N, n_ant, n_sc]`` complex64."""
        self.model.eval()
        scale = self._fitted()
        out = [real_to_csi(self.model.decoder(latents[a:b].to(self.device)).cpu() * scale)
               for a, b in self._chunks(latents.shape[0])]
        return torch.cat(out)

    def entropy_bits(self, latents: torch.Tensor) -> torch.Tensor:
        """The prior's estimate of the code length per CSI in bits, ``[N]``."""
        with torch.no_grad():
            lik = self.model.prior.likelihood(latents.to(self.device))
            return self.model.prior.bits(lik).cpu()

    def _symbols(self, latents: torch.Tensor):
        """Integer symbols ``[N, n]``, channel map and coding tables of rounded latents."""
        prior = self.model.prior
        if not torch.isfinite(latents).all():
            raise DataError("latents contain NaN or Inf")
        values = torch.round(latents.detach()).to("cpu", torch.int64).reshape(latents.shape[0], -1).numpy()
        return values, prior.channel_map(latents.shape[1:]), prior.coding_tables()

    def _latents_of(self, values: np.ndarray) -> torch.Tensor:
        return torch.from_numpy(values.astype(np.float32)).reshape(values.shape[0], *self.spec.latent_shape)

    def compress(self, h, *, crc: bool = True) -> list[bytes]:
        """CSI ``[N, n_ant, n_sc]`` → ``N`` bitstreams (bytes), one per CSI matrix.

        ``crc=False`` writes streams without the 16-bit CRC, terminated to the byte instead
        of the 32-bit word (~3-5 bytes shorter each), for links that check every frame with
        their own CRC. Decode them with ``decompress(streams, crc=False)``: that rejects every
        truncated stream and most corrupted ones, but a corrupted CRC-free stream can decode
        to wrong CSI without an error (the link's CRC must catch it).
        """
        if crc:
            return self.model.prior.compress(self.latents(h))
        return encode_symbols(*self._symbols(self.latents(h)), crc=False)

    def decompress(self, streams: Sequence[bytes], *, crc: bool = True) -> torch.Tensor:
        """Bitstreams from :meth:`compress` → CSI ``[N, n_ant, n_sc]`` complex64.

        ``crc`` must be what the streams were written with. Raises
        :class:`~chanlab.core.errors.BitstreamError` on a corrupt stream (without CRC: on a
        truncated one and most corrupt ones, see :meth:`compress`).
        """
        self._fitted()
        if isinstance(streams, (bytes, bytearray)):
            streams = [streams]
        if crc:
            latents = self.model.prior.decompress(list(streams), self.spec.latent_shape)
        else:
            prior = self.model.prior
            values = decode_symbols(list(streams), prior.channel_map(self.spec.latent_shape), prior.coding_tables(),
                                    crc=False)
            latents = self._latents_of(values)
        return self.decode_latents(latents)

    def compress_batch(self, h, *, block: int = DEFAULT_BLOCK, crc: bool = True) -> bytes:
        """CSI ``[N, n_ant, n_sc]`` → one batch stream (:func:`~chanlab.quant.range_coding.encode_batch`).

        One header, one index and (with ``crc``) one CRC-32 for all N CSI instead of a CRC
        and a word-granular termination per CSI. The CSI are coded in segments of ``block``
        (one range coder each, terminated to the byte), so :meth:`decompress_batch` can decode
        one CSI by decoding at most ``block`` of them; the index costs a few bits per
        segment. ``block >= N``: one segment, the smallest stream. ``crc=False``: no CRC, for
        links with their own (then a corrupted stream may decode to wrong CSI; truncated and
        malformed ones still raise).
        """
        return encode_batch(*self._symbols(self.latents(h)), block=block, crc=crc)

    def decompress_batch(self, data: bytes, index=None, *, crc: bool = True) -> torch.Tensor:
        """A batch stream from :meth:`compress_batch` → CSI.

        Args:
            data: the stream.
            index: ``None``: all CSI ``[N, n_ant, n_sc]``; an int ``i``: CSI ``i`` alone,
                ``[n_ant, n_sc]`` (only its segment is decoded); a sequence of ints: those CSI,
                ``[len(index), n_ant, n_sc]``.
            crc: what the stream was written with (the CRC is checked on every call).

        Raises:
            BitstreamError: a malformed, truncated or corrupted stream (see :meth:`compress_batch`),
                or one written by another model.
            IndexError: ``index`` out of range.
        """
        self._fitted()
        prior = self.model.prior
        values = decode_batch(data, prior.channel_map(self.spec.latent_shape), prior.coding_tables(), index=index,
                              crc=crc)
        flat = values.reshape(-1, values.shape[-1])
        if flat.shape[0] == 0:
            return torch.zeros(0, self.spec.n_ant, self.spec.n_sc, dtype=torch.complex64)
        csi = self.decode_latents(self._latents_of(flat))
        return csi[0] if values.ndim == 1 else csi

    def stream_bits(self, h, *, block: int = DEFAULT_BLOCK) -> dict[str, float]:
        """Mean bits per CSI of every stream format beside ``-sum log2 p``.

        Keys: ``ideal`` (``-sum log2 p`` of the rounded latents under the coding tables, 32
        bits per escape), ``entropy`` (the prior's estimate, as :meth:`evaluate`),
        ``per_csi_crc`` / ``per_csi`` (:meth:`compress` with / without CRC), ``batch_crc`` /
        ``batch`` (:meth:`compress_batch` of all of ``h`` with / without CRC, ``block``),
        ``n`` and ``block``.
        """
        z = self.latents(h)
        values, channel, tables = self._symbols(z)
        n = values.shape[0]

        def mean_bits(streams):
            return float(np.mean([8 * len(s) for s in streams]))

        return {
            "ideal": float(tables.bits(values, channel).mean()),
            "entropy": float(self.entropy_bits(z).double().mean()),
            "per_csi_crc": mean_bits(encode_symbols(values, channel, tables)),
            "per_csi": mean_bits(encode_symbols(values, channel, tables, crc=False)),
            "batch_crc": 8 * len(encode_batch(values, channel, tables, block=block)) / n,
            "batch": 8 * len(encode_batch(values, channel, tables, block=block, crc=False)) / n,
            "n": int(n),
            "block": int(block),
        }

    def evaluate(self, h) -> dict[str, float]:
        """Compress, decompress and measure: NMSE, real and estimated bits per CSI, exactness.

        ``exact`` is True when decoding the bytes reproduces the encoder-side reconstruction
        (decoder applied to the encoder's own rounded latents) bit for bit.
        """
        h = self._check_csi(h, "CSI").cpu()
        z = self.latents(h)
        encoder_side = self.decode_latents(z)
        streams = self.model.prior.compress(z)
        decoded = self.decompress(streams)
        real = np.array([8 * len(s) for s in streams], dtype=np.float64)
        est = self.entropy_bits(z).double().numpy()
        nmse = nmse_per_sample(h, decoded).double()
        return {
            "nmse": float(nmse.mean()),
            "nmse_db": float(10 * torch.log10(nmse.mean())),
            "bits_real": float(real.mean()),
            "bits_entropy": float(est.mean()),
            "bytes_gap": float((real - est).mean() / 8),
            "bytes_gap_max_excess": float(np.max(real / 8 - (1.02 * est / 8 + 8))),
            "exact": bool(torch.equal(decoded, encoder_side)),
            "n": int(h.shape[0]),
        }

    # ----- persistence --------------------------------------------------------------------

    def state(self) -> dict:
        return {"format": "chanlab.CsiCodec/1", "spec": self.spec.to_dict(), "lam": self.lam,
                "scale": self._fitted(), "model": {k: v.cpu() for k, v in self.model.state_dict().items()}}

    def save(self, path: str | os.PathLike) -> None:
        """Write the fitted codec atomically (a ``torch.save`` dict of tensors and numbers)."""
        save_checkpoint(path, self.state())

    @classmethod
    def from_state(cls, state: dict, device: str | torch.device = "cpu") -> "CsiCodec":
        if not isinstance(state, dict) or state.get("format") != "chanlab.CsiCodec/1":
            raise CheckpointError("not a chanlab CsiCodec checkpoint")
        try:
            spec = state["spec"]
            codec = cls(spec["n_ant"], spec["n_sc"], state["lam"], pools=spec["pools"], hidden=spec["hidden"],
                        kernel=spec["kernel"], device=device)
            codec.model.load_state_dict(state["model"])
        except (KeyError, TypeError, RuntimeError) as exc:
            raise CheckpointError(f"CsiCodec checkpoint does not match the model: {exc}") from exc
        codec.scale = float(state["scale"])
        codec.model.eval()
        return codec

    @classmethod
    def load(cls, path: str | os.PathLike, device: str | torch.device = "cpu") -> "CsiCodec":
        """Read a codec written by :meth:`save` (``weights_only=True``)."""
        return cls.from_state(load_checkpoint(path), device)
