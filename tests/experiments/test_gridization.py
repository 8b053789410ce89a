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
