"""Exact worst-case SINR bound (Eq. 9 of the cell-free paper) against the paper's LMIs (CVXPY),
random and adversarial searches over the error ball, closed forms and finite differences."""

import math
import warnings

import pytest
import torch

from chanlab.channels.cellfree import generate_cellfree, noise_power_for_snr
from chanlab.classical.robust_sinr import (
    aggregate_error_radius, worst_case_interference, worst_case_rates, worst_case_signal,
    worst_case_sinr, worst_case_sinr_cvxpy, worst_case_sum_rate, worst_case_terms,
)
from chanlab.core.errors import DataError
from chanlab.metrics.rates import flatten_cellfree, flatten_cellfree_precoder, sinr

C128 = torch.complex128


def _instance(batch=3, users=3, n_tx=6, eta=0.2, seed=0, dtype=C128):
    """Random channels and MRT-like precoders with a clearly positive worst-case signal."""
    g = torch.Generator().manual_seed(seed)
    h = torch.randn(batch, users, n_tx, dtype=dtype, generator=g)
    v = 0.6 * h.mT + 0.4 * torch.randn(batch, n_tx, users, dtype=dtype, generator=g)
    eps = eta * torch.linalg.vector_norm(h, dim=-1)
    return h, v, eps


def _objectives(h, v, delta):
    """Signal and interference at ``h + delta``, broadcasting leading dims of ``delta``."""
    g = torch.matmul((h + delta).conj(), v)  # [..., B, I, I]
    p = g.real.square() + g.imag.square()
    sig = torch.diagonal(p, dim1=-2, dim2=-1)
    off = ~torch.eye(p.shape[-1], dtype=torch.bool)
    return sig, (p * off).sum(-1)


def _ball_samples(shape, eps, n, gen, on_sphere):
    """``n`` random errors per (sample, user), ``[n, *shape]``.

    On the sphere of radius eps, or uniform in the ball.
    """
    d = torch.randn(n, *shape, dtype=C128, generator=gen)
    d = d / torch.linalg.vector_norm(d, dim=-1, keepdim=True)
    r = eps.unsqueeze(-1)
    if not on_sphere:
        u = torch.rand(n, *shape[:-1], 1, dtype=torch.float64, generator=gen)
        r = r * u ** (1 / (2 * shape[-1]))
    return d * r * (1 - 1e-12)


def _project(delta, eps):
    n = torch.linalg.vector_norm(delta, dim=-1, keepdim=True)
    return delta * torch.clamp(eps.unsqueeze(-1) / n.clamp_min(1e-300), max=1.0)


def _rel(a, b):
    return float(((a - b).abs() / b.abs()).max())


# ----------------------------------------------------------------------------------- (a) LMIs

@pytest.mark.parametrize("users,n_tx,seed", [(3, 6, 0), (4, 8, 1)])
def test_matches_paper_lmis_solved_with_cvxpy(users, n_tx, seed):
    h, v, eps = _instance(batch=2, users=users, n_tx=n_tx, seed=seed)
    noise = torch.tensor([[0.1], [0.5]], dtype=torch.float64)
    ours = worst_case_terms(h, v, eps, noise)
    assert float(ours.signal.min()) > 0.1  # the comparison is meaningful
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "solution may be inaccurate" at tight tolerances
        ref = worst_case_sinr_cvxpy(h, v, eps, noise)  # the literal Eq. (15) and (18)
        red = worst_case_sinr_cvxpy(h, v, eps, noise, reduce=True)
    statuses = [s for row in ref.status for cell in row for s in cell.split("/")]
    assert all(s.startswith("optimal") for s in statuses)
    for r in (ref, red):
        assert _rel(ours.signal, r.signal) < 1e-4
        assert _rel(ours.interference, r.interference) < 1e-4
        assert _rel(ours.sinr, r.sinr) < 1e-4
    # the LMI multipliers are the ones a feasible certificate needs
    assert bool((ref.delta >= -1e-9).all()) and bool((ref.mu >= -1e-9).all())


