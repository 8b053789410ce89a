"""Range coding: exact round trips (escapes included), near-ideal length, and loud failures.

A range decoder decodes *any* words to some symbols, so the tests that matter most are the
ones where the stream is wrong: truncated, bit-flipped, read with another model or shape.
Those must raise ``BitstreamError``; they must never return garbage or leak a constriction
exception.
"""

import binascii
import math
import time

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from chanlab.core.errors import BitstreamError, ChanlabError, DataError
from chanlab.quant.range_coding import (
    BATCH_CRC_BYTES,
    DEFAULT_BLOCK,
    HEADER_BYTES,
    MAX_BATCH_ITEMS,
    CodingTables,
    decode_batch,
    decode_symbols,
    encode_batch,
    encode_symbols,
    read_batch_layout,
)

INT32_MIN, INT32_MAX = -(2**31), 2**31 - 1


def _tables(rng, n_channels, width, alpha=1.0, spread=1000):
    offsets = rng.integers(-spread, spread + 1, size=n_channels)
    return CodingTables(offsets, rng.dirichlet(np.full(width + 1, alpha), size=n_channels))


def _sample(rng, tables, channel, n_streams):
    """Values drawn from the tables' own distribution (escapes land outside the window)."""
    n = channel.size
    cum = np.cumsum(tables.pmf[channel], axis=1)
    u = rng.random((n_streams, n, 1))
    idx = np.minimum((u > cum[None]).sum(-1), tables.width)
    lo = tables.offsets[channel][None, :]
    below = rng.random((n_streams, n)) < 0.5
    escape = np.where(below, lo - 1 - rng.integers(0, 1000, (n_streams, n)),
                      lo + tables.width + rng.integers(0, 1000, (n_streams, n)))
    return np.where(idx == 0, escape, lo + idx - 1)


def _crc(payload, tables, n_symbols):
    """The header as the format documents it: CRC-16/CCITT of the payload seeded with the
    tables' fingerprint and the symbol count (written out here, not imported)."""
    seed = binascii.crc_hqx(int(n_symbols).to_bytes(8, "little"), tables.fingerprint())
    return binascii.crc_hqx(payload, seed).to_bytes(HEADER_BYTES, "big")


def _timed_decode(streams, channel, tables):
    """Decode, asserting that the call (success or failure) takes < 50 ms."""
    t0 = time.perf_counter()
    try:
        return decode_symbols(streams, channel, tables)
    finally:
        assert time.perf_counter() - t0 < 0.05


@pytest.fixture(scope="module")
def short():
    """A short stream (a few words) and what wrote it."""
    rng = np.random.default_rng(7)
    tables = _tables(rng, 2, 6)
    channel = np.arange(24) % 2
    values = _sample(rng, tables, channel, 1)
    values[0, 3] = INT32_MAX  # one escape
    stream = encode_symbols(values, channel, tables)[0]
    assert np.array_equal(decode_symbols([stream], channel, tables), values)
    return stream, channel, tables


# ----- round trips --------------------------------------------------------------------------

extreme = st.sampled_from([INT32_MIN, INT32_MIN + 1, -(2**16), -1, 0, 1, 2**16 - 1, 2**16, INT32_MAX - 1,
                           INT32_MAX])


@settings(max_examples=60, deadline=None)
@given(n_channels=st.integers(1, 4), width=st.integers(1, 40), n_streams=st.integers(1, 3),
       n_symbols=st.integers(0, 300), alpha=st.sampled_from([0.05, 0.5, 1.0, 20.0]),
       far=st.lists(st.one_of(extreme, st.integers(INT32_MIN, INT32_MAX)), max_size=12),
       seed=st.integers(0, 2**32 - 1))
def test_round_trip_is_exact(n_channels, width, n_streams, n_symbols, alpha, far, seed):
    # alpha = 0.05 gives rows with many (numerically) zero entries: still codable.
    rng = np.random.default_rng(seed)
    tables = _tables(rng, n_channels, width, alpha)
    channel = rng.integers(0, n_channels, size=n_symbols)
    values = _sample(rng, tables, channel, n_streams)
    if n_symbols:
        for v in far:  # arbitrary int32 values at random places, mostly escapes
            values[rng.integers(n_streams), rng.integers(n_symbols)] = v
    streams = encode_symbols(values, channel, tables)
    assert len(streams) == n_streams and all(isinstance(s, bytes) for s in streams)
    assert all((len(s) - HEADER_BYTES) % 4 == 0 for s in streams)
    back = decode_symbols(streams, channel, tables)
    assert back.dtype == np.int64 and np.array_equal(back, values)


