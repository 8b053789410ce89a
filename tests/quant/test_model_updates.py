import numpy as np
import pytest
import torch
from scipy.stats import truncnorm

from chanlab.core.errors import BitstreamError, ConfigError, DataError
from chanlab.quant.model_updates import (
    TruncatedGaussianPrior, UniformPrior, UpdateQuantizer, decode_updates, encode_updates, level_pmf,
    make_prior, update_bits,
)

Q = UpdateQuantizer(step=5e-4, n_bins=50)


def test_rounds_half_up_and_clips_to_the_levels():
    q = UpdateQuantizer(step=0.1, n_bins=7)  # levels -3..3
    delta = torch.tensor([0.05, -0.05, 0.149, 0.151, -0.25, 0.29, 5.0, -5.0], dtype=torch.float64)
    assert q.indices(delta).tolist() == [1, 0, 1, 2, -2, 3, 3, -3]
    assert UpdateQuantizer(0.1, 50).half_levels == 24 and UpdateQuantizer(0.1, 50).n_levels == 49


def test_straight_through_gradient_and_values():
    delta = torch.linspace(-0.02, 0.02, 101, requires_grad=True)
    out = Q.quantize(delta)
    out.sum().backward()
    assert torch.equal(delta.grad, torch.ones_like(delta))
    assert torch.equal(out.detach(), Q.dequantize(Q.indices(delta)))
    assert float(out.detach().abs().max()) == pytest.approx(24 * 5e-4)


def test_uniform_pmf_closed_form():
    # U(-N t, N t): each inner level has mass t / (2 N t) = 1 / (2N); the edges take the tails.
    pmf = level_pmf(make_prior("uniform", Q), Q)
    assert pmf.shape == (49,) and pmf.sum() == pytest.approx(1.0)
    np.testing.assert_allclose(pmf[1:-1], 1 / 100, rtol=1e-6)
    np.testing.assert_allclose(pmf[0], pmf[-1])
    np.testing.assert_allclose(pmf[0], (1 - 47 / 100) / 2, rtol=1e-6)


def test_truncated_gaussian_pmf_matches_monte_carlo():
    prior = TruncatedGaussianPrior(mu=0.001, sigma=0.006, a=-0.02, b=0.03)
    draws = truncnorm.rvs((prior.a - prior.mu) / prior.sigma, (prior.b - prior.mu) / prior.sigma, loc=prior.mu,
                          scale=prior.sigma, size=400_000, random_state=np.random.default_rng(0))
    levels = Q.indices(torch.from_numpy(draws)).numpy() + Q.half_levels
    freq = np.bincount(levels, minlength=Q.n_levels) / draws.size
    np.testing.assert_allclose(freq, level_pmf(prior, Q), atol=2.5e-3)


def test_round_trip_and_size_near_the_ideal_bits():
    rng = np.random.default_rng(1)
    delta = torch.from_numpy(rng.normal(0, 0.004, 5000))
    levels = Q.indices(delta)
    for name in ("uniform", "gaussian"):
        prior = make_prior(name, Q)
        stream = encode_updates(levels, prior, Q)
        assert np.array_equal(decode_updates(stream, levels.numel(), prior, Q), levels.numpy())
        ideal = update_bits(levels, prior, Q)
        assert ideal <= 8 * len(stream) <= 1.01 * ideal + 64


def test_gaussian_prior_codes_small_updates_cheaper_than_uniform():
    levels = Q.indices(torch.from_numpy(np.random.default_rng(2).normal(0, 0.003, 2000)))
    assert update_bits(levels, make_prior("gaussian", Q, sigma=0.003), Q) < update_bits(levels, make_prior("uniform", Q), Q)


def test_corrupt_or_mismatched_streams_raise():
    levels = Q.indices(torch.from_numpy(np.random.default_rng(3).normal(0, 0.004, 300)))
    prior = make_prior("uniform", Q)
    stream = encode_updates(levels, prior, Q)
    flipped = bytearray(stream)
    flipped[5] ^= 0x10
    for bad in (bytes(flipped), stream[:-4], b""):
        with pytest.raises(BitstreamError):
            decode_updates(bad, 300, prior, Q)
    with pytest.raises(BitstreamError):
        decode_updates(stream, 299, prior, Q)
    with pytest.raises(BitstreamError):  # read with another prior
        decode_updates(stream, 300, make_prior("gaussian", Q), Q)


def test_bad_arguments():
    with pytest.raises(ConfigError):
        UpdateQuantizer(step=0.0, n_bins=10)
    with pytest.raises(ConfigError):
        UpdateQuantizer(step=0.1, n_bins=1)
    with pytest.raises(ConfigError):
        UniformPrior(1.0, 0.0)
    with pytest.raises(ConfigError):
        make_prior("laplace", Q)
    with pytest.raises(DataError):
        encode_updates(np.array([100]), make_prior("uniform", Q), Q)
