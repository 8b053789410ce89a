import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from chanlab.channels.cellfree import generate_cellfree, noise_power_for_snr
from chanlab.classical import wmmse as wm
from chanlab.classical.wmmse import (
    average_serving_aps, multiplication_count_cnn, multiplication_count_jcbnet,
    multiplication_count_rjapcbn, multiplication_count_sparse_wmmse, multiplication_count_wmmse,
    multiplication_counts_table2, serving_aps, sparse_wmmse, wmmse, wmmse_reference_loop,
)
from chanlab.core.errors import ConfigError, DataError
from chanlab.metrics.rates import sum_rate, user_rates

SIGMA2 = noise_power_for_snr(10.0)


def _drop(num=3, aps=4, ant=2, users=4, seed=0, dtype=torch.complex128, error_level=0.1):
    return generate_cellfree(num, n_aps=aps, n_ant=ant, n_users=users, seed=seed, dtype=dtype,
                             error_level=error_level)


def _ap_power(v):
    return v.abs().square().sum((1, 3))


def _rand(shape, seed, dtype=torch.complex128):
    return torch.randn(shape, dtype=dtype, generator=torch.Generator().manual_seed(seed))


# --- closed forms -------------------------------------------------------------------------------


def test_single_user_single_ap_is_mrt_at_full_power():
    h = _rand((4, 1, 1, 3), 0)
    init = 0.1 * _rand((4, 1, 1, 3), 1)  # far from MRT
    v = wmmse(h, 0.5, 2.0, init=init, n_iter=30, tol=0)
    best = torch.log2(1 + 2.0 * h.abs().square().sum((1, 2, 3)) / 0.5)
    assert torch.allclose(sum_rate(h, v, 0.5), best, rtol=1e-9)
    assert torch.allclose(_ap_power(v), torch.full((4, 1), 2.0, dtype=torch.float64), rtol=1e-12)
    cos = (h.conj() * v).sum((1, 2, 3)).abs() / (h.flatten(1).norm(dim=1) * v.flatten(1).norm(dim=1))
    assert torch.allclose(cos, torch.ones(4, dtype=torch.float64), atol=1e-9)


def test_single_user_several_aps_reaches_per_ap_optimum():
    # max |sum_q h^qH v^q|^2 s.t. ||v^q||^2 <= P: v^q = sqrt(P) h^q / ||h^q||, each AP at full power.
    h = _rand((3, 1, 3, 2), 2)
    init = 0.3 * _rand((3, 1, 3, 2), 3)
    v = wmmse(h, 0.5, 2.0, init=init, n_iter=300, tol=0)
    best = torch.log2(1 + 2.0 * h.norm(dim=-1).sum((1, 2)) ** 2 / 0.5)
    assert torch.allclose(sum_rate(h, v, 0.5), best, rtol=1e-7)
    assert torch.allclose(_ap_power(v), torch.full((3, 3), 2.0, dtype=torch.float64), rtol=1e-6)
    # The default init (per-AP MRT at full power) is already optimal and stays there.
    v0 = wmmse(h, 0.5, 2.0, n_iter=3, tol=0)
    assert torch.allclose(sum_rate(h, v0, 0.5), best, rtol=1e-12)


def test_flat_input_uses_one_total_budget():
    h = _rand((3, 1, 6), 4)
    v = wmmse(h, 0.2, 1.5, init=_rand((3, 6, 1), 5), n_iter=30, tol=0)  # full power, wrong direction
    assert v.shape == (3, 6, 1)
    assert torch.allclose(sum_rate(h, v, 0.2), torch.log2(1 + 1.5 * h.norm(dim=(1, 2)) ** 2 / 0.2),
                          rtol=1e-9)
    # Multi-user: flat h is a single AP, i.e. the [B, I, 1, N] cell-free case.
    hm = _rand((2, 3, 4), 6)
    vf = wmmse(hm, 0.1, 1.0, n_iter=10, tol=0)
    vc = wmmse(hm.unsqueeze(2), 0.1, 1.0, n_iter=10, tol=0)
    assert torch.allclose(vf, vc[:, :, 0, :].transpose(1, 2), atol=1e-12)
    assert bool((vf.abs().square().sum((1, 2)) <= 1.0).all())


# --- monotonicity, constraints, agreement ---------------------------------------------------


