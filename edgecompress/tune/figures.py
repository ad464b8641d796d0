"""The tune report's figures: accuracy against size and against latency, every measured trial.

Pareto trials are drawn at their mean over seeds with error bars of one standard deviation
(both axes), the others as grey points; trials that fail the acceptance rules are hollow.
The front in the two axes shown is drawn as a step line (a trial can be on the full front
through the third objective and still sit behind it here).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from edgecompress.reporting.plots import PALETTE, _save, pyplot
from edgecompress.tune.pareto import front_mask


@dataclass(frozen=True)
class TrialPoint:
    label: str  # 'T7' for trial-0007
    x: float
    y: float
    x_std: float = 0.0
    y_std: float = 0.0
    pareto: bool = False
    passes: bool = True


def front(
    points: list[TrialPoint], path: Path, *, x_label: str, x_direction: str, title: str, log_x: bool = False
) -> Path | None:
    """Accuracy (y, higher is better) against one cost (x), every trial, Pareto trials with error bars."""
    points = [p for p in points if np.isfinite(p.x) and np.isfinite(p.y)]
    if not points:
        return None
    plt = pyplot()
    figure, axis = plt.subplots(figsize=(7.2, 4.4))
    for p in points:
        if p.pareto:
            continue
        axis.scatter(p.x, p.y, s=28, color="#999999", facecolors="#999999" if p.passes else "none", zorder=2)
        axis.annotate(p.label, (p.x, p.y), textcoords="offset points", xytext=(4, 3), fontsize=7, color="#666666")
    pareto = [p for p in points if p.pareto]
    for index, p in enumerate(pareto):
        colour = PALETTE[index % len(PALETTE)]
        axis.errorbar(
            p.x,
            p.y,
            xerr=p.x_std or None,
            yerr=p.y_std or None,
            fmt="o",
            color=colour,
            ecolor=colour,
            elinewidth=1.2,
            capsize=3,
            markersize=7,
            markerfacecolor=colour if p.passes else "white",
            zorder=4,
        )
        axis.annotate(p.label, (p.x, p.y), textcoords="offset points", xytext=(6, 6), fontsize=8, color=colour)
    mask = front_mask([[p.x, p.y] for p in points], [x_direction, "maximize"])
    on = sorted((p for p, keep in zip(points, mask) if keep), key=lambda p: p.x)
    if len(on) > 1:
        axis.step(
            [p.x for p in on],
            [p.y for p in on],
            where="post" if x_direction == "minimize" else "pre",
            color="#444444",
            linewidth=0.9,
            linestyle="--",
            zorder=1,
            label="front in these two axes",
        )
        axis.legend(loc="lower right", fontsize=8)
    if log_x and min(p.x for p in points) > 0 and max(p.x for p in points) / min(p.x for p in points) > 20:
        axis.set_xscale("log")
    axis.set_xlabel(x_label)
    axis.set_ylabel("accuracy on the board (%)")
    axis.set_title(title, fontsize=10)
    axis.grid(alpha=0.3)
    axis.margins(x=0.12, y=0.15)
    return _save(figure, path)


def hypervolume_history(values: list[float], path: Path, *, title: str) -> Path | None:
    """Hypervolume of the front after each measured trial: how fast the search found its trade-offs."""
    if len(values) < 2:
        return None
    plt = pyplot()
    figure, axis = plt.subplots(figsize=(6.4, 3.2))
    axis.plot(range(1, len(values) + 1), values, marker="o", markersize=3, color=PALETTE[0])
    axis.set_xlabel("measured trials")
    axis.set_ylabel("hypervolume (normalised)")
    axis.set_title(title, fontsize=10)
    axis.grid(alpha=0.3)
    return _save(figure, path)


__all__ = ["TrialPoint", "front", "hypervolume_history"]
