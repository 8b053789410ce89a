import pytest

import chanlab.experiments  # noqa: F401  (registers the experiments)
from chanlab.core.errors import ConfigError
from chanlab.core.claims import check_claim
from chanlab.core.registry import get_experiment
from chanlab.core.run import run_experiment


def test_error_levels_smoke_reports_every_method(tmp_path):
    res = run_experiment("cellfree/error-levels", preset="smoke", out=tmp_path, device="cpu")
    methods = res.results["methods"]
    assert set(methods) == {"rjapcbn", "jcbnet", "cnns", "wmmse_imperfect", "swmmse", "wmmse_perfect", "robust_ga"}
    # The ascent starts from WMMSE on the estimates and keeps its best iterate.
    assert all(g >= w - 1e-6 for g, w in zip(methods["robust_ga"]["worst_case_sum_rate"],
                                             methods["wmmse_imperfect"]["worst_case_sum_rate"]))
    for name, series in methods.items():
        assert len(series["worst_case_sum_rate"]) == 2
        assert all(0 <= q <= 4 for q in series["q_ave"]), name
        # The worst case never exceeds what the sampled true channel gives.
        if name != "wmmse_perfect":
            assert all(w <= t + 1e-6 for w, t in zip(series["worst_case_sum_rate"], series["true_sum_rate"]))
    assert [p.name for p in res.figures] == ["error_level.png"]
    for claim in get_experiment("cellfree/error-levels").claims:
        verdict = check_claim(claim, res.results)
        assert verdict.status in ("PASS", "FAIL", "TIE") and verdict.measured


def test_lambda_smoke(tmp_path):
    res = run_experiment("cellfree/lambda", preset="smoke", out=tmp_path, device="cpu")
    assert list(res.results["methods"]) == ["rjapcbn"]
    assert res.results["values"] == [0.0, 1.0]


def test_unknown_method_is_a_config_error(tmp_path):
    with pytest.raises(ConfigError, match="unknown"):
        run_experiment("cellfree/error-levels", preset="smoke", out=tmp_path,
                       overrides={"baselines.methods": ("rjapcbn", "magic")})


def test_kernels_and_complexity_smoke(tmp_path):
    res = run_experiment("cellfree/kernels", preset="smoke", out=tmp_path / "k", device="cpu")
    assert set(res.results["rjapcbn"]) == {"3x3", "5x3"}
    res = run_experiment("cellfree/complexity", preset="smoke", out=tmp_path / "c", device="cpu")
    counts = res.results["analytic_multiplications"]
    assert set(counts) == {"wmmse", "swmmse", "cnns", "jcbnet", "rjapcbn"}
    assert all(m > 0 for values in res.results["measured_multiplications"].values() for m in values)
    assert [p.name for p in res.figures] == ["complexity.png"]


def test_kernel_strings():
    from chanlab.cellfree.compare import parse_kernel

    assert parse_kernel("7x5") == (7, 5) and parse_kernel(3) == (3, 3)
    with pytest.raises(ConfigError):
        parse_kernel("big")
