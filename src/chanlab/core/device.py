"""Device selection: ``auto`` picks CUDA when present, else CPU."""

from __future__ import annotations

import torch

from chanlab.core.errors import ConfigError


def select_device(name: str | torch.device | None = "auto") -> torch.device:
    """Return the torch device for ``name``.

    ``"auto"`` (or None) gives ``cuda`` when a GPU is visible and ``cpu`` otherwise;
    ``"cpu"``, ``"cuda"`` and ``"cuda:N"`` are checked against what is present.
    """
    if isinstance(name, torch.device):
        name = str(name)
    if name is None or name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except (RuntimeError, TypeError) as exc:
        raise ConfigError(f"device: expected 'auto', 'cpu', 'cuda' or 'cuda:N', got {name!r}") from exc
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise ConfigError(f"device: {name!r} requested but no CUDA GPU is visible to torch")
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise ConfigError(
                f"device: {name!r} requested but only {torch.cuda.device_count()} GPU(s) are visible")
    elif device.type != "cpu":
        raise ConfigError(f"device: expected 'auto', 'cpu', 'cuda' or 'cuda:N', got {name!r}")
    return device
