"""Range coding of learned-prior latents: chanlab's vectorized coder vs a per-symbol Python loop.

A :class:`~chanlab.quant.factorized_prior.FactorizedPrior` is trained briefly on Gaussian
latents shaped like the CSI compressor's (``[B, 2, 16, 16]`` and ``[B, 2, 64, 32]``). For each
shape the script times ``compress`` / ``decompress`` (one constriction call per stream,
vectorized over the stream's symbols, tables built once outside the timing) and reports

* throughput in MB/s of latents (the float32 bytes of the latent tensor) and symbols/s,
* the gap between the real stream size and the entropy estimate (``bits`` of the eval-mode
  likelihoods / 8): what the 2-byte CRC header, the coder's termination and the 24-bit
  quantization of the probabilities cost per stream.

The reference is the same range coder driven the straightforward way: a Python loop that
builds one concrete ``Categorical`` per symbol and encodes it (escapes as two ``Uniform``
symbols, as in the stream format), on the first few streams (``--ref-symbols``). Both must
write identical words; the speed ratio is what the vectorized call saves.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch
from _priors import fit_prior, gaussian_latents
from _report import emit, parse_args, row
from _timing import best_time

SMALL = {"batch": 32, "train_steps": 60, "ref_symbols": 4000, "repeat": 2}


def _reference_encode(values: np.ndarray, channel: np.ndarray, tables) -> bytes:
    """One stream, one concrete model per symbol (the payload of the stream format)."""
    import constriction

    from chanlab.quant.range_coding import _HALF, _INT32_OFFSET

    probs = tables.pmf.astype(np.float32)
    idx, escaped = tables._indices(values[None, :], channel)
    encoder = constriction.stream.queue.RangeEncoder()
    for symbol, c in zip(idx[0], channel):
        encoder.encode(int(symbol), constriction.stream.model.Categorical(probs[c], perfect=False))
    uniform = constriction.stream.model.Uniform(_HALF)
    for v in values[escaped[0]]:
        shifted = int(v) + _INT32_OFFSET
        encoder.encode(shifted >> 16, uniform)
        encoder.encode(shifted & (_HALF - 1), uniform)
    return encoder.get_compressed().astype("<u4").tobytes()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--batch", type=int, default=256, help="latents (streams) per timed call")
    parser.add_argument("--std", type=float, nargs=2, default=(1.0, 4.0), help="std of the 2 latent channels")
    parser.add_argument("--train-steps", type=int, default=300)
    parser.add_argument("--train-batch", type=int, default=16)
    parser.add_argument("--ref-symbols", type=int, default=20000, help="symbols coded by the per-symbol loop")
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--threads", type=int, default=1, help="torch threads (training, estimate)")
    parser.add_argument("--seed", type=int, default=0)
    args = parse_args(parser, SMALL)

    from chanlab.quant.factorized_prior import FactorizedPrior
    from chanlab.quant.range_coding import HEADER_BYTES, encode_symbols

    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    shapes = [(args.batch, 2, 16, 16), (args.batch, 2, 64, 32)]
    t0 = time.perf_counter()
    prior = fit_prior(FactorizedPrior(2), shapes, args.std, args.train_steps, args.train_batch)
    t_train = time.perf_counter() - t0
    t_tables = best_time(prior.coding_tables, args.repeat)
    tables = prior.coding_tables()
    print(f"prior trained {args.train_steps} steps in {t_train:.1f} s on N(0, {args.std[0]}^2), "
          f"N(0, {args.std[1]}^2) latents; coding tables: width {tables.width}, built in {t_tables * 1e3:.1f} ms")
    print(f"batch {args.batch} streams per call, best of {args.repeat}, torch threads {torch.get_num_threads()}")

    gen = torch.Generator().manual_seed(args.seed + 1)
    json_rows = []
    for shape in shapes:
        y = gaussian_latents(shape, args.std, gen)
        streams = prior.compress(y, tables)
        back = prior.decompress(streams, shape[1:], tables)
        assert torch.equal(back, torch.round(y)), "round trip is not exact"
        t_enc = best_time(lambda: prior.compress(y, tables), args.repeat)
        t_dec = best_time(lambda: prior.decompress(streams, shape[1:], tables), args.repeat)
        mbytes, n_sym = y.numel() * 4 / 1e6, y.numel()
        with torch.no_grad():
            est = (FactorizedPrior.bits(prior(y)[1]).double() / 8).numpy()
        real = np.array([len(s) for s in streams], dtype=np.float64)
        gap = real - est

        # reference: whole streams, the first k with at least --ref-symbols symbols in all
        values = torch.round(y).to(torch.int64).reshape(shape[0], -1).numpy()
        channel = prior.channel_map(shape[1:])
        k = min(shape[0], -(-args.ref_symbols // values.shape[1]))
        n_ref = k * values.shape[1]

        def reference() -> list[bytes]:
            return [_reference_encode(v, channel, tables) for v in values[:k]]

        same = reference() == [s[HEADER_BYTES:] for s in streams[:k]]
        t_ref = best_time(reference, args.repeat)
        t_ours_sub = best_time(lambda: encode_symbols(values[:k], channel, tables), args.repeat)

        print(f"\nlatents {list(shape)}: {n_sym} symbols, {mbytes:.2f} MB float32, "
              f"{n_sym // shape[0]} symbols per stream")
        print(f"  encode (compress)        {t_enc * 1e3:8.1f} ms  {mbytes / t_enc:8.1f} MB/s  "
              f"{n_sym / t_enc:10.3g} symbols/s")
        print(f"  decode (decompress)      {t_dec * 1e3:8.1f} ms  {mbytes / t_dec:8.1f} MB/s  "
              f"{n_sym / t_dec:10.3g} symbols/s")
        print(f"  bytes per stream         real {real.mean():.1f}, estimate {est.mean():.1f} "
              f"({est.mean() * 8 / (n_sym // shape[0]):.3f} bits/symbol)")
        print(f"  real - estimate          mean {gap.mean():+.2f} B ({100 * gap.mean() / est.mean():+.2f} %), "
              f"min {gap.min():+.2f} B, max {gap.max():+.2f} B (header {HEADER_BYTES} B)")
        print(f"  per-symbol loop          {k} streams, {n_ref} symbols: {t_ref * 1e3:.1f} ms = "
              f"{n_ref / t_ref:.3g} symbols/s; encode_symbols on them {t_ours_sub * 1e3:.1f} ms = "
              f"{n_ref / t_ours_sub:.3g} symbols/s")
        print(f"  speed-up                 {t_ref / t_ours_sub:8.1f}x  (identical words: {same})")
        json_rows.append(row(f"range_coding.encode_symbols, latents {list(shape)} ({k} stream{'s' * (k != 1)}, "
                             f"{n_ref} symbols)",
                             "same coder, per-symbol Python loop with a Categorical each", t_ref / t_ours_sub,
                             ok=bool(same), check=f"identical words: {same}; stream gap {gap.mean():+.2f} B"))
    emit(args, json_rows)


if __name__ == "__main__":
    main()
