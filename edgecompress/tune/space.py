"""What `edgecompress tune` searches over, as data: one row per knob of the profile's `compression` block.

A candidate is a set of knob values, turned into overrides of the profile's `compression`
block (`DeployRequest.profile_overrides`) and checked by the profile schema like a profile
file, so a candidate the schema refuses is never run. The acceptance rules stay the user's.

A knob applies only to the strategies that use it (clusters mean nothing to `mixed-precision`),
which the table says through the recipes the strategies use (compression/recipes.py), not
through strategy names: a new strategy built from known recipes gets the right knobs. A new
technique adds one row here, e.g. for structured pruning:

    Knob("sparsity", "compression.sparsity", (0.25, 0.5, 0.75), uses("pruning", "twonn-prune"),
         "fraction of weights / channels pruned")

Values are ordered from the mildest to the most aggressive; the TwoNN prior (prior.py) takes
a candidate's neighbours as the adjacent values.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from edgecompress.compression.recipes import STRATEGIES, STRATEGY_BY_NAME, Strategy
from edgecompress.errors import EdgeCompressError

#: the knob that picks the strategy; every other knob depends on it
STRATEGY = "strategy"


def uses(*recipes: str) -> Callable[[Strategy], bool]:
    """A knob that matters to strategies giving any role one of `recipes`."""
    return lambda strategy: any(recipe in recipes for recipe in strategy.roles.values())


def trains(strategy: Strategy) -> bool:
    """The strategy builds its own model (a fine-tuned one): per-layer choices such as the edge layers' precision
    reach the artifact. A post-training-only strategy ships the profile's PTQ model, whatever they say."""
    from edgecompress.compression.recipes import EDGE_PRECISION, RECIPES

    return any(recipe != EDGE_PRECISION and RECIPES[recipe].stages for recipe in strategy.roles.values())


def splits_roles(strategy: Strategy) -> bool:
    """Significant and insignificant layers are treated differently: the significance threshold matters."""
    return strategy.roles["significant"] != strategy.roles["insignificant"]


@dataclass(frozen=True)
class SpaceFacts:
    """What the values of a knob may depend on: the profile and the model's measured significance."""

    profile: Any  # profiles.Profile
    significance: Any  # analysis.SignificanceProfile


Values = tuple[Any, ...] | Callable[[SpaceFacts], tuple[Any, ...]]


@dataclass(frozen=True)
class Knob:
    """One dimension of the search: a profile field, its values (mildest first), and where it applies."""

    name: str
    field: str  # dotted profile field, e.g. "compression.clusters"
    values: Values
    applies: Callable[[Strategy], bool] | None  # None: every strategy
    help: str

    def applies_to(self, strategy: str) -> bool:
        return self.applies is None or self.applies(STRATEGY_BY_NAME[strategy])


def delta_values(facts: SpaceFacts) -> tuple[float, ...]:
    """Significance thresholds that give different sets of significant layers (TwoNN decides the space).

    A threshold between two measured |dID| values changes which layers count as significant;
    any two thresholds between the same pair give the same plan. So the values are: just
    below the smallest change (every middle layer significant), between each pair of changes,
    and above the largest (none significant), at most 6, from the most significant layers to
    the fewest (mildest first).
    """
    changes = sorted(
        {
            round(layer.delta_id, 3)
            for layer in facts.significance.layers[1:-1]
            if layer.delta_id is not None and not layer.kept_high_precision
        }
    )
    if not changes:
        return (float(facts.profile.compression.significance_delta),)
    cuts = [changes[0] / 2] + [(a + b) / 2 for a, b in zip(changes, changes[1:])] + [changes[-1] * 1.5 + 1]
    if len(cuts) > 6:
        cuts = [cuts[round(i * (len(cuts) - 1) / 5)] for i in range(6)]
    return tuple(float(f"{max(cut, 0.01):.3g}") for cut in cuts)


KNOBS: tuple[Knob, ...] = (
    Knob(
        STRATEGY,
        "compression.strategy",
        tuple(strategy.name for strategy in STRATEGIES),
        None,
        "which recipe each kind of layer gets (compression/recipes.py STRATEGIES)",
    ),
    Knob(
        "clusters",
        "compression.clusters",
        (64, 32, 16, 8, 4),
        uses("clustering", "cqat"),
        "weight clusters per clustered layer",
    ),
    Knob(
        "bits",
        "compression.mixed_precision_bits",
        (6, 4, 3, 2),
        uses("bits"),
        "bits per weight of significant layers under mixed precision",
    ),
    Knob(
        "delta",
        "compression.significance_delta",
        delta_values,
        splits_roles,
        "TwoNN significance threshold: which layers count as significant",
    ),
    Knob(
        "first_last",
        "compression.first_last_precision",
        ("float32", "int8"),
        trains,
        "precision of the first and last weighted layers",
    ),
)


