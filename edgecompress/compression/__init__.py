"""Per-layer compression: recipes (data), the plan a profile implies, and carrying it out.

    plan = make_plan(profile, model, significance)      # may raise BudgetError; no training
    print(plan.table()) / plan.to_dict()                 # what deploy shows and stores
    compressed = apply_plan(plan, model, dataset)        # fine-tuned, stripped tf-keras model
    to_tflite(compressed.model, mode=compressed.export_mode, ...)

Each layer gets a size recipe (`RECIPES`: clustering, CQAT, low bits, ...) and, when the plan
asks for speed, a speed recipe (`STRUCTURES`: structured pruning sized by layer ID or
uniformly, low rank) that changes its shape so the exported model has fewer MACs.

Named baselines (`BASELINES`, `run_baseline`) serve the benchmark and `deploy --recipe`.
Nothing here imports TensorFlow until a model is actually compressed.
"""

from __future__ import annotations

from edgecompress.compression.apply import CompressedModel, apply_plan
from edgecompress.compression.baselines import BASELINES, Baseline, baseline_plan, run_baseline
from edgecompress.compression.finetune import DEFAULT_EPOCHS, DEFAULT_STEPS, FineTuning
from edgecompress.compression.plan import Knobs, LayerPlan, Plan, make_plan, next_rung, plan_for_strategy
from edgecompress.compression.recipes import RECIPES, STRATEGIES, STRUCTURES, Recipe, Strategy, Structure
from edgecompress.compression.speed import StructureKnobs

__all__ = [
    "BASELINES",
    "Baseline",
    "CompressedModel",
    "DEFAULT_EPOCHS",
    "DEFAULT_STEPS",
    "FineTuning",
    "Knobs",
    "LayerPlan",
    "Plan",
    "RECIPES",
    "Recipe",
    "STRATEGIES",
    "STRUCTURES",
    "Strategy",
    "Structure",
    "StructureKnobs",
    "apply_plan",
    "baseline_plan",
    "make_plan",
    "next_rung",
    "plan_for_strategy",
    "run_baseline",
]
