"""CsiCodec: exact byte round trips, rate control by λ, persistence, errors."""

import numpy as np
import pytest
import torch

from chanlab.adaptive_compression.codec import CsiCodec, csi_to_real, real_to_csi
from chanlab.adaptive_compression.model import CompressorSpec, RDCompressor, distortion, rd_loss
from chanlab.core.errors import BitstreamError, CheckpointError, ConfigError, DataError


pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def trained(low_rank_csi):
    torch.manual_seed(0)
    h = low_rank_csi(192)
    codecs = {}
    for lam in (30.0, 3000.0):
        with torch.random.fork_rng():
            torch.set_num_threads(1)
            codecs[lam] = CsiCodec(16, 16, lam).fit(h[:128], h[128:160], epochs=12, batch_size=16, lr=3e-3)
    return codecs, h[160:]


def test_csi_real_round_trip():
    h = torch.randn(3, 4, 5, dtype=torch.complex64)
    x = csi_to_real(h)
    assert x.shape == (3, 2, 4, 5) and x.dtype == torch.float32
    assert torch.equal(real_to_csi(x), h)


def test_spec_latent_shape_and_ratio():
    spec = CompressorSpec.for_size(512, 256)
    assert spec.pools == (4, 2) and spec.latent_shape == (2, 64, 32) and spec.compression_ratio == 64
    with pytest.raises(ConfigError, match="not divisible"):
        CompressorSpec.for_size(30, 64)


def test_rd_loss_is_bits_plus_lambda_distortion():
    model = RDCompressor(CompressorSpec.for_size(16, 16)).eval()
    x = torch.randn(4, 2, 16, 16)
    out = model(x)
    loss, parts = rd_loss(out, x, 7.0)
    d = (x - out["x_hat"]).square().sum((1, 2, 3)) / 256
    assert torch.allclose(distortion(x, out["x_hat"]), d)
    assert float(loss.detach()) == pytest.approx(float((out["bits"] + 7.0 * d).mean().detach()), rel=1e-6)
    assert parts["bits"] == pytest.approx(float(out["bits"].detach().mean()), rel=1e-6)


def test_bytes_decode_to_the_encoder_side_reconstruction(trained):
    codecs, h = trained
    for codec in codecs.values():
        streams = codec.compress(h)
        assert len(streams) == h.shape[0] and all(isinstance(s, bytes) for s in streams)
        decoded = codec.decompress(streams)
        assert torch.equal(decoded, codec.decode_latents(codec.latents(h)))
        report = codec.evaluate(h)
        assert report["exact"]
        assert report["bytes_gap_max_excess"] <= 0  # real ≤ 1.02 · estimate + 8 bytes
        assert report["bits_real"] >= report["bits_entropy"] - 1


def test_larger_lambda_more_bits_less_distortion(trained):
    codecs, h = trained
    low, high = codecs[30.0].evaluate(h), codecs[3000.0].evaluate(h)
    assert high["bits_real"] > low["bits_real"]
    assert high["nmse"] < low["nmse"]
    assert high["nmse"] < 0.5  # it learned something on this easy data


