"""The claims of gridization/walking-test and gridization/beam-optimization on hand-made results."""

import pytest

import chanlab.experiments  # noqa: F401  (registers the experiments)
from chanlab.core.claims import check_claim
from chanlab.core.registry import get_experiment

MAE, RATIO, HOMOGENEITY, NAIVE = get_experiment("gridization/walking-test").claims
GAIN, = get_experiment("gridization/beam-optimization").claims


def _walking(values):
    """Results as run_walking_test writes them: ``values[method][metric]`` is one number per seed
    (two seeds); each seed gets two test rounds, ±0.01 around it."""
    methods = {}
    for m, metrics in values.items():
        rec = {}
        for metric, per_seed in metrics.items():
            runs = [[v - 0.01, v + 0.01] for v in per_seed]
            rec[metric] = {"mean": sum(x for run in runs for x in run) / (2 * len(runs)), "runs": runs}
        methods[m] = {**rec, "cluster_sizes": [[[30] * 100] * 2] * 2, "seconds": 1.0, "training": []}
    return {"backend": "rt", "site": {}, "samples_per_round": [3000] * 10, "patterns": [], "seeds": [0, 1],
            "n_grids": 100, "n_angles": 1656, "n_beams": 8, "methods": methods}


def _rec(active, overall, ratio, homogeneity):
    return {"active_mae": [active] * 2, "overall_mae": [overall] * 2, "active_ratio": [ratio] * 2,
            "homogeneity": [homogeneity] * 2}


def _good():
    return {"gsg-wnomp": _rec(6.7, 12.0, 0.95, 0.90), "bsg-omp": _rec(7.0, 40.0, 0.50, 0.55),
            "bsg-wnomp": _rec(6.5, 35.2, 0.60, 0.65), "csg-naive": _rec(6.0, 20.0, 0.70, 0.70),
            "csg-pida": _rec(4.6, 12.3, 0.90, 0.80)}


def _with(method, metric, per_seed):
    v = _good()
    v[method][metric] = per_seed
    return _walking(v)


def _status(claim, results):
    return check_claim(claim, results).status


def test_claims_have_kinds_and_paper_numbers():
    assert [c.kind for c in (MAE, RATIO, HOMOGENEITY, NAIVE, GAIN)] == ["paper"] * 5
    assert (MAE.paper_value, RATIO.paper_value, HOMOGENEITY.paper_value) == (-30.0, 0.90, 0.15)
    assert NAIVE.paper_value is None and GAIN.paper_value is None


@pytest.mark.parametrize("claim", [MAE, RATIO, HOMOGENEITY, NAIVE])
def test_nothing_is_a_fail(claim):
    assert _status(claim, {}) == "FAIL"
    no_methods = _walking({})
    assert _status(claim, no_methods) == "FAIL"
    no_seeds = _walking(_good())
    for rec in no_seeds["methods"].values():
        for metric in ("active_mae", "overall_mae", "active_ratio", "homogeneity"):
            rec[metric]["runs"] = []
    assert _status(claim, no_seeds) == "FAIL"
    no_rounds = _walking(_good())
    for rec in no_rounds["methods"].values():
        for metric in ("active_mae", "overall_mae", "active_ratio", "homogeneity"):
            rec[metric]["runs"] = [[], []]
    assert _status(claim, no_rounds) == "FAIL"


def test_pida_vs_bsg_mae():
    v = check_claim(MAE, _walking(_good()))
    assert v.status == "PASS" and v.ours == pytest.approx(100 * (4.6 - 6.5) / 6.5)
    assert v.margin == pytest.approx(1.9)                              # dB, the Active MAE margin is the smaller
    assert _status(MAE, _with("csg-pida", "overall_mae", [38.0, 38.0])) == "FAIL"
    assert _status(MAE, _with("csg-pida", "active_mae", [4.0, 7.0])) == "TIE"   # +2.5, -0.5 dB
    no_bsg = _good()
    del no_bsg["bsg-omp"], no_bsg["bsg-wnomp"]
    assert _status(MAE, _walking(no_bsg)) == "FAIL"


def test_pida_active_ratio():
    v = check_claim(RATIO, _walking(_good()))
    assert v.status == "PASS" and v.ours == pytest.approx(0.90)
    assert _status(RATIO, _with("csg-pida", "active_ratio", [0.80, 0.80])) == "FAIL"
    assert _status(RATIO, _with("csg-pida", "active_ratio", [0.95, 0.77])) == "TIE"  # +0.10, -0.08
    no_pida = _good()
    del no_pida["csg-pida"]
    assert _status(RATIO, _walking(no_pida)) == "FAIL"


def test_pida_homogeneity():
    v = check_claim(HOMOGENEITY, _walking(_good()))
    assert v.status == "PASS" and v.ours == pytest.approx(0.15)
    assert _status(HOMOGENEITY, _with("csg-pida", "homogeneity", [0.60, 0.60])) == "FAIL"
    assert _status(HOMOGENEITY, _with("csg-pida", "homogeneity", [0.90, 0.50])) == "TIE"  # +0.25, -0.15


def test_pida_vs_naive():
    v = check_claim(NAIVE, _walking(_good()))
    assert v.status == "PASS" and v.margin == pytest.approx(1.4)
    assert _status(NAIVE, _with("csg-naive", "active_mae", [4.0, 4.0])) == "FAIL"
    assert _status(NAIVE, _with("csg-naive", "overall_mae", [20.0, 5.0])) == "TIE"  # +7.7, -7.3 dB
    no_naive = _good()
    del no_naive["csg-naive"]
    assert _status(NAIVE, _walking(no_naive)) == "FAIL"


def _beam(pred=1.2, meas=0.8):
    rec = {"best_pattern": {}, "best_index": 3, "predicted": [0.0, 0.5, 0.9, pred], "measured": [0.0, 0.2, 0.3, meas],
           "predicted_gain_db": pred, "measured_gain_db": meas, "best_measured_gain_db": max(meas, 0.3),
           "rank_correlation": 0.8, "power_limited_beams": 0}
    return {"backend": "rt", "p_max_mw": 1.0, "current_index": 0, "patterns": [{}] * 4,
            "methods": {"csg-pida": rec, "gsg-wnomp": dict(rec)}}


def test_gain_sign():
    v = check_claim(GAIN, _beam())
    assert v.status == "PASS" and v.margin == pytest.approx(0.8) and "predicted gain" in v.measured
    assert _status(GAIN, _beam(meas=-0.3)) == "FAIL"
    assert _status(GAIN, _beam(pred=0.0)) == "FAIL"
    assert _status(GAIN, {}) == "FAIL"
    no_pida = _beam()
    del no_pida["methods"]["csg-pida"]
    assert _status(GAIN, no_pida) == "FAIL"
    no_methods = _beam()
    no_methods["methods"] = {}
    assert _status(GAIN, no_methods) == "FAIL"
