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
PASS_THROUGH = frozenset({
    "Activation", "ReLU", "LeakyReLU", "ELU", "ThresholdedReLU", "Dropout", "SpatialDropout1D", "SpatialDropout2D",
    "SpatialDropout3D", "GaussianNoise", "GaussianDropout", "AlphaDropout", "ActivityRegularization",
    "MaxPooling1D", "MaxPooling2D", "MaxPooling3D", "AveragePooling1D", "AveragePooling2D", "AveragePooling3D",
    "ZeroPadding1D", "ZeroPadding2D", "ZeroPadding3D", "Cropping1D", "Cropping2D", "Cropping3D",
    "UpSampling1D", "UpSampling2D", "UpSampling3D", "Identity",
})
GLOBAL_POOLING = frozenset({
    "GlobalAveragePooling1D", "GlobalAveragePooling2D", "GlobalAveragePooling3D",
    "GlobalMaxPooling1D", "GlobalMaxPooling2D", "GlobalMaxPooling3D",
})
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
    graph = LayerGraph.of(model)
    layers = {layer.name: layer for layer in model.layers}
    groups: dict[int, Group] = {}
    parent: dict[int, int] = {}
    sources: dict[str, Source] = {}
    output_group: dict[str, int] = {}
    input_source: dict[str, Source] = {}
    refused: dict[str, str] = {}

    def find(index: int) -> int:
        while parent[index] != index:
            parent[index] = parent[parent[index]]
            index = parent[index]
        return index

    def new_group(size: int) -> int:
        index = len(parent)
        parent[index] = index
        groups[index] = Group(index, size)
        return index

    def freeze(source: Source, reason: str) -> None:
        if source.group is not None:
            group = groups[find(source.group)]
            group.frozen = group.frozen or reason

    for node in graph.nodes:
        name, kind, config = node.name, node.class_name, node.config
        inputs = [sources.get(i, FIXED) for i in node.inputs]
        first = inputs[0] if inputs else FIXED
        layer = layers.get(name)
        if kind == "InputLayer":
            sources[name] = FIXED
            continue
        problem = _unsupported(kind, config, node.calls, layer)
        if problem is None and kind in TIES:
            if any(s.group is None for s in inputs) or len({s.repeat for s in inputs}) > 1:
                problem = f"meets a {kind} whose inputs are not all prunable channel blocks"
        if problem is not None:
            for source in inputs:
                freeze(source, f"feeds {kind} layer '{name}', which {problem}")
            if layer is not None and layer.weights:
                refused[name] = f"{kind} layer: {problem}"
            sources[name] = FIXED
            continue
        if kind in PRODUCERS:
            if first.repeat > 1 and kind != "Dense":
                freeze(first, f"is flattened into {kind} layer '{name}'")
                first = FIXED
            input_source[name] = first
            if first.group is not None:
                groups[find(first.group)].consumers.append((name, first.repeat))
            index = new_group(_out_channels(layer))
            groups[index].producers.append(name)
            output_group[name] = index
            sources[name] = Source(index)
        elif kind in FOLLOWERS:
            input_source[name] = first
            if first.group is None:
                sources[name] = FIXED
                continue
            groups[find(first.group)].followers.append(name)
            output_group[name] = first.group
            sources[name] = first
        elif kind in PASS_THROUGH:
            sources[name] = first
        elif kind in GLOBAL_POOLING:
            sources[name] = Source(first.group, 1)
        elif kind == "Flatten":
            spatial = _spatial_positions(layer)
            if first.group is not None and first.repeat > 1:
                freeze(first, f"is flattened twice (at '{name}')")
                sources[name] = FIXED
            else:
                sources[name] = Source(first.group, spatial) if first.group is not None else FIXED
        elif kind in TIES:
            root = find(inputs[0].group)  # checked above: all inputs are groups
            for source in inputs[1:]:
                other = find(source.group)
                if other != root:
                    parent[other] = root
                    merged, kept = groups[other], groups[root]
                    kept.producers += merged.producers
                    kept.followers += merged.followers
                    kept.consumers += merged.consumers
                    kept.frozen = kept.frozen or merged.frozen
            sources[name] = Source(root, inputs[0].repeat)
    for output in graph.outputs:
        freeze(sources.get(output, FIXED), "is the model's output")
    # resolve merged groups
    resolved = {index: find(index) for index in parent}
    final = {index: groups[index] for index in set(resolved.values())}
    for index, group in final.items():
        group.id = index
    output_group = {name: resolved[index] for name, index in output_group.items()}
    input_source = {name: Source(None if s.group is None else resolved[s.group], s.repeat) for name, s in input_source.items()}
    return ChannelGraph(graph, final, output_group, input_source, refused)


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