def test_save_load_gives_the_same_bytes(trained, tmp_path):
    codecs, h = trained
    codec = codecs[3000.0]
    codec.save(tmp_path / "c.pt")
    back = CsiCodec.load(tmp_path / "c.pt")
    assert back.compress(h) == codec.compress(h)
    assert torch.equal(back.decompress(codec.compress(h)), codec.decompress(codec.compress(h)))
    (tmp_path / "bad.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(CheckpointError):
        CsiCodec.load(tmp_path / "bad.pt")


def test_corrupt_streams_raise_bitstream_error(trained):
    codecs, h = trained
    codec = codecs[3000.0]
    stream = codec.compress(h[:1])[0]
    rng = np.random.default_rng(0)
    for bad in (b"", stream[:-4], stream[:3], bytes([stream[0] ^ 0x10]) + stream[1:]):
        with pytest.raises(BitstreamError):
            codec.decompress([bad])
    for _ in range(50):
        b = bytearray(stream)
        pos = int(rng.integers(len(b) * 8))
        b[pos // 8] ^= 1 << (pos % 8)
        with pytest.raises(BitstreamError):
            codec.decompress([bytes(b)])
    # A stream of the other codec (other prior): rejected, not decoded to garbage.
    with pytest.raises(BitstreamError):
        codec.decompress(codecs[30.0].compress(h[:1]))


def test_input_validation(low_rank_csi):
    codec = CsiCodec(16, 16, 10.0)
    h = low_rank_csi(4)
    with pytest.raises(ConfigError, match="not fitted"):
        codec.compress(h)
    with pytest.raises(DataError, match="complex"):
        codec.fit(h.real, epochs=1)
    with pytest.raises(DataError, match=r"\[N, 16, 16\]"):
        codec.fit(low_rank_csi(4, 8, 16), epochs=1)
    bad = h.clone()
    bad[0, 0, 0] = float("nan")
    with pytest.raises(DataError, match="NaN"):
        codec.fit(bad, epochs=1)
    with pytest.raises(ConfigError):
        CsiCodec(16, 16, 0.0)


def test_resume_from_checkpoint_matches_uninterrupted(tmp_path, low_rank_csi):
    from chanlab.core.checkpoint import Checkpointer

    h = low_rank_csi(48)
    torch.manual_seed(1)
    full = CsiCodec(16, 16, 100.0).fit(h[:32], h[32:], epochs=3, batch_size=16, seed=1,
                                       checkpointer=Checkpointer(tmp_path / "a"))
    torch.manual_seed(1)
    CsiCodec(16, 16, 100.0).fit(h[:32], h[32:], epochs=2, batch_size=16, seed=1,
                                checkpointer=Checkpointer(tmp_path / "b"))
    resumed = CsiCodec(16, 16, 100.0).fit(h[:32], h[32:], epochs=3, batch_size=16, seed=1,
                                          checkpointer=Checkpointer(tmp_path / "b"))
    assert resumed.history.train_loss == pytest.approx(full.history.train_loss)
    for a, b in zip(full.model.state_dict().values(), resumed.model.state_dict().values()):
        assert torch.equal(a, b)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_cuda_codec_round_trip(low_rank_csi):
    h = low_rank_csi(40)
    codec = CsiCodec(16, 16, 100.0, device="cuda").fit(h[:32], epochs=1, batch_size=16)
    assert next(codec.model.parameters()).is_cuda
    assert codec.evaluate(h[32:])["exact"]


def test_crc_free_and_batch_streams_decode_exactly(trained):
    codecs, h = trained
    for codec in codecs.values():
        expected = codec.decode_latents(codec.latents(h))
        framed = codec.compress(h)
        assert framed == codec.model.prior.compress(codec.latents(h))  # the default is unchanged
        bare = codec.compress(h, crc=False)
        assert all(len(b) <= len(s) - 2 for b, s in zip(bare, framed))
        assert np.mean([len(s) - len(b) for b, s in zip(bare, framed)]) > 3
        assert torch.equal(codec.decompress(bare, crc=False), expected)
        for crc in (True, False):
            for block in (1, 5, 16, 1000):
                data = codec.compress_batch(h, block=block, crc=crc)
                assert isinstance(data, bytes)
                assert torch.equal(codec.decompress_batch(data, crc=crc), expected)
                assert torch.equal(codec.decompress_batch(data, 7, crc=crc), expected[7])
                assert torch.equal(codec.decompress_batch(data, [3, -1, 3], crc=crc), expected[[3, -1, 3]])
        with pytest.raises(IndexError):
            codec.decompress_batch(codec.compress_batch(h), h.shape[0])
        bits = codec.stream_bits(h)
        assert bits["n"] == h.shape[0] and bits["block"] == 16
        assert bits["entropy"] == pytest.approx(bits["ideal"], rel=0.01)
        assert bits["ideal"] <= bits["batch"] < bits["batch_crc"] < bits["per_csi"] < bits["per_csi_crc"]
        assert bits["per_csi_crc"] == pytest.approx(np.mean([8 * len(s) for s in framed]))


def test_corrupt_batch_streams_raise_bitstream_error(trained):
    codecs, h = trained
    codec = codecs[3000.0]
    data = codec.compress_batch(h[:3], block=2)
    for bit in range(8 * len(data)):  # every single-bit flip
        corrupt = bytearray(data)
        corrupt[bit // 8] ^= 1 << (bit % 8)
        with pytest.raises(BitstreamError):
            codec.decompress_batch(bytes(corrupt), bit % 3)
    for crc in (True, False):
        data = codec.compress_batch(h[:4], block=2, crc=crc)
        for n in range(len(data)):
            with pytest.raises(BitstreamError):
                codec.decompress_batch(data[:n], crc=crc)
        with pytest.raises(BitstreamError):
            codec.decompress_batch(data + b"\0", crc=crc)
    stream = codec.compress(h[:1], crc=False)[0]
    for n in range(len(stream)):
        with pytest.raises(BitstreamError):
            codec.decompress([stream[:n]], crc=False)
    # The other codec's stream (other prior), or the wrong mode: rejected.
    with pytest.raises(BitstreamError):
        codec.decompress_batch(codecs[30.0].compress_batch(h[:4]))
    with pytest.raises(BitstreamError):
        codec.decompress_batch(codec.compress_batch(h[:4]), crc=False)
