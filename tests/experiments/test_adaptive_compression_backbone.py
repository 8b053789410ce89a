import pytest

import chanlab.experiments  # noqa: F401  (registers the experiments)
from chanlab.core.errors import ConfigError
from chanlab.core.claims import check_claim
from chanlab.core.registry import get_experiment
from chanlab.core.run import check_claims, run_experiment


def test_backbone_rd_smoke(tmp_path):
    res = run_experiment("adaptive_compression/backbone-rd", preset="smoke", out=tmp_path, device="cpu")
    sizes = res.results["sizes"]
    assert set(sizes) == {"64x64", "64x32"}
    for curve in sizes.values():
        assert len(curve["bits_real"]) == len(curve["lams"]) == 2
        assert all(curve["exact"])
    assert curve["compression_ratio"] == 16
    assert [p.name for p in res.figures] == ["backbone_rd.png"]
    verdicts = {v.statement: v for v in check_claims(get_experiment("adaptive_compression/backbone-rd").claims,
                                                      res.results)}
    assert verdicts["Decoding the bytes reproduces the encoder-side reconstruction exactly"].passed
    assert verdicts["Every CSI's real size is within 2% plus 8 bytes of the entropy estimate"].passed


def test_shift_smoke_reports_every_environment(tmp_path):
    res = run_experiment("adaptive_compression/shift", preset="smoke", out=tmp_path, device="cpu")
    for curves in res.results["sizes"].values():
        assert set(curves) == {"source", "street-mobile", "dynamic-scatterers"}
        for c in curves.values():
            assert len(c["nmse_db"]) == 2 and 0 < c["n"][0] <= 10
    assert [p.name for p in res.figures] == ["shift_rd.png"]
    claim = get_experiment("adaptive_compression/shift").claims[0]
    assert "street-mobile" in check_claim(claim, res.results).measured


def test_bad_config_is_a_config_error(tmp_path):
    with pytest.raises(ConfigError, match="nothing to run"):
        run_experiment("adaptive_compression/backbone-rd", preset="smoke", out=tmp_path / "a",
                       overrides=["small.enabled=false", "large.enabled=false"])
    with pytest.raises(ConfigError, match="lams"):
        run_experiment("adaptive_compression/backbone-rd", preset="smoke", out=tmp_path / "b",
                       overrides={"small.lams": ()})


def test_claim_checks_on_made_up_results():
    claims = {c.statement[:20]: c for c in get_experiment("adaptive_compression/backbone-rd").claims}
    monotone = claims["Larger λ gives a hig"]
    good = {"sizes": {"a": {"lams": [1, 2, 3], "bits_real": [10, 20, 30], "nmse_db": [-1, -2, -3]}}}
    bad = {"sizes": {"a": {"lams": [1, 2, 3], "bits_real": [10, 30, 20], "nmse_db": [-1, -2, -3]}}}
    assert check_claim(monotone, good).passed and not check_claim(monotone, bad).passed
    shift = get_experiment("adaptive_compression/shift").claims[0]
    res = {"sizes": {"a": {"source": {"nmse_db": [-10, -12]}, "x": {"nmse_db": [-3, -11]}}}}
    assert check_claim(shift, res).passed
    res["sizes"]["a"]["x"]["nmse_db"] = [-3, -13]
    assert not check_claim(shift, res).passed
