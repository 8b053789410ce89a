"""The unfolded robust ascent: equivariance, exact power budgets, links, training, resume."""

import pytest
import torch

from chanlab.cellfree.training import fit_unfolded
from chanlab.cellfree.unfolded import UnfoldedRobustAscent, per_ap_mrt, top_links
from chanlab.channels.cellfree import generate_cellfree, noise_power_for_snr
from chanlab.classical.robust_sinr import worst_case_sum_rate
from chanlab.classical.wmmse import average_serving_aps, project_per_ap_power
from chanlab.core.errors import ConfigError, DataError

pytestmark = pytest.mark.usefixtures("one_thread")
NOISE = noise_power_for_snr(20.0, 1.0)


def _drops(n=6, q=5, m=2, i=4, eta=0.2, seed=0, dtype=torch.complex128):
    d = generate_cellfree(n, n_aps=q, n_ant=m, n_users=i, area=400.0, error_level=eta, seed=seed)
    return d.h_hat.to(dtype), d.eps.to(torch.float64 if dtype == torch.complex128 else torch.float32)


def _ap_power(v):
    return (v.real.square() + v.imag.square()).sum((1, 3))


def test_equivariant_to_permuting_users_and_aps():
    h, eps = _drops()
    model = UnfoldedRobustAscent(6).eval()
    v = model(h, eps, NOISE)
    users, aps = torch.tensor([2, 0, 3, 1]), torch.tensor([4, 1, 0, 3, 2])
    v_users = model(h[:, users], eps[:, users], NOISE)
    torch.testing.assert_close(v_users, v[:, users], rtol=1e-9, atol=1e-12)
    v_aps = model(h[:, :, aps], eps[:, :, aps], NOISE)
    torch.testing.assert_close(v_aps, v[:, :, aps], rtol=1e-9, atol=1e-12)


def test_per_ap_budgets_hold_and_the_bound_never_falls_below_mrt():
    h, eps = _drops(n=8, eta=0.1)
    for p_max in (1.0, 0.25):
        v = UnfoldedRobustAscent(8).eval()(h, eps, NOISE, p_max)
        assert bool((_ap_power(v) <= p_max).all())
        start = per_ap_mrt(h, p_max)
        torch.testing.assert_close(_ap_power(start), torch.full_like(_ap_power(start), p_max), rtol=1e-12, atol=0)
        rate, rate0 = (worst_case_sum_rate(h, x, eps, NOISE) for x in (v, start))
        assert bool((rate >= rate0 - 1e-9).all()) and float(rate.mean()) > float(rate0.mean())


def test_one_model_serves_any_size_and_float32():
    model = UnfoldedRobustAscent(3).eval()
    for q, m, i in ((3, 1, 2), (6, 3, 5)):
        h, eps = _drops(n=2, q=q, m=m, i=i, dtype=torch.complex64)
        assert model(h, eps, NOISE).shape == (2, i, q, m)


def test_links_are_kept_and_q_ave_is_their_count():
    h, eps = _drops(n=5, q=6)
    links = top_links(h, 2)
    assert links.shape == (5, 4, 6) and bool((links.sum(-1) == 2).all())
    # the two strongest APs of each user
    gain = h.abs().square().sum(-1)
    assert bool((gain.masked_fill(~links, -1).amax(-1) == gain.amax(-1)).all())
    v = UnfoldedRobustAscent(5).eval()(h, eps, NOISE, links=links)
    assert bool((v.abs().sum(-1)[~links] == 0).all())
    assert float(average_serving_aps(v).double().mean()) == pytest.approx(2.0)
    with pytest.raises(ConfigError, match=r"n_serving"):
        top_links(h, 7)
    with pytest.raises(DataError, match="links"):
        UnfoldedRobustAscent(2)(h, eps, NOISE, links=links[:, :, :3])


def test_the_fit_keeps_the_best_schedule_it_scored():
    train, val = _drops(n=12, seed=1), _drops(n=6, seed=2)
    model = UnfoldedRobustAscent(4, step=0.005)
    out = fit_unfolded(model, train, val, NOISE, steps=(0.005, 0.05), final_ratios=(0.2,), momenta=(0.9,),
                       refine_rounds=1)
    scores = {tuple(e[:3]): e[3] for e in out["evaluated"]}
    assert len(scores) >= 3 and out["train_rate"] == max(scores.values())
    assert out["train_rate"] >= out["start_train_rate"]
    assert model.schedule_parameters == pytest.approx(out["schedule"])
    h, eps = val
    rate = worst_case_sum_rate(h, model(h, eps, NOISE), eps, NOISE).mean()
    assert float(rate) == pytest.approx(out["val_rate"])
    # the schedule is a buffer: it travels with the state dict
    again = UnfoldedRobustAscent(4)
    again.load_state_dict(model.state_dict())
    torch.testing.assert_close(again(h, eps, NOISE), model(h, eps, NOISE))


def test_bad_arguments():
    for bad in ({"n_iter": 0}, {"n_iter": 2.5}, {"step": -1.0}, {"final_ratio": 0.0}, {"momentum": 1.0}):
        with pytest.raises(ConfigError):
            UnfoldedRobustAscent(**{"n_iter": 3, **bad})
    h, eps = _drops(n=2)
    with pytest.raises(DataError, match="h_hat"):
        UnfoldedRobustAscent(2)(h.real, eps, NOISE)
    with pytest.raises(ConfigError, match="p_max"):
        UnfoldedRobustAscent(2)(h, eps, NOISE, p_max=0.0)


def test_projection_is_the_one_of_eq_30():
    v = torch.randn(3, 2, 4, 2, dtype=torch.complex128) * 5
    torch.testing.assert_close(per_ap_mrt(v, 1.0), project_per_ap_power(per_ap_mrt(v, 1.0), 1.0))
