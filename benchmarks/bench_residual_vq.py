"""RVQ encoding: chanlab's ``ResidualVQ.quantize`` vs a per-sample loop and a dense ``torch.cdist``.

The feedback quantizer of the scalable FDD precoding paper (Sec. IV-B, eqs. 12-13): each
feature vector ``v`` ``[D]`` is quantized tier after tier, tier ``n`` picking the nearest of
``2^{B_n}`` codewords to the residual. The paper's setting is ``D``-dimensional features of
``K = 6`` users and ``N = 3`` tiers of ``B̄ = 10`` bits; by default the script encodes
60000 vectors of ``D = 128`` (6 users x 10000 drops) with codebooks fitted by the Lloyd
construction (``fit_lloyd``, on a subset, few iterations: realistic near-ties).

chanlab's ``quantize`` calls ``quant.vector.nearest_codeword`` per tier (chunked matmul
expansion, argmin, and exact re-scoring only of the rows whose best two expansion distances
are within the expansion's rounding-error bound). The references do the same work on the
same inputs:

* **topk4** (the previous chanlab search, kept here as
  :func:`nearest_codeword_topk4_reference`): the same chunked expansion, its 4 smallest
  entries per row (``topk``) re-scored with the exact ``Σ (r - q_j)²``; timed inside
  ``ResidualVQ.quantize`` (patched in), so the ratio is the speed-up of ``quantize``;
* **brute**: batched exact ``Σ (r - q_j)²`` over all codewords of the tier (chunked),
  ``argmin``, on the first ``--brute-samples`` vectors (time scaled per sample);
* **loop**: one sample at a time, ``argmin_j Σ (r - q_j)²`` over all codewords of the tier,
  on the first ``--ref-samples`` vectors (time scaled per sample to the batch);
* **dense**: per tier, ``torch.cdist(r, Q_n).argmin(1)`` over the whole batch at once (no
  chunking; a ``[batch, 2^{B_n}]`` distance matrix).

chanlab's indices must equal the brute-force ones (the script says so if not); it also prints,
per tier, the share of rows that the new search re-scores exactly.

Index agreement is reported per reference; where the indices differ, the first differing
tier is re-scored in float64 to show which choice is nearer (a float32 ``cdist`` through its
matmul expansion can miss the true nearest codeword on near-ties).
"""

from __future__ import annotations

import argparse
import time
from unittest import mock

import torch
from _report import emit, parse_args, row
from _timing import best_time

SMALL = {"n": 6000, "dim": 32, "bits": [8, 8, 8], "ref_samples": 100, "brute_samples": 1000,
         "fit_samples": 2048, "repeat": 3}


