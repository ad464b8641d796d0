"""How many channels each prunable layer keeps: from its intrinsic dimension, or uniformly.

ID-guided (`id_widths`): a layer whose output lies on a manifold of intrinsic dimension d
uses about d directions; it keeps ceil(factor x d) output channels (x `boost` for layers the
significance analysis marks significant or keeps at high precision, since they reshape the
representation most), never fewer than `floor` and never more than it has. A layer without
a measured ID keeps every channel.

Uniform (`uniform_widths`): every prunable layer keeps the same fraction of its channels
(L1 filter pruning as Li et al. 2017 ran it). `uniform_at_macs` finds the fraction whose
MACs come closest to a target, so the ID-guided widths can be compared with a uniform
control at equal compute (Blalock et al. 2020, "What is the state of neural network pruning?").

MACs here are the Keras-side estimate (`export.macs.keras_layer_macs` of the full model,
scaled by the kept fraction of each layer's input and output channels): exact for
Conv/Dense, whose MACs are linear in both; the exported artifact is counted again from its
own graph for the report.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

from edgecompress.compression.channels import ChannelGraph
from edgecompress.export.macs import keras_layer_macs


@dataclass(frozen=True)
class WidthRule:
    """The ID-guided rule's knobs (profile / plan / benchmark)."""

    factor: float = 1.0
    boost: float = 1.5  # multiplier for significant / high-precision layers
    floor: int = 8

    def width(self, intrinsic_dimension: float, size: int, keeps_more: bool) -> int:
        wanted = math.ceil(self.factor * (self.boost if keeps_more else 1.0) * float(intrinsic_dimension))
        return int(min(size, max(self.floor, wanted, 1)))


def id_widths(channels: ChannelGraph, ids: dict[str, float], keeps_more: set[str], rule: WidthRule) -> dict[str, int]:
    """{producer: kept width} for every prunable producer with a measured ID (full width elsewhere)."""
    widths = {}
    for group in channels.groups.values():
        if group.frozen:
            continue
        asked = [
            rule.width(ids[name], group.size, name in keeps_more)
            for name in group.producers
            if ids.get(name) is not None
        ]
        if not asked or any(ids.get(name) is None for name in group.producers):
            continue  # a tied producer without an ID keeps the group whole
        width = max(asked)
        for name in group.producers:
            widths[name] = width
    return widths


def uniform_widths(channels: ChannelGraph, fraction: float) -> dict[str, int]:
    """{producer: round(fraction x channels)} for every prunable producer (at least one channel)."""
    if not 0.0 < fraction <= 1.0:
        raise ValueError(f"fraction must be in (0, 1], got {fraction}")
    return {
        name: max(1, round(fraction * group.size))
        for group in channels.groups.values()
        if not group.frozen
        for name in group.producers
    }


def kept_fractions(channels: ChannelGraph, widths: dict[str, int]) -> dict[str, tuple[float, float]]:
    """{layer: (kept share of its input channels, kept share of its output channels)} for every layer
    the widths touch; BatchNormalization and depthwise layers keep their inputs' share on both sides."""
    kept: dict[int, float] = {}
    for name, width in widths.items():
        group = channels.group_of(name)
        assert group is not None, f"widths are only asked of layers with a channel group ({name})"
        kept[group.id] = max(kept.get(group.id, 0.0), width / group.size)
    fractions = {}
    for node in channels.graph.nodes:
        source = channels.input_source.get(node.name)
        into = kept.get(source.group, 1.0) if source is not None and source.group is not None else 1.0
        group = channels.group_of(node.name)
        out = kept.get(group.id, 1.0) if group is not None else 1.0
        if into != 1.0 or out != 1.0:
            fractions[node.name] = (into, out)
    return fractions


class MacModel:
    """MACs of the model for any choice of widths, without building it."""

    def __init__(self, channels: ChannelGraph) -> None:
        self.channels = channels
        self.full = {layer.name: keras_layer_macs(layer) for layer in channels.graph.model.layers}

    def macs(self, widths: dict[str, int]) -> int:
        fractions = kept_fractions(self.channels, widths)
        total = 0.0
        for name, macs in self.full.items():
            into, out = fractions.get(name, (1.0, 1.0))
            group = self.channels.group_of(name)
            follows = group is not None and name in group.followers  # one product per channel, not per pair
            total += macs * (into if follows else into * out)
        return int(round(total))

    @property
    def total(self) -> int:
        return int(sum(self.full.values()))


def uniform_at_macs(
    channels: ChannelGraph, target_macs: int, *, macs: MacModel | None = None, steps: int = 40
) -> tuple[float, dict[str, int]]:
    """(fraction, widths) of uniform pruning whose MACs come closest to `target_macs`."""
    model = macs or MacModel(channels)
    measure: Callable[[float], int] = lambda f: model.macs(uniform_widths(channels, f))  # noqa: E731
    low, high = 1e-3, 1.0
    for _ in range(steps):  # MACs grow with the fraction: bisect
        middle = (low + high) / 2
        if measure(middle) < target_macs:
            low = middle
        else:
            high = middle
    fraction = min((low, high), key=lambda f: abs(measure(f) - target_macs))
    return fraction, uniform_widths(channels, fraction)


__all__ = ["MacModel", "kept_fractions", "WidthRule", "id_widths", "uniform_at_macs", "uniform_widths"]
