"""Multi-user narrowband channels for the FDD transceiver experiments.

The paper (Section VI-A) ray-traces 128 city blocks of 128 m x 128 m with Wireless InSite: a
BS 25 m high at the centre with a 128-antenna dual-polarized UPA at 3.5 GHz, 1,000 user
drops per block, 128,000 channels split 100,000 / 18,000 / 10,000. We cannot ship those, so
the library draws the closest stochastic equivalent from Sionna's TR 38.901 UMi street-canyon
model (:func:`chanlab.channels.sionna_phy.generate_multiuser`): every drop is a fresh
single-sector topology with its own large-scale parameters, LoS/NLoS states and clusters (a
new "environment" per drop), the BS has an ``n_rows`` x ``n_cols`` UPA of cross-polarized
(±45°) elements, ``M = 2 n_rows n_cols`` (8 x 8 x 2 = 128 in the paper preset).

Each drop holds :data:`MAX_USERS` = 8 users (the largest ``K`` of the paper); an experiment
with ``K`` users takes the first ``K``, so every experiment shares one cached file.

**Power.** Every user's channel is scaled to unit average power per antenna,
``‖h_k‖² = M``: users are power-controlled for their path loss, so the SNR axis
``P / σ²`` is each user's SNR per antenna before beamforming (the paper defines
``SNR = 10 log10(P / σ²)`` without saying how it treats path loss; without this step the
users of one UMi sector span some 50 dB and the weakest get nothing at any SNR).

Users who hold their own channels pass ``path``: a folder with the paper authors' files
``DATA_H_mu_{train,val,test}.mat`` or one ``.mat`` file with an ``H_mu*`` variable
``(N, K, M)`` that is split in order. They are normalized in the same way.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from chanlab.core.errors import ConfigError, DataError

MAX_USERS = 8


def normalize_users(h: torch.Tensor) -> torch.Tensor:
    """Scale every user's channel ``h`` ``[..., K, M]`` to unit average power per antenna."""
    power = h.abs().square().mean(dim=-1, keepdim=True)
    if bool((power <= 0).any()):
        raise DataError("h: a user's channel is all zeros; it cannot be normalized")
    return h / power.sqrt()


# Environments never seen in training (Table I): other TR 38.901 scenarios and CDL profiles, each
# with the training array. CDL users of a drop share the profile's clusters, rotated by their own
# azimuth offset (yaw_spread, degrees), so that they are not co-located.
UNSEEN_AREAS = {
    "uma": dict(channel="uma"),
    "rma": dict(channel="rma"),
    "inh": dict(channel="inh"),
    "cdl-c": dict(channel="cdl", model="C", yaw_spread=60.0),
    "cdl-d": dict(channel="cdl", model="D", yaw_spread=60.0),
}


def umi_drops(num: int, *, n_ant: int = 128, n_rows: int = 8, carrier_frequency: float = 3.5e9,
              scenario: str = "umi", seed: int = 0, device: str | torch.device = "cpu",
              **source: object) -> torch.Tensor:
    """``num`` UMi (or other scenario) drops of :data:`MAX_USERS` users: ``[num, 8, n_ant]``
    complex64 on the CPU, cached, per-user normalized (module docstring). ``n_ant = 2 n_rows n_cols``.
    ``source`` overrides parameters of the ``multiuser`` data source (e.g. ``channel="cdl",
    model="C"``).

    ``device`` is where Sionna draws missing drops (a GPU is much faster for large sets). It is
    not part of the cache key: a cached set is returned whatever the device, so every run of an
    experiment with the same parameters and seed sees the same drops once they are cached (a CPU
    and a GPU draw different random numbers, so the device that fills the cache decides them).
    """
    from chanlab.channels.sources import get_source
    from chanlab.channels.store import cached_dataset, read_dataset
    from chanlab.core.device import select_device

    if num < 1:
        raise ConfigError(f"num: expected a positive number of drops, got {num}")
    if n_ant % (2 * n_rows):
        raise ConfigError(f"n_ant: a dual-polarized {n_rows}-row UPA has n_ant = 2 x {n_rows} x n_cols; "
                          f"got n_ant = {n_ant}")
    params = dict(num=int(num), n_users=MAX_USERS, channel=scenario, polarization="dual", n_ant=int(n_ant),
                  array="upa", n_rows=int(n_rows), carrier_frequency=float(carrier_frequency))
    params.update(source)
    src = get_source("multiuser")
    resolved = src.resolve(params)
    dev = select_device(device)
    # the key of `generate_dataset("multiuser", ...)` less its device type (see the docstring)
    path, _ = cached_dataset("chanlab.data.multiuser", resolved, seed, lambda: src.build(resolved, seed, dev),
                             attrs=dict(src.describe(resolved), source="multiuser", summary=src.summary))
    h = torch.from_numpy(np.asarray(read_dataset(path, keys=["H_mu"]).arrays["H_mu"]))
    return normalize_users(h)


