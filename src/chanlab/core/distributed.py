"""Data-parallel training across processes: PyTorch's own ``torch.distributed``.

    chanlab run gridization/synthetic --preset paper --nproc 4        # or: torchrun --nproc-per-node 4 -m chanlab ...

A run started by ``torchrun`` (or by ``chanlab run --nproc N``, which starts it) has ``WORLD_SIZE``,
``RANK``, ``LOCAL_RANK``, ``MASTER_ADDR`` and ``MASTER_PORT`` in its environment;
:func:`init_from_env` joins the process group (NCCL on GPUs, one GPU per local rank; gloo on CPUs).
The training engine (:class:`chanlab.core.engine.Trainer`) then

* splits every global batch into ``WORLD_SIZE`` contiguous shards (:func:`shard`), one per rank
  (the batches themselves are the same on every rank: one seeded generator);
* has each rank backpropagate the mean loss of its shard, weights its gradients by
  ``len(shard) / len(batch)`` and sums them over the ranks (:func:`reduce_gradients`): exactly the
  gradient of the global batch's mean loss, so a run on N processes follows the one-process run
  with the same global batch up to floating-point summation order (for models without BatchNorm,
  whose statistics stay per rank, and steps that draw no random numbers);
* lets only rank 0 write: checkpoints (:func:`is_main`), results, figures and the log. Every rank
  reads the same checkpoints on resume, so a run resumes on any number of processes.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping

import torch

from chanlab.core.errors import ConfigError


def _dist():
    import torch.distributed as dist

    return dist if dist.is_available() and dist.is_initialized() else None


def world() -> tuple[int, int]:
    """``(rank, world size)``: ``(0, 1)`` outside a process group."""
    dist = _dist()
    return (dist.get_rank(), dist.get_world_size()) if dist is not None else (0, 1)


def is_main() -> bool:
    """Whether this process writes (rank 0, or no process group)."""
    return world()[0] == 0


def env_world_size() -> int:
    """``WORLD_SIZE`` from the environment (1 when unset)."""
    try:
        return int(os.environ.get("WORLD_SIZE", "1"))
    except ValueError:
        raise ConfigError(f"WORLD_SIZE: expected a whole number, got {os.environ.get('WORLD_SIZE')!r}") from None


def init_from_env(device: torch.device) -> torch.device:
    """Join the process group described by the environment when ``WORLD_SIZE > 1``; returns the device
    this rank uses (``cuda:LOCAL_RANK`` on GPUs)."""
    import torch.distributed as dist

    if env_world_size() <= 1 or _dist() is not None:
        return device
    missing = [k for k in ("RANK", "MASTER_ADDR", "MASTER_PORT") if k not in os.environ]
    if missing:
        raise ConfigError(f"WORLD_SIZE > 1 but {', '.join(missing)} unset: start the run with torchrun "
                          f"or chanlab run --nproc N")
    if device.type == "cuda":
        device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
        torch.cuda.set_device(device)
    dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    return device


def shard(idx: torch.Tensor) -> torch.Tensor:
    """This rank's contiguous part of a global batch of indices (possibly empty)."""
    rank, size = world()
    return idx if size == 1 else torch.tensor_split(idx, size)[rank]


def reduce_gradients(params: Iterable[torch.nn.Parameter], weight: float) -> None:
    """Sum over the ranks of each gradient times ``weight`` (a rank without a gradient adds zeros)."""
    dist = _dist()
    if dist is None:
        return
    for p in params:
        if not p.requires_grad:
            continue
        if p.grad is None:
            p.grad = torch.zeros_like(p)
        else:
            p.grad.mul_(weight)
        dist.all_reduce(p.grad)


def reduce_values(values: Mapping[str, float], weight: float) -> dict[str, float]:
    """Sum over the ranks of ``weight * value`` for every name (the same names on every rank)."""
    dist = _dist()
    if dist is None:
        return dict(values)
    names = sorted(values)
    device = torch.device("cuda", torch.cuda.current_device()) if dist.get_backend() == "nccl" else "cpu"
    t = torch.tensor([weight * float(values[k]) for k in names], dtype=torch.float64, device=device)
    dist.all_reduce(t)
    return dict(zip(names, t.cpu().tolist()))


__all__ = ["env_world_size", "init_from_env", "is_main", "reduce_gradients", "reduce_values", "shard", "world"]
