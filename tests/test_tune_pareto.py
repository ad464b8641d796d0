"""The Pareto front and hypervolume edgecompress computes itself, checked against brute force.

Brute force here means the definitions: a point is on the front when no other point is at
least as good everywhere and better somewhere; the hypervolume is the volume of every cell of
the grid the points' coordinates make that lies under some point's box.
"""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from edgecompress.tune.pareto import REFERENCE, bounds, dominated_volume, front_mask, hypervolume


def brute_front(losses: np.ndarray) -> list[bool]:
    def dominates(a: np.ndarray, b: np.ndarray) -> bool:
        return bool(np.all(a <= b) and np.any(a < b))

    return [not any(dominates(other, point) for other in losses) for point in losses]


def brute_volume(losses: np.ndarray, reference: np.ndarray) -> float:
    """Sum of the grid cells (cut at every coordinate) whose lower corner some point dominates."""
    axes = [np.unique(np.append(np.minimum(losses[:, k], reference[k]), reference[k])) for k in range(len(reference))]
    volume = 0.0
    for cell in itertools.product(*[range(len(axis) - 1) for axis in axes]):
        corner = np.array([axes[k][i] for k, i in enumerate(cell)])
        if np.any(np.all(losses <= corner, axis=1)):
            volume += float(np.prod([axes[k][i + 1] - axes[k][i] for k, i in enumerate(cell)]))
    return volume


@pytest.mark.parametrize("objectives", [2, 3])
@pytest.mark.parametrize("seed", range(6))
def test_front_and_volume_match_brute_force_on_random_points(objectives: int, seed: int) -> None:
    rng = np.random.default_rng(seed)
    n = int(rng.integers(1, 14))
    # a coarse grid of values, so ties and duplicate points occur as in measured figures
    losses = rng.integers(0, 6, size=(n, objectives)).astype(float) / 5.0
    assert front_mask(losses, ["minimize"] * objectives).tolist() == brute_front(losses)
    reference = np.full(objectives, REFERENCE)
    assert dominated_volume(losses, reference) == pytest.approx(brute_volume(losses, reference), abs=1e-12)


@pytest.mark.parametrize("objectives", [2, 3])
def test_continuous_points_and_maximised_objectives(objectives: int) -> None:
    rng = np.random.default_rng(100 + objectives)
    points = rng.normal(size=(12, objectives))
    directions = ["maximize", *["minimize"] * (objectives - 1)]
    losses = points * np.array([-1.0, *[1.0] * (objectives - 1)])
    assert front_mask(points, directions).tolist() == brute_front(losses)
    low, high = bounds([points], directions)
    scaled = np.minimum((losses - low) / (high - low), REFERENCE)
    expected = brute_volume(scaled, np.full(objectives, REFERENCE))
    assert hypervolume(points, directions, low, high) == pytest.approx(expected, rel=1e-12)


def test_small_cases_by_hand() -> None:
    reference = np.array([2.0, 2.0])
    assert dominated_volume(np.array([[1.0, 1.0]]), reference) == 1.0
    assert dominated_volume(np.array([[0.0, 1.0], [1.0, 0.0]]), reference) == 3.0  # 2 + 2 - 1
    assert dominated_volume(np.array([[3.0, 0.0]]), reference) == 0.0  # beyond the reference: nothing
    assert front_mask([], ["minimize", "minimize"]).tolist() == []
    assert hypervolume([], ["minimize"], np.zeros(1), np.ones(1)) == 0.0
