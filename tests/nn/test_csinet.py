import pytest
import torch

from chanlab.core.errors import ConfigError, DataError
from chanlab.nn.csinet import (AUTOENCODER_NAMES, CsiNet, CsiNetPro, CsiNetVar1, CsiNetVar2, TransNet,
                               make_autoencoder)

NAMES = ("csinet", "csinet-v1", "csinet-v2", "csinet-pro", "transnet")


def n_params(module: torch.nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def test_names_are_the_documented_ones():
    assert AUTOENCODER_NAMES == NAMES


@pytest.mark.parametrize("m", [128, 512])
@pytest.mark.parametrize("name", NAMES)
def test_shapes_range_and_gradients(name, m):
    torch.manual_seed(0)
    enc, dec = make_autoencoder(name, m)
    x = torch.rand(3, 2, 32, 32)
    z = enc(x)
    assert z.shape == (3, m)
    y = dec(z)
    assert y.shape == x.shape
    assert y.min() >= 0 and y.max() <= 1
    torch.nn.functional.mse_loss(y, x).backward()
    for part, module in (("encoder", enc), ("decoder", dec)):
        for pname, p in module.named_parameters():
            assert p.grad is not None, f"{name} {part}.{pname}: no gradient"
            assert torch.isfinite(p.grad).all(), f"{name} {part}.{pname}: non-finite gradient"
    # the gradient reaches the encoder's first layer, i.e. flows end to end
    first = next(enc.parameters())
    assert first.grad.abs().sum() > 0, f"{name}: zero gradient at the encoder input layer"
    # eval mode (BN running statistics) with a batch of one
    enc.eval()
    dec.eval()
    with torch.no_grad():
        assert dec(enc(x[:1])).shape == (1, 2, 32, 32)


@pytest.mark.parametrize("name", NAMES)
def test_general_sizes(name):
    enc, dec = make_autoencoder(name, 7, n_ant=16, n_delay=8)
    x = torch.rand(2, 2, 16, 8)
    z = enc(x)
    assert z.shape == (2, 7)
    assert dec(z).shape == x.shape


def test_parameter_counts_at_m512():
    counts = {}
    for name in NAMES:
        enc, dec = make_autoencoder(name, 512)
        counts[name] = (n_params(enc), n_params(dec))
    report = ", ".join(f"{k}: enc {e:,} + dec {d:,} = {e + d:,}" for k, (e, d) in counts.items())
    dense = 2 * (2048 * 512)  # the two dense layers' weights
    # CsiNet at CR 1/4: about 2.1 M parameters (Wen et al.); dense layers dominate
    total = sum(counts["csinet"])
    assert 2.0e6 < total < 2.2e6, report
    assert 1_049_088 < counts["csinet"][0] < 1_049_088 + 100, report  # dense 2048×512 + 512 plus a 3×3 conv
    for name, (e, d) in counts.items():
        assert dense < e + d < dense + 400_000, report
    # Fig. 2: the four CNN encoders grow in size, CsiNet < var1 < var2 < CsiNet-Pro
    encoders = [counts[n][0] for n in ("csinet", "csinet-v1", "csinet-v2", "csinet-pro")]
    assert encoders == sorted(set(encoders)), report
    # the variants keep CsiNet's decoder
    assert counts["csinet-v1"][1] == counts["csinet-v2"][1] == counts["csinet"][1], report


def test_variant_encoder_depths():
    depth = {cls.name: len(cls(16).encoder.convs) for cls in (CsiNet, CsiNetVar1, CsiNetVar2, CsiNetPro)}
    assert depth == {"csinet": 1, "csinet-v1": 2, "csinet-v2": 3, "csinet-pro": 4}


def test_unknown_name_lists_valid_names():
    with pytest.raises(ConfigError) as info:
        make_autoencoder("csinet-plus", 128)
    for name in NAMES:
        assert name in str(info.value)
    assert isinstance(make_autoencoder("CsiNet_Var2", 8)[0], torch.nn.Module)  # alias, case, underscores


def test_config_and_data_errors():
    with pytest.raises(ConfigError):
        make_autoencoder("csinet", 0)
    with pytest.raises(ConfigError):
        TransNet(16, d_model=63, n_heads=2)
    enc, dec = make_autoencoder("csinet", 16)
    with pytest.raises(DataError, match=r"\[batch, 2, 32, 32\]"):
        enc(torch.rand(1, 2, 32, 16))
    with pytest.raises(DataError, match=r"\[batch, 16\]"):
        dec(torch.rand(1, 17))
    with pytest.raises(ConfigError, match="sigmoid, linear"):
        make_autoencoder("csinet", 16, output="tanh")


@pytest.mark.parametrize("name", NAMES)
def test_linear_head_is_the_sigmoid_heads_pre_activation(name):
    torch.manual_seed(0)
    enc, dec = make_autoencoder(name, 8, n_ant=8, n_delay=8)
    torch.manual_seed(0)
    enc_l, dec_l = make_autoencoder(name, 8, n_ant=8, n_delay=8, output="linear")
    enc.eval(), dec.eval(), enc_l.eval(), dec_l.eval()
    z = enc(torch.rand(3, 2, 8, 8))
    torch.testing.assert_close(dec(z), torch.sigmoid(dec_l(z)))


def test_tiny_overfit():
    torch.manual_seed(0)
    model = CsiNet(128)
    x = torch.rand(8, 2, 32, 32)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    losses = []
    for _ in range(50):
        opt.zero_grad()
        loss = torch.nn.functional.mse_loss(model(x), x)
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < 0.6 * losses[0], f"loss {losses[0]:.4f} -> {losses[-1]:.4f}"


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")
@pytest.mark.parametrize("name", NAMES)
def test_cuda(name):
    enc, dec = make_autoencoder(name, 128)
    enc, dec = enc.cuda(), dec.cuda()
    x = torch.rand(4, 2, 32, 32, device="cuda")
    y = dec(enc(x))
    assert y.is_cuda and y.shape == x.shape
    y.mean().backward()
