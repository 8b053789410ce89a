"""Fine-tuning schemes, the update quantization they send, and decoding from the bytes alone."""

import json
import subprocess
import sys

import pytest
import torch

from chanlab.adaptive_compression.codec import CsiCodec
from chanlab.adaptive_compression.finetune import (
    FineTuning, Translation, decoder_side_vector, evaluate_adapted, fine_tune, quantize_update,
)
from chanlab.adaptive_compression.update_stream import (
    FineTunedReceiver, encode_finetuned, pack_finetuned, unpack_finetuned,
)
from chanlab.core.errors import BitstreamError, ConfigError

CFG = FineTuning(epochs=3, batch_size=16, lr=2e-3, step=5e-4, n_bins=50)


@pytest.fixture(scope="module")
def setup(low_rank_csi):
    with torch.random.fork_rng():
        torch.manual_seed(0)
        torch.set_num_threads(1)
        codec = CsiCodec(16, 16, 300.0).fit(low_rank_csi(96), epochs=6, batch_size=16, lr=3e-3)
    # The "new environment": the same structure with wider beams and longer delays.
    h_new = low_rank_csi(80, seed=7) * torch.exp(1j * torch.linspace(0, 3, 16))[None, :, None]
    return codec, h_new[:48], h_new[48:]


def _encoder_vector(codec):
    return torch.cat([p.detach().reshape(-1) for p in codec.model.encoder.parameters()])


def test_encoder_only_keeps_the_receiver_side(setup):
    codec, h_t, h_e = setup
    a = fine_tune(codec, h_t, "encoder-only", CFG)
    assert torch.equal(decoder_side_vector(a.codec.model), decoder_side_vector(codec.model))
    assert not torch.equal(_encoder_vector(a.codec), _encoder_vector(codec))
    assert a.update_stream is None and a.trainable == sum(p.numel() for p in codec.model.encoder.parameters())
    row = evaluate_adapted(a, h_e)
    assert row["update_bits"] == 0 and row["total_bits"] == row["bits_real"]


def test_full_model_update_lies_on_the_quantizer_grid(setup):
    codec, h_t, h_e = setup
    a = fine_tune(codec, h_t, "full-uniform", CFG)
    theta_0, theta = decoder_side_vector(codec.model), decoder_side_vector(a.codec.model)
    assert torch.equal(theta, theta_0 + a.levels.float() * torch.tensor(5e-4))
    assert int(a.levels.abs().max()) <= 24 and bool((a.levels != 0).any())
    row = evaluate_adapted(a, h_e)
    assert row["update_bits"] == 8 * len(a.update_stream) > 0
    assert row["total_bits"] == pytest.approx(row["bits_real"] + row["update_bits"] / h_e.shape[0])
    assert row["exact"]
    assert a.trainable == sum(p.numel() for p in codec.model.parameters())


def test_genie_is_free_and_unaware_is_its_quantized_copy(setup):
    codec, h_t, h_e = setup
    genie = fine_tune(codec, h_t, "genie", CFG)
    assert evaluate_adapted(genie, h_e)["update_bits"] == 0
    unaware = quantize_update(genie, codec, CFG)
    assert unaware.scheme == "full-unaware" and unaware.update_counts
    gap = decoder_side_vector(unaware.codec.model) - decoder_side_vector(genie.codec.model)
    inside = (decoder_side_vector(genie.codec.model) - decoder_side_vector(codec.model)).abs() < 24 * 5e-4
    assert float(gap[inside].abs().max()) <= 5e-4 / 2 + 1e-6


def test_translation_starts_as_the_identity_and_freezes_the_backbone(setup):
    codec, h_t, _ = setup
    x = codec.to_input(h_t[:4])
    assert torch.equal(Translation()(x), x)
    a = fine_tune(codec, h_t, "translation", CFG)
    backbone = {n: p for n, p in codec.model.named_parameters()}
    for n, p in a.codec.model.named_parameters():
        key = n.replace("encoder.1.", "encoder.").replace("decoder.0.", "decoder.")
        if key in backbone:
            assert torch.equal(p, backbone[key]), n
    assert a.trainable == 2 * sum(p.numel() for p in Translation().parameters())


def test_unknown_scheme(setup):
    codec, h_t, _ = setup
    with pytest.raises(ConfigError, match="scheme"):
        fine_tune(codec, h_t, "magic", CFG)


_RECEIVER = """
import json, sys, torch
from chanlab.adaptive_compression.codec import CsiCodec
from chanlab.adaptive_compression.update_stream import FineTunedReceiver
from chanlab.quant.model_updates import UpdateQuantizer, make_prior
cfg = json.load(open(sys.argv[1]))
q = UpdateQuantizer(cfg["step"], cfg["n_bins"])
receiver = FineTunedReceiver(CsiCodec.load(sys.argv[2]), make_prior(cfg["prior"], q, sigma=cfg["sigma"]), q)
torch.save(receiver.decode(open(sys.argv[3], "rb").read()), sys.argv[4])
"""


def test_a_fresh_process_with_only_the_backbone_decodes_the_stream(setup, tmp_path):
    codec, h_t, h_e = setup
    a = fine_tune(codec, h_t, "full-gaussian", CFG)
    data = encode_finetuned(a, h_e)
    codec.save(tmp_path / "backbone.pt")
    (tmp_path / "stream.bin").write_bytes(data)
    (tmp_path / "cfg.json").write_text(json.dumps({"step": CFG.step, "n_bins": CFG.n_bins, "prior": "gaussian",
                                                   "sigma": CFG.sigma}))
    subprocess.run([sys.executable, "-c", _RECEIVER, str(tmp_path / "cfg.json"), str(tmp_path / "backbone.pt"),
                    str(tmp_path / "stream.bin"), str(tmp_path / "out.pt")], check=True, timeout=120)
    decoded = torch.load(tmp_path / "out.pt", weights_only=True)
    encoder_side = a.codec.decode_latents(a.codec.latents(h_e))
    assert torch.equal(decoded, encoder_side)


def test_corrupt_streams_raise(setup):
    codec, h_t, h_e = setup
    a = fine_tune(codec, h_t, "full-uniform", CFG)
    data = encode_finetuned(a, h_e[:4])
    receiver = FineTunedReceiver(codec, a.prior, CFG.quantizer)
    assert receiver.decode(data).shape == (4, 16, 16)
    update, n_params, latents = unpack_finetuned(data)
    flipped_update = pack_finetuned(bytes([update[0] ^ 1]) + update[1:], n_params, latents)
    header_flip = bytearray(data)
    header_flip[6] ^= 0x01
    for bad in (data[:-1], data + b"\0", bytes(header_flip), flipped_update, b"CLFT", b""):
        with pytest.raises(BitstreamError):
            receiver.decode(bad)
    with pytest.raises(BitstreamError, match="parameters"):
        receiver.decode(pack_finetuned(update, n_params - 1, latents))
    with pytest.raises(ConfigError):
        encode_finetuned(fine_tune(codec, h_t, "no-ft", CFG), h_e)
