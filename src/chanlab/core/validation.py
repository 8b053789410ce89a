"""Input checks shared by every public function.

Each check raises :class:`~chanlab.core.errors.DataError` (or the class passed as ``error``)
with a message naming the argument, what was expected and what came.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from chanlab.core.errors import ChanlabError, DataError

ArrayLike = torch.Tensor | np.ndarray


def _shape(x: ArrayLike) -> tuple[int, ...]:
    return tuple(int(s) for s in x.shape)


def check_ndim(x: ArrayLike, ndim: int | Sequence[int], name: str, layout: str = "",
               error: type[ChanlabError] = DataError) -> None:
    """Raise unless ``x`` has ``ndim`` dimensions (or one of several)."""
    allowed = (ndim,) if isinstance(ndim, int) else tuple(ndim)
    if x.ndim not in allowed:
        want = " or ".join(f"{d}-D" for d in allowed)
        hint = f" {layout}" if layout else ""
        raise error(f"{name}: expected a {want} array{hint}, got shape {_shape(x)}")


def check_shape(x: ArrayLike, shape: Sequence[int | None], name: str,
                error: type[ChanlabError] = DataError) -> None:
    """Raise unless ``x.shape`` matches ``shape``; ``None`` entries match any size."""
    got = _shape(x)
    if len(got) != len(shape) or any(s is not None and s != g for s, g in zip(shape, got)):
        want = "[" + ", ".join("*" if s is None else str(s) for s in shape) + "]"
        raise error(f"{name}: expected shape {want}, got {list(got)}")


def check_finite(x: ArrayLike, name: str, error: type[ChanlabError] = DataError) -> None:
    """Raise if ``x`` holds NaN or infinite values."""
    if isinstance(x, torch.Tensor):
        ok = bool(torch.isfinite(x).all()) if x.numel() else True
    else:
        ok = bool(np.isfinite(x).all()) if x.size else True
    if not ok:
        raise error(f"{name}: contains NaN or infinite values")


def operand_dtype(a: torch.Tensor, b: torch.Tensor, names: tuple[str, str], finite: bool = True) -> torch.dtype:
    """Check that two tensors of one product sit on one device (and, with ``finite``, hold no
    NaN or inf); return their promoted dtype."""
    if a.device != b.device:
        raise DataError(f"{names[0]}, {names[1]}: expected tensors on one device, got {a.device} and {b.device}")
    if finite:
        check_finite(a, names[0])
        check_finite(b, names[1])
    return torch.promote_types(a.dtype, b.dtype)


def check_complex(x: ArrayLike, name: str, error: type[ChanlabError] = DataError) -> None:
    """Raise unless ``x`` has a complex dtype."""
    is_complex = x.is_complex() if isinstance(x, torch.Tensor) else np.iscomplexobj(x)
    if not is_complex:
        raise error(f"{name}: expected a complex array, got dtype {x.dtype}")


def check_real(x: ArrayLike, name: str, error: type[ChanlabError] = DataError) -> None:
    """Raise unless ``x`` has a real floating dtype."""
    if isinstance(x, torch.Tensor):
        ok = x.is_floating_point()
    else:
        ok = np.issubdtype(x.dtype, np.floating)
    if not ok:
        raise error(f"{name}: expected a real floating-point array, got dtype {x.dtype}")


def check_positive(value: float, name: str, error: type[ChanlabError] = DataError,
                   allow_zero: bool = False) -> None:
    """Raise unless the scalar ``value`` is > 0 (or >= 0 with ``allow_zero``)."""
    bad = value < 0 if allow_zero else value <= 0
    if bad or not np.isfinite(value):
        bound = ">= 0" if allow_zero else "> 0"
        raise error(f"{name}: expected a finite number {bound}, got {value}")


def check_int_range(value: int, name: str, low: int | None = None, high: int | None = None,
                    error: type[ChanlabError] = DataError) -> None:
    """Raise unless ``value`` is an integer with ``low <= value <= high``."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise error(f"{name}: expected an integer, got {value!r}")
    if (low is not None and value < low) or (high is not None and value > high):
        lo = "-inf" if low is None else low
        hi = "inf" if high is None else high
        raise error(f"{name}: expected an integer in [{lo}, {hi}], got {value}")


def as_tensor(x: ArrayLike, name: str) -> torch.Tensor:
    """Return ``x`` as a tensor (no copy for tensors), rejecting other types."""
    if isinstance(x, torch.Tensor):
        return x
    if isinstance(x, np.ndarray):
        return torch.from_numpy(x)
    raise DataError(f"{name}: expected a torch.Tensor or numpy.ndarray, got {type(x).__name__}")


def check_samples(x: ArrayLike, name: str, layout: str = "[n_samples, dim]") -> torch.Tensor:
    """A nonempty 2-D real finite sample matrix (tensor or array), returned as a tensor."""
    t = as_tensor(x, name)
    check_ndim(t, 2, name, layout)
    check_real(t, name)
    check_finite(t, name)
    if t.shape[0] < 1 or t.shape[1] < 1:
        raise DataError(f"{name}: expected at least one sample and one column {layout}, got shape {list(t.shape)}")
    return t
