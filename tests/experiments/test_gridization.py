import json

import chanlab.experiments  # noqa: F401  (registers the experiments)
from chanlab.core.run import run_experiment


def test_synthetic_smoke(tmp_path):
    res = run_experiment("gridization/synthetic", preset="smoke", out=tmp_path / "syn")
    r = res.results
    assert set(r["methods"]) == {"csg-ae", "kmeans-x", "kmeans-y", "kmeans-y-nomp", "wnomp-kmeans-x"}
    assert len(r["methods"]["csg-ae"]["sample_mean_nmse"]["mean"]) == 2
    assert "sample_mean_nmse" not in r["methods"]["kmeans-y"]
    assert set(r["utilization"]) == {"naive", "kmeans-init", "pretrain", "pida"}
    saved = json.loads((tmp_path / "syn" / "results.json").read_text())
    assert saved["scales"] == [0.1, 1.0]
    for fig in ("fig8a_clustering", "fig8b_caps", "fig6_utilization"):
        assert (tmp_path / "syn" / "figures" / f"{fig}.png").is_file()


def test_codebook_utilization_smoke(tmp_path):
    res = run_experiment("gridization/codebook-utilization", preset="smoke", out=tmp_path / "util")
    assert len(res.results["utilization"]) == 7
    for fig in ("fig6_utilization", "fig5_embeddings"):
        assert (tmp_path / "util" / "figures" / f"{fig}.png").is_file()


def test_the_run_seed_changes_the_results(tmp_path):
    """``--seed`` shifts every seed of a run by 1000 per run seed (seed 0 keeps the configured ones),
    so runs with seeds 0 and 1 are different repetitions: other data, initialization and baselines."""
    syn = {s: run_experiment("gridization/synthetic", preset="smoke", out=tmp_path / f"syn{s}", seed=s).results
           for s in (0, 1)}
    assert [(r["run_seed"], r["effective_seeds"], r["utilization_seed"]) for r in syn.values()] == \
        [(0, [0], 0), (1, [1000], 1000)]
    for method in ("csg-ae", "kmeans-x", "wnomp-kmeans-x"):
        for i in range(2):                                  # every perturbation scale
            assert syn[0]["methods"][method]["sample_mean_nmse"]["per_seed"][i] != \
                syn[1]["methods"][method]["sample_mean_nmse"]["per_seed"][i], method
    assert syn[0]["utilization"]["pida"]["sample_mean_nmse"] != syn[1]["utilization"]["pida"]["sample_mean_nmse"]
    saved = json.loads((tmp_path / "syn1" / "results.json").read_text())
    assert saved["effective_seeds"] == [1000] and saved["seeds"] == [0]

    walk = {s: run_experiment("gridization/walking-test", preset="smoke", out=tmp_path / f"wt{s}", seed=s).results
            for s in (0, 1)}
    assert [(r["data_seed"], r["effective_seeds"]) for r in walk.values()] == [(0, [0]), (1000, [1000])]
    for method in ("gsg-nomp", "bsg-wnomp", "csg-pida"):
        assert walk[0]["methods"][method]["overall_mae"]["runs"] != walk[1]["methods"][method]["overall_mae"]["runs"]
