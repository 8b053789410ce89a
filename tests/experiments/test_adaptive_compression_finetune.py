import pytest

import chanlab.experiments  # noqa: F401  (registers the experiments)
from chanlab.core.errors import ConfigError
from chanlab.core.registry import get_experiment
from chanlab.core.run import check_claims, run_experiment


def _claims_run(name, results):
    for verdict in check_claims(get_experiment(name).claims, results):
        assert isinstance(verdict.passed, bool) and verdict.measured


def test_finetune_smoke_reports_every_scheme(tmp_path):
    res = run_experiment("adaptive_compression/finetune", preset="smoke", out=tmp_path, device="cpu")
    panels = res.results["sizes"]["64x64"]
    assert set(panels) == {"street-mobile", "dynamic-scatterers"}
    for env, c in panels.items():
        assert c["n_finetune"] == (100 if env == "street-mobile" else 127) and c["n_eval"] == 6
        for scheme in ("no-ft", "encoder-only", "translation"):
            assert len(c[scheme]["nmse_db"]) == 2, scheme
            assert c[scheme]["update_bits"] == [0.0, 0.0]
        for scheme in ("full-uniform", "full-gaussian", "full-unaware"):
            row = c[scheme]
            assert row["update_bits"][0] > 0 and all(row["exact"])
            assert row["total_bits"][0] == pytest.approx(row["bits_real"][0] + row["update_bits"][0] / 6)
        assert c["genie"]["update_bits"] == [0.0]
    assert [p.name for p in res.figures] == ["finetune_rd.png"]
    _claims_run("adaptive_compression/finetune", res.results)


def test_update_period_smoke(tmp_path):
    res = run_experiment("adaptive_compression/update-period", preset="smoke", out=tmp_path, device="cpu")
    c = res.results["sizes"]["64x64"]
    assert c["periods_m"] == [0.5, 1.0, 2.0]
    # The same update is amortized over more CSI as the period grows.
    assert c["update_bits_per_csi"][0] > c["update_bits_per_csi"][1] > c["update_bits_per_csi"][2] > 0
    assert c["best_period_m"] in c["periods_m"] and isinstance(c["interior_optimum"], bool)
    assert [p.name for p in res.figures] == ["update_period.png"]
    _claims_run("adaptive_compression/update-period", res.results)


def test_quantization_aware_and_complexity_smoke(tmp_path):
    res = run_experiment("adaptive_compression/quantization-aware", preset="smoke", out=tmp_path / "q", device="cpu")
    (c,) = res.results["sizes"].values()
    assert set(c["street-mobile"]) == {"full-uniform", "full-unaware"}
    _claims_run("adaptive_compression/quantization-aware", res.results)
    res = run_experiment("adaptive_compression/complexity", preset="smoke", out=tmp_path / "c", device="cpu")
    r = res.results["sizes"]["64x64"]
    assert r["encoder-only"]["trainable"] + r["decoder_side_parameters"] == r["full-model"]["trainable"]
    assert r["translation"]["flops"] > r["full-model"]["flops"] > 0
    _claims_run("adaptive_compression/complexity", res.results)


def test_bad_configs(tmp_path):
    with pytest.raises(ConfigError, match="schemes"):
        run_experiment("adaptive_compression/finetune", preset="smoke", out=tmp_path / "a",
                       overrides={"schemes": ("no-ft", "magic")})
    with pytest.raises(ConfigError, match="full_lam_index"):
        run_experiment("adaptive_compression/finetune", preset="smoke", out=tmp_path / "b",
                       overrides={"full_lam_index": 5})
    with pytest.raises(ConfigError, match="prior"):
        run_experiment("adaptive_compression/update-period", preset="smoke", out=tmp_path / "c",
                       overrides={"prior": "laplace"})
