"""CIR → OFDM frequency response: chanlab's per-path einsum vs Sionna's ``cir_to_ofdm_channel``.

Both compute ``h[n, f] = Σ_p a[n, p] exp(-j 2π f τ_p)`` for a batch of CDL-C impulse responses
(32 antennas, 1024 subcarriers). chanlab forms the phase factors once per path and contracts
them with one einsum; Sionna broadcasts the exponential over every antenna.
"""

from __future__ import annotations

import argparse

import torch
from _report import emit, parse_args, row
from _timing import best_time

SMALL = {"batch": 32, "n_sc": 256, "repeat": 3}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--batch", type=int, default=256)
    parser.add_argument("--n-ant", type=int, default=32)
    parser.add_argument("--n-sc", type=int, default=1024)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--device", default="cpu")
    args = parse_args(parser, SMALL)

    import sionna.phy
    from sionna.phy.channel import cir_to_ofdm_channel, subcarrier_frequencies
    from sionna.phy.channel.tr38901 import CDL, AntennaArray

    from chanlab.channels.sionna_phy import _ofdm_response

    sionna.phy.config.seed = 0
    kw = dict(polarization="single", polarization_type="V", antenna_pattern="omni", carrier_frequency=3.5e9,
              precision="single", device=args.device)
    bs = AntennaArray(num_rows=1, num_cols=args.n_ant, **kw)
    ut = AntennaArray(num_rows=1, num_cols=1, **kw)
    cdl = CDL("C", 300e-9, 3.5e9, ut_array=ut, bs_array=bs, direction="downlink", precision="single",
              device=args.device)
    a, tau = cdl(args.batch, 1, 1.0)
    freqs = subcarrier_frequencies(args.n_sc, 30e3, precision="double", device=args.device)

    def ours() -> torch.Tensor:
        return _ofdm_response(a[:, 0, 0, 0, :, :, 0], tau[:, 0, 0, :], freqs)

    def reference() -> torch.Tensor:
        return cir_to_ofdm_channel(freqs.to(torch.float32), a, tau)[:, 0, 0, 0, :, 0, :]

    h_ours, h_ref = ours(), reference()
    err = float((h_ours - h_ref).abs().square().sum() / h_ref.abs().square().sum()) ** 0.5
    t_ours, t_ref = best_time(ours, args.repeat), best_time(reference, args.repeat)
    print(f"batch {args.batch} x {args.n_ant} antennas x {args.n_sc} subcarriers, {a.shape[-2]} paths, "
          f"device {args.device}, torch threads {torch.get_num_threads()}")
    print(f"relative difference      {err:.2e}")
    print(f"chanlab _ofdm_response   {t_ours * 1e3:8.1f} ms")
    print(f"sionna cir_to_ofdm       {t_ref * 1e3:8.1f} ms")
    print(f"speed-up                 {t_ref / t_ours:8.2f}x")
    emit(args, [row(f"channels.sionna_phy._ofdm_response ({args.batch} CDL-C x {args.n_ant} antennas x "
                    f"{args.n_sc} subcarriers)", "Sionna cir_to_ofdm_channel", t_ref / t_ours,
                    ok=err < 1e-5, check=f"relative difference {err:.1e}")])


if __name__ == "__main__":
    main()
