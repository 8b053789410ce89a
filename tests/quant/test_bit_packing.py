"""Bit packing of codeword indices: exact round trips, exact lengths, and loud failures.

A fixed-length code has no redundancy, so without the CRC only wrong lengths and nonzero
padding can be detected; with ``crc=True`` every single-bit flip must raise.
"""

import binascii

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from chanlab.core.errors import BitstreamError, DataError
from chanlab.quant import bit_packing
from chanlab.quant.bit_packing import CRC_BYTES, pack_indices, stream_bits, unpack_indices


def _random_case(rng, n, m, max_bits=12):
    bits = rng.integers(0, max_bits + 1, size=m)
    idx = rng.integers(0, 2**bits, size=(n, m))
    return bits, idx


def _reference_bits(idx_row, bits) -> str:
    """The payload as a '0'/'1' string, built the slow obvious way (MSB first)."""
    return "".join(format(int(i), f"0{b}b") if b else "" for i, b in zip(idx_row, bits))


@settings(max_examples=60, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), n=st.integers(0, 12), m=st.integers(1, 24), crc=st.booleans())
def test_round_trip_random_allocations(seed, n, m, crc):
    rng = np.random.default_rng(seed)
    bits, idx = _random_case(rng, n, m)
    bits[rng.random(m) < 0.2] = 0                        # B_m = 0 outputs are allowed
    idx[:, bits == 0] = 0
    streams = pack_indices(idx, bits, crc=crc)
    assert len(streams) == n
    assert all(len(s) * 8 == stream_bits(bits, crc) for s in streams)
    back = unpack_indices(streams, bits, crc=crc)
    assert back.dtype == torch.int64 and back.shape == (n, m)
    assert np.array_equal(back.numpy(), idx)


def test_payload_is_msb_first_concatenation_with_zero_padding():
    rng = np.random.default_rng(1)
    bits, idx = _random_case(rng, 5, 9)
    bits[3] = 0
    idx[:, 3] = 0
    for stream, row in zip(pack_indices(idx, bits), idx):
        ref = _reference_bits(row, bits)
        ref += "0" * (-len(ref) % 8)
        assert "".join(format(byte, "08b") for byte in stream) == ref


def test_full_width_indices_and_torch_input():
    bits = np.array([32, 1, 31, 0])
    idx = np.array([[2**32 - 1, 1, 2**31 - 1, 0], [0, 0, 0, 0], [123456789, 1, 5, 0]])
    streams = pack_indices(torch.from_numpy(idx), torch.from_numpy(bits))
    assert len(streams[0]) == 8                          # 64 bits exactly, no padding
    assert np.array_equal(unpack_indices(streams, bits).numpy(), idx)


def test_chunked_path_matches(monkeypatch):
    rng = np.random.default_rng(2)
    bits, idx = _random_case(rng, 50, 7)
    whole = pack_indices(idx, bits, crc=True)
    monkeypatch.setattr(bit_packing, "_CHUNK_CELLS", 20)  # a few samples per chunk
    assert pack_indices(idx, bits, crc=True) == whole
    assert np.array_equal(unpack_indices(whole, bits, crc=True).numpy(), idx)


def test_stream_bits():
    assert stream_bits([3, 3, 2]) == 8
    assert stream_bits([3, 3, 3]) == 16                  # 9 bits padded to 2 bytes
    assert stream_bits([3, 3, 3], crc=True) == 32
    assert stream_bits([0, 0]) == 0
    assert stream_bits([0, 0], crc=True) == 8 * CRC_BYTES


def test_zero_bit_allocation():
    bits = np.zeros(4, dtype=np.int64)
    streams = pack_indices(np.zeros((3, 4), dtype=np.int64), bits)
    assert streams == [b"", b"", b""]
    assert unpack_indices(streams, bits).shape == (3, 4)
    with pytest.raises(BitstreamError):
        unpack_indices([b"\x00"], bits)
    assert unpack_indices([], bits).shape == (0, 4)


