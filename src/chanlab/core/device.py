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


# The default number of torch intra-op threads for `chanlab run / verify / demo`. Chosen by
# measurement: benchmarks/bench_threads.py on an idle 2-core machine found two threads 1.17-1.41x
# faster than one on the quick training workloads (benchmarks/README.md), so the default is
# torch's own (one per core). On cores shared with another job one thread wins; --threads 1 then.
DEFAULT_THREADS: int | None = None


def resolve_threads(n: int | str | None = None) -> int | None:
    """The thread count to use: ``n``, else ``$CHANLAB_THREADS``, else :data:`DEFAULT_THREADS`
    (``None``: leave torch's default)."""
    import os

    source = "--threads"
    if n is None:
        n, source = os.environ.get("CHANLAB_THREADS") or None, "CHANLAB_THREADS"
    if n is None:
        return DEFAULT_THREADS
    try:
        value = int(n)
    except (TypeError, ValueError):
        value = 0
    if isinstance(n, bool) or value < 1:
        raise ConfigError(f"{source}: expected a positive number of threads, got {n!r}")
    return value


def set_threads(n: int | str | None = None) -> int:
    """Set torch's intra-op thread count (:func:`resolve_threads`); the count now in force."""
    value = resolve_threads(n)
    if value is not None:
        torch.set_num_threads(value)
    return torch.get_num_threads()
