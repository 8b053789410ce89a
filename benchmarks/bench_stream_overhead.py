"""Stream overhead of the range-coded formats against the ideal code length ``-sum log2 p``.

A :class:`~chanlab.quant.factorized_prior.FactorizedPrior` is trained briefly on Gaussian
latents ``[B, 2, 16, 16]`` whose channel stds (0.2, 0.3 by default) make a CSI cost ~170
bits, like the paper's low-rate CSI; ``--big`` adds ``[B, 2, 64, 32]`` latents with stds
(1, 4) (~1.6 kB per CSI). For ``--n`` CSI (256) coded with the prior's tables it reports,
per CSI, the bits of

* ``per-CSI, CRC``: :func:`encode_symbols` (the default of ``CsiCodec.compress``),
* ``per-CSI, no CRC``: ``encode_symbols(..., crc=False)``,
* ``batch, CRC`` / ``batch, no CRC``: :func:`encode_batch` of all N CSI, block 16,

against the ideal ``-sum log2 p`` of the coding tables (what the paper counts, escapes at
32 bits) and the prior's float32 estimate. A second table splits the batch stream's overhead
over the block size K (index, header + CRC, and the coder's loss: segment termination plus
the 24-bit quantization of the probabilities), and the script times
encoding, decoding all CSI and random access to one CSI. With ``--codec-epochs`` > 0 it also
trains a small ``CsiCodec`` (16x16 CSI, two plane waves) and prints ``CsiCodec.stream_bits``.
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np
import torch
from _priors import fit_prior, gaussian_latents
from _report import OVERHEAD, emit, parse_args, row
from _timing import best_time

SMALL = {"n": 64, "blocks": [1, 16, 64], "train_steps": 60, "random_access": 8, "codec_epochs": 0, "repeat": 1}


def _low_rank_csi(n, n_ant=16, n_sc=16, seed=0):
    """Two wide-beam, short-delay plane waves per matrix (as the codec tests use)."""
    g = torch.Generator().manual_seed(seed)
    ant, sc = torch.arange(n_ant).float(), torch.arange(n_sc).float()
    h = torch.zeros(n, n_ant, n_sc, dtype=torch.complex64)
    for _ in range(2):
        theta = (torch.rand(n, 1, 1, generator=g) * 2 - 1) * 0.15
        tau = torch.rand(n, 1, 1, generator=g) * 0.05
        gain = torch.randn(n, 1, 1, dtype=torch.complex64, generator=g)
        h += gain * torch.exp(1j * torch.pi * (theta * ant[None, :, None] - 2 * tau * sc[None, None, :]))
    return h


def _row(name, bits, ideal):
    return f"| {name:<22} | {bits:9.1f} | {bits - ideal:+8.2f} | {100 * (bits - ideal) / ideal:+7.2f} % |"



def _report(shape, stds, args):
    from chanlab.quant.factorized_prior import FactorizedPrior
    from chanlab.quant.range_coding import (
        decode_batch,
        decode_symbols,
        encode_batch,
        encode_symbols,
        read_batch_layout,
    )

    torch.manual_seed(args.seed)
    t0 = time.perf_counter()
    prior = fit_prior(FactorizedPrior(shape[1]), [shape], stds, args.train_steps, args.train_batch)
    tables = prior.coding_tables()
    y = gaussian_latents(shape, stds, torch.Generator().manual_seed(args.seed + 1))
    values = torch.round(y).to(torch.int64).reshape(shape[0], -1).numpy()
    channel = prior.channel_map(shape[1:])
    n = shape[0]
    ideal_each = tables.bits(values, channel)
    ideal = float(ideal_each.mean())
    with torch.no_grad():
        estimate = float(FactorizedPrior.bits(prior(y)[1]).double().mean())
    print(f"\nlatents {list(shape)}, stds {tuple(stds)}: prior trained {args.train_steps} steps "
          f"({time.perf_counter() - t0:.1f} s), table width {tables.width}; {n} CSI, "
          f"{values.shape[1]} symbols each")
    print(f"-sum log2 p under the coding tables: {ideal:.2f} bits per CSI "
          f"(min {ideal_each.min():.1f}, max {ideal_each.max():.1f}); prior's estimate {estimate:.2f}")

    framed = encode_symbols(values, channel, tables)
    bare = encode_symbols(values, channel, tables, crc=False)
    batch_crc = encode_batch(values, channel, tables, block=args.block)
    batch_bare = encode_batch(values, channel, tables, block=args.block, crc=False)
    for data, crc in ((batch_crc, True), (batch_bare, False)):
        assert np.array_equal(decode_batch(data, channel, tables, crc=crc), values)
    assert np.array_equal(decode_symbols(bare, channel, tables, crc=False), values)

    print(f"\n| {f'mode (N = {n})':<22} | bits/CSI  | overhead | overhead  |")
    print("|------------------------|-----------|----------|-----------|")
    print(f"| -sum log2 p (ideal)    | {ideal:9.1f} |          |           |")
    print(_row("per-CSI, CRC", float(np.mean([8 * len(s) for s in framed])), ideal))
    print(_row("per-CSI, no CRC", float(np.mean([8 * len(s) for s in bare])), ideal))
    print(_row(f"batch K={args.block}, CRC", 8 * len(batch_crc) / n, ideal))
    print(_row(f"batch K={args.block}, no CRC", 8 * len(batch_bare) / n, ideal))
    sizes = {"per-CSI streams, CRC": float(np.mean([8 * len(s) for s in framed])),
             "per-CSI streams, no CRC": float(np.mean([8 * len(s) for s in bare])),
             f"one batch stream, K = {args.block}, CRC": 8 * len(batch_crc) / n,
             f"one batch stream, K = {args.block}, no CRC": 8 * len(batch_bare) / n}
    rows = [row(f"bits per CSI: {mode} ({n} CSI, latents {list(shape[1:])})",
                f"-sum log2 p under the coding tables ({ideal:.1f} bits)", bits / ideal, kind=OVERHEAD,
                ok=True, check=f"{bits:.1f} bits; every stream decoded back exactly") for mode, bits in sizes.items()]

    print(f"\nbatch stream with CRC by block size K, bits per CSI (N = {n}); random access decodes K CSI")
    print("| K   | total     | overhead  | index | header + CRC | coder loss  | encode  | decode all | one CSI |")
    print("|-----|-----------|-----------|-------|--------------|-------------|---------|------------|---------|")
    rng = np.random.default_rng(args.seed)
    picks = rng.integers(0, n, size=args.random_access)
    for block in args.blocks:
        data = encode_batch(values, channel, tables, block=block)
        lay = read_batch_layout(data)
        seg_bits = 8 * int(lay.lengths.sum())
        t_enc = best_time(lambda k=block: encode_batch(values, channel, tables, block=k), args.repeat)
        t_dec = best_time(lambda d=data: decode_batch(d, channel, tables), args.repeat)
        t_one = best_time(lambda d=data: [decode_batch(d, channel, tables, index=int(i)) for i in picks],
                          args.repeat) / len(picks)
        print(f"| {block:<3} | {8 * len(data) / n:9.1f} | {100 * (8 * len(data) / n - ideal) / ideal:+7.2f} % | "
              f"{8 * lay.index_bytes / n:5.2f} | {8 * (lay.header_bytes + lay.crc_bytes) / n:12.2f} | "
              f"{(seg_bits - ideal_each.sum()) / n:11.2f} | {t_enc * 1e3:5.1f} ms | {t_dec * 1e3:7.1f} ms | "
              f"{t_one * 1e3:5.2f} ms |")
    t_pc = best_time(lambda: encode_symbols(values, channel, tables), args.repeat)
    t_pd = best_time(lambda: decode_symbols(framed, channel, tables), args.repeat)
    t_bc = best_time(lambda: encode_symbols(values, channel, tables, crc=False), args.repeat)
    t_bd = best_time(lambda: decode_symbols(bare, channel, tables, crc=False), args.repeat)
    print(f"\nper-CSI streams, all {n}: CRC encode {t_pc * 1e3:.1f} ms, decode {t_pd * 1e3:.1f} ms; "
          f"no CRC encode {t_bc * 1e3:.1f} ms, decode {t_bd * 1e3:.1f} ms (decoding re-encodes to verify)")
    return rows


def _codec_report(args):
    from chanlab.adaptive_compression.codec import CsiCodec

    torch.manual_seed(args.seed)
    h = _low_rank_csi(160 + args.n, seed=args.seed)
    print(f"\nCsiCodec 16x16, {args.codec_epochs} epochs on 128 CSI (two plane waves), {args.n} test CSI, "
          f"block {args.block}: bits per CSI")
    print("| lambda | -sum log2 p | prior estimate | per-CSI CRC | per-CSI no CRC | batch CRC | batch no CRC |")
    print("|--------|-------------|----------------|-------------|----------------|-----------|--------------|")
    for lam in args.codec_lams:
        codec = CsiCodec(16, 16, lam).fit(h[:128], h[128:160], epochs=args.codec_epochs, batch_size=16, lr=3e-3,
                                          seed=args.seed, desc=f"codec lam={lam:g}")
        b = codec.stream_bits(h[160:], block=args.block)
        cells = [f"{b[k]:.1f} ({100 * (b[k] - b['ideal']) / b['ideal']:+.1f} %)"
                 for k in ("per_csi_crc", "per_csi", "batch_crc", "batch")]
        print(f"| {lam:<6g} | {b['ideal']:11.1f} | {b['entropy']:14.1f} | " + " | ".join(cells) + " |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=256, help="CSI per batch")
    parser.add_argument("--std", type=float, nargs=2, default=(0.2, 0.3), help="std of the 2 latent channels")
    parser.add_argument("--big", action="store_true", help="also [N, 2, 64, 32] latents with stds (1, 4)")
    parser.add_argument("--block", type=int, default=16, help="block size K of the batch rows in the first table")
    parser.add_argument("--blocks", type=int, nargs="+", default=[1, 2, 4, 8, 16, 32, 64, 256])
    parser.add_argument("--train-steps", type=int, default=300)
    parser.add_argument("--train-batch", type=int, default=16)
    parser.add_argument("--random-access", type=int, default=32, help="single-CSI decodes timed per K")
    parser.add_argument("--codec-epochs", type=int, default=12, help="0: skip the CsiCodec table")
    parser.add_argument("--codec-lams", type=float, nargs="+", default=[30.0, 3000.0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--seed", type=int, default=0)
    args = parse_args(parser, SMALL)
    os.environ.setdefault("CHANLAB_PROGRESS", "0")  # no training bars between the tables
    torch.set_num_threads(args.threads)
    print(f"torch threads {torch.get_num_threads()}, best of {args.repeat}")
    rows = _report((args.n, 2, 16, 16), args.std, args)
    if args.big:
        rows += _report((args.n, 2, 64, 32), (1.0, 4.0), args)
    if args.codec_epochs > 0:
        _codec_report(args)
    emit(args, rows)


if __name__ == "__main__":
    main()
