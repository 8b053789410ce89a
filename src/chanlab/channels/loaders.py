"""Loaders for channel data files users already hold (MATLAB .mat files).

* :func:`read_mat` reads classic (v4–v7) and v7.3 (HDF5) MAT-files into numpy arrays with
  MATLAB's shapes.
* :func:`load_cost2100` reads CsiNet's COST2100 files ``DATA_H{train,val,test}{in,out}.mat``.
* :func:`load_multiuser` reads multi-user channel files with an ``H_mu...`` variable.
"""

from __future__ import annotations

import os
from pathlib import Path

import h5py
import numpy as np
import scipy.io
import torch

from chanlab.core.errors import ConfigError, DataError

__all__ = ["cost2100_path", "load_cost2100", "load_mat_channels", "load_multiuser", "read_mat"]

# Groups MATLAB adds to v7.3 files for its own bookkeeping (cell/struct targets, objects).
_MATLAB_INTERNAL = ("#refs#", "#subsystem#")

# COST2100 (CsiNet): 32 angular x 32 delay bins, real and imaginary part, flattened.
_COST2100_SIZE = 2 * 32 * 32
_COST2100_SPLITS = ("train", "val", "test")
_COST2100_ENVS = ("in", "out")
# HT is min-max scaled into [0, 1]; allow float round-off at the edges, reject real errors.
_RANGE_TOL = 1e-6


# --------------------------------------------------------------------------- generic .mat


def _matlab_value(ds: h5py.Dataset) -> np.ndarray | None:
    """One v7.3 dataset as MATLAB would show it, or None for types we do not read (cells)."""
    if h5py.check_dtype(ref=ds.dtype) is not None:
        # Cell arrays hold object references into '#refs#'; not channel data.
        return None
    cls = ds.attrs.get("MATLAB_class", b"")
    cls = cls.decode() if isinstance(cls, bytes) else str(cls)
    data = ds[()]
    if ds.attrs.get("MATLAB_empty", 0):
        # Empty arrays are stored as their MATLAB size vector, not as data.
        return np.zeros(tuple(int(d) for d in np.ravel(data)))
    names = data.dtype.names or ()
    if {"real", "imag"} <= set(names):
        real, imag = data["real"], data["imag"]
        data = np.empty(real.shape, np.result_type(real.dtype, np.complex64))
        data.real, data.imag = real, imag
    if data.ndim >= 2:
        # MATLAB is column-major; HDF5 stores the reversed shape. .T reverses every axis.
        data = data.T
    if cls == "logical":
        data = data.astype(bool)
    elif cls == "char":
        # uint16 code units, one string per row.
        rows = np.atleast_2d(data)
        data = np.array(["".join(map(chr, row)) for row in rows])
    return np.asarray(data)


def _read_v73(path: Path) -> dict[str, np.ndarray]:
    out: dict[str, np.ndarray] = {}

    def visit(name: str, obj: h5py.HLObject) -> None:
        if name.split("/")[0] in _MATLAB_INTERNAL or not isinstance(obj, h5py.Dataset):
            return
        value = _matlab_value(obj)
        if value is not None:
            out[name] = value  # struct fields come out as "s/field"

    with h5py.File(path, "r") as f:
        f.visititems(visit)
    return out


def read_mat(path: str | os.PathLike) -> dict[str, np.ndarray]:
    """Read every variable of a MAT-file.

    Classic files (v4, v5, v7) are read with :func:`scipy.io.loadmat`; v7.3 files are HDF5
    and read with h5py, transposed back to MATLAB's shapes (an ``(N, 2048)`` matrix comes
    back as ``(N, 2048)``) and with ``{'real', 'imag'}`` compounds turned into complex.
    MATLAB's internal ``#refs#``/``#subsystem#`` groups and cell arrays are skipped.

    Returns:
        variable name -> array (MATLAB matrices are at least 2-D).

    Raises:
        DataError: the file is missing, is a directory, or cannot be read as a MAT-file.
    """
    path = Path(path)
    if path.is_dir():
        raise DataError(f"{path}: expected a .mat file, got a directory"
                        + (" (CsiNet's COST2100 folder? pass one of its DATA_H*.mat files, or the folder "
                           "to cost2100_path)" if any(path.glob("DATA_H*.mat")) else ""))
    if not path.is_file():
        raise DataError(f"{path}: expected an existing .mat file, got no such file")
    try:
        # is_hdf5 also finds the signature after MATLAB's 512-byte header (userblock).
        if h5py.is_hdf5(path):
            return _read_v73(path)
        raw = scipy.io.loadmat(path)
    except (OSError, ValueError, TypeError, RuntimeError,  # RuntimeError: scipy refuses some formats
            scipy.io.matlab.MatReadError) as exc:
        raise DataError(f"{path}: expected a readable MAT-file, got an error "
                        f"({type(exc).__name__}: {exc})") from None
    # __header__, __version__, __globals__ are file metadata, not variables.
    return {k: v for k, v in raw.items() if not k.startswith("__")}


def _pick(mats: dict[str, np.ndarray], key: str, path: Path) -> np.ndarray:
    if key not in mats:
        raise DataError(f"{path}: expected a variable {key!r}, got keys present: {sorted(mats)}")
    return mats[key]


def _check_finite(x: np.ndarray, key: str, path: Path) -> None:
    if not np.isfinite(x).all():
        bad = int(np.size(x) - np.count_nonzero(np.isfinite(x)))
        raise DataError(f"{path}: expected finite values in {key!r}, got {bad} NaN/inf entries")


