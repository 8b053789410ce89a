"""One page for many runs: every claim's verdict beside the paper's number, the figures, the config.

    chanlab report runs/ --out report.html        # report.html (self-contained) and report.md
    chanlab report runs/ --reproduction REPRODUCTION.md

:func:`find_runs` collects finished run folders (a folder holding ``config.json`` and
``results.json``, searched recursively); :func:`build_reports` re-checks each run's claims with the
checkers registered today; :func:`write_html` embeds the figures as base64 PNG so the page travels
alone; :func:`write_markdown` is its text twin; :func:`write_reproduction` is the one table of
every registered claim's status, with runs or without.
"""

from __future__ import annotations

import base64
import datetime as _dt
import html
import json
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from chanlab.core.atomic import atomic_write_text
from chanlab.core.claims import ClaimVerdict, check_claims
from chanlab.core.errors import ConfigError
from chanlab.core.registry import Experiment, get_experiment, list_experiments
from chanlab.core.run import FinishedRun, load_run

REPRODUCTION_STATUS = {"PASS": "reproduced", "FAIL": "not reproduced", "TIE": "undecided at this scale"}
INVARIANT_STATUS = {"PASS": "holds", "FAIL": "broken", "TIE": "undecided at this scale"}
TARGET_STATUS = {"PASS": "met", "FAIL": "missed", "TIE": "undecided at this scale"}
STATUS_WORDS = {"paper": REPRODUCTION_STATUS, "analytic": INVARIANT_STATUS, "invariant": INVARIANT_STATUS,
                "target": TARGET_STATUS}


@dataclass
class RunReport:
    """One run with its experiment and today's verdicts."""

    run: FinishedRun
    experiment: Experiment
    verdicts: list[ClaimVerdict]
    seeds: list[int]


def find_runs(paths: Iterable[str | os.PathLike]) -> list[FinishedRun]:
    """Every finished run folder in ``paths`` (each a run folder or a folder above runs)."""
    found: list[FinishedRun] = []
    for p in paths:
        p = Path(p)
        if not p.exists():
            raise ConfigError(f"report: {p}: no such folder")
        if not p.is_dir():
            raise ConfigError(f"report: {p}: expected a run folder or a folder of runs, got a file")
        folders = [p] if (p / "config.json").is_file() else sorted(c.parent for c in p.rglob("config.json"))
        for folder in folders:
            if (folder / "results.json").is_file():
                found.append(load_run(folder))
    if not found:
        raise ConfigError(f"report: no finished run (config.json + results.json) in {', '.join(map(str, paths))}")
    return found


def _seeds(run: FinishedRun) -> list[int]:
    cfg = run.record.get("config", {})
    seeds = cfg.get("seeds") if isinstance(cfg, dict) else None
    return [int(s) for s in seeds] if isinstance(seeds, list) else [int(run.record.get("seed", 0))]


def build_reports(runs: Sequence[FinishedRun]) -> list[RunReport]:
    """Re-check each run's claims (runs of unknown experiments are refused with their name)."""
    reports = []
    for run in runs:
        experiment = get_experiment(run.experiment)
        reports.append(RunReport(run, experiment, check_claims(experiment.claims, run.results), _seeds(run)))
    return reports


def variant(report: RunReport) -> str:
    """The run's ``--set`` overrides as ``key=value, …`` ("" for the preset as it is): runs of one
    experiment with different overrides (e.g. ``data.source=cost2100``) are reported side by side."""
    overrides = report.run.record.get("overrides") or {}
    if isinstance(overrides, dict):               # the Python API stores a mapping, the command line "k=v" strings
        return ", ".join(f"{k}={_override_text(v)}" for k, v in sorted(overrides.items()))
    return ", ".join(sorted(str(o) for o in overrides))


def _label(report: RunReport) -> str:
    """The experiment's name, with its run's overrides in brackets when it has any."""
    var = variant(report)
    return f"{report.experiment.name} [{var}]" if var else report.experiment.name


def _override_text(value: Any) -> str:
    return ",".join(map(str, value)) if isinstance(value, (list, tuple)) else str(value)