def test_cellfree_layout_matches_cvxpy_with_per_ap_radii():
    drop = generate_cellfree(2, n_aps=2, n_ant=3, n_users=3, error_level=0.15, seed=4,
                             dtype=C128)
    v4 = drop.h_hat.clone()  # MRT in the cell-free layout: v_i^q = h_hat_i^q
    noise = noise_power_for_snr(0.0)
    ours = worst_case_terms(drop.h_hat, v4, drop.eps, noise)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ref = worst_case_sinr_cvxpy(drop.h_hat, v4, drop.eps, noise)
    scale = ours.signal.abs().amax(-1, keepdim=True)
    assert float(((ours.signal - ref.signal).abs() / scale).max()) < 1e-4
    assert _rel(ours.interference, ref.interference) < 1e-4
    # per-AP radii are aggregated as sqrt(sum_q eps_q^2) = eta ||h_hat_i||
    agg = aggregate_error_radius(drop.eps)
    assert torch.allclose(agg, 0.15 * torch.linalg.vector_norm(flatten_cellfree(drop.h_hat), dim=-1))
    flat = worst_case_terms(flatten_cellfree(drop.h_hat), flatten_cellfree_precoder(v4), agg, noise)
    assert torch.allclose(flat.sinr, ours.sinr, rtol=1e-12, atol=0)


# ------------------------------------------------------------------- (b) validity and tightness

def test_bound_is_below_random_and_adversarial_errors_and_tight():
    torch.manual_seed(0)
    h, v, eps = _instance(batch=3, users=3, n_tx=6, eta=0.25, seed=2)
    noise = 0.2
    t = worst_case_terms(h, v, eps, noise)
    bound = t.sinr
    gen = torch.Generator().manual_seed(7)

    # random search on the sphere and in the ball: no error beats either worst case
    for on_sphere in (True, False):
        d = _ball_samples(h.shape, eps, 2048, gen, on_sphere)
        sig, itf = _objectives(h, v, d)
        assert bool((sig >= t.signal * (1 - 1e-10) - 1e-12).all())
        assert bool((itf <= t.interference * (1 + 1e-10)).all())
        assert bool((sig / (itf + noise) >= bound * (1 - 1e-10)).all())

    # projected-gradient adversary on the SINR with one shared error, many restarts
    n_restart = 64
    d = _ball_samples(h.shape, eps, n_restart, gen, False).requires_grad_()
    for k in range(150):
        sig, itf = _objectives(h, v, d)
        loss = torch.log(sig + 1e-30) - torch.log(itf + noise)
        (grad,) = torch.autograd.grad(loss.sum(), d)
        step = 0.2 * eps.unsqueeze(-1) * (0.97 ** k)
        with torch.no_grad():
            d = _project(d - step * grad / grad.norm(dim=-1, keepdim=True).clamp_min(1e-300), eps)
        d.requires_grad_()
    with torch.no_grad():
        sig, itf = _objectives(h, v, d)
        joint = (sig / (itf + noise)).amin(0)
    assert bool((joint >= bound * (1 - 1e-10)).all())  # Eq. (9) is a valid lower bound

    # tightness: Eq. (9) has separate worst cases. Adversaries for each one reach the bound.
    d_sig = _ball_samples(h.shape, eps, n_restart, gen, False)
    vnorm2 = (v.abs().square().sum(1)).unsqueeze(-1)  # [B, I, 1]
    d_itf = _ball_samples(h.shape, eps, n_restart, gen, False)
    for _ in range(300):
        d_sig = d_sig.requires_grad_()
        sig, _ = _objectives(h, v, d_sig)
        (g,) = torch.autograd.grad(sig.sum(), d_sig)
        # convex: projected gradient descent with step 1 / L, L = 2 ||v_i||^2 (Wirtinger grad = 2x)
        d_sig = _project(d_sig.detach() - g / (2 * vnorm2), eps)
        d_itf = d_itf.requires_grad_()
        _, itf = _objectives(h, v, d_itf)
        (g,) = torch.autograd.grad(itf.sum(), d_itf)
        # convex maximisation: the long-step projected gradient (maximise the linearisation) ascends
        d_itf = eps.unsqueeze(-1) * g / g.norm(dim=-1, keepdim=True)
    with torch.no_grad():
        sig, _ = _objectives(h, v, d_sig)
        _, itf = _objectives(h, v, d_itf)
        adv = sig.amin(0) / (itf.amax(0) + noise)
    assert bool((adv >= bound * (1 - 1e-10)).all())
    assert _rel(adv, bound) < 1e-3
    assert _rel(sig.amin(0), t.signal) < 1e-3 and _rel(itf.amax(0), t.interference) < 1e-3


