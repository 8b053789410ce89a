"""NOMP / WNOMP refits by the batched active-set NNLS vs a per-sample SciPy loop and the old enumeration.

Same data as ``bench_sparse_recovery.py``: ``A [32, N]`` holds DFT beam patterns on an
azimuth x elevation grid (N = 6552 by default), and each sample's CAPS is ``L``-sparse with
powers uniform in dB over 20 dB. The RSRP is ``y = A x`` times a positive 0.1 dB log-normal
jitter, and the estimates use the same ``L``.

Three implementations of the same pursuits run on the same inputs:

* ``new``: chanlab's batched :func:`nomp` / :func:`wnomp`, which refit by the batched
  Lawson–Hanson active-set method;
* ``loop``: :func:`~chanlab.classical.sparse_recovery.nomp_reference_loop` on one sample at a
  time, with NumPy correlations and ``scipy.optimize.nnls`` refits;
* ``old``: the batched pursuits of an earlier revision of the module (``--old-rev``), whose
  refit enumerates the ``2^(k-1)`` passive sets that contain the new atom. Only for
  ``L <= --old-max-l``: its cost doubles with every atom.

Each call is timed whole, and so is the time spent in its NNLS refits: ``new``, the QR
append and the refit (``_qr_append``, ``_nomp_refit``); ``loop``, the ``scipy.optimize.nnls``
calls; ``old``, ``_nnls_small`` (its QR reduction and enumeration). The implementations take
turns in each round, so a burst of load from another job hits all of them alike; each time
is the best of ``--repeat`` rounds after a warm-up round. The script checks that the supports
agree with the loop's and prints the largest coefficient difference, relative to the largest
coefficient.

Last, it times the NNLS alone: a cold :func:`nnls_small` on the final NOMP supports
(``[batch, 32, L]``) against ``scipy.optimize.nnls`` per sample (and the old ``nnls_small``
up to ``k = 8``: a cold enumeration has ``2^k - 1`` subsets).
"""

from __future__ import annotations

import argparse
import importlib.util
import subprocess
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import scipy.optimize
import torch
from _report import emit, parse_args, row
from bench_sparse_recovery import beam_patterns, caps_batch

from chanlab.classical import sparse_recovery
from chanlab.classical.sparse_recovery import nnls_small, nomp_reference_loop

MODULE_PATH = "src/chanlab/classical/sparse_recovery.py"
OLD_COLD_MAX_K = 8
SMALL = {"n": 1656, "batch": 60, "sparsity": [5, 8], "old_max_l": 8, "repeat": 2}


