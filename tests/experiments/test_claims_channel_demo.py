"""The claims of channels/demo on synthetic results: PASS, a doctored FAIL, FAIL on nothing."""

import pytest

import chanlab.experiments  # noqa: F401  (registers the experiments)
from chanlab.core.claims import check_claim
from chanlab.core.registry import get_experiment


def _stats(support, round_trip=3e-7):
    return {"energy_kept": 0.95, "truncation_nmse_db": -13.0, "truncation_rho": 0.97,
            "angular_support_90": support, "round_trip_rel_error": round_trip}


def _results():
    """The layout run_demo writes."""
    return {"channels": {"CDL-A": _stats(0.40), "CDL-B": _stats(0.35), "CDL-C": _stats(0.30),
                         "CDL-D": _stats(0.08), "CDL-E": _stats(0.05)},
            "sum_rate": {"snr_db": [-10.0, 0.0, 10.0, 20.0, 30.0], "mrt": [0.9, 3.5, 7.0, 9.0, 9.8],
                         "zf": [0.6, 3.0, 8.0, 14.0, 24.0]},
            "setup": {"n_ant": 32, "n_users": 4}}


def _claim(start):
    (claim,) = [c for c in get_experiment("channels/demo").claims if c.statement.startswith(start)]
    return claim


def _status(claim, results):
    return check_claim(claim, results).status


def test_kinds_and_every_claim_passes_on_good_results_and_fails_on_nothing():
    claims = get_experiment("channels/demo").claims
    assert [c.kind for c in claims] == ["invariant", "analytic", "analytic", "analytic"]
    empty = {"channels": {}, "sum_rate": {"snr_db": [], "mrt": [], "zf": []}, "setup": {}}
    for claim in claims:
        assert _status(claim, _results()) == "PASS", claim.statement
        assert _status(claim, {}) == "FAIL"
        assert _status(claim, empty) == "FAIL", claim.statement


def test_round_trip():
    claim = _claim("The angular-delay transform is unitary")
    bad = _results()
    bad["channels"]["CDL-C"]["round_trip_rel_error"] = 2e-3
    assert _status(claim, bad) == "FAIL"


def test_los_sparser():
    claim = _claim("LoS CDL models")
    v = check_claim(claim, _results())
    assert v.margin == pytest.approx(0.30 - 0.08)
    bad = _results()
    bad["channels"]["CDL-E"]["angular_support_90"] = 0.5
    assert _status(claim, bad) == "FAIL"
    only_nlos = _results()
    for k in ("CDL-D", "CDL-E"):
        del only_nlos["channels"][k]
    v = check_claim(claim, only_nlos)
    assert v.status == "FAIL" and "nothing to check" in v.measured


def test_zf_and_mrt():
    zf, mrt = _claim("Zero forcing beats MRT"), _claim("MRT is at least as good")
    assert check_claim(zf, _results()).margin == pytest.approx(14.2)
    assert check_claim(mrt, _results()).margin == pytest.approx(0.3)
    bad = _results()
    bad["sum_rate"]["zf"][-1] = 9.0
    assert _status(zf, bad) == "FAIL" and _status(mrt, bad) == "PASS"
    bad = _results()
    bad["sum_rate"]["zf"][0] = 1.0
    assert _status(mrt, bad) == "FAIL" and _status(zf, bad) == "PASS"
    # the SNR order of the lists does not matter: the highest and lowest SNR are looked up
    shuffled = _results()
    s = shuffled["sum_rate"]
    for key in ("snr_db", "mrt", "zf"):
        s[key] = s[key][::-1]
    assert _status(zf, shuffled) == "PASS" and _status(mrt, shuffled) == "PASS"