@pytest.mark.parametrize("dtype", [torch.complex64, torch.complex128])
def test_wsr_is_monotone_and_per_ap_budgets_hold(dtype):
    drop = _drop(num=4, aps=5, ant=2, users=4, seed=1, dtype=dtype)
    p_max = torch.tensor([1.0, 0.5, 2.0, 1.0, 0.25])
    weights = torch.tensor([1.0, 2.0, 0.5, 1.0])
    v, hist = wmmse(drop.h, SIGMA2, p_max, weights=weights, n_iter=25, tol=0, return_history=True)
    assert v.dtype == dtype and v.shape == drop.h.shape and hist.shape == (26, 4)
    slack = 1e-9 if dtype == torch.complex128 else 1e-5
    assert bool((hist[1:] >= hist[:-1] - slack * hist[1:].abs()).all())
    assert bool((hist[-1] > hist[0]).all())
    assert bool((_ap_power(v) <= p_max.to(v.real.dtype)).all())
    wsr = (weights.to(v.real.dtype) * user_rates(drop.h, v, SIGMA2)).sum(-1)
    assert torch.allclose(wsr, hist[-1], rtol=1e-5)


def test_batched_equals_per_sample_reference_loop():
    drop = _drop(num=3, aps=3, ant=2, users=3, seed=2)
    weights = torch.tensor([[1.0, 0.5, 2.0]])
    noise = torch.tensor([SIGMA2, 2 * SIGMA2, SIGMA2])
    v = wmmse(drop.h, noise, 1.0, weights=weights, n_iter=25, tol=0)
    v_ref = torch.from_numpy(wmmse_reference_loop(drop.h, noise, 1.0, weights=weights, n_iter=25))
    assert torch.allclose(sum_rate(drop.h, v, noise), sum_rate(drop.h, v_ref, noise), atol=1e-5)
    assert torch.allclose(v, v_ref, atol=1e-6)


def test_sparse_batched_equals_reference_loop():
    drop = _drop(num=2, aps=3, ant=2, users=3, seed=3)
    kw = dict(group_penalty=0.4, n_iter=10)
    v = sparse_wmmse(drop.h, SIGMA2, 1.0, tol=0, **kw)
    v_ref = torch.from_numpy(wmmse_reference_loop(drop.h, SIGMA2, 1.0, **kw))
    assert torch.allclose(sum_rate(drop.h, v, SIGMA2), sum_rate(drop.h, v_ref, SIGMA2), atol=1e-5)
    assert torch.equal(serving_aps(v), serving_aps(v_ref))


def test_tol_stops_early_and_n_iter_zero_returns_init():
    drop = _drop(num=2, seed=4)
    _, hist = wmmse(drop.h, SIGMA2, 1.0, n_iter=200, tol=1e-2, return_history=True)
    assert 2 <= hist.shape[0] < 201
    v0, hist0 = wmmse(drop.h, SIGMA2, 1.0, n_iter=0, return_history=True)
    assert hist0.shape == (1, 2)
    mrt = drop.h / drop.h.abs().square().sum((1, 3), keepdim=True).sqrt()
    assert torch.allclose(v0, mrt, atol=1e-12)


def test_imperfect_csi_usage_design_on_estimate_evaluate_on_truth():
    exact = _drop(num=2, seed=5, error_level=0.0)
    v = wmmse(exact.h_hat, SIGMA2, 1.0, n_iter=5)
    assert torch.equal(v, wmmse(exact.h, SIGMA2, 1.0, n_iter=5))
    noisy = _drop(num=2, seed=5, error_level=0.3)
    v_hat = wmmse(noisy.h_hat, SIGMA2, 1.0, n_iter=5)
    rate = sum_rate(noisy.h, v_hat, SIGMA2)
    assert bool(torch.isfinite(rate).all()) and bool((rate > 0).all())


# --- per-AP subproblems: KKT conditions ---------------------------------------------------------


