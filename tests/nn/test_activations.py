"""Mish from element-wise kernels: the same function and gradient as torch's."""

import pytest
import torch

from chanlab.nn.activations import Mish, mish


@pytest.mark.parametrize("dtype, tol", [(torch.float64, 1e-12), (torch.float32, 2e-6)])
def test_equals_torch_mish_with_its_gradient(dtype, tol):
    x = torch.cat([torch.linspace(-60, 60, 2001), torch.randn(5000) * 3]).to(dtype)
    a = x.clone().requires_grad_(True)
    b = x.clone().requires_grad_(True)
    ya, yb = mish(a), torch.nn.functional.mish(b)
    torch.testing.assert_close(ya, yb, rtol=tol, atol=tol)
    g = torch.randn_like(x)
    ya.backward(g)
    yb.backward(g)
    torch.testing.assert_close(a.grad, b.grad, rtol=10 * tol, atol=10 * tol)


def test_gradient_against_finite_differences():
    x = (torch.randn(40, dtype=torch.float64) * 4).requires_grad_(True)
    assert torch.autograd.gradcheck(mish, (x,))
    assert isinstance(Mish()(x), torch.Tensor) and not list(Mish().parameters())


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_cuda_matches_cpu():
    x = torch.randn(1000)
    torch.testing.assert_close(mish(x.cuda()).cpu(), mish(x), rtol=1e-5, atol=1e-6)
