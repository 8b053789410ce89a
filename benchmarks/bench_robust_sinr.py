"""Worst-case SINR bound (Eq. 9): chanlab's batched exact solver vs the paper's LMIs in CVXPY.

Both compute, for every user of a cell-free drop, the worst-case signal ``alpha*`` of C4-bar
(Eq. 15), the worst-case interference-plus-noise ``beta*`` of C5-bar (Eq. 18) and
``gamma* = alpha* / beta*`` (problem 31 for fixed beamformers).

* chanlab uses a closed form for the signal and solves the interference trust-region problem in
  the ``(I-1)``-dimensional eigenspace (secular equation). It handles the whole batch at once.
* The reference solves two SDPs per sample and user with CVXPY. ``--lmi full`` uses the literal
  LMIs (size ``1 + (I-1) + QM`` for Eq. 18). The default ``--lmi reduced`` uses the exactly
  equivalent LMIs after the congruence reduction to ``range(V_{-i})`` (size ``1 + 2(I-1)``).

The drops come from ``generate_cellfree`` (Q APs x M antennas, I users, error level eta). The
beamformers are regularized ZF with total power ``Q * P_max``. The reference is slow, so it runs
on the first ``--cvxpy-samples`` drops and ``--cvxpy-users`` users only. Speeds are compared per
(sample, user).
"""

from __future__ import annotations

import argparse
import time
import warnings

import torch
from _report import emit, parse_args, row
from _timing import best_time

SMALL = {"batch": 16, "cvxpy_samples": 1, "cvxpy_users": 2, "repeat": 3}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--n-aps", type=int, default=16)
    parser.add_argument("--n-ant", type=int, default=4)
    parser.add_argument("--n-users", type=int, default=16)
    parser.add_argument("--error-level", type=float, default=0.1)
    parser.add_argument("--snr-db", type=float, default=10.0)
    parser.add_argument("--cvxpy-samples", type=int, default=2)
    parser.add_argument("--cvxpy-users", type=int, default=None, help="default: all users")
    parser.add_argument("--lmi", choices=("reduced", "full"), default="reduced")
    parser.add_argument("--solver", default=None, help="CVXPY solver (default CLARABEL, else SCS)")
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--device", default="cpu")
    args = parse_args(parser, SMALL)

    from chanlab.channels.cellfree import PAPER_P_MAX, generate_cellfree, noise_power_for_snr
    from chanlab.classical.linear_precoding import rzf
    from chanlab.classical.robust_sinr import worst_case_sinr_cvxpy, worst_case_terms
    from chanlab.metrics.rates import flatten_cellfree

    drop = generate_cellfree(args.batch, n_aps=args.n_aps, n_ant=args.n_ant, n_users=args.n_users,
                             error_level=args.error_level, seed=0, device=args.device,
                             dtype=torch.complex128)
    noise = noise_power_for_snr(args.snr_db)
    power = args.n_aps * PAPER_P_MAX
    v = rzf(flatten_cellfree(drop.h_hat), power, regularization=args.n_users * noise / power)

    def ours() -> torch.Tensor:
        return worst_case_terms(drop.h_hat, v, drop.eps, noise).sinr

    terms = worst_case_terms(drop.h_hat, v, drop.eps, noise)
    t_ours = best_time(ours, args.repeat)

    n_s = min(args.cvxpy_samples, args.batch)
    n_u = args.n_users if args.cvxpy_users is None else min(args.cvxpy_users, args.n_users)
    users = list(range(n_u))
    kw = dict(solver=args.solver, reduce=args.lmi == "reduced", users=users)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "solution may be inaccurate" at tight tolerances
        # warm-up on a tiny instance (imports, first canonicalisation)
        tiny = torch.randn(1, 2, 3, dtype=torch.complex128)
        worst_case_sinr_cvxpy(tiny, tiny.mT.clone(), 0.1, 1.0, **(kw | {"users": [0]}))
        t0 = time.perf_counter()
        ref = worst_case_sinr_cvxpy(drop.h_hat[:n_s], v[:n_s], drop.eps[:n_s], noise, **kw)
        t_ref = time.perf_counter() - t0

    def rel(a: torch.Tensor, b: torch.Tensor) -> float:
        a, b = a[:n_s, :n_u].cpu().double(), b[:n_s, :n_u].double()
        return float(((a - b).abs() / b.abs().clamp_min(1e-300)).max())

    statuses = sorted({s for row in ref.status for s in row if s != "skipped"})
    per_ours = t_ours / (args.batch * args.n_users)
    per_ref = t_ref / (n_s * n_u)
    print(f"Q={args.n_aps} APs x M={args.n_ant} antennas (N={args.n_aps * args.n_ant}), "
          f"I={args.n_users} users, eta={args.error_level}, SNR {args.snr_db} dB, "
          f"device {args.device}, torch threads {torch.get_num_threads()}")
    print(f"chanlab: batch of {args.batch} drops; CVXPY ({args.lmi} LMIs, "
          f"{args.solver or 'default solver'}): {n_s} drops x {n_u} users; statuses {statuses}")
    print(f"max relative difference  sinr {rel(terms.sinr, ref.sinr):.2e}  "
          f"signal {rel(terms.signal, ref.signal):.2e}  "
          f"interference {rel(terms.interference, ref.interference):.2e}")
    print(f"chanlab worst_case_terms {t_ours * 1e3:10.2f} ms per batch   "
          f"{per_ours * 1e6:12.2f} us per (drop, user)")
    print(f"cvxpy paper LMIs         {t_ref * 1e3:10.2f} ms total       "
          f"{per_ref * 1e6:12.2f} us per (drop, user)")
    print(f"speed-up                 {per_ref / per_ours:10.0f}x")
    err = rel(terms.sinr, ref.sinr)
    emit(args, [row(f"robust_sinr.worst_case_terms per (drop, user) (batch {args.batch}, I = {args.n_users})",
                    f"paper's LMIs in CVXPY ({args.lmi}, {n_s} drops x {n_u} users)", per_ref / per_ours,
                    ok=err < 1e-5, check=f"max relative SINR difference {err:.1e}; statuses {', '.join(statuses)}")])


if __name__ == "__main__":
    main()