def test_optimisers_are_feasible_and_attain_the_values():
    h, v, eps = _instance(batch=4, users=4, n_tx=7, eta=0.3, seed=3)
    t = worst_case_terms(h, v, eps, 1.0)
    assert bool((torch.linalg.vector_norm(t.delta_interference, dim=-1) <= eps).all())
    assert bool((torch.linalg.vector_norm(t.delta_signal, dim=-1) <= eps).all())
    _, itf = _objectives(h, v, t.delta_interference)
    sig, _ = _objectives(h, v, t.delta_signal)
    assert _rel(itf, t.interference) < 1e-12
    assert torch.allclose(sig, t.signal, rtol=1e-12, atol=1e-12)
    # the maximiser spends its whole budget inside range(V_{-i})
    assert torch.allclose(torch.linalg.vector_norm(t.delta_interference, dim=-1), eps, rtol=1e-12)
    for i in range(4):
        w = torch.cat([v[:, :, :i], v[:, :, i + 1:]], dim=-1)
        proj = w @ torch.linalg.lstsq(w, t.delta_interference[:, i].unsqueeze(-1)).solution
        assert torch.allclose(proj.squeeze(-1), t.delta_interference[:, i], atol=1e-12)
    assert bool((t.multiplier > 0).all()) and not bool(t.hard_case.any())


# ------------------------------------------------------------------------------ (c) hard case

def _hard_case_instance():
    """User 0: W = [2 e0, e1] (eigenvalues 4, 1), h_hat = g e1 + 0.7 e3 is orthogonal to the top
    eigenvector e0, and eps^2 >= g^2 / 9, so mu = lam_max = 4 and the maximum is 4 eps^2 + 4 g^2 / 3."""
    n, users, g2, eps = 6, 3, 0.5, 1.0
    e = torch.eye(n, dtype=C128)
    v = torch.stack([e[2], 2 * e[0], e[1]], dim=-1).unsqueeze(0)       # [1, N, I]
    h = torch.stack([g2 * e[1] + 0.7 * e[3], e[0] + e[4], e[1] + 0.1 * e[5]]).unsqueeze(0)
    return h, v, torch.full((1, users), eps, dtype=torch.float64), 4 * eps ** 2 + 4 * g2 ** 2 / 3


