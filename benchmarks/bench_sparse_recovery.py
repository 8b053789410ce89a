"""Batched NOMP / WNOMP (CAPS estimation from beam RSRP) vs a per-sample NumPy/SciPy loop.

The dictionary is beam-pattern-like: ``M = 32`` DFT beams (8 horizontal x 4 vertical) of a
half-wavelength UPA, with a 3GPP-style element pattern (12 (angle / 65°)² dB, at most
30 dB). Their power gains are evaluated on an azimuth x elevation grid of ``N`` angles
(6552 = 72 x 91 by default). So ``A ∈ R^{32×N}_{≥0}`` is smooth in the angle, its neighbouring
columns are highly coherent, and its column norms span decades. Each sample's CAPS is
``L``-sparse, with powers uniform in dB over 20 dB. The RSRP is ``y = A x``, times a positive
0.1 dB log-normal jitter.

The reference is the straightforward loop: one sample at a time, correlations in NumPy and
``scipy.optimize.nnls`` refits on the support (WNOMP: on ``diag(1/y) A``, ``diag(1/y) y``).
It runs on the first ``--ref-samples`` samples, and its time is scaled per sample to the
whole batch (both sides: best of ``--repeat`` after a warm-up). Both must select the same supports; the script reports the fraction of samples
with identical supports and the largest coefficient difference.
"""

from __future__ import annotations

import argparse

import numpy as np
import torch
from _report import emit, parse_args, row
from _timing import best_time

from chanlab.classical.sparse_recovery import nomp_reference_loop

SMALL = {"n": 1656, "batch": 400, "ref_samples": 50, "repeat": 2}


def _grid(n: int) -> tuple[int, int]:
    """``n = n_az * n_el`` with ``n_el`` the largest divisor ``<= sqrt(n)`` (72 x 91 for 6552)."""
    n_el = max(d for d in range(1, int(n ** 0.5) + 1) if n % d == 0)
    return n // n_el, n_el


def beam_patterns(n: int, n_h: int = 8, n_v: int = 4) -> np.ndarray:
    """``[n_h * n_v, n]`` power gains of a DFT codebook on an azimuth x elevation grid."""
    n_az, n_el = _grid(n)
    az = np.deg2rad(np.linspace(-80.0, 80.0, n_az))
    el = np.deg2rad(np.linspace(-45.0, 45.0, n_el)) if n_el > 1 else np.zeros(1)
    az, el = (g.ravel() for g in np.meshgrid(az, el, indexing="ij"))
    u, v = np.sin(az) * np.cos(el), np.sin(el)  # direction cosines seen by the array

    def dirichlet(x, count):  # |array factor|² of `count` elements, normalized to 1 at x = 0
        p = np.arange(count)
        return np.abs(np.exp(1j * np.pi * np.outer(x, p)).sum(-1)) ** 2 / count ** 2

    beams_u = -1 + (2 * np.arange(n_h) + 1) / n_h
    beams_v = -1 + (2 * np.arange(n_v) + 1) / n_v
    gh = np.stack([dirichlet(u - b, n_h) for b in beams_u])  # [n_h, N]
    gv = np.stack([dirichlet(v - b, n_v) for b in beams_v])  # [n_v, N]
    off = np.rad2deg(np.arccos(np.clip(np.cos(az) * np.cos(el), -1, 1)))
    element_db = -np.minimum(12 * (off / 65.0) ** 2, 30.0)
    a = (gh[:, None, :] * gv[None, :, :]).reshape(n_h * n_v, -1) * 10 ** (element_db / 10)
    return a * n_h * n_v  # array gain: peak ~ M


def caps_batch(batch: int, n: int, sparsity: int, rng) -> np.ndarray:
    x = np.zeros((batch, n))
    for b in range(batch):
        x[b, rng.choice(n, sparsity, replace=False)] = 10 ** rng.uniform(-2, 0, sparsity)
    return x