def test_round_trip_accepts_any_integer_dtype_and_buffer_type():
    rng = np.random.default_rng(1)
    tables = _tables(rng, 1, 9, spread=0)
    channel = np.zeros(50, dtype=np.int64)
    values = rng.integers(-20, 20, size=(2, 50))
    for dtype in (np.int8, np.int16, np.int32, np.int64, np.uint64):
        v = np.abs(values).astype(dtype) if dtype == np.uint64 else values.astype(dtype)
        streams = encode_symbols(v, channel, tables)
        for wrap in (bytes, bytearray, memoryview):
            assert np.array_equal(decode_symbols([wrap(s) for s in streams], channel, tables), v)


def test_zero_symbols_and_zero_streams():
    tables = _tables(np.random.default_rng(2), 2, 4)
    channel = np.zeros(0, dtype=np.int64)
    streams = encode_symbols(np.zeros((3, 0), dtype=np.int64), channel, tables)
    assert [len(s) for s in streams] == [HEADER_BYTES] * 3
    assert decode_symbols(streams, channel, tables).shape == (3, 0)
    assert encode_symbols(np.zeros((0, 5), dtype=np.int64), np.zeros(5, int), tables) == []
    assert decode_symbols([], np.zeros(5, int), tables).shape == (0, 5)


# ----- code length --------------------------------------------------------------------------

@pytest.mark.parametrize("n_channels,width,alpha", [(1, 2, 1.0), (3, 16, 0.3), (4, 40, 1.0), (2, 40, 20.0),
                                                    (2, 8, 0.05)])
def test_length_is_close_to_ideal(n_channels, width, alpha):
    rng = np.random.default_rng(width + n_channels)
    tables = _tables(rng, n_channels, width, alpha)
    channel = rng.integers(0, n_channels, size=2000)
    values = _sample(rng, tables, channel, 8)
    ideal = tables.bits(values, channel) / 8
    real = np.array([len(s) for s in encode_symbols(values, channel, tables)])
    assert (real <= ideal * 1.02 + 8).all(), (real, ideal)
    # and nothing is lost: over 8 streams the coder cannot beat the model
    assert real.sum() >= 0.99 * ideal.sum()


def test_ideal_bits_match_closed_form():
    # Monte Carlo: the mean ideal length per symbol is the entropy of the table (in bits),
    # with escapes costing -log2 p_escape + 32.
    rng = np.random.default_rng(3)
    tables = _tables(rng, 1, 12)
    channel = np.zeros(20000, dtype=np.int64)
    values = _sample(rng, tables, channel, 1)
    p = tables.pmf[0]
    entropy = -(p * np.log2(p)).sum() + 32 * p[0]
    per_symbol = tables.bits(values, channel)[0] / channel.size
    sd = math.sqrt(((np.log2(p) + entropy) ** 2 * p).sum() + 32**2 * p[0]) / math.sqrt(channel.size)
    assert abs(per_symbol - entropy) < 5 * sd
    # bits() of single symbols is exactly -log2 of the table entry
    lo = int(tables.offsets[0])
    one = np.arange(lo - 1, lo + tables.width + 1)[:, None]
    expected = -np.log2(p[np.r_[0, 1:tables.width + 1, 0]]) + 32 * np.r_[1, np.zeros(tables.width), 1]
    np.testing.assert_allclose(tables.bits(one, np.zeros(1, int)), expected)


# ----- from_cdf -----------------------------------------------------------------------------

def _laplace_cdf(x, mu, b):
    x = np.asarray(x, dtype=np.float64)
    return np.where(x < mu, 0.5 * np.exp((x - mu) / b), 1 - 0.5 * np.exp(-(x - mu) / b))


