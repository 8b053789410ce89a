import pytest

from chanlab.core.registry import get_experiment
from chanlab.core.run import check_claims, run_experiment
from chanlab.experiments.channel_demo import analyze_channels


def test_smoke_preset_runs_and_claims_hold(tmp_path):
    res = run_experiment("channels/demo", preset="smoke", out=tmp_path, device="cpu")
    ch = res.results["channels"]
    assert set(ch) == {"CDL-A", "CDL-D"}
    for stats in ch.values():
        assert 0 < stats["energy_kept"] <= 1
        assert stats["round_trip_rel_error"] < 1e-5
    assert {p.name for p in res.figures} == {"angular_delay.png", "sum_rate.png"}
    verdicts = check_claims(get_experiment("channels/demo").claims, res.results)
    assert all(v.passed for v in verdicts), [(v.statement, v.measured) for v in verdicts]


def test_analysis_of_a_single_tap_channel():
    import torch

    h = torch.ones(2, 4, 16, dtype=torch.complex64)  # flat in frequency and angle: one tap, one bin
    stats = analyze_channels(h, n_delay=1)
    assert stats["energy_kept"] == pytest.approx(1.0)
    assert stats["angular_support_90"] == pytest.approx(1 / 4)
    assert stats["truncation_rho"] == pytest.approx(1.0)
