"""The claims of the cell-free experiments on synthetic results: PASS, a doctored FAIL, FAIL on nothing."""

import copy

import pytest
import torch

import chanlab.experiments  # noqa: F401  (registers the experiments)
from chanlab.core.claims import check_claim
from chanlab.core.registry import get_experiment
from chanlab.experiments.cellfree import real_multiplications, wmmse_multiplications

SWEEPS = ("cellfree/error-levels", "cellfree/users", "cellfree/antennas")


def _claims(name):
    return get_experiment(name).claims


def _status(claim, results):
    return check_claim(claim, results).status


def _sweep(n=2):
    """The layout ``_sweep`` writes: per method, one list per figure over the swept values."""
    def m(rate, q, mult=1e8, **extra):
        return dict({"worst_case_sum_rate": [rate + 0.1 * i for i in range(n)],
                     "true_sum_rate": [rate + 1 + 0.1 * i for i in range(n)],
                     "q_ave": [q] * n, "multiplications": [mult] * n}, **extra)
    return {"sweep": "error level", "values": [0.1 * (i + 1) for i in range(n)], "methods": {
        "rjapcbn": m(30.0, 4.0, 2e6, measured_multiplications=[1.8e6] * n),
        "jcbnet": m(28.0, 5.0, 4e6),
        "cnns": m(25.0, 6.0, 1e8),
        "wmmse_imperfect": m(27.0, 16.0, 3e8, measured_multiplications=[2.5e7] * n, wmmse_iterations=[80] * n),
        "swmmse": m(26.0, 8.0, 3e9),
        "wmmse_perfect": m(35.0, 16.0, 3e8),
        "robust_ga": m(31.0, 16.0, None, measured_multiplications=[4e8] * n, iterations=[300] * n),
        "unfolded": m(30.0, 16.0, None, measured_multiplications=[2e7] * n, iterations=[30] * n),
    }}


def _sweep_claim(name, start):
    (claim,) = [c for c in _claims(name) if c.statement.startswith(start)]
    return claim


@pytest.mark.parametrize("name", SWEEPS)
def test_sweep_claims_pass_on_good_results_and_fail_on_nothing(name):
    res = _sweep()
    for claim in _claims(name):
        assert _status(claim, res) == "PASS", claim.statement
        assert _status(claim, {}) == "FAIL"
        empty = copy.deepcopy(res)
        for series in empty["methods"].values():
            for key in series:
                series[key] = []
        empty["values"] = []
        assert _status(claim, empty) == "FAIL", claim.statement
    kinds = {c.statement[:20]: c.kind for c in _claims(name)}
    assert set(kinds.values()) == ({"paper", "target"} if name == "cellfree/error-levels" else {"paper"})


@pytest.mark.parametrize("start, doctor", [
    ("The unfolded robust ascent (ours) has a higher", lambda r: r["methods"]["swmmse"]["worst_case_sum_rate"]
     .__setitem__(1, 30.5)),
    ("The unfolded robust ascent reaches at least 90 %", lambda r: r["methods"]["unfolded"]["worst_case_sum_rate"]
     .__setitem__(0, 27.0)),
    ("The unfolded robust ascent costs at most 1/10", lambda r: r["methods"]["unfolded"]["measured_multiplications"]
     .__setitem__(1, 5e7)),
])
def test_unfolded_targets_pass_and_fail(start, doctor):
    claim = _sweep_claim("cellfree/error-levels", start)
    res = _sweep()
    assert check_claim(claim, res).status == "PASS" and claim.kind == "target"
    doctor(res)
    assert check_claim(claim, res).status == "FAIL"
    del res["methods"]["unfolded"]
    assert check_claim(claim, res).status == "FAIL"


def _clustering():
    return {"unfolded": {"serving": [1, 2, 4, 8, 16], "worst_case_sum_rate": [40.0, 52.0, 60.0, 70.0, 75.0],
                         "true_sum_rate": [50.0, 60.0, 70.0, 80.0, 85.0], "q_ave": [1.0, 2.0, 4.0, 8.0, 16.0]},
            "points": {"wmmse_imperfect": {"worst_case_sum_rate": 59.0, "q_ave": 16.0},
                       "rjapcbn": {"worst_case_sum_rate": 27.0, "q_ave": 0.3}}}


