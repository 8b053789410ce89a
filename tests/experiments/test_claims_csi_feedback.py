"""The csi_feedback claims on synthetic results laid out as the run functions write them: each one
PASSes on a good run, FAILs on a doctored copy (one number flipped) and on nothing. The quick
presets run one seed (``ctx.seed``), so the margins carry no spread and no claim can be a TIE."""

import copy

import pytest

import chanlab.experiments  # noqa: F401  (registers the experiments)
from chanlab.core.claims import check_claim
from chanlab.core.registry import get_experiment


def _claim(experiment: str, start: str):
    matches = [c for c in get_experiment(f"csi_feedback/{experiment}").claims if c.statement.startswith(start)]
    assert len(matches) == 1, (experiment, start)
    return matches[0]


def _status(claim, results) -> str:
    return check_claim(claim, results).status


def _rec(nmse_db: float, **extra) -> dict:
    return {"nmse_db": nmse_db, "rho": 0.9, "payload_bits": 256, "stream_bits": 256, "seconds": 1.0, **extra}


def _table(points: list[tuple[int, int, dict[str, float]]], shape=(2, 16, 16)) -> dict:
    """``_run_table``'s layout: ``points`` of ``{"m", "b", "methods": {scheme: record}}``."""
    return {"points": [{"m": m, "b": b, "methods": {s: _rec(v) for s, v in methods.items()}} for m, b, methods in points],
            "n_train": 10000, "shape": list(shape)}


def _table2() -> dict:
    """Quick preset's points (128x2, 128x4, 64x4 at 16 × 16): Proposed best, NQ below all."""
    res = _table([
        (128, 2, {"nq": -16.0, "round": -10.0, "vector-1": -8.0, "vector-2": -9.0, "vector-4": -10.5,
                  "proposed": -13.0, "proposed-var2": -12.0, "proposed-var1": -12.5}),
        (128, 4, {"nq": -16.0, "round": -12.0, "vector-1": -11.0, "vector-2": -11.5,
                  "proposed": -15.0, "proposed-var2": -14.0, "proposed-var1": -14.6}),
        (64, 4, {"nq": -12.0, "round": -9.0, "vector-1": -8.5, "vector-2": -8.8,
                 "proposed": -11.0, "proposed-var2": -10.2, "proposed-var1": -10.7}),
    ])
    res["points"][0]["methods"]["proposed"].update(
        bits_min=2, bits_max=2, encoder_outputs={"allocation_moves_in_training": 0, "ratio_std": 0.04})
    return res


def _table1() -> dict:
    return _table([
        (128, 2, {"pca": -5.0, "lloyd": -6.0, "lloyd-log": -5.5, "proposed": -13.0, "proposed-var1": -12.5}),
        (128, 4, {"pca": -9.0, "lloyd": -10.0, "lloyd-log": -11.0, "proposed": -15.0, "proposed-var1": -14.6}),
        (64, 4, {"pca": -2.0, "lloyd": -8.0, "lloyd-log": -9.0, "proposed": -11.0, "proposed-var1": -10.7}),
    ])


def _transnet() -> dict:
    return _table([(128, b, {"round": -10.0 - 2 * b, "proposed": -12.0 - 3 * b}) for b in (2, 3, 4)])


def _dynamic() -> dict:
    """``run_dynamic``'s layout (quick: M = 64, B = 3)."""
    return {"m": 64, "b": 3, "scheme": "proposed",
            "subcarriers": {"512": {"upper": -15.0, "direct": -11.0, "joint": -13.0},
                            "2048": {"upper": -13.0, "direct": -7.0, "joint": -11.5}},
            "environments": {"indoor": {"upper": -14.0, "direct": -1.0, "joint": -12.0},
                             "outdoor": {"upper": -8.0, "direct": 1.0, "joint": -7.0}}}