def latest_per_variant(reports: Sequence[RunReport], preset: str | None = "quick") -> dict[tuple[str, str], RunReport]:
    """The newest run of each (experiment, :func:`variant`) (of ``preset``, when given) by its results' time."""
    best: dict[tuple[str, str], RunReport] = {}
    for r in reports:
        if preset is not None and r.run.record.get("preset") != preset:
            continue
        key = (r.experiment.name, variant(r))
        t = (r.run.out / "results.json").stat().st_mtime
        if key not in best or t > (best[key].run.out / "results.json").stat().st_mtime:
            best[key] = r
    return best


def latest_per_experiment(reports: Sequence[RunReport], preset: str | None = "quick") -> dict[str, RunReport]:
    """The newest run of each experiment without overrides (of ``preset``, when given) by its results' time."""
    return {name: r for (name, var), r in latest_per_variant(reports, preset).items() if not var}


def _num(x: float | None) -> str:
    return "–" if x is None else f"{x:.4g}"


def _gap(v: ClaimVerdict) -> str:
    return "–" if v.relative_gap is None else f"{100 * v.relative_gap:+.0f} %"


def _spread(v: ClaimVerdict) -> str:
    return "–" if v.spread is None else f"{v.spread:.3g}"


def _version(reports: Sequence[RunReport]) -> str:
    versions = sorted({str(r.run.record.get("chanlab_version", "?")) for r in reports})
    return ", ".join(versions)


def _counts(verdicts: Iterable[ClaimVerdict]) -> str:
    verdicts = list(verdicts)
    return ", ".join(f"{sum(v.status == s for v in verdicts)} {s}" for s in ("PASS", "FAIL", "TIE"))


_CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,sans-serif;margin:2rem auto;max-width:1100px;color:#222;padding:0 1rem}
h1{margin-bottom:.2rem} h2{margin-top:2.5rem;border-bottom:1px solid #ddd;padding-bottom:.3rem}
table{border-collapse:collapse;width:100%;font-size:.9rem;margin:.8rem 0}
th,td{border:1px solid #ddd;padding:.35rem .5rem;vertical-align:top;text-align:left}
th{background:#f4f4f4} .PASS{background:#e3f6e3;font-weight:600} .FAIL{background:#fbe3e3;font-weight:600}
.TIE{background:#fff4d6;font-weight:600} .meta{color:#666;font-size:.85rem}
figure{display:inline-block;margin:.5rem;max-width:48%} figure img{max-width:100%;border:1px solid #eee}
figcaption{font-size:.8rem;color:#555;text-align:center} pre{background:#f8f8f8;padding:.6rem;overflow:auto;font-size:.8rem}
"""


def _claims_table_html(verdicts: Sequence[ClaimVerdict]) -> str:
    rows = []
    for v in verdicts:
        rows.append(
            "<tr>" + f"<td class='{v.status}'>{v.status}</td><td>{html.escape(v.kind)}</td>"
            f"<td>{html.escape(v.statement)}</td><td>{html.escape(v.measured)}</td>"
            f"<td>{_num(v.ours)}</td><td>{_num(v.paper_value)}"
            + (f"<br><span class='meta'>{html.escape(v.paper_text)}</span>" if v.paper_text else "")
            + f"</td><td>{_gap(v)}</td><td>{_spread(v)}</td></tr>")
    return ("<table><tr><th>verdict</th><th>kind</th><th>claim</th><th>measured</th><th>ours</th>"
            "<th>paper</th><th>gap</th><th>seed spread</th></tr>" + "".join(rows) + "</table>")


def write_html(reports: Sequence[RunReport], path: str | os.PathLike) -> Path:
    """A self-contained HTML page (figures embedded) of every run in ``reports``."""
    path = Path(path)
    all_verdicts = [v for r in reports for v in r.verdicts]
    parts = [f"<!doctype html><html><head><meta charset='utf-8'><title>chanlab report</title>"
             f"<style>{_CSS}</style></head><body>",
             "<h1>chanlab report</h1>",
             f"<p class='meta'>{len(reports)} run(s); claims: {_counts(all_verdicts)}; chanlab "
             f"{html.escape(_version(reports))}; written {_dt.datetime.now().strftime('%Y-%m-%d %H:%M')}</p>",
             "<table><tr><th>experiment</th><th>preset</th><th>seed(s)</th><th>claims</th><th>run folder</th></tr>"]
    for r in reports:
        parts.append(f"<tr><td><a href='#{html.escape(r.run.out.as_posix())}'>{html.escape(_label(r))}</a></td>"
                     f"<td>{html.escape(str(r.run.record.get('preset')))}</td><td>{r.seeds}</td>"
                     f"<td>{_counts(r.verdicts)}</td><td>{html.escape(str(r.run.out))}</td></tr>")
    parts.append("</table>")
    for r in reports:
        rec = r.run.record
        parts.append(f"<h2 id='{html.escape(r.run.out.as_posix())}'>{html.escape(_label(r))}</h2>")
        parts.append(f"<p>{html.escape(r.experiment.summary)}</p><p class='meta'>preset "
                     f"{html.escape(str(rec.get('preset')))}, seed {rec.get('seed')}, device "
                     f"{html.escape(str(rec.get('device')))}, chanlab {html.escape(str(rec.get('chanlab_version')))}"
                     + (f", paper <code>{html.escape(r.experiment.paper)}</code>" if r.experiment.paper else "")
                     + f", run folder <code>{html.escape(str(r.run.out))}</code></p>")
        parts.append(_claims_table_html(r.verdicts) if r.verdicts else "<p class='meta'>no claims registered</p>")
        for fig in r.run.figures:
            data = base64.b64encode(fig.read_bytes()).decode("ascii")
            parts.append(f"<figure><img alt='{html.escape(fig.stem)}' src='data:image/png;base64,{data}'>"
                         f"<figcaption>{html.escape(fig.name)}</figcaption></figure>")
        parts.append("<details><summary>config</summary><pre>"
                     + html.escape(json.dumps({k: rec.get(k) for k in ("preset", "overrides", "seed", "device",
                                                                         "config")}, indent=2))
                     + "</pre></details>")
    parts.append("</body></html>")
    atomic_write_text(path, "\n".join(parts))
    return path


def _md_cell(text: Any) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def write_markdown(reports: Sequence[RunReport], path: str | os.PathLike) -> Path:
    """The Markdown twin of :func:`write_html` (figures linked by path, not embedded)."""
    path = Path(path)
    all_verdicts = [v for r in reports for v in r.verdicts]
    lines = ["# chanlab report", "", f"{len(reports)} run(s); claims: {_counts(all_verdicts)}; chanlab "
             f"{_version(reports)}.", ""]
    for r in reports:
        rec = r.run.record
        lines += [f"## {_label(r)}", "", r.experiment.summary, "",
                  f"preset {rec.get('preset')}, seed {rec.get('seed')}, device {rec.get('device')}, run folder "
                  f"`{r.run.out}`, overrides {rec.get('overrides') or 'none'}", ""]
        if r.verdicts:
            lines += ["| verdict | kind | claim | measured | ours | paper | gap | seed spread |",
                      "|---|---|---|---|---|---|---|---|"]
            for v in r.verdicts:
                paper = _num(v.paper_value) + (f" ({v.paper_text})" if v.paper_text else "")
                lines.append(f"| {v.status} | {v.kind} | {_md_cell(v.statement)} | {_md_cell(v.measured)} | "
                             f"{_num(v.ours)} | {_md_cell(paper)} | {_gap(v)} | {_spread(v)} |")
            lines.append("")
        for fig in r.run.figures:
            rel = os.path.relpath(fig, path.parent)
            lines.append(f"![{fig.stem}]({rel})")
        lines.append("")
    atomic_write_text(path, "\n".join(lines))
    return path


def _reproduction_row(label: str, claim, v: ClaimVerdict | None, preset: str) -> str:
    paper = ("–" if claim.paper_value is None else f"{claim.paper_value:.4g}") + \
        (f" ({claim.paper_text})" if claim.paper_text else "")
    if v is None:
        return f"| {label} | {claim.kind} | {_md_cell(claim.statement)} | not run at {preset} yet | – | {_md_cell(paper)} | – |"
    # a FAIL computed on nothing (e.g. a run older than the method the claim checks) says so
    nothing = v.status == "FAIL" and v.measured.startswith("nothing to check")
    status = "FAIL: nothing to check" if nothing else STATUS_WORDS[claim.kind][v.status]
    ours = _md_cell(v.measured) + ("" if v.ours is None else f" (ours {v.ours:.4g}, gap {_gap(v)})")
    diagnosis = claim.diagnosis if (v.status != "PASS" and claim.diagnosis) else "–"
    return (f"| {label} | {claim.kind} | {_md_cell(claim.statement)} | {status} | {ours} | {_md_cell(paper)} | "
            f"{_md_cell(diagnosis)} |")


def write_reproduction(reports: Sequence[RunReport], path: str | os.PathLike,
                       experiments: Sequence[Experiment] | None = None, preset: str = "quick",
                       preamble: str = "", notes: str = "") -> Path:
    """``REPRODUCTION.md``: one row per claim of every registered experiment, from the newest run
    of ``preset`` of each (a claim without a run says so); ``notes`` (Markdown, e.g. diagnoses that
    compare runs) is appended under its own heading."""
    path = Path(path)
    experiments = list(experiments) if experiments is not None else list_experiments()
    latest = latest_per_experiment(reports, preset)
    n_claims = sum(len(e.claims) for e in experiments)
    n_run = sum(len(e.claims) for e in experiments if e.name in latest)
    lines = ["# Reproduction status", "",
             f"Generated by `chanlab report --reproduction` from the newest `{preset}` run of each experiment: "
             f"{len(experiments)} experiments, {n_claims} claims, {n_run} of them checked on a run. "
             "`reproduced` / `not reproduced` are paper claims at this preset's scale; analytic and invariant "
             "claims `hold` or are `broken`; targets of our own methods are `met` or `missed`; a margin inside "
             "its spread over seeds is `undecided at this scale`. "
             "Regenerate after new runs; do not edit the table by hand.", ""]
    if preamble:
        lines += [preamble.strip(), ""]
    lines += ["| experiment | kind | claim | status | measured (ours) | paper | diagnosis |",
              "|---|---|---|---|---|---|---|"]
    variants = latest_per_variant(reports, preset)
    for e in experiments:
        report = latest.get(e.name)
        verdicts = report.verdicts if report is not None else [None] * len(e.claims)
        rows = [(e.name, verdicts)] + [(f"{name} [{var}]", r.verdicts) for (name, var), r in sorted(variants.items())
                                       if name == e.name and var]
        for label, verdicts in rows:
            for claim, v in zip(e.claims, verdicts):
                lines.append(_reproduction_row(label, claim, v, preset))
    lines += ["", "## The runs behind the table", "",
              "| experiment | run folder | device | threads | chanlab | results written |", "|---|---|---|---|---|---|"]
    order = {e.name: i for i, e in enumerate(experiments)}
    for (name, var), report in sorted(variants.items(), key=lambda kv: (order.get(kv[0][0], len(order)), kv[0][1])):
        if name not in order:
            continue
        rec = report.run.record
        written = _dt.datetime.fromtimestamp((report.run.out / "results.json").stat().st_mtime)
        label = f"{name} [{var}]" if var else name
        lines.append(f"| {label} | `{report.run.out}` | {rec.get('device', '?')} | {rec.get('threads', '?')} | "
                     f"{rec.get('chanlab_version', '?')} | {written:%Y-%m-%d %H:%M} |")
    missing = [e.name for e in experiments if e.name not in latest]
    if missing:
        lines += ["", f"Not run at `{preset}` yet ({len(missing)}): " + ", ".join(f"`{m}`" for m in missing) + "."]
    if notes.strip():
        lines += ["", "## Notes", "", notes.strip()]
    lines.append("")
    atomic_write_text(path, "\n".join(lines))
    return path


__all__ = ["RunReport", "build_reports", "find_runs", "latest_per_experiment", "latest_per_variant", "variant", "write_html", "write_markdown",
           "write_reproduction"]
