"""Range coding of integer symbols with per-channel probability tables (``constriction``).

Three stream formats share one coder (a symbol is coded with the categorical table of its
channel, see below):

**Per-sample stream with CRC** (the default of :func:`encode_symbols`; one CSI matrix or one
model update per stream)::

    crc16 (2 bytes, big endian) | range-coder payload (32-bit words, little endian)

**Per-sample stream without CRC** (``crc=False``, for links that check their frames with
their own CRC): one *segment* (below), nothing else.

**Batch stream** (:func:`encode_batch`): many samples, one header and one CRC, every sample
decodable on its own (:func:`decode_batch` with ``index``)::

    [crc32 (4 bytes, big endian), only with crc=True]
    version (1 byte, = 1)
    n_items (LEB128 varint)      number of samples N
    block   (LEB128 varint)      samples per segment K, 1 <= K <= max(N, 1)
    width   (1 byte)             bits per index entry w (0..32)
    index   (ceil(B w / 8) bytes) byte length of each of the B = ceil(N / K) segments,
                                  w-bit unsigned, most significant bit first, zero padded
    segment 0 | segment 1 | ... | segment B-1

Segment ``b`` codes samples ``bK .. min(bK + K, N) - 1`` with one range coder, so a sample
is decoded by decoding its segment alone (at most K samples); the index costs ``w`` bits per
segment. Why segments of K samples: a segment per sample (K = 1) pays its termination
(~5 bits) and its index entry (~5 bits) per sample, 6 % of a 170-bit CSI; one range coder
with ``constriction``'s seek checkpoints would pay 128 bits of coder state per entry. With
the default K = 16 both are shared by 16 samples: 256 CSI of ~170 bits cost 0.7 % more than
``-sum log2 p`` (0.56 bits/CSI of index, 0.28 of header and CRC, 0.40 of termination), and
one CSI decodes in ~0.4 ms (``benchmarks/bench_stream_overhead.py``).

Segments
    A segment is the range-coder state written out *byte-granular*: the shortest byte
    string ``m`` such that every continuation of ``m`` (in particular the zero padding the
    decoder appends up to a whole 32-bit word) lies in the final coding interval. The words
    are read big endian. Termination therefore costs a few bits per segment instead of the
    1-2 whole words of ``constriction``'s own seal, and no segment is a prefix of another
    segment of the same number of symbols (a prefix-free code).

Symbols and escapes
    A table covers ``width`` consecutive integers starting at the channel's ``offset``; its
    entry 0 is an **escape** symbol that carries the probability mass outside that window, so
    any int32 value can be coded: an escaped value follows the sample's window symbols as two
    16-bit uniform symbols. The learned model makes escapes rare, the format makes them
    possible. In a segment each sample's symbols (window symbols, then its escapes) follow
    the previous sample's.

Integrity
    * With CRC (per sample: CRC-16/CCITT; batch: CRC-32), the checksum covers the whole
      stream after it and is seeded with a digest of the tables and the symbol count per
      sample, so a truncated, bit-flipped or empty stream, or one read with a different model
      or shape, raises :class:`~chanlab.core.errors.BitstreamError` instead of decoding to
      garbage. (A range decoder never fails by itself: it decodes any words to *some*
      symbols.) Every single-bit error and every error burst of up to 16 (32) bits is
      detected; a random corruption slips through with probability 2^-16 (2^-32).
    * Without CRC, a stream is accepted only if it is exactly what the encoder writes for the
      decoded symbols (the decoder re-encodes them and compares). Because segments are
      prefix-free, this rejects **every** truncation, and it rejects most other corruptions,
      but it is not a checksum: a corrupted CRC-free stream may decode to wrong symbols
      without an error (about 1 % of single-bit flips do). It never hangs or crashes:
      malformed headers raise :class:`~chanlab.core.errors.BitstreamError`, and the work is
      bounded by the stream's own length (a segment must be long enough for the symbols it
      claims, see :func:`decode_batch`). The re-encoding makes decoding ~1.7x slower.

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
BATCH_CRC_BYTES = 4
BATCH_VERSION = 1
DEFAULT_BLOCK = 16
MAX_BATCH_ITEMS = 1 << 20
_ESCAPE = 0
_HALF = 1 << 16
_INT32_OFFSET = 1 << 31
_MASK64 = (1 << 64) - 1
_PRECISION = 24  # constriction's Categorical: probabilities in units of 2^-24
_DECODE_ERRORS = (AssertionError, ValueError, RuntimeError, OverflowError)


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

    def digest32(self) -> int:
        """32-bit digest of the tables (seeds the batch stream's CRC-32)."""
        return binascii.crc32(self.pmf.astype(np.float32).tobytes(), binascii.crc32(self.offsets.tobytes()))

    def bits(self, values: np.ndarray, channel: np.ndarray) -> np.ndarray:
        """Ideal code length in bits of ``values [n_streams, n_symbols]`` under the tables."""
        idx, escaped = self._indices(values, channel)
        p = self.pmf[channel[None, :], idx]
        return -np.log2(p).sum(1) + 32.0 * escaped.sum(1)

    def min_bits(self) -> np.ndarray:
        """``[C]``: a lower bound on the bits any symbol of each channel costs in a stream.

        The coder's 24-bit leaky quantization (float32 sums) gives an entry of probability
        ``p`` at most about ``p + (width + 2) 2^-24``; the bound allows four times that,
        capped below 1. (It only serves to refuse headers that claim more symbols than a
        segment can hold.)
        """
        q = self.pmf.max(1) * (1 + 1e-4) + 4 * (self.width + 2) * 2.0 ** -_PRECISION
        return -np.log2(np.minimum(q, 1.0 - 2.0 ** -_PRECISION))

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


def _decoder_channel(channel, tables: CodingTables) -> np.ndarray:
    channel = np.asarray(channel, dtype=np.int64)
    return _check_channel(channel, int(channel.shape[0]) if channel.ndim == 1 else -1, tables)


def _check_values(values) -> np.ndarray:
    values = np.asarray(values)
    if values.ndim != 2 or not np.issubdtype(values.dtype, np.integer):
        raise DataError(f"symbols: expected an integer array [n_streams, n_symbols], "
                        f"got {values.dtype} {list(values.shape)}")
    # Check the range before the cast: uint64 values >= 2^63 would wrap to negatives.
    if values.size and (int(values.min()) < -_INT32_OFFSET or int(values.max()) >= _INT32_OFFSET):
        raise DataError("symbols: values must fit in int32")
    return values.astype(np.int64)


def _crc(payload: bytes, tables: CodingTables, n_symbols: int) -> int:
    seed = binascii.crc_hqx(int(n_symbols).to_bytes(8, "little"), tables.fingerprint())
    return binascii.crc_hqx(payload, seed)


def _crc32(body: bytes, tables: CodingTables, n_symbols: int) -> int:
    seed = binascii.crc32(int(n_symbols).to_bytes(8, "little"), tables.digest32())
    return binascii.crc32(body, seed)


class _Coder:
    """The symbols of one channel map: builds segments and decodes them."""

    def __init__(self, channel: np.ndarray, tables: CodingTables):
        self.channel = channel
        self.tables = tables
        self.n_symbols = int(channel.shape[0])
        self.probs = tables.pmf[channel].astype(np.float32)
        self.family = _categorical()
        self.uniform = _uniform()

    def _encode_rows(self, enc, values: np.ndarray) -> None:
        idx, escaped = self.tables._indices(values, self.channel)
        for i in range(values.shape[0]):
            enc.encode(idx[i].astype(np.int32), self.family, self.probs)
            esc = values[i][escaped[i]]
            if esc.size:
                shifted = (esc + _INT32_OFFSET).astype(np.uint64)
                pieces = np.stack([shifted >> 16, shifted & (_HALF - 1)], 1).reshape(-1).astype(np.int32)
                enc.encode(pieces, self.uniform)

    def words(self, values: np.ndarray) -> bytes:
        """The per-sample CRC format's payload (constriction's seal, little-endian words)."""
        import constriction

        enc = constriction.stream.queue.RangeEncoder()
        self._encode_rows(enc, values)
        return enc.get_compressed().astype("<u4").tobytes()

    def segment(self, values: np.ndarray) -> bytes:
        """Samples ``values [k, n_symbols]`` in one range coder, terminated byte-granular."""
        import constriction

        enc = constriction.stream.queue.RangeEncoder()
        self._encode_rows(enc, values)
        position, (lower, range_) = enc.pos()
        return _terminate(enc.get_compressed(), int(position), int(lower), int(range_))

    def decode_words(self, words: np.ndarray, n_rows: int, what: str):
        """Decode ``n_rows`` samples from ``words``; returns (values, decoder)."""
        import constriction

        dec = constriction.stream.queue.RangeDecoder(words)
        out = np.empty((n_rows, self.n_symbols), dtype=np.int64)
        base = self.tables.offsets[self.channel] - 1
        try:
            for i in range(n_rows):
                idx = np.asarray(dec.decode(self.family, self.probs), dtype=np.int64)
                values = idx + base
                escaped = idx == _ESCAPE
                n_esc = int(escaped.sum())
                if n_esc:
                    pieces = np.asarray(dec.decode(self.uniform, 2 * n_esc), dtype=np.int64).reshape(-1, 2)
                    values[escaped] = (pieces[:, 0] << 16 | pieces[:, 1]) - _INT32_OFFSET
                out[i] = values
        except _DECODE_ERRORS as err:
            # constriction asserts on payloads no encoder could have written (reachable
            # when a corruption slips past the CRC, or without a CRC).
            raise BitstreamError(f"{what}: invalid range-coder payload ({err})") from err
        return out, dec

    def decode_segment(self, data: bytes, n_rows: int, what: str, verify: bool) -> np.ndarray:
        """Inverse of :meth:`segment`; ``verify``: re-encode and require the same bytes."""
        if self.n_symbols and n_rows and not data:
            raise BitstreamError(f"{what}: empty (truncated)")
        padded = bytes(data) + b"\0" * (-len(data) % 4)
        words = np.frombuffer(padded, dtype=">u4").astype(np.uint32)
        values, _ = self.decode_words(words, n_rows, what)
        if verify and self.segment(values) != bytes(data):
            raise BitstreamError(f"{what}: not the encoding of the symbols it decodes to (corrupted, "
                                 f"truncated, padded, or written with another model or shape)")
        return values


def _terminate(words: np.ndarray, position: int, lower: int, range_: int) -> bytes:
    """Shortest bytes whose every continuation lies in the coder's final interval.

    ``constriction`` seals a range coder with 1-2 words (a point in the final interval
    ``[L, L + range)``, where ``L`` ends in the 64-bit ``lower`` that sits just after the
    ``position`` words already written). Read as one big-endian integer over ``position + 2``
    words, its sealed stream is such a point, which gives ``L`` with all carries resolved;
    the result is the shortest ``m`` (in bytes) with ``[m, m + 1) * 2^k`` inside the interval.
    """
    n = int(words.size)
    if n == 0:
        return b""  # no symbol was coded
    total_bits = 32 * (position + 2)
    if not position + 1 <= n <= position + 2:  # never happens with constriction 0.4-0.5
        raise RuntimeError(f"range coder: unexpected seal ({n} words after position {position})")
    point = int.from_bytes(words.astype(">u4").tobytes(), "big") << (32 * (position + 2 - n))
    low = point - ((point - lower) & _MASK64)
    high = low + range_  # exclusive
    n_bytes = max(0, -(-(total_bits - range_.bit_length() + 1) // 8))
    while True:
        k = total_bits - 8 * n_bytes
        m = -(-low >> k)
        if (m + 1) << k <= high:
            return m.to_bytes(n_bytes, "big")
        n_bytes += 1


# ----- per-sample streams ---------------------------------------------------------------------

def encode_symbols(values: np.ndarray, channel: np.ndarray, tables: CodingTables, *,
                   crc: bool = True) -> list[bytes]:
    """Range-code integer symbols, one bitstream per row.

    Args:
        values: ``[n_streams, n_symbols]`` integers (any int32 value).
        channel: ``[n_symbols]`` table row of each symbol position.
        tables: the coding tables.
        crc: ``True`` (default): the CRC-16 framed format. ``False``: a bare byte-granular
            segment, ~3.5 bytes shorter, for links that protect their frames with their own
            CRC; decode it with ``decode_symbols(..., crc=False)`` (see the module docstring
            for what that detects).

    Returns:
        ``n_streams`` byte strings.
    """
    values = _check_values(values)
    coder = _Coder(_check_channel(channel, values.shape[1], tables), tables)
    if not crc:
        return [coder.segment(values[i:i + 1]) for i in range(values.shape[0])]
    streams = []
    for i in range(values.shape[0]):
        payload = coder.words(values[i:i + 1])
        streams.append(_crc(payload, tables, values.shape[1]).to_bytes(HEADER_BYTES, "big") + payload)
    return streams


def _as_bytes(stream, what: str) -> bytes:
    if not isinstance(stream, (bytes, bytearray, memoryview)):
        raise BitstreamError(f"{what}: expected bytes, got {type(stream).__name__}")
    return bytes(stream)


def decode_symbols(streams: Sequence[bytes], channel: np.ndarray, tables: CodingTables, *,
                   crc: bool = True) -> np.ndarray:
    """Inverse of :func:`encode_symbols`: ``[n_streams, n_symbols]`` int64.

    ``crc`` must be what the streams were written with. Without CRC a corrupted stream may
    decode to wrong values (it is rejected only when it is not the encoding of the values it
    decodes to, which catches every truncation and most corruptions); the link's own CRC
    must catch the rest.

    Raises:
        BitstreamError: a stream is empty, truncated, corrupted, or was written with other
            tables or another number of symbols.
    """
    channel = _decoder_channel(channel, tables)
    n_symbols = int(channel.shape[0])
    coder = _Coder(channel, tables)
    out = np.empty((len(streams), n_symbols), dtype=np.int64)
    for i, stream in enumerate(streams):
        what = f"stream {i}"
        stream = _as_bytes(stream, what)
        if not crc:
            out[i] = coder.decode_segment(stream, 1, what, verify=True)[0]
            continue
        # Zero symbols encode to an empty payload; any symbol gives at least one word.
        if len(stream) < HEADER_BYTES + (4 if n_symbols else 0) or (len(stream) - HEADER_BYTES) % 4:
            raise BitstreamError(f"{what}: {len(stream)} bytes is not a valid length "
                                 f"(empty or truncated)")
        payload = stream[HEADER_BYTES:]
        if int.from_bytes(stream[:HEADER_BYTES], "big") != _crc(payload, tables, n_symbols):
            raise BitstreamError(f"{what}: checksum mismatch (corrupted, truncated, or written "
                                 f"with another model or shape)")
        values, dec = coder.decode_words(np.frombuffer(payload, dtype="<u4").astype(np.uint32), 1, what)
        if not dec.maybe_exhausted():
            raise BitstreamError(f"{what}: data left after the last symbol (wrong shape or model)")
        out[i] = values[0]
    return out


# ----- batch streams --------------------------------------------------------------------------

@dataclass(frozen=True)
class BatchLayout:
    """Where things are in a batch stream (see the module docstring).

    Attributes:
        n_items: samples N in the stream.
        block: samples per segment K.
        crc_bytes: 4 with CRC, 0 without.
        header_bytes: version, N, K and the index width (after the CRC).
        index_bytes: the segment-length index.
        offsets: ``[B]`` byte offset of each segment in the stream.
        lengths: ``[B]`` byte length of each segment.
    """

    n_items: int
    block: int
    crc_bytes: int
    header_bytes: int
    index_bytes: int
    offsets: np.ndarray
    lengths: np.ndarray

    @property
    def n_segments(self) -> int:
        return int(self.lengths.shape[0])

    @property
    def total_bytes(self) -> int:
        return self.crc_bytes + self.header_bytes + self.index_bytes + int(self.lengths.sum())

    def items(self, segment: int) -> range:
        """Sample indices coded in ``segment``."""
        return range(segment * self.block, min((segment + 1) * self.block, self.n_items))


def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        byte, n = n & 0x7F, n >> 7
        out.append(byte | (0x80 if n else 0))
        if not n:
            return bytes(out)


def _read_varint(data: bytes, pos: int, what: str) -> tuple[int, int]:
    value = 0
    for k in range(5):  # values below 2^35
        if pos + k >= len(data):
            raise BitstreamError(f"{what}: truncated header")
        byte = data[pos + k]
        value |= (byte & 0x7F) << (7 * k)
        if not byte & 0x80:
            if k and not byte:
                raise BitstreamError(f"{what}: malformed header (overlong number)")
            return value, pos + k + 1
    raise BitstreamError(f"{what}: malformed header (number too long)")


def _pack_index(lengths: np.ndarray) -> tuple[int, bytes]:
    lengths = np.asarray(lengths, dtype=np.int64)
    width = int(lengths.max()).bit_length() if lengths.size else 0
    bits = (lengths[:, None] >> np.arange(width - 1, -1, -1)[None, :]) & 1
    return width, np.packbits(bits.astype(np.uint8).reshape(-1)).tobytes()


def _unpack_index(index: bytes, n_segments: int, width: int, what: str) -> np.ndarray:
    bits = np.unpackbits(np.frombuffer(index, dtype=np.uint8))
    if bits[n_segments * width:].any():
        raise BitstreamError(f"{what}: malformed index (nonzero padding)")
    weights = np.left_shift(1, np.arange(width - 1, -1, -1, dtype=np.int64))
    return bits[:n_segments * width].reshape(n_segments, width).astype(np.int64) @ weights


def encode_batch(values: np.ndarray, channel: np.ndarray, tables: CodingTables, *, block: int = DEFAULT_BLOCK,
                 crc: bool = True) -> bytes:
    """Range-code many samples into one batch stream (layout in the module docstring).

    Args:
        values: ``[n_items, n_symbols]`` integers (any int32 value), one row per sample;
            at most ``MAX_BATCH_ITEMS`` (2^20) rows.
        channel: ``[n_symbols]`` table row of each symbol position.
        tables: the coding tables.
        block: samples per independently decodable segment K: random access to one sample
            decodes K samples; the index costs a few bits per segment. ``block >= n_items``
            gives one segment (smallest stream, decode all at once).
        crc: ``True``: a CRC-32 over the whole stream. ``False``: none, for links with
            their own CRC (see the module docstring for what decoding still detects).

    Returns:
        The stream.
    """
    values = _check_values(values)
    if int(block) != block or block < 1:
        raise DataError(f"block: expected a positive number of samples per segment, got {block}")
    n_items, n_symbols = values.shape
    if n_items > MAX_BATCH_ITEMS:
        raise DataError(f"batch stream: at most {MAX_BATCH_ITEMS} samples, got {n_items}")
    coder = _Coder(_check_channel(channel, n_symbols, tables), tables)
    block = max(1, min(int(block), n_items))
    segments = [coder.segment(values[a:a + block]) for a in range(0, n_items, block)]
    width, index = _pack_index(np.array([len(s) for s in segments], dtype=np.int64))
    body = b"".join([bytes([BATCH_VERSION]), _varint(n_items), _varint(block), bytes([width]), index, *segments])
    if not crc:
        return body
    return _crc32(body, tables, n_symbols).to_bytes(BATCH_CRC_BYTES, "big") + body


def read_batch_layout(data: bytes, *, crc: bool = True) -> BatchLayout:
    """Parse the header and index of a batch stream (checks its structure, not the CRC)."""
    what = "batch stream"
    data = _as_bytes(data, what)
    pos = BATCH_CRC_BYTES if crc else 0
    if len(data) < pos + 4:
        raise BitstreamError(f"{what}: {len(data)} bytes is too short (empty or truncated)")
    if data[pos] != BATCH_VERSION:
        raise BitstreamError(f"{what}: unknown format version {data[pos]} (corrupted, or not a batch "
                             f"stream{'' if crc else ', or written with a CRC'})")
    n_items, pos = _read_varint(data, pos + 1, what)
    block, pos = _read_varint(data, pos, what)
    if n_items > MAX_BATCH_ITEMS or not 1 <= block <= max(n_items, 1):
        raise BitstreamError(f"{what}: malformed header ({n_items} samples in segments of {block})")
    if pos >= len(data):
        raise BitstreamError(f"{what}: truncated header")
    width = data[pos]
    pos += 1
    n_segments = -(-n_items // block)
    index_bytes = -(-n_segments * width // 8)
    if width > 32 or pos + index_bytes > len(data):
        raise BitstreamError(f"{what}: malformed or truncated index")
    lengths = _unpack_index(data[pos:pos + index_bytes], n_segments, width, what)
    if n_segments and width and int(lengths.max()).bit_length() != width:
        raise BitstreamError(f"{what}: malformed index (entries wider than needed)")
    start = pos + index_bytes
    if start + int(lengths.sum()) != len(data):
        raise BitstreamError(f"{what}: {len(data)} bytes, the index accounts for "
                             f"{start + int(lengths.sum())} (truncated, padded or corrupted)")
    offsets = start + np.concatenate([[0], np.cumsum(lengths)[:-1]]).astype(np.int64) if n_segments \
        else np.zeros(0, dtype=np.int64)
    return BatchLayout(n_items=n_items, block=block, crc_bytes=BATCH_CRC_BYTES if crc else 0,
                       header_bytes=start - index_bytes - (BATCH_CRC_BYTES if crc else 0),
                       index_bytes=index_bytes, offsets=offsets, lengths=lengths)


def decode_batch(data: bytes, channel: np.ndarray, tables: CodingTables, *, index=None,
                 crc: bool = True) -> np.ndarray:
    """Inverse of :func:`encode_batch`, for all samples or only some.

    Args:
        data: the batch stream.
        channel: ``[n_symbols]`` table row of each symbol position (as for encoding).
        tables: the coding tables.
        index: ``None``: every sample, ``[n_items, n_symbols]``; an int: that sample only,
            ``[n_symbols]`` (decodes its segment alone); a sequence of ints: those samples,
            ``[len(index), n_symbols]`` (each needed segment decoded once).
        crc: what the stream was written with. With CRC the CRC-32 of the whole stream is
            checked on every call (random access included). Without, every decoded segment
            is re-encoded and must give the same bytes, the header and index must be
            consistent with the stream's length, and each segment must be at least as long
            as the symbols it claims can possibly be coded in (so the decoder's work is
            bounded by the data): truncations are always rejected, other corruptions may
            decode to wrong values.

    Raises:
        BitstreamError: the stream is malformed, truncated, corrupted (with CRC: always up to
            the CRC's 2^-32 miss rate), or was written with other tables or another number
            of symbols per sample.
        IndexError: ``index`` is outside ``[-n_items, n_items)``.
    """
    what = "batch stream"
    data = _as_bytes(data, what)
    channel = _decoder_channel(channel, tables)
    n_symbols = int(channel.shape[0])
    if crc and len(data) >= BATCH_CRC_BYTES and \
            int.from_bytes(data[:BATCH_CRC_BYTES], "big") != _crc32(data[BATCH_CRC_BYTES:], tables, n_symbols):
        raise BitstreamError(f"{what}: checksum mismatch (corrupted, truncated, or written with another "
                             f"model or shape)")
    layout = read_batch_layout(data, crc=crc)
    n = layout.n_items
    if index is None:
        wanted = np.arange(n)
    else:
        wanted = np.asarray(index)
        if wanted.ndim > 1 or not (np.issubdtype(wanted.dtype, np.integer) or wanted.size == 0):
            raise DataError(f"index: expected None, an int or a sequence of ints, got {index!r}")
        wanted = wanted.astype(np.int64)
        if wanted.size and (wanted.min() < -n or wanted.max() >= n):
            raise IndexError(f"index {index!r} out of range for a batch of {n} samples")
        wanted = wanted.reshape(-1) % max(n, 1)
    # Bound the work by the data: a segment of L bytes codes symbols of at most 8 L bits
    # (with a margin: this only refuses forged headers, the re-encoding checks the rest).
    csi_bits = float(tables.min_bits()[channel].sum()) if n_symbols else 0.0
    segments = np.unique(wanted // layout.block)
    for b in segments:
        items, length = layout.items(int(b)), int(layout.lengths[b])
        if n_symbols and (length == 0 or 0.9 * len(items) * csi_bits > 8 * length + 64):
            raise BitstreamError(f"{what}: segment {b} has {length} bytes, too few for {len(items)} "
                                 f"samples (corrupted, or written with another model)")
    coder = _Coder(channel, tables)
    out = np.empty((wanted.size, n_symbols), dtype=np.int64)
    for b in segments:
        items = layout.items(int(b))
        start = int(layout.offsets[b])
        seg = data[start:start + int(layout.lengths[b])]
        values = coder.decode_segment(seg, len(items), f"{what}, segment {b}", verify=not crc)
        sel = wanted // layout.block == b
        out[sel] = values[wanted[sel] - items.start]
    return out[0] if index is not None and np.ndim(index) == 0 else out