def unseen_area(name: str, num: int, *, n_ant: int = 128, n_rows: int = 8, seed: int = 7,
                device: str | torch.device = "cpu") -> torch.Tensor:
    """``num`` drops ``[num, 8, n_ant]`` of the unseen environment ``name`` (:data:`UNSEEN_AREAS`),
    drawn on ``device`` (see :func:`umi_drops`)."""
    if name not in UNSEEN_AREAS:
        raise ConfigError(f"area: expected one of {', '.join(UNSEEN_AREAS)}, got {name!r}")
    return umi_drops(num, n_ant=n_ant, n_rows=n_rows, seed=seed, device=device, **UNSEEN_AREAS[name])


@dataclass
class ChannelSplits:
    """Train / validation / test channels ``[n, K, M]`` complex64 (per-user normalized)."""

    train: torch.Tensor
    val: torch.Tensor
    test: torch.Tensor

    def users(self, n_users: int) -> ChannelSplits:
        """The first ``n_users`` users of every drop."""
        have = self.train.shape[1]
        if not 1 <= n_users <= have:
            raise ConfigError(f"n_users: expected 1 <= K <= {have} (users per stored drop), got {n_users}")
        return ChannelSplits(self.train[:, :n_users], self.val[:, :n_users], self.test[:, :n_users])


def make_splits(n_train: int, n_val: int, n_test: int, *, n_ant: int = 128, n_rows: int = 8,
                scenario: str = "umi", seed: int = 0, path: str | None = None,
                device: str | torch.device = "cpu") -> ChannelSplits:
    """Generated (or loaded, with ``path``) splits on the CPU; see the module docstring. ``device``
    is where generated drops are drawn (:func:`umi_drops`); loaded files ignore it."""
    for name, value in (("n_train", n_train), ("n_val", n_val), ("n_test", n_test)):
        if value < 1:
            raise ConfigError(f"{name}: expected a positive number of drops, got {value}")
    if path:
        return _load_splits(Path(path), n_train, n_val, n_test)
    h = umi_drops(n_train + n_val + n_test, n_ant=n_ant, n_rows=n_rows, scenario=scenario, seed=seed,
                  device=device)
    return ChannelSplits(h[:n_train], h[n_train:n_train + n_val], h[n_train + n_val:])


def _load_splits(path: Path, n_train: int, n_val: int, n_test: int) -> ChannelSplits:
    from chanlab.channels.loaders import load_multiuser

    if path.is_dir():
        files = [path / f"DATA_H_mu_{s}.mat" for s in ("train", "val", "test")]
        missing = [f.name for f in files if not f.exists()]
        if missing:
            raise DataError(f"{path}: expected DATA_H_mu_train.mat, DATA_H_mu_val.mat and DATA_H_mu_test.mat; "
                            f"missing {missing}")
        parts = [normalize_users(load_multiuser(f))[:n] for f, n in zip(files, (n_train, n_val, n_test))]
        return ChannelSplits(*parts)
    h = normalize_users(load_multiuser(path))
    need = n_train + n_val + n_test
    if h.shape[0] < need:
        raise DataError(f"{path}: holds {h.shape[0]} drops, the splits need {need} "
                        f"(n_train {n_train} + n_val {n_val} + n_test {n_test})")
    return ChannelSplits(h[:n_train], h[n_train:n_train + n_val], h[n_train + n_val:need])