def _ranges() -> dict:
    """``run_ranges``'s layout."""
    def arch(std):
        return {"ratio": [1 - std, 1.0, 1 + std], "ratio_std": std, "ratio_max_over_min": (1 + std) / (1 - std),
                "quantiles_5_25_50_75_95": [1 - std, 1.0, 1.0, 1.0, 1 + std], "encoder_parameters": 1000}
    return {"m": 128, "archs": {"csinet": arch(0.09), "csinet-v1": arch(0.07), "csinet-v2": arch(0.06),
                                "csinet-pro": arch(0.05)}}


def _set(res: dict, m: int, b: int, scheme: str, value: float) -> dict:
    out = copy.deepcopy(res)
    point = next(p for p in out["points"] if (p["m"], p["b"]) == (m, b))
    point["methods"][scheme]["nmse_db"] = value
    return out


def test_every_claim_has_a_kind_and_the_paper_numbers_have_a_source():
    names = ("table1", "table2", "dynamic", "encoder-ranges", "transnet")
    claims = [c for n in names for c in get_experiment(f"csi_feedback/{n}").claims]
    assert len(claims) == 8
    for c in claims:
        assert c.kind == "paper"
        assert _status(c, {}) == "FAIL"
        if c.paper_value is not None:
            assert c.paper_text


@pytest.mark.parametrize("start", ["Proposed has a lower NMSE than Round", "Proposed beats Proposed-var1",
                                   "Proposed beats Proposed-var2", "NQ (no quantization)"])
def test_table2_claims_fail_on_nothing(start):
    claim = _claim("table2", start)
    assert _status(claim, {"points": [], "shape": [2, 16, 16]}) == "FAIL"
    assert _status(claim, {"shape": [2, 16, 16]}) == "FAIL"


def test_table2_round_and_vector():
    claim = _claim("table2", "Proposed has a lower NMSE than Round")
    v = check_claim(claim, _table2())
    assert v.status == "PASS"
    assert v.ours == pytest.approx(2.5)            # 128x2 (the paper's 512x2): -13.0 vs vector-4 -10.5
    assert v.margin == pytest.approx(2.0) and v.spread is None     # 64x4: -11.0 vs round -9.0
    assert claim.paper_value == pytest.approx(-13.03 - -15.42)
    assert _status(claim, _set(_table2(), 128, 4, "vector-2", -15.5)) == "FAIL"
    # a point where only Proposed ran compares nothing
    assert _status(claim, _table([(128, 2, {"proposed": -13.0})])) == "FAIL"


def test_table2_var1_reports_the_allocation():
    claim = _claim("table2", "Proposed beats Proposed-var1")
    v = check_claim(claim, _table2())
    assert v.status == "PASS"
    assert v.ours == pytest.approx(0.5) and v.margin == pytest.approx(0.3)
    assert "proposed's B_m in [2, 2] after 0 allocation moves" in v.measured
    assert claim.paper_value == pytest.approx(-13.14 - -15.42)
    assert claim.diagnosis
    assert _status(claim, _set(_table2(), 64, 4, "proposed-var1", -11.2)) == "FAIL"
    # the rival ran but Proposed did not
    doctored = copy.deepcopy(_table2())
    del doctored["points"][1]["methods"]["proposed"]
    assert _status(claim, doctored) == "FAIL"


def test_table2_var2():
    claim = _claim("table2", "Proposed beats Proposed-var2")
    v = check_claim(claim, _table2())
    assert v.status == "PASS" and v.ours == pytest.approx(1.0) and v.margin == pytest.approx(0.8)
    assert claim.paper_value == pytest.approx(-14.62 - -15.42)
    assert _status(claim, _set(_table2(), 128, 2, "proposed-var2", -13.5)) == "FAIL"


def test_table2_nq_bound():
    claim = _claim("table2", "NQ (no quantization)")
    v = check_claim(claim, _table2())
    assert v.status == "PASS"
    assert v.ours == pytest.approx(1.0)            # 64x4 (the paper's 256x4): nq -12.0 vs proposed -11.0
    assert v.margin == pytest.approx(1.0)
    assert claim.paper_value == pytest.approx(-15.12 - -15.77)
    assert _status(claim, _set(_table2(), 128, 4, "nq", -14.0)) == "FAIL"
    # NQ missing at a point, or nothing quantized beside it
    doctored = copy.deepcopy(_table2())
    del doctored["points"][2]["methods"]["nq"]
    assert _status(claim, doctored) == "FAIL"
    assert _status(claim, _table([(128, 2, {"nq": -16.0})])) == "FAIL"


