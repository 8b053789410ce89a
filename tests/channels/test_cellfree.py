"""Cell-free generator: geometry, large-scale statistics, Rayleigh power, bounded CSI error."""

from __future__ import annotations

import math

import pytest
import torch

from chanlab.channels.cellfree import (
    PAPER_N_ANT, PAPER_N_APS, PAPER_N_USERS, CellFreeDrop, CellFreeLayout, generate_cellfree,
    noise_power_for_snr, path_gain, sample_bounded_error,
)
from chanlab.core.errors import ConfigError, DataError


def _distances(drop: CellFreeDrop) -> torch.Tensor:
    return torch.linalg.vector_norm(drop.user_pos[:, :, None, :] - drop.ap_pos[:, None, :, :], dim=-1)


def test_shapes_dtypes_and_paper_defaults():
    drop = generate_cellfree(3, seed=1)
    q, m, i = PAPER_N_APS, PAPER_N_ANT, PAPER_N_USERS
    assert (q, m, i) == (16, 4, 16)  # Sec. V: 16 APs, 16 users, 4 antennas per AP
    assert drop.h_hat.shape == drop.h.shape == drop.delta_h.shape == (3, i, q, m)
    assert drop.h_hat.dtype == drop.h.dtype == torch.complex64
    assert drop.eps.shape == drop.beta.shape == (3, i, q)
    assert drop.eps.dtype == drop.beta.dtype == torch.float32
    assert drop.ap_pos.shape == (3, q, 2) and drop.user_pos.shape == (3, i, 2)
    assert len(drop) == 3 and drop.layout == CellFreeLayout()
    assert drop.layout.n_tx == q * m
    for pos in (drop.ap_pos, drop.user_pos):
        assert float(pos.min()) >= 0.0 and float(pos.max()) <= 1000.0


def test_custom_sizes_and_complex128():
    drop = generate_cellfree(2, n_aps=3, n_ant=2, n_users=5, area=50.0, seed=0,
                             dtype=torch.complex128)
    assert drop.h.shape == (2, 5, 3, 2) and drop.h.dtype == torch.complex128
    assert drop.beta.dtype == drop.eps.dtype == drop.ap_pos.dtype == torch.float64
    assert float(drop.ap_pos.max()) <= 50.0
    torch.testing.assert_close(drop.h, drop.h_hat + drop.delta_h)


def test_seeds_reproducible_and_distinct():
    a = generate_cellfree(4, n_aps=4, n_users=3, seed=7)
    b = generate_cellfree(4, n_aps=4, n_users=3, seed=7)
    c = generate_cellfree(4, n_aps=4, n_users=3, seed=8)
    for name in ("h_hat", "h", "delta_h", "eps", "beta", "ap_pos", "user_pos"):
        assert torch.equal(getattr(a, name), getattr(b, name)), name
    assert not torch.equal(a.h_hat, c.h_hat)
    assert not torch.equal(a.ap_pos, c.ap_pos)


def test_path_gain_law_and_min_distance_clip():
    d = torch.tensor([0.0, 0.5, 1.0, 200.0, 400.0], dtype=torch.float64)
    got = path_gain(d, min_distance=1.0)
    want = torch.tensor([200.0**3, 200.0**3, 200.0**3, 1.0, 1 / 8], dtype=torch.float64)
    torch.testing.assert_close(got, want)
    # Without shadowing, beta is exactly the path gain of the returned positions.
    drop = generate_cellfree(5, n_aps=6, n_users=4, shadowing_db=0.0, seed=3, dtype=torch.complex128)
    torch.testing.assert_close(drop.beta, path_gain(_distances(drop), 1.0))


def test_large_scale_statistics_exponent_3_and_8db_shadowing():
    drop = generate_cellfree(1500, n_aps=16, n_ant=1, n_users=16, seed=11, error_level=0.0)
    d = _distances(drop).double().flatten()
    beta_db = 10 * torch.log10(drop.beta.double().flatten())
    # Regress 10 log10 beta on 10 log10 d: slope -3 (exponent) and intercept 30 log10 200.
    x = 10 * torch.log10(d)
    xc = x - x.mean()
    slope = float((xc * (beta_db - beta_db.mean())).sum() / xc.square().sum())
    intercept = float(beta_db.mean() - slope * x.mean())
    assert slope == pytest.approx(-3.0, abs=0.02)
    assert intercept == pytest.approx(30 * math.log10(200.0), abs=0.6)
    # The shadowing residual is N(0, 8^2) dB, i.e. the median linear shadowing gain is 1.
    resid = beta_db - 10 * torch.log10(path_gain(d, 1.0))
    assert float(resid.mean()) == pytest.approx(0.0, abs=0.05)
    assert float(resid.std()) == pytest.approx(8.0, rel=0.01)
    assert float(torch.median(10 ** (resid / 10))) == pytest.approx(1.0, abs=0.02)


