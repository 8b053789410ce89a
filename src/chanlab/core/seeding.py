"""One explicit seed for every random number generator chanlab touches."""

from __future__ import annotations

import random

import numpy as np
import torch

from chanlab.core.errors import ConfigError


def seed(n: int) -> None:
    """Seed Python's ``random``, NumPy's global generator, torch (CPU and CUDA) and Sionna.

    Sionna is seeded only if it is already importable, so that seeding never pays its
    import cost for code that does not use it.
    """
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 0:
        raise ConfigError(f"seed: expected a non-negative integer, got {n!r}")
    n = int(n)
    random.seed(n)
    np.random.seed(n % 2**32)
    torch.manual_seed(n)
    try:
        import sionna.phy
    except ImportError:
        return
    sionna.phy.config.seed = n


def numpy_rng(n: int | None) -> np.random.Generator:
    """A NumPy ``Generator`` seeded with ``n`` (fresh entropy when ``n`` is None)."""
    return np.random.default_rng(n)


def torch_generator(n: int | None, device: str | torch.device = "cpu") -> torch.Generator:
    """A ``torch.Generator`` on ``device`` seeded with ``n`` (random seed when ``n`` is None)."""
    g = torch.Generator(device=device)
    if n is None:
        g.seed()
    else:
        g.manual_seed(int(n))
    return g
