"""Range coding of integer symbols with per-channel probability tables (``constriction``).

The bitstream of one sample (one CSI matrix, one model update) is::

    crc16 (2 bytes, big endian) | range-coder payload (32-bit words, little endian)

* The payload codes every symbol with the categorical table of its channel. A table
  covers ``width`` consecutive integers starting at the channel's ``offset``; its entry 0
  is an **escape** symbol that carries the probability mass outside that window, so any
  int32 value can be coded: an escaped value follows the window symbols as two 16-bit
  uniform symbols. The learned model makes escapes rare, the format makes them possible.
* The CRC-16 (CCITT) covers the payload and is seeded with a fingerprint of the tables
  and the symbol count, so a truncated, bit-flipped or empty stream, or one read with a
  different model or shape, raises :class:`~chanlab.core.errors.BitstreamError` instead
  of decoding to garbage. (A range decoder never fails by itself: it decodes any words
  to *some* symbols.) CRC-16 detects every error burst of up to 16 bits and misses a
  random corruption with probability 2^-16.

Each sample is a separate stream because each CSI matrix is fed back on its own; the
loop over samples calls the coder once per stream, vectorized over that stream's symbols.
Constriction's categorical model is used with ``perfect=False`` (its fast, leaky
quantization of the probabilities to 24 bits: every table entry stays encodable).
"""

from __future__ import annotations

import binascii
from dataclasses import dataclass
from typing import Sequence

import numpy as np

from chanlab.core.errors import BitstreamError, DataError

HEADER_BYTES = 2
_ESCAPE = 0
_HALF = 1 << 16
_INT32_OFFSET = 1 << 31


