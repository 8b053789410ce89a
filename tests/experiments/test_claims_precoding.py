"""Claims of precoding/snr (Fig. 5) and precoding/stages (Fig. 8) on synthetic results laid out as
``run_snr`` / ``run_stages`` write them: each claim PASSes on one, FAILs on a copy with one number
flipped, and FAILs on nothing."""

import copy

import pytest

import chanlab.experiments  # noqa: F401  (registers the experiments)
from chanlab.core.claims import check_claim
from chanlab.core.registry import get_experiment

SNR = get_experiment("precoding/snr").claims
STAGES = get_experiment("precoding/stages").claims


def snr_results() -> dict:
    """What run_snr writes (one seed; sum rates in bit/s/Hz at each SNR of snr_db)."""
    snrs = [-5.0, 0.0, 5.0, 10.0, 15.0, 20.0]
    return {"snr_db": snrs, "n_users": 6, "n_ant": 32, "n_pilots": 8, "tier_bits": [10, 10, 10],
            "train_snr_db": 20.0, "n_train": 10000, "n_test": 2000,
            "sum_rate": {"proposed": [1.0, 2.5, 5.0, 8.0, 11.0, 13.5],
                         "sohrabi": [1.1, 2.4, 4.5, 7.0, 9.0, 10.0],
                         "lmmse_zf": [0.2, 0.8, 2.0, 4.0, 6.0, 7.5],
                         "lloyd_zf": [0.5, 1.5, 3.0, 5.0, 6.5, 7.0],
                         "zf_csit": [1.5, 3.5, 6.5, 10.0, 14.0, 18.0],
                         "wmmse_csit": [3.0, 5.0, 8.0, 11.0, 14.5, 18.2]},
            "feedback": {"payload_bits": 30, "stream_bits": 32},
            "training": {"proposed": {"stages": [], "seconds": 1.0}},
            "lloyd": {"tier_mse": [0.5, 0.3, 0.2], "stream_bits": 32, "seconds": 1.0,
                      "convergence": {"n_iter": [10, 20], "tier_mse_twice": [0.49, 0.3, 0.2], "snr_db": 20.0,
                                      "sum_rate": [7.0, 7.03]}}}


