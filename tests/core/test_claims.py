import math

import pytest

from chanlab.core.claims import (Claim, NothingToCheck, Outcome, all_of, check_claim, check_claims, margin_outcome,
                                 require, seed_stats, worst_margin)


def _claim(check, **kw):
    return Claim("A beats B", check, **kw)


def test_pass_fail_and_the_paper_number_beside_ours():
    c = _claim(lambda r: Outcome(r["a"] < r["b"], f"{r['a']} vs {r['b']}", ours=r["b"] - r["a"]),
               paper_value=2.0, paper_text="Table I")
    v = check_claim(c, {"a": 1.0, "b": 4.0})
    assert v.status == "PASS" and v.ours == 3.0 and v.relative_gap == pytest.approx(0.5)
    assert any("vs paper 2" in line and "+50 %" in line for line in v.lines())
    assert check_claim(c, {"a": 5.0, "b": 4.0}).status == "FAIL"


def test_a_verdict_on_nothing_is_a_fail_with_the_reason():
    c = _claim(lambda r: Outcome(all_of((x > 0 for x in r["points"]), "points"), "ok"))
    assert check_claim(c, {}).status == "FAIL"
    v = check_claim(c, {"points": []})
    assert v.status == "FAIL" and "nothing to check: no points" in v.measured
    v = check_claim(c, {"other": 1})
    assert v.status == "FAIL" and "lack 'points'" in v.measured
    assert check_claim(c, {"points": [1, 2]}).status == "PASS"


def test_a_margin_inside_the_seed_spread_is_a_tie():
    c = _claim(lambda r: margin_outcome(r["margins"], "margins"))
    assert check_claim(c, {"margins": [1.0, 1.2, 0.9]}).status == "PASS"
    tie = check_claim(c, {"margins": [0.5, -0.3, 0.4]})
    assert tie.status == "TIE" and not tie.passed
    assert tie.spread == pytest.approx(seed_stats([0.5, -0.3, 0.4])[1])
    assert check_claim(c, {"margins": [-1.0, -1.1]}).status == "FAIL"
    one = check_claim(c, {"margins": [0.01]})
    assert one.status == "PASS" and one.spread is None


def test_worst_margin_combines_comparisons():
    good, tie, bad = Outcome(True, "", margin=2.0, spread=0.5), Outcome(True, "", margin=0.1, spread=0.5), \
        Outcome(False, "", margin=-3.0, spread=0.5)
    c = _claim(lambda r: worst_margin(r["o"], "all"))
    assert check_claim(c, {"o": [good, good]}).status == "PASS"
    assert check_claim(c, {"o": [good, tie]}).status == "TIE"
    assert check_claim(c, {"o": [good, tie, bad]}).status == "FAIL"


def test_crashing_checkers_and_old_style_pairs():
    assert check_claim(_claim(lambda r: (True, "fine")), {"x": 1}).status == "PASS"
    v = check_claim(_claim(lambda r: 1 / 0), {"x": 1})
    assert v.status == "FAIL" and "ZeroDivisionError" in v.measured
    assert check_claim(_claim(lambda r: "yes"), {"x": 1}).status == "FAIL"
    assert [v.status for v in check_claims([_claim(lambda r: (False, ""))] * 2, {"x": 1})] == ["FAIL", "FAIL"]


def test_helpers_and_kinds():
    with pytest.raises(NothingToCheck):
        require([], "seeds")
    assert require([1], "x") == [1]
    mean, spread = seed_stats([1.0, 3.0])
    assert mean == 2.0 and math.isclose(spread, math.sqrt(2))
    with pytest.raises(ValueError, match="kind"):
        Claim("x", lambda r: (True, ""), kind="opinion")


def test_every_registered_claim_has_a_kind_and_fails_on_nothing():
    import chanlab.experiments  # noqa: F401
    from chanlab.core.registry import list_experiments

    claims = [c for e in list_experiments() for c in e.claims]
    assert len(claims) >= 46
    for c in claims:
        assert c.kind in ("paper", "analytic", "invariant", "target")
        assert check_claim(c, {}).status == "FAIL"
        if c.paper_value is not None:
            assert c.paper_text, c.statement
