"""Session fixtures: a small real model and data of each task (benchmarks/task_cases.py builds them)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest

from benchmarks import task_cases


@dataclass(frozen=True)
class TaskCase:
    model: Path
    data: Path


def _case(name: str, factory: pytest.TempPathFactory) -> TaskCase:
    model, data = task_cases.BUILDERS[name](factory.mktemp(name), seed=0)
    return TaskCase(model, data)


@pytest.fixture(scope="session")
def gestures(tmp_path_factory: pytest.TempPathFactory) -> TaskCase:
    """A Conv1D classifier of synthetic IMU windows (128 x 3, standardised floats)."""
    return _case("gestures", tmp_path_factory)


@pytest.fixture(scope="session")
def diabetes(tmp_path_factory: pytest.TempPathFactory) -> TaskCase:
    """A dense regressor of scikit-learn's bundled diabetes data."""
    return _case("diabetes", tmp_path_factory)


@pytest.fixture(scope="session")
def autoencoder(tmp_path_factory: pytest.TempPathFactory) -> TaskCase:
    """A digits autoencoder: 0-4 normal (training), 5-9 anomalous (half of the test set)."""
    return _case("autoencoder", tmp_path_factory)


@pytest.fixture(scope="session")
def detector(tmp_path_factory: pytest.TempPathFactory) -> TaskCase:
    """A two-output model (colour scores, boxes) and a folder of unlabelled images."""
    return _case("detector", tmp_path_factory)
