"""Named methods a user (or the benchmark) can pick instead of the profile's plan.

Each baseline is a row: which recipe each layer role gets, which speed recipe (if any)
changes the layers' shapes first, and the export mode. The TwoNN rows need the significance
analysis; the others treat every layer alike, as the published baselines do.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from edgecompress.compression.plan import Knobs, Plan, plan_for_strategy
from edgecompress.compression.recipes import STRATEGY_BY_NAME
from edgecompress.errors import EdgeCompressError


def _everywhere(recipe: str) -> dict[str, str]:
    return {"edge": recipe, "significant": recipe, "insignificant": recipe}


@dataclass(frozen=True)
class Baseline:
    name: str
    description: str
    roles: dict[str, str]
    export_mode: str
    needs_significance: bool = False
    structure: str = "none"  # speed recipe (recipes.STRUCTURES) applied before the value recipes


_BASELINES = (
    Baseline("ptq-int8", "post-training full-integer int8", _everywhere("keep"), "int8"),
    Baseline("ptq-fp16", "post-training float16 weights", _everywhere("keep"), "fp16"),
    Baseline(
        "ptq-dynamic", "post-training dynamic range (int8 weights, float activations)", _everywhere("keep"), "dynamic"
    ),
    Baseline("ptq-int16x8", "post-training int8 weights with int16 activations", _everywhere("keep"), "int16x8"),
    Baseline("qat", "quantization-aware training, then int8", _everywhere("qat"), "int8"),
    Baseline("clustering-ptq", "weight clustering, then post-training int8", _everywhere("clustering"), "int8"),
    Baseline(
        "pruning-ptq", "magnitude pruning (polynomial decay), then post-training int8", _everywhere("pruning"), "int8"
    ),
    Baseline("cqat", "clustering, then cluster-preserving QAT on every layer, int8", _everywhere("cqat"), "int8"),
    Baseline(
        "twonn-cqat",
        "TwoNN: " + STRATEGY_BY_NAME["cqat"].description + ", int8",
        STRATEGY_BY_NAME["cqat"].roles,
        "int8",
        needs_significance=True,
    ),
    Baseline(
        "twonn-mixed",
        "TwoNN: " + STRATEGY_BY_NAME["mixed-precision"].description + ", int8 first/last layers",
        STRATEGY_BY_NAME["mixed-precision"].roles,
        "int8",
        needs_significance=True,
    ),
    Baseline(
        "twonn-prune",
        "TwoNN widths: structured pruning to ceil(factor x layer ID) channels, fine-tuned, then int8",
        _everywhere("keep"),
        "int8",
        needs_significance=True,
        structure="twonn-prune",
    ),
    Baseline(
        "uniform-prune",
        "uniform L1 filter pruning (same share of channels in every layer), fine-tuned, then int8",
        _everywhere("keep"),
        "int8",
        structure="uniform-prune",
    ),
    Baseline(
        "lowrank",
        "low rank (SVD Dense, rank-K separable Conv), fine-tuned, then int8",
        _everywhere("keep"),
        "int8",
        structure="lowrank",
    ),
    Baseline(
        "twonn-prune-cqat",
        "TwoNN widths (structured pruning) for speed, then " + STRATEGY_BY_NAME["cqat"].description + " for size, int8",
        STRATEGY_BY_NAME["cqat"].roles,
        "int8",
        needs_significance=True,
        structure="twonn-prune",
    ),
)

BASELINES: dict[str, Baseline] = {baseline.name: baseline for baseline in _BASELINES}


def baseline(name: str) -> Baseline:
    try:
        return BASELINES[name]
    except KeyError:
        raise EdgeCompressError(f"Unknown recipe '{name}'.", f"Use one of: {', '.join(BASELINES)}.") from None


def baseline_plan(name: str, model: Any, *, significance: Any = None, knobs: Knobs | None = None) -> Plan:
    """The plan a baseline stands for, shown and stored like a profile's plan."""
    chosen = baseline(name)
    if chosen.needs_significance and significance is None:
        raise EdgeCompressError(
            f"Recipe '{name}' assigns recipes by TwoNN layer significance, and no significance analysis was given.",
            "Run the significance analysis first (edgecompress.analysis) and pass its result, or pick a recipe that "
            "treats all layers alike: " + ", ".join(n for n, b in BASELINES.items() if not b.needs_significance) + ".",
        )
    return plan_for_strategy(
        model,
        chosen.roles,
        export_mode=chosen.export_mode,
        significance=significance,
        knobs=knobs,
        name=chosen.name,
        description=chosen.description,
        structure=chosen.structure,
    )


def run_baseline(
    name: str,
    model: Any,
    data: Any,
    *,
    epochs: int | None = None,
    seed: int = 0,
    significance: Any = None,
    knobs: Knobs | None = None,
    progress: bool = False,
    objective: Any = None,
) -> Any:
    """Compress `model` with baseline `name`; returns a CompressedModel (.model, .export_mode, ...).

    `objective` (tasks.objectives.Objective) replaces fine-tuning on `data`'s class labels,
    e.g. distillation from `model` itself."""
    from edgecompress.compression.apply import apply_plan
    from edgecompress.compression.finetune import DEFAULT_EPOCHS, FineTuning

    plan = baseline_plan(name, model, significance=significance, knobs=knobs)
    settings = FineTuning(epochs=epochs or DEFAULT_EPOCHS, seed=seed, progress=progress)
    return apply_plan(plan, model, data, settings=settings, objective=objective)
