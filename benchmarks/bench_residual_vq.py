"""RVQ encoding: chanlab's ``ResidualVQ.quantize`` vs a per-sample loop and a dense ``torch.cdist``.

The feedback quantizer of the scalable FDD precoding paper (Sec. IV-B, eqs. 12-13): each
feature vector ``v`` ``[D]`` is quantized tier after tier, tier ``n`` picking the nearest of
``2^{B_n}`` codewords to the residual. The paper's setting is ``D``-dimensional features of
``K = 6`` users and ``N = 3`` tiers of ``B̄ = 10`` bits; by default the script encodes
60000 vectors of ``D = 128`` (6 users x 10000 drops) with codebooks fitted by the Lloyd
construction (``fit_lloyd``, on a subset, few iterations: realistic near-ties).

chanlab's ``quantize`` calls ``quant.vector.nearest_codeword`` per tier (chunked matmul
expansion, the best 4 candidates re-scored exactly). Two straightforward references do the
same work on the same inputs:

* **loop**: one sample at a time, ``argmin_j Σ (r - q_j)²`` over all codewords of the tier,
  on the first ``--ref-samples`` vectors (time scaled per sample to the batch);
* **dense**: per tier, ``torch.cdist(r, Q_n).argmin(1)`` over the whole batch at once (no
  chunking; a ``[batch, 2^{B_n}]`` distance matrix).

Index agreement is reported per reference; where the indices differ, the first differing
tier is re-scored in float64 to show which choice is nearer (a float32 ``cdist`` through its
matmul expansion can miss the true nearest codeword on near-ties).
"""

from __future__ import annotations

import argparse

import torch
from _timing import best_time


def loop_reference(v: torch.Tensor, codebooks: list[torch.Tensor]) -> torch.Tensor:
    """``[n, N]`` indices, one sample at a time (exact squared distances to every codeword)."""
    out = torch.empty(v.shape[0], len(codebooks), dtype=torch.int64)
    for s in range(v.shape[0]):
        r = v[s].clone()
        for t, w in enumerate(codebooks):
            i = int(((w - r) ** 2).sum(1).argmin())
            out[s, t] = i
            r = r - w[i]
    return out


def dense_reference(v: torch.Tensor, codebooks: list[torch.Tensor]) -> torch.Tensor:
    """``[n, N]`` indices, one dense ``torch.cdist`` + argmin per tier over the whole batch."""
    r = v.clone()
    idx = []
    for w in codebooks:
        i = torch.cdist(r, w).argmin(1)
        idx.append(i)
        r = r - w[i]
    return torch.stack(idx, 1)


def compare(ours: torch.Tensor, ref: torch.Tensor, v: torch.Tensor, codebooks: list[torch.Tensor]) -> str:
    """Agreement of two index matrices; at the first differing tier, which codeword is nearer (float64)."""
    diff = (ours != ref).any(1)
    n_diff = int(diff.sum())
    text = f"identical {ours.shape[0] - n_diff}/{ours.shape[0]}"
    if not n_diff:
        return text
    rows = torch.nonzero(diff).flatten()
    first = (ours[rows] != ref[rows]).int().argmax(1)
    w64 = [w.double().cpu() for w in codebooks]
    r = v[rows].double().cpu()
    ours_nearer = ties = ref_nearer = 0
    for k in range(rows.numel()):                     # only the few differing rows
        t = int(first[k])
        res = r[k] - sum(w64[j][int(ours[rows[k], j])] for j in range(t)) if t else r[k]
        d_o = float(((res - w64[t][int(ours[rows[k], t])]) ** 2).sum())
        d_r = float(((res - w64[t][int(ref[rows[k], t])]) ** 2).sum())
        if abs(d_o - d_r) <= 1e-6 * max(d_o, d_r):
            ties += 1
        elif d_o < d_r:
            ours_nearer += 1
        else:
            ref_nearer += 1
    return (f"{text}; at the first differing tier (float64): chanlab nearer {ours_nearer}, "
            f"tie within 1e-6 {ties}, reference nearer {ref_nearer}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=60000, help="vectors to encode (users x drops)")
    parser.add_argument("--dim", type=int, default=128, help="D, the feature dimension")
    parser.add_argument("--bits", type=int, nargs="+", default=[10, 10, 10], help="B_n per tier")
    parser.add_argument("--ref-samples", type=int, default=300, help="vectors encoded by the per-sample loop")
    parser.add_argument("--fit-samples", type=int, default=8192, help="vectors for the Lloyd codebooks")
    parser.add_argument("--fit-iters", type=int, default=5, help="Lloyd iterations per tier")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1, help="torch threads")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    from chanlab.quant.residual_vq import ResidualVQ

    torch.set_num_threads(args.threads)
    gen = torch.Generator().manual_seed(args.seed)
    # Features with a decaying spectrum (as an encoder's outputs), float32.
    scale = torch.logspace(0, -1.5, args.dim)
    v = (torch.randn(args.n, args.dim, generator=gen) * scale).to(args.device)
    rvq = ResidualVQ(args.dim, args.bits, seed=args.seed).to(args.device)
    rvq.fit_lloyd(v[:max(args.fit_samples, 1 << max(args.bits))], n_iter=args.fit_iters, seed=args.seed)
    rvq.eval()
    codebooks = [cb.detach() for cb in rvq.codebooks]

    with torch.no_grad():
        ours = rvq.quantize(v)[1]
        t_ours = best_time(lambda: rvq.quantize(v), args.repeat)
        dense = dense_reference(v, codebooks)
        t_dense = best_time(lambda: dense_reference(v, codebooks), args.repeat)
        m = min(args.ref_samples, args.n)
        v_cpu, cb_cpu = v[:m].cpu(), [w.cpu() for w in codebooks]
        loop = loop_reference(v_cpu, cb_cpu)
        t_loop = best_time(lambda: loop_reference(v_cpu, cb_cpu), 1) * args.n / m

    n_codes = sum(1 << b for b in args.bits)
    print(f"RVQ encode: n = {args.n} vectors, D = {args.dim}, tiers {args.bits} ({n_codes} codewords, "
          f"{sum(args.bits)} bits); Lloyd codebooks ({args.fit_iters} iterations on "
          f"{min(args.n, max(args.fit_samples, 1 << max(args.bits)))} vectors); device {args.device}, "
          f"torch threads {torch.get_num_threads()}, best of {args.repeat}")
    print(f"  chanlab ResidualVQ.quantize   {t_ours * 1e3:9.1f} ms   {t_ours / args.n * 1e6:8.2f} us/vector")
    print(f"  dense cdist + argmin per tier {t_dense * 1e3:9.1f} ms   {t_dense / args.n * 1e6:8.2f} us/vector"
          f"   ratio {t_dense / t_ours:6.2f}x")
    print(f"  per-sample loop (scaled)      {t_loop * 1e3:9.1f} ms   {t_loop / args.n * 1e6:8.2f} us/vector"
          f"   ratio {t_loop / t_ours:6.1f}x   (measured on {m} vectors)")
    print(f"  vs dense: {compare(ours, dense, v, codebooks)}")
    print(f"  vs loop:  {compare(ours[:m].cpu(), loop, v_cpu, cb_cpu)}")


if __name__ == "__main__":
    main()
