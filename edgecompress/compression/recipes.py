"""The per-layer recipes and the whole-model strategies built from them, as data.

A *recipe* is what happens to one layer's weights (cluster them, binarise them, leave them
to the export mode, ...). A *strategy* says which recipe each kind of layer gets; the plan
walks the strategies from least to most aggressive until one fits the device's budget.
Adding a recipe or a strategy means adding a row here and, for a new technique, a module
that implements its training stage; nothing else branches on recipe names.

This module never imports TensorFlow: the CLI shows plans without paying for it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

#: Keras layer classes whose `kernel` has the output channels on its last axis: the layers
#: whose weights our own straight-through quantizers (binary, b-bit) know how to code.
_LAST_AXIS_KERNELS = frozenset({"Conv1D", "Conv2D", "Conv3D", "Dense"})
#: Layers tfmot's clustering registry clusters through their `kernel` (tfmot 0.8.1
#: ClusteringRegistry; DepthwiseConv2D is registered but deliberately never clustered).
_CLUSTERABLE = frozenset(
    {"Conv1D", "Conv2D", "Conv3D", "Conv1DTranspose", "Conv2DTranspose", "Conv3DTranspose", "Dense"}
)
#: Layers tfmot's default 8-bit scheme quantizes with weights (Default8BitQuantizeRegistry).
_QAT_WEIGHTED = frozenset({"Conv2D", "Dense", "DepthwiseConv2D", "Conv2DTranspose"})
#: Layers whose clusters the cluster-preserving scheme keeps (ClusterPreserveQuantizeRegistry).
_CLUSTER_PRESERVING = frozenset({"Conv2D", "Dense"})
#: Layers tfmot's pruning registry prunes through their `kernel`.
_PRUNABLE = frozenset({"Conv1D", "Conv2D", "Conv3D", "Conv2DTranspose", "Conv3DTranspose", "Dense"})

#: Export modes whose graph is integer end to end; QAT only makes sense when training
#: simulates that, so the QAT recipes are limited to it.
INTEGER_EXPORT = frozenset({"int8"})

#: How the plan estimates a layer's packed size, and what the compressed model promises:
#: 'dense'    -> every weight at the export width (no promise about unique values)
#: 'clusters' -> at most `clusters` unique kernel values in the layer
#: 'codes'    -> at most 2**bits unique kernel values per output channel
#: 'float'    -> every weight kept in float32, whatever the export mode
VALUE_SETS = ("dense", "clusters", "codes", "float")


@dataclass(frozen=True)
class Recipe:
    """One way to treat one layer's weights.

    `stages` are the training stages the recipe takes part in: 'shape' (weights are
    reshaped into a small value set and fine-tuned) and/or 'quantize' (quantization-aware
    fine-tuning). `fallback` is used when the layer class or the export mode does not allow
    this recipe, so a plan never silently drops a layer.
    """

    name: str
    description: str
    layer_classes: frozenset[str] | None  # None: any layer
    value_set: str
    stages: tuple[str, ...] = ()
    export_modes: frozenset[str] | None = None  # None: any export mode
    fallback: str | None = None
    shaper: str | None = None  # the technique of the 'shape' stage: 'cluster', 'lowbit' or 'prune'
    learning_rate: float = 1e-4
    defaults: dict[str, float] = field(default_factory=dict)
    #: times the base fine-tuning step budget a stage with this recipe may run (it stops sooner on a
    #: plateau): weights forced to 1 or 2 bits recover far more slowly than clustered ones -- a binarised
    #: CIFAR ResNet was still gaining 12 points in its last 500 of 1,000 steps
    step_scale: float = 1.0

    def step_scale_for(self, params: dict[str, float]) -> float:
        """`step_scale`, raised for a clustered layer with few clusters: each bit fewer than 4 per index (16
        clusters) adds one base budget (8 clusters 2x, 4 clusters 3x), as few-bit and binarised recipes get --
        3-bit clustering of a CIFAR-10 ResNet was still improving when a 1,000-step cap stopped it."""
        clusters = params.get("clusters")
        if not clusters:
            return self.step_scale
        return max(self.step_scale, 1.0 + max(0, 4 - max(1, math.ceil(math.log2(clusters)))))

    def allows(self, layer_class: str, export_mode: str) -> str | None:
        """Why this recipe cannot be used here, or None when it can."""
        if self.layer_classes is not None and layer_class not in self.layer_classes:
            return f"{self.name} does not support {layer_class} layers"
        if self.export_modes is not None and export_mode not in self.export_modes:
            return f"{self.name} needs the {' or '.join(sorted(self.export_modes))} export mode, not {export_mode}"
        return None


_RECIPES = (
    Recipe("keep", "left as trained; quantized only by the export mode", layer_classes=None, value_set="dense"),
    Recipe(
        "float",
        "kept in float32 even in an integer export (sensitive first/last layers)",
        layer_classes=None,
        value_set="float",
        export_modes=frozenset(
            {"int8"}
        ),  # the only mode with a documented per-layer float route (selective quantization)
        fallback="keep",
    ),
    Recipe(
        "clustering",
        "k-means weight clustering (kmeans++ init), fine-tuned (tfmot)",
        layer_classes=_CLUSTERABLE,
        value_set="clusters",
        stages=("shape",),
        fallback="keep",
        shaper="cluster",
        learning_rate=1e-4,
        defaults={"clusters": 16},
    ),
    Recipe(
        "cqat",
        "clustering, then cluster-preserving quantization-aware training (tfmot CQAT), int8",
        layer_classes=_CLUSTER_PRESERVING,
        value_set="clusters",
        stages=("shape", "quantize"),
        export_modes=INTEGER_EXPORT,
        fallback="clustering",
        shaper="cluster",
        learning_rate=1e-4,
        defaults={"clusters": 16},
    ),
    Recipe(
        "qat",
        "quantization-aware training with tfmot's default 8-bit scheme",
        layer_classes=_QAT_WEIGHTED,
        value_set="dense",
        stages=("quantize",),
        export_modes=INTEGER_EXPORT,
        fallback="keep",
        learning_rate=1e-4,
    ),
    Recipe(
        "pruning",
        "unstructured magnitude pruning, polynomial-decay sparsity schedule (tfmot)",
        layer_classes=_PRUNABLE,
        value_set="dense",
        stages=("shape",),
        fallback="keep",
        shaper="prune",
        learning_rate=1e-4,
        defaults={"sparsity": 0.5},
    ),
    Recipe(
        "binary",
        "XNOR binarisation: alpha * sign(W), alpha = mean |W| per output channel, straight-through training",
        layer_classes=_LAST_AXIS_KERNELS,
        value_set="codes",
        stages=("shape",),
        fallback="clustering",
        shaper="lowbit",
        learning_rate=1e-3,
        defaults={"bits": 1},
        step_scale=4.0,
    ),
    Recipe(
        "bits",
        "b-bit uniform symmetric weights per output channel, straight-through training",
        layer_classes=_LAST_AXIS_KERNELS,
        value_set="codes",
        stages=("shape",),
        fallback="clustering",
        shaper="lowbit",
        learning_rate=1e-3,
        defaults={"bits": 2},
        step_scale=2.0,
    ),
)

RECIPES: dict[str, Recipe] = {recipe.name: recipe for recipe in _RECIPES}

#: Recipes whose value set (clusters, codes, zeros) must survive a later QAT stage; the
#: QAT stage freezes their layers so fine-tuning cannot undo them.
SHAPED = frozenset(
    name for name, recipe in RECIPES.items() if "shape" in recipe.stages and "quantize" not in recipe.stages
)


@dataclass(frozen=True)
class Structure:
    """A speed recipe: how a layer's *shape* changes so the exported model has fewer MACs.

    Orthogonal to the value recipes above (which make weights cheaper to store): a plan gives
    each layer one of each, so a pruned layer can still be clustered or quantization-trained.
    `stage` is 'restructure': the model is rebuilt with the new shapes and fine-tuned before
    any value recipe is applied.
    """

    name: str
    description: str
    technique: str | None  # 'prune' | 'lowrank' | None
    needs_significance: bool = False
    learning_rate: float = 5e-4  # low rank starts from an exact factorisation: a gentler rate keeps it
    budget_scale: float = 2.0  # times the fine-tuning step budget: a new shape takes longer to recover than new values


_STRUCTURES = (
    Structure("none", "layer shapes kept", None),
    Structure(
        "twonn-prune",
        "structured pruning: output channels physically removed; kept width = ceil(factor x layer ID), x boost for "
        "significant layers, at least a floor; filters ranked by L1 norm; fine-tuned",
        "prune",
        needs_significance=True,
        learning_rate=1e-3,  # removed channels change every later activation: recovery needs the training rate
        budget_scale=3.0,
    ),
    Structure(
        "uniform-prune",
        "structured pruning: every prunable layer keeps the same fraction of its output channels (L1 filter ranking); fine-tuned",
        "prune",
        learning_rate=1e-3,
        budget_scale=3.0,
    ),
    Structure(
        "lowrank",
        "low-rank factorisation: truncated SVD of Dense kernels, rank-K separable (kh x 1 then 1 x kw) Conv kernels; fine-tuned",
        "lowrank",
    ),
)

STRUCTURES: dict[str, Structure] = {structure.name: structure for structure in _STRUCTURES}


#: Placeholder in a strategy: the profile's `first_last_precision` decides ('int8' ->
#: keep for the export mode, 'float32' -> float).
EDGE_PRECISION = "first-last-precision"
EDGE_RECIPES = {"int8": "keep", "float32": "float"}

#: Layer roles a strategy assigns recipes to. 'edge' is the first and last weighted layer
#: (and any layer the significance analysis asks to keep at high precision).
ROLES = ("edge", "significant", "insignificant")


@dataclass(frozen=True)
class Strategy:
    """Which recipe each role gets; the order of `STRATEGIES` is the order of aggressiveness."""

    name: str
    description: str
    roles: dict[str, str]


STRATEGIES: tuple[Strategy, ...] = (
    Strategy(
        "ptq-only",
        "post-training quantization only, no fine-tuning",
        {"edge": EDGE_PRECISION, "significant": "keep", "insignificant": "keep"},
    ),
    Strategy(
        "clustering",
        "weight clustering on every middle layer",
        {"edge": EDGE_PRECISION, "significant": "clustering", "insignificant": "clustering"},
    ),
    Strategy(
        "cqat",
        "cluster-preserving QAT on significant layers, clustering on insignificant ones",
        {"edge": EDGE_PRECISION, "significant": "cqat", "insignificant": "clustering"},
    ),
    Strategy(
        "cqat-binary",
        "cluster-preserving QAT on significant layers, binarised insignificant layers",
        {"edge": EDGE_PRECISION, "significant": "cqat", "insignificant": "binary"},
    ),
    Strategy(
        "mixed-precision",
        "b-bit significant layers, binarised insignificant layers",
        {"edge": EDGE_PRECISION, "significant": "bits", "insignificant": "binary"},
    ),
    Strategy(
        "binary",
        "every middle layer binarised (the smallest option)",
        {"edge": EDGE_PRECISION, "significant": "binary", "insignificant": "binary"},
    ),
)

STRATEGY_BY_NAME: dict[str, Strategy] = {strategy.name: strategy for strategy in STRATEGIES}

#: The profile's `compression.strategy` that lets the budget pick: the mildest strategy of STRATEGIES
#: whose size, measured after export, fits (compression.plan.make_plan, pipeline step compressed-export).
AUTO = "auto"


#: `strategy: auto` halves the clusters of a strategy that only clusters (profile's `clusters`, then half,
#: ...) down to this many before it tries one that binarises layers: 4 clusters are 2-bit indices, still a
#: learned value set per layer, where binarisation keeps one bit and a scale. Value tables per channel make
#: fewer than 4 clusters save little more flash.
MIN_AUTO_CLUSTERS = 4


@dataclass(frozen=True)
class Rung:
    """One step of `strategy: auto`'s ladder: a strategy with the number of clusters its clustering recipes use."""

    strategy: Strategy
    clusters: int
    named: str  # the plan's and artifact's name: the strategy's, with the clusters when auto changed them

    @property
    def halved(self) -> bool:
        return self.named != self.strategy.name


