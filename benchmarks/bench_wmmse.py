"""Per-AP-constrained WMMSE: chanlab's batched ``wmmse`` vs the per-sample NumPy reference loop.

Both run the same algorithm (Shi et al.'s WMMSE with the beamformer step solved by block
coordinate descent over the APs, one multiplier per AP) on the same cell-free drops from
``generate_cellfree`` (Q = 16 APs x M = 4 antennas, I = 16 users by default), from the same
initialisation and for the same number of iterations. chanlab batches every step over the
drops and users and finds the multipliers by a batched safeguarded Newton search.
``wmmse_reference_loop`` loops over the drops in Python, forms the full ``QM x QM`` matrix and
calls ``scipy.optimize.brentq`` for each multiplier. With ``--group-penalty > 0``, both run
S-WMMSE instead.
"""

from __future__ import annotations

import argparse

import torch
from _report import emit, parse_args, row
from _timing import best_time

SMALL = {"batch": 8, "n_iter": 10, "repeat": 2}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--n-aps", type=int, default=16)
    parser.add_argument("--n-ant", type=int, default=4)
    parser.add_argument("--n-users", type=int, default=16)
    parser.add_argument("--n-iter", type=int, default=20)
    parser.add_argument("--snr-db", type=float, default=10.0)
    parser.add_argument("--group-penalty", type=float, default=0.0,
                        help="> 0 benchmarks S-WMMSE with this penalty instead of WMMSE")
    parser.add_argument("--dtype", choices=("complex64", "complex128"), default="complex128",
                        help="dtype of chanlab's run (the reference always uses complex128)")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0 keeps the default)")
    parser.add_argument("--device", default="cpu")
    args = parse_args(parser, SMALL)

    from chanlab.channels.cellfree import generate_cellfree, noise_power_for_snr
    from chanlab.classical.wmmse import average_serving_aps, sparse_wmmse, wmmse, wmmse_reference_loop
    from chanlab.metrics.rates import sum_rate

    if args.threads:
        torch.set_num_threads(args.threads)
    dtype = getattr(torch, args.dtype)
    drop = generate_cellfree(args.batch, n_aps=args.n_aps, n_ant=args.n_ant, n_users=args.n_users,
                             seed=0, dtype=torch.complex128)
    h64 = drop.h.to(args.device)
    h = h64.to(dtype)
    sigma2 = noise_power_for_snr(args.snr_db)
    kw = dict(n_iter=args.n_iter, tol=0.0)

    def ours() -> torch.Tensor:
        if args.group_penalty > 0:
            return sparse_wmmse(h, sigma2, 1.0, group_penalty=args.group_penalty, **kw)
        return wmmse(h, sigma2, 1.0, **kw)

    def reference() -> torch.Tensor:
        return torch.from_numpy(wmmse_reference_loop(drop.h, sigma2, 1.0, group_penalty=args.group_penalty,
                                                     **kw))

    v_ours, v_ref = ours(), reference()
    rate_ours = sum_rate(h64, v_ours.to(torch.complex128), sigma2).cpu()
    rate_ref = sum_rate(drop.h, v_ref, sigma2)
    diff = (rate_ours - rate_ref).abs()
    t_ours, t_ref = best_time(ours, args.repeat), best_time(reference, args.repeat)
    algo = f"S-WMMSE (penalty {args.group_penalty})" if args.group_penalty > 0 else "WMMSE"
    print(f"{algo}: batch {args.batch} drops, Q={args.n_aps} APs x M={args.n_ant} antennas, "
          f"I={args.n_users} users, {args.n_iter} iterations, SNR {args.snr_db} dB, {args.dtype}, "
          f"device {args.device}, torch threads {torch.get_num_threads()}")
    print(f"mean sum rate            {float(rate_ours.mean()):8.3f} bit/s/Hz (reference "
          f"{float(rate_ref.mean()):.3f})")
    if args.group_penalty > 0:
        print(f"mean serving APs/user    {float(average_serving_aps(v_ours.cpu()).mean()):8.3f} "
              f"(reference {float(average_serving_aps(v_ref).mean()):.3f})")
    print(f"sum-rate difference      max {float(diff.max()):.2e}, mean {float(diff.mean()):.2e} bit/s/Hz")
    print(f"chanlab (batched)        {t_ours * 1e3:8.1f} ms")
    print(f"reference loop (NumPy)   {t_ref * 1e3:8.1f} ms")
    print(f"speed-up                 {t_ref / t_ours:8.2f}x")
    emit(args, [row(f"{'sparse_wmmse' if args.group_penalty > 0 else 'wmmse'} (batch {args.batch}, Q = {args.n_aps}, "
                    f"M = {args.n_ant}, I = {args.n_users}, {args.n_iter} iterations, {args.dtype})",
                    "wmmse_reference_loop (per sample, NumPy + brentq)", t_ref / t_ours,
                    ok=float(diff.max()) < (1e-6 if args.dtype == "complex128" else 1e-2),
                    check=f"max sum-rate difference {float(diff.max()):.1e} bit/s/Hz")])


if __name__ == "__main__":
    main()
