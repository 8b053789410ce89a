"""Safe checkpoint I/O: atomic saves, ``weights_only=True`` loads, resume from the last one.

A checkpoint is a dict of tensors, numbers, strings and nested lists/dicts of those
(``model.state_dict()``, ``optimizer.state_dict()``, a step counter, RNG states). Anything that
``torch.load(weights_only=True)`` refuses is refused at load time with a CheckpointError, which
is what keeps a downloaded checkpoint from running code.
"""

from __future__ import annotations

import os
import pickle
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import torch

from chanlab.core.atomic import atomic_path
from chanlab.core.errors import CheckpointError


def save_checkpoint(path: str | os.PathLike, state: dict[str, Any]) -> Path:
    """Write ``state`` to ``path`` atomically (a killed process never leaves half a file)."""
    if not isinstance(state, dict):
        raise CheckpointError(f"checkpoint state: expected a dict, got {type(state).__name__}")
    path = Path(path)
    with atomic_path(path) as tmp:
        torch.save(state, tmp)
    return path


def load_checkpoint(path: str | os.PathLike, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Load a checkpoint written by :func:`save_checkpoint` with ``weights_only=True``."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint {path}: no such file")
    try:
        state = torch.load(path, map_location=map_location, weights_only=True)
    except (pickle.UnpicklingError, zipfile.BadZipFile, EOFError, RuntimeError, OSError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise CheckpointError(f"checkpoint {path}: cannot be read safely ({first})") from exc
    if not isinstance(state, dict):
        raise CheckpointError(f"checkpoint {path}: expected a dict, found {type(state).__name__}")
    return state


def rng_state() -> dict[str, Any]:
    """Torch and NumPy global RNG states in a ``weights_only``-loadable form."""
    np_state = np.random.get_state()
    state: dict[str, Any] = {
        "torch": torch.get_rng_state(),
        "numpy": {"keys": torch.from_numpy(np_state[1].astype(np.int64)), "pos": int(np_state[2]),
                  "has_gauss": int(np_state[3]), "cached_gaussian": float(np_state[4])},
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    """Restore what :func:`rng_state` captured."""
    torch.set_rng_state(state["torch"].cpu())
    n = state["numpy"]
    np.random.set_state(("MT19937", n["keys"].numpy().astype(np.uint32), n["pos"],
                         n["has_gauss"], n["cached_gaussian"]))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all([s.cpu() for s in state["cuda"]])


class Checkpointer:
    """Keeps the latest training state of one run in ``folder/NAME.pt`` and its best weights beside it.

    The training engine (:mod:`chanlab.core.engine`) calls :meth:`save` on a cadence, every
    ``every_epochs`` epochs or ``every_seconds`` seconds (whichever comes first; ``None`` turns
    one off), at the end and on Ctrl-C, and :meth:`load_latest` once at start; a run killed at
    any moment resumes from the last complete save. The best weights live in
    ``NAME.best-EPOCH.pt``; only the one the latest state refers to is kept.
    """

    def __init__(self, folder: str | os.PathLike, name: str = "last.pt", *, every_epochs: int | None = 10,
                 every_seconds: float | None = 300.0):
        for label, value in (("every_epochs", every_epochs), ("every_seconds", every_seconds)):
            if value is not None and (isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0):
                raise CheckpointError(f"checkpoint cadence: {label} must be a positive number or None, got {value!r}")
        self.folder = Path(folder)
        self.path = self.folder / name
        self.every_epochs = every_epochs
        self.every_seconds = every_seconds

    def save(self, state: dict[str, Any], *, with_rng: bool = True) -> Path:
        """Save ``state`` (plus the global RNG states, so resumed runs draw the same numbers)."""
        state = dict(state)
        if with_rng:
            state["_rng"] = rng_state()
        return save_checkpoint(self.path, state)

    def exists(self) -> bool:
        return self.path.is_file()

    def load_latest(self, map_location: str | torch.device = "cpu") -> dict[str, Any] | None:
        """The last saved state (RNG states restored), or None when nothing was saved yet."""
        if not self.exists():
            return None
        state = load_checkpoint(self.path, map_location=map_location)
        rng = state.pop("_rng", None)
        if rng is not None:
            set_rng_state(rng)
        return state

    def best_path(self, epoch: int) -> Path:
        """Where the best weights of ``epoch`` are kept."""
        return self.folder / f"{self.path.stem}.best-{int(epoch)}{self.path.suffix}"

    def save_best(self, epoch: int, weights: dict[str, Any]) -> Path:
        """Write the best weights (a state dict) of ``epoch``."""
        return save_checkpoint(self.best_path(epoch), {"epoch": int(epoch), "weights": weights})

    def load_best(self, epoch: int, map_location: str | torch.device = "cpu") -> dict[str, Any]:
        """The best weights saved for ``epoch`` (CheckpointError naming the file when absent)."""
        path = self.best_path(epoch)
        if not path.is_file():
            raise CheckpointError(f"checkpoint {self.path} refers to best weights {path.name}, which are "
                                  f"missing; delete {self.path} to start this stage again")
        return load_checkpoint(path, map_location=map_location)["weights"]

    def prune_best(self, keep_epoch: int) -> None:
        """Delete best-weight files of every epoch but ``keep_epoch``."""
        keep = self.best_path(keep_epoch).name if keep_epoch >= 0 else None
        for path in self.folder.glob(f"{self.path.stem}.best-*{self.path.suffix}"):
            if path.name != keep:
                path.unlink(missing_ok=True)
