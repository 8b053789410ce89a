"""Shared ``--small`` / ``--json`` flags of the benchmark scripts, read by ``run_all.py``.

Each ``bench_*.py`` parses its arguments with :func:`parse_args`, which adds

* ``--small``: the script's small sizes (about a minute or less at one thread), given as
  parser defaults, so that flags named on the command line still win;
* ``--json``: after the human-readable output, one last stdout line holding
  ``{"benchmark": ..., "small": ..., "rows": [...]}`` with one :func:`row` per comparison.

The script calls :func:`emit` with its rows at the end of ``main``.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path

#: Values of ``kind``: how ``ratio`` reads.
SPEED_UP = "speed-up"    # reference time / chanlab time (> 1: chanlab faster)
OVERHEAD = "overhead"    # chanlab's cost / the reference cost (> 1: chanlab costs more)
RATIO = "ratio"          # another ratio, explained by ``timed`` and ``reference``


def parse_args(parser: argparse.ArgumentParser, small: dict, argv=None) -> argparse.Namespace:
    """Add ``--small`` and ``--json`` to ``parser`` and parse ``argv``.

    ``small`` maps argument destinations (``"ref_samples"``) to their small values.
    """
    shown = ", ".join(f"--{k.replace('_', '-')} {_show(v)}" for k, v in small.items())
    parser.add_argument("--small", action="store_true",
                        help=f"small sizes for run_all.py: {shown} (flags given explicitly win)")
    parser.add_argument("--json", action="store_true",
                        help="print one JSON line last: {'benchmark', 'small', 'rows'} (for run_all.py)")
    args = parser.parse_args(argv)
    if args.small:
        unknown = set(small) - set(vars(args))
        if unknown:
            raise ValueError(f"small sizes for unknown arguments {sorted(unknown)}")
        parser.set_defaults(**small)
        args = parser.parse_args(argv)
    return args


def row(timed: str, reference: str, ratio: float | None, kind: str = SPEED_UP, ok: bool | None = True,
        check: str = "") -> dict:
    """One comparison: what chanlab call is timed, the reference it is compared with, the ratio
    (see :data:`SPEED_UP`, :data:`OVERHEAD`, :data:`RATIO`; ``None`` where there is none), and the
    result check (``ok``: the answers agree, ``False``: they do not, ``None``: nothing to check)
    with its text."""
    if ratio is not None:
        ratio = float(ratio)
        if not math.isfinite(ratio):
            ratio = None
    return {"timed": timed, "reference": reference, "ratio": ratio, "kind": kind, "ok": ok, "check": check}


def emit(args: argparse.Namespace, rows: list[dict]) -> None:
    """Print the JSON line of ``rows`` (last on stdout) when ``--json`` was given."""
    if getattr(args, "json", False):
        name = Path(sys.argv[0]).stem
        print(json.dumps({"benchmark": name, "small": bool(args.small), "rows": rows}), flush=True)


def _show(value) -> str:
    if isinstance(value, (list, tuple)):
        return " ".join(map(str, value))
    return str(value)
