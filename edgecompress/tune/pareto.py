"""The Pareto front of measured trials and its hypervolume, computed here.

Optuna has both, but only in private modules (`optuna.study._multi_objective`,
`optuna._hypervolume`) that a minor release may move; a tune has tens of trials and at most
five objectives, so a plain implementation is fast enough and depends on nothing but NumPy.
tests/test_tune_pareto.py checks both against brute force on random points.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

#: the reference point of a normalised front: a little beyond the worst value of every objective
REFERENCE = 1.1


def as_losses(points: Sequence[Sequence[float]], directions: Sequence[str]) -> np.ndarray:
    """Points as values to minimise (maximised objectives negated)."""
    signs = np.array([-1.0 if d == "maximize" else 1.0 for d in directions])
    return np.asarray(points, dtype=np.float64).reshape(-1, len(directions)) * signs


def _non_dominated(losses: np.ndarray) -> np.ndarray:
    """True where no other row is <= in every column and < in one (equal rows all stay)."""
    no_worse = (losses[:, None, :] <= losses[None, :, :]).all(axis=2)  # [i, j]: i is nowhere worse than j
    better = (losses[:, None, :] < losses[None, :, :]).any(axis=2)
    dominated_by = no_worse & better  # [i, j]: i dominates j
    return np.asarray(~dominated_by.any(axis=0), dtype=bool)


def front_mask(points: Sequence[Sequence[float]], directions: Sequence[str]) -> np.ndarray:
    """True for every point no other point dominates (ties all stay on the front)."""
    losses = as_losses(points, directions)
    if len(losses) == 0:
        return np.zeros(0, dtype=bool)
    return _non_dominated(losses)


def bounds(point_sets: Sequence[Sequence[Sequence[float]]], directions: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
    """Best and worst loss of each objective over several searches: the common scale their hypervolumes need."""
    stacked = [as_losses(points, directions) for points in point_sets if len(points)]
    if not stacked:
        raise ValueError("no points")
    everything = np.vstack(stacked)
    return everything.min(axis=0), everything.max(axis=0)


def dominated_volume(losses: np.ndarray, reference: np.ndarray) -> float:
    """The volume of the union of the boxes [point, reference] (losses to minimise).

    Slicing along the last objective: between two consecutive values of it, the dominated
    region's cross-section is the (d-1)-dimensional volume of the points at or below the
    slice. Exact; O(n^(d-1) log n), ample for a tune's fronts.
    """
    inside = losses[(losses < reference).all(axis=1)]
    if len(inside) == 0:
        return 0.0
    inside = inside[_non_dominated(inside)]
    if inside.shape[1] == 1:
        return float(reference[0] - inside[:, 0].min())
    order = np.argsort(inside[:, -1], kind="stable")
    inside = inside[order]
    volume = 0.0
    for i in range(len(inside)):
        top = inside[i + 1, -1] if i + 1 < len(inside) else reference[-1]
        height = top - inside[i, -1]
        if height > 0:
            volume += height * dominated_volume(inside[: i + 1, :-1], reference[:-1])
    return float(volume)


def hypervolume(
    points: Sequence[Sequence[float]], directions: Sequence[str], low: np.ndarray, high: np.ndarray
) -> float:
    """The share of the normalised objective box ([low, high] -> [0, 1], reference 1.1) the front dominates."""
    if len(points) == 0:
        return 0.0
    losses = as_losses(points, directions)
    span = np.where(high > low, high - low, 1.0)
    scaled = np.minimum((losses - low) / span, REFERENCE)
    return dominated_volume(scaled, np.full(len(directions), REFERENCE))


__all__ = ["REFERENCE", "as_losses", "bounds", "dominated_volume", "front_mask", "hypervolume"]
