"""NR Type I single-panel codebook: bit counts, exact recovery of a DFT beam, real streams."""

import math

import pytest
import torch

from chanlab.classical.nr_codebooks import SUPPORTED_PANELS, TypeISinglePanel, subband_gain
from chanlab.core.errors import BitstreamError, ConfigError, DataError


@pytest.mark.parametrize("n1, n2, n_sc, subband, bits", [
    (4, 1, 48, None, 4 + 0 + 2),                 # 16 beams: 4 bits; O2 = 1: 0 bits; one wideband i2
    (2, 2, 96, 48, 3 + 3 + 2 * 2),               # 8 x 8 beams, 2 subbands
    (4, 2, 100, 48, 4 + 3 + 2 * 3),              # a last, shorter subband still reports
    (16, 1, 24, 12, 6 + 0 + 2 * 2),
    (1, 1, 12, 12, 0 + 0 + 2),                   # 2 ports: the 2-port table
])
def test_payload_bits_follow_the_spec(n1, n2, n_sc, subband, bits):
    cb = TypeISinglePanel(n1, n2, subband)
    assert cb.payload_bits(n_sc) == bits
    assert cb.n_ports == 2 * n1 * n2
    h = torch.randn(3, cb.n_ports, n_sc, dtype=torch.complex64)
    streams = cb.compress(h)
    assert {len(s) for s in streams} == {math.ceil(bits / 8)}


def test_a_channel_on_one_dft_beam_is_recovered_exactly():
    cb = TypeISinglePanel(4, 2, subband_size=24)
    v = cb.beams(torch.complex128)
    l, m, n_sc = 5, 3, 48
    beam = v[:, l * 8 + m]
    phases = [1, 3]                                              # one co-phasing per subband
    cols = []
    for s in range(n_sc):
        phi = complex(math.cos(math.pi * phases[s // 24] / 2), math.sin(math.pi * phases[s // 24] / 2))
        cols.append(torch.cat([beam, phi * beam]))
    h = torch.stack(cols, dim=-1)[None] * (0.5 + 0.2j)                   # [1, 16, 48]
    fields = cb.encode(h)
    assert fields.tolist() == [[l, m, *phases]]
    w = cb.decompress(cb.compress(h), n_sc)
    # the precoder captures all of the channel's power: |h^H w|² = ||h||² on every subcarrier
    torch.testing.assert_close(subband_gain(h, w.to(torch.complex128), 24), h.abs().square().sum((1, 2)),
                               rtol=1e-6, atol=0)


def test_the_search_is_the_best_codeword():
    torch.manual_seed(0)
    cb = TypeISinglePanel(2, 2, subband_size=6)
    h = torch.randn(4, 8, 12, dtype=torch.complex128)
    best = subband_gain(h, cb.precoders(cb.encode(h)).to(h.dtype), 6)
    # brute force over every beam and every co-phasing pair
    for b in range(64):
        for n0 in range(4):
            for n_1 in range(4):
                f = torch.tensor([[b // 8, b % 8, n0, n_1]] * 4)
                assert bool((subband_gain(h, cb.precoders(f).to(h.dtype), 6) <= best + 1e-9).all())


def test_bad_inputs_and_streams():
    with pytest.raises(ConfigError, match="Table 5.2.2.2.1-2"):
        TypeISinglePanel(5, 1)
    cb = TypeISinglePanel(2, 1)
    with pytest.raises(DataError, match="ports"):
        cb.encode(torch.randn(2, 5, 8, dtype=torch.complex64))
    with pytest.raises(DataError, match="real"):
        cb.encode(torch.randn(2, 4, 8))
    streams = cb.compress(torch.randn(2, 4, 8, dtype=torch.complex64))
    with pytest.raises(BitstreamError):
        cb.decompress([streams[0] + b"\x00"], 8)                     # too long
    with pytest.raises(BitstreamError):
        cb.decompress(streams[0], 8)                                 # one bytes object
    assert all(p in SUPPORTED_PANELS for p in [(2, 1), (16, 1), (4, 4)])


def test_a_mutated_stream_is_refused_where_the_format_can_tell():
    cb = TypeISinglePanel(2, 1)                       # 3 + 0 + 2 = 5 bits: 3 padding bits in the byte
    (s,) = cb.compress(torch.randn(1, 4, 8, dtype=torch.complex64))
    with pytest.raises(BitstreamError, match="padding"):
        cb.decompress([bytes([s[0] ^ 0x01])], 8)
    cb3 = TypeISinglePanel(6, 1)                      # i1,1 < 24 in 5 bits: 24..31 are not codewords
    with pytest.raises(BitstreamError, match="out of range"):
        cb3.decompress([bytes([0b11111000])], 1)
