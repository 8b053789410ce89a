import pytest
import torch

from chanlab.core.errors import ConfigError, DataError
from chanlab.quant.sparse_codebook import SparseCodebook


def test_codewords_are_l_sparse_and_nonnegative():
    cb = SparseCodebook(7, 30, 4, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        cb.weight[0, :10] = -1.0 - torch.arange(10.0)
    c = cb.codewords()
    assert ((c > 0).sum(1) <= 4).all() and (c >= 0).all()
    assert (cb.support().sum(1) == 4).all()


def test_assign_matches_brute_force():
    g = torch.Generator().manual_seed(1)
    cb = SparseCodebook(9, 20, 3, generator=g)
    x = torch.rand(100, 20, generator=g) * 2
    brute = torch.cdist(x, cb.codewords().detach()).argmin(1)
    assert torch.equal(cb.assign(x, chunk=7), brute)


def test_loss_matches_hand_computation_with_an_empty_codeword():
    cb = SparseCodebook(3, 4, 2)
    with torch.no_grad():
        cb.weight.copy_(torch.tensor([[3.0, 2.0, 0.0, 0.0], [0.0, 0.0, 1.0, 2.0], [1.0, 0.0, 5.0, 0.0]]))
    x = torch.tensor([[2.0, 2.0, 9.0, 9.0], [4.0, 0.0, 1.0, 1.0], [0.0, 0.0, 1.0, 1.0]])
    assign = torch.tensor([0, 0, 1])                         # codeword 2 is empty
    # μ_0 = mean of P_{0,1}(x_0), P_{0,1}(x_1) = [3, 1, 0, 0]; μ_1 = [0, 0, 1, 1]; μ_2 = 0
    expected = ((torch.tensor([0.0, 1.0, 0, 0]) ** 2).mean() + (torch.tensor([0, 0, 0.0, 1.0]) ** 2).mean()
                + (torch.tensor([1.0, 0, 5.0, 0]) ** 2).mean()) / 3
    loss = cb.loss(x, assign)
    torch.testing.assert_close(loss, expected)
    loss.backward()
    assert cb.weight.grad[0, 2:].abs().sum() == 0           # only the kept entries get gradients
    assert cb.active_ratio(assign) == pytest.approx(2 / 3)


def test_validation():
    with pytest.raises(ConfigError):
        SparseCodebook(3, 4, 5)
    cb = SparseCodebook(3, 4, 2)
    with pytest.raises(DataError, match="embeddings"):
        cb.assign(torch.zeros(2, 5))
    with pytest.raises(DataError):
        cb.init_from(torch.zeros(2, 4))
