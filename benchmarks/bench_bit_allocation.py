"""One bit-allocation pass: chanlab's exact 1-D k-means (ckwrap) vs a per-output scikit-learn loop.

The first iteration of the CSI-feedback paper's bit allocation (Sec. III-A, eqs. 2-3, the
complexity part P2) fits, for every encoder output, the codebooks of ``B - 1``, ``B`` and
``B + 1`` bits by k-means on the output's samples. chanlab does it with
``allocate_bits(z, M * B, max_iter=0)``: columns sorted once, Ckmeans.1d.dp (exact, through
``ckwrap``) per (output, bits). The reference is the straightforward loop: one
``sklearn.cluster.KMeans`` (k-means++ start, Lloyd iterations, ``--n-init`` restarts) per
(output, bits) on the same samples.

The samples are synthetic encoder outputs with very different dynamic ranges (the paper's
Fig. 2): Gaussian, Laplace and two-component mixtures with standard deviations log-uniform
in ``[0.1, 10]``. The script prints both times, the speed ratio and the relative difference
of the losses ``l_[b]`` (scikit-learn minus chanlab, over chanlab; exact k-means can only be
lower). It also times the whole allocation (all moves until the loss stops decreasing).
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch
from _report import emit, parse_args, row
from _timing import best_time

SMALL = {"n": 2000, "outputs": 16, "bits": 3}


def _samples(n: int, m: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    std = np.exp(rng.uniform(np.log(0.1), np.log(10.0), size=m))
    kind = np.arange(m) % 3
    z = np.where(kind == 0, rng.normal(size=(n, m)),
                 np.where(kind == 1, rng.laplace(size=(n, m)) / np.sqrt(2),
                          rng.normal(size=(n, m)) * 0.5 + np.sign(rng.normal(size=(n, m))) * 0.87))
    return (z * std).astype(np.float32)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=20000, help="samples per output")
    parser.add_argument("--outputs", type=int, default=128, help="M encoder outputs")
    parser.add_argument("--bits", type=int, default=4, help="B, the average bits per output")
    parser.add_argument("--ref-outputs", type=int, default=None,
                        help="run scikit-learn on the first this many outputs only (time scaled to M)")
    parser.add_argument("--n-init", type=int, default=1, help="scikit-learn KMeans restarts")
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--threads", type=int, default=1, help="torch / OpenMP threads")
    parser.add_argument("--seed", type=int, default=0)
    args = parse_args(parser, SMALL)

    from sklearn.cluster import KMeans
    from threadpoolctl import threadpool_limits

    from chanlab.quant.scalar_codebooks import allocate_bits, lloyd_max

    torch.set_num_threads(args.threads)
    n, m, b = args.n, args.outputs, args.bits
    m_ref = min(m, args.ref_outputs or m)
    z = torch.from_numpy(_samples(n, m, args.seed))
    levels = [x for x in (b - 1, b, b + 1) if x >= 0]

    def ours():
        return allocate_bits(z, m * b, max_bits=b + 1, max_iter=0)

    first = ours()
    # max_iter=0 fits exactly B-1, B, B+1 for every output and makes no move.
    assert first.n_fits == m * len(levels) and not first.moves
    t_ours = best_time(ours, args.repeat)

    cols = z.numpy().astype(np.float64)
    ref_losses: dict[tuple[int, int], float] = {}

    def reference():
        with threadpool_limits(args.threads):
            for j in range(m_ref):
                x = cols[:, j:j + 1]
                for lvl in levels:
                    km = KMeans(1 << lvl, n_init=args.n_init, random_state=args.seed).fit(x)
                    ref_losses[(j, lvl)] = km.inertia_ / n

    t_ref = best_time(reference, args.repeat) * m / m_ref

    # chanlab's losses at B - 1, B, B + 1 (the same exact fits the allocation pass made).
    ours_losses = {(j, lvl): float(v) for lvl in levels
                   for j, v in enumerate(lloyd_max(z[:, :m_ref], torch.full((m_ref,), lvl))[1].tolist())}
    rel = np.array([(ref_losses[k] - ours_losses[k]) / ours_losses[k] for k in ours_losses])

    t0 = time.perf_counter()
    full = allocate_bits(z, m * b)
    t_full = time.perf_counter() - t0

    print(f"samples n = {n}, outputs M = {m}, B = {b} bits (levels {levels}), "
          f"{m * len(levels)} k-means problems; threads {args.threads}, best of {args.repeat}")
    print(f"  chanlab (ckwrap, exact)      {t_ours:8.2f} s   {t_ours / (m * len(levels)) * 1e3:7.2f} ms per fit")
    print(f"  scikit-learn KMeans loop     {t_ref:8.2f} s   {t_ref / (m * len(levels)) * 1e3:7.2f} ms per fit"
          f"  (n_init {args.n_init}; measured on {m_ref} outputs{', scaled' if m_ref < m else ''})")
    print(f"  speed-up                     {t_ref / t_ours:8.1f}x")
    print(f"  loss rel. difference (sklearn - chanlab) / chanlab over {rel.size} fits: "
          f"min {rel.min():+.2e}, median {np.median(rel):+.2e}, max {rel.max():+.2e}")
    print(f"  full allocation: {len(full.moves)} moves, {full.n_fits} k-means fits, {t_full:.2f} s; "
          f"loss {full.history[0]:.5g} -> {full.loss:.5g} "
          f"({100 * (1 - full.loss / full.history[0]):.1f} % lower); bits used {sorted(set(full.bits.tolist()))}")
    emit(args, [row(f"allocate_bits(max_iter=0): {m * len(levels)} exact 1-D k-means fits (n = {n}, M = {m}, "
                    f"B = {b})", f"scikit-learn KMeans(n_init={args.n_init}) loop"
                    + (f" ({m_ref} outputs, scaled)" if m_ref < m else ""), t_ref / t_ours,
                    ok=bool(rel.min() >= -1e-9),
                    check=f"sklearn loss excess over the exact optimum: min {rel.min():+.1e}, "
                          f"median {np.median(rel):+.1e}, max {rel.max():+.1e}")])


if __name__ == "__main__":
    main()
