"""Safe checkpoint I/O: atomic saves, checksums, ``weights_only=True`` loads, resume from the last one.

A checkpoint is a dict of tensors, numbers, strings and nested lists/dicts of those
(``model.state_dict()``, ``optimizer.state_dict()``, a step counter, RNG states). Anything that
``torch.load(weights_only=True)`` refuses is refused at load time with a CheckpointError, which
is what keeps a downloaded checkpoint from running code.

Checksums: beside each checkpoint ``NAME.pt`` :func:`save_checkpoint` writes ``NAME.pt.sha256``,
the SHA-256 of the checkpoint's bytes in ``sha256sum`` format (``sha256sum -c NAME.pt.sha256``
checks it by hand). :func:`load_checkpoint` verifies it, so a checkpoint damaged on disk (flipped
bytes, a truncated copy) raises a CheckpointError naming the file instead of loading garbage
weights, which ``torch.load`` would otherwise often do without complaint. The checksum lives in
its own file rather than inside the checkpoint so that the checkpoint stays a plain
``torch.save`` file any PyTorch code can read. A checkpoint without a checksum file (written
before checksums existed, or by other code) loads unverified.

Order of a save: the old checksum file is removed just before the new checkpoint is renamed into
place, and the new checksum is written (atomically) after it. A process killed between the two
steps leaves a complete checkpoint without a checksum (loaded unverified), never a new checkpoint
beside an old checksum (which would be reported as damage).
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import os
import pickle
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import torch

from chanlab.core.atomic import atomic_path, atomic_write_text
from chanlab.core.errors import CheckpointError

CHECKSUM_SUFFIX = ".sha256"
_DELETE = "delete it and save (or train) it again"
_CHUNK = 1 << 20


def checksum_path(path: str | os.PathLike) -> Path:
    """The checksum file kept beside the checkpoint ``path``: ``NAME.pt`` -> ``NAME.pt.sha256``."""
    path = Path(path)
    return path.with_name(path.name + CHECKSUM_SUFFIX)


def _sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(_CHUNK):
            h.update(chunk)
    return h.hexdigest()


def save_checkpoint(path: str | os.PathLike, state: dict[str, Any]) -> Path:
    """Write ``state`` to ``path`` atomically (a killed process never leaves half a file), and its
    SHA-256 to ``path.sha256`` (see the module docstring)."""
    if not isinstance(state, dict):
        raise CheckpointError(f"checkpoint state: expected a dict, got {type(state).__name__}")
    path = Path(path)
    side = checksum_path(path)
    with atomic_path(path) as tmp:
        torch.save(state, tmp)
        digest = _sha256_file(tmp)
        if side.is_dir():
            raise IsADirectoryError(errno.EISDIR, "Is a directory, expected a file name", str(side))
        side.unlink(missing_ok=True)  # never an old checksum beside the new checkpoint
    atomic_write_text(side, f"{digest}  {path.name}\n")
    return path


def _check_file(path: Path) -> None:
    if path.is_dir():
        raise CheckpointError(f"checkpoint {path}: expected a checkpoint file, got a directory")
    if not path.is_file():
        raise CheckpointError(f"checkpoint {path}: no such file")


def _verify(path: Path, remedy: str) -> None:
    """Compare ``path`` with its checksum file, if it has one."""
    side = checksum_path(path)
    if not side.is_file():
        return
    try:
        recorded = side.read_text(encoding="ascii").split()[0].lower()
    except (OSError, UnicodeDecodeError, IndexError):
        recorded = ""
    if len(recorded) != 64 or any(c not in "0123456789abcdef" for c in recorded):
        raise CheckpointError(f"checkpoint {path}: its checksum file {side.name} is damaged, so the checkpoint "
                              f"cannot be verified; {remedy} (delete {side.name} too)")
    try:
        actual = _sha256_file(path)
    except OSError as exc:
        raise CheckpointError(f"checkpoint {path}: cannot be read ({exc.strerror or exc}); {remedy}") from None
    if actual != recorded:
        raise CheckpointError(f"checkpoint {path}: damaged or truncated (its SHA-256 does not match the one "
                              f"recorded in {side.name} when it was saved); {remedy} (if you replaced it on purpose, "
                              f"delete {side.name} instead)")


def _first_line(exc: BaseException) -> str:
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    if not lines:
        return type(exc).__name__
    # torch's weights_only refusal starts with a long generic paragraph; the reason comes later.
    reason = next((line for line in lines if "unsupported" in line.lower() or "WeightsUnpickler" in line), None)
    return reason or lines[0]


def _load(path: Path, map_location: str | torch.device, remedy: str) -> dict[str, Any]:
    _check_file(path)
    _verify(path, remedy)
    try:
        state = torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as exc:
        raise CheckpointError(f"checkpoint {path}: cannot be read safely: it holds objects other than tensors "
                              f"and plain values, or it is damaged ({_first_line(exc)}); {remedy}") from exc
    except (zipfile.BadZipFile, EOFError, RuntimeError, OSError) as exc:
        raise CheckpointError(f"checkpoint {path}: damaged or truncated, cannot be read "
                              f"({_first_line(exc)}); {remedy}") from exc
    if not isinstance(state, dict):
        raise CheckpointError(f"checkpoint {path}: expected a dict, found {type(state).__name__}")
    return state


def load_checkpoint(path: str | os.PathLike, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Load a checkpoint written by :func:`save_checkpoint` with ``weights_only=True``.

    Raises:
        CheckpointError: naming the file, when it is missing, a directory, does not match its
            checksum file (damaged or truncated), cannot be unpickled safely, or is not a dict.
    """
    return _load(Path(path), map_location, _DELETE)


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
    ``NAME.best-EPOCH.pt``; only the one the latest state refers to is kept. Every file has its
    checksum beside it (``NAME.pt.sha256``, ``NAME.best-EPOCH.pt.sha256``); a damaged one raises a
    CheckpointError that names it and says that deleting it restarts the training stage.
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
        """Save ``state`` (plus the global RNG states, so resumed runs draw the same numbers); in a
        data-parallel run only rank 0 writes (:mod:`chanlab.core.distributed`)."""
        from chanlab.core.distributed import is_main

        if not is_main():
            return self.path
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
        state = _load(self.path, map_location, "delete it to restart this training stage from its beginning")
        rng = state.pop("_rng", None)
        if rng is not None:
            set_rng_state(rng)
        return state

    def best_path(self, epoch: int) -> Path:
        """Where the best weights of ``epoch`` are kept."""
        return self.folder / f"{self.path.stem}.best-{int(epoch)}{self.path.suffix}"

    def save_best(self, epoch: int, weights: dict[str, Any]) -> Path:
        """Write the best weights (a state dict) of ``epoch`` (rank 0 only, as :meth:`save`)."""
        from chanlab.core.distributed import is_main

        if not is_main():
            return self.best_path(epoch)
        return save_checkpoint(self.best_path(epoch), {"epoch": int(epoch), "weights": weights})

    def load_best(self, epoch: int, map_location: str | torch.device = "cpu") -> dict[str, Any]:
        """The best weights saved for ``epoch`` (CheckpointError naming the file when absent or damaged)."""
        path = self.best_path(epoch)
        if not path.is_file():
            raise CheckpointError(f"checkpoint {self.path} refers to best weights {path.name}, which are "
                                  f"missing; delete {self.path} to start this stage again")
        remedy = f"delete it and {self.path} to restart this training stage from its beginning"
        return _load(path, map_location, remedy)["weights"]

    def prune_best(self, keep_epoch: int) -> None:
        """Delete best-weight files (and their checksums) of every epoch but ``keep_epoch``."""
        keep = self.best_path(keep_epoch).name if keep_epoch >= 0 else None
        pattern = f"{self.path.stem}.best-*{self.path.suffix}"
        for path in self.folder.glob(pattern):
            if path.name != keep:
                path.unlink(missing_ok=True)
        for side in self.folder.glob(pattern + CHECKSUM_SUFFIX):  # includes any left by a killed prune
            if keep is None or side.name != keep + CHECKSUM_SUFFIX:
                with contextlib.suppress(OSError):
                    side.unlink()
