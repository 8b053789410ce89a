"""Figures where every curve stays visible: distinct markers and line styles, and a legend note
for curves that coincide (identical results would otherwise hide each other's lines)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

MARKERS = ("o", "s", "^", "v", "D", "<", ">", "p", "h", "*", "X", "d")
LINESTYLES = ("-", "--", "-.", ":")


def curve_style(i: int) -> dict[str, Any]:
    """Marker, line style and marker size of the ``i``-th curve: no two of the first 12 share a
    marker, consecutive ones differ in line style, and later markers are drawn smaller so that a
    curve on top of another leaves the one below visible around it."""
    return {"marker": MARKERS[i % len(MARKERS)], "linestyle": LINESTYLES[i % len(LINESTYLES)],
            "markersize": max(7.0 - 0.5 * (i % 8), 3.0)}


def coinciding_labels(curves: Mapping[str, Sequence[float]], rtol: float = 1e-9) -> dict[str, str]:
    """Each label, with " (= FIRST)" appended where its values equal an earlier curve's."""
    out: dict[str, str] = {}
    seen: list[tuple[str, np.ndarray]] = []
    for label, values in curves.items():
        y = np.asarray(values, dtype=float)
        twin = next((other for other, v in seen if v.shape == y.shape and np.allclose(v, y, rtol=rtol,
                                                                                        equal_nan=True)), None)
        out[label] = label if twin is None else f"{label} (= {twin})"
        seen.append((label, y))
    return out


def plot_curves(ax: Any, x: Sequence[float] | Mapping[str, Sequence[float]], curves: Mapping[str, Sequence[float]],
                **kwargs: Any) -> dict[str, Any]:
    """Plot every curve of ``curves`` (label → y values) against ``x`` (one x for all, or one per
    label) with :func:`curve_style`, legend labels marked by :func:`coinciding_labels`; the lines
    by label. ``kwargs`` (e.g. ``lw``) override the style for every curve."""
    labels = coinciding_labels(curves)
    lines = {}
    for i, (label, y) in enumerate(curves.items()):
        xs = x[label] if isinstance(x, Mapping) else x
        lines[label], = ax.plot(xs, y, label=labels[label], **{**curve_style(i), **kwargs})
    return lines
