"""A learned factorized prior fitted on synthetic Gaussian latents, shared by the entropy-coding
benchmarks (importable because each script's folder is on sys.path)."""

from __future__ import annotations

import torch


def gaussian_latents(shape, stds, generator=None) -> torch.Tensor:
    """Latents ``shape`` ``[B, C, ...]`` with channel ``c`` drawn from N(0, stds[c]²)."""
    scale = torch.tensor(stds, dtype=torch.float32).reshape(1, -1, *([1] * (len(shape) - 2)))
    return torch.randn(*shape, generator=generator) * scale


def fit_prior(prior, shapes, stds, steps: int, batch: int):
    """``steps`` Adam steps of ``prior`` on bits per latent, cycling through the latent ``shapes``."""
    opt = torch.optim.Adam(prior.parameters(), lr=1e-2)
    prior.train()
    for step in range(steps):
        y = gaussian_latents((batch, *shapes[step % len(shapes)][1:]), stds)
        _, lik = prior(y)
        loss = prior.bits(lik).mean() / y[0].numel()
        opt.zero_grad()
        loss.backward()
        opt.step()
    return prior.eval()
