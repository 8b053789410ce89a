"""One explicit seed for every random number generator chanlab touches."""

from __future__ import annotations

import random
import sys

import numpy as np
import torch

from chanlab.core.errors import ConfigError


def seed(n: int) -> None:
    """Seed Python's ``random``, NumPy's global generator, torch (CPU and CUDA) and Sionna.

    Sionna is seeded only if it is already imported, so that seeding never pays its
    import cost (seconds) for code that does not use it; chanlab's Sionna generators seed
    Sionna themselves from their ``seed`` argument.
    """
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 0:
        raise ConfigError(f"seed: expected a non-negative integer, got {n!r}")
    n = int(n)
    random.seed(n)
    np.random.seed(n % 2**32)
    torch.manual_seed(n)
    sionna_phy = sys.modules.get("sionna.phy")
    if sionna_phy is not None:
        sionna_phy.config.seed = n


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
