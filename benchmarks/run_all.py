"""Run every benchmark script at its small size and print one markdown table.

Each ``benchmarks/bench_*.py`` runs in its own process as ``python bench_X.py --small --json``
(flags from ``_report.py``), with one torch / OpenMP thread unless ``--threads`` says otherwise.
The last stdout line of a script is a JSON object whose ``rows`` each name what chanlab call
is timed, the reference it is compared with, the ratio (speed-up = reference time / chanlab
time; overhead = chanlab's cost / the reference's) and whether the two gave the same answer.
A script that fails, times out or prints no JSON line gets one row with its error instead,
and the run goes on. The table goes to stdout and, atomically, to ``benchmarks/latest.md``.

    python benchmarks/run_all.py                    # all scripts; --only residual_vq wmmse; --timeout 300

The small sizes are meant for a quick check that every benchmark still runs and roughly how
the ratios stand; the numbers in ``benchmarks/README.md`` come from the scripts' full sizes.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shlex
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
COLUMNS = ("benchmark", "what is timed", "reference", "ratio", "status", "wall")


def discover(folder: Path = HERE, only: list[str] | None = None) -> list[Path]:
    """``bench_*.py`` in ``folder``, sorted; ``only`` keeps those whose name contains one of its words."""
    scripts = sorted(folder.glob("bench_*.py"))
    if only:
        scripts = [p for p in scripts if any(w in p.stem for w in only)]
    return scripts


def run_script(path: Path, timeout: float, threads: int = 1, extra: list[str] | None = None) -> dict:
    """Run one script with ``--small --json``; ``{"benchmark", "rows", "error", "wall"}``.

    ``rows`` is the script's list (empty on failure), ``error`` a one-line reason or ``None``.
    """
    name = path.stem
    source = path.read_text(encoding="utf-8", errors="replace")
    if "_report" not in source:
        return {"benchmark": name, "rows": [], "wall": 0.0,
                "error": "not run: the script has no --small/--json flags (benchmarks/_report.py)"}
    env = dict(os.environ, OMP_NUM_THREADS=str(threads), MKL_NUM_THREADS=str(threads), CHANLAB_PROGRESS="0",
               CHANLAB_THREADS=str(threads))
    cmd = [sys.executable, str(path), "--small", "--json", *(extra or [])]
    t0 = time.perf_counter()
    try:
        proc = subprocess.run(cmd, cwd=path.parent, env=env, capture_output=True, text=True, timeout=timeout,
                              check=False)
    except subprocess.TimeoutExpired:
        return {"benchmark": name, "rows": [], "wall": time.perf_counter() - t0,
                "error": f"timed out after {timeout:.0f} s"}
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        return {"benchmark": name, "rows": [], "wall": wall,
                "error": f"exit {proc.returncode}: {_last_line(proc.stderr) or _last_line(proc.stdout)}"}
    try:
        rows = parse_json_line(proc.stdout)
    except ValueError as exc:
        return {"benchmark": name, "rows": [], "wall": wall, "error": str(exc)}
    return {"benchmark": name, "rows": rows, "wall": wall, "error": None}


def _last_line(text: str) -> str:
    lines = [line.strip() for line in (text or "").splitlines() if line.strip()]
    return lines[-1][:300] if lines else ""


def parse_json_line(stdout: str) -> list[dict]:
    """The ``rows`` of the last non-empty stdout line, which must be a JSON object with a list of rows."""
    lines = [line for line in stdout.splitlines() if line.strip()]
    if not lines:
        raise ValueError("no output")
    try:
        obj = json.loads(lines[-1])
    except json.JSONDecodeError:
        raise ValueError(f"last line is not JSON: {lines[-1][:120]!r}") from None
    if not isinstance(obj, dict) or not isinstance(obj.get("rows"), list) or not obj["rows"]:
        raise ValueError("JSON line without rows")
    bad = [r for r in obj["rows"] if not isinstance(r, dict) or not {"timed", "reference", "ratio"} <= set(r)]
    if bad:
        raise ValueError(f"rows lack timed/reference/ratio: {json.dumps(bad[0])[:120]}")
    return obj["rows"]


def format_ratio(ratio, kind: str = "speed-up") -> str:
    """``2.31x`` / ``0.65x (slower)`` for speed-ups, ``+7.3 %`` (or ``2.50x`` from 2 on) for overheads,
    ``1.27`` for other ratios, ``—`` for none."""
    if ratio is None:
        return "—"
    ratio = float(ratio)
    if kind == "speed-up":
        text = _times(ratio)
        return text if ratio >= 1 or text == "1.00x" else f"{text} (slower)"
    if kind == "overhead":
        return f"{100 * (ratio - 1):+.1f} %" if ratio < 2 else _times(ratio)
    return f"{ratio:.2f}"


def _times(ratio: float) -> str:
    return f"{ratio:.0f}x" if ratio >= 100 else f"{ratio:.1f}x" if ratio >= 10 else f"{ratio:.2f}x"


def format_status(r: dict) -> str:
    ok, check = r.get("ok"), r.get("check", "")
    head = {True: "ok", False: "CHECK FAILED", None: "ran"}.get(ok, str(ok))
    return f"{head}: {check}" if check else head


def table_rows(results: list[dict]) -> list[list[str]]:
    """One list of cells per row (error rows for failed scripts)."""
    out = []
    for res in results:
        wall = f"{res['wall']:.0f} s" if res.get("wall") else "—"
        if res.get("error"):
            out.append([res["benchmark"], "—", "—", "—", f"ERROR: {res['error']}", wall])
            continue
        for i, r in enumerate(res["rows"]):
            kind = r.get("kind", "speed-up")
            out.append([res["benchmark"], str(r["timed"]), str(r["reference"]),
                        format_ratio(r["ratio"], kind) + ("" if kind == "speed-up" or r["ratio"] is None
                                                          else f" ({kind})"),
                        format_status(r), wall if i == 0 else ""])
    return out


def format_table(results: list[dict]) -> str:
    """The markdown table of ``results`` (see :func:`run_script`); pipes and newlines escaped."""
    def cell(text: str) -> str:
        return " ".join(str(text).split()).replace("|", "\\|")

    lines = ["| " + " | ".join(COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
    lines += ["| " + " | ".join(cell(c) for c in cells) + " |" for cells in table_rows(results)]
    return "\n".join(lines) + "\n"


def machine_note(threads: int) -> str:
    import torch

    load = os.getloadavg() if hasattr(os, "getloadavg") else None
    load_text = f"load average {load[0]:.2f} / {load[1]:.2f} / {load[2]:.2f} (1 / 5 / 15 min)" if load else ""
    return (f"{os.cpu_count()} CPU cores, {load_text}; Python "
            f"{platform.python_version()}, torch {torch.__version__}, {threads} torch / OpenMP thread(s) per "
            f"script; CUDA {'available' if torch.cuda.is_available() else 'not available'}")


def write_atomic(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` through a temporary file in the same folder and ``os.replace``."""
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", nargs="+", help="run only the scripts whose name contains one of these words")
    parser.add_argument("--timeout", type=float, default=600.0, help="seconds per script (default 600)")
    parser.add_argument("--threads", type=int, default=1, help="torch / OpenMP threads per script (default 1)")
    parser.add_argument("--out", default=str(HERE / "latest.md"), help="markdown file ('' to skip)")
    parser.add_argument("--note", default="", help="a line about the conditions, written above the table")
    args = parser.parse_args(argv)
    given = list(sys.argv[1:] if argv is None else argv)
    if "--note" in given:                                   # the note has a line of its own
        i = given.index("--note")
        del given[i:i + 2]

    scripts = discover(HERE, args.only)
    before = machine_note(args.threads)
    started = time.strftime("%Y-%m-%d %H:%M")
    results = []
    for path in scripts:
        print(f"[run_all] {path.name} ...", file=sys.stderr, flush=True)
        res = run_script(path, args.timeout, args.threads)
        results.append(res)
        done = res["error"] or f"{len(res['rows'])} rows"
        print(f"[run_all] {path.name}: {done} ({res['wall']:.0f} s)", file=sys.stderr, flush=True)
    table = format_table(results)
    print(table, end="")
    if args.out:
        n_err = sum(1 for r in results if r["error"])
        n_fail = sum(1 for r in results for row in r["rows"] if row.get("ok") is False)
        text = (f"# Benchmarks at small size (`benchmarks/run_all.py`)\n\n"
                f"Run {started} to {time.strftime('%H:%M')}: `{shlex.join(['python', 'benchmarks/run_all.py', *given])}`"
                f", each script as `python bench_X.py --small --json`.\n\n"
                f"- at start: {before}\n- at end: {machine_note(args.threads)}\n"
                + (f"- {args.note}\n" if args.note else "")
                + f"- {len(scripts)} scripts, {sum(len(r['rows']) for r in results)} rows; "
                  f"{n_err} scripts failed, {n_fail} rows with a failed check\n\n"
                "Ratios: a speed-up is the reference's time / chanlab's time (\"x (slower)\" below 1); an "
                "overhead is chanlab's cost / the reference's (in % above 1). Small sizes are a smoke test of "
                "every benchmark, not the measurements of `benchmarks/README.md`.\n\n" + table)
        write_atomic(Path(args.out), text)
    return 1 if any(r["error"] for r in results) else 0


if __name__ == "__main__":
    sys.exit(main())