def test_hard_case_exact_and_rotated():
    h, v, eps, expected = _hard_case_instance()
    t = worst_case_terms(h, v, eps, 0.1)
    assert bool(t.hard_case[0, 0])
    assert math.isclose(float(t.interference[0, 0]), expected, rel_tol=1e-14)
    assert math.isclose(float(t.multiplier[0, 0]), 4.0, rel_tol=1e-14)
    d = t.delta_interference
    assert math.isclose(float(d[0, 0].norm()), 1.0, rel_tol=1e-12)
    assert float(d[0, 0, 2:].abs().max()) == 0.0  # inside range(W) = span(e0, e1)
    _, itf = _objectives(h, v, d)
    assert math.isclose(float(itf[0, 0]), expected, rel_tol=1e-12)

    # a random unitary rotation: h_hat is orthogonal to the top eigenvector only up to round-off,
    # and the solver takes the nearly-hard route (tiny d) to the same value
    q, _ = torch.linalg.qr(torch.randn(6, 6, dtype=C128, generator=torch.Generator().manual_seed(0)))
    hr, vr = h @ q.mT, q @ v
    tr = worst_case_terms(hr, vr, eps, 0.1)
    assert math.isclose(float(tr.interference[0, 0]), expected, rel_tol=1e-10)
    _, itf = _objectives(hr, vr, tr.delta_interference)
    assert math.isclose(float(itf[0, 0]), expected, rel_tol=1e-9)
    assert torch.allclose(tr.interference, t.interference, rtol=1e-10)

    # brute force: long-step projected gradient ascent from many starts
    gen = torch.Generator().manual_seed(1)
    dd = _ball_samples(hr.shape, eps, 256, gen, True)
    for _ in range(400):
        dd = dd.requires_grad_()
        _, itf = _objectives(hr, vr, dd)
        (g,) = torch.autograd.grad(itf.sum(), dd)
        dd = eps.unsqueeze(-1) * g / g.norm(dim=-1, keepdim=True)
    _, itf = _objectives(hr, vr, dd.detach())
    assert math.isclose(float(itf.amax(0)[0, 0]), expected, rel_tol=1e-6)
    assert float(itf.amax(0)[0, 0]) <= expected * (1 + 1e-12)

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ref = worst_case_sinr_cvxpy(hr, vr, eps, 0.1)
    assert _rel(ref.interference, tr.interference) < 1e-4


def test_edge_cases_zero_precoders_zero_channel_single_user_and_zero_radius():
    h, v, eps = _instance(batch=2, users=3, n_tx=5)
    t = worst_case_terms(h, torch.zeros_like(v), eps, 0.3)
    assert bool((t.sinr == 0).all()) and bool((t.interference == 0).all())
    assert bool((t.delta_interference == 0).all()) and bool((t.delta_signal == 0).all())
    # h_hat = 0: all of the budget goes on the top eigenvector of V_{-i} V_{-i}^H
    t = worst_case_terms(torch.zeros_like(h), v, eps, 0.3)
    for i in range(3):
        w = torch.cat([v[:, :, :i], v[:, :, i + 1:]], dim=-1)
        lam_max = torch.linalg.eigvalsh(w.mH @ w)[:, -1]
        assert torch.allclose(t.interference[:, i], lam_max * eps[:, i] ** 2, rtol=1e-12)
    assert bool(t.hard_case.all()) and bool((t.signal == 0).all())
    # one user: no interference at all
    t = worst_case_terms(h[:, :1], v[:, :, :1], eps[:, :1], 0.3)
    assert bool((t.interference == 0).all())
    assert torch.allclose(t.sinr, t.signal / 0.3)
    # eps = 0 for some users only
    eps0 = eps.clone()
    eps0[:, 1] = 0
    t = worst_case_terms(h, v, eps0, 0.3)
    nominal = sinr(h, v, 0.3)
    assert torch.allclose(t.sinr[:, 1], nominal[:, 1], rtol=1e-12)
    assert bool((t.sinr[:, [0, 2]] < nominal[:, [0, 2]]).all())


# ------------------------------------------------------------------------------ (d) numerator

