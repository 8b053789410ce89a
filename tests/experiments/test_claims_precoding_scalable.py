"""Claims of precoding/feedback-bits (Fig. 6), precoding/users (Fig. 7) and precoding/unseen
(Table I) on synthetic results laid out as the run functions write them: each claim PASSes on one,
FAILs on a copy with one number flipped, and FAILs on nothing."""

import copy

import pytest

import chanlab.experiments  # noqa: F401  (registers the experiments)
from chanlab.core.claims import check_claim
from chanlab.core.registry import get_experiment

BITS = get_experiment("precoding/feedback-bits").claims
USERS = get_experiment("precoding/users").claims
UNSEEN = get_experiment("precoding/unseen").claims


def _stage(stage, n_tiers):
    return {"stage": stage, "n_tiers": n_tiers, "val_sum_rate": [5.0], "train_loss": [-5.0], "best_epoch": 0,
            "replaced": 0}


def bits_results() -> dict:
    """What run_feedback_bits writes for the quick preset (B = 30 in 3 tiers, expansion to 40)."""
    deploy = [5, 10, 15, 20, 25, 30]
    prog = [4.0, 6.0, 8.0, 9.5, 10.5, 11.0]
    e2e = [3.0, 5.0, 7.0, 8.5, 9.5, 10.5]
    return {"deploy_bits": deploy, "expand_bits": [40], "snr_db": 10.0, "n_ant": 32, "n_users": 6, "n_pilots": 8,
            "trained_bits": 30, "tier_bits": [10, 10, 10],
            "sum_rate": {"progressive": {**{str(b): r for b, r in zip(deploy, prog)}, "40": 11.3},
                         "e2e": {str(b): r for b, r in zip(deploy, e2e)},
                         "sohrabi": {str(b): 3.0 for b in deploy},
                         "lloyd_zf": {str(b): 2.0 for b in deploy},
                         "lmmse_zf": 4.0, "zf_csit": 12.0},
            "stream_bits": {"5": 8, "10": 16, "15": 16, "20": 24, "25": 32, "30": 32, "40": 40},
            "training": {"progressive": {"stages": [_stage(1, 1), _stage(2, 2), _stage(3, 3)], "seconds": 1.0},
                         "e2e": {"stages": [_stage(1, 3)], "seconds": 1.0},
                         "expansion": [_stage(1, 4)]},
            "models_trained": {"progressive": 1, "e2e": 1, "sohrabi": 6}}


def users_results() -> dict:
    """What run_users writes (K = 3..8, the individual variant and Sohrabi per K)."""
    ks = [3, 4, 5, 6, 7, 8]
    shared = [8.0, 9.5, 10.5, 11.5, 12.0, 12.5]
    indiv = [8.2, 9.7, 10.6, 11.4, 12.3, 12.9]
    return {"user_counts": ks, "snr_db": 10.0, "n_ant": 16, "n_pilots": 8, "bits": 30,
            "sum_rate": {"shared": {str(k): r for k, r in zip(ks, shared)},
                         "individual": {str(k): r for k, r in zip(ks, indiv)},
                         "sohrabi": {str(k): 6.0 for k in ks},
                         "lmmse_zf": {str(k): 4.0 for k in ks}, "lloyd_zf": {str(k): 3.0 for k in ks},
                         "zf_csit": {str(k): 14.0 for k in ks}},
            "training": {"shared": {"stages": [_stage(1, 1), _stage(2, 2), _stage(3, 3)], "seconds": 1.0},
                         "individual": {str(k): {"stages": [_stage(1, 1)], "seconds": 1.0} for k in ks}},
            "models_trained": {"shared": 1, "individual": 6, "sohrabi": 6}}


def unseen_results() -> dict:
    """What run_unseen writes (the seen UMi test set first, then five unseen areas)."""
    areas = ["umi (seen)", "uma", "rma", "inh", "cdl-c", "cdl-d"]
    prop = [11.0, 9.0, 8.0, 10.0, 7.0, 7.5]
    lmmse = [6.0, 6.5, 6.0, 7.0, 5.0, 5.5]
    lloyd = [7.0, 7.0, 6.5, 8.0, 5.5, 6.0]
    return {"areas": areas, "snr_db": 10.0, "n_ant": 32, "n_users": 6, "bits": 30,
            "sum_rate": {"proposed": dict(zip(areas, prop)), "lmmse_zf": dict(zip(areas, lmmse)),
                         "lloyd_zf": dict(zip(areas, lloyd)), "zf_csit": {a: 13.0 for a in areas}},
            "training": {"stages": [], "seconds": 1.0}}


def status(claim, results):
    return check_claim(claim, results).status


@pytest.mark.parametrize("claim", list(BITS) + list(USERS) + list(UNSEEN), ids=lambda c: c.statement[:40])
def test_nothing_is_not_a_pass(claim):
    assert status(claim, {}) == "FAIL"


