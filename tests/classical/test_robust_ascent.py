import math

import pytest
import torch

from chanlab.channels.cellfree import generate_cellfree, noise_power_for_snr
from chanlab.classical import wmmse as wm
from chanlab.classical.robust_ascent import robust_gradient_ascent
from chanlab.classical.robust_sinr import worst_case_sum_rate
from chanlab.core.errors import ConfigError, DataError

SIGMA2 = noise_power_for_snr(10.0)


def _rand(shape, seed, dtype=torch.complex128):
    return torch.randn(shape, dtype=dtype, generator=torch.Generator().manual_seed(seed))


def test_single_user_without_error_reaches_the_closed_form_optimum():
    # One user, no error: the optimum under per-AP budgets is per-AP matched filtering at full
    # power, with SNR (sum_q ||h^q|| sqrt(P))^2 / sigma^2.
    h = _rand((3, 1, 4, 2), 0)
    init = 0.05 * _rand((3, 1, 4, 2), 1)
    v = robust_gradient_ascent(h, 0.0, 1.0, 1.0, init, n_steps=400, lr=0.05)
    best = torch.log2(1 + h.abs().square().sum(-1).sqrt().sum(-1).square()).squeeze(-1)
    got = worst_case_sum_rate(h, v, 0.0, 1.0)
    assert torch.allclose(got, best, rtol=1e-3)
    assert bool((v.abs().square().sum((1, 3)) <= 1.0 + 1e-9).all())


def test_never_below_the_start_and_improves_on_wmmse_under_error():
    d = generate_cellfree(4, n_aps=4, n_ant=2, n_users=4, error_level=0.3, seed=3, dtype=torch.complex128)
    v0 = wm.wmmse(d.h_hat, SIGMA2, 1.0, n_iter=20)
    v = robust_gradient_ascent(d.h_hat, d.eps, SIGMA2, 1.0, v0, n_steps=60)
    r0 = worst_case_sum_rate(d.h_hat, v0, d.eps, SIGMA2)
    r = worst_case_sum_rate(d.h_hat, v, d.eps, SIGMA2)
    assert bool((r >= r0 - 1e-9).all())
    assert float(r.mean()) > float(r0.mean()) + 0.1
    assert bool((v.abs().square().sum((1, 3)) <= 1.0 + 1e-9).all())


def test_zero_steps_returns_the_projected_start():
    h = _rand((2, 2, 3, 2), 4)
    init = 10 * _rand((2, 2, 3, 2), 5)
    v = robust_gradient_ascent(h, 0.1, SIGMA2, 1.0, init, n_steps=0)
    assert torch.allclose(v, wm.project_per_ap_power(init, 1.0))


def test_rejects_bad_arguments():
    h = _rand((2, 2, 3, 2), 4)
    with pytest.raises(DataError, match="init"):
        robust_gradient_ascent(h, 0.1, SIGMA2, 1.0, h[:1])
    with pytest.raises(DataError, match="h_hat"):
        robust_gradient_ascent(h.real, 0.1, SIGMA2, 1.0, h)
    with pytest.raises(ConfigError, match="n_steps"):
        robust_gradient_ascent(h, 0.1, SIGMA2, 1.0, h, n_steps=-1)
    with pytest.raises(ConfigError, match="lr"):
        robust_gradient_ascent(h, 0.1, SIGMA2, 1.0, h, lr=math.inf)