def _check_kkt(c_hat, lam, p_max, kappa, start=None):
    """KKT of min sum_k x_k^H diag(lam) x_k - 2 Re(c_k^H x_k) + 2 kappa ||x_k||, sum ||x_k||^2 <= P."""
    b, _, m = c_hat.shape
    x, mu_out = wm._ap_update(c_hat, lam, torch.ones(b, m, dtype=torch.bool), p_max, kappa, start)
    power = x.abs().square().sum((1, 2))
    assert bool((power <= p_max).all())
    scale = float(c_hat.abs().max())
    for i in range(b):
        nz = x[i].norm(dim=-1) > 0
        # Zero blocks exactly where ||c|| <= kappa (at the optimal multiplier).
        assert bool((c_hat[i].norm(dim=-1)[~nz] <= kappa * (1 + 1e-9)).all())
        if not bool(nz.any()):
            continue
        # Active blocks: (lam + mu) x + kappa x / ||x|| = c for one mu >= 0 per AP.
        xs, cs = x[i][nz], c_hat[i][nz]
        resid = cs - kappa * xs / xs.norm(dim=-1, keepdim=True) - lam[i] * xs
        mu = (resid.conj() * xs).sum().real / xs.abs().square().sum()
        mu_scale = float(lam[i].max()) + scale / math.sqrt(float(p_max[i]))
        assert float(mu) >= -1e-8 * mu_scale
        assert torch.allclose(resid, mu * xs, atol=1e-7 * scale)
        assert math.isclose(float(mu), float(mu_out[i]), rel_tol=1e-6, abs_tol=1e-8 * mu_scale)
        if float(mu) > 1e-6 * mu_scale:  # complementary slackness
            assert math.isclose(float(power[i]), float(p_max[i]), rel_tol=1e-8)


@pytest.mark.parametrize("kappa", [0.0, 0.05, 0.4])
def test_per_ap_update_satisfies_kkt(kappa):
    g = torch.Generator().manual_seed(7)
    b, k, m = 6, 4, 3
    c_hat = torch.randn(b, k, m, dtype=torch.complex128, generator=g)
    lam = torch.rand(b, m, dtype=torch.float64, generator=g) * 2
    p_max = torch.tensor([0.05, 0.3, 1.0, 5.0, 50.0, 0.01], dtype=torch.float64)
    _check_kkt(c_hat, lam, p_max, kappa)
    _check_kkt(c_hat, lam, p_max, kappa, start=torch.full((b,), 3.0, dtype=torch.float64))


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 2**31 - 1), c_exp=st.floats(-4, 4), lam_exp=st.floats(-6, 4),
       p_exp=st.floats(-3, 3), kappa_frac=st.sampled_from([0.0, 0.1, 0.5, 0.9]))
def test_per_ap_update_kkt_across_scales(seed, c_exp, lam_exp, p_exp, kappa_frac):
    g = torch.Generator().manual_seed(seed)
    c_hat = torch.randn(3, 4, 3, dtype=torch.complex128, generator=g) * 10.0**c_exp
    lam = torch.rand(3, 3, dtype=torch.float64, generator=g) * 10.0**lam_exp
    p_max = torch.full((3,), 10.0**p_exp, dtype=torch.float64)
    kappa = kappa_frac * float(c_hat.norm(dim=-1).median())
    _check_kkt(c_hat, lam, p_max, kappa)


# --- S-WMMSE --------------------------------------------------------------------------------------


def test_sparse_with_zero_penalty_is_wmmse():
    drop = _drop(num=2, seed=8)
    a = wmmse(drop.h_hat, SIGMA2, 1.0, n_iter=10, tol=0)
    b = sparse_wmmse(drop.h_hat, SIGMA2, 1.0, group_penalty=0.0, n_iter=10, tol=0)
    assert torch.equal(a, b)
    c = sparse_wmmse(drop.h_hat, SIGMA2, 1.0, group_penalty=1e-7, n_iter=10, tol=0)
    assert torch.allclose(sum_rate(drop.h_hat, c, SIGMA2), sum_rate(drop.h_hat, a, SIGMA2), rtol=1e-4)
    assert bool((average_serving_aps(a) == drop.h.shape[2]).all())


