"""The learned factorized prior: a proper distribution, the right rate, exact coding.

The rate the prior reports is only worth optimising if (i) its CDF is a CDF, so the bin
masses form a distribution, (ii) fitted to data it reaches the entropy of that data, and
(iii) the range coder, driven by tables built from the same CDF, writes about that many
bytes and gives back exactly the rounded latents.
"""

import math

import numpy as np
import pytest
import torch

from chanlab.core.errors import DataError
from chanlab.quant.factorized_prior import FactorizedPrior

STDS = (1.0, 4.0)


def _gaussian(shape, stds=STDS, seed=0):
    g = torch.Generator().manual_seed(seed)
    scale = torch.tensor(stds).reshape(1, -1, *([1] * (len(shape) - 2)))
    return torch.randn(*shape, generator=g) * scale


def _discretized_gaussian_entropy(std):
    """H(round(y)) in bits for y ~ N(0, std^2): -Σ_k P_k log2 P_k, P_k the mass of [k ± 1/2]."""
    cdf = lambda x: 0.5 * (1 + math.erf(x / (std * math.sqrt(2))))  # noqa: E731
    masses = [cdf(k + 0.5) - cdf(k - 0.5) for k in range(-int(20 * std) - 1, int(20 * std) + 2)]
    return -sum(p * math.log2(p) for p in masses if p > 0)


def _train(prior, steps=300, seed=0):
    torch.manual_seed(seed)
    opt = torch.optim.Adam(prior.parameters(), lr=1e-2)
    prior.train()
    for step in range(steps):
        y = _gaussian((32, len(STDS), 64), seed=seed * 10_000 + step)
        _, lik = prior(y)
        loss = prior.bits(lik).mean() / y[0].numel()
        opt.zero_grad()
        loss.backward()
        opt.step()
    return prior.eval()


