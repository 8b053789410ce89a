import pytest
import torch
from chanlab.core.errors import ConfigError, DataError
from chanlab.nn.egat import EgatLayer, EgatPrecoder, egat_reference_loop


def _layer(dim=6, seed=0):
    torch.manual_seed(seed)
    return EgatLayer(dim, alpha=0.3, beta=0.7)


def test_layer_matches_edge_by_edge_loop_of_eqs_18_19():
    layer = _layer()
    z = torch.randn(2, 3, 5, 6, dtype=torch.float64)
    layer = layer.double()
    torch.testing.assert_close(layer(z), egat_reference_loop(layer, z))


def test_layer_is_equivariant_to_user_and_antenna_permutations():
    layer = _layer()
    z = torch.randn(2, 4, 5, 6)
    pu, pa = torch.randperm(4), torch.randperm(5)
    torch.testing.assert_close(layer(z[:, pu][:, :, pa]), layer(z)[:, pu][:, :, pa], rtol=1e-5, atol=1e-5)


def test_single_user_has_no_interference_term():
    layer = _layer()
    z = torch.randn(1, 1, 4, 6)
    torch.testing.assert_close(layer(z), egat_reference_loop(layer, z))


def _precoder(**kw):
    torch.manual_seed(1)
    return EgatPrecoder(8, 16, state_dim=8, init_hidden=16, norm_hidden=16, n_layers=2, **kw)


@pytest.mark.parametrize("n_users", [1, 3, 6])
def test_precoder_serves_any_number_of_users_at_the_given_power(n_users):
    net = _precoder()
    w = net(torch.randn(4, n_users, 16), torch.tensor([0.5, 1.0, 2.0, 4.0]))
    assert w.shape == (4, 8, n_users) and w.is_complex()
    torch.testing.assert_close(w.abs().square().sum((1, 2)), torch.tensor([0.5, 1.0, 2.0, 4.0]))


def test_precoder_permutes_columns_with_users():
    net = _precoder()
    v = torch.randn(3, 4, 16)
    perm = torch.tensor([2, 0, 3, 1])
    torch.testing.assert_close(net(v[:, perm]), net(v)[:, :, perm], rtol=1e-5, atol=1e-6)


def test_precoder_gradients_reach_every_parameter():
    net = _precoder()
    net(torch.randn(2, 3, 16)).abs().square()[..., 0].sum().backward()
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in net.parameters())


def test_precoder_validates_inputs():
    with pytest.raises(ConfigError, match="multiple of M"):
        EgatPrecoder(8, 12)
    net = _precoder()
    with pytest.raises(DataError, match="feature_dim"):
        net(torch.randn(2, 3, 8))
    with pytest.raises(DataError, match="power"):
        net(torch.randn(2, 3, 16), -1.0)
    with pytest.raises(DataError, match="3-D"):
        net(torch.randn(3, 16))
