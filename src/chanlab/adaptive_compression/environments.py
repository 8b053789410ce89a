"""The channel environments of the compression experiments, as 3GPP TR 38.901 stand-ins.

The paper trains its backbone on DeepMIMO 'O1' (static outdoor, 3.5 GHz) and tests it on
QuaDRiGa (a user walking 350 m along a Madrid street at 5 km/h, 3.7 GHz, BS on a rooftop)
and on DeepMIMO 'O2 dynamic' (a street scene whose vehicles move between 100-ms scenes).
Neither ray-traced set ships with chanlab; these are their closest generated equivalents:

``source``
    CDL-D (LoS street micro-cell, "short" 30 ns delay spread) at 3.5 GHz, static users: a BS
    at the end of a street canyon looking down the street (as 'O1' BS 5 over its main
    street), so every user sits within ±15° of broadside (per-sample array yaw) with its own
    ray coupling and phases: a dominant path plus a few weaker clusters, the structure of the
    ray-traced scene with its 10 paths per user.
``street-mobile``
    UMa (macro BS above the rooftops) at 3.7 GHz: each drop is one user walking at 5 km/h,
    sampled 27.15 times per metre for ``snapshots_per_drop`` samples (3.7 m), after which a
    new drop starts. Sionna's model evolves the paths by their Doppler shifts within a drop
    (no spatial consistency across drops), so samples of one drop are strongly correlated
    like consecutive QuaDRiGa samples.
``dynamic-scatterers``
    CDL-B (NLoS, 100 ns delay spread) at 3.5 GHz with per-sample array yaw in ±60°,
    observed in 100-ms steps while the link moves at 10 m/s, the Doppler evolution standing
    in for the moving vehicles of 'O2 dynamic'.

All use a BS ULA (``n_ant`` elements, half-wavelength), single-antenna users and 50 MHz
of bandwidth split into ``n_sc`` subcarriers, and every CSI matrix is scaled to unit average
power per entry (path loss removed, as a UE would normalize before feedback).
Datasets are cached (:func:`chanlab.channels.store.cached_dataset`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

import numpy as np
import torch

from chanlab.core.errors import ConfigError

BANDWIDTH = 50e6
WALK_SPEED = 5 / 3.6          # m/s
SAMPLES_PER_METRE = 27.1521   # QuaDRiGa's sampling density (Table II)


@dataclass(frozen=True)
class Environment:
    name: str
    summary: str
    make: Callable[..., torch.Tensor]


def _unit_power(h: torch.Tensor) -> torch.Tensor:
    power = h.abs().square().mean(dim=(-2, -1), keepdim=True)
    return (h / power.clamp_min(1e-30).sqrt()).to(torch.complex64)


def _source(num, n_ant, n_sc, seed, device, show_progress, **_):
    from chanlab.channels.sionna_phy import generate_cdl

    return generate_cdl(num, model="D", n_ant=n_ant, n_sc=n_sc, subcarrier_spacing=BANDWIDTH / n_sc,
                        carrier_frequency=3.5e9, delay_spread=30e-9, yaw_spread=15.0, seed=seed, device=device,
                        show_progress=show_progress)


def _street_mobile(num, n_ant, n_sc, seed, device, show_progress, snapshots_per_drop: int = 100, **_):
    from chanlab.channels.sionna_phy import generate_scenario

    drops = math.ceil(num / snapshots_per_drop)
    h = generate_scenario(drops, scenario="uma", n_ant=n_ant, n_sc=n_sc, subcarrier_spacing=BANDWIDTH / n_sc,
                          carrier_frequency=3.7e9, speed=WALK_SPEED, n_time=snapshots_per_drop,
                          time_step=1.0 / (SAMPLES_PER_METRE * WALK_SPEED), seed=seed, device=device,
                          show_progress=show_progress, batch_size=max(1, 64 // snapshots_per_drop))
    return h.reshape(-1, n_ant, n_sc)[:num]


def _dynamic_scatterers(num, n_ant, n_sc, seed, device, show_progress, snapshots_per_drop: int = 10, **_):
    from chanlab.channels.sionna_phy import generate_cdl

    drops = math.ceil(num / snapshots_per_drop)
    h = generate_cdl(drops, model="B", n_ant=n_ant, n_sc=n_sc, subcarrier_spacing=BANDWIDTH / n_sc,
                     carrier_frequency=3.5e9, delay_spread=100e-9, speed=10.0, n_time=snapshots_per_drop,
                     time_step=0.1, yaw_spread=60.0, seed=seed, device=device, show_progress=show_progress,
                     batch_size=max(1, 256 // snapshots_per_drop))
    return h.reshape(-1, n_ant, n_sc)[:num]


ENVIRONMENTS = {
    "source": Environment("source", "CDL-D LoS street canyon, 30 ns, 3.5 GHz, users within ±15° (training environment)",
                          _source),
    "street-mobile": Environment("street-mobile", "UMa, 3.7 GHz, users walking at 5 km/h, 27 samples/m",
                                 _street_mobile),
    "dynamic-scatterers": Environment("dynamic-scatterers", "CDL-B NLoS, 100 ns, 3.5 GHz, 100-ms steps at 10 m/s",
                                      _dynamic_scatterers),
}


def get_environment(name: str) -> Environment:
    if name not in ENVIRONMENTS:
        raise ConfigError(f"unknown environment {name!r}; known: {', '.join(ENVIRONMENTS)}")
    return ENVIRONMENTS[name]


def environment_csi(name: str, num: int, n_ant: int, n_sc: int, *, seed: int = 0, device="cpu",
                    show_progress: bool = True, **options) -> torch.Tensor:
    """``num`` CSI matrices ``[num, n_ant, n_sc]`` complex64 of environment ``name`` (cached).

    ``options`` go to the environment (e.g. ``snapshots_per_drop``).
    """
    from chanlab.channels.store import cached_dataset, read_dataset
    from chanlab.core.device import select_device

    env = get_environment(name)
    if num < 1:
        raise ConfigError(f"num: expected a positive number of CSI matrices, got {num}")
    dev = select_device(device)
    params = dict(num=int(num), n_ant=int(n_ant), n_sc=int(n_sc), device_type=dev.type, **options)

    def build():
        h = env.make(num, n_ant, n_sc, seed, dev, show_progress, **options)
        return {"H": _unit_power(h).cpu()}

    path, _ = cached_dataset(f"chanlab.adaptive_compression.{name}", params, seed, build,
                             attrs={"environment": name, "summary": env.summary})
    return torch.from_numpy(np.asarray(read_dataset(path, keys=["H"]).arrays["H"]))


def split_40_40_20(n: int, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Random train/validation/test index sets of 40/40/20 % (the paper's split)."""
    order = torch.randperm(n, generator=torch.Generator().manual_seed(int(seed)))
    a, b = int(round(0.4 * n)), int(round(0.8 * n))
    if a < 1 or b - a < 1 or n - b < 1:
        raise ConfigError(f"{n} samples are too few for a 40/40/20 split")
    return order[:a], order[a:b], order[b:]