def _value_sets(strategy: Strategy) -> set[str]:
    return {RECIPES[recipe].value_set for recipe in strategy.roles.values() if recipe in RECIPES}


def auto_rungs(clusters: int) -> tuple[Rung, ...]:
    """The ladder `auto` climbs, mildest first: README order, except that strategies which only cluster are
    tried with the profile's `clusters`, then half as many, down to MIN_AUTO_CLUSTERS, before any strategy that
    binarises or codes layers in a few bits."""
    counts = [clusters]
    while counts[-1] // 2 >= MIN_AUTO_CLUSTERS:
        counts.append(counts[-1] // 2)
    coded = [strategy for strategy in STRATEGIES if "codes" in _value_sets(strategy)]
    clustering = [s for s in STRATEGIES if "clusters" in _value_sets(s) and s not in coded]
    kept = [s for s in STRATEGIES if s not in coded and s not in clustering]  # post-training quantization only
    halving = [
        Rung(strategy, count, strategy.name if count == clusters else f"{strategy.name}-{count}")
        for count in counts
        for strategy in clustering
    ]
    return (
        *(Rung(s, clusters, s.name) for s in kept),
        *halving,
        *(Rung(s, clusters, s.name) for s in coded),
    )


def strategies_from(name: str) -> tuple[Strategy, ...]:
    """The named strategy followed by every more aggressive one: what a tight budget may use."""
    names = [strategy.name for strategy in STRATEGIES]
    if name not in names:
        raise KeyError(f"unknown strategy '{name}' (known: {', '.join(names)})")
    return STRATEGIES[names.index(name) :]


__all__ = [
    "AUTO",
    "MIN_AUTO_CLUSTERS",
    "Rung",
    "auto_rungs",
    "EDGE_PRECISION",
    "EDGE_RECIPES",
    "INTEGER_EXPORT",
    "RECIPES",
    "ROLES",
    "SHAPED",
    "STRATEGIES",
    "STRATEGY_BY_NAME",
    "STRUCTURES",
    "Recipe",
    "Strategy",
    "Structure",
    "strategies_from",
]
