"""Fixed-length bit packing of per-output codeword indices (quantized CSI feedback).

The bitstream of one sample (one CSI matrix) is the binary representation of its M
codeword indices, output after output, each written with exactly ``B_m`` bits, most
significant bit first (the bitstream ``x`` of the CSI-feedback paper, Section II)::

    [crc16 (2 bytes, big endian), only with crc=True] | i_1 (B_1 bits) | i_2 (B_2 bits) | ... | zero padding

* The payload holds exactly ``Σ_m B_m`` bits; it is padded with zero bits to a whole number
  of bytes (at most 7 padding bits), because a byte string is what a feedback link and a
  file carry. :func:`stream_bits` reports the real length in bits, padding and CRC included;
  experiments report that number.
* ``B_m = 0`` (a constant output whose single codeword needs no bits) writes nothing; its
  index is always 0. Indices must satisfy ``0 <= i_m < 2^{B_m}``; ``0 <= B_m <= 32``.
* **Errors.** A stream of the wrong length (empty, truncated, too long) and nonzero padding
  bits raise :class:`~chanlab.core.errors.BitstreamError`. A fixed-length code has no
  redundancy, so a flipped payload bit cannot be detected without extra bits: it decodes to
  another valid index. ``crc=True`` prepends a CRC-16/CCITT (``binascii.crc_hqx``
  polynomial 0x1021) of the payload, seeded with a fingerprint of the bit allocation; then
  every single-bit flip (indeed every error burst of up to 16 bits) and a stream read with
  another allocation of the same length raise ``BitstreamError`` (a random corruption slips
  through with probability 2^-16). The CRC costs 16 bits per stream.

Everything is vectorized over samples: indices become a ``[n, Σ B_m]`` bit matrix that
``np.packbits`` turns into bytes, and the CRC runs over byte columns for all samples at once
(chunks of samples bound the memory of the bit matrix).
"""

from __future__ import annotations

import binascii
from collections.abc import Sequence

import numpy as np
import torch

from chanlab.core.errors import BitstreamError, DataError

CRC_BYTES = 2
MAX_BITS_PER_INDEX = 32
# Cells of the [chunk, Σ B_m] int64 work matrix per chunk (~32 MiB): big enough to amortize
# numpy's per-call cost, small enough for n = 10^5 samples of 2048 bits.
_CHUNK_CELLS = 1 << 22


def _check_bits(bits) -> np.ndarray:
    """``bits`` as an int64 ``[M]`` array with ``0 <= B_m <= 32`` (DataError otherwise)."""
    if isinstance(bits, torch.Tensor):
        bits = bits.detach().cpu().numpy()
    arr = np.asarray(bits)
    if arr.ndim != 1 or not (np.issubdtype(arr.dtype, np.integer) or arr.size == 0):
        raise DataError(f"bits: expected a 1-D integer array [M], got {arr.dtype} {list(arr.shape)}")
    arr = arr.astype(np.int64)
    if arr.size and (arr.min() < 0 or arr.max() > MAX_BITS_PER_INDEX):
        raise DataError(f"bits: expected 0 <= B_m <= {MAX_BITS_PER_INDEX}, got [{arr.min()}, {arr.max()}]")
    return arr


def stream_bits(bits, crc: bool = False) -> int:
    """Real length in bits of one stream written by :func:`pack_indices`.

    ``8 * ceil(Σ B_m / 8)`` (the payload padded to whole bytes), plus 16 with ``crc=True``.
    """
    bits = _check_bits(bits)
    return 8 * (_payload_bytes(bits) + (CRC_BYTES if crc else 0))


def _payload_bytes(bits: np.ndarray) -> int:
    return (int(bits.sum()) + 7) // 8


