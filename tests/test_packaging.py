"""pyproject.toml and its lock agree: ranges whose lower bounds are what the tests run with, a lock
(constraints.txt) that pins every range inside its bounds, and a core install without Ray or Optuna.

The lock is made by `bash .ci/lock`; these checks read the files, so a range changed without
refreshing the lock (or a lock edited by hand) fails here, before any install.
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

ROOT = Path(__file__).resolve().parents[1]
PROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]


def _lock() -> tuple[dict[str, set[Version]], dict[str, set[str]]]:
    """constraints.txt as {name: pinned versions} and {name: what pulls it in} (uv's `# via` notes)."""
    pins: dict[str, set[Version]] = {}
    via: dict[str, set[str]] = {}
    current = None
    for line in (ROOT / "constraints.txt").read_text().splitlines():
        pin = re.match(r"^([A-Za-z0-9._-]+)==([^\s;]+)", line)
        if pin:
            current = canonicalize_name(pin[1])
            pins.setdefault(current, set()).add(Version(pin[2]))
            continue
        note = re.match(r"^\s+#\s+(?:via\s+)?([A-Za-z0-9._-]+)", line)
        if current and note and note[1] != "via":
            via.setdefault(current, set()).add(canonicalize_name(note[1]))
    return pins, via


def _requirements(group: str | None) -> list[Requirement]:
    listed = PROJECT["dependencies"] if group is None else PROJECT["optional-dependencies"][group]
    return [Requirement(text) for text in listed if not text.startswith(PROJECT["name"])]


@pytest.mark.parametrize("group", [None, "tune", "test"])
def test_every_range_is_locked_at_its_tested_lower_bound(group: str | None) -> None:
    pins, _ = _lock()
    for requirement in _requirements(group):
        name = canonicalize_name(requirement.name)
        assert name in pins, f"{name} is not in constraints.txt: run bash .ci/lock"
        for version in pins[name]:
            assert requirement.specifier.contains(version, prereleases=True), f"{name}=={version} not in {requirement}"
        lower = [Version(s.version) for s in requirement.specifier if s.operator in (">=", "==")]
        assert lower and pins[name] == {lower[0]}, f"{name}: the lock should hold the tested lower bound {lower}"


def test_the_core_install_pulls_in_no_ray_and_no_optuna() -> None:
    """Walk the lock's dependency graph from the core dependencies: Ray and Optuna are the tune extra's."""
    _, via = _lock()
    children: dict[str, set[str]] = {}
    for name, parents in via.items():
        for parent in parents:
            children.setdefault(parent, set()).add(name)
    reached, pending = set(), [canonicalize_name(r.name) for r in _requirements(None)]
    while pending:
        name = pending.pop()
        if name not in reached:
            reached.add(name)
            pending.extend(children.get(name, ()))
    assert {"tensorflow", "paramiko", "numpy"} <= reached
    assert not {"ray", "optuna"} & reached
    assert {canonicalize_name(r.name) for r in _requirements("tune")} == {"ray", "optuna"}
    assert f"{PROJECT['name']}[tune]" in PROJECT["optional-dependencies"]["test"]


def test_the_python_floor_and_ceiling() -> None:
    assert PROJECT["requires-python"] == ">=3.11,<3.14"
    tools = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]
    assert tools["ruff"]["target-version"] == "py311" and tools["mypy"]["python_version"] == "3.11"
