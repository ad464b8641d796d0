"""Carry out a Plan: at most three fine-tuned stages, then a model ready for `to_tflite`.

0. *restructure*: layers whose speed recipe changes their shape (structured pruning,
   low rank) are rebuilt smaller (`speed.restructure`) and the model is fine-tuned, so the
   value recipes below start from a network that has already recovered.
1. *shape*: every layer whose recipe reshapes its weights is wrapped by its technique
   (tfmot clustering, tfmot pruning, our straight-through low-bit quantizer), the model is
   fine-tuned, and the wrappers are stripped so the layers hold the final values.
2. *quantize*: layers whose recipe is QAT or CQAT are annotated and fine-tuned with fake
   int8 quantization; the layers shaped in stage 1 are frozen so their value sets survive.

The caller's model is never modified; a plan without training stages returns a copy.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import partial
from typing import Any, Protocol

import numpy as np

from edgecompress._tf import keras
from edgecompress.compression import clustering, lowbit, pruning, qat
from edgecompress.compression.finetune import (
    Clock,
    FineTuning,
    Split,
    finetune,
    loss_for,
    split_validation,
    training_arrays,
)
from edgecompress.compression.graph import copy_model, require_graph_model
from edgecompress.compression.plan import LayerPlan, Plan
from edgecompress.compression.recipes import RECIPES, SHAPED, STRUCTURES
from edgecompress.compression.values import kernel_values


@dataclass
class CompressedModel:
    """The fine-tuned, stripped model and what the export must do with it."""

    model: Any
    export_mode: str
    io_dtype: str
    plan: Plan
    stages: list[dict[str, Any]] = field(default_factory=list)
    kernel_values: dict[str, dict[str, Any]] = field(default_factory=dict)
    key: str = ""  # identifies the training that made `model` (origin, every stage, the budget)

    @property
    def float_layers(self) -> list[str]:
        return self.plan.float_layers


@dataclass(frozen=True)
class _Technique:
    """How one shape-stage technique wraps its layers and gets them back out."""

    param: str
    wrap: Callable[..., Any]  # (model, {layer: param}, **schedule) -> wrapped model
    strip: Callable[[Any], Any]
    callbacks: Callable[[], list[Any]] = lambda: []
    needs_ramp: bool = False  # shape changes over the first epochs (pruning's sparsity schedule)


_TECHNIQUES: dict[str, _Technique] = {
    "cluster": _Technique("clusters", clustering.cluster_layers, clustering.strip_clustering),
    "lowbit": _Technique("bits", lowbit.wrap_layers, lowbit.materialize),
    "prune": _Technique(
        "sparsity", pruning.prune_layers, pruning.strip_pruning, pruning.pruning_callbacks, needs_ramp=True
    ),
}


class StageStore(Protocol):
    """Somewhere finished stages are kept (the run folder, the cache across runs); keys say what made them.

    A stage is kept as its weights and its training summary: the model around them is rebuilt
    by doing the stage again without training (wrapping and stripping are deterministic), so
    no pickled or custom-object model file has to be read back.
    """

    def fetch(self, key: str) -> tuple[list[np.ndarray], dict[str, Any]] | None: ...

    def keep(self, key: str, weights: list[np.ndarray], summary: dict[str, Any]) -> None: ...


def apply_plan(
    plan: Plan,
    model: Any,
    data: Any,
    *,
    settings: FineTuning | None = None,
    store: StageStore | None = None,
    origin: str = "",
    objective: Any = None,
) -> CompressedModel:
    """Compress `model` as `plan` says, fine-tuning on `data` (a Dataset or an (x, y) pair).

    `objective` (tasks.objectives.Objective) says what fine-tuning learns from: its arrays and
    loss replace `data` and the class-label loss (a regression's targets, an autoencoder's
    inputs, or the fp32 model's outputs when distilling).

    With a `store`, each stage is looked up under a key made of `origin` (what the caller
    knows: model and data fingerprints), the stage's layers and recipes, the earlier stage's
    key and the fine-tuning budget, and kept there when it had to be trained.
    """
    require_graph_model(model)
    settings = settings or FineTuning()
    keras().utils.set_random_seed(settings.seed)  # kmeans++ centroids are drawn when layers are wrapped
    working = copy_model(model)
    stages: list[dict[str, Any]] = []
    key = origin
    if plan.needs_training:
        x, y = training_arrays((objective.x, objective.y) if objective is not None else data)
        split = split_validation(x, y, settings.validation_fraction, settings.seed, limit=settings.validation_max)
        loss = objective.loss if objective is not None else loss_for(model)
        training = _Training(split, settings, loss, Clock(settings.minutes), objective)
        restructured = [
            (layer.name, layer.structure, layer.structure_params)
            for layer in plan.layers
            if layer.structure != "none" and layer.structure_params
        ]
        key = _stage_key(key, "restructure", restructured, settings)
        working = _stored_stage(partial(_restructure_stage, plan), working, training, stages, store, key)
        layers = _effective_layers(plan, working)
        for stage, involved in ((_shape_stage, _shaped), (_quantize_stage, _quantized)):
            described = [(layer.name, layer.recipe, layer.params) for layer in layers if involved(layer)]
            key = _stage_key(key, stage.__name__, described, settings)
            working = _stored_stage(partial(stage, layers), working, training, stages, store, key)
    return CompressedModel(
        model=working,
        export_mode=plan.export_mode,
        io_dtype=plan.io_dtype,
        plan=plan,
        stages=stages,
        kernel_values=kernel_values(working),
        key=key,
    )


def _shaped(layer: Any) -> bool:
    """The layers whose recipe decides the shape stage (every other layer trains as it is)."""
    return RECIPES[layer.recipe].shaper is not None


def _quantized(layer: Any) -> bool:
    """The layers whose recipe decides the quantize stage: annotated ones, and the shaped ones it freezes."""
    return "quantize" in RECIPES[layer.recipe].stages or layer.recipe in SHAPED


def _stage_key(previous: str, stage: str, layers: list[Any], settings: FineTuning) -> str:
    document = {"previous": previous, "stage": stage, "layers": layers, "budget": settings.budget()}
    return hashlib.sha256(json.dumps(document, sort_keys=True, default=str).encode()).hexdigest()[:32]


def _stored_stage(
    stage: Callable[..., Any],
    model: Any,
    training: _Training,
    stages: list[dict[str, Any]],
    store: StageStore | None,
    key: str,
) -> Any:
    """Run one stage, or rebuild it with the weights `store` kept when the same stage was trained before."""
    found = store.fetch(key) if store is not None else None
    if found is not None:
        weights, summaries = found
        stages.extend(summaries["stages"])
        return stage(model, training, [], weights=weights)
    before = len(stages)
    model = stage(model, training, stages)
    if store is not None and len(stages) > before:
        store.keep(key, model.get_weights(), {"stages": stages[before:]})
    return model


@dataclass(frozen=True)
class _Training:
    split: Split
    settings: FineTuning
    loss: Any
    clock: Clock  # one wall-clock budget for every stage
    objective: Any = None  # tasks.objectives.Objective, or None: class labels

    def run(self, model: Any, learning_rate: float, label: str, **options: Any) -> dict[str, Any]:
        objective = self.objective
        return finetune(
            model,
            self.split,
            self.settings,
            learning_rate=learning_rate,
            loss=self.loss,
            label=label,
            clock=self.clock,
            metrics=objective.metrics if objective is not None else ("accuracy",),
            loss_words=objective.words if objective is not None else "cross-entropy on the class labels",
            **options,
        )


def _layers_by(layers: Sequence[LayerPlan], keep: Callable[[Any], bool]) -> list[LayerPlan]:
    return [layer for layer in layers if keep(RECIPES[layer.recipe])]


def _effective_layers(plan: Plan, model: Any) -> list[LayerPlan]:
    """The plan's layers plus, for each factorised layer, its first factor under the same value recipe."""
    from edgecompress.compression.lowrank import SUFFIX

    present = {layer.name for layer in model.layers}
    extra = [
        dataclasses.replace(layer, name=layer.name + SUFFIX)
        for layer in plan.layers
        if STRUCTURES[layer.structure].technique == "lowrank" and layer.name + SUFFIX in present
    ]
    return [*plan.layers, *extra]


def _restructure_stage(
    plan: Plan, model: Any, training: _Training, stages: list[dict[str, Any]], weights: list[np.ndarray] | None = None
) -> Any:
    """Rebuild the model with the plan's pruned widths / factorisations, then fine-tune it; with
    `weights`, rebuild that result without training (the rebuild is deterministic)."""
    if not plan.restructures:
        return model
    from edgecompress.compression.speed import restructure
    from edgecompress.export.macs import keras_macs

    before = sum(row.macs for row in keras_macs(model))
    model = restructure(model, plan.layers)
    if weights is not None:
        model.set_weights(weights)
        return model
    changed = sorted({layer.structure for layer in plan.layers if layer.structure != "none" and layer.structure_params})
    rate = max(STRUCTURES[name].learning_rate for name in changed)
    scale = max(STRUCTURES[name].budget_scale for name in changed)
    summary = training.run(model, rate, f"restructure ({', '.join(changed)})", budget_scale=scale)
    summary.update(macs_before=int(before), macs_after=int(sum(row.macs for row in keras_macs(model))))
    stages.append(summary)
    return model


def _shape_stage(
    layers: Sequence[LayerPlan],
    model: Any,
    training: _Training,
    stages: list[dict[str, Any]],
    weights: list[np.ndarray] | None = None,
) -> Any:
    """Wrap the shaped layers, fine-tune, strip; with `weights`, rebuild that result without training."""
    shaped = _layers_by(layers, lambda recipe: recipe.shaper is not None)
    if not shaped:
        return model
    ramp_steps = -(-training.settings.stage_steps(len(training.split.x_train)) // 2)  # half the stage's budget
    end_step, frequency = pruning.ramp_schedule(ramp_steps)
    used = {shaper for layer in shaped if (shaper := RECIPES[layer.recipe].shaper) is not None}
    callbacks, settle = [], 0
    for name in sorted(used):
        technique = _TECHNIQUES[name]
        params = {layer.name: layer.params[technique.param] for layer in shaped if RECIPES[layer.recipe].shaper == name}
        schedule = {"end_step": end_step, "frequency": frequency} if technique.needs_ramp else {}
        model = technique.wrap(model, params, **schedule)
        callbacks += technique.callbacks()
        settle = max(settle, ramp_steps if technique.needs_ramp else 0)
    rate = max(RECIPES[layer.recipe].learning_rate for layer in shaped)
    scale = max(RECIPES[layer.recipe].step_scale_for(layer.params) for layer in shaped)
    label = f"shape ({', '.join(sorted({layer.recipe for layer in shaped}))})"
    if weights is None:
        stages.append(training.run(model, rate, label, callbacks=callbacks, settle_steps=settle, budget_scale=scale))
    for name in sorted(used):
        model = _TECHNIQUES[name].strip(model)
    if weights is not None:
        model.set_weights(weights)
    return model


def _quantize_stage(
    layers: Sequence[LayerPlan],
    model: Any,
    training: _Training,
    stages: list[dict[str, Any]],
    weights: list[np.ndarray] | None = None,
) -> Any:
    """Annotate for QAT (cluster-preserving when clusters exist) and fine-tune; with `weights`, rebuild without training."""
    annotated = _layers_by(layers, lambda recipe: "quantize" in recipe.stages)
    if not annotated:
        return model
    frozen = {layer.name for layer in layers if layer.recipe in SHAPED}
    model = qat.quantize_layers(
        model,
        {layer.name for layer in annotated},
        freeze=frozen,
        preserve_clusters=any(RECIPES[layer.recipe].value_set == "clusters" for layer in annotated),
    )
    rate = max(RECIPES[layer.recipe].learning_rate for layer in annotated)
    if weights is not None:
        model.set_weights(weights)
        return model
    scale = max(RECIPES[layer.recipe].step_scale for layer in annotated)
    label = f"quantize ({', '.join(sorted({layer.recipe for layer in annotated}))})"
    stages.append(training.run(model, rate, label, budget_scale=scale))
    return model
