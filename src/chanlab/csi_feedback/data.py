"""CSI for the feedback experiments: CsiNet's COST2100 files, or look-alikes generated with Sionna.

The paper uses CsiNet's COST2100 sets (indoor pico-cell at 5.3 GHz, 20 m × 20 m; outdoor at
300 MHz; 32-antenna ULA, 1024 subcarriers, the first 32 delay taps). Two sources:

* ``cost2100``: files in CsiNet's layout, ``DATA_H{train,val,test}{in,out}.mat``, read with
  :func:`chanlab.channels.loaders.load_cost2100` (:func:`load_cost2100_splits`). The set in
  ``shared/data/cost2100`` (made with the official COST2100 model; its README says how) is found
  without a path (:func:`find_cost2100`).
* ``generated`` (:func:`make_splits`), made with :func:`chanlab.channels.sionna_phy.generate_scenario`:

  * ``indoor``: TR 38.901 InH (open office) at 5.3 GHz, a ceiling BS and users 1–20 m away in its
    120° sector — the pico-cell of the paper's indoor set.
  * ``outdoor``: TR 38.901 RMa at 700 MHz (Sionna's RMa does not go down to COST2100's
    300 MHz; 700 MHz is the nearest common rural band).

  Both use a 32-element half-wavelength ULA and a subcarrier spacing of 19.53125 kHz, so 1024
  subcarriers span COST2100's 20 MHz; the 512 and 2048 variants keep the spacing (10 and
  40 MHz), so their delay taps are twice and half as long and a model trained at 1024 sees
  different delay profiles, which is the change Table III studies. Each CSI matrix is scaled to
  unit mean power (a UE normalizes before feedback), transformed to angle-delay and truncated to
  the first ``n_delay`` taps.
"""

from __future__ import annotations

import os
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


COST2100_ENV_VAR = "CHANLAB_COST2100"
COST2100_SUBCARRIERS = 1024           # both CsiNet sets: 1024 subcarriers, the first 32 delay taps kept
_COST2100_TAGS = {"indoor": "in", "outdoor": "out"}


def _has_cost2100(folder: Path, tag: str) -> bool:
    return any((folder / f"DATA_H{part}{tag}.mat").is_file() for part in ("train", "val", "test"))


def find_cost2100(folder: str | Path = "", environment: str = "indoor") -> Path:
    """The folder holding CsiNet's COST2100 files ``DATA_H{train,val,test}{in,out}.mat`` of ``environment``.

    ``folder`` may be that folder or its parent with ``indoor/`` and ``outdoor/`` subfolders (the
    layout of ``shared/data/cost2100``). Without ``folder`` the search tries ``$CHANLAB_COST2100``,
    then ``shared/data/cost2100`` in the working directory, the package's folder and every folder
    above them (a checkout with ``../shared`` beside it finds the shared set).

    Raises:
        ConfigError: unknown environment.
        DataError: no such folder, or no file of ``environment`` in it (one line; it says when the
            other environment's files are there instead).
    """
    tag = _COST2100_TAGS.get(environment)
    if tag is None:
        raise ConfigError(f"data.environment: expected indoor or outdoor, got {environment!r}")
    if folder:
        roots = [Path(folder).expanduser()]
        if not roots[0].is_dir():
            raise DataError(f"data.path: expected a folder with CsiNet's COST2100 files, got {folder!r} "
                            f"({'a file' if roots[0].exists() else 'no such folder'})")
    else:
        roots = [Path(os.environ[COST2100_ENV_VAR]).expanduser()] if os.environ.get(COST2100_ENV_VAR) else []
        for start in (Path.cwd(), Path(__file__).resolve().parent):
            roots += [p / "shared" / "data" / "cost2100" for p in (start, *start.parents)]
        roots = [r for r in roots if r.is_dir()]
        if not roots:
            raise DataError(f"data.source=cost2100: found no COST2100 folder; expected shared/data/cost2100 beside "
                            f"the checkout, ${COST2100_ENV_VAR}, or data.path=FOLDER")
    root = roots[0]
    for candidate in (root, root / environment):
        if _has_cost2100(candidate, tag):
            return candidate
    other = "outdoor" if environment == "indoor" else "indoor"
    if any(_has_cost2100(c, _COST2100_TAGS[other]) for c in (root, root / other)):
        raise DataError(f"{root}: the {environment} COST2100 set is absent (no DATA_H*{tag}.mat); "
                        f"only the {other} one is there")
    raise DataError(f"{root}: expected CsiNet's COST2100 files DATA_H{{train,val,test}}{tag}.mat here or in "
                    f"{root / environment}, got none")


def load_cost2100_splits(folder: str | Path = "", environment: str = "indoor", *, n_train: int | None = None,
                         n_val: int | None = None, n_test: int | None = None) -> FeedbackSplits:
    """CsiNet's COST2100 splits ``[n, 2, 32, 32]`` in [0, 1], from ``folder`` (:func:`find_cost2100`).

    ``n_train``, ``n_val``, ``n_test`` keep at most that many leading samples of each file (None:
    all); the sizes come from the files. Every file is checked by
    :func:`chanlab.channels.loaders.load_cost2100` (layout, NaN, values outside [0, 1]).

    Raises:
        DataError: a split file is missing or fails the checks (one line naming the file).
    """
    from chanlab.channels.loaders import load_cost2100

    root = find_cost2100(folder, environment)
    tag = _COST2100_TAGS[environment]
    files = [root / f"DATA_H{part}{tag}.mat" for part in ("train", "val", "test")]
    missing = [f.name for f in files if not f.is_file()]
    if missing:
        raise DataError(f"{root}: missing {', '.join(missing)} (CsiNet's COST2100 file names)")
    parts = [load_cost2100(f)[:n] for f, n in zip(files, (n_train, n_val, n_test))]
    return FeedbackSplits(*parts, scale=float("nan"))


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
