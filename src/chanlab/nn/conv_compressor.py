"""Convolutional CSI encoder/decoder of the rate–distortion compressor (Fig. 1 of Sattari et al.).

The encoder maps real CSI ``[batch, 2, n_ant, n_sc]`` to a latent ``[batch, 2, n_ant / P,
n_sc / P]`` with ``P`` the product of the pool sizes:

    conv(2→16) ReLU maxpool(p1) → conv(16→16) ReLU maxpool(p2) → conv(16→2) (linear)

and the decoder mirrors it with nearest-neighbour upsampling:

    conv(2→16) ReLU up(p2) → conv(16→16) ReLU up(p1) → conv(16→2) (linear)

The paper gives the decoder kernel (5) and the pool/upsampling factors: ``(2, 2)`` for
64×64 CSI (compression ratio 16) and ``(4, 2)`` for 512×256 (ratio 64). It does not give
the encoder kernel; we use 5 as in the decoder. The decoder upsamples in the reverse order
of the encoder's pooling (by 2 first for 512×256), which keeps the widest convolution at
the lower resolution. Both outputs are linear: latents and CSI entries are signed.
"""

from __future__ import annotations

from typing import Sequence

import torch
from torch import nn

from chanlab.core.errors import ConfigError, DataError


def default_pools(n_ant: int, n_sc: int) -> tuple[int, int]:
    """The paper's pooling: ``(4, 2)`` for the 512×256 CSI, ``(2, 2)`` otherwise."""
    return (4, 2) if n_ant * n_sc >= 512 * 256 else (2, 2)


def _check_pools(pools: Sequence[int]) -> tuple[int, ...]:
    pools = tuple(int(p) for p in pools)
    if len(pools) != 2 or min(pools) < 1:
        raise ConfigError(f"pools: expected two positive pool sizes, got {pools}")
    return pools


def _same_conv(c_in: int, c_out: int, kernel: int) -> nn.Conv2d:
    if kernel < 1 or kernel % 2 == 0:
        raise ConfigError(f"kernel: expected an odd positive size, got {kernel}")
    return nn.Conv2d(c_in, c_out, kernel, padding=kernel // 2)


class ConvEncoder(nn.Module):
    """``[batch, 2, n_ant, n_sc]`` → latent ``[batch, latent_channels, n_ant/P, n_sc/P]``."""

    def __init__(self, pools: Sequence[int] = (2, 2), hidden: int = 16, latent_channels: int = 2,
                 kernel: int = 5):
        super().__init__()
        self.pools = _check_pools(pools)
        self.layers = nn.Sequential(
            _same_conv(2, hidden, kernel), nn.ReLU(), nn.MaxPool2d(self.pools[0]),
            _same_conv(hidden, hidden, kernel), nn.ReLU(), nn.MaxPool2d(self.pools[1]),
            _same_conv(hidden, latent_channels, kernel),
        )

    @property
    def factor(self) -> int:
        return self.pools[0] * self.pools[1]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.ndim != 4 or x.shape[1] != 2:
            raise DataError(f"encoder input: expected [batch, 2, n_ant, n_sc], got {list(x.shape)}")
        if x.shape[2] % self.factor or x.shape[3] % self.factor:
            raise DataError(f"encoder input: n_ant and n_sc must be multiples of {self.factor} "
                            f"(pools {self.pools}), got {x.shape[2]}×{x.shape[3]}")
        return self.layers(x)


class ConvDecoder(nn.Module):
    """Latent ``[batch, latent_channels, h, w]`` → ``[batch, 2, h·P, w·P]``."""

    def __init__(self, pools: Sequence[int] = (2, 2), hidden: int = 16, latent_channels: int = 2,
                 kernel: int = 5):
        super().__init__()
        self.pools = _check_pools(pools)
        self.latent_channels = latent_channels
        self.layers = nn.Sequential(
            _same_conv(latent_channels, hidden, kernel), nn.ReLU(), nn.Upsample(scale_factor=self.pools[1]),
            _same_conv(hidden, hidden, kernel), nn.ReLU(), nn.Upsample(scale_factor=self.pools[0]),
            _same_conv(hidden, 2, kernel),
        )

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        if z.ndim != 4 or z.shape[1] != self.latent_channels:
            raise DataError(f"decoder input: expected [batch, {self.latent_channels}, h, w], got {list(z.shape)}")
        return self.layers(z)