def test_clustering_targets():
    beats, grows = _claims("cellfree/clustering")
    res = _clustering()
    v = check_claim(beats, res)
    assert v.status == "PASS" and v.margin == pytest.approx(70.0 - 59.0) and "8 APs per user" in v.measured
    assert check_claim(grows, res).status == "PASS"
    doctored = copy.deepcopy(res)
    doctored["unfolded"]["worst_case_sum_rate"][2:4] = [57.0, 56.0]   # n = 4, 8 below WMMSE; n = 16 not allowed
    assert check_claim(beats, doctored).status == "FAIL" and check_claim(grows, doctored).status == "FAIL"
    doctored["unfolded"]["q_ave"] = [9.0] * 5                      # no point at half of WMMSE's Q_ave
    assert check_claim(beats, doctored).status == "FAIL"
    assert check_claim(beats, {}).status == "FAIL" and check_claim(grows, {}).status == "FAIL"


def test_sweep_rate_claim_fails_when_a_baseline_wins_one_point():
    claim = _sweep_claim("cellfree/error-levels", "RJAPCBN has a higher worst-case")
    res = _sweep()
    res["methods"]["swmmse"]["worst_case_sum_rate"][1] = 40.0
    v = check_claim(claim, res)
    assert v.status == "FAIL" and v.margin < 0
    del res["methods"]["jcbnet"]
    assert _status(claim, _sweep()) == "PASS" and _status(claim, res) == "FAIL"


def test_sweep_q_ave_claim_fails_when_a_baseline_serves_with_fewer_aps():
    claim = _sweep_claim("cellfree/error-levels", "RJAPCBN serves each user")
    res = _sweep()
    res["methods"]["jcbnet"]["q_ave"][0] = 3.0
    assert _status(claim, res) == "FAIL"


def test_sweep_perfect_bound_fails_when_rjapcbn_exceeds_it():
    claim = _sweep_claim("cellfree/error-levels", "WMMSE with perfect CSI")
    res = _sweep()
    res["methods"]["rjapcbn"]["worst_case_sum_rate"][0] = 36.0
    assert _status(claim, res) == "FAIL"


def test_sweep_cost_claim_rests_on_the_measured_counts():
    claim = _sweep_claim("cellfree/error-levels", "RJAPCBN needs at least 10×")
    assert claim.kind == "paper" and claim.paper_value == 100.0
    res = _sweep()
    v = check_claim(claim, res)
    assert v.status == "PASS" and v.ours == pytest.approx(2.5e7 / 1.8e6)
    # Table II's expressions (``multiplications``) say 150×, but the measured WMMSE is only 5× here.
    res["methods"]["wmmse_imperfect"]["measured_multiplications"] = [9e6, 2.5e7]
    assert _status(claim, res) == "FAIL"
    del res["methods"]["rjapcbn"]["measured_multiplications"]
    assert "nothing to check" in check_claim(claim, res).measured


def _lambda():
    return {"sweep": "lambda", "values": [0.0, 0.1, 1.0], "methods": {"rjapcbn": {
        "worst_case_sum_rate": [40.0, 38.0, 30.0], "true_sum_rate": [41.0, 39.0, 31.0], "q_ave": [12.0, 8.0, 3.0],
        "multiplications": [2e6] * 3}}}


def test_lambda_claim():
    (claim,) = _claims("cellfree/lambda")
    assert claim.kind == "paper"
    assert _status(claim, _lambda()) == "PASS"
    bad = _lambda()
    bad["methods"]["rjapcbn"]["q_ave"][2] = 13.0
    assert _status(claim, bad) == "FAIL"
    bad = _lambda()
    bad["methods"]["rjapcbn"]["worst_case_sum_rate"][2] = 41.0
    assert _status(claim, bad) == "FAIL"
    assert _status(claim, {}) == "FAIL"
    empty = _lambda()
    empty["values"] = []
    empty["methods"]["rjapcbn"] = {k: [] for k in empty["methods"]["rjapcbn"]}
    assert _status(claim, empty) == "FAIL"
    one = {"sweep": "lambda", "values": [0.1], "methods": {"rjapcbn": {"worst_case_sum_rate": [1.0], "q_ave": [1.0]}}}
    assert _status(claim, one) == "FAIL"


