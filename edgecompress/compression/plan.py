"""Profile + significance + model -> a plan: one recipe per layer, sized before training.

The plan is the contract `deploy` shows the user before any fine-tuning starts (and all
`--dry-run` prints), and it is stored in the run folder. It is built from data only:
`recipes.STRATEGIES` says which recipe each role gets, `estimate` says what that costs.
When the profile's preferred strategy does not fit the budget the plan moves to the next
more aggressive one; when none fits it raises BudgetError *before* training, saying by how
much the closest option misses.

Budget basis: one check for plan and report (edgecompress/budget.py). On a microcontroller
the flash budget is compared with the model's estimated flash, where look-up-table
compressed tensors take about their *bit-packed* size; on a Linux board or phone the memory
budget is compared with the weights as stored in the .tflite file, which the runtime maps
into memory whole (clustered and binary weights are still 8 bits there). Both estimates are
shown so nobody mistakes one for the other.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field, replace
from typing import Any, Literal, Protocol

from edgecompress.budget import FIRMWARE_BESIDE_MODEL_BYTES, MEANINGS, Budget, Limit, Resources
from edgecompress.compression import estimate
from edgecompress.compression.facts import LayerFacts, raw_facts
from edgecompress.compression.recipes import (
    AUTO,
    EDGE_PRECISION,
    EDGE_RECIPES,
    RECIPES,
    STRATEGIES,
    STRATEGY_BY_NAME,
    STRUCTURES,
    Rung,
    Strategy,
    auto_rungs,
    strategies_from,
)
from edgecompress.compression.speed import StructureKnobs, StructurePlan, plan_structure
from edgecompress.compression.widths import channel_tile
from edgecompress.errors import BudgetError, ModelError

SIZE_BASIS = "bit-packed weights (weights x ceil(log2(unique values)) + codebooks + scales + biases)"
#: Attributes that hold a layer's main weight matrix, in the order tried.


class _SignificantLayer(Protocol):
    name: str
    significant: bool
    kept_high_precision: bool


class _Significance(Protocol):
    @property
    def layers(self) -> Sequence[_SignificantLayer]: ...


@dataclass
class LayerPlan:
    """The recipe chosen for one layer, with the reason when it is not the strategy's first choice."""

    name: str
    layer_class: str
    role: str
    parameters: int
    recipe: str
    params: dict[str, float]
    estimated_bytes: int
    estimated_file_bytes: int
    note: str = ""
    structure: str = "none"  # the speed recipe (recipes.STRUCTURES): how the layer's shape changes
    structure_params: dict[str, Any] = field(default_factory=dict)
    macs_before: int = 0  # Keras-side MACs per sample (export.macs), before and after the speed recipe
    macs: int = 0

    @property
    def speed_setting(self) -> str:
        """The speed recipe's knob as people read it: '20/64 channels', 'rank 16/96 (separable)'."""
        params = self.structure_params
        if "width" in params:
            return f"{params['width']}/{params['of']} channels"
        if "rank" in params:
            return f"rank {params['rank']}/{params['of']} ({params['scheme']})"
        if "inputs_kept" in params:
            return f"{params['inputs_kept']:.0%} of inputs"
        return ""

    @property
    def setting(self) -> str:
        """The recipe's knob as people read it: '16 clusters', '2 bits', '50% sparse'."""
        if "clusters" in self.params:
            return f"{int(self.params['clusters'])} clusters"
        if "bits" in self.params:
            return f"{int(self.params['bits'])} bit" + ("s" if self.params["bits"] != 1 else "")
        if "sparsity" in self.params:
            return f"{self.params['sparsity']:.0%} sparse"
        return ""


