"""Beam-pattern changes an operator makes on a panel: electrical tilt, azimuth steering, beam spread.

A :class:`BeamPattern` is a change applied to the CSI-RS beams of an
:class:`~chanlab.channels.lscm.LscmPanel`: every beam's down-tilt is ``tilt_offset + tilt_spread ·
tilt`` and every beam's azimuth ``azimuth_offset + azimuth_spread · azimuth``. The number of beams
stays the same, so RSRP measured under any pattern has the panel's M entries. All beams stay
unit-norm, so each radiates the same power; :func:`power_limited` enforces the paper's per-beam
constraint ``Σ_n [A]_{m,n} ≤ P_max`` (Section IV-D) on the angular grid, where the element pattern
makes a beam's captured power depend on where it points.

:data:`WALKING_TEST_PATTERNS` are the ten rounds of the walking test (round 1 is the panel as
configured; the others are the kinds of re-configuration in the paper's Fig. 9).
"""

from __future__ import annotations

import itertools
from dataclasses import asdict, dataclass, replace

import torch

from chanlab.channels.lscm import LscmPanel
from chanlab.core.errors import ConfigError


@dataclass(frozen=True)
class BeamPattern:
    """One configuration of the panel's beams (module docstring). Angles in degrees."""

    tilt_offset_deg: float = 0.0
    azimuth_offset_deg: float = 0.0
    tilt_spread: float = 1.0
    azimuth_spread: float = 1.0

    def __post_init__(self):
        if not 0.1 <= self.tilt_spread <= 3 or not 0.1 <= self.azimuth_spread <= 3:
            raise ConfigError(f"BeamPattern: spreads must lie in [0.1, 3], got tilt {self.tilt_spread} "
                              f"and azimuth {self.azimuth_spread}")
        if abs(self.azimuth_offset_deg) > 60 or not -30 <= self.tilt_offset_deg <= 30:
            raise ConfigError(f"BeamPattern: expected |azimuth offset| <= 60° and |tilt offset| <= 30°, got "
                              f"{self.azimuth_offset_deg}° and {self.tilt_offset_deg}°")

    def apply(self, panel: LscmPanel) -> LscmPanel:
        """The panel with this pattern's beams."""
        return replace(panel,
                       beam_tilts_deg=tuple(self.tilt_offset_deg + self.tilt_spread * t for t in panel.beam_tilts_deg),
                       beam_azimuths_deg=tuple(self.azimuth_offset_deg + self.azimuth_spread * a
                                               for a in panel.beam_azimuths_deg))

    def label(self) -> str:
        return (f"tilt {self.tilt_offset_deg:+g}° ×{self.tilt_spread:g}, "
                f"azimuth {self.azimuth_offset_deg:+g}° ×{self.azimuth_spread:g}")

    def to_dict(self) -> dict[str, float]:
        return asdict(self)


WALKING_TEST_PATTERNS: tuple[BeamPattern, ...] = (
    BeamPattern(),                                                   # 1: as configured (training round)
    BeamPattern(tilt_offset_deg=3.0),                                # 2: more down-tilt
    BeamPattern(tilt_offset_deg=-3.0),                               # 3: less down-tilt
    BeamPattern(azimuth_offset_deg=7.5),                             # 4: steered left by half a beam
    BeamPattern(azimuth_offset_deg=-7.5),                            # 5: steered right
    BeamPattern(azimuth_spread=0.8),                                 # 6: narrower sector
    BeamPattern(azimuth_spread=1.2),                                 # 7: wider sector
    BeamPattern(tilt_spread=0.5),                                    # 8: tilts packed near the horizon
    BeamPattern(tilt_offset_deg=2.0, azimuth_offset_deg=5.0),        # 9: tilt and steer
    BeamPattern(tilt_offset_deg=-2.0, azimuth_spread=1.1, tilt_spread=1.2),  # 10: mixed
)


def pattern_family(tilt_offsets_deg=(-4.0, -2.0, 0.0, 2.0, 4.0, 6.0), azimuth_offsets_deg=(-10.0, -5.0, 0.0, 5.0, 10.0),
                   azimuth_spreads=(0.8, 1.0, 1.2), tilt_spreads=(0.75, 1.0, 1.25)) -> list[BeamPattern]:
    """Every combination of the given values: the search space of beam-pattern optimization."""
    return [BeamPattern(t, a, ts, s) for t, a, s, ts in itertools.product(
        tilt_offsets_deg, azimuth_offsets_deg, azimuth_spreads, tilt_spreads)]


def power_limited(beam_pattern: torch.Tensor, p_max: float) -> torch.Tensor:
    """Scale down every beam whose power on the angular grid exceeds ``p_max``: ``[M, N] → [M, N]``.

    The constraint is ``Σ_n [A]_{m,n} ≤ P_max`` for every beam m (Section IV-D).
    """
    if p_max <= 0:
        raise ConfigError(f"p_max: expected a positive power, got {p_max}")
    sums = beam_pattern.sum(1, keepdim=True)
    return beam_pattern * (p_max / sums).clamp(max=1.0)