def test_rayleigh_power_and_circularity():
    drop = generate_cellfree(400, n_aps=8, n_ant=4, n_users=8, seed=5, error_level=0.0,
                             dtype=torch.complex128)
    # Normalise by beta so that every entry is CN(0, 1): E|g|^2 = 1, E g^2 = 0, E g = 0.
    g = drop.h_hat / drop.beta.sqrt().unsqueeze(-1)
    n = g.numel()  # 102400 draws: the standard error of the power mean is ~0.3%
    assert float(g.abs().square().mean()) == pytest.approx(1.0, abs=5 / math.sqrt(n))
    assert abs(complex(g.square().mean())) < 5 / math.sqrt(n)
    assert abs(complex(g.mean())) < 5 / math.sqrt(n)
    assert float(g.real.var()) == pytest.approx(0.5, abs=0.01)
    # Without error the true channel is the estimate.
    assert torch.equal(drop.h, drop.h_hat) and not bool(drop.eps.any())


def test_error_bounds_follow_error_level_definition():
    eta = 0.2
    drop = generate_cellfree(300, n_aps=8, n_users=6, error_level=eta, seed=2)
    # eps_i^q = eta ||h_hat_i^q||, so the per-user bound is eta ||h_hat_i||.
    torch.testing.assert_close(drop.eps, eta * torch.linalg.vector_norm(drop.h_hat, dim=-1))
    user_bound = torch.linalg.vector_norm(drop.eps, dim=-1)
    torch.testing.assert_close(user_bound, eta * torch.linalg.vector_norm(drop.h_hat.flatten(2), dim=-1))


@pytest.mark.parametrize("mode", ["sphere", "ball"])
def test_monte_carlo_bound_is_never_violated(mode):
    g = torch.Generator().manual_seed(0)
    m = 4
    h_hat = torch.randn(200, 50, m, dtype=torch.complex64, generator=g)
    # Radii spanning eight orders of magnitude, and some exact zeros.
    eps = 10 ** (torch.rand(200, 50, generator=g) * 8 - 6)
    eps[:, :3] = 0.0
    for _ in range(20):  # 200,000 error vectors in all
        dh = sample_bounded_error(h_hat, eps, g, mode=mode)
        assert dh.dtype == h_hat.dtype and dh.shape == h_hat.shape
        norm = torch.linalg.vector_norm(dh, dim=-1)
        assert bool((norm <= eps).all()), float((norm - eps).max())
        assert not bool(dh[:, :3].any())
        if mode == "sphere":
            torch.testing.assert_close(norm, eps, rtol=1e-5, atol=0.0)


def test_ball_mode_is_uniform_in_the_ball_and_direction_isotropic():
    g = torch.Generator().manual_seed(1)
    m = 3
    h_hat = torch.zeros(40000, m, dtype=torch.complex128)
    eps = torch.full((40000,), 2.0, dtype=torch.float64)
    dh = sample_bounded_error(h_hat, eps, g, mode="ball")
    r = torch.linalg.vector_norm(dh, dim=-1) / 2.0
    # Uniform in a ball of real dimension 2M: P(r <= t) = t^(2M), so r^(2M) ~ U(0, 1).
    u = r ** (2 * m)
    assert float(u.mean()) == pytest.approx(0.5, abs=0.01)
    assert float((u < 0.25).double().mean()) == pytest.approx(0.25, abs=0.01)
    # Isotropic: the mean is zero and E[dh dh^H] = E[r^2]/M I, with E[r^2] = 4 * 2M/(2M+2).
    assert float(torch.linalg.vector_norm(dh.mean(0))) < 0.03
    cov = dh.T @ dh.conj() / dh.shape[0]
    want = 4.0 * (2 * m / (2 * m + 2)) / m
    torch.testing.assert_close(cov, want * torch.eye(m, dtype=cov.dtype), atol=0.03, rtol=0.0)


