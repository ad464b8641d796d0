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

Both round every width up to the kernels' channel tile (`ChannelTile`, chosen from the
profile's runtime by `channel_tile`): int8 kernels compute channels in fixed-size groups, so
a width one past a multiple runs a whole extra group, mostly padding. On LiteRT (XNNPACK) the
ID-guided widths of benchmarks/results/speed.json landed on 17 channels and ran 1.48x slower
than uniform widths at equal MACs.

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
class ChannelTile:
    """The channel multiple a runtime's int8 kernels run fastest at, and why."""

    channels: int
    why: str

    def round_up(self, width: int, size: int) -> int:
        """`width` up to the next multiple of the tile, never more than the layer's `size` channels."""
        return int(min(size, -(-max(1, width) // self.channels) * self.channels))


#: The kernels each runtime brings for int8 convolutions (a profile's first preferred runtime decides).
CHANNEL_TILES: dict[str, ChannelTile] = {
    "litert": ChannelTile(
        8,
        "LiteRT's XNNPACK int8 GEMM kernels compute output channels in groups of 8 (16 on AVX-512): 17-channel "
        "convolutions ran 1.48x slower than uniform widths at equal MACs in benchmarks/results/speed.json",
    ),
    "tflite-micro": ChannelTile(
        4,
        "CMSIS-NN's int8 convolution on Cortex-M (arm_nn_mat_mult_kernel_s8_s16): 2 output channels per pass, "
        "4 inputs per SIMD step, the rest in scalar loops",
    ),
}
#: Runtimes without a measured tile get LiteRT's.
DEFAULT_TILE = CHANNEL_TILES["litert"]


def channel_tile(profile: object) -> ChannelTile:
    """The channel tile of the profile's first preferred runtime (LiteRT's where none is known)."""
    runtimes = list(getattr(profile, "preferred_runtimes", []) or [])
    return CHANNEL_TILES.get(str(runtimes[0]) if runtimes else "", DEFAULT_TILE)


@dataclass(frozen=True)
class WidthRule:
    """The ID-guided rule's knobs (profile / plan / benchmark)."""

    factor: float = 1.0
    boost: float = 1.5  # multiplier for significant / high-precision layers
    floor: int = 8
    tile: ChannelTile = DEFAULT_TILE  # widths are rounded up to a multiple of it

    def width(self, intrinsic_dimension: float, size: int, keeps_more: bool) -> int:
        wanted = math.ceil(self.factor * (self.boost if keeps_more else 1.0) * float(intrinsic_dimension))
        return self.tile.round_up(max(self.floor, wanted, 1), size)


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


def uniform_widths(channels: ChannelGraph, fraction: float, tile: ChannelTile = DEFAULT_TILE) -> dict[str, int]:
    """{producer: round(fraction x channels), rounded up to the tile} for every prunable producer."""
    if not 0.0 < fraction <= 1.0:
        raise ValueError(f"fraction must be in (0, 1], got {fraction}")
    return {
        name: tile.round_up(round(fraction * group.size), group.size)
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
    channels: ChannelGraph,
    target_macs: int,
    *,
    macs: MacModel | None = None,
    steps: int = 40,
    tile: ChannelTile = DEFAULT_TILE,
) -> tuple[float, dict[str, int]]:
    """(fraction, widths) of uniform pruning whose MACs come closest to `target_macs` (widths on the tile)."""
    model = macs or MacModel(channels)
    measure: Callable[[float], int] = lambda f: model.macs(uniform_widths(channels, f, tile))  # noqa: E731
    low, high = 1e-3, 1.0
    for _ in range(steps):  # MACs grow with the fraction: bisect
        middle = (low + high) / 2
        if measure(middle) < target_macs:
            low = middle
        else:
            high = middle
    fraction = min((low, high), key=lambda f: abs(measure(f) - target_macs))
    return fraction, uniform_widths(channels, fraction, tile)


__all__ = [
    "CHANNEL_TILES",
    "ChannelTile",
    "MacModel",
    "WidthRule",
    "channel_tile",
    "id_widths",
    "kept_fractions",
    "uniform_at_macs",
    "uniform_widths",
]