def stages_results() -> dict:
    """What run_stages writes for the quick preset's points."""
    def point(b, n, rate):
        cw = n * 2 ** (b // n)
        return {"bits": b, "n_tiers": n, "codewords": cw, "log2_codewords": cw.bit_length() - 1,
                "sum_rate": rate, "seconds": 1.0, "training": []}
    return {"snr_db": 10.0, "n_ant": 32, "n_users": 6,
            "stages": [point(15, 1, 10.0), point(15, 3, 8.5), point(15, 5, 7.0),
                       point(30, 3, 12.0), point(30, 5, 11.0)]}


def status(claim, results):
    return check_claim(claim, results).status


@pytest.mark.parametrize("claim", list(SNR) + list(STAGES), ids=lambda c: c.statement[:40])
def test_nothing_is_not_a_pass(claim):
    assert status(claim, {}) == "FAIL"


# ------------------------------------------------------------------ precoding/snr

def test_kinds_and_paper_numbers():
    assert [c.kind for c in SNR] == ["paper", "paper", "paper", "invariant", "invariant"]
    assert all(c.paper_value is None for c in SNR)          # Fig. 5 prints no number
    assert STAGES[0].kind == "paper" and STAGES[0].paper_value == pytest.approx(84.96)


def test_beats_classical():
    c = SNR[0]
    r = snr_results()
    v = check_claim(c, r)
    assert v.status == "PASS" and v.margin == pytest.approx(0.5)    # -5 dB: proposed 1.0 vs Lloyd-ZF 0.5
    bad = copy.deepcopy(r)
    bad["sum_rate"]["lloyd_zf"][3] = 8.5                             # Lloyd-ZF above proposed at 10 dB
    assert status(c, bad) == "FAIL"
    bad = copy.deepcopy(r)
    bad["sum_rate"]["lmmse_zf"][0] = 1.2
    assert status(c, bad) == "FAIL"


def test_beats_sohrabi_at_high_snr_only():
    c = SNR[1]
    r = snr_results()                     # Sohrabi is above proposed at -5 dB: not part of the claim
    v = check_claim(c, r)
    assert v.status == "PASS" and v.margin == pytest.approx(2.0)
    bad = copy.deepcopy(r)
    bad["sum_rate"]["sohrabi"][5] = 14.0
    assert status(c, bad) == "FAIL"


def test_below_zf_csit():
    c = SNR[2]
    r = snr_results()
    assert status(c, r) == "PASS"
    bad = copy.deepcopy(r)
    bad["sum_rate"]["proposed"][4] = 14.5
    assert status(c, bad) == "FAIL"


def test_feedback_size_is_the_packed_stream():
    c = SNR[3]
    r = snr_results()
    assert status(c, r) == "PASS"
    bad = copy.deepcopy(r)
    bad["feedback"]["stream_bits"] = 30                              # not whole bytes
    assert status(c, bad) == "FAIL"
    bad = copy.deepcopy(r)
    bad["feedback"]["payload_bits"] = 24                             # trained quantizer is not the configured B
    assert status(c, bad) == "FAIL"


def test_lloyd_convergence_within_one_percent():
    c = SNR[4]
    v = check_claim(c, snr_results())
    assert v.status == "PASS" and v.ours == pytest.approx(0.03 / 7.0)
    bad = copy.deepcopy(snr_results())
    bad["lloyd"]["convergence"]["sum_rate"] = [7.0, 7.2]                # +2.9 % with more iterations
    assert status(c, bad) == "FAIL"
    del bad["lloyd"]["convergence"]
    assert status(c, bad) == "FAIL"


@pytest.mark.parametrize("i", range(3))
def test_snr_comparisons_on_empty_points_fail(i):
    r = snr_results()
    r["snr_db"] = []
    r["sum_rate"] = {k: [] for k in r["sum_rate"]}
    assert status(SNR[i], r) == "FAIL"


def test_snr_comparisons_refuse_mismatched_lengths():
    r = snr_results()
    r["sum_rate"]["lmmse_zf"] = r["sum_rate"]["lmmse_zf"][:2]
    assert status(SNR[0], r) == "FAIL"


def test_no_high_snr_point_is_nothing_to_check():
    r = snr_results()
    r["snr_db"] = [-5.0, 0.0, 5.0, 10.0, 12.0, 14.0]
    v = check_claim(SNR[1], r)
    assert v.status == "FAIL" and "nothing to check" in v.measured


def test_nan_rate_fails():
    r = snr_results()
    r["sum_rate"]["proposed"][2] = float("nan")
    assert status(SNR[0], r) == "FAIL"


# ------------------------------------------------------------------ precoding/stages

def test_fewer_stages_higher_rate():
    c = STAGES[0]
    r = stages_results()
    v = check_claim(c, r)
    assert v.status == "PASS"
    assert v.ours == pytest.approx(85.0)                  # 8.5 / 10.0: N = 3 keeps 85 % of N = 1 at B = 15
    assert v.margin == pytest.approx(1.0)
    assert "0.29 %" in v.measured                         # 96 of 32768 codewords, printed beside it
    bad = copy.deepcopy(r)
    bad["stages"][4]["sum_rate"] = 12.5                   # B = 30: N = 5 above N = 3
    assert status(c, bad) == "FAIL"


def test_stages_without_the_papers_point_has_no_ours():
    r = stages_results()
    r["stages"] = [s for s in r["stages"] if s["bits"] == 30]
    v = check_claim(STAGES[0], r)
    assert v.status == "PASS" and v.ours is None


def test_stages_need_two_stage_counts_at_some_b():
    r = stages_results()
    assert status(STAGES[0], {**r, "stages": []}) == "FAIL"
    assert status(STAGES[0], {**r, "stages": [r["stages"][0], r["stages"][3]]}) == "FAIL"
