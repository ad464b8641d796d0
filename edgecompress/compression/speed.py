"""Speed recipes in a plan: which layers change shape, to what, and what that saves in MACs.

`plan_structure` decides, before any training, each layer's kept width (structured pruning)
or rank (low rank) and the MACs before and after, with a note for every layer left alone.
`restructure` carries such a decision out on a model (apply.py then fine-tunes it). Both
read and write the per-layer fields of `plan.LayerPlan` (`structure`, `structure_params`),
so a plan shows speed and size recipes side by side, layer by layer.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from edgecompress.compression import estimate
from edgecompress.compression.facts import raw_facts
from edgecompress.compression.lowrank import LowRankRule
from edgecompress.compression.recipes import STRUCTURES
from edgecompress.compression.widths import DEFAULT_TILE, ChannelTile, WidthRule
from edgecompress.errors import EdgeCompressError

#: Roles whose layers keep `boost` x more width (the significance analysis's high-precision layers).
KEEPS_MORE = frozenset({"edge", "significant"})


@dataclass(frozen=True)
class StructureKnobs:
    """The numbers speed recipes take from the profile, a baseline or the benchmark."""

    width_factor: float = WidthRule.factor  # twonn-prune: kept width = ceil(width_factor x ID)
    width_boost: float = WidthRule.boost  # x this for significant / high-precision layers
    width_floor: int = WidthRule.floor  # never fewer channels than this (nor more than the layer has)
    keep_fraction: float = 0.5  # uniform-prune: share of channels every layer keeps
    target_macs: int | None = None  # uniform-prune: instead of keep_fraction, the fraction closest to these MACs
    rank_source: str = LowRankRule.source  # lowrank: 'energy' or 'id'
    rank_energy: float = LowRankRule.energy  # lowrank: share of singular-value energy kept
    rank_factor: float = LowRankRule.factor  # lowrank with rank_source 'id': rank = ceil(rank_factor x ID)
    criterion: str = "l1"  # filter ranking: 'l1' or 'l2'
    tile: ChannelTile = DEFAULT_TILE  # pruned widths are rounded up to a multiple of the kernels' channel tile


@dataclass
class LayerChange:
    """What a speed recipe does to one layer."""

    structure: str
    params: dict[str, Any]
    macs_before: int
    macs_after: int
    shape: estimate.LayerShape | None = None  # weight counts after the change (for size estimates)


@dataclass
class StructurePlan:
    """Per layer: the change, or why none; plus the whole model's MACs before and after."""

    structure: str
    changes: dict[str, LayerChange] = field(default_factory=dict)
    macs_before: dict[str, int] = field(default_factory=dict)  # every layer with MACs
    macs_after: dict[str, int] = field(default_factory=dict)
    notes: dict[str, str] = field(default_factory=dict)  # layer -> why it keeps its shape
    summary: list[str] = field(default_factory=list)  # plan-level notes


def _ids(significance: Any) -> dict[str, float]:
    if significance is None:
        return {}
    ids = {}
    for layer in significance.layers:
        value = getattr(layer, "id", None)
        if value is not None and getattr(layer, "delta_id", 0) is not None:  # delta_id None: the input itself
            ids[layer.name] = float(value)
    return ids


def plan_structure(
    model: Any, structure: str, roles: dict[str, str], *, significance: Any = None, knobs: StructureKnobs | None = None
) -> StructurePlan:
    """The speed recipe `structure` ('twonn-prune', 'uniform-prune', 'lowrank', 'none') for `model`.

    `roles` maps weighted layer names to their plan role ('edge', 'significant', ...).
    """
    from edgecompress.export.macs import keras_layer_macs

    if structure not in STRUCTURES:
        raise EdgeCompressError(f"Unknown speed recipe '{structure}'.", f"Use one of: {', '.join(STRUCTURES)}.")
    knobs = knobs or StructureKnobs()
    layers = {layer.name: layer for layer in model.layers}
    before = {name: keras_layer_macs(layer) for name, layer in layers.items() if layer.weights}
    plan = StructurePlan(structure, macs_before={k: v for k, v in before.items() if v}, macs_after=dict(before))
    plan.macs_after = {k: v for k, v in plan.macs_after.items() if v}
    technique = STRUCTURES[structure].technique
    if technique == "prune":
        _plan_pruning(plan, model, roles, significance, knobs)
    elif technique == "lowrank":
        _plan_lowrank(plan, model, roles, significance, knobs)
    return plan


