"""The ``chanlab`` command.

    chanlab list
    chanlab run NAME [--preset quick] [--set key=value ...] [--out DIR] [--device auto] [--seed 0]
    chanlab run [NAME] --out DIR --resume          (continue a run with the settings in DIR/config.json)
    chanlab verify NAME [--preset quick] [--set ...] [--out DIR] [--device auto] [--seed 0] [--threads N]
    chanlab verify NAME --results RUN_DIR          (re-check a finished run without running it)
    chanlab report RUN_DIR... [--out report.html]
    chanlab data generate SOURCE [--num N ...] [--out FILE] [--seed 0] [--device cpu]
    chanlab data info FILE
    chanlab demo [--out DIR] [--device auto]

Bad input gives a one-line message on stderr and exit status 2; a claim that is not a PASS
(FAIL or TIE) in ``verify`` gives exit status 1; an interrupted run prints the command that
continues it and exits with 130.

``--help``, ``list`` and ``data generate --help`` import no torch: they read the static
indexes of :mod:`chanlab.cli_index`; everything heavy is imported inside the command that needs it.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence

from chanlab.core.errors import ChanlabError

# The main demo: channel space gridization on synthetic CAPS (quick preset: about 15 min on 2 cores).
DEMO_EXPERIMENT = "gridization/synthetic"


class _Parser(argparse.ArgumentParser):
    """argparse with one-line errors (usage stays available through --help)."""

    def error(self, message: str):
        self.exit(2, f"chanlab: error: {message} (see '{self.prog} --help')\n")


class _Interrupted(KeyboardInterrupt):
    """A run stopped by Ctrl-C; ``hint`` says how to continue it."""

    def __init__(self, hint: str):
        super().__init__(hint)
        self.hint = hint


def _experiments():
    import chanlab.experiments  # noqa: F401  (registers every experiment)
    from chanlab.core import registry

    return registry


def _add_run_args(p: argparse.ArgumentParser) -> None:
    # preset and seed default to None so that --resume can tell what the user passed
    p.add_argument("--preset", default=None, help="smoke, quick or paper (default quick)")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="override a config value (dotted key), repeatable; a tuple may be a comma list: "
                        "--set data.models=A,D")
    p.add_argument("--out", default=None, help="run folder (default runs/NAME/TIMESTAMP)")
    p.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N")
    p.add_argument("--seed", type=int, default=None, help="run seed (default 0)")
    p.add_argument("--nproc", type=int, default=1, metavar="N",
                   help="data-parallel training on N processes (torch.distributed: gloo on CPU, NCCL on GPUs, "
                        "one GPU each); only rank 0 writes")
    _add_threads_arg(p)


def _relaunch_data_parallel(args: argparse.Namespace, argv: Sequence[str]) -> int | None:
    """With ``--nproc N > 1`` outside a process group: start N ranks of this same command through
    ``torch.distributed.run`` (torchrun) and return its exit code; None otherwise."""
    import subprocess

    from chanlab.core.distributed import env_world_size

    if args.nproc < 1:
        from chanlab.core.errors import ConfigError

        raise ConfigError(f"--nproc: expected a number of processes >= 1, got {args.nproc}")
    if args.nproc == 1 or env_world_size() > 1:
        return None
    rest, skip = [], False
    for i, a in enumerate(argv):
        if skip:
            skip = False
        elif a == "--nproc":
            skip = True
        elif not a.startswith("--nproc="):
            rest.append(a)
    if args.out is None and not getattr(args, "resume", False):
        from chanlab.core.run import default_out

        rest += ["--out", str(default_out(args.name))]    # one folder for every rank
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc-per-node={args.nproc}",
           "-m", "chanlab", *rest]
    return subprocess.call(cmd)


def _add_threads_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument("--threads", type=int, default=None, metavar="N",
                   help="torch intra-op threads (default: $CHANLAB_THREADS, else the measured default; "
                        "see benchmarks/bench_threads.py)")


def _cmd_list(args: argparse.Namespace) -> int:
    from chanlab.cli_index import experiment_index, format_seconds, quick_time_measured_on

    experiments = experiment_index()
    width = max((len(name) for name in experiments), default=10)
    print(f"{'EXPERIMENT'.ljust(width)}  CLAIMS  QUICK   SUMMARY")
    for name, e in experiments.items():
        print(f"{name.ljust(width)}  {e['claims']:>6}  {format_seconds(e.get('quick_time_s')):<6}  {e['summary']}")
    machine = quick_time_measured_on()
    print(f"\nCLAIMS: claims 'chanlab verify NAME' checks; QUICK: measured time of the quick preset"
          f"{f' ({machine})' if machine else ''}; ?: not measured")
    return 0


def _print_run(result) -> None:
    from chanlab.core.run import format_results_table

    print(format_results_table(result.results))
    print(f"\nrun folder: {result.out}")
    for fig in result.figures:
        print(f"figure: {fig}")


def _run(name: str | None, args: argparse.Namespace, *, resume: bool = False, verify: bool = False):
    """``run_experiment`` for a command; on Ctrl-C, an :class:`_Interrupted` naming the command
    that continues the run."""
    import shlex
    from pathlib import Path

    from chanlab.core.run import default_out, resume_command, run_experiment

    _experiments()
    _set_threads(args)
    out = Path(args.out) if args.out is not None else (None if resume or name is None else default_out(name))
    try:
        return run_experiment(name, preset=args.preset, overrides=args.overrides, out=out, device=args.device,
                              seed=args.seed, resume=resume)
    except KeyboardInterrupt as exc:
        if isinstance(exc, _Interrupted) or out is None or not (out / "config.json").is_file():
            raise
        try:
            name = json.loads((out / "config.json").read_text())["experiment"]
        except (OSError, ValueError, KeyError, TypeError):
            pass
        hint = f"continue with: {resume_command(name, out, args.device)}"
        if verify:
            hint += f", then check it with: chanlab verify {shlex.quote(name)} --results {shlex.quote(str(out))}"
        raise _Interrupted(hint) from exc


def _cmd_run(args: argparse.Namespace) -> int:
    if args.name is None and not args.resume:
        args.parser.error("the following arguments are required: name (or --out DIR --resume)")
    code = _relaunch_data_parallel(args, args.argv)
    if code is not None:
        return code
    result = _run(args.name, args, resume=args.resume)
    from chanlab.core.distributed import is_main

    if is_main():
        _print_run(result)
    return 0


def _cmd_verify(args: argparse.Namespace) -> int:
    from chanlab.core.atomic import atomic_write_json
    from chanlab.core.claims import check_claims
    from chanlab.core.run import load_run

    registry = _experiments()
    experiment = registry.get_experiment(args.name)
    if not experiment.claims:
        print(f"{args.name}: no claims are registered for this experiment")
        return 0
    if args.results is not None:
        run = load_run(args.results, expect=args.name)
        results, out = run.results, run.out
    else:
        code = _relaunch_data_parallel(args, args.argv)
        if code is not None:
            return code
        result = _run(args.name, args, verify=True)
        results, out = result.results, result.out
        from chanlab.core.distributed import is_main

        if not is_main():
            return 0
    verdicts = check_claims(experiment.claims, results)
    for v in verdicts:
        print("\n".join(v.lines()))
    counts = {s: sum(v.status == s for v in verdicts) for s in ("PASS", "FAIL", "TIE")}
    atomic_write_json(out / "claims.json", [v.to_dict() for v in verdicts])
    print(f"\nclaims: {counts['PASS']} PASS, {counts['FAIL']} FAIL, {counts['TIE']} TIE  (run folder: {out})")
    return 0 if counts["PASS"] == len(verdicts) else 1


def _set_threads(args: argparse.Namespace) -> None:
    from chanlab.core.device import set_threads

    set_threads(getattr(args, "threads", None))


def _cmd_sweep(args: argparse.Namespace) -> int:
    from chanlab.core.report import build_reports, find_runs, write_html, write_markdown
    from chanlab.core.sweep import format_summary, parse_grid, parse_seeds, plan_sweep, run_sweep

    _experiments()
    from pathlib import Path

    out = Path(args.out) if args.out is not None else Path("sweeps") / args.name.replace("/", "_")
    plan = plan_sweep(args.name, seeds=parse_seeds(args.seeds), grid=parse_grid(args.grid), preset=args.preset,
                      overrides=args.overrides, out=out, device=args.device, threads=args.threads)
    summary = run_sweep(plan, backend=args.backend, address=args.address, cpus_per_run=args.cpus_per_run,
                        gpus_per_run=args.gpus_per_run)
    print(format_summary(summary))
    print(f"\nsweep: {out / 'sweep.json'}")
    try:
        reports = build_reports(find_runs([out]))
    except ChanlabError:
        reports = []                                   # every run failed: sweep.json says so
    if reports:
        write_html(reports, out / "report.html")
        write_markdown(reports, out / "report.md")
        print(f"report: {out / 'report.html'}")
    verdicts = [c["verdict"] for p in summary["points"] for c in p["claims"]]
    return 0 if verdicts and all(v == "PASS" for v in verdicts) and not summary["failed_runs"] else 1


def _cmd_report(args: argparse.Namespace) -> int:
    from pathlib import Path

    from chanlab.core.report import build_reports, find_runs, write_html, write_markdown, write_reproduction

    _experiments()
    reports = build_reports(find_runs(args.runs))
    if args.reproduction is not None:
        from chanlab.core.errors import ConfigError

        notes = ""
        if args.notes is not None:
            try:
                notes = Path(args.notes).read_text(encoding="utf-8")
            except OSError as exc:
                raise ConfigError(f"--notes: expected a readable Markdown file, got {args.notes!r} "
                                  f"({exc.strerror})") from None
        path = write_reproduction(reports, args.reproduction, preset=args.preset, notes=notes)
        print(f"reproduction table: {path}")
    if args.out is not None or args.reproduction is None:
        html_path = Path(args.out or "report.html")
        write_html(reports, html_path)
        md_path = write_markdown(reports, html_path.with_suffix(".md"))
        print(f"report: {html_path} (Markdown twin: {md_path}), {len(reports)} run(s)")
    return 0


def _cmd_demo(args: argparse.Namespace) -> int:
    from chanlab.core.claims import check_claims
    from chanlab.core.registry import get_experiment

    print(f"chanlab demo: fitting CSG-AE with PIDA and its baselines on synthetic CAPS "
          f"({DEMO_EXPERIMENT}, preset {args.preset})", flush=True)
    args.overrides = []
    result = _run(DEMO_EXPERIMENT, args)
    _print_run(result)
    print("\nwhat it measured, against the paper:")
    for verdict in check_claims(get_experiment(DEMO_EXPERIMENT).claims, result.results):
        print("\n".join(verdict.lines()))
    print(f"\nfigures are in {result.out / 'figures'}; the full quick experiment (3 scales, 2 seeds, "
          f"8 baselines) is:\n  chanlab verify {DEMO_EXPERIMENT} --preset quick")
    return 0


def _cmd_data_generate(args: argparse.Namespace) -> int:
    from chanlab.channels.sources import generate_dataset, get_source

    source = get_source(args.source)
    params = {p.name: getattr(args, p.name) for p in source.params if getattr(args, p.name) is not None}
    path, hit = generate_dataset(args.source, params, seed=args.seed, device=args.device, out=args.out,
                                 workers=args.workers)
    print(f"{'served from cache' if hit else 'generated'}: {path}")
    return 0


def _cmd_data_info(args: argparse.Namespace) -> int:
    from chanlab.channels.store import dataset_info

    if str(args.file).lower().endswith(".mat"):
        from chanlab.channels.loaders import load_mat_channels

        layout, x = load_mat_channels(args.file)
        print(f"file: {args.file}\n  layout: {layout}\n  loaded as: shape {tuple(x.shape)}, dtype {x.dtype}")
        return 0
    info = dataset_info(args.file)
    print(f"file: {info['path']}")
    for name, d in info["datasets"].items():
        print(f"  {name}: shape {tuple(d['shape'])}, dtype {d['dtype']}")
    print("provenance:")
    for key, value in info["provenance"].items():
        text = json.dumps(value) if isinstance(value, (dict, list)) else str(value)
        print(f"  {key}: {text}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    """The argument parser (exposed for tests and docs); builds without importing torch."""
    from chanlab import __version__
    from chanlab.cli_index import param_type, source_index

    parser = _Parser(prog="chanlab", description="Learned wireless channel representations.")
    parser.add_argument("--version", action="version", version=f"chanlab {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("list", help="list the registered experiments")
    p.set_defaults(func=_cmd_list)

    p = sub.add_parser("run", help="run an experiment and write its run folder")
    p.add_argument("name", nargs="?", help="the experiment ('chanlab list'); optional with --resume")
    _add_run_args(p)
    p.add_argument("--resume", action="store_true",
                   help="continue the run in --out from its last checkpoint, with the experiment, preset, "
                        "overrides and seed stored in its config.json")
    p.set_defaults(func=_cmd_run, parser=p)

    p = sub.add_parser("verify", help="run an experiment (or read a finished run) and check its claims "
                                      "(PASS / FAIL / TIE)")
    p.add_argument("name")
    _add_run_args(p)
    p.add_argument("--results", default=None, metavar="RUN_DIR",
                   help="check the finished run in RUN_DIR instead of running the experiment")
    p.set_defaults(func=_cmd_verify)

    p = sub.add_parser("sweep", help="run an experiment over seeds and a grid of overrides (locally or on Ray) "
                                     "and decide its claims over the seeds (sweep.json)")
    p.add_argument("name")
    p.add_argument("--seeds", default="0", help="seeds, e.g. 0-4 or 0,2,5 (default 0)")
    p.add_argument("--grid", action="append", default=[], metavar="KEY=V1,V2",
                   help="sweep a config value over the listed values, repeatable (the cross product)")
    p.add_argument("--preset", default=None, help="smoke, quick or paper (default quick)")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="override a config value in every run, repeatable")
    p.add_argument("--backend", default="local", choices=("local", "ray"),
                   help="local: one run after another here; ray: one Ray task per run (the [dist] extra)")
    p.add_argument("--address", default=None, help="Ray cluster address (default: start Ray locally)")
    p.add_argument("--cpus-per-run", type=float, default=1, help="CPUs a Ray task reserves (default 1)")
    p.add_argument("--gpus-per-run", type=float, default=0, help="GPUs a Ray task reserves (default 0)")
    p.add_argument("--out", default=None, help="sweep folder (default sweeps/NAME); its runs are OUT/POINT/seed-S")
    p.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N (each run)")
    _add_threads_arg(p)
    p.set_defaults(func=_cmd_sweep)

    p = sub.add_parser("report", help="one HTML page (and a Markdown twin) of finished runs: claims, "
                                      "paper numbers, figures, config")
    p.add_argument("runs", nargs="+", metavar="RUN_DIR", help="run folders, or folders holding run folders")
    p.add_argument("--out", default=None, help="the HTML page (default report.html; the .md twin beside it)")
    p.add_argument("--reproduction", default=None, metavar="FILE",
                   help="also write the reproduction table (REPRODUCTION.md) of every registered claim")
    p.add_argument("--preset", default="quick", help="which runs the reproduction table reads (default quick)")
    p.add_argument("--notes", default=None, metavar="FILE",
                   help="Markdown appended to the reproduction table under 'Notes' (e.g. reproduction/notes.md)")
    p.set_defaults(func=_cmd_report)

    p = sub.add_parser("demo", help=f"the main demo ({DEMO_EXPERIMENT} at its small 'demo' preset)")
    p.add_argument("--preset", default="demo", help="demo (default, a few minutes), smoke, quick or paper")
    p.add_argument("--out", default=None)
    p.add_argument("--device", default="auto")
    p.add_argument("--seed", type=int, default=0)
    _add_threads_arg(p)
    p.set_defaults(func=_cmd_demo)

    data = sub.add_parser("data", help="generate or inspect channel datasets").add_subparsers(
        dest="data_command", required=True, metavar="ACTION")
    gen = data.add_parser("generate", help="generate a dataset (cached)").add_subparsers(
        dest="source", required=True, metavar="SOURCE")
    for source_name, source in source_index().items():
        sp = gen.add_parser(source_name, help=source["summary"], description=source["summary"])
        for prm in source["params"]:
            flag = "--" + prm["name"].replace("_", "-")
            default = f" (default {prm['default']})" if prm["default"] is not None else ""
            sp.add_argument(flag, dest=prm["name"], type=param_type(prm["type"]), default=None,
                            choices=prm["choices"], help=prm["help"] + default)
        sp.add_argument("--seed", type=int, default=0)
        sp.add_argument("--device", default="cpu", help="cpu, cuda or auto (default cpu)")
        sp.add_argument("--out", default=None, help="copy the dataset here (default: print the cache path)")
        sp.add_argument("--workers", type=int, default=1,
                        help="processes that build the chunks (same dataset as one; default 1)")
        sp.set_defaults(func=_cmd_data_generate)
    info = data.add_parser("info", help="shapes, dtypes and provenance of a dataset file (.h5), "
                                        "or the layout of a COST2100 / multi-user .mat file")
    info.add_argument("file")
    info.set_defaults(func=_cmd_data_info)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``chanlab`` console script."""
    try:
        code = _main(argv)
        sys.stdout.flush()      # inside the try: a reader that went away (| head) is noticed here
        return code
    except BrokenPipeError:
        # The reader of stdout (e.g. `chanlab list | head`) closed it: stop quietly. Python's docs
        # recommend pointing stdout at devnull, so that the flush at exit does not fail again.
        try:
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())
        except (OSError, ValueError):   # no real file descriptor (e.g. captured in tests)
            pass
        return 1


def _main(argv: Sequence[str] | None) -> int:
    parser = build_parser()
    argv = list(sys.argv[1:] if argv is None else argv)
    args = parser.parse_args(argv)
    args.argv = argv                   # what --nproc relaunches on every rank
    try:
        return args.func(args)
    except BrokenPipeError:
        raise
    except ChanlabError as exc:
        print(f"chanlab: error: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:
        print(f"chanlab: error: {exc.strerror or exc}: {exc.filename or ''}".rstrip(": "), file=sys.stderr)
        return 2
    except KeyboardInterrupt as exc:
        hint = f"; {exc.hint}" if isinstance(exc, _Interrupted) else ""
        print(f"chanlab: interrupted{hint}", file=sys.stderr)
        return 130
    except Exception as exc:  # a bug, not bad input: one line by default, the traceback on request
        if os.environ.get("CHANLAB_DEBUG"):
            raise
        first = (str(exc).strip().splitlines() or [""])[0]
        print(f"chanlab: internal error: {type(exc).__name__}: {first} (set CHANLAB_DEBUG=1 for the traceback)",
              file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