def test_from_cdf_on_discretized_laplace():
    # Laplace(mu, b) with integer mu: P(n) = 1 - exp(-1/(2b)) at n = mu and
    # 1/2 exp(-(|n-mu| - 1/2)/b) (1 - exp(-1/b)) elsewhere; the escape takes both tails,
    # exp(-(R + 1/2)/b) for the window [mu - R, mu + R].
    mus, bs, radius = np.array([0, 7]), np.array([0.8, 3.0]), 10
    offsets = mus - radius
    edges = offsets[:, None] - 0.5 + np.arange(2 * radius + 2)[None, :]
    tables = CodingTables.from_cdf(offsets, _laplace_cdf(edges, mus[:, None], bs[:, None]))
    assert tables.width == 2 * radius + 1
    for c, (mu, b) in enumerate(zip(mus, bs)):
        n = np.arange(-radius, radius + 1)
        closed = np.where(n == 0, 1 - np.exp(-0.5 / b), 0.5 * np.exp(-(np.abs(n) - 0.5) / b) * (1 - np.exp(-1 / b)))
        np.testing.assert_allclose(tables.pmf[c, 1:], closed, rtol=1e-12, atol=1e-15)
        # (1 - F at the last edge loses ~1e-17 absolute to cancellation)
        np.testing.assert_allclose(tables.pmf[c, 0], np.exp(-(radius + 0.5) / b), rtol=1e-9, atol=1e-16)
        assert math.isclose(tables.pmf[c].sum(), 1.0, rel_tol=1e-14)


def test_from_cdf_keeps_a_minimum_escape_and_clips():
    # A CDF with no mass outside the window still leaves escapes codable.
    cdf = np.array([[0.0, 0.25, 0.75, 1.0], [-0.1, 0.5, 0.5, 1.2]])  # second row: out of [0, 1]
    tables = CodingTables.from_cdf(np.array([0, 0]), cdf, min_escape=1e-6)
    np.testing.assert_allclose(tables.pmf[0], np.array([1e-6, 0.25, 0.5, 0.25]) / (1 + 1e-6))
    np.testing.assert_allclose(tables.pmf[1], np.array([1e-6, 0.5, 0.0, 0.5]) / (1 + 1e-6))
    values = np.array([[-5, 0, 2, 99]])
    channel = np.array([0, 1, 1, 0])
    assert np.array_equal(decode_symbols(encode_symbols(values, channel, tables), channel, tables), values)


# ----- corrupt streams ----------------------------------------------------------------------

def test_every_truncation_raises(short):
    stream, channel, tables = short
    for n in range(len(stream)):
        with pytest.raises(BitstreamError):
            _timed_decode([stream[:n]], channel, tables)
    # random cuts of a long stream, from either end
    rng = np.random.default_rng(4)
    long_tables = _tables(rng, 3, 20)
    long_channel = rng.integers(0, 3, size=2000)
    long_stream = encode_symbols(_sample(rng, long_tables, long_channel, 1), long_channel, long_tables)[0]
    for cut in rng.integers(1, len(long_stream), size=40):
        for piece in (long_stream[:cut], long_stream[:HEADER_BYTES] + long_stream[HEADER_BYTES + cut:]):
            with pytest.raises(BitstreamError):
                _timed_decode([piece], long_channel, long_tables)