def test_larger_penalty_serves_fewer_aps_and_objective_is_monotone():
    drop = _drop(num=4, aps=5, ant=2, users=4, seed=9)
    n_ave, rates = [], []
    for lam in (0.0, 0.3, 3.0):
        v, hist = sparse_wmmse(drop.h_hat, SIGMA2, 1.0, group_penalty=lam, n_iter=15, tol=0,
                               return_history=True)
        assert bool((hist[1:] >= hist[:-1] - 1e-9 * hist[1:].abs()).all())
        assert bool((_ap_power(v) <= 1.0).all())
        norms = v.norm(dim=-1)
        assert torch.allclose(hist[-1], sum_rate(drop.h_hat, v, SIGMA2) - lam * norms.sum((1, 2)))
        n_ave.append(float(average_serving_aps(v).mean()))
        rates.append(float(sum_rate(drop.h_hat, v, SIGMA2).mean()))
    assert n_ave[0] == 5.0
    assert n_ave[0] > n_ave[1] > n_ave[2]
    assert rates[0] > rates[2]


def test_serving_aps_and_eq33():
    v = torch.ones(2, 3, 4, 2, dtype=torch.complex64)
    v[0, 0, 1] = 0
    v[0, 2, :] = 0
    v[1, 1, 3] = 1e-4
    mask = serving_aps(v)
    assert mask.shape == (2, 3, 4) and mask.dtype == torch.bool
    assert int(mask[0].sum()) == 12 - 1 - 4 and bool(mask[1].all())
    q, i, m = 4, 3, 2
    zeros = (v == 0).sum((1, 2, 3)).float()
    eq33 = q * (1 - zeros / (q * i * m))
    assert torch.allclose(average_serving_aps(v), eq33)
    assert float(average_serving_aps(v, threshold=1e-3)[1]) == pytest.approx(11 / 3)


# --- Table II -------------------------------------------------------------------------------------


def test_table2_counts():
    assert multiplication_count_wmmse(1, 1, 1, 1) == 4 * 14
    # Q = I = 16, M = 4, Table II's parameters: the orders of magnitude quoted with Fig. 11.
    counts = multiplication_counts_table2()
    assert counts["WMMSE"] == multiplication_count_wmmse(16, 4, 16, 15)
    assert 1e8 <= counts["WMMSE"] < 1e9 and 1e9 <= counts["S-WMMSE"] < 1e10
    assert 1e7 <= counts["CNN"] < 1e9
    assert 1e6 <= counts["JcbNet"] < 1e7 and 1e6 <= counts["RJAPCBN"] < 1e7
    assert counts["RJAPCBN"] < counts["JcbNet"] < counts["CNN"] < counts["WMMSE"] < counts["S-WMMSE"]
    sw = 4 * 15 * (16 + 256 + 2 * 16 * 256 * 16 + 2 * 256 * 64 + 8 * 1024
                   + 10 * 16 * (16 * 15 * 16 + 64 + 0.9 * 16 * (math.log2(1e5) ** 2 + 1) * 84))
    assert multiplication_count_sparse_wmmse(16, 4, 16) == pytest.approx(sw)
    assert multiplication_count_rjapcbn(1, 1, 1, kernel=(1, 1), n_layers=1) == 2 + 2 + 1 + 2
    assert multiplication_count_jcbnet(16, 4, 16) == 4_260_864
    assert multiplication_count_cnn(16, 4, 16) == 256 * (2304 + 389120 + 8192 + 2160)
    with pytest.raises(ConfigError):
        multiplication_count_wmmse(0, 4, 16)


# --- validation -------------------------------------------------------------------------------


def test_validation_errors():
    h = _rand((2, 3, 2, 2), 10)
    with pytest.raises(DataError, match="complex"):
        wmmse(h.real, SIGMA2, 1.0)
    with pytest.raises(DataError, match="3-D or 4-D"):
        wmmse(h[0, 0], SIGMA2, 1.0)
    bad = h.clone()
    bad[0, 0, 0, 0] = float("nan")
    with pytest.raises(DataError, match="NaN"):
        wmmse(bad, SIGMA2, 1.0)
    with pytest.raises(DataError, match="noise_power"):
        wmmse(h, 0.0, 1.0)
    with pytest.raises(DataError, match="noise_power"):
        wmmse(h, torch.ones(5), 1.0)
    with pytest.raises(DataError, match="p_max"):
        wmmse(h, SIGMA2, torch.ones(3))
    with pytest.raises(DataError, match="p_max"):
        wmmse(h, SIGMA2, -1.0)
    with pytest.raises(DataError, match="weights"):
        wmmse(h, SIGMA2, 1.0, weights=torch.tensor([1.0, -1.0, 1.0]))
    with pytest.raises(DataError, match="init"):
        wmmse(h, SIGMA2, 1.0, init=torch.zeros(2, 3, 2, 3, dtype=torch.complex128))
    with pytest.raises(ConfigError, match="n_iter"):
        wmmse(h, SIGMA2, 1.0, n_iter=-1)
    with pytest.raises(ConfigError, match="tol"):
        wmmse(h, SIGMA2, 1.0, tol=-1e-3)
    with pytest.raises(ConfigError, match="inner_sweeps"):
        wmmse(h, SIGMA2, 1.0, inner_sweeps=0)
    with pytest.raises(ConfigError, match="group_penalty"):
        sparse_wmmse(h, SIGMA2, 1.0, group_penalty=-0.1)
    with pytest.raises(DataError, match="v"):
        serving_aps(h[0])
    with pytest.raises(ConfigError, match="threshold"):
        serving_aps(h, threshold=-1.0)
    with pytest.raises(DataError):
        wmmse_reference_loop(h.real, SIGMA2, 1.0)


