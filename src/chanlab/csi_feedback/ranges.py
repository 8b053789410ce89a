"""Dynamic ranges of encoder outputs (Fig. 2) and how much bit allocation can gain from them.

Section III of the bit-allocation paper rests on one observation: the encoder outputs ``z_m``
have distinct dynamic ranges, so equal bits are suboptimal. Whether that holds for a trained
model decides whether *Proposed* can differ from *Proposed-var1* (equal bits, fixed β) by more
than the β' weighting. :func:`range_report` measures both sides of it on the same samples: the
paper's normalized standard deviations ``σ_m / σ̄`` and what the iterative allocation of
Section III-A (:func:`chanlab.quant.scalar_codebooks.allocate_bits`) does with them, started
from equal bits as Proposed is.

Why a small spread means no moves: a scalar quantizer's loss falls roughly as
``σ_m² 2^{−2 B_m}``, so moving one bit from output ``d`` to ``a`` pays only when
``l_d[B−1] − l_d[B] < l_a[B] − l_a[B+1]``, i.e. when ``σ_a / σ_d`` exceeds about 2
(1.7 at ``B = 2`` for Gaussian outputs, whose exact k-means losses are not quite geometric).
"""

from __future__ import annotations

from typing import Any

import torch

from chanlab.core.errors import DataError
from chanlab.core.validation import check_samples


def normalized_std(z) -> torch.Tensor:
    """``σ_m / σ̄`` of each encoder output (the quantity of Fig. 2).

    Args:
        z: ``[n, M]`` real encoder outputs, ``n >= 2``.

    Returns:
        ``[M]`` float64: the per-output standard deviations over the samples divided by their
        mean over the outputs (a constant output gives 0; all-constant outputs give all zeros).
    """
    z = check_samples(z, "z", "[n_samples, M]")
    if z.shape[0] < 2:
        raise DataError(f"z: expected at least 2 samples [n_samples, M] for a standard deviation, got {list(z.shape)}")
    sigma = z.detach().double().std(0)
    mean = sigma.mean()
    return sigma / mean if mean > 0 else torch.zeros_like(sigma)


def range_report(z, bits_per_output: int) -> dict[str, Any]:
    """The spread of ``z`` and the allocation Section III-A finds for it at ``B`` bits per output.

    Args:
        z: ``[n, M]`` encoder outputs (e.g. :func:`~chanlab.csi_feedback.training.encode_all`).
        bits_per_output: ``B``; the budget is ``M · B``.

    Returns:
        ``{"ratio_std", "ratio_max_over_min", "allocation_moves", "allocation_gain",
        "allocated_bits_min", "allocated_bits_max"}``: the standard deviation and the max/min of
        :func:`normalized_std`; the number of single-bit moves from equal bits, the relative
        decrease of the total quantization loss they bring (0 when none pays), and the range of
        the resulting ``B_m``.
    """
    from chanlab.quant.scalar_codebooks import allocate_bits

    ratio = normalized_std(z)
    alloc = allocate_bits(z, int(ratio.numel()) * int(bits_per_output))
    start = alloc.history[0]
    return {"ratio_std": float(ratio.std()),
            "ratio_max_over_min": float(ratio.max() / ratio.min()) if ratio.min() > 0 else float("inf"),
            "allocation_moves": len(alloc.moves),
            "allocation_gain": float(1 - alloc.loss / start) if start > 0 else 0.0,
            "allocated_bits_min": int(alloc.bits.min()), "allocated_bits_max": int(alloc.bits.max())}