def test_every_single_bit_flip_raises(short):
    # CRC-16 detects every single-bit error, in the payload and in the header itself.
    stream, channel, tables = short
    for bit in range(8 * len(stream)):
        corrupt = bytearray(stream)
        corrupt[bit // 8] ^= 1 << (bit % 8)
        with pytest.raises(BitstreamError, match="checksum"):
            _timed_decode([bytes(corrupt)], channel, tables)


@pytest.mark.parametrize("bad", [b"", bytearray(), b"\x00", b"\x00\x00", b"\x00" * 6, "abcdef", None, 123,
                                 [1, 2, 3]])
def test_empty_and_non_bytes_raise(short, bad):
    _, channel, tables = short
    with pytest.raises(BitstreamError):
        decode_symbols([bad], channel, tables)


def test_one_bad_stream_among_good_ones_raises_and_names_it(short):
    stream, channel, tables = short
    with pytest.raises(BitstreamError, match="stream 2"):
        decode_symbols([stream, stream, stream[:-4], stream], channel, tables)


def test_other_tables_or_shape_raise(short):
    stream, channel, tables = short
    other_pmf = CodingTables(tables.offsets, tables.pmf[::-1])
    shifted = CodingTables(tables.offsets + 1, tables.pmf)
    nudged_pmf = tables.pmf.copy()
    nudged_pmf[0, 1:3] += [1e-3, -1e-3]
    nudged = CodingTables(tables.offsets, nudged_pmf)
    for other in (other_pmf, shifted, nudged):
        with pytest.raises(BitstreamError):
            decode_symbols([stream], channel, other)
    for n in (channel.size - 1, channel.size + 1, channel.size * 2, 1):
        with pytest.raises(BitstreamError):
            decode_symbols([stream], np.arange(n) % 2, tables)


def test_random_mutations_raise_or_decode_fast(short):
    """Fuzz: bit flips, byte deletions, insertions and overwrites, 300 mutants."""
    stream, channel, tables = short
    rng = np.random.default_rng(5)
    decoded = 0
    for _ in range(300):
        data = bytearray(stream)
        for _ in range(rng.integers(1, 4)):
            op = rng.integers(4)
            pos = int(rng.integers(0, len(data) + 1))
            if op == 0 and data:
                bit = int(rng.integers(8 * len(data)))
                data[bit // 8] ^= 1 << (bit % 8)
            elif op == 1 and data:
                del data[min(pos, len(data) - 1):min(pos, len(data) - 1) + int(rng.integers(1, 5))]
            elif op == 2:
                data[pos:pos] = rng.integers(0, 256, size=int(rng.integers(1, 5)), dtype=np.uint8).tobytes()
            elif data:
                data[min(pos, len(data) - 1)] = int(rng.integers(256))
        if bytes(data) == stream:
            continue
        try:
            out = _timed_decode([bytes(data)], channel, tables)
        except BitstreamError:
            continue
        decoded += 1  # a 2^-16 CRC miss: tolerated, but must still be well-formed
        assert out.shape == (1, channel.size) and out.dtype == np.int64
    assert decoded <= 1


def test_payload_that_fools_the_crc_still_raises_a_chanlab_error():
    # A corruption that the CRC misses (probability 2^-16) reaches the range decoder, which
    # may then reject the words itself; that must surface as BitstreamError (or decode).
    rng = np.random.default_rng(6)
    tables = _tables(rng, 2, 7)
    channel = np.arange(300) % 2
    outcomes = {"decoded": 0, "raised": 0}
    for _ in range(300):
        payload = rng.integers(0, 256, size=4 * int(rng.integers(1, 40)), dtype=np.uint8).tobytes()
        try:
            out = _timed_decode([_crc(payload, tables, channel.size) + payload], channel, tables)
        except BitstreamError:
            outcomes["raised"] += 1
        else:
            outcomes["decoded"] += 1
            assert out.shape == (1, 300)
    assert outcomes["raised"] > 0


def test_header_is_the_documented_crc(short):
    stream, channel, tables = short
    assert stream[:HEADER_BYTES] == _crc(stream[HEADER_BYTES:], tables, channel.size)


# ----- invalid inputs -----------------------------------------------------------------------

@pytest.mark.parametrize("values", [
    np.array([[0.0, 1.0]]),
    np.array([[True, False]]),
    np.array([["a", "b"]]),
    np.array([0, 1]),  # 1-D
    np.zeros((1, 1, 2), dtype=np.int64),
    np.array([[0, 2**31]]),
    np.array([[-(2**31) - 1, 0]]),
    np.array([[0, 2**64 - 1]], dtype=np.uint64),  # must not wrap to -1
    np.array([[0, 2**63]], dtype=np.uint64),
])
def test_invalid_values_raise_data_error(values):
    tables = CodingTables(np.array([0]), np.array([[0.1, 0.9]]))
    with pytest.raises(DataError):
        encode_symbols(values, np.zeros(values.shape[-1], dtype=np.int64), tables)


def test_bad_channel_map_raises_data_error():
    tables = CodingTables(np.array([0, 0]), np.full((2, 3), 1 / 3))
    values = np.zeros((1, 4), dtype=np.int64)
    for channel in (np.zeros(3, int), np.zeros(5, int), np.zeros((2, 2), int), np.array([0, 1, 2, 0]),
                    np.array([0, -1, 0, 0])):
        with pytest.raises(DataError, match="channel"):
            encode_symbols(values, channel, tables)
    streams = encode_symbols(values, np.zeros(4, int), tables)
    for channel in (np.zeros((2, 2), int), np.array([0, 1, 2, 0]), np.array([0, -1, 0, 0])):
        with pytest.raises(DataError, match="channel"):
            decode_symbols(streams, channel, tables)


@pytest.mark.parametrize("offsets,pmf", [
    ([0], [[0.5, 0.6]]),                 # row sums to 1.1
    ([0, 0], [[0.5, 0.5], [0.2, 0.2]]),  # second row sums to 0.4
    ([0], [[1.5, -0.5]]),                # negative
    ([0], [[np.nan, 1.0]]),
    ([0], [[np.inf, 0.0]]),
    ([0], [[1.0]]),                      # no window at all (width 0)
    ([0, 1], [[0.5, 0.5]]),              # offsets and rows disagree
    ([[0]], [[0.5, 0.5]]),               # offsets not 1-D
    ([0], [0.5, 0.5]),                   # pmf not 2-D
])
def test_invalid_tables_raise_data_error(offsets, pmf):
    with pytest.raises(DataError):
        CodingTables(np.array(offsets), np.array(pmf, dtype=np.float64))


def test_errors_are_chanlab_errors_and_fingerprint_tracks_tables():
    assert issubclass(BitstreamError, ChanlabError) and issubclass(DataError, ChanlabError)
    rng = np.random.default_rng(8)
    a = _tables(rng, 2, 5)
    same = CodingTables(a.offsets.copy(), a.pmf.copy())
    assert a.fingerprint() == same.fingerprint()
    assert 0 <= a.fingerprint() < 2**16
    assert a.fingerprint() != CodingTables(a.offsets + 1, a.pmf).fingerprint()


# ----- CRC-free per-sample streams and batch streams -------------------------------------------
#
# Without CRC a per-sample stream is one byte-granular, prefix-free segment; a batch stream is
# [crc32] version | varint N | varint K | width | index | segments (module docstring).

def _gauss_tables(stds, radius=6):
    """Rounded zero-mean Gaussians (the shape of a trained prior's tables)."""
    from math import erf

    edges = np.arange(-radius, radius + 2) - 0.5
    cdf = np.array([[0.5 * (1 + erf(e / (s * math.sqrt(2)))) for e in edges] for s in stds])
    return CodingTables.from_cdf(np.full(len(stds), -radius), cdf)


@pytest.fixture(scope="module")
def batch():
    """16 samples of 60 symbols (two escapes), their tables and channel map."""
    rng = np.random.default_rng(11)
    tables = _tables(rng, 3, 6)
    channel = np.arange(60) % 3
    values = _sample(rng, tables, channel, 16)
    values[2, 5], values[9, 0] = INT32_MIN, INT32_MAX
    return values, channel, tables


def _reference_layout(data, crc):
    """The documented batch layout, parsed independently of the module."""
    pos = BATCH_CRC_BYTES if crc else 0
    assert data[pos] == 1
    pos += 1
    numbers = []
    for _ in range(2):
        value, shift = 0, 0
        while True:
            byte = data[pos]
            pos += 1
            value |= (byte & 0x7F) << shift
            shift += 7
            if not byte & 0x80:
                break
        numbers.append(value)
    n_items, block = numbers
    width = data[pos]
    pos += 1
    n_seg = -(-n_items // block)
    bits = "".join(f"{b:08b}" for b in data[pos:pos + -(-n_seg * width // 8)])
    lengths = [int(bits[i * width:(i + 1) * width], 2) for i in range(n_seg)] if width else [0] * n_seg
    pos += -(-n_seg * width // 8)
    return n_items, block, lengths, pos


@settings(max_examples=40, deadline=None)
@given(n_channels=st.integers(1, 3), width=st.integers(1, 30), n_items=st.integers(0, 40),
       n_symbols=st.integers(0, 80), block=st.integers(1, 50), alpha=st.sampled_from([0.05, 1.0, 20.0]),
       far=st.lists(st.one_of(extreme, st.integers(INT32_MIN, INT32_MAX)), max_size=6),
       seed=st.integers(0, 2**32 - 1))
def test_crc_free_and_batch_round_trips_are_exact(n_channels, width, n_items, n_symbols, block, alpha, far, seed):
    rng = np.random.default_rng(seed)
    tables = _tables(rng, n_channels, width, alpha)
    channel = rng.integers(0, n_channels, size=n_symbols)
    values = _sample(rng, tables, channel, n_items)
    if n_symbols and n_items:
        for v in far:
            values[rng.integers(n_items), rng.integers(n_symbols)] = v
    bare = encode_symbols(values, channel, tables, crc=False)
    assert np.array_equal(decode_symbols(bare, channel, tables, crc=False), values)
    for crc in (True, False):
        data = encode_batch(values, channel, tables, block=block, crc=crc)
        assert isinstance(data, bytes)
        assert np.array_equal(decode_batch(data, channel, tables, crc=crc), values)
        layout = read_batch_layout(data, crc=crc)
        assert layout.n_items == n_items and layout.block == max(1, min(block, n_items))
        assert layout.total_bytes == len(data)
        n_items_ref, block_ref, lengths, start = _reference_layout(data, crc)
        assert (n_items_ref, block_ref, lengths) == (n_items, layout.block, layout.lengths.tolist())
        assert start + sum(lengths) == len(data)
        if crc:
            seed32 = binascii.crc32(int(n_symbols).to_bytes(8, "little"), tables.digest32())
            assert data[:4] == binascii.crc32(data[4:], seed32).to_bytes(4, "big")
        if n_items:
            for i in {0, n_items - 1, int(rng.integers(n_items))}:
                assert np.array_equal(decode_batch(data, channel, tables, index=i, crc=crc), values[i])
            some = rng.integers(-n_items, n_items, size=5)
            assert np.array_equal(decode_batch(data, channel, tables, index=some, crc=crc), values[some])
            assert np.array_equal(decode_batch(data, channel, tables, index=list(some), crc=crc), values[some])
    # A batch of one-sample segments is the CRC-free per-sample streams behind a header.
    data = encode_batch(values, channel, tables, block=1, crc=False)
    assert data.endswith(b"".join(bare)) and read_batch_layout(data, crc=False).lengths.tolist() == \
        [len(s) for s in bare]


def test_crc_free_streams_are_prefix_free_and_short():
    # Every continuation of a CRC-free stream decodes to the same symbols (the decoder may
    # read past its end), and it costs at most a few bits more than the ideal length.
    rng = np.random.default_rng(12)
    tables = _tables(rng, 3, 16, 0.3)
    channel = rng.integers(0, 3, size=200)
    values = _sample(rng, tables, channel, 300)
    bare = encode_symbols(values, channel, tables, crc=False)
    framed = encode_symbols(values, channel, tables)
    ideal = tables.bits(values, channel)
    real = np.array([8 * len(s) for s in bare])
    assert (real >= ideal - 1e-6).all() and (real <= ideal + 24).all()
    assert (real - ideal).mean() < 10
    assert real.sum() < sum(8 * len(s) for s in framed) - 8 * 3 * len(framed)  # > 3 bytes saved per stream
    # decode through the private decoder with junk appended (the public call rejects it)
    from chanlab.quant.range_coding import _Coder

    coder = _Coder(channel, tables)
    for s, v in zip(bare[:50], values[:50]):
        junk = rng.integers(0, 256, size=int(rng.integers(1, 9)), dtype=np.uint8).tobytes()
        for tail in (junk, b"\xff" * 8):
            d = s + tail
            words = np.frombuffer(d + b"\0" * (-len(d) % 4), dtype=">u4").astype(np.uint32)
            assert np.array_equal(coder.decode_words(words, 1, "x")[0][0], v)
        with pytest.raises(BitstreamError):
            decode_symbols([s + junk], channel, tables, crc=False)


def test_batch_of_256_is_within_2_percent_of_ideal():
    # ~170-bit samples like the paper's CSI: 512 symbols from two rounded Gaussians.
    rng = np.random.default_rng(13)
    tables = _gauss_tables([0.2, 0.3])
    channel = np.repeat([0, 1], 256)
    values = _sample(rng, tables, channel, 256)
    ideal = tables.bits(values, channel).sum()
    assert 120 * 256 < ideal < 220 * 256
    for crc in (True, False):
        data = encode_batch(values, channel, tables, crc=crc)
        assert 8 * len(data) <= 1.02 * ideal
        single = encode_batch(values, channel, tables, block=256, crc=crc)
        assert 8 * len(single) <= ideal + 8 * 16
    per_crc = sum(8 * len(s) for s in encode_symbols(values, channel, tables))
    per_bare = sum(8 * len(s) for s in encode_symbols(values, channel, tables, crc=False))
    assert per_crc > per_bare > 8 * len(encode_batch(values, channel, tables)) > ideal


def test_every_single_bit_flip_of_a_crc_batch_raises(batch):
    values, channel, tables = batch
    for block in (1, 5, DEFAULT_BLOCK):
        data = encode_batch(values, channel, tables, block=block)
        for bit in range(8 * len(data)):
            corrupt = bytearray(data)
            corrupt[bit // 8] ^= 1 << (bit % 8)
            with pytest.raises(BitstreamError, match="checksum"):
                decode_batch(bytes(corrupt), channel, tables)
            if bit % 7 == 0:  # random access checks the whole stream's CRC too
                with pytest.raises(BitstreamError, match="checksum"):
                    decode_batch(bytes(corrupt), channel, tables, index=bit % len(values))


def test_every_truncation_of_a_batch_raises(batch):
    values, channel, tables = batch
    for crc in (True, False):
        for block in (1, 4, 16):
            data = encode_batch(values, channel, tables, block=block, crc=crc)
            for n in range(len(data)):
                for piece in (data[:n], data[:n] + data[n + 1:]):  # cut the tail, or drop a byte
                    with pytest.raises(BitstreamError):
                        decode_batch(piece, channel, tables, crc=crc)
            for extra in (b"\0", b"\x01\x02"):
                with pytest.raises(BitstreamError):
                    decode_batch(data + extra, channel, tables, crc=crc)


def test_every_truncation_of_a_crc_free_stream_raises(short):
    _, channel, tables = short
    rng = np.random.default_rng(14)
    values = _sample(rng, tables, channel, 40)
    values[3, 2] = INT32_MIN
    for stream in encode_symbols(values, channel, tables, crc=False):
        for n in range(len(stream)):
            with pytest.raises(BitstreamError):
                _timed_decode_bare([stream[:n]], channel, tables)
        for piece in (stream[1:], stream + b"\0"):
            with pytest.raises(BitstreamError):
                _timed_decode_bare([piece], channel, tables)


def _timed_decode_bare(streams, channel, tables):
    t0 = time.perf_counter()
    try:
        return decode_symbols(streams, channel, tables, crc=False)
    finally:
        assert time.perf_counter() - t0 < 0.05


def test_crc_free_mutations_raise_or_decode_fast(batch):
    """Fuzz the CRC-free formats: never a hang, a crash or a foreign exception; mostly raised."""
    values, channel, tables = batch
    rng = np.random.default_rng(15)
    stream = encode_symbols(values[:1], channel, tables, crc=False)[0]
    data = encode_batch(values, channel, tables, block=4, crc=False)
    outcomes = {"raised": 0, "decoded": 0}
    for target in (stream, data):
        for _ in range(300):
            mutant = bytearray(target)
            for _ in range(rng.integers(1, 3)):
                op, pos = rng.integers(3), int(rng.integers(0, len(mutant)))
                if op == 0:
                    mutant[pos] ^= 1 << int(rng.integers(8))
                elif op == 1:
                    mutant[pos] = int(rng.integers(256))
                else:
                    mutant[pos:pos] = rng.integers(0, 256, size=int(rng.integers(1, 4)), dtype=np.uint8).tobytes()
            if bytes(mutant) == target:
                continue
            t0 = time.perf_counter()
            try:
                if target is stream:
                    out = decode_symbols([bytes(mutant)], channel, tables, crc=False)
                    assert out.shape == (1, channel.size)
                else:
                    out = decode_batch(bytes(mutant), channel, tables, crc=False)
                    assert out.ndim == 2 and out.shape[1] == channel.size and out.dtype == np.int64
                outcomes["decoded"] += 1
            except BitstreamError:
                outcomes["raised"] += 1
            assert time.perf_counter() - t0 < 0.5
    assert outcomes["raised"] > 0.9 * sum(outcomes.values())


def test_random_bytes_and_forged_headers_never_hang(batch):
    _, channel, tables = batch
    rng = np.random.default_rng(16)
    for crc in (True, False):
        for n in list(range(12)) + [50, 500]:
            for _ in range(20):
                junk = rng.integers(0, 256, size=n, dtype=np.uint8).tobytes()
                t0 = time.perf_counter()
                try:
                    decode_batch(junk, channel, tables, crc=crc)
                except BitstreamError:
                    pass
                assert time.perf_counter() - t0 < 0.5
    # A forged CRC-free header claiming many samples in a short segment is refused up front.
    width, index = 3, bytes([0b101_00000])  # one segment of 5 bytes
    for n_items, block, match in ((10**5, 10**5, "too few"), (MAX_BATCH_ITEMS + 1, MAX_BATCH_ITEMS + 1, "header"),
                                  (5, 6, "header"), (5, 0, "header")):
        head = bytes([1]) + _leb128(n_items) + _leb128(block) + bytes([width]) + index
        t0 = time.perf_counter()
        with pytest.raises(BitstreamError, match=match):
            decode_batch(head + b"\x55" * 5, channel, tables, crc=False)
        assert time.perf_counter() - t0 < 0.05
    for bad in (b"", b"\x01", b"\x02\x01\x01\x00", b"\x01\x80\x00\x01\x00", b"\x01\xff\xff\xff\xff\xff\x01",
                bytes([1, 2, 1, 33]) + b"\0" * 20, bytes([1, 1, 1, 8, 5, 0]) + b"\0" * 4):
        with pytest.raises(BitstreamError):
            decode_batch(bad, channel, tables, crc=False)


def _leb128(n):
    out = bytearray()
    while True:
        out.append((n & 0x7F) | (0x80 if n >> 7 else 0))
        n >>= 7
        if not n:
            return bytes(out)


def test_batch_with_other_tables_shape_or_mode_raises(batch):
    values, channel, tables = batch
    data = encode_batch(values, channel, tables)
    bare = encode_batch(values, channel, tables, crc=False)
    shifted = CodingTables(tables.offsets + 1, tables.pmf)
    for other in (shifted, CodingTables(tables.offsets, tables.pmf[::-1])):
        with pytest.raises(BitstreamError):
            decode_batch(data, channel, other)
    with pytest.raises(BitstreamError):
        decode_batch(data, channel[:-1], tables)
    with pytest.raises(BitstreamError):
        decode_batch(data, channel, tables, crc=False)
    with pytest.raises(BitstreamError):
        decode_batch(bare, channel, tables, crc=True)
    # per-sample streams: a CRC stream is not a CRC-free one and vice versa
    framed = encode_symbols(values[:3], channel, tables)
    for s, b in zip(framed, encode_symbols(values[:3], channel, tables, crc=False)):
        with pytest.raises(BitstreamError):
            decode_symbols([s], channel, tables, crc=False)
        with pytest.raises(BitstreamError):
            decode_symbols([b], channel, tables)


def test_batch_edge_cases_and_invalid_arguments(batch):
    values, channel, tables = batch
    for crc in (True, False):
        empty = encode_batch(np.zeros((0, channel.size), dtype=np.int64), channel, tables, crc=crc)
        assert decode_batch(empty, channel, tables, crc=crc).shape == (0, channel.size)
        with pytest.raises(IndexError):
            decode_batch(empty, channel, tables, index=0, crc=crc)
        no_symbols = encode_batch(np.zeros((5, 0), dtype=np.int64), np.zeros(0, int), tables, crc=crc)
        assert decode_batch(no_symbols, np.zeros(0, int), tables, crc=crc).shape == (5, 0)
        assert decode_symbols(encode_symbols(np.zeros((2, 0), dtype=np.int64), np.zeros(0, int), tables, crc=False),
                              np.zeros(0, int), tables, crc=False).shape == (2, 0)
    data = encode_batch(values, channel, tables)
    assert decode_batch(data, channel, tables, index=[]).shape == (0, channel.size)
    for bad_index in (16, -17, [0, 16]):
        with pytest.raises(IndexError):
            decode_batch(data, channel, tables, index=bad_index)
    for bad_index in (1.5, [[0, 1]], [True]):
        with pytest.raises(DataError):
            decode_batch(data, channel, tables, index=bad_index)
    for block in (0, -1, 2.5):
        with pytest.raises(DataError):
            encode_batch(values, channel, tables, block=block)
    with pytest.raises(DataError):
        encode_batch(values.astype(float), channel, tables)
    for bad in (None, "abc", 123):
        with pytest.raises(BitstreamError):
            decode_batch(bad, channel, tables)


@pytest.mark.parametrize("width", [1, 3, 40, 200])
def test_batch_of_nearly_certain_symbols_is_not_refused(width):
    # The decoder refuses headers that claim more symbols than a segment can hold; a model
    # whose symbols are (nearly) certain legitimately packs many samples into a few bytes.
    rng = np.random.default_rng(width)
    for p_max in (1 - 1e-12, 1 - 1e-6, 0.999, 0.9):
        pmf = rng.dirichlet(np.ones(width + 1), size=2) * (1 - p_max)
        top = rng.integers(0, width + 1, size=2)
        pmf[[0, 1], top] += p_max
        tables = CodingTables(np.array([0, 10]), pmf)
        channel = np.repeat([0, 1], 500)
        values = np.where(top[channel] > 0, tables.offsets[channel] + top[channel] - 1, -7)[None].repeat(32, 0)
        for block in (1, 32):
            for crc in (True, False):
                data = encode_batch(values, channel, tables, block=block, crc=crc)
                assert np.array_equal(decode_batch(data, channel, tables, crc=crc), values)
