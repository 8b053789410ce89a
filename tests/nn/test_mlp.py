import pytest
import torch

from chanlab.core.errors import ConfigError
from chanlab.nn.mlp import SkipMLP


def test_shapes_and_layer_count():
    net = SkipMLP(32, 100, hidden=16, n_layers=6, skip_at=(2, 4))
    assert net(torch.zeros(5, 32)).shape == (5, 100)
    assert len(net.layers) == 6


def test_skip_adds_the_input():
    net = SkipMLP(3, 2, hidden=4, n_layers=3, skip_at=(2,))
    with torch.no_grad():
        for p in net.layers[1].parameters():
            p.zero_()                                        # layer 2 outputs ReLU(0) = 0
        net.layers[2].weight.copy_(torch.eye(2, 4))
        net.layers[2].bias.zero_()
    x = torch.randn(6, 3)
    h1 = torch.relu(net.layers[0](x))
    torch.testing.assert_close(net(x), h1[:, :2])           # h2 = h1 + 0


def test_bad_skip_raises():
    with pytest.raises(ConfigError):
        SkipMLP(3, 2, n_layers=4, skip_at=(1,))
