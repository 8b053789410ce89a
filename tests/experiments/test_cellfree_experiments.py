import pytest

import chanlab.experiments  # noqa: F401  (registers the experiments)
from chanlab.core.errors import ConfigError
from chanlab.core.claims import check_claim
from chanlab.core.registry import get_experiment
from chanlab.core.run import run_experiment


def test_error_levels_smoke_reports_every_method(tmp_path):
    res = run_experiment("cellfree/error-levels", preset="smoke", out=tmp_path, device="cpu")
    methods = res.results["methods"]
    assert set(methods) == {"rjapcbn", "jcbnet", "cnns", "unfolded", "wmmse_imperfect", "swmmse", "wmmse_perfect",
                            "robust_ga"}
    # every method's cost is counted from the code that ran; the iterative ones say how many iterations
    for name, series in methods.items():
        assert all(c > 0 for c in series["measured_multiplications"]), name
    for name in ("wmmse_imperfect", "swmmse", "wmmse_perfect", "robust_ga", "unfolded"):
        assert all(i >= 1 for i in methods[name]["iterations"]), name
    # the robust reference's count holds its WMMSE start and its own steps
    assert all(ga > w for ga, w in zip(methods["robust_ga"]["measured_multiplications"],
                                       methods["wmmse_imperfect"]["measured_multiplications"]))
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


def test_clustering_smoke_draws_the_trade_off(tmp_path):
    res = run_experiment("cellfree/clustering", preset="smoke", out=tmp_path, device="cpu").results
    curve = res["unfolded"]
    assert curve["serving"] == [1, 4] and curve["q_ave"] == pytest.approx([1.0, 4.0])
    assert set(res["points"]) == {"rjapcbn", "wmmse_imperfect", "swmmse", "unfolded"}
    assert (tmp_path / "figures" / "clustering_trade_off.png").is_file()
    for claim in get_experiment("cellfree/clustering").claims:
        assert check_claim(claim, res).status in ("PASS", "FAIL")
    with pytest.raises(ConfigError, match="serving"):
        run_experiment("cellfree/clustering", preset="smoke", out=tmp_path / "bad", device="cpu",
                       overrides={"serving": (0, 9)})


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
