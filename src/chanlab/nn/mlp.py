"""Multilayer perceptron with identity skip connections around chosen hidden layers."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from chanlab.core.errors import ConfigError


class SkipMLP(nn.Module):
    """``n_layers`` linear layers with ReLU between them; layer ``l`` in ``skip_at`` adds its input.

    Layers are numbered from 1: layer 1 maps ``in_features → hidden``, layers 2 … n−1 map
    ``hidden → hidden`` (those listed in ``skip_at`` compute ``h + ReLU(W h + b)``), and layer n
    maps ``hidden → out_features`` with no activation (the caller chooses the output
    nonlinearity). The gridization paper's encoder is ``SkipMLP(M, N, 256, 6, (2, 4))``.

    Shapes: ``[batch, in_features] → [batch, out_features]``.
    """

    def __init__(self, in_features: int, out_features: int, hidden: int = 256, n_layers: int = 6,
                 skip_at: Sequence[int] = (2, 4)):
        super().__init__()
        if n_layers < 2:
            raise ConfigError(f"n_layers: expected >= 2, got {n_layers}")
        bad = [layer for layer in skip_at if not 2 <= layer <= n_layers - 1]
        if bad:
            raise ConfigError(f"skip_at: skips need equal widths, so layers 2..{n_layers - 1}; got {bad}")
        widths = [in_features] + [hidden] * (n_layers - 1) + [out_features]
        self.layers = nn.ModuleList(nn.Linear(a, b) for a, b in zip(widths[:-1], widths[1:]))
        self.skip_at = frozenset(skip_at)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        last = len(self.layers)
        for number, layer in enumerate(self.layers, start=1):
            if number == last:
                return layer(x)
            out = torch.relu(layer(x))
            x = x + out if number in self.skip_at else out
        return x
