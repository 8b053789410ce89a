"""How long does the ``chanlab`` command take to answer ``--help`` and ``list``? Times each
command against ``python -c pass`` (the interpreter's own start-up) in the same run, alternating,
and prints the ratios. ``python -c "import torch"`` is timed too: what the command no longer pays.

    python benchmarks/bench_cli_startup.py                  # --repeat 10

Each timing is one fresh process (wall clock, stdout to /dev/null). Run it on an idle machine:
a job on the cores stretches every number, the reference included.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

from _report import OVERHEAD, emit, parse_args, row

SMALL = {"repeat": 3}


def _chanlab() -> list[str]:
    """The console script beside this interpreter (what a user runs), else ``python -m chanlab.cli``."""
    script = Path(sys.executable).parent / "chanlab"
    if script.is_file():
        return [str(script)]
    found = shutil.which("chanlab")
    return [found] if found else [sys.executable, "-m", "chanlab.cli"]


def commands() -> dict[str, list[str]]:
    chanlab = _chanlab()
    return {
        "python -c pass": [sys.executable, "-c", "pass"],
        "chanlab --help": chanlab + ["--help"],
        "chanlab list": chanlab + ["list"],
        "chanlab run --help": chanlab + ["run", "--help"],
        "chanlab data generate cdl --help": chanlab + ["data", "generate", "cdl", "--help"],
        "python -c 'import torch'": [sys.executable, "-c", "import torch"],
    }


def time_once(cmd: list[str]) -> float:
    t0 = time.perf_counter()
    subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
    return time.perf_counter() - t0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=10, help="timings per command (default 10)")
    args = parse_args(parser, SMALL)
    cmds = commands()
    for cmd in cmds.values():       # warm the file cache
        time_once(cmd)
    times: dict[str, list[float]] = {name: [] for name in cmds}
    for _ in range(args.repeat):    # alternate, so that a load change hits every command alike
        for name, cmd in cmds.items():
            times[name].append(time_once(cmd))
    ref = statistics.median(times["python -c pass"])
    width = max(map(len, cmds))
    print(f"{'command'.ljust(width)}  median     best       x python -c pass (median)")
    for name, ts in times.items():
        med = statistics.median(ts)
        print(f"{name.ljust(width)}  {med * 1e3:7.0f} ms {min(ts) * 1e3:7.0f} ms  {med / ref:6.1f}x")
    print(f"\n{args.repeat} runs each, alternating; command: {' '.join(_chanlab())}")
    emit(args, [row(f"`{name}` start-up ({args.repeat} runs, median)"
                    + (" (what the command no longer pays)" if "torch" in name else ""), "`python -c pass`",
                    statistics.median(ts) / ref, kind=OVERHEAD, ok=None, check=f"{statistics.median(ts) * 1e3:.0f} ms")
                for name, ts in times.items() if name != "python -c pass"])


if __name__ == "__main__":
    main()
