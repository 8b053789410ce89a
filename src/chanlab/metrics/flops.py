"""FLOPs of a module's forward pass, counted by ``torch.utils.flop_counter``."""

from __future__ import annotations

from typing import Any

import torch
from torch.utils.flop_counter import FlopCounterMode


def count_flops(module: torch.nn.Module, *inputs: Any, **kwargs: Any) -> int:
    """Floating-point operations of ``module(*inputs, **kwargs)`` (a multiply-add counts 2).

    Only the operators torch's counter knows (matmul, convolutions, attention, …) are
    counted; element-wise work is not. Runs under ``torch.no_grad``.
    """
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        module(*inputs, **kwargs)
    return int(counter.get_total_flops())