def reference_nomp(a: np.ndarray, y: np.ndarray, sparsity: int, weighted: bool) -> np.ndarray:
    """One sample at a time (:func:`~chanlab.classical.sparse_recovery.nomp_reference_loop`)."""
    rtol = np.finfo(y.dtype).eps ** 0.5
    out = np.zeros((len(y), a.shape[1]))
    for b, yb in enumerate(y):
        w = 1.0 / np.maximum(yb, 1e-9 * yb.max()) if weighted else None
        out[b] = nomp_reference_loop(a, yb, sparsity, w, rtol=rtol)[0]
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=6552, help="angles N (azimuth x elevation grid)")
    parser.add_argument("--batch", type=int, default=2000, help="samples per batched call")
    parser.add_argument("--sparsity", type=int, default=5, help="L, nonzeros of the true CAPS and of the estimate")
    parser.add_argument("--jitter-db", type=float, default=0.1, help="std of the log-normal RSRP jitter (dB)")
    parser.add_argument("--ref-samples", type=int, default=200, help="samples run by the per-sample loop")
    parser.add_argument("--dtype", choices=("float64", "float32"), default="float64")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1, help="torch threads")
    parser.add_argument("--seed", type=int, default=0)
    args = parse_args(parser, SMALL)

    from chanlab.classical.sparse_recovery import nomp, wnomp

    torch.set_num_threads(args.threads)
    rng = np.random.default_rng(args.seed)
    a = beam_patterns(args.n)
    x = caps_batch(args.batch, args.n, args.sparsity, rng)
    y = (x @ a.T) * 10 ** (args.jitter_db * rng.standard_normal((args.batch, a.shape[0])) / 10)
    dtype = getattr(torch, args.dtype)
    a_t = torch.from_numpy(a).to(args.device, dtype)
    y_t = torch.from_numpy(y).to(args.device, dtype)
    norms = np.linalg.norm(a, axis=0)
    an = a / norms
    neighbour = (an[:, :-1] * an[:, 1:]).sum(0)
    n_az, n_el = _grid(args.n)
    print(f"A: [{a.shape[0]}, {a.shape[1]}] DFT beam patterns on {n_az} az x {n_el} el; column norms "
          f"{norms.min():.2e} .. {norms.max():.2e}; median coherence of neighbouring columns "
          f"{np.median(neighbour):.4f}")
    print(f"batch {args.batch}, L = {args.sparsity}, jitter {args.jitter_db} dB, {args.dtype} on {args.device}, "
          f"torch threads {torch.get_num_threads()}, best of {args.repeat}; reference on {args.ref_samples} samples")

    k = min(args.ref_samples, args.batch)
    json_rows = []
    for name, fn, weighted in (("nomp", nomp, False), ("wnomp", wnomp, True)):
        x_hat = fn(a_t, y_t, args.sparsity).double().cpu().numpy()
        t_batched = best_time(lambda: fn(a_t, y_t, args.sparsity), args.repeat)
        x_ref = reference_nomp(a, y[:k], args.sparsity, weighted)
        t_ref = best_time(lambda: reference_nomp(a, y[:k], args.sparsity, weighted), args.repeat) / k
        same = ((x_hat[:k] != 0) == (x_ref != 0)).all(-1)
        diff = np.abs(x_hat[:k] - x_ref)[same].max(initial=0.0) / np.abs(x_ref).max()
        nnz = (x_hat != 0).sum(-1)
        fit = x_hat @ a.T
        rel = np.linalg.norm(y - fit, axis=-1) / np.linalg.norm(y, axis=-1)
        mae_db = np.abs(10 * np.log10(np.maximum(fit, 1e-30) / y)).mean()
        print(f"\n{name}: batched {t_batched * 1e3:8.1f} ms = {t_batched / args.batch * 1e6:7.1f} us/sample; "
              f"loop {t_ref * 1e6:8.1f} us/sample; speed-up {t_ref * args.batch / t_batched:6.1f}x")
        print(f"  identical supports      {same.mean():.4f} of {k} samples; max coefficient difference "
              f"{diff:.1e} (relative to max |x|)")
        print(f"  fit                      nonzeros per sample {nnz.mean():.2f}; relative residual median "
              f"{np.median(rel):.2e}; RSRP MAE {mae_db:.3f} dB")
        json_rows.append(row(f"{name} (batch {args.batch}, N = {args.n}, L = {args.sparsity}, {args.dtype})",
                             f"per-sample loop, NumPy + scipy nnls ({k} samples, scaled)",
                             t_ref * args.batch / t_batched, ok=bool(same.all()),
                             check=f"identical supports {same.mean():.3f}, max coef. diff {diff:.1e}"))
    emit(args, json_rows)


if __name__ == "__main__":
    main()