def test_kinds_and_paper_numbers():
    assert [c.kind for c in BITS] == ["paper", "invariant", "paper"]
    assert [c.kind for c in USERS] == ["paper", "paper"]
    assert UNSEEN[0].kind == "paper" and UNSEEN[0].paper_value == pytest.approx(21.3)
    assert all(c.paper_value is None for c in list(BITS) + list(USERS))     # Figs. 6 and 7 print no number


# ------------------------------------------------------------------ precoding/feedback-bits

def test_one_model_every_budget_is_counted_from_the_training_records():
    c = BITS[0]
    r = bits_results()
    assert status(c, r) == "PASS"
    bad = copy.deepcopy(r)                       # one training record per budget: several models
    bad["training"]["progressive"] = {str(b): {"stages": [_stage(1, 1)]} for b in r["deploy_bits"]}
    assert status(c, bad) == "FAIL"
    bad = copy.deepcopy(r)                       # the recorded training covered 20 bits only: 25, 30 not served by it
    bad["training"]["progressive"]["stages"] = bad["training"]["progressive"]["stages"][:2]
    assert status(c, bad) == "FAIL"
    bad = copy.deepcopy(r)
    del bad["sum_rate"]["progressive"]["15"]
    assert status(c, bad) == "FAIL"


def test_one_model_ignores_the_literal_models_trained():
    r = bits_results()
    r["models_trained"]["progressive"] = 1
    r["training"]["progressive"] = {"5": {"stages": [_stage(1, 1)]}, "10": {"stages": [_stage(1, 1)]}}
    assert status(BITS[0], r) == "FAIL"
    r = bits_results()
    del r["models_trained"]
    assert status(BITS[0], r) == "PASS"


def test_streams_are_whole_bytes():
    c = BITS[1]
    r = bits_results()
    assert status(c, r) == "PASS"
    bad = copy.deepcopy(r)
    bad["stream_bits"]["25"] = 25                # the payload length, not the packed stream
    assert status(c, bad) == "FAIL"
    bad = copy.deepcopy(r)
    bad["stream_bits"]["40"] = 48                # the expansion budget is checked too
    assert status(c, bad) == "FAIL"


def test_progressive_beats_e2e():
    c = BITS[2]
    r = bits_results()
    v = check_claim(c, r)
    assert v.status == "PASS" and v.margin == pytest.approx(0.5)
    bad = copy.deepcopy(r)
    bad["sum_rate"]["e2e"]["5"] = 4.5
    assert status(c, bad) == "FAIL"


@pytest.mark.parametrize("i", range(3))
def test_feedback_bits_empty_budgets_fail(i):
    r = bits_results()
    r["deploy_bits"], r["expand_bits"] = [], []
    assert status(BITS[i], r) == "FAIL"


# ------------------------------------------------------------------ precoding/users

def test_one_model_every_k():
    c = USERS[0]
    r = users_results()
    assert status(c, r) == "PASS"
    bad = copy.deepcopy(r)                       # a shared model per K
    bad["training"]["shared"] = {str(k): {"stages": [_stage(1, 1)]} for k in r["user_counts"]}
    assert status(c, bad) == "FAIL"
    bad = copy.deepcopy(r)
    del bad["sum_rate"]["shared"]["8"]
    assert status(c, bad) == "FAIL"


def test_shared_close_to_individual():
    c = USERS[1]
    r = users_results()
    v = check_claim(c, r)
    assert v.status == "PASS"
    assert v.ours == pytest.approx(100 * 0.4 / 12.9) and v.margin == pytest.approx(5 - 100 * 0.4 / 12.9)
    bad = copy.deepcopy(r)
    bad["sum_rate"]["shared"]["5"] = 9.0         # 14 % below the individual modules
    assert status(c, bad) == "FAIL"
    bad = copy.deepcopy(r)
    del bad["sum_rate"]["individual"]
    assert status(c, bad) == "FAIL"


@pytest.mark.parametrize("i", range(2))
def test_users_empty_counts_fail(i):
    r = users_results()
    r["user_counts"] = []
    assert status(USERS[i], r) == "FAIL"


# ------------------------------------------------------------------ precoding/unseen

def test_beats_imperfect_zf_in_every_unseen_area():
    c = UNSEEN[0]
    r = unseen_results()
    v = check_claim(c, r)
    assert v.status == "PASS"
    assert v.margin == pytest.approx(1.5)                     # rma, cdl-c, cdl-d: 1.5 bit/s/Hz above Lloyd-ZF
    assert v.ours == pytest.approx(100 * (8.0 / 6.5 - 1))     # rma: the smallest relative gain (+23.1 %)
    bad = copy.deepcopy(r)
    bad["sum_rate"]["lloyd_zf"]["inh"] = 10.5
    assert status(c, bad) == "FAIL"


def test_unseen_ignores_the_seen_area_and_needs_unseen_ones():
    c = UNSEEN[0]
    r = unseen_results()
    r["sum_rate"]["lmmse_zf"]["umi (seen)"] = 20.0
    assert status(c, r) == "PASS"
    r["areas"] = ["umi (seen)"]
    assert status(c, r) == "FAIL"