def test_ours_sits_at_the_paper_point_on_the_paper_size():
    """At 32 × 32 the paper's own (M, B) is the point; off it (no such point) ours is None."""
    claim = _claim("table2", "Proposed beats Proposed-var2")
    paper = _table([(512, 2, {"proposed": -15.0, "proposed-var2": -14.0}),
                    (512, 4, {"proposed": -20.0, "proposed-var2": -19.5})], shape=(2, 32, 32))
    v = check_claim(claim, paper)
    assert v.status == "PASS" and v.ours == pytest.approx(1.0) and v.margin == pytest.approx(0.5)
    quick_points_on_paper_size = _table([(128, 2, {"proposed": -15.0, "proposed-var2": -14.0})], shape=(2, 32, 32))
    assert check_claim(claim, quick_points_on_paper_size).ours is None


def test_table1():
    claim = _claim("table1", "Proposed beats PCA, Lloyd and Lloyd-log")
    v = check_claim(claim, _table1())
    assert v.status == "PASS"
    assert v.ours == pytest.approx(7.0)            # 128x2: -13.0 vs lloyd -6.0
    assert v.margin == pytest.approx(2.0)          # 64x4: -11.0 vs lloyd-log -9.0
    assert claim.paper_value == pytest.approx(-7.20 - -15.42)
    assert _status(claim, _set(_table1(), 64, 4, "pca", -11.5)) == "FAIL"
    assert _status(claim, {"points": [], "shape": [2, 16, 16]}) == "FAIL"


def test_transnet():
    claim = _claim("transnet", "With TransNet, Proposed beats Round")
    v = check_claim(claim, _transnet())
    assert v.status == "PASS"
    assert v.ours == pytest.approx(4.0) and v.margin == pytest.approx(4.0)     # B = 2: -18 vs -14
    assert claim.paper_value == pytest.approx(-16.92 - -20.28)
    assert _status(claim, _set(_transnet(), 128, 3, "round", -21.5)) == "FAIL"
    assert _status(claim, {"points": [], "shape": [2, 16, 16]}) == "FAIL"


def test_dynamic():
    claim = _claim("dynamic", "Joint training beats Direct")
    v = check_claim(claim, _dynamic())
    assert v.status == "PASS"
    assert v.ours == pytest.approx(2.0) and v.margin == pytest.approx(2.0)     # N_c = 512: -13 vs -11
    assert "N_c = 512" in v.measured
    assert claim.paper_value == pytest.approx(-14.46 - -17.60)
    doctored = copy.deepcopy(_dynamic())
    doctored["environments"]["outdoor"]["joint"] = 2.0
    assert _status(claim, doctored) == "FAIL"
    assert _status(claim, {"subcarriers": {}, "environments": {}}) == "FAIL"
    assert _status(claim, dict(_dynamic(), subcarriers={})) == "FAIL"
    assert _status(claim, dict(_dynamic(), environments={})) == "FAIL"


def test_encoder_ranges():
    claim = _claim("encoder-ranges", "Outputs of the small CsiNet encoder")
    v = check_claim(claim, _ranges())
    assert v.status == "PASS" and v.margin == pytest.approx(0.04)
    assert claim.paper_value is None              # Fig. 2 prints no number
    doctored = copy.deepcopy(_ranges())
    doctored["archs"]["csinet-pro"]["ratio_std"] = 0.12
    assert _status(claim, doctored) == "FAIL"
    assert _status(claim, {"m": 128, "archs": {}}) == "FAIL"
    del doctored["archs"]["csinet-pro"]
    assert _status(claim, doctored) == "FAIL"
