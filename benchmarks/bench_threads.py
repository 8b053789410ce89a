"""How many torch threads should `chanlab run` use? Times the quick presets' kinds of work at
1 thread and at every core, in the same run, alternating, and prints the ratios.

Workloads (each one process per timing, so thread pools start fresh):

- ``csg``: CSG-AE (PIDA) on synthetic CAPS, N = 1656 angles, 2000 samples, 20 + 10 epochs;
- ``csinet``: CsiNet 16×16, M = 128, scheme "proposed" at 2 bits, 3000 samples, 3 epochs;
- ``rd``: the rate–distortion codec at 64×64, 1200 CSI, 2 epochs;
- ``wmmse``: batched per-AP WMMSE, 256 drops of Q = 16, M = 4, I = 16, 50 iterations.

    python benchmarks/bench_threads.py                    # --repeat 3 --workloads csg,csinet,rd,wmmse

Run it on an idle machine: another job on the cores makes more threads look worse than they are.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time

from _report import RATIO, emit, parse_args, row

SMALL = {"repeat": 1, "workloads": "wmmse"}
WORKLOADS = {
    "csg": """
import torch
from chanlab.channels.lscm import LscmPanel, mw_to_dbm
from chanlab.channels.synthetic_caps import synthetic_caps
from chanlab.gridization import ChannelSpaceGridizer, CsgTraining
from chanlab.core.seeding import torch_generator
panel = LscmPanel(n_elevation=46, n_azimuth=36)
A = panel.beam_pattern()
data = synthetic_caps(n_angles=panel.n_angles, n_grids=40, samples_per_grid=50, scale=0.1,
                      generator=torch_generator(0))
rsrp = mw_to_dbm(data.rsrp_mw(A)).float()
ChannelSpaceGridizer(40, 5, A, training=CsgTraining(pretrain_epochs=20, epochs=10, batch_size=250), seed=0).fit(rsrp)
""",
    "csinet": """
import torch
from chanlab.csi_feedback import FeedbackAutoencoder, FeedbackTraining, train_feedback
from chanlab.nn.csinet import make_autoencoder
g = torch.Generator().manual_seed(0)
x = torch.rand(3500, 2, 16, 16, generator=g)
model = FeedbackAutoencoder(*make_autoencoder("csinet", 128, n_ant=16, n_delay=16))
train_feedback(model, "proposed", 2, x[:3000], x[3000:], FeedbackTraining(epochs=3, lr=2e-3, batch_size=100))
""",
    "rd": """
import torch
from chanlab.adaptive_compression import CsiCodec
g = torch.Generator().manual_seed(0)
h = torch.complex(torch.randn(1400, 64, 64, generator=g), torch.randn(1400, 64, 64, generator=g))
CsiCodec(n_ant=64, n_sc=64, lam=1e4).fit(h[:1200], h[1200:], epochs=2)
""",
    "wmmse": """
from chanlab.channels.cellfree import generate_cellfree, noise_power_for_snr
from chanlab.classical.wmmse import wmmse
drop = generate_cellfree(256, n_aps=16, n_ant=4, n_users=16, error_level=0.1, seed=0)
wmmse(drop.h_hat, noise_power_for_snr(20.0), p_max=1.0, n_iter=50)
""",
}


def _time(workload: str, threads: int) -> float:
    code = f"import torch, time\ntorch.set_num_threads({threads})\nt0 = time.perf_counter()\n" \
           f"{WORKLOADS[workload]}\nprint(time.perf_counter() - t0)"
    env = dict(os.environ, CHANLAB_PROGRESS="0")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True)
    return float(out.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--workloads", default=",".join(WORKLOADS))
    ap.add_argument("--threads", type=int, default=os.cpu_count() or 2, help="the 'many' setting (default: cores)")
    args = parse_args(ap, SMALL)
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"cores {os.cpu_count()}, load average at start {load:.2f}, repeat {args.repeat}")
    print(f"{'workload':8s}  {'1 thread (s)':>13s}  {f'{args.threads} threads (s)':>14s}  "
          f"{'ratio 1/many':>12s}")
    ratios, json_rows = [], []
    for name in args.workloads.split(","):
        one, many, pair = [], [], []
        for _ in range(args.repeat):
            a = _time(name, 1)
            b = _time(name, args.threads)
            one.append(a)
            many.append(b)
            pair.append(a / b)
        r = statistics.median(pair)
        ratios.append(r)
        print(f"{name:8s}  {statistics.median(one):13.2f}  {statistics.median(many):14.2f}  {r:12.2f}")
        json_rows.append(row(f"{name} workload at 1 torch thread, fresh process (median of {args.repeat})",
                             f"same at {args.threads} threads; ratio = 1-thread time / {args.threads}-thread time",
                             r, kind=RATIO, ok=None,
                             check=f"{statistics.median(one):.2f} s vs {statistics.median(many):.2f} s; "
                                   f"load average at start {load:.2f}"))
    print(f"geometric mean of 1-thread / {args.threads}-thread time: "
          f"{statistics.geometric_mean(ratios):.2f} (< 1: one thread is faster)")
    print(f"finished {time.strftime('%Y-%m-%d %H:%M')}")
    emit(args, json_rows)


if __name__ == "__main__":
    main()
