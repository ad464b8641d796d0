"""Which output channels can be removed together: the channel groups of a Keras graph.

Removing output channel j of a Conv/Dense layer means removing channel j everywhere that
channel travels -- the matching entries of a BatchNormalization after it, the matching
filter of a depthwise convolution, the matching input rows of the next Conv/Dense (for a
Dense after Flatten, one row per spatial position) -- and, where a residual Add joins two
paths, the same channel on *both* paths. A *group* is such a set of tied channels: every
producer in it keeps the same channel indices.

Layers this module cannot follow (Concatenate, Reshape, custom layers, channels-first data,
grouped or transposed convolutions, depthwise multipliers > 1, shared layers, the model's
outputs) freeze the groups that reach them, each with a reason the plan shows. Nothing is
guessed: a frozen group keeps all its channels.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from edgecompress.compression.surgery import LayerGraph

#: Layers whose output channels can be chosen (kernel's last axis = output channels).
PRODUCERS = frozenset({"Conv1D", "Conv2D", "Conv3D", "Dense"})
#: Layers with one weight (or statistic) per channel that pass channels through.
FOLLOWERS = frozenset({"BatchNormalization", "DepthwiseConv1D", "DepthwiseConv2D"})
#: Layers without weights that keep channels where they are.
PASS_THROUGH = frozenset(
    {
        "Activation",
        "ReLU",
        "LeakyReLU",
        "ELU",
        "ThresholdedReLU",
        "Dropout",
        "SpatialDropout1D",
        "SpatialDropout2D",
        "SpatialDropout3D",
        "GaussianNoise",
        "GaussianDropout",
        "AlphaDropout",
        "ActivityRegularization",
        "MaxPooling1D",
        "MaxPooling2D",
        "MaxPooling3D",
        "AveragePooling1D",
        "AveragePooling2D",
        "AveragePooling3D",
        "ZeroPadding1D",
        "ZeroPadding2D",
        "ZeroPadding3D",
        "Cropping1D",
        "Cropping2D",
        "Cropping3D",
        "UpSampling1D",
        "UpSampling2D",
        "UpSampling3D",
        "Identity",
    }
)
GLOBAL_POOLING = frozenset(
    {
        "GlobalAveragePooling1D",
        "GlobalAveragePooling2D",
        "GlobalAveragePooling3D",
        "GlobalMaxPooling1D",
        "GlobalMaxPooling2D",
        "GlobalMaxPooling3D",
    }
)
#: Element-wise merges: every input must keep the same channels.
TIES = frozenset({"Add", "Subtract", "Multiply", "Average", "Maximum", "Minimum"})


@dataclass(frozen=True)
class Source:
    """Where a tensor's channels come from: a group, repeated `repeat` times (Flatten), or fixed (None)."""

    group: int | None
    repeat: int = 1


FIXED = Source(None)


@dataclass
class Group:
    """Channels that must be kept or removed together."""

    id: int
    size: int
    producers: list[str] = field(default_factory=list)
    followers: list[str] = field(default_factory=list)
    consumers: list[tuple[str, int]] = field(default_factory=list)  # (layer, repeat of the channel block)
    frozen: str | None = None  # why the group cannot be pruned


@dataclass
class ChannelGraph:
    """Channel groups of a model, and what each weighted layer reads and writes."""

    graph: LayerGraph
    groups: dict[int, Group]
    output_group: dict[str, int]  # producer / follower -> the group of its output channels
    input_source: dict[str, Source]  # producer / follower -> what its input channels are
    refused: dict[str, str]  # weighted layer -> why its channels cannot change (plan notes)

    def group_of(self, layer: str) -> Group | None:
        index = self.output_group.get(layer)
        return None if index is None else self.groups[index]

    def prunable(self, layer: str) -> bool:
        group = self.group_of(layer)
        return group is not None and group.frozen is None and layer in group.producers

    def why_not(self, layer: str) -> str | None:
        """Why a weighted layer's width cannot change, or None when it can."""
        if layer in self.refused:
            return self.refused[layer]
        group = self.group_of(layer)
        if group is None:
            return "not a Conv/Dense layer with selectable output channels"
        if group.frozen:
            return group.frozen
        if layer not in group.producers:
            return "its channels follow the layer before it"
        return None


def analyse(model: Any) -> ChannelGraph:
    """The channel groups of `model` (a Sequential or Functional tf-keras model)."""
    walk = _Walk(LayerGraph.of(model), {layer.name: layer for layer in model.layers})
    for node in walk.graph.nodes:
        walk.visit(node)
    for output in walk.graph.outputs:
        walk.freeze(walk.sources.get(output, FIXED), "is the model's output")
    return walk.result()