def _plan_pruning(
    plan: StructurePlan, model: Any, roles: dict[str, str], significance: Any, knobs: StructureKnobs
) -> None:
    from edgecompress.compression.channels import analyse

    channels = analyse(model)
    if plan.structure == "twonn-prune":
        widths = _id_widths(plan, channels, roles, significance, knobs)
    else:
        widths = _uniform_widths(plan, channels, knobs)
    if not any(width < _group_size(channels, name) for name, width in widths.items()):
        plan.summary.append(
            f"{plan.structure} removed no channel (every width asked for is the layer's own): "
            "the model keeps its shapes"
        )
    for name in roles:
        reason = channels.why_not(name)
        if reason is not None and name not in plan.notes:
            plan.notes[name] = f"channels kept: {reason}"
    _record_pruning(plan, model, channels, widths, knobs)


def _id_widths(
    plan: StructurePlan, channels: Any, roles: dict[str, str], significance: Any, knobs: StructureKnobs
) -> dict[str, int]:
    """twonn-prune: each layer keeps about as many channels as its intrinsic dimension."""
    from edgecompress.compression.widths import id_widths

    ids = _ids(significance)
    if not ids:
        raise EdgeCompressError(
            "The twonn-prune speed recipe sizes each layer from its intrinsic dimension, and no layer IDs were given "
            "(no significance analysis, or one without IDs).",
            "Run the significance analysis first and pass its result, or use uniform-prune.",
        )
    rule = WidthRule(knobs.width_factor, knobs.width_boost, knobs.width_floor, knobs.tile)
    keeps_more = {name for name, role in roles.items() if role in KEEPS_MORE}
    widths = id_widths(channels, ids, keeps_more, rule)
    plan.summary.append(
        f"twonn-prune widths: ceil({knobs.width_factor:g} x ID), x{knobs.width_boost:g} for significant/high-precision "
        f"layers, at least {knobs.width_floor} channels, {_tile_words(knobs.tile)}; {knobs.criterion.upper()} "
        "filter ranking"
    )
    for name in roles:
        if channels.prunable(name) and name not in widths:
            plan.notes[name] = "no intrinsic dimension measured for it (or a layer tied to it): width kept"
    return widths


def _uniform_widths(plan: StructurePlan, channels: Any, knobs: StructureKnobs) -> dict[str, int]:
    """uniform-prune: the same share of channels everywhere, given directly or found from a MAC target."""
    from edgecompress.compression.widths import uniform_at_macs, uniform_widths

    if knobs.target_macs:
        fraction, widths = uniform_at_macs(channels, int(knobs.target_macs), tile=knobs.tile)
        plan.summary.append(
            f"uniform-prune: every prunable layer keeps {fraction:.1%} of its channels "
            f"(the fraction closest to {int(knobs.target_macs):,} MACs), {_tile_words(knobs.tile)}; "
            f"{knobs.criterion.upper()} filter ranking"
        )
    else:
        fraction, widths = knobs.keep_fraction, uniform_widths(channels, knobs.keep_fraction, knobs.tile)
        plan.summary.append(
            f"uniform-prune: every prunable layer keeps {fraction:.0%} of its channels, {_tile_words(knobs.tile)}; "
            f"{knobs.criterion.upper()} filter ranking"
        )
    return widths


def _tile_words(tile: ChannelTile) -> str:
    """The rounding rule as the plan states it."""
    return f"rounded up to a multiple of {tile.channels} channels ({tile.why})"


def _record_pruning(
    plan: StructurePlan, model: Any, channels: Any, widths: dict[str, int], knobs: StructureKnobs
) -> None:
    """Each affected layer's change: its new width (or the inputs it keeps), MACs before and after, new shape."""
    from edgecompress.compression.widths import MacModel, kept_fractions

    mac_model = MacModel(channels)
    layers = {layer.name: layer for layer in model.layers}
    for name, (into, out) in kept_fractions(channels, widths).items():
        layer = layers[name]
        if not layer.weights:
            continue
        group = channels.group_of(name)
        follows = group is not None and name in group.followers
        macs_after = round(mac_model.full.get(name, 0) * (into if follows else into * out))
        if plan.macs_after.get(name) is not None:
            plan.macs_after[name] = int(macs_after)
        params: dict[str, Any] = {"criterion": knobs.criterion}
        if name in widths and group is not None and widths[name] < group.size:
            params.update(width=int(widths[name]), of=int(group.size))
        elif follows or name not in widths:
            params.update(inputs_kept=round(into, 4))  # a layer whose inputs shrink because the one before was pruned
        plan.changes[name] = LayerChange(
            plan.structure,
            params,
            mac_model.full.get(name, 0),
            int(macs_after),
            _scaled_shape(layer, into, out, follows),
        )


