import json

import pytest

import chanlab.experiments  # noqa: F401  (registers the experiments)
from chanlab.core.errors import ConfigError
from chanlab.core.run import run_experiment

pytestmark = pytest.mark.usefixtures("one_thread")


def test_snr_smoke_reports_every_scheme_and_real_feedback_bits(tmp_path):
    res = run_experiment("precoding/snr", preset="smoke", out=tmp_path / "snr")
    r = res.results
    assert set(r["sum_rate"]) == {"proposed", "sohrabi", "lmmse_zf", "lloyd_zf", "zf_csit", "wmmse_csit"}
    assert all(len(v) == len(r["snr_db"]) for v in r["sum_rate"].values())
    assert r["feedback"] == {"payload_bits": 6, "stream_bits": 8}
    conv = r["lloyd"]["convergence"]                  # the Lloyd baseline refitted with twice the iterations
    assert conv["n_iter"] == [2, 4] and len(conv["sum_rate"]) == 2 and len(conv["tier_mse_twice"]) == 2
    assert conv["sum_rate"][0] == r["sum_rate"]["lloyd_zf"][-1]
    assert (tmp_path / "snr" / "figures" / "sum_rate_vs_snr.png").exists()
    assert "| Proposed" in (tmp_path / "snr" / "table.md").read_text()
    json.loads((tmp_path / "snr" / "results.json").read_text())


def test_stages_smoke(tmp_path):
    r = run_experiment("precoding/stages", preset="smoke", out=tmp_path / "st").results
    assert [(s["bits"], s["n_tiers"], s["codewords"]) for s in r["stages"]] == [(4, 1, 16), (4, 2, 8)]
    assert (tmp_path / "st" / "figures" / "stages.png").exists()


def test_unequal_tiers_are_refused(tmp_path):
    with pytest.raises(ConfigError, match="multiple of N"):
        run_experiment("precoding/snr", preset="smoke", overrides=["bits=7"], out=tmp_path / "bad")
    with pytest.raises(ConfigError, match="BxN"):
        run_experiment("precoding/stages", preset="smoke", overrides=["points=('4-2',)"], out=tmp_path / "bad2")


def test_feedback_bits_smoke_one_model_every_budget(tmp_path):
    r = run_experiment("precoding/feedback-bits", preset="smoke", out=tmp_path / "fb").results
    assert r["models_trained"]["progressive"] == 1
    assert set(r["sum_rate"]["progressive"]) == {"2", "3", "6", "9"}       # 9 by expansion
    assert set(r["sum_rate"]["e2e"]) == set(r["sum_rate"]["sohrabi"]) == set(r["sum_rate"]["lloyd_zf"]) \
        == {"2", "3", "6"}
    assert r["stream_bits"] == {"2": 8, "3": 8, "6": 8, "9": 16}
    assert (tmp_path / "fb" / "figures" / "sum_rate_vs_bits.png").exists()


def test_users_smoke_shared_individual_sohrabi(tmp_path):
    r = run_experiment("precoding/users", preset="smoke", out=tmp_path / "us").results
    assert r["models_trained"] == {"shared": 1, "individual": 2, "sohrabi": 2}
    for scheme in ("shared", "individual", "sohrabi", "lmmse_zf", "lloyd_zf", "zf_csit"):
        assert set(r["sum_rate"][scheme]) == {"2", "3"}


def test_unseen_smoke(tmp_path):
    r = run_experiment("precoding/unseen", preset="smoke", out=tmp_path / "un").results
    assert r["areas"] == ["umi (seen)", "uma", "cdl-c"]
    assert all(set(v) == set(r["areas"]) for v in r["sum_rate"].values())


def test_scalable_configs_are_validated(tmp_path):
    with pytest.raises(ConfigError, match="deploy_bits"):
        run_experiment("precoding/feedback-bits", preset="smoke", overrides=["deploy_bits=(7,)"], out=tmp_path / "a")
    with pytest.raises(ConfigError, match="expand_bits"):
        run_experiment("precoding/feedback-bits", preset="smoke", overrides=["expand_bits=(8,)"], out=tmp_path / "b")
    with pytest.raises(ConfigError, match="areas"):
        run_experiment("precoding/unseen", preset="smoke", overrides=["areas=('mars',)"], out=tmp_path / "c")