@dataclass(frozen=True)
class Candidate:
    """One point of the space: knob name -> value (only the knobs its strategy uses)."""

    values: dict[str, Any]
    knobs: tuple[Knob, ...] = field(repr=False, default=KNOBS)

    @property
    def strategy(self) -> str:
        return str(self.values[STRATEGY])

    def overrides(self) -> dict[str, Any]:
        """The profile overrides this candidate stands for: {"compression": {"clusters": 8, ...}}."""
        by_name = {knob.name: knob for knob in self.knobs}
        found: dict[str, Any] = {}
        for name, value in self.values.items():
            section, _, leaf = by_name[name].field.rpartition(".")
            target = found
            for part in section.split(".") if section else []:
                target = target.setdefault(part, {})
            target[leaf] = value
        return found

    def label(self) -> str:
        """'cqat, clusters 8, delta 12.5, first_last int8'."""
        parts = [self.strategy] + [f"{name} {_show(value)}" for name, value in self.values.items() if name != STRATEGY]
        return ", ".join(parts)


def _show(value: Any) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)


@dataclass(frozen=True)
class Space:
    """The knobs with their values for one profile and model: only values the profile schema accepts."""

    knobs: tuple[Knob, ...]
    choices: dict[str, tuple[Any, ...]]

    @classmethod
    def build(cls, facts: SpaceFacts, knobs: Sequence[Knob] = KNOBS) -> Space:
        """Each knob's values, keeping only those the profile accepts (e.g. no float32 edge layers on an int8-only accelerator)."""
        from edgecompress.errors import ProfileError
        from edgecompress.profiles import with_overrides

        choices: dict[str, tuple[Any, ...]] = {}
        for knob in knobs:
            values = knob.values(facts) if callable(knob.values) else knob.values
            kept = []
            for value in values:
                try:
                    with_overrides(facts.profile, Candidate({knob.name: value}, tuple(knobs)).overrides())
                except ProfileError:
                    continue
                kept.append(value)
            if kept:
                choices[knob.name] = tuple(kept)
        if STRATEGY not in choices:
            raise EdgeCompressError(
                f"Profile '{facts.profile.name}' accepts none of the strategies, so there is nothing to search.",
                "Check the profile with `edgecompress profiles show`.",
            )
        return cls(tuple(k for k in knobs if k.name in choices), choices)

    def knob(self, name: str) -> Knob:
        return next(knob for knob in self.knobs if knob.name == name)

    def candidate(self, values: dict[str, Any]) -> Candidate:
        """A candidate from knob values: knobs its strategy does not use are dropped, values checked."""
        strategy = values[STRATEGY]
        kept = {}
        for knob in self.knobs:
            if knob.name != STRATEGY and not knob.applies_to(strategy):
                continue
            value = values.get(knob.name)
            if value not in self.choices[knob.name]:
                raise ValueError(f"{knob.name} = {value!r} is not among {self.choices[knob.name]}")
            kept[knob.name] = value
        return Candidate(kept, self.knobs)

    def suggest(self, trial: Any) -> Candidate:
        """Optuna's define-by-run: the strategy first, then the knobs that strategy uses."""
        values = {STRATEGY: trial.suggest_categorical(STRATEGY, list(self.choices[STRATEGY]))}
        for knob in self.knobs:
            if knob.name != STRATEGY and knob.applies_to(values[STRATEGY]):
                values[knob.name] = trial.suggest_categorical(knob.name, list(self.choices[knob.name]))
        return self.candidate(values)

    def closest(self, name: str, value: Any) -> Any:
        """The allowed value of knob `name` nearest to `value` (the profile's own setting may lie between two)."""
        options = self.choices[name]
        if value in options:
            return value
        if isinstance(value, (int, float)) and all(isinstance(o, (int, float)) for o in options):
            return min(options, key=lambda option: abs(math.log(max(option, 1e-9)) - math.log(max(value, 1e-9))))
        return options[0]

    def size(self) -> int:
        """How many distinct candidates the space holds."""
        total = 0
        for strategy in self.choices[STRATEGY]:
            count = 1
            for knob in self.knobs:
                if knob.name != STRATEGY and knob.applies_to(strategy):
                    count *= len(self.choices[knob.name])
            total += count
        return total

    def describe(self) -> list[dict[str, Any]]:
        """The table of knobs as the tune report shows it."""
        return [
            {
                "knob": knob.name,
                "field": knob.field,
                "values": list(self.choices[knob.name]),
                "applies_to": [s for s in self.choices[STRATEGY] if knob.name == STRATEGY or knob.applies_to(s)],
                "help": knob.help,
            }
            for knob in self.knobs
        ]


__all__ = [
    "KNOBS",
    "STRATEGY",
    "Candidate",
    "Knob",
    "Space",
    "SpaceFacts",
    "delta_values",
    "splits_roles",
    "trains",
    "uses",
]
