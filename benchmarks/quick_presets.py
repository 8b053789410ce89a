"""How long every experiment's ``quick`` preset takes, against the 15-minute budget.

Two ways to get the times:

* ``--run``: run each quick preset here, one after another, each as
  ``chanlab run NAME --preset quick --threads T --out DIR/NAME`` in its own process, timed from
  start to exit (the honest number: run it on an idle machine);
* ``--from-runs DIR [DIR ...]``: read them from finished run folders (``config.json`` names the
  experiment and preset; ``log.txt`` ends with "run took N s"; a run resumed after a kill counts
  each of its sessions, as the log records them).

Either way it writes one Markdown table, ``benchmarks/quick_presets.md`` (atomically): the
experiment, its time, the threads it ran with, whether it is within ``--budget`` minutes (15 by
default) and where the number came from; with ``--update-index`` the measured times also go
into ``src/chanlab/experiments/index.json`` (what ``chanlab list`` shows).

    python benchmarks/quick_presets.py --from-runs reproduction/quick
    python benchmarks/quick_presets.py --run --out /tmp/quick-runs --threads 2     # hours on a 2-core CPU
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
STARTED_LINE = re.compile(r" INFO run \S+ preset=")


def from_run_folder(folder: Path) -> dict | None:
    """``{"experiment", "seconds", "threads", "source"}`` of one finished quick run folder, or None."""
    try:
        record = json.loads((folder / "config.json").read_text())
        log = (folder / "log.txt").read_text(errors="replace")
    except (OSError, ValueError):
        return None
    if record.get("preset") != "quick" or not (folder / "results.json").is_file() or record.get("overrides"):
        return None
    seconds = _session_seconds(log)
    if seconds is None:
        return None
    return {"experiment": record["experiment"], "seconds": seconds, "threads": record.get("threads"),
            "source": f"`{folder}` (log.txt)"}


def _session_seconds(log: str) -> float | None:
    """Wall time of a run from its log: the sum over its sessions (a resumed run has several), each
    from its "INFO run" line to the last timestamped line before the next one."""
    from datetime import datetime

    sessions: list[list[datetime]] = []
    for line in log.splitlines():
        try:
            stamp = datetime.strptime(line[:23], "%Y-%m-%d %H:%M:%S,%f")
        except ValueError:
            continue
        if STARTED_LINE.search(line):
            sessions.append([stamp, stamp])
        elif sessions:
            sessions[-1][1] = stamp
    if not sessions or "results written" not in log:
        return None
    return sum((end - start).total_seconds() for start, end in sessions)


def run_preset(name: str, out: Path, threads: int) -> dict:
    """Run one quick preset in its own process and time it."""
    env = dict(os.environ, CHANLAB_PROGRESS="0")
    t0 = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "chanlab", "run", name, "--preset", "quick", "--threads",
                           str(threads), "--out", str(out)], env=env, capture_output=True, text=True)
    seconds = time.perf_counter() - t0
    status = "" if proc.returncode == 0 else f"; failed (exit {proc.returncode}): {proc.stderr.strip()[-200:]}"
    return {"experiment": name, "seconds": seconds, "threads": threads, "source": f"timed here{status}",
            "failed": proc.returncode != 0}


def table(rows: list[dict], budget_min: float, note: str) -> str:
    lines = [f"# Quick presets against the {budget_min:g}-minute budget (`benchmarks/quick_presets.py`)", "",
             note, "", "| experiment | quick preset | threads | within budget | from |", "|---|---|---|---|---|"]
    for r in sorted(rows, key=lambda r: r["experiment"]):
        if r.get("seconds") is None:
            lines.append(f"| {r['experiment']} | not measured | – | ? | – |")
            continue
        within = "yes" if r["seconds"] <= budget_min * 60 and not r.get("failed") else "**no**"
        lines.append(f"| {r['experiment']} | {r['seconds'] / 60:.1f} min | {r.get('threads') or '?'} | {within} | "
                     f"{r['source']} |")
    over = [r["experiment"] for r in rows if r.get("seconds") and r["seconds"] > budget_min * 60]
    lines += ["", f"{len(over)} of {len(rows)} over the budget" + (": " + ", ".join(sorted(over)) if over else "") + "."]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    how = parser.add_mutually_exclusive_group(required=True)
    how.add_argument("--from-runs", nargs="+", metavar="DIR", help="folders holding finished quick run folders")
    how.add_argument("--run", action="store_true", help="run every quick preset here (long)")
    parser.add_argument("--out", default=None, help="with --run: where the run folders go (default a temp folder)")
    parser.add_argument("--threads", type=int, default=2, help="with --run: torch threads per run (default 2)")
    parser.add_argument("--only", nargs="*", default=None, help="with --run: these experiments only")
    parser.add_argument("--budget", type=float, default=15.0, help="minutes (default 15)")
    parser.add_argument("--note", default="", help="a line about the machine and its load, put above the table")
    parser.add_argument("--table", default=str(ROOT / "benchmarks" / "quick_presets.md"))
    parser.add_argument("--update-index", action="store_true",
                        help="also write the measured seconds into experiments/index.json (chanlab list)")
    args = parser.parse_args()

    sys.path.insert(0, str(ROOT / "src"))
    from chanlab.cli_index import experiment_index

    names = list(experiment_index())
    rows: dict[str, dict] = {}
    if args.run:
        out = Path(args.out or tempfile.mkdtemp(prefix="chanlab-quick-"))
        for name in args.only or names:
            print(f"quick preset of {name} ...", flush=True)
            rows[name] = run_preset(name, out / name.replace("/", "_"), args.threads)
            print(f"  {rows[name]['seconds']:.0f} s{rows[name]['source'][len('timed here'):]}", flush=True)
        note = args.note or f"Timed here with {args.threads} torch thread(s) per run, one run at a time."
    else:
        for root in args.from_runs:
            for config in sorted(Path(root).rglob("config.json")):
                r = from_run_folder(config.parent)
                if r is not None and r["experiment"] in names:
                    rows[r["experiment"]] = r
        note = args.note or "Read from the run folders' logs (the machine and its load are those of those runs)."
    for name in names:
        rows.setdefault(name, {"experiment": name, "seconds": None})

    from chanlab.core.atomic import atomic_write_text

    text = table(list(rows.values()), args.budget, note)
    atomic_write_text(Path(args.table), text)
    print(text)
    if args.update_index:
        index_path = ROOT / "src" / "chanlab" / "experiments" / "index.json"
        index = json.loads(index_path.read_text())
        for name, r in rows.items():
            if r.get("seconds") is not None and name in index["experiments"] and not r.get("failed"):
                index["experiments"][name]["quick_time_s"] = round(r["seconds"])
        index["quick_time_measured_on"] = note
        atomic_write_text(index_path, json.dumps(index, indent=2, ensure_ascii=False) + "\n")
        # back into the index's own layout (python -m chanlab.cli_index keeps the times just written)
        subprocess.run([sys.executable, "-m", "chanlab.cli_index"], check=True, cwd=ROOT,
                       env=dict(os.environ, PYTHONPATH=str(ROOT / "src")))
        print(f"updated {index_path}")


if __name__ == "__main__":
    main()