def nearest_codeword_topk4_reference(v: torch.Tensor, w: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The previous ``quant.vector.nearest_codeword`` (revision d424b91), verbatim in effect:
    chunked expansion ``||w||² - 2 v·w``, its ``min(K, 4)`` smallest entries (``topk``)
    re-scored with the exact ``Σ (v - w)²``, ties to the smaller index."""
    with torch.no_grad():
        v = v.detach()
        w = w.detach().to(v.dtype)
        n, k = v.shape[0], w.shape[0]
        idx = torch.empty(n, dtype=torch.int64, device=v.device)
        dist = torch.empty(n, dtype=v.dtype, device=v.device)
        w_sq = (w * w).sum(1)
        c = min(k, 4)
        rows = max(1, (1 << 20) // max(k, 1))                 # [chunk, K] blocks of 2^20 entries
        for lo in range(0, n, rows):
            vc = v[lo:lo + rows]
            approx = torch.addmm(w_sq[None, :], vc, w.T, alpha=-2)
            cand = approx.topk(c, dim=1, largest=False).indices
            exact = ((vc[:, None, :] - w[cand]) ** 2).sum(2)
            best = exact.min(1, keepdim=True).values
            pick = torch.where(exact == best, cand, torch.full_like(cand, k)).min(1).values
            idx[lo:lo + vc.shape[0]] = pick
            dist[lo:lo + vc.shape[0]] = best[:, 0]
        return idx, dist


def brute_reference(v: torch.Tensor, codebooks: list[torch.Tensor]) -> torch.Tensor:
    """``[n, N]`` indices: per tier, exact ``Σ (r - q_j)²`` to every codeword (chunks of
    ``2^22`` entries), ``argmin`` (first minimum on ties)."""
    r = v.clone()
    idx = []
    for w in codebooks:
        rows = max(1, (1 << 22) // (w.shape[0] * w.shape[1]))
        i = torch.cat([((r[lo:lo + rows, None, :] - w[None]) ** 2).sum(2).argmin(1)
                       for lo in range(0, r.shape[0], rows)])
        idx.append(i)
        r = r - w[i]
    return torch.stack(idx, 1)


def rescored_share(v: torch.Tensor, codebooks: list[torch.Tensor]) -> list[float]:
    """Per tier, the share of rows whose best two expansion distances are within the bound of
    ``nearest_codeword`` (the rows it re-scores exactly), on chanlab's residuals."""
    from chanlab.quant.vector import _margin_coef, nearest_codeword

    r = v.clone()
    out = []
    for w in codebooks:
        coef = _margin_coef(w.shape[1], r.dtype, r.device)
        w_sq = (w * w).sum(1)
        amb = 0
        for lo in range(0, r.shape[0], 4096):
            rc = r[lo:lo + 4096]
            a = torch.addmm(w_sq[None, :], rc, w.T, alpha=-2)
            two = a.topk(min(2, w.shape[0]), dim=1, largest=False).values
            thr = two[:, 0] + 2 * coef * ((rc * rc).sum(1) + w_sq.max())
            amb += int((two[:, -1] <= thr).sum()) if w.shape[0] > 1 else 0
        out.append(amb / max(r.shape[0], 1))
        r = r - w[nearest_codeword(r, w)[0]]
    return out


def alternating_best(fns: dict, repeat: int) -> dict:
    """Best wall time of each function over ``repeat`` rounds, the functions taking turns in
    each round (after one warm-up call each), so that load from other jobs hits all alike."""
    sync = torch.cuda.synchronize if torch.cuda.is_available() else (lambda: None)
    for fn in fns.values():
        fn()
    best = {name: float("inf") for name in fns}
    for _ in range(repeat):
        for name, fn in fns.items():
            sync()
            t0 = time.perf_counter()
            fn()
            sync()
            best[name] = min(best[name], time.perf_counter() - t0)
    return best


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
    return _compare(ours, ref, v, codebooks)[0]


def reference_nearer(ours: torch.Tensor, ref: torch.Tensor, v: torch.Tensor, codebooks: list[torch.Tensor]) -> int:
    """Rows where the reference's codeword is nearer (float64, beyond a 1e-6 tie) at the first differing tier."""
    return _compare(ours, ref, v, codebooks)[1]


def _compare(ours, ref, v, codebooks) -> tuple[str, int]:
    diff = (ours != ref).any(1)
    n_diff = int(diff.sum())
    text = f"identical {ours.shape[0] - n_diff}/{ours.shape[0]}"
    if not n_diff:
        return text, 0
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
            f"tie within 1e-6 {ties}, reference nearer {ref_nearer}"), ref_nearer


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=60000, help="vectors to encode (users x drops)")
    parser.add_argument("--dim", type=int, default=128, help="D, the feature dimension")
    parser.add_argument("--bits", type=int, nargs="+", default=[10, 10, 10], help="B_n per tier")
    parser.add_argument("--ref-samples", type=int, default=300, help="vectors encoded by the per-sample loop")
    parser.add_argument("--brute-samples", type=int, default=2000, help="vectors encoded by the batched brute force")
    parser.add_argument("--fit-samples", type=int, default=8192, help="vectors for the Lloyd codebooks")
    parser.add_argument("--fit-iters", type=int, default=5, help="Lloyd iterations per tier")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1, help="torch threads")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--seed", type=int, default=0)
    args = parse_args(parser, SMALL)

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

    from chanlab.quant import residual_vq

    def quantize_topk4():
        with mock.patch.object(residual_vq, "nearest_codeword", nearest_codeword_topk4_reference):
            return rvq.quantize(v)

    with torch.no_grad():
        ours = rvq.quantize(v)[1]
        old = quantize_topk4()[1]
        dense = dense_reference(v, codebooks)
        t = alternating_best({"ours": lambda: rvq.quantize(v), "topk4": quantize_topk4,
                              "dense": lambda: dense_reference(v, codebooks)}, args.repeat)
        t_ours, t_old, t_dense = t["ours"], t["topk4"], t["dense"]
        mb = min(args.brute_samples, args.n)
        brute = brute_reference(v[:mb], codebooks)
        t_brute = best_time(lambda: brute_reference(v[:mb], codebooks), 1) * args.n / mb
        m = min(args.ref_samples, args.n)
        v_cpu, cb_cpu = v[:m].cpu(), [w.cpu() for w in codebooks]
        loop = loop_reference(v_cpu, cb_cpu)
        t_loop = best_time(lambda: loop_reference(v_cpu, cb_cpu), 1) * args.n / m
        share = rescored_share(v, codebooks)

    n_codes = sum(1 << b for b in args.bits)
    print(f"RVQ encode: n = {args.n} vectors, D = {args.dim}, tiers {args.bits} ({n_codes} codewords, "
          f"{sum(args.bits)} bits); Lloyd codebooks ({args.fit_iters} iterations on "
          f"{min(args.n, max(args.fit_samples, 1 << max(args.bits)))} vectors); device {args.device}, "
          f"torch threads {torch.get_num_threads()}, best of {args.repeat} (alternating rounds)")
    print(f"  chanlab ResidualVQ.quantize   {t_ours * 1e3:9.1f} ms   {t_ours / args.n * 1e6:8.2f} us/vector"
          f"   rows re-scored exactly per tier: {', '.join(f'{100 * x:.2f} %' for x in share)}")
    print(f"  quantize with topk(4) search  {t_old * 1e3:9.1f} ms   {t_old / args.n * 1e6:8.2f} us/vector"
          f"   ratio {t_old / t_ours:6.2f}x")
    print(f"  brute force (scaled)          {t_brute * 1e3:9.1f} ms   {t_brute / args.n * 1e6:8.2f} us/vector"
          f"   ratio {t_brute / t_ours:6.2f}x   (measured on {mb} vectors)")
    print(f"  dense cdist + argmin per tier {t_dense * 1e3:9.1f} ms   {t_dense / args.n * 1e6:8.2f} us/vector"
          f"   ratio {t_dense / t_ours:6.2f}x")
    print(f"  per-sample loop (scaled)      {t_loop * 1e3:9.1f} ms   {t_loop / args.n * 1e6:8.2f} us/vector"
          f"   ratio {t_loop / t_ours:6.1f}x   (measured on {m} vectors)")
    print(f"  vs brute: {compare(ours[:mb], brute, v[:mb], codebooks)}")
    print(f"  vs topk4: {compare(ours, old, v, codebooks)}")
    print(f"  vs dense: {compare(ours, dense, v, codebooks)}")
    print(f"  vs loop:  {compare(ours[:m].cpu(), loop, v_cpu, cb_cpu)}")

    size = f"{args.n} x {args.dim}, bits {'/'.join(map(str, args.bits))}"
    agree = {"brute": bool(torch.equal(ours[:mb].cpu(), brute.cpu())), "topk4": bool(torch.equal(ours, old)),
             # cdist's own matmul expansion may miss float32 near-ties: fine unless it is nearer.
             "dense": reference_nearer(ours, dense, v, codebooks) == 0,
             "loop": bool(torch.equal(ours[:m].cpu(), loop))}
    emit(args, [
        row(f"ResidualVQ.quantize, {size}", "same with the previous topk(4) + re-score search", t_old / t_ours,
            ok=agree["topk4"], check=f"indices: {compare(ours, old, v, codebooks)}; "
                                     f"re-scored rows {', '.join(f'{100 * x:.2f} %' for x in share)}"),
        row(f"ResidualVQ.quantize, {size}", f"batched exact brute force ({mb} vectors, scaled)", t_brute / t_ours,
            ok=agree["brute"], check=f"indices: {compare(ours[:mb], brute, v[:mb], codebooks)}"),
        row(f"ResidualVQ.quantize, {size}", "dense torch.cdist + argmin per tier", t_dense / t_ours,
            ok=agree["dense"], check=f"indices: {compare(ours, dense, v, codebooks)}"),
        row(f"ResidualVQ.quantize, {size}", f"per-sample loop ({m} vectors, scaled)", t_loop / t_ours,
            ok=agree["loop"], check=f"indices: {compare(ours[:m].cpu(), loop, v_cpu, cb_cpu)}"),
    ])

if __name__ == "__main__":
    main()
