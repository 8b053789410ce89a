"""The claims of gridization/synthetic and gridization/codebook-utilization on hand-made results."""

import copy

import pytest

import chanlab.experiments  # noqa: F401  (registers the experiments)
from chanlab.core.claims import check_claim
from chanlab.core.registry import get_experiment

SCALES = [0.1, 0.5, 1.0]


def _claims(name):
    return get_experiment(name).claims


def _synthetic(per_seed):
    """Results as run_synthetic writes them: ``per_seed[method][metric]`` is a list over s of
    per-seed lists (two seeds)."""
    methods = {m: {metric: {"mean": [sum(v) / len(v) for v in per_s], "min": [min(v) for v in per_s],
                            "max": [max(v) for v in per_s], "per_seed": per_s}
                   for metric, per_s in metrics.items()} for m, metrics in per_seed.items()}
    return {"scales": list(SCALES), "seeds": [0, 1], "n_angles": 1656, "n_beams": 8, "n_samples": 5000,
            "methods": methods, "seconds": {m: 1.0 for m in methods}, "utilization": _utilization()}


def _const(*values):
    """One value per s, the same for both seeds."""
    return [[v, v] for v in values]


def _good():
    return {
        "csg-ae": {"ari": _const(0.80, 0.78, 0.75), "sample_mean_nmse": _const(0.10, 0.15, 0.20),
                   "center_wasserstein": _const(1e-4, 2e-4, 3e-4)},
        "kmeans-x": {"ari": _const(0.95, 0.60, 0.30)},
        "kmeans-y": {"ari": _const(0.85, 0.82, 0.80)},
        "kmeans-y-nomp": {"ari": _const(0.85, 0.82, 0.80), "sample_mean_nmse": _const(0.50, 0.55, 0.60),
                          "center_wasserstein": _const(5e-4, 6e-4, 7e-4)},
        "wnomp-kmeans-x": {"ari": _const(0.30, 0.25, 0.20), "sample_mean_nmse": _const(0.70, 0.80, 0.90),
                           "center_wasserstein": _const(9e-4, 9e-4, 9e-4)},
    }


def _utilization(naive=0.26, kmeans_init=0.86, pretrain=0.18, pida_min=0.97, pida_final=0.99):
    def rec(final, lowest, first=1.0):
        hist = [first, lowest, final]
        return {"active_ratio": hist, "initial_active_ratio": first, "final_active_ratio": final,
                "min_active_ratio": min(hist), "seconds": 1.0}

    return {"naive": rec(naive, 0.1, first=0.3), "kmeans-init": rec(kmeans_init, 0.01),
            "pretrain": rec(pretrain, 0.1, first=0.2), "pida": rec(pida_final, pida_min)}


def _status(claim, results):
    return check_claim(claim, results).status


CAPS, KMX, UTIL = _claims("gridization/synthetic")


def test_claims_have_kinds_and_paper_numbers():
    assert [c.kind for c in _claims("gridization/synthetic")] == ["paper"] * 3
    assert UTIL.paper_value == pytest.approx(0.26) and "26 %" in UTIL.paper_text
    assert CAPS.paper_value is None and KMX.paper_value is None
    assert _claims("gridization/codebook-utilization") == (UTIL,)


@pytest.mark.parametrize("claim", [CAPS, KMX, UTIL])
def test_nothing_is_a_fail(claim):
    assert _status(claim, {}) == "FAIL"
    no_seeds = _synthetic(_good())
    no_seeds["utilization"] = {}
    for rec in no_seeds["methods"].values():
        for m in rec.values():
            m["per_seed"] = [[] for _ in SCALES]
    assert _status(claim, no_seeds) == "FAIL"
    no_scales = _synthetic(_good())
    no_scales["scales"], no_scales["methods"], no_scales["utilization"] = [], {}, {}
    assert _status(claim, no_scales) == "FAIL"


def test_csg_best_caps():
    good = _synthetic(_good())
    v = check_claim(CAPS, good)
    assert v.status == "PASS" and v.margin > 0 and v.spread is not None
    bad = _good()
    bad["csg-ae"]["center_wasserstein"][2] = [8e-4, 8e-4]          # beaten by kmeans-y-nomp at s = 1
    assert _status(CAPS, _synthetic(bad)) == "FAIL"
    tie = _good()
    tie["csg-ae"]["sample_mean_nmse"][1] = [0.25, 0.70]             # margins +0.55, -0.27 vs 0.55
    assert _status(CAPS, _synthetic(tie)) == "TIE"
    no_rival = _good()
    for m in ("kmeans-y-nomp", "wnomp-kmeans-x"):
        del no_rival[m]["sample_mean_nmse"], no_rival[m]["center_wasserstein"]
    assert _status(CAPS, _synthetic(no_rival)) == "FAIL"


def test_kmeans_x_clustering():
    v = check_claim(KMX, _synthetic(_good()))
    assert v.status == "PASS" and v.margin == pytest.approx(0.10)
    bad = _good()
    bad["kmeans-x"]["ari"][0] = [0.70, 0.70]                         # below CSG-AE at the smallest s
    assert _status(KMX, _synthetic(bad)) == "FAIL"
    flat = _good()
    flat["kmeans-x"]["ari"][2] = [0.96, 0.96]                        # does not degrade
    assert _status(KMX, _synthetic(flat)) == "FAIL"
    tie = _good()
    tie["kmeans-x"]["ari"][0] = [0.95, 0.80]                         # margins +0.10, -0.05
    assert _status(KMX, _synthetic(tie)) == "TIE"
    one_scale = _synthetic(_good())
    one_scale["scales"] = [0.1]
    assert _status(KMX, one_scale) == "FAIL"


@pytest.mark.parametrize("layout", ["synthetic", "codebook-utilization"])
def test_utilization(layout):
    def results(**kw):
        u = _utilization(**kw)
        if layout == "synthetic":
            r = _synthetic(_good())
            r["utilization"] = u
            return r
        return {"scale": 0.5, "utilization": u}

    v = check_claim(UTIL, results())
    assert v.status == "PASS" and v.ours == pytest.approx(0.26) and v.margin == pytest.approx(0.02)
    assert _status(UTIL, results(naive=0.6)) == "FAIL"                 # naive does not collapse
    assert _status(UTIL, results(pida_min=0.90)) == "FAIL"             # PIDA dips below 95 %
    assert _status(UTIL, results(kmeans_init=0.2)) == "FAIL"           # K-means init alone below naive
    assert _status(UTIL, results(pretrain=0.995)) == "FAIL"            # pretraining alone above PIDA
    missing = results()
    del missing["utilization"]["pretrain"]
    assert _status(UTIL, missing) == "FAIL"
    no_history = copy.deepcopy(results())
    no_history["utilization"]["pida"]["active_ratio"] = []
    assert _status(UTIL, no_history) == "FAIL"