@dataclass(frozen=True)
class CodingTables:
    """Per-channel discrete distributions for range coding.

    Attributes:
        offsets: ``[C]`` int64, the smallest value of each channel's window.
        pmf: ``[C, 1 + width]`` float64; column 0 is the escape probability (mass outside
            the window), column ``1 + k`` the probability of value ``offsets[c] + k``.
            Rows sum to 1.
    """

    offsets: np.ndarray
    pmf: np.ndarray

    def __post_init__(self):
        offsets = np.asarray(self.offsets, dtype=np.int64)
        pmf = np.asarray(self.pmf, dtype=np.float64)
        if offsets.ndim != 1 or pmf.ndim != 2 or pmf.shape[0] != offsets.shape[0] or pmf.shape[1] < 2:
            raise DataError(f"coding tables: expected offsets [C] and pmf [C, 1 + width], "
                            f"got {offsets.shape} and {pmf.shape}")
        if not np.isfinite(pmf).all() or (pmf < 0).any():
            raise DataError("coding tables: probabilities must be finite and nonnegative")
        if not np.allclose(pmf.sum(1), 1.0, atol=1e-6):
            raise DataError("coding tables: every row of pmf must sum to 1")
        object.__setattr__(self, "offsets", offsets)
        object.__setattr__(self, "pmf", pmf)

    @property
    def n_channels(self) -> int:
        return int(self.offsets.shape[0])

    @property
    def width(self) -> int:
        return int(self.pmf.shape[1] - 1)

    @classmethod
    def from_cdf(cls, offsets: np.ndarray, cdf_edges: np.ndarray, min_escape: float = 1e-9) -> "CodingTables":
        """Tables from CDF values at the bin edges ``offsets[c] + k - 1/2``, ``k = 0..width``.

        ``cdf_edges`` is ``[C, width + 1]`` (nondecreasing rows in [0, 1]); the escape
        probability is the mass below the first and above the last edge, at least
        ``min_escape`` so that out-of-window values stay codable.
        """
        cdf = np.clip(np.asarray(cdf_edges, dtype=np.float64), 0.0, 1.0)
        inside = np.maximum(np.diff(cdf, axis=1), 0.0)
        escape = np.maximum(cdf[:, :1] + (1.0 - cdf[:, -1:]), min_escape)
        pmf = np.concatenate([escape, inside], axis=1)
        return cls(offsets, pmf / pmf.sum(1, keepdims=True))

    def fingerprint(self) -> int:
        """16-bit digest of the tables (seeds the stream CRC)."""
        crc = binascii.crc_hqx(self.offsets.tobytes(), 0xFFFF)
        return binascii.crc_hqx(self.pmf.astype(np.float32).tobytes(), crc)

    def bits(self, values: np.ndarray, channel: np.ndarray) -> np.ndarray:
        """Ideal code length in bits of ``values [n_streams, n_symbols]`` under the tables."""
        idx, escaped = self._indices(values, channel)
        p = self.pmf[channel[None, :], idx]
        return -np.log2(p).sum(1) + 32.0 * escaped.sum(1)

    def _indices(self, values: np.ndarray, channel: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        rel = values - self.offsets[channel][None, :]
        inside = (rel >= 0) & (rel < self.width)
        return np.where(inside, rel + 1, _ESCAPE), ~inside


def _categorical():
    import constriction

    return constriction.stream.model.Categorical(perfect=False)


def _uniform():
    import constriction

    return constriction.stream.model.Uniform(_HALF)


def _check_channel(channel, n_symbols: int, tables: CodingTables) -> np.ndarray:
    channel = np.asarray(channel, dtype=np.int64)
    if channel.shape != (n_symbols,):
        raise DataError(f"channel map: expected [{n_symbols}] (one channel per symbol), got {list(channel.shape)}")
    if n_symbols and (channel.min() < 0 or channel.max() >= tables.n_channels):
        raise DataError(f"channel map: channels must lie in [0, {tables.n_channels}), "
                        f"got [{channel.min()}, {channel.max()}]")
    return channel


def _crc(payload: bytes, tables: CodingTables, n_symbols: int) -> int:
    seed = binascii.crc_hqx(int(n_symbols).to_bytes(8, "little"), tables.fingerprint())
    return binascii.crc_hqx(payload, seed)


def encode_symbols(values: np.ndarray, channel: np.ndarray, tables: CodingTables) -> list[bytes]:
    """Range-code integer symbols, one bitstream per row.

    Args:
        values: ``[n_streams, n_symbols]`` integers (any int32 value).
        channel: ``[n_symbols]`` table row of each symbol position.
        tables: the coding tables.

    Returns:
        ``n_streams`` byte strings.
    """
    import constriction

    values = np.asarray(values)
    if values.ndim != 2 or not np.issubdtype(values.dtype, np.integer):
        raise DataError(f"symbols: expected an integer array [n_streams, n_symbols], "
                        f"got {values.dtype} {list(values.shape)}")
    # Check the range before the cast: uint64 values >= 2^63 would wrap to negatives.
    if values.size and (int(values.min()) < -_INT32_OFFSET or int(values.max()) >= _INT32_OFFSET):
        raise DataError("symbols: values must fit in int32")
    values = values.astype(np.int64)
    channel = _check_channel(channel, values.shape[1], tables)
    idx, escaped = tables._indices(values, channel)
    probs = tables.pmf[channel].astype(np.float32)
    family, uniform = _categorical(), _uniform()
    streams = []
    for i in range(values.shape[0]):
        enc = constriction.stream.queue.RangeEncoder()
        enc.encode(idx[i].astype(np.int32), family, probs)
        esc = values[i][escaped[i]]
        if esc.size:
            shifted = (esc + _INT32_OFFSET).astype(np.uint64)
            pieces = np.stack([shifted >> 16, shifted & (_HALF - 1)], 1).reshape(-1).astype(np.int32)
            enc.encode(pieces, uniform)
        payload = enc.get_compressed().astype("<u4").tobytes()
        streams.append(_crc(payload, tables, values.shape[1]).to_bytes(HEADER_BYTES, "big") + payload)
    return streams


def decode_symbols(streams: Sequence[bytes], channel: np.ndarray, tables: CodingTables) -> np.ndarray:
    """Inverse of :func:`encode_symbols`: ``[n_streams, n_symbols]`` int64.

    Raises:
        BitstreamError: a stream is empty, truncated, corrupted, or was written with other
            tables or another number of symbols.
    """
    import constriction

    channel = np.asarray(channel, dtype=np.int64)
    n_symbols = int(channel.shape[0]) if channel.ndim == 1 else -1
    channel = _check_channel(channel, n_symbols, tables)
    probs = tables.pmf[channel].astype(np.float32)
    family, uniform = _categorical(), _uniform()
    out = np.empty((len(streams), n_symbols), dtype=np.int64)
    for i, stream in enumerate(streams):
        if not isinstance(stream, (bytes, bytearray, memoryview)):
            raise BitstreamError(f"stream {i}: expected bytes, got {type(stream).__name__}")
        stream = bytes(stream)
        # Zero symbols encode to an empty payload; any symbol gives at least one word.
        if len(stream) < HEADER_BYTES + (4 if n_symbols else 0) or (len(stream) - HEADER_BYTES) % 4:
            raise BitstreamError(f"stream {i}: {len(stream)} bytes is not a valid length "
                                 f"(empty or truncated)")
        payload = stream[HEADER_BYTES:]
        if int.from_bytes(stream[:HEADER_BYTES], "big") != _crc(payload, tables, n_symbols):
            raise BitstreamError(f"stream {i}: checksum mismatch (corrupted, truncated, or written "
                                 f"with another model or shape)")
        dec = constriction.stream.queue.RangeDecoder(np.frombuffer(payload, dtype="<u4").astype(np.uint32))
        try:
            idx = np.asarray(dec.decode(family, probs), dtype=np.int64)
            values = idx - 1 + tables.offsets[channel]
            escaped = idx == _ESCAPE
            n_esc = int(escaped.sum())
            if n_esc:
                pieces = np.asarray(dec.decode(uniform, 2 * n_esc), dtype=np.int64).reshape(-1, 2)
                values[escaped] = (pieces[:, 0] << 16 | pieces[:, 1]) - _INT32_OFFSET
        except (AssertionError, ValueError, RuntimeError) as err:
            # constriction asserts on payloads no encoder could have written (reachable
            # when a corruption slips past the CRC, probability 2^-16).
            raise BitstreamError(f"stream {i}: invalid range-coder payload ({err})") from err
        if not dec.maybe_exhausted():
            raise BitstreamError(f"stream {i}: data left after the last symbol (wrong shape or model)")
        out[i] = values
    return out
