"""Beam-pattern optimization on a gridizer's grid CAPS (gridization paper, eqs. 28–31).

Eq. (31) picks the pattern that maximizes the grids' predicted average RSRP,
``max_{A ∈ C(A)} Σ_k ȳ_k`` with ``ȳ_k = A x̄_k``. A grid's RSRP is a vector over beams; what an
operator maximizes is the coverage a UE sees, its best beam. So the objective here is the
**mean over grids of the best beam's predicted RSRP in dBm**, each grid counting once as in
eq. (28). The constraint ``C(A)`` is the per-beam power limit ``Σ_n [A]_{m,n} ≤ P_max``
(:func:`chanlab.channels.beam_patterns.power_limited`), with ``P_max`` the largest beam power
of the current configuration, so no candidate radiates more than today's strongest beam.

The search is exhaustive over a finite family of :class:`~chanlab.channels.beam_patterns.BeamPattern`
(tilt, azimuth, spreads); every candidate costs one ``[K, N] × [N, M]`` product.
:func:`measured_coverage` is the same objective on measurements, to check a prediction against a
re-simulated walking test.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch

from chanlab.channels.beam_patterns import BeamPattern, power_limited
from chanlab.core.errors import ConfigError
from chanlab.core.progress import progress
from chanlab.gridization.field import predict_grid_dbm
from chanlab.metrics.grid_rsrp import grid_mean_dbm


def predicted_coverage(grid_caps: torch.Tensor, beam_pattern: torch.Tensor) -> float:
    """Mean over grids with a nonzero CAPS of the best beam's predicted RSRP (dBm): ``[K, N], [M, N] → float``."""
    live = grid_caps.sum(1) > 0
    if not live.any():
        raise ConfigError("grid_caps: every grid's CAPS is zero; nothing to optimize")
    return float(predict_grid_dbm(grid_caps[live], beam_pattern).max(1).values.mean())


def measured_coverage(rsrp_dbm: torch.Tensor, labels: torch.Tensor, n_grids: int) -> float:
    """Mean over grids holding samples of the best beam's mean reported RSRP (dBm)."""
    mean, counts = grid_mean_dbm(rsrp_dbm, labels, n_grids)
    return float(mean[counts > 0].max(1).values.mean())


@dataclass
class PatternSearch:
    """Result of :func:`search_beam_patterns`.

    Attributes:
        patterns: the candidates, in the order searched.
        predicted: ``[C]`` predicted coverage (dBm) of each candidate.
        power_scale: ``[C, M]`` per-beam power factor that the constraint applied (1 = untouched).
        best: index of the best candidate.
    """

    patterns: list[BeamPattern]
    predicted: torch.Tensor
    power_scale: torch.Tensor
    best: int

    @property
    def best_pattern(self) -> BeamPattern:
        return self.patterns[self.best]


def search_beam_patterns(grid_caps: torch.Tensor, patterns: Sequence[BeamPattern],
                         beam_pattern_of: Callable[[BeamPattern], torch.Tensor], *, p_max: float) -> PatternSearch:
    """Eq. (31) by exhaustive search (module docstring).

    Args:
        grid_caps: ``[K, N]`` grid CAPS of a fitted gridizer (eq. 30).
        patterns: the candidates.
        beam_pattern_of: pattern → its ``A`` ``[M, N]`` (e.g. ``WalkingTest.beam_pattern``).
        p_max: the per-beam power limit.
    """
    if not patterns:
        raise ConfigError("patterns: expected at least one candidate")
    scores, scales = [], []
    for pattern in progress(patterns, desc="beam patterns", unit="pattern"):
        a = beam_pattern_of(pattern)
        limited = power_limited(a, p_max)
        scales.append(limited.sum(1) / a.sum(1))
        scores.append(predicted_coverage(grid_caps, limited))
    predicted = torch.tensor(scores, dtype=torch.float64)
    return PatternSearch(list(patterns), predicted, torch.stack(scales), int(predicted.argmax()))
