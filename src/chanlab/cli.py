"""The ``chanlab`` command.

    chanlab list
    chanlab run NAME [--preset quick] [--set key=value ...] [--out DIR] [--device auto] [--seed 0] [--resume]
    chanlab verify NAME [--preset quick] [--set ...] [--out DIR] [--device auto] [--seed 0]
    chanlab data generate SOURCE [--num N ...] [--out FILE] [--seed 0] [--device cpu]
    chanlab data info FILE
    chanlab demo [--out DIR] [--device auto]

Bad input gives a one-line message on stderr and exit status 2; a failed claim in
``verify`` gives exit status 1.
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


def _experiments():
    import chanlab.experiments  # noqa: F401  (registers every experiment)
    from chanlab.core import registry

    return registry


def _add_run_args(p: argparse.ArgumentParser, default_preset: str = "quick") -> None:
    p.add_argument("--preset", default=default_preset, help=f"smoke, quick or paper (default {default_preset})")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="override a config value (dotted key), repeatable")
    p.add_argument("--out", default=None, help="run folder (default runs/NAME/TIMESTAMP)")
    p.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N")
    p.add_argument("--seed", type=int, default=0)


def _cmd_list(args: argparse.Namespace) -> int:
    registry = _experiments()
    experiments = registry.list_experiments()
    width = max((len(e.name) for e in experiments), default=4)
    for e in experiments:
        print(f"{e.name.ljust(width)}  {e.summary}")
    return 0


def _print_run(result) -> None:
    from chanlab.core.run import format_results_table

    print(format_results_table(result.results))
    print(f"\nrun folder: {result.out}")
    for fig in result.figures:
        print(f"figure: {fig}")


def _cmd_run(args: argparse.Namespace) -> int:
    from chanlab.core.run import run_experiment

    _experiments()
    result = run_experiment(args.name, preset=args.preset, overrides=args.overrides, out=args.out,
                            device=args.device, seed=args.seed, resume=args.resume)
    _print_run(result)
    return 0


def _cmd_verify(args: argparse.Namespace) -> int:
    from chanlab.core.run import check_claims, run_experiment

    registry = _experiments()
    experiment = registry.get_experiment(args.name)
    if not experiment.claims:
        print(f"{args.name}: no paper claims are registered for this experiment")
        return 0
    result = run_experiment(args.name, preset=args.preset, overrides=args.overrides, out=args.out,
                            device=args.device, seed=args.seed)
    verdicts = check_claims(experiment.claims, result.results)
    for v in verdicts:
        print(f"[{'PASS' if v.passed else 'FAIL'}] {v.statement}\n       measured: {v.measured}")
    n_pass = sum(v.passed for v in verdicts)
    print(f"\n{n_pass} passed, {len(verdicts) - n_pass} failed  (run folder: {result.out})")
    return 0 if n_pass == len(verdicts) else 1


def _cmd_demo(args: argparse.Namespace) -> int:
    from chanlab.core.run import run_experiment

    _experiments()
    print(f"chanlab demo: running {DEMO_EXPERIMENT} (preset {args.preset})")
    result = run_experiment(DEMO_EXPERIMENT, preset=args.preset, out=args.out, device=args.device, seed=args.seed)
    _print_run(result)
    return 0


def _cmd_data_generate(args: argparse.Namespace) -> int:
    from chanlab.channels.sources import generate_dataset, get_source

    source = get_source(args.source)
    params = {p.name: getattr(args, p.name) for p in source.params if getattr(args, p.name) is not None}
    path, hit = generate_dataset(args.source, params, seed=args.seed, device=args.device, out=args.out)
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
    """The argument parser (exposed for tests and docs)."""
    from chanlab import __version__
    from chanlab.channels.sources import SOURCES

    parser = _Parser(prog="chanlab", description="Learned wireless channel representations.")
    parser.add_argument("--version", action="version", version=f"chanlab {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("list", help="list the registered experiments")
    p.set_defaults(func=_cmd_list)

    p = sub.add_parser("run", help="run an experiment and write its run folder")
    p.add_argument("name")
    _add_run_args(p)
    p.add_argument("--resume", action="store_true", help="continue the run in --out from its last checkpoint")
    p.set_defaults(func=_cmd_run)

    p = sub.add_parser("verify", help="run an experiment and check the paper's claims (PASS/FAIL)")
    p.add_argument("name")
    _add_run_args(p)
    p.set_defaults(func=_cmd_verify)

    p = sub.add_parser("demo", help=f"the main demo ({DEMO_EXPERIMENT})")
    p.add_argument("--preset", default="quick")
    p.add_argument("--out", default=None)
    p.add_argument("--device", default="auto")
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(func=_cmd_demo)

    data = sub.add_parser("data", help="generate or inspect channel datasets").add_subparsers(
        dest="data_command", required=True, metavar="ACTION")
    gen = data.add_parser("generate", help="generate a dataset (cached)").add_subparsers(
        dest="source", required=True, metavar="SOURCE")
    for source in SOURCES.values():
        sp = gen.add_parser(source.name, help=source.summary, description=source.summary)
        for prm in source.params:
            flag = "--" + prm.name.replace("_", "-")
            default = f" (default {prm.default})" if prm.default is not None else ""
            sp.add_argument(flag, dest=prm.name, type=prm.type, default=None, choices=prm.choices,
                            help=prm.help + default)
        sp.add_argument("--seed", type=int, default=0)
        sp.add_argument("--device", default="cpu", help="cpu, cuda or auto (default cpu)")
        sp.add_argument("--out", default=None, help="copy the dataset here (default: print the cache path)")
        sp.set_defaults(func=_cmd_data_generate)
    info = data.add_parser("info", help="shapes, dtypes and provenance of a dataset file (.h5), "
                                        "or the layout of a COST2100 / multi-user .mat file")
    info.add_argument("file")
    info.set_defaults(func=_cmd_data_info)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``chanlab`` console script."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except ChanlabError as exc:
        print(f"chanlab: error: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:
        print(f"chanlab: error: {exc.strerror or exc}: {exc.filename or ''}".rstrip(": "), file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("chanlab: interrupted", file=sys.stderr)
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