def _group_size(channels: Any, name: str) -> int:
    """Output channels of the group `name` belongs to (widths are only asked of grouped layers)."""
    group = channels.group_of(name)
    assert group is not None, f"layer '{name}' has no channel group"
    return int(group.size)


def _scaled_shape(layer: Any, into: float, out: float, follows: bool) -> estimate.LayerShape:
    """Weight counts after pruning, for the plan's size estimate."""
    shape = raw_facts(layer).shape
    out = into if follows else out  # a follower's channels are its inputs'
    kernel_share = into if follows else into * out
    return estimate.LayerShape(
        n_weights=int(round(shape.n_weights * kernel_share)),
        out_channels=max(1, int(round(shape.out_channels * out))),
        n_bias=int(round(shape.n_bias * out)),
        n_other=int(round(shape.n_other * out)),
    )


def _plan_lowrank(
    plan: StructurePlan, model: Any, roles: dict[str, str], significance: Any, knobs: StructureKnobs
) -> None:
    from edgecompress.compression.lowrank import plan_factorisation

    rule = LowRankRule(source=knobs.rank_source, energy=knobs.rank_energy, factor=knobs.rank_factor)
    ids = _ids(significance)
    if rule.source == "id" and not ids:
        raise EdgeCompressError(
            "Low rank with rank_source 'id' takes each rank from the layer's intrinsic dimension, and no significance analysis was given.",
            "Run the significance analysis first, or choose the rank by singular-value energy (rank_source: energy).",
        )
    plan.summary.append(
        "lowrank ranks: "
        + (
            f"ceil({rule.factor:g} x layer ID)"
            if rule.source == "id"
            else f"{rule.energy:.0%} of singular-value energy"
        )
        + f"; layers saving under {rule.min_saving:.0%} of their MACs are left whole"
    )
    layers = {layer.name: layer for layer in model.layers}
    for name, role in roles.items():
        if role == "edge":
            plan.notes[name] = "first/last (or high-precision) layer: left whole"
            continue
        factorisation, why = plan_factorisation(layers[name], rule, ids.get(name))
        if factorisation is None:
            plan.notes[name] = why
            continue
        plan.macs_after[name] = factorisation.macs_after
        params = {
            "rank": factorisation.rank,
            "of": factorisation.full_rank,
            "scheme": factorisation.scheme,
            "energy_kept": round(factorisation.energy_kept, 4),
        }
        plan.changes[name] = LayerChange(
            plan.structure,
            params,
            factorisation.macs_before,
            factorisation.macs_after,
            _factorised_shape(layers[name], factorisation.rank, factorisation.scheme),
        )
    if not plan.changes:
        plan.summary.append("lowrank factorised no layer (see each layer's note): the model keeps its shapes")


def _factorised_shape(layer: Any, rank: int, scheme: str) -> estimate.LayerShape:
    shape = raw_facts(layer).shape
    kernel = layer.kernel.shape
    if scheme == "separable":
        rows, cols = int(kernel[0]) * int(kernel[2]), int(kernel[1]) * int(kernel[3])
    else:
        rows, cols = math.prod(int(d) for d in kernel[:-1]), int(kernel[-1])
    return estimate.LayerShape(
        n_weights=rank * (rows + cols), out_channels=shape.out_channels, n_bias=shape.n_bias, n_other=shape.n_other
    )


def restructure(model: Any, layers: Iterable[Any], *, criterion: str = "l1") -> Any:
    """`model` with the plan's pruned widths and factorisations applied (no training).

    `layers` are the plan's LayerPlan rows; pruning comes first, so a rank is capped by the
    pruned layer's new shape.
    """
    from edgecompress.compression.lowrank import factorise, full_rank
    from edgecompress.compression.structured import prune_channels

    rows = list(layers)
    widths = {
        row.name: int(row.structure_params["width"])
        for row in rows
        if STRUCTURES[row.structure].technique == "prune" and "width" in row.structure_params
    }
    ranks = {
        row.name: int(row.structure_params["rank"])
        for row in rows
        if STRUCTURES[row.structure].technique == "lowrank" and "rank" in row.structure_params
    }
    if widths:  # the plan records the ranking criterion with each pruned layer (one per plan)
        criterion = next(
            (row.structure_params.get("criterion", criterion) for row in rows if row.name in widths), criterion
        )
        model = prune_channels(model, widths, criterion=criterion).model
    if ranks:
        by_name = {layer.name: layer for layer in model.layers}
        capped = {name: min(rank, full_rank(by_name[name])) for name, rank in ranks.items()}
        model = factorise(model, capped)
    return model


__all__ = ["KEEPS_MORE", "LayerChange", "StructureKnobs", "StructurePlan", "plan_structure", "restructure"]
