import json

import pytest

import chanlab.experiments  # noqa: F401  (registers the experiments)
from chanlab.core.errors import ConfigError
from chanlab.core.registry import get_experiment
from chanlab.core.run import run_experiment

pytestmark = pytest.mark.usefixtures("one_thread")


def test_table2_smoke_reports_real_bits(tmp_path):
    res = run_experiment("csi_feedback/table2", preset="smoke", out=tmp_path / "t2")
    point = res.results["points"][0]
    assert (point["m"], point["b"]) == (16, 2)
    methods = point["methods"]
    assert {"nq", "round", "vector-2", "proposed", "proposed-var1", "proposed-var2"} == set(methods)
    assert methods["proposed"]["payload_bits"] == 32 and methods["proposed"]["stream_bits"] == 32
    assert methods["vector-2"]["payload_bits"] == 32
    assert "| proposed |" in (tmp_path / "t2" / "table.md").read_text()
    json.loads((tmp_path / "t2" / "results.json").read_text())
    # every autoencoder records its output spread and what the allocation made of it
    outputs = methods["proposed"]["encoder_outputs"]
    assert outputs["allocation_moves_in_training"] >= 0 and outputs["ratio_std"] >= 0
    assert methods["proposed-var1"]["encoder_outputs"]["allocation_moves_in_training"] == 0
    # and the Proposed-vs-variants claim says so next to the NMSE it compares
    claim = get_experiment("csi_feedback/table2").claims[1]
    measured = claim.check(res.results).measured
    assert f"proposed's B_m in [{methods['proposed']['bits_min']}, {methods['proposed']['bits_max']}]" in measured


def test_table1_smoke(tmp_path):
    res = run_experiment("csi_feedback/table1", preset="smoke", out=tmp_path / "t1")
    assert {"pca", "lloyd", "lloyd-log", "proposed", "proposed-var1"} == set(res.results["points"][0]["methods"])


def test_dynamic_smoke(tmp_path):
    r = run_experiment("csi_feedback/dynamic", preset="smoke", out=tmp_path / "dyn").results
    assert set(r["subcarriers"]) == {"32"} and set(r["environments"]) == {"indoor", "outdoor"}
    for row in list(r["subcarriers"].values()) + list(r["environments"].values()):
        assert set(row) == {"upper", "direct", "joint"}


def test_bad_points_raise(tmp_path):
    with pytest.raises(ConfigError, match="MxB"):
        run_experiment("csi_feedback/table2", preset="smoke", overrides=["points=('16-2',)"], out=tmp_path / "bad")


def test_encoder_ranges_smoke(tmp_path):
    r = run_experiment("csi_feedback/encoder-ranges", preset="smoke", out=tmp_path / "rng").results
    assert set(r["archs"]) == {"csinet", "csinet-pro"}
    assert len(r["archs"]["csinet"]["ratio"]) == 16
    assert (tmp_path / "rng" / "figures" / "fig2_encoder_ranges.png").is_file()


def test_transnet_smoke(tmp_path):
    r = run_experiment("csi_feedback/transnet", preset="smoke", out=tmp_path / "tn").results
    assert set(r["points"][0]["methods"]) == {"round", "proposed"}