def test_signal_closed_form_matches_brute_force():
    h, v, eps = _instance(batch=3, users=3, n_tx=4, eta=0.3, seed=5)
    eps[0, 0] = 10.0  # large enough to null the signal of (0, 0)
    closed = worst_case_signal(h, v, eps)
    a = (h.conj() * v.mT).sum(-1).abs()
    vn = torch.linalg.vector_norm(v, dim=1)
    assert torch.allclose(closed, (a - eps * vn).clamp_min(0).square(), rtol=1e-14)
    assert float(closed[0, 0]) == 0.0
    gen = torch.Generator().manual_seed(3)
    d = torch.cat([_ball_samples(h.shape, eps, 20000, gen, True),
                   _ball_samples(h.shape, eps, 20000, gen, False)])
    sig, _ = _objectives(h, v, d)
    best = sig.amin(0)
    assert bool((best >= closed * (1 - 1e-10) - 1e-12).all())
    # brute force by projected gradient descent (convex objective: it reaches the minimum)
    d = d[:64].clone()
    vnorm2 = (v.abs().square().sum(1)).unsqueeze(-1)
    for _ in range(300):
        d = d.requires_grad_()
        sig, _ = _objectives(h, v, d)
        (g,) = torch.autograd.grad(sig.sum(), d)
        d = _project(d.detach() - g / (2 * vnorm2), eps)
    sig, _ = _objectives(h, v, d)
    assert torch.allclose(sig.amin(0), closed, rtol=1e-6, atol=1e-9)
    t = worst_case_terms(h, v, eps, 1.0)  # the returned minimiser attains the value
    sig, _ = _objectives(h, v, t.delta_signal)
    assert torch.allclose(sig, closed, rtol=1e-12, atol=1e-12)
    assert float(torch.linalg.vector_norm(t.delta_signal[0, 0])) < float(eps[0, 0])  # minimum norm


# ------------------------------------------------------------------------------ (e) gradients

def test_envelope_gradient_matches_finite_differences():
    h, v, eps = _instance(batch=2, users=3, n_tx=5, eta=0.2, seed=6)
    h, v, eps = h.requires_grad_(), v.requires_grad_(), eps.requires_grad_()
    assert torch.autograd.gradcheck(lambda a, b, c: worst_case_sinr(a, b, c, 0.1), (h, v, eps))
    assert torch.autograd.gradcheck(lambda a, b, c: worst_case_interference(a, b, c), (h, v, eps))
    # the hard-case instance (its value is smooth in V here: the top eigenvalue is simple)
    hh, vh, eh, _ = _hard_case_instance()
    vh = (vh + 0.01 * torch.randn(vh.shape, dtype=C128, generator=torch.Generator().manual_seed(2)))
    assert torch.autograd.gradcheck(lambda b: worst_case_sum_rate(hh, b, eh, 0.1),
                                    (vh.requires_grad_(),))


def test_gradient_flows_in_float32_cellfree_training_setting():
    drop = generate_cellfree(4, n_aps=4, n_ant=2, n_users=4, error_level=0.1, seed=1)
    v = (drop.h_hat / drop.h_hat.abs().amax()).clone().requires_grad_()
    rate = worst_case_sum_rate(drop.h_hat, v, drop.eps, noise_power_for_snr(20.0))
    assert rate.dtype == torch.float32 and rate.shape == (4,)
    rate.sum().backward()
    assert v.grad is not None and bool(torch.isfinite(v.grad).all()) and float(v.grad.abs().max()) > 0
    assert torch.allclose(rate, worst_case_rates(drop.h_hat, v, drop.eps,
                                                 noise_power_for_snr(20.0)).sum(-1))


# ------------------------------------------------------------------- (f) eps = 0 and precision

@pytest.mark.parametrize("dtype", [torch.complex64, torch.complex128])
def test_zero_radius_gives_the_ordinary_sinr(dtype):
    drop = generate_cellfree(3, n_aps=3, n_ant=2, n_users=4, error_level=0.0, seed=2, dtype=dtype)
    v4 = drop.h_hat / drop.h_hat.abs().amax()
    noise = noise_power_for_snr(10.0)
    ours = worst_case_sinr(drop.h_hat, v4, drop.eps, noise)
    ref = sinr(drop.h_hat, v4, noise)
    assert ours.dtype == ref.dtype
    tol = 1e-5 if dtype == torch.complex64 else 1e-12
    assert torch.allclose(ours, ref, rtol=tol, atol=0)
    assert torch.allclose(worst_case_sinr(drop.h_hat, v4, 0.0, noise), ref, rtol=tol, atol=0)


