"""``benchmarks/run_all.py``: the table from fake rows, failing scripts as error rows, and one
real benchmark end to end at its small size."""

import importlib.util
import json
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[1] / "benchmarks"


@pytest.fixture(scope="module")
def run_all():
    spec = importlib.util.spec_from_file_location("run_all", BENCH / "run_all.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


FAKE = [
    {"benchmark": "bench_a", "wall": 12.3, "error": None, "rows": [
        {"timed": "f(x), n = 10", "reference": "loop", "ratio": 3.456, "kind": "speed-up", "ok": True,
         "check": "identical 10/10"},
        {"timed": "g | h", "reference": "dense", "ratio": 0.5, "kind": "speed-up", "ok": False,
         "check": "differ\nin 2 rows"},
    ]},
    {"benchmark": "bench_b", "wall": 1.0, "error": None, "rows": [
        {"timed": "bits", "reference": "ideal", "ratio": 1.0731, "kind": "overhead", "ok": None, "check": ""},
        {"timed": "startup", "reference": "python", "ratio": None, "kind": "ratio", "ok": None, "check": "n/a"},
    ]},
    {"benchmark": "bench_c", "wall": 0.4, "error": "exit 1: ModuleNotFoundError: No module named 'x'", "rows": []},
]


def test_format_table_from_fake_rows(run_all):
    text = run_all.format_table(FAKE)
    lines = text.splitlines()
    assert lines[0] == "| benchmark | what is timed | reference | ratio | status | wall |"
    assert lines[1] == "|---|---|---|---|---|---|"
    assert len(lines) == 2 + 5
    assert lines[2] == "| bench_a | f(x), n = 10 | loop | 3.46x | ok: identical 10/10 | 12 s |"
    # pipes escaped, newlines folded, the script's wall time only on its first row
    assert lines[3] == "| bench_a | g \\| h | dense | 0.50x (slower) | CHECK FAILED: differ in 2 rows |  |"
    assert lines[4] == "| bench_b | bits | ideal | +7.3 % (overhead) | ran | 1 s |"
    assert lines[5] == "| bench_b | startup | python | — | ran: n/a |  |"
    assert lines[6] == "| bench_c | — | — | — | ERROR: exit 1: ModuleNotFoundError: No module named 'x' | 0 s |"
    # every line has the same number of unescaped cell separators
    assert {line.replace("\\|", "").count("|") for line in lines} == {7}


def test_format_ratio(run_all):
    assert run_all.format_ratio(123.4) == "123x"
    assert run_all.format_ratio(12.34) == "12.3x"
    assert run_all.format_ratio(2.5, "overhead") == "2.50x"
    assert run_all.format_ratio(1.27, "ratio") == "1.27"


def test_parse_json_line(run_all):
    rows = [{"timed": "t", "reference": "r", "ratio": 2.0}]
    assert run_all.parse_json_line("human output\n" + json.dumps({"rows": rows}) + "\n\n") == rows
    for bad in ("", "no json here", json.dumps({"rows": []}), json.dumps({"rows": [{"timed": "t"}]})):
        with pytest.raises(ValueError):
            run_all.parse_json_line(bad)


def test_failing_and_flagless_scripts_become_error_rows(run_all, tmp_path):
    (tmp_path / "_report.py").write_text("")
    (tmp_path / "bench_fails.py").write_text("import _report\nraise RuntimeError('boom')\n")
    (tmp_path / "bench_nojson.py").write_text("import _report\nprint('just text')\n")
    (tmp_path / "bench_old.py").write_text("print('no flags')\n")
    (tmp_path / "bench_slow.py").write_text("import _report, time\ntime.sleep(60)\n")
    results = {p.stem: run_all.run_script(p, timeout=3) for p in run_all.discover(tmp_path)}
    assert set(results) == {"bench_fails", "bench_nojson", "bench_old", "bench_slow"}
    assert results["bench_fails"]["error"].startswith("exit 1: RuntimeError: boom")
    assert "not JSON" in results["bench_nojson"]["error"]
    assert results["bench_old"]["error"].startswith("not run")
    assert results["bench_slow"]["error"] == "timed out after 3 s"
    text = run_all.format_table(list(results.values()))
    assert text.count("ERROR: ") == 4


def test_write_atomic(run_all, tmp_path):
    out = tmp_path / "latest.md"
    out.write_text("old")
    run_all.write_atomic(out, "new table\n")
    assert out.read_text() == "new table\n"
    assert [p.name for p in tmp_path.iterdir()] == ["latest.md"]          # no temporary file left


def test_every_benchmark_script_has_small_and_json_flags():
    for path in sorted(BENCH.glob("bench_*.py")):
        source = path.read_text()
        assert "parse_args(" in source and "emit(args" in source, path.name


def test_one_benchmark_end_to_end_at_small_size(run_all, tmp_path):
    """bench_residual_vq at its small size, shrunk further (a few seconds on one thread)."""
    res = run_all.run_script(BENCH / "bench_residual_vq.py", timeout=300,
                             extra=["--n", "1500", "--ref-samples", "20", "--brute-samples", "200", "--repeat", "1"])
    assert res["error"] is None, res["error"]
    assert len(res["rows"]) == 4
    assert all(r["ok"] is True and r["ratio"] > 0 for r in res["rows"])
    assert "1500 x 32, bits 8/8/8" in res["rows"][0]["timed"]
    assert "| bench_residual_vq | ResidualVQ.quantize" in run_all.format_table([res])


def test_main_writes_the_table(run_all, tmp_path, monkeypatch):
    monkeypatch.setattr(run_all, "run_script", lambda path, timeout, threads=1: dict(FAKE[0], benchmark=path.stem))
    out = tmp_path / "latest.md"
    code = run_all.main(["--only", "residual_vq", "--out", str(out), "--note", "cores shared"])
    assert code == 0
    text = out.read_text()
    assert "- cores shared" in text and "| bench_residual_vq | f(x), n = 10 | loop | 3.46x |" in text
    assert "0 scripts failed, 1 rows with a failed check" in text



def test_small_sizes_yield_to_explicit_flags():
    import argparse

    spec = importlib.util.spec_from_file_location("_report", BENCH / "_report.py")
    report = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(report)

    def parser():
        p = argparse.ArgumentParser()
        p.add_argument("--n", type=int, default=100)
        p.add_argument("--bits", type=int, nargs="+", default=[10, 10])
        return p

    small = {"n": 5, "bits": [2]}
    assert vars(report.parse_args(parser(), small, [])) == {"n": 100, "bits": [10, 10], "small": False, "json": False}
    assert vars(report.parse_args(parser(), small, ["--small", "--json"])) == {
        "n": 5, "bits": [2], "small": True, "json": True}
    assert report.parse_args(parser(), small, ["--small", "--n", "7"]).n == 7
    with pytest.raises(ValueError):
        report.parse_args(parser(), {"m": 1}, ["--small"])
    assert report.row("t", "r", float("inf"))["ratio"] is None
