import json

import chanlab.experiments  # noqa: F401  (registers the experiments)
from chanlab.core.registry import get_experiment
from chanlab.core.run import check_claims, run_experiment


def test_walking_test_smoke(tmp_path):
    res = run_experiment("gridization/walking-test", preset="smoke", out=tmp_path / "wt")
    r = res.results
    assert r["backend"] == "stochastic"
    assert set(r["methods"]) == {"gsg-nomp", "bsg-wnomp", "csg-naive", "csg-pida"}
    rec = r["methods"]["csg-pida"]
    assert len(rec["active_mae"]["runs"]) == 1 and len(rec["active_mae"]["runs"][0]) == 2   # 1 seed x 2 test rounds
    for metric in ("overall_mae", "active_ratio", "homogeneity", "caps_nmse_train", "caps_nmse_test"):
        assert rec[metric]["mean"] == rec[metric]["mean"]
    assert len(rec["cluster_sizes"][0][0]) == 6
    assert rec["training"][0]["final_active_ratio"] >= 0
    saved = json.loads((tmp_path / "wt" / "results.json").read_text())
    assert saved["samples_per_round"] == r["samples_per_round"]
    for fig in ("fig9_route", "fig10a_mae", "fig10b_clustering", "fig10c_cluster_sizes"):
        assert (tmp_path / "wt" / "figures" / f"{fig}.png").is_file()
    verdicts = check_claims(get_experiment("gridization/walking-test").claims, r)
    assert len(verdicts) == 4 and all(v.measured for v in verdicts)


def test_beam_optimization_smoke(tmp_path):
    res = run_experiment("gridization/beam-optimization", preset="smoke", out=tmp_path / "bo")
    r = res.results
    assert len(r["patterns"]) == 4 and r["patterns"][r["current_index"]]["tilt_offset_deg"] == 0.0
    for rec in r["methods"].values():
        assert len(rec["predicted"]) == len(rec["measured"]) == 4
        assert rec["predicted_gain_db"] >= 0            # the current pattern is a candidate
        assert rec["predicted"][rec["best_index"]] == max(rec["predicted"])
    assert (tmp_path / "bo" / "figures" / "beam_optimization.png").is_file()
    verdict, = check_claims(get_experiment("gridization/beam-optimization").claims, r)
    assert "predicted gain" in verdict.measured