def load_old_module(rev: str):
    """The sparse-recovery module as of git revision ``rev``, imported under another name."""
    root = Path(__file__).resolve().parents[1]
    source = subprocess.run(["git", "show", f"{rev}:{MODULE_PATH}"], cwd=root, check=True,
                            capture_output=True, text=True).stdout
    path = Path(tempfile.mkdtemp()) / "sparse_recovery_old.py"
    path.write_text(source)
    spec = importlib.util.spec_from_file_location("sparse_recovery_old", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@contextmanager
def timing_calls(module, names, clock: list):
    """While active, calls of ``module.<name>`` for each name add their wall time to ``clock[0]``."""
    originals = {name: getattr(module, name) for name in names}

    def wrap(fn):
        def timed(*args, **kwargs):
            t0 = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                clock[0] += time.perf_counter() - t0
        return timed

    for name, fn in originals.items():
        setattr(module, name, wrap(fn))
    try:
        yield
    finally:
        for name, fn in originals.items():
            setattr(module, name, fn)


def loop_pursuit(a: np.ndarray, y: np.ndarray, sparsity: int, weighted: bool) -> np.ndarray:
    out = np.zeros((len(y), a.shape[1]))
    for b, yb in enumerate(y):
        w = 1.0 / np.maximum(yb, 1e-9 * yb.max()) if weighted else None
        out[b] = nomp_reference_loop(a, yb, sparsity, w)[0]
    return out


def rounds(variants: dict, repeat: int) -> dict:
    """``{name: (best total, best refit time)}`` over ``repeat`` interleaved rounds after a warm-up.

    Each variant is ``(fn, module, names)``: ``fn()`` runs it, and the calls of
    ``module.<names>`` inside it are its refits.
    """
    best = {name: [float("inf"), float("inf")] for name in variants}
    for round_ in range(repeat + 1):
        for name, (fn, module, names) in variants.items():
            clock = [0.0]
            with timing_calls(module, names, clock):
                t0 = time.perf_counter()
                fn()
                if torch.cuda.is_available():
                    torch.cuda.synchronize()
                total = time.perf_counter() - t0
            if round_:
                best[name][0] = min(best[name][0], total)
                best[name][1] = min(best[name][1], clock[0])
    return best


def compare(x: np.ndarray, x_ref: np.ndarray) -> tuple[float, float]:
    """Fraction of samples with identical supports; max coefficient difference / max |x_ref| on those."""
    same = ((x != 0) == (x_ref != 0)).all(-1)
    diff = np.abs(x - x_ref)[same].max(initial=0.0) / np.abs(x_ref).max()
    return float(same.mean()), float(diff)


def ms(t: float | None) -> str:
    return "—" if t is None else f"{t * 1e3:.1f} ms"


def ratio(num: float | None, den: float) -> str:
    return "—" if num is None else f"{num / den:.1f}×"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=6552, help="angles N (azimuth x elevation grid)")
    parser.add_argument("--batch", type=int, default=220, help="samples per batched call")
    parser.add_argument("--sparsity", type=int, nargs="+", default=[5, 8, 12], help="values of L")
    parser.add_argument("--jitter-db", type=float, default=0.1, help="std of the log-normal RSRP jitter (dB)")
    parser.add_argument("--old-rev", default="1b095f5",
                        help="git revision whose sparse_recovery.py enumerates passive sets ('' to skip)")
    parser.add_argument("--old-max-l", type=int, default=12, help="run the old enumeration only up to this L")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1, help="torch threads")
    parser.add_argument("--seed", type=int, default=0)
    args = parse_args(parser, SMALL)

    torch.set_num_threads(args.threads)
    old = load_old_module(args.old_rev) if args.old_rev else None
    rng = np.random.default_rng(args.seed)
    a = beam_patterns(args.n)
    a_t = torch.from_numpy(a)
    print(f"A [{a.shape[0]}, {a.shape[1]}], batch {args.batch}, float64 on the CPU, torch threads "
          f"{torch.get_num_threads()}, best of {args.repeat} interleaved rounds; old = {args.old_rev or 'skipped'}")
    refit_rows, pursuit_rows, cold_rows, json_rows = [], [], [], []
    for L in args.sparsity:
        x = caps_batch(args.batch, args.n, L, rng)
        y = (x @ a.T) * 10 ** (args.jitter_db * rng.standard_normal((args.batch, a.shape[0])) / 10)
        y_t = torch.from_numpy(y)
        for name, weighted in (("nomp", False), ("wnomp", True)):
            new_fn = getattr(sparse_recovery, name)
            variants = {
                "new": (lambda f=new_fn, y_t=y_t, L=L: f(a_t, y_t, L), sparse_recovery, ("_qr_append", "_nomp_refit")),
                "loop": (lambda y=y, L=L, w=weighted: loop_pursuit(a, y, L, w), scipy.optimize, ("nnls",)),
            }
            if old is not None and L <= args.old_max_l:
                old_fn = getattr(old, name)
                variants["old"] = (lambda f=old_fn, y_t=y_t, L=L: f(a_t, y_t, L), old, ("_nnls_small",))
            t = rounds(variants, args.repeat)
            x_new = new_fn(a_t, y_t, L).numpy()
            same, diff = compare(x_new, loop_pursuit(a, y, L, weighted))
            t_old = t.get("old", (None, None))
            refit_rows.append(f"| {L} | {name.upper()} | {ms(t['new'][1])} | {ms(t['loop'][1])} | {ms(t_old[1])} | "
                              f"{ratio(t['loop'][1], t['new'][1])} | {ratio(t_old[1], t['new'][1])} |")
            pursuit_rows.append(f"| {L} | {name.upper()} | {ms(t['new'][0])} | {ms(t['loop'][0])} | {ms(t_old[0])} | "
                                f"{ratio(t['loop'][0], t['new'][0])} | {ratio(t_old[0], t['new'][0])} | "
                                f"{same:.3f} | {diff:.1e} |")
            print(refit_rows[-1], flush=True)
            what = f"NNLS refits inside {name}, L = {L} (batch {args.batch}, N = {args.n})"
            check = f"supports = loop {same:.3f}, max coef. diff {diff:.1e}"
            json_rows.append(row(what, "scipy.optimize.nnls calls of the per-sample loop",
                                 t["loop"][1] / t["new"][1], ok=same == 1.0, check=check))
            if t_old[1] is not None:
                json_rows.append(row(what, f"passive-set enumeration of revision {args.old_rev}",
                                     t_old[1] / t["new"][1], ok=same == 1.0, check=check))
            if name == "nomp":
                # The NNLS alone, cold, on the final supports ([batch, M, k], nonzeros first).
                k = max(1, int((x_new != 0).sum(-1).max()))
                support = np.argsort(x_new == 0, axis=-1, kind="stable")[:, :k]
                a_sub = np.ascontiguousarray(a.T[support].transpose(0, 2, 1))
                a_sub_t = torch.from_numpy(a_sub)
                variants = {
                    "new": (lambda a_sub_t=a_sub_t, y_t=y_t: nnls_small(a_sub_t, y_t), sparse_recovery, ()),
                    "loop": (lambda a_sub=a_sub, y=y: [scipy.optimize.nnls(a_sub[b], y[b]) for b in range(len(y))],
                             scipy.optimize, ()),
                }
                if old is not None and k <= OLD_COLD_MAX_K:
                    variants["old"] = (lambda a_sub_t=a_sub_t, y_t=y_t: old.nnls_small(a_sub_t, y_t), old, ())
                t = rounds(variants, args.repeat)
                t_old = t.get("old", (None, None))[0]
                cold_rows.append(f"| {L} | {k} | {ms(t['new'][0])} | {ms(t['loop'][0])} | {ms(t_old)} | "
                                 f"{ratio(t['loop'][0], t['new'][0])} | {ratio(t_old, t['new'][0])} |")

    print("\nNNLS refits inside the pursuits (new: QR append + refit; loop: scipy.optimize.nnls calls; "
          "old: _nnls_small):\n")
    print("| L | algorithm | new refits | loop's SciPy nnls | old refits | loop / new | old / new |")
    print("|---|---|---|---|---|---|---|")
    print("\n".join(refit_rows))
    print("\nWhole pursuits:\n")
    print("| L | algorithm | new | loop | old | loop / new | old / new | supports = loop | max coef. diff |")
    print("|---|---|---|---|---|---|---|---|---|")
    print("\n".join(pursuit_rows))
    print("\nNNLS alone, cold: nnls_small on the final NOMP supports vs scipy.optimize.nnls per sample:\n")
    print("| L | k | new (batched) | loop (SciPy nnls) | old (enumeration) | loop / new | old / new |")
    print("|---|---|---|---|---|---|---|")
    print("\n".join(cold_rows))
    emit(args, json_rows)


if __name__ == "__main__":
    main()
