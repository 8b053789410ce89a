"""Input checks shared by the feedback quantizers (scalar codebooks, uniform, shared vector)."""

from __future__ import annotations

import torch

from chanlab.core.errors import DataError
from chanlab.core.validation import as_tensor, check_finite, check_ndim, check_real


def check_outputs(z, n_outputs: int) -> torch.Tensor:
    """Encoder outputs: a finite real ``[batch, n_outputs]`` tensor."""
    z = as_tensor(z, "z")
    check_ndim(z, 2, "z", "[batch, M]")
    if z.shape[1] != n_outputs:
        raise DataError(f"z: expected [batch, M = {n_outputs}], got {list(z.shape)}")
    check_real(z, "z")
    check_finite(z, "z")
    return z


def check_indices(indices, n_symbols: int, limit: torch.Tensor | int, layout: str = "[batch, M]") -> torch.Tensor:
    """Codeword indices: integer ``[batch, n_symbols]`` with ``0 <= index < limit`` (per symbol or one bound)."""
    indices = as_tensor(indices, "indices")
    check_ndim(indices, 2, "indices", layout)
    if indices.shape[1] != n_symbols or indices.is_floating_point() or indices.is_complex():
        raise DataError(f"indices: expected an integer tensor {layout} with {n_symbols} symbols, "
                        f"got {indices.dtype} {list(indices.shape)}")
    if indices.numel():
        bound = limit.to(indices.device)[None, :] if isinstance(limit, torch.Tensor) else limit
        if bool(((indices < 0) | (indices >= bound)).any()):
            raise DataError(f"indices: every index must lie in [0, {'2^{B_m}' if isinstance(limit, torch.Tensor) else limit}) "
                            "of its symbol")
    return indices.to(torch.int64)
