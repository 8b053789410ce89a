import pytest
import torch

from chanlab.core.errors import ConfigError, DataError
from chanlab.nn.conv_compressor import ConvDecoder, ConvEncoder, default_pools


@pytest.mark.parametrize("n_ant,n_sc,ratio", [(64, 64, 16), (512, 256, 64)])
def test_paper_compression_ratios(n_ant, n_sc, ratio):
    pools = default_pools(n_ant, n_sc)
    enc, dec = ConvEncoder(pools), ConvDecoder(pools)
    x = torch.randn(1, 2, n_ant, n_sc)
    z = enc(x)
    assert x.numel() / z.numel() == ratio
    assert dec(z).shape == x.shape


def test_shape_errors():
    enc = ConvEncoder((2, 2))
    with pytest.raises(DataError, match="multiples of 4"):
        enc(torch.randn(1, 2, 30, 64))
    with pytest.raises(DataError, match=r"\[batch, 2"):
        enc(torch.randn(1, 3, 64, 64))
    with pytest.raises(DataError):
        ConvDecoder((2, 2))(torch.randn(1, 3, 16, 16))
    with pytest.raises(ConfigError):
        ConvEncoder((2,))
    with pytest.raises(ConfigError):
        ConvEncoder((2, 2), kernel=4)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_cuda():
    enc, dec = ConvEncoder().cuda(), ConvDecoder().cuda()
    assert dec(enc(torch.randn(2, 2, 64, 64, device="cuda"))).is_cuda