def _layout(bits: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For each of the Σ B_m bit columns: its output m and its shift (MSB first)."""
    owner = np.repeat(np.arange(bits.size), bits)
    start = np.cumsum(bits) - bits                      # first column of each output
    pos = np.arange(owner.size) - start[owner]          # 0 .. B_m - 1 within the output
    shift = bits[owner] - 1 - pos
    return owner, shift


def _chunks(n: int, width: int):
    step = max(1, _CHUNK_CELLS // max(width, 1))
    for lo in range(0, n, step):
        yield slice(lo, min(n, lo + step))


def _crc_table() -> np.ndarray:
    table = np.zeros(256, dtype=np.uint16)
    for byte in range(256):
        crc = byte << 8
        for _ in range(8):
            crc = ((crc << 1) ^ 0x1021) if crc & 0x8000 else (crc << 1)
        table[byte] = crc & 0xFFFF
    return table


_CRC_TABLE = _crc_table()


def _fingerprint(bits: np.ndarray) -> int:
    """CRC seed: the allocation itself, so a stream read with another allocation fails."""
    return binascii.crc_hqx(bits.astype("<u1").tobytes() + int(bits.size).to_bytes(4, "little"), 0xFFFF)


def _crc16(payload: np.ndarray, seed: int) -> np.ndarray:
    """CRC-16/CCITT (= ``binascii.crc_hqx``) of each row of ``payload`` ``[n, n_bytes]`` uint8.

    Table-driven, one step per byte column for all rows at once (no per-sample loop).
    """
    crc = np.full(payload.shape[0], seed, dtype=np.uint16)
    for col in range(payload.shape[1]):
        crc = (crc << np.uint16(8)) ^ _CRC_TABLE[(crc >> np.uint16(8)) ^ payload[:, col]]
    return crc


def pack_indices(indices, bits, crc: bool = False) -> list[bytes]:
    """Pack codeword indices into one byte string per sample.

    Args:
        indices: ``[n, M]`` integer array or tensor, ``0 <= indices[:, m] < 2^{bits[m]}``.
        bits: ``[M]`` integers ``B_m`` in ``[0, 32]``.
        crc: prepend a 2-byte CRC-16 (detects bit flips; see the module docstring).

    Returns:
        ``n`` byte strings, each ``stream_bits(bits, crc) / 8`` bytes long: ``Σ B_m`` payload
        bits, MSB first, zero-padded to whole bytes.

    Raises:
        DataError: wrong shapes or dtypes, or an index outside ``[0, 2^{B_m})``.
    """
    bits = _check_bits(bits)
    if isinstance(indices, torch.Tensor):
        if indices.is_floating_point() or indices.is_complex():
            raise DataError(f"indices: expected an integer tensor, got {indices.dtype}")
        indices = indices.detach().cpu().numpy()
    idx = np.asarray(indices)
    if idx.ndim != 2 or idx.shape[1] != bits.size or not (np.issubdtype(idx.dtype, np.integer) or idx.size == 0):
        raise DataError(f"indices: expected an integer array [n, M = {bits.size}], "
                        f"got {idx.dtype} {list(idx.shape)}")
    # Unsigned values >= 2^63 would wrap to negatives in the int64 cast: clip them first
    # (any value above 2^32 is out of range anyway, and stays out of range after the clip).
    if idx.dtype.kind == "u" and idx.size:
        idx = np.minimum(idx, np.uint64(1) << np.uint64(MAX_BITS_PER_INDEX + 1))
    idx = idx.astype(np.int64)
    if idx.size:
        bad = (idx < 0) | (idx >= (np.int64(1) << bits)[None, :])
        if bad.any():
            i, m = (int(v) for v in np.argwhere(bad)[0])
            raise DataError(f"indices: index {np.asarray(indices)[i, m]} of sample {i}, output {m} is "
                            f"outside [0, 2^{bits[m]}) for its B_m = {bits[m]} bits")
    n = idx.shape[0]
    owner, shift = _layout(bits)
    n_bytes = _payload_bytes(bits)
    payload = np.empty((n, n_bytes), dtype=np.uint8)
    for rows in _chunks(n, owner.size) if n_bytes else ():
        bitmat = ((idx[rows][:, owner] >> shift) & 1).astype(np.uint8)
        payload[rows] = np.packbits(bitmat, axis=1, bitorder="big").reshape(-1, n_bytes)
    if crc:
        check = _crc16(payload, _fingerprint(bits))
        header = np.stack([check >> np.uint16(8), check & np.uint16(0xFF)], axis=1).astype(np.uint8)
        payload = np.concatenate([header, payload], axis=1)
    buf, width = payload.tobytes(), payload.shape[1]
    return [buf[i * width:(i + 1) * width] for i in range(n)]


def unpack_indices(streams: Sequence[bytes], bits, crc: bool = False) -> torch.Tensor:
    """Inverse of :func:`pack_indices`: ``[n, M]`` int64 tensor of codeword indices.

    Args:
        streams: ``n`` byte strings written by :func:`pack_indices` with the same ``bits``
            and ``crc``.
        bits: ``[M]`` integers ``B_m``.
        crc: whether the streams carry the CRC-16 header.

    Raises:
        BitstreamError: a stream is not bytes, has the wrong length (empty, truncated, too
            long), has nonzero padding bits, or (``crc=True``) fails its checksum.
    """
    bits = _check_bits(bits)
    n_bytes = _payload_bytes(bits)
    expect = n_bytes + (CRC_BYTES if crc else 0)
    if isinstance(streams, (bytes, bytearray, memoryview)):
        raise BitstreamError("streams: expected a sequence of byte strings (one per sample), got one bytes object")
    for i, s in enumerate(streams):
        if not isinstance(s, (bytes, bytearray, memoryview)):
            raise BitstreamError(f"stream {i}: expected bytes, got {type(s).__name__}")
        if len(s) != expect:
            raise BitstreamError(f"stream {i}: expected {expect} bytes ({int(bits.sum())} payload bits"
                                 f"{' + CRC-16' if crc else ''}, padded to bytes), got {len(s)} "
                                 f"(empty, truncated, too long or another allocation)")
    n = len(streams)
    raw = np.frombuffer(b"".join(bytes(s) for s in streams), dtype=np.uint8).reshape(n, expect)
    payload = raw[:, CRC_BYTES:] if crc else raw
    if crc and n:
        stored = (raw[:, 0].astype(np.uint16) << np.uint16(8)) | raw[:, 1].astype(np.uint16)
        bad = np.flatnonzero(stored != _crc16(payload, _fingerprint(bits)))
        if bad.size:
            raise BitstreamError(f"stream {int(bad[0])}: checksum mismatch ({bad.size} of {n} streams; "
                                 f"corrupted, or written with another bit allocation)")
    n_pad = 8 * n_bytes - int(bits.sum())
    if n_pad and n and (payload[:, -1] & np.uint8((1 << n_pad) - 1)).any():
        i = int(np.flatnonzero(payload[:, -1] & np.uint8((1 << n_pad) - 1))[0])
        raise BitstreamError(f"stream {i}: nonzero padding bits (corrupted, or written with another allocation)")
    owner, shift = _layout(bits)
    out = np.zeros((n, bits.size), dtype=np.int64)
    used = np.flatnonzero(bits > 0)           # B_m = 0 outputs own no columns; their index is 0
    if used.size:
        starts = (np.cumsum(bits) - bits)[used]
        weight = np.int64(1) << shift
        for rows in _chunks(n, owner.size):
            bitmat = np.unpackbits(payload[rows], axis=1, count=owner.size, bitorder="big")
            out[rows][:, used] = np.add.reduceat(bitmat.astype(np.int64) * weight, starts, axis=1)
    return torch.from_numpy(out)