def test_infeasible_init_is_scaled_onto_budgets():
    h = _rand((2, 3, 2, 2), 11)
    init = 10 * _rand((2, 3, 2, 2), 12)
    v, hist = wmmse(h, SIGMA2, 1.0, init=init, n_iter=0, return_history=True)
    assert bool((_ap_power(v) <= 1.0).all())
    assert torch.allclose(_ap_power(v), torch.ones(2, 2, dtype=torch.float64), rtol=1e-12)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_cuda_matches_cpu():
    drop = _drop(num=3, seed=13)
    v_cpu = sparse_wmmse(drop.h, SIGMA2, 1.0, group_penalty=0.2, n_iter=8, tol=0)
    v_gpu = sparse_wmmse(drop.h.cuda(), SIGMA2, 1.0, group_penalty=0.2, n_iter=8, tol=0)
    assert v_gpu.device.type == "cuda"
    assert torch.allclose(sum_rate(drop.h, v_gpu.cpu(), SIGMA2), sum_rate(drop.h, v_cpu, SIGMA2),
                          atol=1e-6)


def test_accepts_numpy_channels():
    h = _rand((2, 2, 2, 2), 14)
    v = wmmse(h.numpy(), SIGMA2, 1.0, n_iter=3, tol=0)
    assert isinstance(v, torch.Tensor)
    assert np.allclose(v.numpy(), wmmse_reference_loop(h.numpy(), SIGMA2, 1.0, n_iter=3), atol=1e-9)


def test_each_sample_stops_on_its_own_window_and_the_batch_does_not_matter():
    """Per-sample stopping: a sample's result is the one it gets alone; the window test holds
    where it stopped, and its history stays flat afterwards."""
    from chanlab.channels.cellfree import generate_cellfree
    from chanlab.classical.wmmse import iterations_run

    d = generate_cellfree(6, n_aps=4, n_ant=2, n_users=3, area=300.0, error_level=0.0, seed=3)
    h = d.h.to(torch.complex128)
    tol, window = 1e-4, 5
    v, hist = wmmse(h, 1e-3, 1.0, n_iter=200, tol=tol, window=window, return_history=True)
    iters = iterations_run(hist)
    assert hist.shape == (int(iters.max()) + 1, 6) and bool((iters >= window).all())
    for b in range(6):
        alone, alone_hist = wmmse(h[b:b + 1], 1e-3, 1.0, n_iter=200, tol=tol, window=window, return_history=True)
        torch.testing.assert_close(v[b:b + 1], alone, rtol=1e-10, atol=1e-12)
        n = int(iters[b])
        torch.testing.assert_close(hist[: n + 1, b], alone_hist[: n + 1, 0], rtol=1e-10, atol=1e-12)
        if n < 200:
            assert float(hist[n, b] - hist[n - window, b]) <= tol * (1 + float(hist[n, b].abs()))
            assert bool((hist[n:, b] == hist[n, b]).all())
    # tol = 0 runs every iteration for every sample
    _, full = wmmse(h, 1e-3, 1.0, n_iter=30, tol=0.0, return_history=True)
    assert full.shape == (31, 6)
    with pytest.raises(ConfigError, match="window"):
        wmmse(h, 1e-3, 1.0, window=0)