def test_drop_respects_bound_and_realised_error_level():
    eta = 0.1
    drop = generate_cellfree(500, n_aps=16, n_users=8, error_level=eta, seed=9)
    norm = torch.linalg.vector_norm(drop.delta_h, dim=-1)
    assert bool((norm <= drop.eps).all())
    # Recomputing h - h_hat only adds the rounding of the sum (relative to ||h_hat||).
    recomputed = torch.linalg.vector_norm(drop.h - drop.h_hat, dim=-1)
    slack = 4 * torch.finfo(torch.float32).eps * torch.linalg.vector_norm(drop.h_hat, dim=-1)
    assert bool((recomputed <= drop.eps + slack).all())
    # Realised eta_i = ||dh_i|| / ||h_i|| (Sec. V). In sphere mode it lies in
    # [eta/(1+eta), eta/(1-eta)] for every user and averages close to eta / sqrt(1 + eta^2).
    level = (torch.linalg.vector_norm(drop.delta_h.flatten(2), dim=-1)
             / torch.linalg.vector_norm(drop.h.flatten(2), dim=-1))
    assert float(level.min()) >= eta / (1 + eta) * (1 - 1e-5)
    assert float(level.max()) <= eta / (1 - eta) * (1 + 1e-5)
    assert float(level.mean()) == pytest.approx(eta / math.sqrt(1 + eta**2), rel=0.01)

    ball = generate_cellfree(500, n_aps=16, n_users=8, error_level=eta, seed=9, error_mode="ball")
    assert bool((torch.linalg.vector_norm(ball.delta_h, dim=-1) <= ball.eps).all())
    ball_level = (torch.linalg.vector_norm(ball.delta_h.flatten(2), dim=-1)
                  / torch.linalg.vector_norm(ball.h.flatten(2), dim=-1))
    m = ball.layout.n_ant
    assert float(ball_level.mean()) == pytest.approx(eta * math.sqrt(m / (m + 1)), rel=0.05)


def test_noise_power_for_snr():
    assert noise_power_for_snr(0.0) == 1.0
    assert noise_power_for_snr(10.0) == pytest.approx(0.1)
    assert noise_power_for_snr(-20.0, p_max=2.0) == pytest.approx(200.0)
    with pytest.raises(ConfigError):
        noise_power_for_snr(float("nan"))
    with pytest.raises(ConfigError):
        noise_power_for_snr(0.0, p_max=0.0)


@pytest.mark.parametrize("kwargs, match", [
    ({"num": 0}, "num"),
    ({"num": 2, "n_aps": 0}, "n_aps"),
    ({"num": 2, "n_users": 2.5}, "n_users"),
    ({"num": 2, "n_ant": -1}, "n_ant"),
    ({"num": 2, "area": 0.0}, "area"),
    ({"num": 2, "error_level": -0.1}, "error_level"),
    ({"num": 2, "shadowing_db": float("inf")}, "shadowing_db"),
    ({"num": 2, "min_distance": 0.0}, "min_distance"),
    ({"num": 2, "error_mode": "cube"}, "error_mode"),
    ({"num": 2, "dtype": torch.float32}, "dtype"),
    ({"num": 2, "device": "tpu"}, "device"),
])
def test_generator_config_errors(kwargs, match):
    num = kwargs.pop("num")
    with pytest.raises(ConfigError, match=match):
        generate_cellfree(num, **kwargs)


def test_sample_bounded_error_validation():
    h_hat = torch.zeros(2, 3, 4, dtype=torch.complex64)
    with pytest.raises(DataError, match=r"eps: expected shape \[2, 3\]"):
        sample_bounded_error(h_hat, torch.ones(2, 4))
    with pytest.raises(DataError, match="negative"):
        sample_bounded_error(h_hat, -torch.ones(2, 3))
    with pytest.raises(DataError, match="NaN"):
        sample_bounded_error(h_hat, torch.full((2, 3), float("nan")))
    with pytest.raises(DataError, match="complex"):
        sample_bounded_error(h_hat.real, torch.ones(2, 3))
    with pytest.raises(DataError, match="real"):
        sample_bounded_error(h_hat, torch.ones(2, 3, dtype=torch.complex64))
    with pytest.raises(ConfigError, match="mode"):
        sample_bounded_error(h_hat, torch.ones(2, 3), mode="cube")


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA GPU")
def test_cuda_drop():
    drop = generate_cellfree(8, seed=0, device="cuda")
    assert drop.h.is_cuda and drop.beta.is_cuda
    assert bool((torch.linalg.vector_norm(drop.delta_h, dim=-1) <= drop.eps).all())
