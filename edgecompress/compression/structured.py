"""Structured pruning with physical removal: fewer filters, so fewer MACs in the exported model.

Unlike tfmot's magnitude pruning (zeros that every kernel still multiplies), this removes
whole output channels: the pruned layer gets fewer filters, and everything its channels
reach (BatchNormalization statistics, depthwise filters, the next layer's input rows,
the other side of a residual Add) loses the same channels, as `channels.analyse` groups them.

Which channels go: the standard filter-norm criterion (Li et al., "Pruning Filters for
Efficient ConvNets", ICLR 2017) -- each output filter's L1 (or L2) norm; a group tied by an
Add sums its producers' norms, each producer's scaled by its mean so no layer dominates by
scale alone. The kept channels keep their order. How *many* channels stay is the caller's
choice (`widths`: ID-guided or uniform); fine-tuning afterwards is `apply.py`'s job.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from edgecompress.compression.channels import ChannelGraph, Group, analyse
from edgecompress.compression.surgery import weight_names

CRITERIA = ("l1", "l2")


@dataclass(frozen=True)
class Pruned:
    """The smaller model and, per pruned group, which channels of how many were kept."""

    model: Any
    kept: dict[str, list[int]]  # producer layer -> kept output channel indices (of the original)
    widths: dict[str, tuple[int, int]]  # producer layer -> (kept, original)


def channel_scores(channels: ChannelGraph, group: Group, criterion: str = "l1") -> np.ndarray:
    """One importance score per channel of `group` (higher = kept first)."""
    if criterion not in CRITERIA:
        raise ValueError(f"criterion must be one of {CRITERIA}, got {criterion!r}")
    layers = {layer.name: layer for layer in channels.graph.model.layers}
    total = np.zeros(group.size)
    for name in group.producers:
        kernel = layers[name].get_weights()[weight_names(layers[name]).index("kernel")]
        flat = kernel.reshape(-1, kernel.shape[-1])
        norms = np.abs(flat).sum(axis=0) if criterion == "l1" else np.sqrt((flat**2).sum(axis=0))
        total += norms / max(float(norms.mean()), 1e-12)
    return total


def prune_channels(
    model: Any, widths: dict[str, int], *, criterion: str = "l1", channels: ChannelGraph | None = None
) -> Pruned:
    """A copy of `model` whose producer layers keep `widths[layer]` output channels.

    Producers tied in one group share the largest width asked for any of them. Layers that
    cannot be pruned (see `ChannelGraph.why_not`) raise ValueError: plans never ask for them.
    """
    channels = channels or analyse(model)
    wanted: dict[int, int] = {}
    for name, width in widths.items():
        reason = channels.why_not(name)
        if reason is not None:
            raise ValueError(f"layer '{name}' cannot be pruned: {reason}")
        group = channels.group_of(name)
        assert group is not None, "why_not() is None only for layers with a channel group"
        if not 1 <= width <= group.size:
            raise ValueError(f"width {width} for layer '{name}' is outside 1..{group.size}")
        wanted[group.id] = max(width, wanted.get(group.id, 0))
    kept_by_group: dict[int, np.ndarray] = {}
    for index, width in wanted.items():
        group = channels.groups[index]
        if width < group.size:
            order = np.argsort(-channel_scores(channels, group, criterion), kind="stable")
            kept_by_group[index] = np.sort(order[:width])
    graph = channels.graph
    layers = {layer.name: layer for layer in graph.model.layers}

    def kept_out(name: str) -> np.ndarray | None:
        index = channels.output_group.get(name)
        return kept_by_group.get(index) if index is not None else None

    def kept_in(name: str) -> np.ndarray | None:
        source = channels.input_source.get(name)
        if source is None or source.group is None or source.group not in kept_by_group:
            return None
        kept, size = kept_by_group[source.group], channels.groups[source.group].size
        return (np.arange(source.repeat)[:, None] * size + kept[None, :]).ravel()

    for node in graph.nodes:
        out, into = kept_out(node.name), kept_in(node.name)
        if out is None and into is None:
            continue
        layer = layers[node.name]
        if node.name in channels.output_group and out is not None and node.class_name in ("Conv1D", "Conv2D", "Conv3D"):
            node.config["filters"] = int(len(out))
        elif node.name in channels.output_group and out is not None and node.class_name == "Dense":
            node.config["units"] = int(len(out))
        graph.weights[node.name] = _sliced(layer, node.class_name, out, into)
    model_out = graph.build()
    kept = {name: kept_by_group[g].tolist() for g in kept_by_group for name in channels.groups[g].producers}
    widths_out = {name: (len(kept[name]), channels.groups[channels.output_group[name]].size) for name in kept}
    return Pruned(model_out, kept, widths_out)


def _sliced(layer: Any, kind: str, out: np.ndarray | None, into: np.ndarray | None) -> list[np.ndarray]:
    """The layer's weights with removed output channels (`out`) and input channels (`into`) taken out."""
    values = []
    for name, value in zip(weight_names(layer), layer.get_weights()):
        if kind in ("BatchNormalization",) or kind.startswith("DepthwiseConv"):
            channels = into  # followers: one entry per incoming channel
            if name == "depthwise_kernel" and channels is not None:
                value = np.take(value, channels, axis=-2)
            elif value.ndim == 1 and channels is not None:
                value = value[channels]
        elif name == "kernel":
            if into is not None:
                value = np.take(value, into, axis=0 if kind == "Dense" else -2)
            if out is not None:
                value = np.take(value, out, axis=-1)
        elif name == "bias" and out is not None:
            value = value[out]
        values.append(value)
    return values


__all__ = ["CRITERIA", "Pruned", "channel_scores", "prune_channels"]
