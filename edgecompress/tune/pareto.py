"""The Pareto front of measured trials and its hypervolume (Optuna's own implementations).

Optuna 5.0 keeps both in modules whose names start with an underscore; edgecompress pins
Optuna (pyproject) and uses them only here, so a move in a later Optuna is one file's change.
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


def front_mask(points: Sequence[Sequence[float]], directions: Sequence[str]) -> np.ndarray:
    """True for every point no other point dominates (ties all stay on the front)."""
    from optuna.study._multi_objective import _is_pareto_front

    losses = as_losses(points, directions)
    if len(losses) == 0:
        return np.zeros(0, dtype=bool)
    return np.asarray(_is_pareto_front(losses, assume_unique_lexsorted=False), dtype=bool)


def bounds(point_sets: Sequence[Sequence[Sequence[float]]], directions: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
    """Best and worst loss of each objective over several searches: the common scale their hypervolumes need."""
    stacked = [as_losses(points, directions) for points in point_sets if len(points)]
    if not stacked:
        raise ValueError("no points")
    everything = np.vstack(stacked)
    return everything.min(axis=0), everything.max(axis=0)


def hypervolume(
    points: Sequence[Sequence[float]], directions: Sequence[str], low: np.ndarray, high: np.ndarray
) -> float:
    """The share of the normalised objective box ([low, high] -> [0, 1], reference 1.1) the front dominates."""
    from optuna._hypervolume import compute_hypervolume

    if len(points) == 0:
        return 0.0
    losses = as_losses(points, directions)
    span = np.where(high > low, high - low, 1.0)
    scaled = np.minimum((losses - low) / span, REFERENCE)
    return float(compute_hypervolume(scaled, np.full(len(directions), REFERENCE)))


__all__ = ["REFERENCE", "as_losses", "bounds", "front_mask", "hypervolume"]
