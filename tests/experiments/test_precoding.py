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