@pytest.mark.parametrize("crc", [False, True])
def test_wrong_lengths_raise(crc):
    rng = np.random.default_rng(3)
    bits, idx = _random_case(rng, 4, 10)
    bits[0] = 5                                          # at least one payload byte
    idx[:, 0] %= 32
    streams = pack_indices(idx, bits, crc=crc)
    assert len(streams[0]) > 2
    for bad in (streams[0][:-1], streams[0] + b"\x00", b"", streams[0][:1]):
        with pytest.raises(BitstreamError, match="stream 1"):
            unpack_indices([streams[0], bad, streams[2]], bits, crc=crc)
    with pytest.raises(BitstreamError):
        unpack_indices([streams[0], "not bytes"], bits, crc=crc)
    with pytest.raises(BitstreamError):
        unpack_indices(streams[0], bits, crc=crc)       # one bytes object, not a list


def test_nonzero_padding_raises():
    bits = np.array([3, 2])                              # 5 bits, 3 padding bits
    (stream,) = pack_indices(np.array([[5, 2]]), bits)
    assert unpack_indices([stream], bits).tolist() == [[5, 2]]
    with pytest.raises(BitstreamError, match="padding"):
        unpack_indices([bytes([stream[0] | 1])], bits)


def test_out_of_range_indices_raise_on_pack():
    bits = np.array([2, 0, 3])
    with pytest.raises(DataError, match="output 0"):
        pack_indices(np.array([[4, 0, 0]]), bits)
    with pytest.raises(DataError, match="output 1"):
        pack_indices(np.array([[0, 1, 0]]), bits)      # B_m = 0 admits only index 0
    with pytest.raises(DataError):
        pack_indices(np.array([[0, 0, -1]]), bits)
    with pytest.raises(DataError):
        pack_indices(np.array([[2**64 - 1, 0, 0]], dtype=np.uint64), bits)
    with pytest.raises(DataError):
        pack_indices(np.array([[0.0, 0.0, 0.0]]), bits)
    with pytest.raises(DataError):
        pack_indices(np.zeros((1, 2), dtype=np.int64), bits)
    with pytest.raises(DataError):
        stream_bits([33])


def test_without_crc_a_payload_flip_is_silent():
    """Documented limitation: a fixed-length code decodes a flipped bit to another index."""
    bits = np.array([4, 4])
    (stream,) = pack_indices(np.array([[3, 9]]), bits)
    flipped = bytes([stream[0] ^ 0x10])
    assert unpack_indices([flipped], bits).tolist() == [[2, 9]]


def test_crc_detects_every_single_bit_flip():
    rng = np.random.default_rng(4)
    bits, idx = _random_case(rng, 3, 6, max_bits=9)
    streams = pack_indices(idx, bits, crc=True)
    for s_i in range(len(streams)):
        s = bytearray(streams[s_i])
        for pos in range(8 * len(s)):
            bad = bytearray(s)
            bad[pos // 8] ^= 0x80 >> (pos % 8)
            corrupted = list(streams)
            corrupted[s_i] = bytes(bad)
            with pytest.raises(BitstreamError):
                unpack_indices(corrupted, bits, crc=True)


def test_crc_matches_binascii_and_binds_the_allocation():
    rng = np.random.default_rng(5)
    bits, idx = _random_case(rng, 6, 8)
    streams = pack_indices(idx, bits, crc=True)
    seed = bit_packing._fingerprint(bits)
    for s in streams:
        assert int.from_bytes(s[:CRC_BYTES], "big") == binascii.crc_hqx(s[CRC_BYTES:], seed)
    # Same stream length, another allocation: the CRC seed differs.
    other = bits.copy()
    j = int(np.argmax(other))
    other[j] -= 1
    other[(j + 1) % other.size] += 1
    assert stream_bits(other, True) == stream_bits(bits, True)
    with pytest.raises(BitstreamError, match="checksum"):
        unpack_indices(streams, other, crc=True)
