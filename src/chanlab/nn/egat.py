"""Edge graph attention network (EGAT) for multi-user precoding.

Section IV-C of ``shared/papers/fdd-scalable-precoding-rvq-egat.txt``. The multi-user MISO
downlink is a complete bipartite graph of ``K`` user nodes and ``M`` antenna nodes; the
network keeps one state vector ``z_{k,m}`` per edge (user ``k``, antenna ``m``) and updates
all of them with functions shared by every edge, so the same weights serve any ``K`` (and,
given features of the right size, any ``M``), and permuting users or antennas permutes the
output in the same way (two-dimensional permutation equivariance).

Updating layer ``g`` (eqs. 18-19)::

    z_{k,m} <- psi( f1(z_{k,m})
                    + alpha / M * sum_{i != m} f2(z_{k,i})                  (same user, other antennas)
                    + beta * sum_{j != k} a_{k,j} ⊙ f3(z_{j,m}) )          (same antenna, other users)
    a_{k,j}  = 1/M * sum_m f4(z_{k,m}) ⊙ f5(z_{j,m})                        (attention of user j on k)

``f1 … f5`` are single linear layers (with bias), computed as one ``[F, 5F]`` matmul;
``psi`` is Mish (the paper's activation for every hidden layer; :mod:`chanlab.nn.activations`).
The sums are tensor contractions over the whole ``[batch, K, M, F]`` edge tensor: no loops over
users, antennas or samples.

:class:`EgatPrecoder` adds the initialization FCN (per-edge slices ``v̂_{k,m}`` of the user
features, plus the transmit power) before the ``G`` layers and the normalization FCN after
them, which maps each edge to ``Re, Im`` of ``w_{k,m}`` (eq. 20); the precoder is then scaled
to ``‖W‖_F² = P``.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from chanlab.core.errors import ConfigError, DataError
from chanlab.core.validation import check_int_range, check_ndim
from chanlab.nn.activations import Mish


class EgatLayer(nn.Module):
    """One EGAT updating layer (eqs. 18-19) on edge states ``[batch, K, M, F]``.

    Args:
        dim: state size ``F`` (the paper uses 128).
        alpha: weight of the same-user (other antennas) aggregation; the paper uses 0.1.
        beta: weight of the attention-weighted same-antenna (other users) aggregation; 0.1.
    """

    def __init__(self, dim: int, alpha: float = 0.1, beta: float = 0.1):
        super().__init__()
        check_int_range(dim, "dim", low=1, error=ConfigError)
        self.dim, self.alpha, self.beta = int(dim), float(alpha), float(beta)
        self.linear = nn.Linear(dim, 5 * dim)
        self.act = Mish()

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        n_users, n_ant = z.shape[1], z.shape[2]
        f1, f2, f3, f4, f5 = self.linear(z).chunk(5, dim=-1)
        # sum over the other antennas = sum over all minus self
        same_user = (f2.sum(dim=2, keepdim=True) - f2) * (self.alpha / n_ant)
        attention = torch.einsum("bkmf,bjmf->bkjf", f4, f5) / n_ant                # [b, K, K, F]
        others = 1.0 - torch.eye(n_users, dtype=z.dtype, device=z.device)
        attention = attention * others[None, :, :, None]
        same_antenna = torch.einsum("bkjf,bjmf->bkmf", attention, f3) * self.beta
        return self.act(f1 + same_user + same_antenna)


class EgatPrecoder(nn.Module):
    """EGAT precoder ``W = W_K(V̂, P)`` (eq. 21) for any number of users.

    Args:
        n_ant: BS antennas ``M``.
        feature_dim: user feature size ``D``; ``D / M`` features per edge, so ``M`` must divide ``D``.
        state_dim: edge state size ``F`` of the updating layers (paper: 128).
        init_hidden: hidden width of the two-layer initialization FCN ``f_0`` (paper: 512; its
            output is ``state_dim``).
        norm_hidden: hidden width of the two-layer normalization FCN ``f_N`` (paper: 512; output 2).
        n_layers: updating layers ``G`` (paper: 3).
        alpha, beta: see :class:`EgatLayer`.

    The transmit power enters every edge's initialization input as ``log10 P`` (the paper
    makes ``P`` an input without saying how; a log keeps it on the scale of the features).

    Shapes:
        ``features`` ``[batch, K, D]`` real; ``power`` a float or ``[batch]``; returns
        ``W`` ``[batch, M, K]`` complex with ``‖W_b‖_F² = P_b`` (column ``k`` serves user ``k``).
    """

    def __init__(self, n_ant: int, feature_dim: int, *, state_dim: int = 128, init_hidden: int = 512,
                 norm_hidden: int = 512, n_layers: int = 3, alpha: float = 0.1, beta: float = 0.1):
        super().__init__()
        for name, value in (("n_ant", n_ant), ("feature_dim", feature_dim), ("state_dim", state_dim),
                            ("init_hidden", init_hidden), ("norm_hidden", norm_hidden)):
            check_int_range(value, name, low=1, error=ConfigError)
        check_int_range(n_layers, "n_layers", low=0, error=ConfigError)
        if feature_dim % n_ant:
            raise ConfigError(f"feature_dim: the EGAT splits each user's D features into M = {n_ant} "
                              f"per-edge slices, so D must be a multiple of M; got D = {feature_dim}")
        self.n_ant, self.feature_dim = int(n_ant), int(feature_dim)
        self.per_edge = self.feature_dim // self.n_ant
        self.init = nn.Sequential(nn.Linear(self.per_edge + 1, init_hidden), Mish(),
                                  nn.Linear(init_hidden, state_dim), Mish())
        self.layers = nn.ModuleList(EgatLayer(state_dim, alpha, beta) for _ in range(n_layers))
        self.norm = nn.Sequential(nn.Linear(state_dim, norm_hidden), Mish(), nn.Linear(norm_hidden, 2))

    def forward(self, features: torch.Tensor, power: float | torch.Tensor = 1.0) -> torch.Tensor:
        check_ndim(features, 3, "features", "[batch, n_users, feature_dim]")
        b, n_users, d = features.shape
        if d != self.feature_dim:
            raise DataError(f"features: expected feature_dim = {self.feature_dim}, got {list(features.shape)}")
        if n_users < 1:
            raise DataError("features: expected at least one user")
        power = _power(power, b, features)
        edges = features.reshape(b, n_users, self.n_ant, self.per_edge)
        # f_0's first layer on [v̂_{k,m}, log10 P], split: the power's column is a per-drop bias, so
        # no [b, K, M, D/M + 1] input is concatenated (nor its gradient split again)
        first = self.init[0]
        log_p = torch.log10(power).to(edges.dtype).reshape(b, 1, 1, 1)
        h = nn.functional.linear(edges, first.weight[:, :self.per_edge], first.bias) \
            + log_p * first.weight[:, self.per_edge]
        z = self.init[1:](h)
        for layer in self.layers:
            z = layer(z)
        out = self.norm(z)                                                      # [b, K, M, 2]
        w = torch.complex(out[..., 0], out[..., 1]).transpose(1, 2)            # [b, M, K]
        norm2 = w.real.square().sum((1, 2)) + w.imag.square().sum((1, 2))
        scale = torch.sqrt(power / norm2.clamp_min(torch.finfo(norm2.dtype).tiny))
        return w * scale.reshape(b, 1, 1)


def _power(power: float | torch.Tensor, batch: int, like: torch.Tensor) -> torch.Tensor:
    """Transmit power as a positive ``[batch]`` tensor on ``like``'s device."""
    if isinstance(power, torch.Tensor):
        p = power.to(device=like.device, dtype=like.dtype).reshape(-1)
        if p.numel() == 1:
            p = p.expand(batch)
        if p.numel() != batch:
            raise DataError(f"power: expected a scalar or [batch = {batch}] tensor, got {list(power.shape)}")
    else:
        value = float(power)
        if not math.isfinite(value) or value <= 0:
            raise DataError(f"power: expected a finite number > 0, got {power!r}")
        return torch.full((batch,), value, dtype=like.dtype, device=like.device)
    if not bool(torch.isfinite(p).all()) or bool((p <= 0).any()):
        raise DataError("power: expected finite values > 0")
    return p


def egat_reference_loop(layer: EgatLayer, z: torch.Tensor) -> torch.Tensor:
    """Eq. 18-19 written edge by edge (loops over users and antennas): the test and benchmark reference."""
    b, n_users, n_ant, _ = z.shape
    w1, w2, w3, w4, w5 = layer.linear.weight.chunk(5, dim=0)
    b1, b2, b3, b4, b5 = layer.linear.bias.chunk(5, dim=0)

    def f(w, bias, x):
        return x @ w.T + bias

    out = torch.empty_like(z)
    for k in range(n_users):
        attention = {}
        for j in range(n_users):
            if j != k:
                attention[j] = sum(f(w4, b4, z[:, k, m]) * f(w5, b5, z[:, j, m]) for m in range(n_ant)) / n_ant
        for m in range(n_ant):
            acc = f(w1, b1, z[:, k, m])
            acc = acc + layer.alpha / n_ant * sum(f(w2, b2, z[:, k, i]) for i in range(n_ant) if i != m)
            for j in attention:
                acc = acc + layer.beta * attention[j] * f(w3, b3, z[:, j, m])
            out[:, k, m] = layer.act(acc)
    return out
