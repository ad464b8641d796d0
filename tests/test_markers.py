"""The quick loop stays quick: long end-to-end runs are selected only by name, never by another -m."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

TESTS = Path(__file__).parent
LONG = ["test_e2e_cifar.py", "test_e2e_decision.py", "test_fleet_faults.py"]


def collected(*options: str) -> list[str]:
    """Test ids `pytest --collect-only` selects from the long-run files with these options."""
    completed = subprocess.run(
        [sys.executable, "-m", "pytest", "--collect-only", "-q", "-p", "no:cacheprovider", *options,
         *(str(TESTS / name) for name in LONG)],
        capture_output=True, text=True, cwd=TESTS.parent, timeout=300,
    )  # fmt: skip
    return [line for line in completed.stdout.splitlines() if "::" in line]


@pytest.mark.parametrize("options", [(), ("-m", "not slow"), ("-m", "slow"), ("-m", "ssh or not ssh")])
def test_long_runs_are_not_brought_back_by_another_marker_expression(options: tuple[str, ...]) -> None:
    assert collected(*options) == []


def test_long_runs_run_when_named() -> None:
    e2e = collected("-m", "e2e")
    assert e2e and all("test_e2e_" in test for test in e2e)
    assert collected("-m", "faults") and all("test_fleet_faults" in test for test in collected("-m", "faults"))
