"""TwoNN as a prior: the search starts from the plan `deploy` would build, and its neighbours.

`deploy` already turns the TwoNN significance into a plan (significant layers kept at higher
precision). That plan is the first candidate; the next ones change one knob by one step. Which
direction comes first follows the significance: when most of the middle layers' weights sit in
layers TwoNN found insignificant, harsher settings (fewer clusters, fewer bits, a more aggressive
strategy, a higher threshold) are tried first, since those layers can take it; when most sit in
significant layers, milder ones are. The sampler then learns from these measured points instead
of from random ones (`--no-prior` starts from random points, for comparison).
"""

from __future__ import annotations

from typing import Any

from edgecompress.tune.space import STRATEGY, Candidate, Space


def base_candidate(space: Space, profile: Any, plan: dict[str, Any]) -> Candidate:
    """The candidate of the plan `deploy` builds for this profile (its strategy may be harsher than the
    profile's when the budget forced it)."""
    settings = {knob.name: _field(profile, knob.field) for knob in space.knobs}
    if plan.get("strategy") in space.choices[STRATEGY]:
        settings[STRATEGY] = plan["strategy"]
    values = {knob.name: space.closest(knob.name, settings[knob.name]) for knob in space.knobs}
    if values[STRATEGY] not in space.choices[STRATEGY]:
        values[STRATEGY] = space.choices[STRATEGY][0]
    return space.candidate(values)


def _field(profile: Any, path: str) -> Any:
    """The profile's value of a dotted field ('compression.clusters')."""
    value = profile
    for part in path.split("."):
        value = getattr(value, part)
    return value


def insignificant_share(plan: dict[str, Any]) -> float:
    """The share of the middle layers' parameters that TwoNN found insignificant (0 when there are none)."""
    middle = [layer for layer in plan.get("layers", []) if layer.get("role") in ("significant", "insignificant")]
    total = sum(layer.get("parameters", 0) for layer in middle)
    if not total:
        return 0.0
    return sum(layer["parameters"] for layer in middle if layer["role"] == "insignificant") / total


def seeds(space: Space, base: Candidate, plan: dict[str, Any], limit: int) -> list[Candidate]:
    """The base candidate, then its one-step neighbours, harsher or milder first as the significance says."""
    harsher_first = insignificant_share(plan) >= 0.5
    full = {knob.name: base.values.get(knob.name, space.choices[knob.name][0]) for knob in space.knobs}
    found: list[Candidate] = [base]
    steps = (1, -1) if harsher_first else (-1, 1)
    for step in steps:
        for knob in space.knobs:
            if knob.name != STRATEGY and knob.name not in base.values:
                continue
            options = space.choices[knob.name]
            index = options.index(full[knob.name]) + step
            if not 0 <= index < len(options):
                continue
            candidate = space.candidate({**full, knob.name: options[index]})
            if candidate.values not in [c.values for c in found]:
                found.append(candidate)
    return found[: max(1, limit)]


__all__ = ["base_candidate", "insignificant_share", "seeds"]