@dataclass
class Plan:
    """One recipe per layer, the export mode, and the sizes the plan promises."""

    profile: str
    strategy: str
    description: str
    export_mode: str
    io_dtype: str
    layers: list[LayerPlan]
    budget_bytes: int | None = None
    budget_field: str | None = None
    budget_measure: str | None = None  # which estimate the budget applies to (budget.Resources field)
    alternatives: list[dict[str, Any]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    size_basis: str = SIZE_BASIS
    structure: str = "none"  # the speed recipe (recipes.STRUCTURES) combined with the value strategy
    prefer: str = "size"  # what the profile asked for: the smallest or the fastest artifact under its budget
    auto: bool = False  # picked by `strategy: auto`: a measured size over the budget moves it to `harsher[0]`
    ladder: list[dict[str, Any]] = field(default_factory=list)  # auto: each strategy considered, and why not it
    harsher: list[str] = field(default_factory=list)  # auto: the strategies left to try, mildest first
    measured: dict[str, Any] | None = None  # the exported model's size against the budget (pipeline)

    @property
    def macs_before(self) -> int:
        return sum(layer.macs_before for layer in self.layers)

    @property
    def macs(self) -> int:
        return sum(layer.macs for layer in self.layers)

    @property
    def mac_ratio(self) -> float | None:
        """Theoretical speed-up of the plan's shapes: MACs before / after (Keras-side estimate)."""
        return round(self.macs_before / self.macs, 3) if self.macs else None

    @property
    def estimated_bytes(self) -> int:
        return sum(layer.estimated_bytes for layer in self.layers)

    @property
    def estimated_file_bytes(self) -> int:
        return sum(layer.estimated_file_bytes for layer in self.layers)

    @property
    def resources(self) -> Resources:
        """What the plan promises, in the terms every budget check uses."""
        return Resources(
            file_bytes=self.estimated_file_bytes,
            bitpacked_bytes=self.estimated_bytes,
            flash_bytes=self.estimated_bytes + FIRMWARE_BESIDE_MODEL_BYTES,  # the budget is the whole firmware's
            model_flash_bytes=self.estimated_bytes,
            estimated=True,
        )

    @property
    def budget_figure(self) -> int | None:
        """The estimate the budget is compared with."""
        return self.resources.get(self.budget_measure) if self.budget_measure else None

    @property
    def fits(self) -> bool | None:
        if self.budget_bytes is None or self.budget_measure is None or self.budget_field is None:
            return None
        return Budget((Limit(self.budget_measure, self.budget_bytes, self.budget_field),)).fits(self.resources)

    @property
    def float_layers(self) -> list[str]:
        """Layers the export must leave in float32 even in an integer model."""
        return [layer.name for layer in self.layers if layer.recipe == "float"]

    @property
    def restructures(self) -> bool:
        return any(layer.structure != "none" and layer.structure_params for layer in self.layers)

    @property
    def needs_training(self) -> bool:
        return self.restructures or any(RECIPES[layer.recipe].stages for layer in self.layers)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: what run folders store and reports quote."""
        data = asdict(self)
        for entry, layer in zip(data["layers"], self.layers):
            entry["setting"] = layer.setting
            entry["description"] = RECIPES[layer.recipe].description
            entry["speed_setting"] = layer.speed_setting
        data.update(
            estimated_bytes=self.estimated_bytes,
            estimated_file_bytes=self.estimated_file_bytes,
            budget_figure=self.budget_figure,
            fits=self.fits,
            float_layers=self.float_layers,
            structure_description=STRUCTURES[self.structure].description,
            macs_before=self.macs_before,
            macs=self.macs,
            mac_ratio=self.mac_ratio,
        )
        return data

    def table(self) -> Any:
        """A rich Table: one row per weighted layer, sizes and budget in the caption."""
        from edgecompress.reporting.terminal import compact_table

        table = compact_table(
            f"Compression plan ({self.profile or 'no profile'}): {self.strategy} - {self.description}",
            optional=("type",),  # left out of a terminal too narrow for every word (plan.json has it)
        )
        speed = self.structure != "none"
        columns: list[tuple[str, Literal["left", "right"]]] = [
            ("layer", "left"),
            ("type", "left"),
            ("role", "left"),
            ("params", "right"),
        ]
        if speed:
            columns += [("speed recipe", "left"), ("shape", "left"), ("MACs", "right")]
        columns += [
            ("size recipe" if speed else "recipe", "left"),
            ("setting", "left"),
            ("est.\nbytes", "right"),
            ("note", "left"),
        ]
        for column, justify in columns:  # words wrap whole; a layer name is never cut
            table.add_column(column, justify=justify, no_wrap=column == "layer")
        for layer in self.layers:
            cells = [layer.name, layer.layer_class, layer.role, f"{layer.parameters:,}"]
            if speed:
                changed = layer.structure != "none" and layer.structure_params
                cells += [
                    layer.structure if changed else "-",
                    layer.speed_setting,
                    f"{layer.macs:,}" if layer.macs_before else "",
                ]
            cells += [layer.recipe, layer.setting, f"{layer.estimated_bytes:,}", layer.note]
            table.add_row(*cells)
        table.caption = "\n".join(self.summary_lines())
        table.caption_justify = "left"
        return table

    def summary_lines(self) -> list[str]:
        lines = [
            f"export: {self.export_mode} (input/output {self.io_dtype})"
            + (f"; kept in float32: {', '.join(self.float_layers)}" if self.float_layers else ""),
            f"estimated size: {self.estimated_bytes:,} bytes bit-packed, {self.estimated_file_bytes:,} bytes of weights in the file",
            f"compute: {self.macs:,} MACs per sample"
            + (
                f" after {self.structure} (from {self.macs_before:,}: {self.mac_ratio:.2f}x fewer, the theoretical speed-up)"
                if self.macs != self.macs_before and self.mac_ratio
                else ""
            ),
        ]
        if self.prefer == "speed":
            lines.append(
                "the profile prefers the fastest artifact under its budget: "
                f"{self.structure} (speed) combined with {self.strategy} (size)"
            )
        if self.budget_bytes is not None and self.budget_measure is not None:
            verdict = "fits" if self.fits else "DOES NOT FIT"
            lines.append(
                f"budget: {self.budget_bytes:,} bytes ({self.budget_field}), compared with {MEANINGS[self.budget_measure]} "
                f"(about {self.budget_figure:,} bytes): {verdict}"
            )
        if self.auto:
            lines.append(
                "strategy auto, mildest first: "
                + "; ".join(f"{step['strategy']}: {step['outcome']}" for step in self.ladder)
            )
        if self.alternatives:
            lines.append(
                "options: "
                + "; ".join(
                    f"{a['strategy']} {a['budget_figure'] or a['estimated_bytes']:,} B"
                    + ("" if a["fits"] is None else (" fits" if a["fits"] else " too big"))
                    for a in self.alternatives
                )
            )
        lines.extend(f"note: {note}" for note in self.notes)
        return lines


# --------------------------------------------------------------------------------------
# Model facts
# --------------------------------------------------------------------------------------


def layer_facts(model: Any, significance: _Significance | None = None) -> tuple[list[LayerFacts], list[str]]:
    """Every weighted top-level layer with its role, plus notes on what was assumed."""
    notes: list[str] = []
    rows = [raw_facts(layer) for layer in model.layers if layer.weights]
    kernel_rows = [i for i, row in enumerate(rows) if row.role != "other"]
    if not kernel_rows:
        raise ModelError(
            f"Model '{model.name}' has no Conv/Dense-style weight layers, so there is nothing to compress.",
            "Pass the trained classifier itself (its .h5/.keras file), not a preprocessing model.",
        )
    edges = {kernel_rows[0], kernel_rows[-1]}
    verdicts = {layer.name: layer for layer in significance.layers} if significance is not None else {}
    if significance is None:
        notes.append("no significance analysis: every middle layer is treated as significant")
    unknown = []
    for index in kernel_rows:
        row = rows[index]
        verdict = verdicts.get(row.name)
        if index in edges:
            role, note = "edge", ("first weighted layer" if index == kernel_rows[0] else "last weighted layer")
        elif verdict is not None and getattr(verdict, "kept_high_precision", False):
            role, note = "edge", "kept at high precision by the significance analysis"
        elif verdict is not None:
            role, note = ("significant" if verdict.significant else "insignificant"), ""
        else:
            role, note = "significant", ""
            if significance is not None:
                unknown.append(row.name)
        rows[index] = LayerFacts(row.name, row.layer_class, row.shape, role, note)
    if unknown:
        notes.append(f"not in the significance analysis, treated as significant: {', '.join(unknown)}")
    return rows, notes


# --------------------------------------------------------------------------------------
# Recipes per layer
# --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Knobs:
    """The numbers recipes take from the profile (or a baseline's defaults)."""

    clusters: int = 16
    bits: int = 2
    sparsity: float = 0.5
    first_last_precision: str = "int8"
    speed: StructureKnobs = field(default_factory=StructureKnobs)

    def params_for(self, recipe: str) -> dict[str, float]:
        table: dict[str, dict[str, float]] = {
            "clustering": {"clusters": self.clusters},
            "cqat": {"clusters": self.clusters},
            "bits": {"bits": self.bits},
            "binary": {"bits": 1},
            "pruning": {"sparsity": self.sparsity},
        }
        return table.get(recipe, {})


def assign_recipes(
    facts: Iterable[LayerFacts],
    roles: dict[str, str],
    export_mode: str,
    knobs: Knobs,
    changes: StructurePlan | None = None,
) -> list[LayerPlan]:
    """One LayerPlan per layer: the role's recipe, or its fallback when the layer or mode rules it out.

    With `changes` (a speed recipe's decisions), each layer also carries its new shape or
    rank and its MACs, and sizes are estimated for the changed shapes.
    """
    plans = []
    for fact in facts:
        change = changes.changes.get(fact.name) if changes is not None else None
        if change is not None and change.shape is not None:
            fact = LayerFacts(fact.name, fact.layer_class, change.shape, fact.role, fact.note)
        wanted = roles.get(fact.role, "keep")
        if wanted == EDGE_PRECISION:
            wanted = EDGE_RECIPES[knobs.first_last_precision]
        recipe, reasons = _usable_recipe(wanted, fact, export_mode, knobs)
        params = knobs.params_for(recipe)
        value_set = RECIPES[recipe].value_set
        note = "; ".join(
            filter(None, [fact.note, *reasons, changes.notes.get(fact.name) if changes is not None else None])
        )
        before = changes.macs_before.get(fact.name, 0) if changes is not None else 0
        plans.append(
            LayerPlan(
                name=fact.name,
                layer_class=fact.layer_class,
                role=fact.role,
                parameters=fact.parameters,
                recipe=recipe,
                params=params,
                estimated_bytes=estimate.packed_bytes(value_set, fact.shape, export_mode, params),
                estimated_file_bytes=estimate.file_bytes(value_set, fact.shape, export_mode),
                note=note,
                structure=changes.structure if changes is not None and change is not None else "none",
                structure_params=dict(change.params) if change is not None else {},
                macs_before=before,
                macs=changes.macs_after.get(fact.name, before) if changes is not None else 0,
            )
        )
    return plans


def _usable_recipe(name: str, fact: LayerFacts, export_mode: str, knobs: Knobs) -> tuple[str, list[str]]:
    reasons: list[str] = []
    while True:
        recipe = RECIPES[name]
        reason = recipe.allows(fact.layer_class, export_mode)
        if reason is None and recipe.value_set == "clusters" and fact.shape.n_weights <= knobs.clusters:
            reason = f"{fact.shape.n_weights} weights cannot form {knobs.clusters} clusters"
        if reason is None:
            return name, reasons
        fallback = recipe.fallback or "keep"  # 'keep' allows every layer and mode, so this ends
        reasons.append(f"{reason}: {fallback} instead")
        name = fallback


# --------------------------------------------------------------------------------------
# Profile -> plan
# --------------------------------------------------------------------------------------


def export_choice(profile: Any) -> tuple[str, str, list[str]]:
    """(export mode, input/output dtype, notes) the device can run."""
    compression = profile.compression
    if getattr(profile, "accelerator_int8_only", False):
        notes = (
            []
            if compression.ptq == "int8"
            else [f"{profile.accelerator} runs only full-integer models: int8 export instead of {compression.ptq}"]
        )
        io_dtype = compression.io_dtype if compression.io_dtype != "float32" else "int8"
        return "int8", io_dtype, notes
    mode = compression.ptq
    if mode in ("int8", "dynamic") and not profile.int8:
        fallback = "fp16" if profile.fp16 else "float32"
        return fallback, "float32", [f"the device has no int8 path: {fallback} export instead of {mode}"]
    return mode, compression.io_dtype if mode == "int8" else "float32", []


def _storage_limit(profile: Any) -> Limit:
    """The profile's limit on the model's stored size, as every budget check sees it."""
    return Budget.of(profile).storage


def make_plan(profile: Any, model: Any, significance: _Significance | None = None) -> Plan:
    """The plan `deploy` will follow for `profile`; raises BudgetError when nothing fits.

    `profile` is an `edgecompress.profiles.Profile` (anything with the same fields works);
    `significance` is the TwoNN `SignificanceProfile` or None (every middle layer significant).
    With `compression.strategy: auto` the plan is the mildest strategy on the auto ladder whose
    estimate fits; the deploy then checks its measured size after export (`next_rung`).
    """
    auto = profile.compression.strategy == AUTO
    candidates, limit = _candidates(profile, model, significance, auto=auto)
    if auto:
        chosen = _auto(candidates, profile.name, limit)
    else:
        chosen = _first_that_fits(candidates, profile.compression.strategy, profile.name, limit)
    return _finished(chosen, candidates)


def next_rung(
    profile: Any, model: Any, significance: _Significance | None, plan: Plan, measured: Resources
) -> Plan | None:
    """After an auto plan's export measured over the budget: the next harsher strategy on its ladder
    whose estimate fits (its ladder saying why each step was needed), or None when none is left (then
    `plan`'s own ladder records the miss and why no harsher strategy could help)."""
    candidates, limit = _candidates(profile, model, significance, auto=True)
    order = list(candidates)
    figure = measured.get(limit.measure)
    failed = next((step["strategy"] for step in plan.ladder if step["outcome"].startswith("chosen")), plan.strategy)
    ladder = [step for step in plan.ladder if step["strategy"] not in (failed, *plan.harsher)] + [
        {
            "strategy": failed,
            "estimated_bytes": plan.budget_figure,
            "measured_bytes": figure,
            "outcome": f"measured {figure:,} bytes after export ({MEANINGS[limit.measure]}), over the "
            f"{limit.bytes:,}-byte {limit.field}: a harsher strategy was needed",
        }
    ]
    for name in plan.harsher:
        rung = candidates[name]
        if rung.fits is False:
            ladder.append(_step(rung, limit, f"estimated {rung.budget_figure:,} bytes, over the budget"))
            continue
        if (rung.budget_figure or 0) >= (plan.budget_figure or 0):  # e.g. a file: binary weights are int8 there too
            ladder.append(
                _step(rung, limit, f"skipped: its estimate is no smaller than {failed}'s, which measured over")
            )
            continue
        rung.auto, rung.harsher = True, plan.harsher[plan.harsher.index(name) + 1 :]
        untried = [_step(candidates[left], limit, "not needed yet: a milder one fits") for left in rung.harsher]
        rung.ladder = _in_order(
            [*ladder, _step(rung, limit, "chosen: the mildest left whose estimate fits"), *untried], order
        )
        return _finished(rung, candidates)
    plan.ladder, plan.harsher = _in_order(ladder, order), []  # nothing left: the plan keeps why, the verdict the miss
    return None


def _candidates(
    profile: Any, model: Any, significance: _Significance | None, *, auto: bool = False
) -> tuple[dict[str, Plan], Limit]:
    """One plan per strategy of recipes.STRATEGIES for this profile and model (with `auto`, per rung of its
    ladder, recipes.auto_rungs: fewer clusters before binarised layers), in ladder order, and the budget's limit."""
    compression = profile.compression
    export_mode, io_dtype, notes = export_choice(profile)
    first_last = compression.first_last_precision
    if first_last == "float32" and getattr(profile, "accelerator_int8_only", False):
        first_last = "int8"
        notes.append("first/last layers at int8: the accelerator cannot run float layers")
    knobs = Knobs(
        clusters=compression.clusters,
        bits=compression.mixed_precision_bits,
        first_last_precision=first_last,
        speed=StructureKnobs(tile=channel_tile(profile)),
    )
    facts, fact_notes = layer_facts(model, significance)
    limit = _storage_limit(profile)
    prefer = getattr(compression, "prefer", "size")
    structure = getattr(compression, "speed_recipe", "twonn-prune") if prefer == "speed" else "none"
    if STRUCTURES[structure].needs_significance and significance is None:
        notes.append(
            f"the profile prefers speed, but {structure} sizes layers from their intrinsic dimension and no "
            "significance analysis was given: layer shapes kept"
        )
        structure = "none"
    changes = _structure_plan(model, structure, facts, significance, knobs)
    notes += changes.summary

    def build(rung: Rung) -> Plan:
        strategy = rung.strategy
        description = strategy.description + (
            f", {rung.clusters} clusters (the profile's {knobs.clusters} halved to fit)" if rung.halved else ""
        )
        return Plan(
            profile=profile.name,
            strategy=rung.named,
            description=_described(description, structure),
            export_mode=export_mode,
            io_dtype=io_dtype,
            layers=assign_recipes(facts, strategy.roles, export_mode, replace(knobs, clusters=rung.clusters), changes),
            budget_bytes=limit.bytes,
            budget_field=limit.field,
            budget_measure=limit.measure,
            notes=notes + fact_notes,
            structure=structure,
            prefer=prefer,
        )

    rungs = auto_rungs(knobs.clusters) if auto else tuple(Rung(s, knobs.clusters, s.name) for s in STRATEGIES)
    return {rung.named: build(rung) for rung in rungs}, limit


def _finished(chosen: Plan, candidates: dict[str, Plan]) -> Plan:
    """The chosen plan with every strategy's estimate beside it, named with its speed recipe."""
    chosen.alternatives = [
        {
            "strategy": name,
            "estimated_bytes": plan.estimated_bytes,
            "budget_figure": plan.budget_figure,
            "fits": plan.fits,
        }
        for name, plan in candidates.items()
    ]
    if chosen.structure != "none":
        chosen.strategy = _combined(chosen.structure, chosen.strategy)
        for alternative in chosen.alternatives:
            alternative["strategy"] = _combined(chosen.structure, alternative["strategy"])
    return chosen


def _first_that_fits(candidates: dict[str, Plan], preferred: str, profile_name: str, limit: Limit) -> Plan:
    """The preferred strategy's plan, or the next more aggressive one that fits; BudgetError when none does."""
    allowed = [candidates[strategy.name] for strategy in strategies_from(preferred)]
    chosen = next((plan for plan in allowed if plan.fits is not False), None)
    if chosen is None:
        raise _budget_error(profile_name, min(allowed, key=lambda plan: plan.budget_figure or 0), limit)
    if chosen.strategy != preferred:
        chosen.notes.insert(
            0,
            (
                f"the preferred strategy '{preferred}' needs about {candidates[preferred].budget_figure:,} "
                f"bytes ({MEANINGS[limit.measure]}), over the {limit.bytes:,}-byte budget: using '{chosen.strategy}'"
            ),
        )
    return chosen


def _auto(candidates: dict[str, Plan], profile_name: str, limit: Limit) -> Plan:
    """`strategy: auto`: the mildest strategy on the ladder whose estimate fits; the rest stay to climb to
    when the exported model measures over the budget. BudgetError when no estimate fits."""
    order = list(candidates)
    rungs, ladder = auto_ladder(list(candidates.values()))
    if not rungs:  # no recipe changes this model beyond its export: post-training quantization is the plan
        rungs = [candidates[order[0]]]
        ladder = [step for step in ladder if step["strategy"] != rungs[0].strategy]
    for index, plan in enumerate(rungs):
        if plan.fits is False:
            ladder.append(_step(plan, limit, f"estimated {plan.budget_figure:,} bytes, over the budget"))
            continue
        plan.auto, plan.harsher = True, [rung.strategy for rung in rungs[index + 1 :]]
        untried = [_step(rung, limit, "not needed yet: a milder one fits") for rung in rungs[index + 1 :]]
        plan.ladder = _in_order(
            [*ladder, _step(plan, limit, "chosen: the mildest whose estimate fits"), *untried], order
        )
        return plan
    raise _budget_error(profile_name, min(rungs, key=lambda plan: plan.budget_figure or 0), limit)


def auto_ladder(plans: list[Plan]) -> tuple[list[Plan], list[dict[str, Any]]]:
    """The strategies `auto` climbs, mildest first (recipes.STRATEGIES' order), and why the others are off it.

    Off the ladder: post-training quantization alone (every deploy builds that model anyway,
    as ptq-*, and measures it beside the plan's); a strategy whose layers are exactly a
    milder one's on this export (cqat falls back to clustering on a float export); and one
    that a harsher strategy matches in every layer's size while training more (on an int8
    export, clustering is cqat without its quantization-aware stage).
    """
    rungs: list[Plan] = []
    skipped: list[dict[str, Any]] = []
    for index, plan in enumerate(plans):
        twin = next((p for p in rungs if _recipes(p) == _recipes(plan)), None)
        better = next((p for p in plans[index + 1 :] if _dominates(p, plan)), None)
        if not plan.needs_training:
            why = "post-training quantization only: every deploy builds that model and measures it beside the plan's"
        elif twin is not None:
            why = f"the same recipes as {twin.strategy} on a {plan.export_mode} export"
        elif better is not None:
            why = f"{better.strategy} reaches the same size and also trains for the {plan.export_mode} export"
        else:
            rungs.append(plan)
            continue
        skipped.append({"strategy": plan.strategy, "estimated_bytes": plan.budget_figure, "outcome": f"skipped: {why}"})
    return rungs, skipped


def _recipes(plan: Plan) -> list[tuple[str, dict[str, float]]]:
    return [(layer.recipe, layer.params) for layer in plan.layers]


def _dominates(harsher: Plan, plan: Plan) -> bool:
    """Same size in every layer, and every layer trained at least as much (some more): `plan` has no reason to be."""
    if [layer.estimated_bytes for layer in harsher.layers] != [layer.estimated_bytes for layer in plan.layers]:
        return False
    stages = [
        (set(RECIPES[a.recipe].stages), set(RECIPES[b.recipe].stages)) for a, b in zip(harsher.layers, plan.layers)
    ]
    return all(mine >= theirs for mine, theirs in stages) and any(mine > theirs for mine, theirs in stages)


def _in_order(ladder: list[dict[str, Any]], order: list[str]) -> list[dict[str, Any]]:
    """Ladder steps in the ladder's order (recipes.auto_rungs: the README's), mildest first."""
    return sorted(ladder, key=lambda step: order.index(step["strategy"]))


def _step(plan: Plan, limit: Limit, outcome: str) -> dict[str, Any]:
    """One line of an auto plan's ladder: the strategy, its estimate, and what became of it."""
    return {
        "strategy": plan.strategy,
        "estimated_bytes": plan.budget_figure,
        "budget_bytes": limit.bytes,
        "outcome": outcome,
    }


def _combined(structure: str, strategy: str) -> str:
    """The name of a speed recipe combined with a size strategy: 'twonn-prune+cqat'."""
    return f"{structure}+{strategy}"


def _described(description: str, structure: str) -> str:
    return description if structure == "none" else f"{STRUCTURES[structure].description}; then {description}"


def _structure_plan(
    model: Any, structure: str, facts: list[LayerFacts], significance: Any, knobs: Knobs
) -> StructurePlan:
    """The speed recipe's per-layer decisions (structure 'none': the MACs alone)."""
    roles = {fact.name: fact.role for fact in facts if fact.role != "other"}
    return plan_structure(model, structure, roles, significance=significance, knobs=knobs.speed)


def _budget_error(profile_name: str, closest: Plan, limit: Limit) -> BudgetError:
    needed = closest.budget_figure or 0
    miss = needed - limit.bytes
    largest = max(closest.layers, key=lambda layer: layer.estimated_bytes)
    return BudgetError(
        f"No compression option fits profile '{profile_name}': its {limit.field} is {limit.bytes:,} bytes and the "
        f"closest option, '{closest.strategy}' ({closest.description}), needs about {needed:,} bytes "
        f"({MEANINGS[limit.measure]}) - {miss:,} bytes ({miss / limit.bytes:.0%}) too many. Nothing was trained.",
        f"Raise {limit.field} in the profile to at least {needed:,} bytes, or use a smaller model "
        f"(the largest layer is '{largest.name}', {largest.estimated_bytes:,} bytes bit-packed as planned).",
    )


def plan_for_strategy(
    model: Any,
    strategy: str | Strategy | dict[str, str],
    *,
    export_mode: str,
    io_dtype: str = "float32",
    significance: _Significance | None = None,
    knobs: Knobs | None = None,
    name: str | None = None,
    description: str | None = None,
    structure: str = "none",
) -> Plan:
    """A plan with a fixed strategy (or explicit role -> recipe map), speed recipe and export mode, no budget.

    Baselines and `deploy --recipe NAME` use this: the user picked the method, so nothing
    is chosen for them.
    """
    if isinstance(strategy, str):
        strategy = STRATEGY_BY_NAME[strategy]
    if isinstance(strategy, Strategy):
        roles, name, description = strategy.roles, name or strategy.name, description or strategy.description
    else:
        roles = strategy
    facts, notes = layer_facts(model, significance)
    knobs = knobs or Knobs()
    changes = _structure_plan(model, structure, facts, significance, knobs)
    return Plan(
        profile="",
        strategy=name or "custom",
        description=description or "",
        export_mode=export_mode,
        io_dtype=io_dtype,
        layers=assign_recipes(facts, roles, export_mode, knobs, changes),
        notes=notes + changes.summary,
        structure=structure,
    )


__all__ = [
    "Knobs",
    "LayerFacts",
    "LayerPlan",
    "Plan",
    "SIZE_BASIS",
    "assign_recipes",
    "export_choice",
    "layer_facts",
    "auto_ladder",
    "make_plan",
    "next_rung",
    "plan_for_strategy",
]