def _kernels():
    def row(rate, q, area):
        return {"worst_case_sum_rate": rate, "true_sum_rate": rate + 1, "q_ave": q, "multiplications": 1e5 * area,
                "measured_multiplications": 9e4 * area}
    return {"kernels": ["7x7", "5x5", "3x3"],
            "rjapcbn": {"7x7": row(264.0, 9.9, 49), "5x5": row(248.0, 10.2, 25), "3x3": row(221.0, 10.5, 9)}}


def test_kernel_claim():
    (claim,) = _claims("cellfree/kernels")
    assert claim.kind == "paper" and claim.paper_value == 43.0
    v = check_claim(claim, _kernels())
    assert v.status == "PASS" and v.ours == pytest.approx(43.0)
    bad = _kernels()
    bad["rjapcbn"]["3x3"]["worst_case_sum_rate"] = 270.0
    assert _status(claim, bad) == "FAIL"
    bad = _kernels()
    bad["rjapcbn"]["3x3"]["measured_multiplications"] = 1e9
    assert _status(claim, bad) == "FAIL"
    assert _status(claim, {}) == "FAIL"
    assert _status(claim, {"kernels": [], "rjapcbn": {}}) == "FAIL"
    only = _kernels()
    only["rjapcbn"] = {"5x5": only["rjapcbn"]["5x5"]}
    assert _status(claim, only) == "FAIL"


def _complexity():
    users = [8, 16]
    return {"users": users, "wmmse_iters": 15,
            "analytic_multiplications": {"wmmse": [1.4e8, 3.2e8], "swmmse": [1.6e9, 3.3e9], "cnns": [5e7, 1e8],
                                         "jcbnet": [2e6, 4.3e6], "rjapcbn": [1.06e6, 2.4e6]},
            "measured_multiplications": {"rjapcbn": [9e5, 1.9e6], "jcbnet": [9e5, 1.9e6], "cnns": [5.7e6, 1.1e7],
                                         "wmmse": [1e7, 2e7], "unfolded": [1e6, 2e6], "robust_ga": [2e7, 4e7]}}


def test_complexity_claims():
    measured, analytic, unfolded = _claims("cellfree/complexity")
    assert measured.kind == "paper" and analytic.kind == "analytic" and unfolded.kind == "target"
    assert check_claim(unfolded, _complexity()).ours == pytest.approx(0.05)
    cheap = _complexity()
    cheap["measured_multiplications"]["unfolded"][1] = 5e6
    assert _status(unfolded, cheap) == "FAIL"
    for claim in (measured, analytic, unfolded):
        assert _status(claim, _complexity()) == "PASS"
        assert _status(claim, {}) == "FAIL"
        empty = _complexity()
        empty["users"] = []
        empty["analytic_multiplications"] = {k: [] for k in empty["analytic_multiplications"]}
        empty["measured_multiplications"] = {k: [] for k in empty["measured_multiplications"]}
        assert _status(claim, empty) == "FAIL"
    assert check_claim(measured, _complexity()).ours == pytest.approx(2e7 / 1.9e6)  # the worst point
    bad = _complexity()
    bad["measured_multiplications"]["wmmse"][1] = 4.7e6  # what our WMMSE costs in 15 iterations at I = 16
    assert _status(measured, bad) == "FAIL" and _status(analytic, bad) == "PASS"
    bad = _complexity()
    bad["analytic_multiplications"]["wmmse"][0] = 5e6
    assert _status(analytic, bad) == "FAIL" and _status(measured, bad) == "PASS"


# ----- the counter the claims rest on ------------------------------------------------------------

def test_real_multiplications_counts_a_complex_product_as_four():
    a, b = torch.randn(3, 5), torch.randn(5, 7)
    assert real_multiplications(torch.matmul, a, b) == 3 * 5 * 7
    ac, bc = a.to(torch.complex64), b.to(torch.complex64)
    assert real_multiplications(torch.matmul, ac, bc) == 4 * 3 * 5 * 7


def test_wmmse_count_is_affine_in_the_iterations():
    from chanlab.classical import wmmse as wm

    h = torch.randn(1, 3, 2, 2, dtype=torch.complex64)
    direct = real_multiplications(wm.wmmse, h, 0.1, 1.0, n_iter=4, tol=0.0)
    assert wmmse_multiplications(h, 0.1, 1.0, 4) == direct > 0
