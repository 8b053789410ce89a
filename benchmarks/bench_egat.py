"""EGAT precoder forward + backward: chanlab's tensor contractions vs a per-user loop.

The EGAT of the scalable FDD precoding paper (Sec. IV-C, eqs. 18-19) updates one state per
(user, antenna) edge. chanlab's :class:`~chanlab.nn.egat.EgatLayer` computes every edge of
every drop at once: one ``[F, 5F]`` matmul for ``f1 … f5`` and two einsums for the antenna and
the attention-weighted user aggregations. The reference is the straightforward way to write
the same layer (the style of the paper authors' public code): a Python loop over users ``k``,
each computing its attention vectors ``a_{k,j}`` and its edges' update from the other users'
states. Both use the same weights; the script checks that the outputs agree, then times a
forward + backward pass of the whole precoder (initialization FCN, ``G`` layers,
normalization FCN, power normalization) on a batch of drops and prints the ratio.
"""

from __future__ import annotations

import argparse

import torch
from _report import emit, parse_args, row
from _timing import best_time

from chanlab.nn.egat import EgatLayer, EgatPrecoder

SMALL = {"batch": 20, "ant": 32, "state": 32, "hidden": 64, "repeat": 2}


def per_user_layer(layer: EgatLayer, z: torch.Tensor) -> torch.Tensor:
    """Eqs. 18-19 with a Python loop over users (batched over drops and antennas)."""
    n_users, n_ant = z.shape[1], z.shape[2]
    f = [layer.linear(z[:, k]).chunk(5, dim=-1) for k in range(n_users)]          # per user: 5 x [b, M, F]
    out = []
    for k in range(n_users):
        f1, f2, _, f4, _ = f[k]
        acc = f1 + (f2.sum(1, keepdim=True) - f2) * (layer.alpha / n_ant)
        for j in range(n_users):
            if j != k:
                a_kj = (f4 * f[j][4]).mean(1, keepdim=True)                       # [b, 1, F]
                acc = acc + layer.beta * a_kj * f[j][2]
        out.append(layer.act(acc))
    return torch.stack(out, dim=1)


def per_user_precoder(net: EgatPrecoder, features: torch.Tensor, power: float = 1.0) -> torch.Tensor:
    b, n_users, _ = features.shape
    edges = features.reshape(b, n_users, net.n_ant, net.per_edge)
    log_p = torch.full((b, n_users, net.n_ant, 1), float(torch.log10(torch.tensor(power))))
    z = net.init(torch.cat([edges, log_p], dim=-1))
    for layer in net.layers:
        z = per_user_layer(layer, z)
    out = net.norm(z)
    w = torch.complex(out[..., 0], out[..., 1]).transpose(1, 2)
    return w * torch.sqrt(power / w.abs().square().sum((1, 2), keepdim=True))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--batch", type=int, default=100, help="drops per pass")
    parser.add_argument("--users", type=int, default=6)
    parser.add_argument("--ant", type=int, default=128)
    parser.add_argument("--per-edge", type=int, default=2, help="features per edge (D / M)")
    parser.add_argument("--state", type=int, default=128)
    parser.add_argument("--hidden", type=int, default=512, help="init / normalization FCN width")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: leave as is)")
    args = parse_args(parser, SMALL)
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    net = EgatPrecoder(args.ant, args.ant * args.per_edge, state_dim=args.state, init_hidden=args.hidden,
                       norm_hidden=args.hidden, n_layers=3)
    v = torch.randn(args.batch, args.users, args.ant * args.per_edge)

    with torch.no_grad():
        diff = (net(v) - per_user_precoder(net, v)).abs().max().item()

    def run(fn):
        def go():
            net.zero_grad(set_to_none=True)
            fn(net, v).abs().square()[..., 0].sum().backward()
        return go

    t_ours = best_time(run(lambda n, x: n(x)), args.repeat)
    t_ref = best_time(run(per_user_precoder), args.repeat)
    print(f"EGAT forward+backward: batch {args.batch}, K = {args.users}, M = {args.ant}, D/M = {args.per_edge}, "
          f"state {args.state}, FCN width {args.hidden}, G = 3; torch threads {torch.get_num_threads()}")
    print(f"  chanlab EgatPrecoder      {t_ours * 1e3:9.1f} ms")
    print(f"  per-user loop reference   {t_ref * 1e3:9.1f} ms   ratio {t_ref / t_ours:5.2f}x")
    print(f"  max |W_chanlab - W_loop| = {diff:.2e}")
    emit(args, [row(f"EgatPrecoder forward + backward (batch {args.batch}, K = {args.users}, M = {args.ant}, "
                    f"state {args.state}, FCN {args.hidden})", "per-user loop precoder", t_ref / t_ours,
                    ok=diff < 1e-5, check=f"max |W difference| {diff:.1e}")])


if __name__ == "__main__":
    main()