@pytest.fixture(scope="module", autouse=True)
def _one_thread():
    """The tensors here are tiny: intra-op threads only add overhead, and with the CPUs
    shared (a parallel test run) their spin-waits slow training by two orders of magnitude."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def fresh():
    torch.manual_seed(1)
    return FactorizedPrior(len(STDS)).eval()


@pytest.fixture(scope="module")
def trained():
    torch.manual_seed(2)
    return _train(FactorizedPrior(len(STDS)))


@pytest.fixture(params=["fresh", "trained"])
def prior(request):
    return request.getfixturevalue(request.param)


# ----- a proper distribution ----------------------------------------------------------------

def test_cdf_is_monotone_with_limits_0_and_1(prior):
    x = np.concatenate([-np.logspace(4, -3, 400), [0.0], np.logspace(-3, 4, 400)])
    cdf = prior.cdf(np.broadcast_to(x, (prior.channels, x.size)))
    assert cdf.dtype == np.float64
    assert (np.diff(cdf, axis=1) >= 0).all()
    assert (cdf[:, 0] < 1e-12).all() and (cdf[:, -1] > 1 - 1e-12).all()
    # strictly increasing where the density lives
    inner = np.abs(x) < 3
    assert (np.diff(cdf[:, inner], axis=1) > 0).all()


def test_bin_masses_sum_to_one(prior):
    # Σ_k [F(k + 1/2) - F(k - 1/2)] telescopes to 1. In float64 and without the rate's
    # floor (likelihood_bound, a guard for -log, not part of the density).
    exact = FactorizedPrior(prior.channels, likelihood_bound=0.0)
    exact.load_state_dict(prior.state_dict())
    exact.double()
    k = torch.arange(-4096, 4097, dtype=torch.float64)
    total = exact.likelihood(k.reshape(1, 1, -1).expand(1, prior.channels, -1)).sum(-1)
    assert torch.allclose(total, torch.ones_like(total), atol=1e-6, rtol=0), total
    # the float32 module with its floor: the same sum over the coding window
    tables = prior.coding_tables()
    for c in range(prior.channels):
        ks = torch.arange(tables.width, dtype=torch.float32) + float(tables.offsets[c])
        y = torch.zeros(ks.numel(), prior.channels)
        y[:, c] = ks
        with torch.no_grad():
            mass = prior.likelihood(y)[:, c].double().sum()
        assert abs(float(mass) - 1) < 1e-5


def test_coding_tables_are_the_same_density(prior):
    # Table entries are the bin masses of the float64 CDF; the float32 rate term agrees.
    tables = prior.coding_tables()
    assert tables.n_channels == prior.channels
    assert (tables.pmf[:, 0] < 1e-8).all()  # escapes: only the tail_mass (plus rounding)
    for c in range(prior.channels):
        ks = torch.arange(tables.width, dtype=torch.float32) + float(tables.offsets[c])
        y = torch.zeros(ks.numel(), prior.channels)
        y[:, c] = ks
        with torch.no_grad():
            lik = prior.likelihood(y)[:, c].double().numpy()
        big = tables.pmf[c, 1:] > 1e-6
        np.testing.assert_allclose(tables.pmf[c, 1:][big], lik[big], rtol=1e-4)


def test_symmetric_logits_keep_the_central_mass():
    # With zero biases the logit is odd, so logit(-1/2) = -logit(1/2): the stable difference
    # must still give F(1/2) - F(-1/2), not 0 (a sign(0) = 0 trap).
    prior = FactorizedPrior(1)
    with torch.no_grad():
        for b in prior.biases:
            b.zero_()
    lik = prior.likelihood(torch.tensor([[0.0], [1.0], [-1.0]]))[:, 0]
    expected = prior.cdf(np.array([[0.5, 1.5, -0.5]])) - prior.cdf(np.array([[-0.5, 0.5, -1.5]]))
    np.testing.assert_allclose(lik.detach().double().numpy(), expected[0], rtol=1e-5)


# ----- the rate -----------------------------------------------------------------------------

def test_trained_rate_reaches_the_discretized_gaussian_entropy(trained):
    # In eval mode the rate of round(y) is the cross-entropy of the model to the discretized
    # Gaussian: at least H (up to Monte Carlo noise), and close to it once trained.
    y = _gaussian((128, len(STDS), 128), seed=123)
    with torch.no_grad():
        y_hat, lik = trained(y)
    assert torch.equal(y_hat, torch.round(y))
    rate = (-torch.log2(lik)).mean(dim=(0, 2)).double()
    for c, std in enumerate(STDS):
        entropy = _discretized_gaussian_entropy(std)
        assert entropy - 0.03 < float(rate[c]) < entropy + 0.1, (c, float(rate[c]), entropy)
    bits = FactorizedPrior.bits(lik)
    assert bits.shape == (128,)
    torch.testing.assert_close(bits.mean() / y[0].numel(), rate.mean().float(), rtol=1e-4, atol=0)


def test_training_mode_adds_uniform_noise(trained):
    trained.train()
    try:
        y = _gaussian((16, len(STDS), 256), seed=5)
        y_tilde, lik = trained(y)
    finally:
        trained.eval()
    noise = (y_tilde - y).flatten()
    assert float(noise.abs().max()) <= 0.5
    # U(-1/2, 1/2): mean 0, variance 1/12 (n = 8192)
    assert abs(float(noise.mean())) < 4 * math.sqrt(1 / 12 / noise.numel())
    assert abs(float(noise.var()) - 1 / 12) < 0.01
    assert lik.requires_grad and lik.shape == y.shape
    (-torch.log2(lik)).sum().backward()


def test_rate_gradient_is_finite_for_outliers():
    prior = FactorizedPrior(2)
    y = torch.tensor([[0.0, 1e4], [-1e4, 3.0]]).reshape(2, 2, 1).requires_grad_(True)
    _, lik = prior.train()(y)
    prior.bits(lik).sum().backward()
    assert torch.isfinite(y.grad).all()
    assert all(torch.isfinite(p.grad).all() for p in prior.parameters())


# ----- coding -------------------------------------------------------------------------------

@pytest.mark.parametrize("shape", [(4, 2, 16, 16), (3, 2, 64, 32), (5, 2, 37), (1, 2, 1)])
def test_compress_round_trip_and_length(trained, shape):
    y = _gaussian(shape, seed=sum(shape))
    y.view(-1)[::7] = torch.round(y.view(-1)[::7]) + 0.5  # exact ties: same rounding both sides
    streams = trained.compress(y)
    assert len(streams) == shape[0]
    back = trained.decompress(streams, shape[1:])
    assert back.dtype == torch.float32 and back.shape == y.shape
    assert torch.equal(back, torch.round(y))
    # the entropy estimate (eval mode) predicts the real size: 2-byte header plus the coder's
    # termination, and the 24-bit quantization of the probabilities
    with torch.no_grad():
        est = FactorizedPrior.bits(trained(y)[1]).double().numpy() / 8
    real = np.array([len(s) for s in streams])
    assert (real <= est * 1.02 + 8).all(), (real, est)


def test_compress_outliers_escape_exactly(trained):
    y = _gaussian((2, 2, 8, 8), seed=9)
    y[0, 0, 0, 0], y[0, 1, 3, 4], y[1, 0, 7, 7] = 1e5, -3e6, 2.0**31 - 128  # float32-exact, < 2^31
    tables = trained.coding_tables()
    back = trained.decompress(trained.compress(y, tables), (2, 8, 8), tables)
    assert torch.equal(back, torch.round(y))


def test_compress_from_other_model_fails_loudly(trained, fresh):
    from chanlab.core.errors import BitstreamError

    y = _gaussian((2, 2, 4, 4), seed=11)
    streams = trained.compress(y)
    with pytest.raises(BitstreamError):
        fresh.decompress(streams, (2, 4, 4))
    with pytest.raises(BitstreamError):
        trained.decompress(streams, (2, 4, 5))


def test_input_validation(fresh):
    for bad in (torch.zeros(2, 3, 4, 4), torch.zeros(2, 1, 8), torch.zeros(5)):
        with pytest.raises(DataError, match="expected"):
            fresh.likelihood(bad)
        with pytest.raises(DataError, match="expected"):
            fresh(bad)
        with pytest.raises(DataError):
            fresh.compress(bad.reshape(1, *bad.shape) if bad.ndim == 1 else bad)
    with pytest.raises(DataError):
        fresh.decompress([b""], (3, 4, 4))
    with pytest.raises(DataError):
        fresh.channel_map(())
    for value in (float("nan"), float("inf"), -float("inf")):
        y = torch.zeros(2, 2, 4)
        y[1, 0, 2] = value
        with pytest.raises(DataError, match="NaN or Inf"):
            fresh.compress(y)
    with pytest.raises(DataError):
        FactorizedPrior(0)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_cuda_likelihood_and_coding(trained):
    import copy

    gpu = copy.deepcopy(trained).to("cuda")
    y = _gaussian((4, 2, 16, 16), seed=13)
    with torch.no_grad():
        lik_gpu = gpu.likelihood(y.cuda())
        lik_cpu = trained.likelihood(y)
    assert lik_gpu.is_cuda and lik_gpu.shape == y.shape
    torch.testing.assert_close(lik_gpu.cpu(), lik_cpu, rtol=1e-4, atol=1e-7)
    # tables come from the float64 CPU CDF: streams written on the GPU model decode on CPU
    streams = gpu.compress(y.cuda())
    assert torch.equal(trained.decompress(streams, (2, 16, 16)), torch.round(y))