def test_float32_agrees_with_float64_and_bound_decreases_with_radius():
    drop = generate_cellfree(8, n_aps=4, n_ant=4, n_users=6, error_level=0.1, seed=5, dtype=C128)
    h = flatten_cellfree(drop.h_hat)
    v = h.mT / h.abs().amax()
    noise = noise_power_for_snr(10.0)
    t64 = worst_case_terms(h, v, drop.eps, noise)
    t32 = worst_case_terms(h.to(torch.complex64), v.to(torch.complex64), drop.eps.float(), noise)
    assert t32.sinr.dtype == torch.float32
    assert _rel(t32.interference.double(), t64.interference) < 1e-4
    assert bool((torch.linalg.vector_norm(t32.delta_interference, dim=-1) <= t32.eps).all())
    prev = None
    for scale in (0.0, 0.5, 1.0, 2.0):
        cur = worst_case_sinr(h, v, drop.eps * scale, noise)
        if prev is not None:
            assert bool((cur <= prev * (1 + 1e-12)).all())
        prev = cur


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_matches_cpu():
    h, v, eps = _instance(batch=4, users=4, n_tx=8)
    cpu = worst_case_sinr(h, v, eps, 0.2)
    gpu = worst_case_sinr(h.cuda(), v.cuda(), eps.cuda(), 0.2)
    assert gpu.device.type == "cuda"
    assert torch.allclose(gpu.cpu(), cpu, rtol=1e-10)


# ------------------------------------------------------------------------------ (g) validation

@pytest.mark.filterwarnings("ignore:ComplexHalf support is experimental")
def test_input_validation():
    h, v, eps = _instance(batch=2, users=3, n_tx=6)
    bad = [
        (dict(h_hat=h.real), "complex"),
        (dict(h_hat=h.numpy()), "torch.Tensor"),
        (dict(v=v[:, :5]), "shape"),
        (dict(h_hat=h[0]), "3-D or 4-D"),
        (dict(eps=eps[:, :2]), "eps"),
        (dict(eps=-eps), ">= 0"),
        (dict(eps=eps * float("nan")), "NaN"),
        (dict(eps=eps.to(C128)), "real"),
        (dict(eps=torch.ones(2, 3, 4, dtype=torch.float64)), "n_aps"),  # 4 does not divide 6
        (dict(eps=torch.ones(2, 3, 1, 1, dtype=torch.float64)), "eps"),
        (dict(eps=True), "eps"),
        (dict(eps="x"), "eps"),
        (dict(eps=-1.0), ">= 0"),
        (dict(noise_power=0.0), "> 0"),
        (dict(noise_power=torch.ones(5, dtype=torch.float64)), "broadcastable"),
        (dict(noise_power=-torch.ones(2, 3, dtype=torch.float64)), "> 0"),
        (dict(v=v * float("inf")), "NaN or infinite"),
        (dict(h_hat=h.to(torch.complex32), v=v.to(torch.complex32)), "complex64 or complex128"),
    ]
    for override, match in bad:
        kw = dict(h_hat=h, v=v, eps=eps, noise_power=0.1) | override
        with pytest.raises(DataError, match=match):
            worst_case_sinr(**kw)
    # cell-free layout: the per-AP radii must match n_aps
    h4 = h.reshape(2, 3, 3, 2)
    with pytest.raises(DataError, match="n_aps=3"):
        worst_case_sinr(h4, v, torch.ones(2, 3, 2, dtype=torch.float64), 0.1)
    with pytest.raises(DataError, match="max_iter"):
        worst_case_terms(h, v, eps, 0.1, max_iter=0)
    with pytest.raises(DataError, match="tol"):
        worst_case_terms(h, v, eps, 0.1, tol=2.0)
    with pytest.raises(DataError, match="solver"):
        worst_case_sinr_cvxpy(h, v, eps, 0.1, solver="NOT_A_SOLVER")
    with pytest.raises(DataError, match="eps"):
        aggregate_error_radius(torch.ones(3, dtype=torch.float64))