# --------------------------------------------------------------------------- COST2100


def cost2100_path(folder: str | os.PathLike, split: str = "train", env: str = "in") -> Path:
    """Path of CsiNet's COST2100 file ``DATA_H{split}{env}.mat`` in ``folder``.

    Args:
        split: ``"train"``, ``"val"`` or ``"test"``.
        env: ``"in"`` (indoor 5.3 GHz) or ``"out"`` (outdoor 300 MHz).

    Raises:
        ConfigError: unknown split or env.
        DataError: ``folder`` is a file, or the file is not there (or is a directory).
    """
    if split not in _COST2100_SPLITS:
        raise ConfigError(f"split: expected one of {list(_COST2100_SPLITS)}, got {split!r}")
    if env not in _COST2100_ENVS:
        raise ConfigError(f"env: expected one of {list(_COST2100_ENVS)}, got {env!r}")
    if Path(folder).is_file():
        raise DataError(f"{folder}: expected the folder holding CsiNet's DATA_H*.mat files, got a file")
    path = Path(folder) / f"DATA_H{split}{env}.mat"
    if path.is_dir():
        raise DataError(f"{path}: expected CsiNet's COST2100 file here, got a directory")
    if not path.is_file():
        raise DataError(f"{path}: expected CsiNet's COST2100 file here, got no such file")
    return path


def load_cost2100(path: str | os.PathLike, *, key: str = "HT") -> torch.Tensor:
    """Load a CsiNet COST2100 file as a float32 tensor ``[N, 2, 32, 32]``.

    The file holds ``key`` (default ``"HT"``): real ``(N, 2048)`` values in ``[0, 1]``.
    Each row is reshaped in C order as CsiNet does, ``x.reshape(N, 2, 32, 32)``: channel 0
    is the (scaled) real part, channel 1 the imaginary part, each ``[32 angle, 32 delay]``.

    Raises:
        DataError: missing key (the message lists the keys present), shape not
            ``(N, 2048)``, non-real dtype, NaN/inf, or values outside ``[0, 1]``.
    """
    path = Path(path)
    x = _pick(read_mat(path), key, path)
    if not np.issubdtype(x.dtype, np.floating):
        raise DataError(f"{path}: expected {key!r} to be real floating, got dtype {x.dtype}")
    if x.ndim != 2 or x.shape[1] != _COST2100_SIZE:
        raise DataError(f"{path}: expected {key!r} to be 2-D with {_COST2100_SIZE} columns "
                        f"(N, {_COST2100_SIZE}), got {tuple(x.shape)}")
    _check_finite(x, key, path)
    if x.size:
        lo, hi = float(x.min()), float(x.max())
        if lo < -_RANGE_TOL or hi > 1 + _RANGE_TOL:
            raise DataError(f"{path}: expected {key!r} values in [0, 1] (CsiNet's scaling), "
                            f"got range [{lo:.6g}, {hi:.6g}]")
    # Clip only the round-off that the tolerance let through.
    x = np.clip(np.asarray(x, dtype=np.float32), 0.0, 1.0)
    return torch.from_numpy(np.ascontiguousarray(x.reshape(x.shape[0], 2, 32, 32)))


# --------------------------------------------------------------------------- multi-user


def load_multiuser(path: str | os.PathLike, *, key: str | None = None) -> torch.Tensor:
    """Load a multi-user channel ``(N, K, M)`` as a complex64 tensor ``[N, K, M]``.

    N samples, K users, M base-station antennas.

    Args:
        key: the variable to read; by default the single variable whose name starts
            with ``"H_mu"``.

    Raises:
        DataError: no or several ``H_mu*`` variables (when ``key`` is None), missing key,
            not 3-D, not complex, or NaN/inf.
    """
    path = Path(path)
    mats = read_mat(path)
    if key is None:
        found = sorted(k for k in mats if k.startswith("H_mu"))
        if len(found) != 1:
            got = f"several: {found}" if found else f"none among keys present: {sorted(mats)}"
            raise DataError(f"{path}: expected exactly one variable starting with 'H_mu' "
                            f"(or pass key=), got {got}")
        key = found[0]
    x = _pick(mats, key, path)
    if not np.iscomplexobj(x):
        raise DataError(f"{path}: expected {key!r} (H_mu) to be complex, got dtype {x.dtype}")
    if x.ndim != 3:
        raise DataError(f"{path}: expected {key!r} to be 3-D (N, K, M), got {tuple(x.shape)}")
    _check_finite(x, key, path)
    return torch.from_numpy(np.ascontiguousarray(x, dtype=np.complex64))


# --------------------------------------------------------------------------- detection


def load_mat_channels(path: str | os.PathLike) -> tuple[str, torch.Tensor]:
    """Recognize and load a channel ``.mat`` file: ``("cost2100", [N, 2, 32, 32])`` when it
    holds ``HT``, ``("multiuser", [N, K, M])`` when it holds an ``H_mu*`` variable.

    Raises:
        DataError: neither layout (the message lists the keys present), or the layout's checks fail.
    """
    path = Path(path)
    keys = sorted(read_mat(path))
    if "HT" in keys:
        return "cost2100", load_cost2100(path)
    if any(k.startswith("H_mu") for k in keys):
        return "multiuser", load_multiuser(path)
    raise DataError(f"{path}: expected a COST2100 file (variable 'HT') or a multi-user file "
                    f"(variable 'H_mu...'), got keys present: {keys}")
