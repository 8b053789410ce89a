"""FLOPs of a module's forward pass, counted by ``torch.utils.flop_counter``."""

from __future__ import annotations

from collections.abc import Callable
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


def real_multiplications(fn: Callable[..., Any], *args: Any, grad: bool = False, **kwargs: Any) -> float:
    """Real multiplications of ``fn(*args, **kwargs)`` by torch's FLOP counter.

    Half the counted FLOPs (a multiply-add is 2), times 4 for an operator with complex
    operands (a complex multiplication is 4 real ones). Only the operators the counter knows
    (matmul, convolutions, ...) count: element-wise work, ``eigh`` and root searches do not,
    so this is a lower bound for every method. ``grad=True`` runs ``fn`` with autograd on and
    counts its backward passes too (for methods that ascend a gradient, such as
    :class:`chanlab.cellfree.unfolded.UnfoldedRobustAscent`).
    """
    from torch.utils._pytree import tree_flatten
    from torch.utils.flop_counter import flop_registry

    def complex_aware(formula):
        def count(*a, out_val=None, **kw):
            n = formula(*a, out_val=out_val, **kw)
            return 4 * n if any(isinstance(t, torch.Tensor) and t.is_complex()
                                for t in tree_flatten((a, kw))[0]) else n
        count._get_raw = True
        return count

    mapping = {op: complex_aware(f) for op, f in flop_registry.items()}
    with torch.set_grad_enabled(grad), FlopCounterMode(display=False, custom_mapping=mapping) as counter:
        fn(*args, **kwargs)
    return counter.get_total_flops() / 2