class _Walk:
    """One pass over the layer graph, grouping channels that must be removed together (union-find)."""

    def __init__(self, graph: Any, layers: dict[str, Any]) -> None:
        self.graph, self.layers = graph, layers
        self.groups: dict[int, Group] = {}
        self.parent: dict[int, int] = {}
        self.sources: dict[str, Source] = {}
        self.output_group: dict[str, int] = {}
        self.input_source: dict[str, Source] = {}
        self.refused: dict[str, str] = {}

    def find(self, index: int) -> int:
        while self.parent[index] != index:
            self.parent[index] = self.parent[self.parent[index]]
            index = self.parent[index]
        return index

    def new_group(self, size: int) -> int:
        index = len(self.parent)
        self.parent[index] = index
        self.groups[index] = Group(index, size)
        return index

    def freeze(self, source: Source, reason: str) -> None:
        if source.group is not None:
            group = self.groups[self.find(source.group)]
            group.frozen = group.frozen or reason

    def visit(self, node: Any) -> None:
        name, kind = node.name, node.class_name
        inputs = [self.sources.get(i, FIXED) for i in node.inputs]
        first = inputs[0] if inputs else FIXED
        layer = self.layers.get(name)
        if kind == "InputLayer":
            self.sources[name] = FIXED
            return
        problem = _unsupported(kind, node.config, node.calls, layer)
        if problem is None and kind in TIES:
            if any(s.group is None for s in inputs) or len({s.repeat for s in inputs}) > 1:
                problem = f"meets a {kind} whose inputs are not all prunable channel blocks"
        if problem is not None:
            for source in inputs:
                self.freeze(source, f"feeds {kind} layer '{name}', which {problem}")
            if layer is not None and layer.weights:
                self.refused[name] = f"{kind} layer: {problem}"
            self.sources[name] = FIXED
        elif kind in PRODUCERS:
            self._producer(name, kind, first, layer)
        elif kind in FOLLOWERS:
            self._follower(name, first)
        elif kind in PASS_THROUGH:
            self.sources[name] = first
        elif kind in GLOBAL_POOLING:
            self.sources[name] = Source(first.group, 1)
        elif kind == "Flatten":
            self._flatten(name, first, layer)
        elif kind in TIES:
            self._tie(name, inputs)

    def _producer(self, name: str, kind: str, first: Source, layer: Any) -> None:
        if first.repeat > 1 and kind != "Dense":
            self.freeze(first, f"is flattened into {kind} layer '{name}'")
            first = FIXED
        self.input_source[name] = first
        if first.group is not None:
            self.groups[self.find(first.group)].consumers.append((name, first.repeat))
        index = self.new_group(_out_channels(layer))
        self.groups[index].producers.append(name)
        self.output_group[name] = index
        self.sources[name] = Source(index)

    def _follower(self, name: str, first: Source) -> None:
        self.input_source[name] = first
        if first.group is None:
            self.sources[name] = FIXED
            return
        self.groups[self.find(first.group)].followers.append(name)
        self.output_group[name] = first.group
        self.sources[name] = first

    def _flatten(self, name: str, first: Source, layer: Any) -> None:
        if first.group is not None and first.repeat > 1:
            self.freeze(first, f"is flattened twice (at '{name}')")
            self.sources[name] = FIXED
        else:
            self.sources[name] = Source(first.group, _spatial_positions(layer)) if first.group is not None else FIXED

    def _tie(self, name: str, inputs: list[Source]) -> None:
        root = self.find(inputs[0].group)  # type: ignore[arg-type]  # checked in visit: all inputs are groups
        for source in inputs[1:]:
            other = self.find(source.group)  # type: ignore[arg-type]
            if other != root:
                self.parent[other] = root
                merged, kept = self.groups[other], self.groups[root]
                kept.producers += merged.producers
                kept.followers += merged.followers
                kept.consumers += merged.consumers
                kept.frozen = kept.frozen or merged.frozen
        self.sources[name] = Source(root, inputs[0].repeat)

    def result(self) -> ChannelGraph:
        """The groups with merged ones resolved to their root."""
        resolved = {index: self.find(index) for index in self.parent}
        final = {index: self.groups[index] for index in set(resolved.values())}
        for index, group in final.items():
            group.id = index
        output_group = {name: resolved[index] for name, index in self.output_group.items()}
        input_source = {
            name: Source(None if s.group is None else resolved[s.group], s.repeat)
            for name, s in self.input_source.items()
        }
        return ChannelGraph(self.graph, final, output_group, input_source, self.refused)


def _out_channels(layer: Any) -> int:
    return int(layer.kernel.shape[-1])


def _spatial_positions(layer: Any) -> int:
    shape = layer.input_shape
    positions = 1
    for dim in tuple(shape)[1:-1]:
        positions *= int(dim or 1)
    return positions


def _unsupported(kind: str, config: dict[str, Any], calls: int, layer: Any) -> str | None:
    """Why the channel analysis cannot follow channels through this layer, or None."""
    known = PRODUCERS | FOLLOWERS | PASS_THROUGH | GLOBAL_POOLING | TIES | {"Flatten"}
    if kind not in known:
        return "edgecompress cannot slice by channel"
    if calls > 1:
        return "is shared (called more than once)"
    if config.get("data_format", "channels_last") != "channels_last":
        return "uses channels-first data"
    if kind in PRODUCERS and int(config.get("groups", 1) or 1) != 1:
        return "is a grouped convolution"
    if kind.startswith("DepthwiseConv") and int(config.get("depth_multiplier", 1)) != 1:
        return "has a depth multiplier above 1"
    if kind == "BatchNormalization":
        axis = config.get("axis", -1)
        axes = axis if isinstance(axis, (list, tuple)) else [axis]
        rank = len(tuple(layer.input_shape)) if layer is not None else None
        if not all(a == -1 or (rank is not None and a == rank - 1) for a in axes):
            return "normalises an axis other than the channels"
    if kind in GLOBAL_POOLING and config.get("keepdims", False):
        return "keeps its spatial dimensions"
    return None


__all__ = ["ChannelGraph", "FIXED", "Group", "Source", "analyse"]
