"""Shared CSI for the compression tests."""

import pytest
import torch


def _low_rank_csi(n, n_ant=16, n_sc=16, seed=0):
    """Two wide-beam, short-delay plane waves per matrix: smooth, so compressible by small convolutions."""
    g = torch.Generator().manual_seed(seed)
    ant = torch.arange(n_ant).float()
    sc = torch.arange(n_sc).float()
    h = torch.zeros(n, n_ant, n_sc, dtype=torch.complex64)
    for _ in range(2):
        theta = (torch.rand(n, 1, 1, generator=g) * 2 - 1) * 0.15
        tau = torch.rand(n, 1, 1, generator=g) * 0.05
        gain = torch.randn(n, 1, 1, dtype=torch.complex64, generator=g)
        h += gain * torch.exp(1j * torch.pi * (theta * ant[None, :, None] - 2 * tau * sc[None, None, :]))
    return h


@pytest.fixture(scope="session")
def low_rank_csi():
    """``low_rank_csi(n, n_ant=16, n_sc=16, seed=0)``: smooth CSI that small convolutions compress."""
    return _low_rank_csi
