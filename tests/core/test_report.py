import json
import shutil

import pytest

from chanlab.cli import main
from chanlab.core.errors import ConfigError


@pytest.fixture(scope="module")
def demo_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("runs") / "demo"
    assert main(["run", "channels/demo", "--preset", "smoke", "--out", str(out)]) == 0
    return out


def test_verify_rechecks_a_finished_run_and_a_doctored_one_fails(demo_run, tmp_path, capsys):
    assert main(["verify", "channels/demo", "--results", str(demo_run)]) == 0
    assert "4 PASS, 0 FAIL" in capsys.readouterr().out
    assert json.loads((demo_run / "claims.json").read_text())[0]["status"] == "PASS"
    doctored = tmp_path / "doctored"
    shutil.copytree(demo_run, doctored)
    results = json.loads((doctored / "results.json").read_text())
    results["sum_rate"]["zf"][-1] = 0.1 * results["sum_rate"]["mrt"][-1]     # ZF now loses at high SNR
    (doctored / "results.json").write_text(json.dumps(results))
    assert main(["verify", "channels/demo", "--results", str(doctored)]) == 1
    assert "[FAIL] (" in capsys.readouterr().out


def test_verify_results_refuses_another_experiment_and_unfinished_runs(demo_run, tmp_path, capsys):
    assert main(["verify", "gridization/synthetic", "--results", str(demo_run)]) == 2
    assert "holds a run of 'channels/demo'" in capsys.readouterr().err
    (tmp_path / "config.json").write_text("{}")
    assert main(["verify", "channels/demo", "--results", str(tmp_path)]) == 2
    assert "no results.json" in capsys.readouterr().err


def test_report_writes_a_self_contained_page_and_the_reproduction_table(demo_run, tmp_path):
    page = tmp_path / "site" / "report.html"
    assert main(["report", str(demo_run.parent), "--out", str(page), "--reproduction",
                 str(tmp_path / "REPRODUCTION.md"), "--preset", "smoke"]) == 0
    text = page.read_text()
    assert "data:image/png;base64," in text and "channels/demo" in text and "PASS" in text
    md = (tmp_path / "site" / "report.md").read_text()
    assert "| PASS | invariant |" in md or "| PASS | paper |" in md or "| PASS | analytic |" in md
    repro = (tmp_path / "REPRODUCTION.md").read_text()
    import chanlab.experiments  # noqa: F401
    from chanlab.core.registry import list_experiments

    claims_table, runs_table = repro.split("## The runs behind the table")
    rows = [line for line in claims_table.splitlines() if line.startswith("| ") and not line.startswith("| experiment")]
    n_registered = len(list_experiments())           # other tests may register toy experiments
    assert "| channels/demo |" in runs_table and f"Not run at `smoke` yet ({n_registered - 1})" in runs_table
    assert len(rows) == sum(len(e.claims) for e in list_experiments())
    assert sum("not run at smoke yet" in r for r in rows) == len(rows) - 4


def test_runs_with_overrides_get_rows_of_their_own(demo_run, tmp_path):
    """A run with --set overrides (e.g. data.source=cost2100) is a variant: its verdicts sit beside the
    preset's own, and it never stands in for the preset's run."""
    variant_run = tmp_path / "runs" / "demo-variant"
    assert main(["run", "channels/demo", "--preset", "smoke", "--set", "rates.num=24",
                 "--out", str(variant_run)]) == 0
    shutil.copytree(demo_run, tmp_path / "runs" / "demo")
    repro = tmp_path / "REPRODUCTION.md"
    notes = tmp_path / "notes.md"
    notes.write_text("The variant differs by **rates.num**.\n")
    assert main(["report", str(tmp_path / "runs"), "--out", str(tmp_path / "r.html"), "--reproduction", str(repro),
                 "--preset", "smoke", "--notes", str(notes)]) == 0
    assert repro.read_text().endswith("## Notes\n\nThe variant differs by **rates.num**.\n")
    claims_table, runs_table = repro.read_text().split("## The runs behind the table")
    assert claims_table.count("| channels/demo [rates.num=24] |") == 4
    assert claims_table.count("| channels/demo |") == 4
    assert "| channels/demo [rates.num=24] | `" in runs_table and "| channels/demo | `" in runs_table
    # the variant alone does not count as a run of the preset
    shutil.rmtree(tmp_path / "runs" / "demo")
    assert main(["report", str(tmp_path / "runs"), "--out", str(tmp_path / "r.html"), "--reproduction", str(repro),
                 "--preset", "smoke"]) == 0
    claims_table = repro.read_text().split("## The runs behind the table")[0]
    assert claims_table.count("| channels/demo | invariant |") + claims_table.count("| channels/demo | paper |") \
        + claims_table.count("| channels/demo | analytic |") == 4
    assert "not run at smoke yet" in claims_table.split("| channels/demo [rates.num=24]")[0].split("| channels/demo |")[1]


def test_a_claim_with_nothing_to_check_is_not_called_missed_or_broken():
    from chanlab.core.claims import Claim, Outcome, check_claim
    from chanlab.core.report import _reproduction_row

    claim = Claim("ours beats theirs", lambda r: Outcome(r["ours"] > r["theirs"], "compared"), kind="target")
    assert "| missed |" in _reproduction_row("x", claim, check_claim(claim, {"ours": 1, "theirs": 2}), "quick")
    row = _reproduction_row("x", claim, check_claim(claim, {"theirs": 2}), "quick")
    assert "| FAIL: nothing to check |" in row and "results lack 'ours'" in row


def test_report_without_runs_is_a_clear_error(tmp_path):
    from chanlab.core.report import find_runs

    with pytest.raises(ConfigError, match="no finished run"):
        find_runs([tmp_path])


def test_threads_flag_and_environment(monkeypatch):
    import torch

    from chanlab.core.device import resolve_threads, set_threads

    n = torch.get_num_threads()
    try:
        assert set_threads(1) == 1
        monkeypatch.setenv("CHANLAB_THREADS", "2")
        assert resolve_threads(None) == 2
        monkeypatch.setenv("CHANLAB_THREADS", "zero")
        with pytest.raises(ConfigError, match="CHANLAB_THREADS"):
            resolve_threads(None)
        with pytest.raises(ConfigError, match="--threads"):
            resolve_threads(0)
    finally:
        torch.set_num_threads(n)


def test_an_override_that_empties_a_sweep_is_a_config_error(tmp_path, capsys):
    assert main(["run", "channels/demo", "--preset", "smoke", "--set", "rates.snr_db=()",
                 "--out", str(tmp_path / "r")]) == 2
    assert "rates.snr_db: expected at least one value" in capsys.readouterr().err
