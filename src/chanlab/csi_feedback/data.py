"""CSI for the feedback experiments: COST2100-like angular-delay CSI from Sionna's 3GPP models.

The paper uses CsiNet's COST2100 sets (indoor pico-cell at 5.3 GHz, 20 m × 20 m; outdoor rural
at 300 MHz; 32-antenna ULA, 1024 subcarriers, the first 32 delay taps). We cannot ship those, so
the library generates look-alikes with :func:`chanlab.channels.sionna_phy.generate_scenario`:

* ``indoor``: TR 38.901 InH (open office) at 5.3 GHz, a ceiling BS and users 1–20 m away in its
  120° sector — the pico-cell of the paper's indoor set.
* ``outdoor``: TR 38.901 RMa at 700 MHz (Sionna's RMa does not go down to COST2100's
  300 MHz; 700 MHz is the nearest common rural band).

Both use a 32-element half-wavelength ULA and a subcarrier spacing of 19.53125 kHz, so 1024
subcarriers span COST2100's 20 MHz; the 512 and 2048 variants keep the spacing (10 and
40 MHz), so their delay taps are twice and half as long and a model trained at 1024 sees
different delay profiles, which is the change Table III studies. Each CSI matrix is scaled to
unit mean power (a UE normalizes before feedback), transformed to angle-delay and truncated to
the first ``n_delay`` taps. Users who hold the real COST2100 ``.mat`` files pass a folder:
``DATA_H{train,val,test}{in,out}.mat`` are read with :func:`chanlab.channels.loaders.load_cost2100`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from chanlab.core.errors import ConfigError, DataError

SUBCARRIER_SPACING = 19.53125e3
ENVIRONMENTS = {"indoor": ("inh", 5.3e9), "outdoor": ("rma", 0.7e9)}


def feedback_csi(environment: str, num: int, *, n_sc: int = 1024, n_ant: int = 32, n_delay: int = 32,
                 seed: int = 0, device: str | torch.device = "cpu", show_progress: bool = True) -> torch.Tensor:
    """Angular-delay CSI ``[num, n_ant, n_delay]`` complex64 on the CPU (cached; module docstring).

    ``device`` is where Sionna generates a missing set (``"cuda"`` is much faster at the paper's
    sizes). It is not part of the cache key: a cached set is returned whatever the device.
    """
    from chanlab.channels.angular_delay import to_angular_delay
    from chanlab.channels.sionna_phy import generate_scenario
    from chanlab.channels.store import cached_dataset, read_dataset

    if environment not in ENVIRONMENTS:
        raise ConfigError(f"environment: expected one of {', '.join(ENVIRONMENTS)}, got {environment!r}")
    if num < 1:
        raise ConfigError(f"num: expected a positive number of CSI matrices, got {num}")
    if not 1 <= n_delay <= n_sc:
        raise ConfigError(f"n_delay: expected 1 <= n_delay <= n_sc = {n_sc}, got {n_delay}")
    scenario, fc = ENVIRONMENTS[environment]
    params = dict(num=int(num), n_sc=int(n_sc), n_ant=int(n_ant), n_delay=int(n_delay), scenario=scenario,
                  carrier_frequency=fc, subcarrier_spacing=SUBCARRIER_SPACING)

    def build():
        parts = []
        for start in range(0, num, 4096):      # bounds the [chunk, n_ant, n_sc] spatial-frequency tensor
            h = generate_scenario(min(4096, num - start), scenario=scenario, n_ant=n_ant, carrier_frequency=fc,
                                  n_sc=n_sc, subcarrier_spacing=SUBCARRIER_SPACING, normalize=True,
                                  seed=seed * 1000003 + start, device=device, show_progress=show_progress)
            parts.append(to_angular_delay(h, n_delay).cpu())
        return {"H": torch.cat(parts).cpu()}

    path, _ = cached_dataset("chanlab.csi_feedback.csi", params, seed, build,
                             attrs={"environment": environment})
    return torch.from_numpy(np.asarray(read_dataset(path, keys=["H"]).arrays["H"]))


@dataclass
class FeedbackSplits:
    """Train/validation/test inputs ``[n, 2, n_ant, n_delay]`` in [0, 1] and their scale."""

    train: torch.Tensor
    val: torch.Tensor
    test: torch.Tensor
    scale: float


def make_splits(environment: str, n_train: int, n_val: int, n_test: int, *, n_sc: int = 1024, n_ant: int = 32,
                n_delay: int = 32, seed: int = 0, scale: float | None = None, device: str | torch.device = "cpu",
                show_progress: bool = True) -> FeedbackSplits:
    """Generated splits mapped to CsiNet's [0, 1] input with the training set's scale (or ``scale``);
    ``device`` is where missing CSI is generated (:func:`feedback_csi`), the splits are on the CPU."""
    from chanlab.channels.angular_delay import to_unit_interval, unit_interval_scale

    h = feedback_csi(environment, n_train + n_val + n_test, n_sc=n_sc, n_ant=n_ant, n_delay=n_delay, seed=seed,
                     device=device, show_progress=show_progress)
    tr, va, te = h[:n_train], h[n_train:n_train + n_val], h[n_train + n_val:]
    s = unit_interval_scale(tr) if scale is None else scale
    return FeedbackSplits(*(to_unit_interval(x, s).clamp(0, 1) for x in (tr, va, te)), scale=s)


def load_cost2100_splits(folder: str | Path, environment: str = "indoor") -> FeedbackSplits:
    """CsiNet's COST2100 files from ``folder`` (``DATA_Htrainin.mat`` …); already in [0, 1]."""
    from chanlab.channels.loaders import load_cost2100

    tag = {"indoor": "in", "outdoor": "out"}.get(environment)
    if tag is None:
        raise ConfigError(f"environment: expected indoor or outdoor, got {environment!r}")
    folder = Path(folder)
    files = [folder / f"DATA_H{part}{tag}.mat" for part in ("train", "val", "test")]
    missing = [f.name for f in files if not f.is_file()]
    if missing:
        raise DataError(f"{folder}: missing {', '.join(missing)} (CsiNet's COST2100 file names)")
    return FeedbackSplits(*(load_cost2100(f) for f in files), scale=float("nan"))


def nmse_db(x: torch.Tensor, x_hat: torch.Tensor) -> float:
    """The paper's NMSE in dB on CsiNet inputs: ``10 log10(mean ‖Ĥ − H‖² / ‖H‖²)`` (0.5 is zero CSI)."""
    h, h_hat = x - 0.5, x_hat - 0.5
    err = (h_hat - h).flatten(1).square().sum(1) / h.flatten(1).square().sum(1).clamp_min(1e-30)
    return float(10 * torch.log10(err.mean()))


def rho(x: torch.Tensor, x_hat: torch.Tensor, n_sc: int = 1024) -> float:
    """CsiNet's ρ (:func:`chanlab.metrics.distortion.cosine_similarity`) after zero-padding the
    delay taps back to ``n_sc`` subcarriers."""
    from chanlab.channels.angular_delay import from_angular_delay
    from chanlab.metrics.distortion import cosine_similarity

    def sf(v):
        return from_angular_delay(torch.complex(v[:, 0] - 0.5, v[:, 1] - 0.5).to(torch.complex64), n_sc)

    return cosine_similarity(sf(x), sf(x_hat))
